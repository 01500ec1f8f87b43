//! The exported functions: netCDF 4.9's zmap API (names, signatures, enum
//! numbers of libnczarr/zmap.h). Each routes a request to one of our maps or
//! hands it, unchanged, to netCDF's own definition (`host`). Panics are
//! caught; NULL pointers are refused (netCDF's own would crash on them),
//! except `nczmap_close(NULL, ...)`, which is a no-op as in netCDF.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::AssertUnwindSafe;

use zmap_core::codes::{NC_EINTERNAL, NC_EINVAL, NC_ENOTBUILT, NC_NOERR};
use zmap_core::{Error, Impl, Key, Result};

use crate::abi::{
    list_push_copy, NcList, NcZmap, NcZmapApi, NCZM_FILE, NCZM_S3, NCZM_UNIMPLEMENTED, NCZM_ZIP,
};
use crate::host::{host, Generation, Host};
use crate::maps::{self, Open, Request};
use crate::route::{probe, route, Route};

/// The `api` table of our maps: these same functions (a caller going
/// through `map->api` reaches the same code as one calling `nczmap_*`).
static API: NcZmapApi = NcZmapApi {
    version: 1,
    close: nczmap_close,
    exists: nczmap_exists,
    len: nczmap_len,
    read: nczmap_read,
    write: nczmap_write,
    search: nczmap_search,
};

/// Runs `body` quietly, a panic becoming `fallback`.
fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    zmap_core::quiet::inherit(true, || std::panic::catch_unwind(AssertUnwindSafe(body)))
        .unwrap_or(fallback)
}

fn code(result: Result<()>) -> c_int {
    match result {
        Ok(()) => NC_NOERR,
        Err(e) => e.code(),
    }
}

/// The key (or prefix) argument; NULL is the root for a prefix only.
///
/// # Safety
/// `key` is NULL or a NUL-terminated string.
unsafe fn key_arg<'a>(key: *const c_char, null_is_root: bool) -> Result<Key<'a>> {
    if key.is_null() {
        return if null_is_root {
            Ok(Key::root())
        } else {
            Err(Error::Invalid("NULL key"))
        };
    }
    // SAFETY: not NULL, so a NUL-terminated string (# Safety above).
    Key::parse(unsafe { CStr::from_ptr(key) }.to_bytes())
}

/// What create/open/truncate do with `(impl, url)`: our route, or netCDF's.
enum Target<'a> {
    Ours(Impl, String, &'a str, Generation),
    Theirs,
}

/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn target<'a>(host: &Host, imp: c_int, path: *const c_char) -> Target<'a> {
    let Some(generation) = host.generation else {
        return Target::Theirs;
    };
    if path.is_null() {
        return Target::Theirs;
    }
    // SAFETY: not NULL, so a NUL-terminated string (# Safety above).
    let Ok(url) = unsafe { CStr::from_ptr(path) }.to_str() else {
        return Target::Theirs;
    };
    match route(imp, url, probe) {
        Route::Gnz(file) => Target::Ours(Impl::Gnz, file, url, generation),
        Route::S3(s3) => Target::Ours(Impl::S3, s3, url, generation),
        Route::PassThrough => Target::Theirs,
    }
}

/// # Safety
/// netCDF's contract for `nczmap_create/open`.
unsafe fn start(
    create: bool,
    imp: c_int,
    path: *const c_char,
    mode: c_int,
    flags: u64,
    parameters: *mut c_void,
    mapp: *mut *mut NcZmap,
) -> c_int {
    let Some(host) = host() else {
        return NC_ENOTBUILT;
    };
    // SAFETY: the caller keeps netCDF's contract for create/open (`path` NULL
    // or a C string, `mapp` NULL or writable), which is what `target`,
    // `zip_fallback`, `serve` and netCDF's own functions need; the arguments
    // are passed on unchanged.
    unsafe {
        match target(host, imp, path) {
            Target::Theirs => {
                let own = if create { host.create } else { host.open };
                let status = own(imp, path, mode, flags, parameters, mapp);
                // A netCDF built without zip (Debian's 4.9.0) answers
                // NC_ENOTBUILT: libzmap's ZIP backend serves the archive then.
                match zip_fallback(host, imp, path, status) {
                    Some((location, url, generation)) => serve(
                        Impl::Zip,
                        &location,
                        url,
                        generation,
                        imp,
                        mode,
                        flags,
                        create,
                        mapp,
                    ),
                    None => status,
                }
            }
            Target::Ours(backend, location, url, generation) => serve(
                backend, &location, url, generation, imp, mode, flags, create, mapp,
            ),
        }
    }
}

/// The location of a `#mode=nczarr,zip` URL for libzmap's ZIP backend when
/// netCDF's own create/open answered `NC_ENOTBUILT` (netCDF without zip),
/// or `None` (netCDF's answer stands).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn zip_fallback<'a>(
    host: &Host,
    imp: c_int,
    path: *const c_char,
    status: c_int,
) -> Option<(String, &'a str, Generation)> {
    if imp != NCZM_ZIP || status != NC_ENOTBUILT || path.is_null() {
        return None;
    }
    let generation = host.generation?;
    // SAFETY: not NULL, so a NUL-terminated string (# Safety above).
    let url = unsafe { CStr::from_ptr(path) }.to_str().ok()?;
    let is_file_url =
        zmap_core::location::scheme(url).is_some_and(|s| s.eq_ignore_ascii_case("file"));
    is_file_url.then(|| (url.to_string(), url, generation))
}

/// Opens or creates one of the bridge's own maps.
///
/// # Safety
/// `mapp` is NULL or writable.
#[allow(clippy::too_many_arguments)]
unsafe fn serve(
    backend: Impl,
    location: &str,
    url: &str,
    generation: Generation,
    imp: c_int,
    mode: c_int,
    flags: u64,
    create: bool,
    mapp: *mut *mut NcZmap,
) -> c_int {
    if mapp.is_null() {
        return NC_EINVAL;
    }
    // SAFETY: not NULL, so writable (# Safety above).
    unsafe { *mapp = std::ptr::null_mut() };
    let request = Request {
        backend,
        location,
        url,
        format: imp,
        mode,
        flags,
        generation,
    };
    match maps::start(request, create, &API) {
        Ok(handle) => {
            // SAFETY: not NULL, so writable (# Safety above).
            unsafe { *mapp = handle };
            NC_NOERR
        }
        Err(e) => e.code(),
    }
}

/// `nczmap_create(impl, url, mode, flags, parameters, mapp)`.
///
/// # Safety
/// netCDF's contract: `path` NULL or a C string, `mapp` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nczmap_create(
    imp: c_int,
    path: *const c_char,
    mode: c_int,
    flags: u64,
    parameters: *mut c_void,
    mapp: *mut *mut NcZmap,
) -> c_int {
    // SAFETY: netCDF's contract for create, which `start` needs (# Safety above).
    guard(NC_EINTERNAL, || unsafe {
        start(true, imp, path, mode, flags, parameters, mapp)
    })
}

/// `nczmap_open(impl, url, mode, flags, parameters, mapp)`.
///
/// # Safety
/// As for `nczmap_create`.
#[no_mangle]
pub unsafe extern "C" fn nczmap_open(
    imp: c_int,
    path: *const c_char,
    mode: c_int,
    flags: u64,
    parameters: *mut c_void,
    mapp: *mut *mut NcZmap,
) -> c_int {
    // SAFETY: netCDF's contract for open, which `start` needs (# Safety above).
    guard(NC_EINTERNAL, || unsafe {
        start(false, imp, path, mode, flags, parameters, mapp)
    })
}

/// `nczmap_close(map, deleteit)`; NULL is accepted (NCZarr closes a map
/// whose create failed).
///
/// # Safety
/// `map` is NULL or a map from `nczmap_create/open`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn nczmap_close(map: *mut NcZmap, deleteit: c_int) -> c_int {
    guard(NC_EINTERNAL, || {
        if map.is_null() {
            return NC_NOERR;
        }
        if maps::lookup(map).is_some() {
            // SAFETY: one of our maps, which the caller does not use after
            // this call (# Safety above).
            return code(unsafe { maps::finish(map, deleteit != 0) });
        }
        match host() {
            // SAFETY: not ours, so netCDF's own map, closed by netCDF's own
            // function with the caller's arguments.
            Some(host) => unsafe { (host.close)(map, deleteit) },
            None => NC_EINVAL,
        }
    })
}

/// Runs `ours` on our map, or `theirs` with netCDF's functions.
fn dispatch(
    map: *mut NcZmap,
    ours: impl FnOnce(&Open) -> c_int,
    theirs: impl FnOnce(&Host) -> c_int,
) -> c_int {
    guard(NC_EINTERNAL, || {
        if map.is_null() {
            return NC_EINVAL;
        }
        if let Some(open) = maps::lookup(map) {
            return ours(&open);
        }
        match host() {
            Some(host) => theirs(host),
            None => NC_EINVAL,
        }
    })
}

/// `nczmap_exists(map, key)`: `NC_NOERR` for an object, else `NC_EEMPTY`.
///
/// # Safety
/// `map` from `nczmap_create/open`; `key` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn nczmap_exists(map: *mut NcZmap, key: *const c_char) -> c_int {
    dispatch(
        map,
        |open| {
            // SAFETY: `key` is NULL or a C string (# Safety above).
            let key = unsafe { key_arg(key, false) };
            code(key.and_then(|k| open.with(|m| m.exists(&k))))
        },
        // SAFETY: not ours, so netCDF's own map: netCDF's own function with
        // the caller's arguments, unchanged.
        |host| unsafe { (host.exists)(map, key) },
    )
}

/// `nczmap_len(map, key, sizep)`.
///
/// # Safety
/// As for `nczmap_exists`; `sizep` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nczmap_len(
    map: *mut NcZmap,
    key: *const c_char,
    sizep: *mut u64,
) -> c_int {
    dispatch(
        map,
        |open| {
            if sizep.is_null() {
                return NC_EINVAL;
            }
            // SAFETY: `key` is NULL or a C string (# Safety above).
            let key = unsafe { key_arg(key, false) };
            match key.and_then(|k| open.with(|m| m.len(&k))) {
                Ok(len) => {
                    // SAFETY: not NULL, so writable (# Safety above).
                    unsafe { *sizep = len };
                    NC_NOERR
                }
                Err(e) => e.code(),
            }
        },
        // SAFETY: not ours, so netCDF's own map: netCDF's own function with
        // the caller's arguments, unchanged.
        |host| unsafe { (host.len)(map, key, sizep) },
    )
}

/// `nczmap_read(map, key, start, count, content)`.
///
/// # Safety
/// As for `nczmap_exists`; `content` NULL or `count` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nczmap_read(
    map: *mut NcZmap,
    key: *const c_char,
    start: u64,
    count: u64,
    content: *mut c_void,
) -> c_int {
    dispatch(
        map,
        |open| {
            let Ok(count) = usize::try_from(count) else {
                return NC_EINVAL;
            };
            if content.is_null() && count > 0 {
                return NC_EINVAL;
            }
            let buf: &mut [u8] = if count == 0 {
                &mut []
            } else {
                // SAFETY: the caller gives `count` writable bytes at `content`.
                unsafe { std::slice::from_raw_parts_mut(content.cast(), count) }
            };
            // SAFETY: `key` is NULL or a C string (# Safety above).
            let key = unsafe { key_arg(key, false) };
            code(key.and_then(|k| open.with(|m| m.read(&k, start, buf))))
        },
        // SAFETY: not ours, so netCDF's own map: netCDF's own function with
        // the caller's arguments, unchanged.
        |host| unsafe { (host.read)(map, key, start, count, content) },
    )
}

/// `nczmap_write`, both generations: 4.9.0–4.9.2 call it as
/// `(map, key, start, count, content)`, 4.9.3+ as `(map, key, count,
/// content)`. All arguments are integer-class, so each lands in the same
/// register whatever the prototype (x86_64 SysV, AArch64): `a, b, c` are
/// decoded by the map's generation, and the 4.9.3 caller's unset fifth
/// register is never used. netCDF's own maps get the same registers.
///
/// A write at offset 0 replaces the object (NCZarr writes whole objects; a
/// shorter rewrite must not leave the old tail behind).
///
/// # Safety
/// `map` from `nczmap_create/open`; `key` a C string; content as given by
/// the generation's prototype (`count` readable bytes).
#[no_mangle]
pub unsafe extern "C" fn nczmap_write(
    map: *mut NcZmap,
    key: *const c_char,
    a: u64,
    b: u64,
    c: usize,
) -> c_int {
    dispatch(
        map,
        |open| {
            let (start, count, content) = match open.generation {
                Generation::V490 => (a, b, c as *const u8),
                Generation::V493 => (0, a, b as usize as *const u8),
            };
            let Ok(count) = usize::try_from(count) else {
                return NC_EINVAL;
            };
            if content.is_null() && count > 0 {
                return NC_EINVAL;
            }
            let data: &[u8] = if count == 0 {
                &[]
            } else {
                // SAFETY: the caller gives `count` readable bytes at `content`.
                unsafe { std::slice::from_raw_parts(content, count) }
            };
            // SAFETY: `key` is a C string (# Safety above).
            let key = unsafe { key_arg(key, false) };
            code(key.and_then(|k| {
                if k.is_root() {
                    return Err(Error::ROOT_NOT_OBJECT);
                }
                open.with(|m| {
                    if start == 0 {
                        maps::replace(m, &k, data)
                    } else {
                        m.write(&k, start, data)
                    }
                })
            }))
        },
        // SAFETY: not ours, so netCDF's own map: netCDF's own function with
        // the caller's arguments, unchanged.
        |host| unsafe { (host.write)(map, key, a, b, c) },
    )
}

/// `nczmap_search(map, prefix, matches)`: appends the bare names of the
/// next level below `prefix` (malloc'ed, sorted) to `matches`.
///
/// # Safety
/// `map` from `nczmap_create/open`; `prefix` NULL or a C string; `matches`
/// a valid `NClist`.
#[no_mangle]
pub unsafe extern "C" fn nczmap_search(
    map: *mut NcZmap,
    prefix: *const c_char,
    matches: *mut NcList,
) -> c_int {
    dispatch(
        map,
        |open| {
            if matches.is_null() {
                return NC_EINVAL;
            }
            // SAFETY: `prefix` is NULL or a C string (# Safety above).
            let prefix = unsafe { key_arg(prefix, true) };
            code(prefix.and_then(|k| {
                open.with(|m| {
                    m.search_each(&k, &mut |name| {
                        // SAFETY: the caller's valid list.
                        if unsafe { list_push_copy(matches, name) } {
                            Ok(())
                        } else {
                            Err(Error::NoMem)
                        }
                    })
                })
            }))
        },
        // SAFETY: not ours, so netCDF's own map: netCDF's own function with
        // the caller's arguments, unchanged.
        |host| unsafe { (host.search)(map, prefix, matches) },
    )
}

/// `nczmap_features(impl)`: none for the S3 maps of the bridge (any write
/// pattern works), netCDF's own answer for everything else.
#[no_mangle]
pub extern "C" fn nczmap_features(imp: c_int) -> u64 {
    guard(NCZM_UNIMPLEMENTED, || {
        let host = host();
        if imp == NCZM_S3 && host.is_some_and(|h| h.generation.is_some()) {
            return 0;
        }
        match host.and_then(|h| h.features) {
            // SAFETY: netCDF's nczmap_features takes any impl number.
            Some(features) => unsafe { features(imp) },
            None if imp == NCZM_FILE => 0,
            None => NCZM_UNIMPLEMENTED,
        }
    })
}

/// `nczmap_truncate(impl, url)` (4.9.3+): empties the dataset, keeping its
/// root. netCDF's own for what the bridge does not serve; `NC_ENOTBUILT` if
/// the loaded netCDF has none.
///
/// # Safety
/// `url` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn nczmap_truncate(imp: c_int, url: *const c_char) -> c_int {
    guard(NC_EINTERNAL, || {
        let Some(host) = host() else {
            return NC_ENOTBUILT;
        };
        // SAFETY: `url` is NULL or a C string (# Safety above).
        match unsafe { target(host, imp, url) } {
            Target::Theirs => match host.truncate {
                // SAFETY: not ours: netCDF's own function with the caller's
                // arguments, unchanged.
                Some(own) => unsafe { own(imp, url) },
                None => NC_ENOTBUILT,
            },
            Target::Ours(backend, location, _, _) => {
                code(zmap_core::Map::create(backend, &location, 0, 0).and_then(|m| m.close(false)))
            }
        }
    })
}
