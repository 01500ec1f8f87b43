//! `nczm_*` path utilities (seed header), over `zmap_core::paths`.
//!
//! Every string these functions hand to C comes from C `malloc`: the caller
//! releases it with `free()` (or, for list elements, `nclistfreeall`).

use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use super::list::{self, NClist};
use super::map::NCZMAP;
use super::{c_bytes, guard, guard_value, malloc_string, required_bytes, set_out};
use zmap_core::error::{Error, Result};
use zmap_core::paths;

/// Splits `path` at `/` into `segments`: `nczm_split_delim(path, '/',
/// segments)`.
///
/// # Safety
/// As for `nczm_split_delim`.
#[export_name = "zmap_nczm_split"]
pub unsafe extern "C" fn nczm_split(path: *const c_char, segments: *mut NClist) -> c_int {
    // SAFETY: `path` and `segments` are as `nczm_split_delim` needs
    // (# Safety above).
    unsafe { nczm_split_delim(path, b'/' as c_char, segments) }
}

/// Splits `path` at `delim`, appending each piece to `segments` (which is
/// not cleared first) as a `malloc`ed string that the caller owns: free the
/// pieces with `free()` or the list with `nclistfreeall`.
///
/// One leading `delim` is skipped and one trailing `delim` is accepted:
/// `"/a/b"` and `"a/b/"` give `a`, `b`; `"/"` gives nothing. An empty piece
/// (`"//a"`, `"/a//b"`) stops with `NC_EURL`; the pieces before it stay in
/// the list. `path` NULL or `""`, or `segments` NULL: `NC_EINVAL`, nothing
/// appended. `NC_ENOMEM` if a copy cannot be allocated.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `segments` is NULL or a list
/// from `nclistnew`.
#[export_name = "zmap_nczm_split_delim"]
pub unsafe extern "C" fn nczm_split_delim(
    path: *const c_char,
    delim: c_char,
    segments: *mut NClist,
) -> c_int {
    // SAFETY: `path` is NULL or a NUL-terminated string, `segments` NULL
    // or a valid list (# Safety above).
    unsafe {
        guard(|| {
            let segments = segments
                .as_mut()
                .ok_or(Error::Invalid("nczm_split: NULL segment list"))?;
            let split = paths::split_delim(c_bytes(path), delim as u8);
            for piece in &split.pieces {
                push_string(segments, piece)?;
            }
            split.status
        })
    }
}

/// Appends a `malloc`ed copy of `bytes` to `list`.
///
/// # Safety
/// `list` is a valid list.
unsafe fn push_string(list: &mut NClist, bytes: &[u8]) -> Result<()> {
    // SAFETY: `list` is a valid list (# Safety above); `copy` is malloc()ed
    // here and freed only if the list did not take it.
    unsafe {
        let copy = malloc_string(bytes)?;
        if list::push(list, copy as *mut c_void) {
            Ok(())
        } else {
            libc::free(copy as *mut c_void);
            Err(Error::NoMem)
        }
    }
}

/// The strings of `segments`: `NC_EINVAL` for a NULL list or a NULL element.
///
/// # Safety
/// `segments` is NULL or a valid list whose elements are NULL or
/// NUL-terminated strings outliving `'a`.
unsafe fn list_strings<'a>(segments: *mut NClist) -> Result<Vec<&'a [u8]>> {
    // SAFETY: `segments` is NULL or a valid list of NULL or
    // NUL-terminated strings outliving 'a (# Safety above).
    unsafe {
        let list = segments
            .as_ref()
            .ok_or(Error::Invalid("nczm_join: NULL segment list"))?;
        (0..list.length)
            .map(|i| {
                c_bytes(list::nclistget(segments, i) as *const c_char)
                    .ok_or(Error::Invalid("nczm_join: NULL segment"))
            })
            .collect()
    }
}

/// Stores a `malloc`ed copy of `bytes` in `*out`; a NULL `out` stores
/// nothing (the seed's "if pathp is NULL the result is freed").
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn put_string(out: *mut *mut c_char, bytes: &[u8]) -> Result<()> {
    // SAFETY: `out` is NULL or valid for a write (# Safety above).
    unsafe {
        if !out.is_null() {
            set_out(out, malloc_string(bytes)?);
        }
    }
    Ok(())
}

/// Joins the strings of `segments` into a path in `*pathp`: `"/"` for an
/// empty list, else each segment preceded by `/` unless it begins with `/`
/// (`[a, b]` and `[/a, b]` give `"/a/b"`).
///
/// The result is `malloc`ed; the caller frees it with `free()`. `pathp` NULL:
/// no result is kept. `segments` NULL, or a NULL element: `NC_EINVAL` and
/// `*pathp` untouched.
///
/// # Safety
/// `segments` is NULL or a valid list of NULL or NUL-terminated strings;
/// `pathp` is NULL or valid for a write.
#[export_name = "zmap_nczm_join"]
pub unsafe extern "C" fn nczm_join(segments: *mut NClist, pathp: *mut *mut c_char) -> c_int {
    // SAFETY: `segments` and `pathp` are as # Safety above says.
    unsafe { guard(|| put_string(pathp, &paths::join(&list_strings(segments)?))) }
}

/// Like `nczm_join`, but a first segment that is exactly a Windows drive
/// (letter and `:`) is not preceded by `/`: `[C:, a]` gives `"C:/a"`, and
/// `[C:]` alone gives that drive's root `"C:/"`.
///
/// The result is `malloc`ed; the caller frees it with `free()`. `pathp` NULL:
/// no result is kept. `segments` NULL, or a NULL element: `NC_EINVAL` and
/// `*pathp` untouched.
///
/// # Safety
/// As for `nczm_join`.
#[export_name = "zmap_nczm_joinpath"]
pub unsafe extern "C" fn nczm_joinpath(segments: *mut NClist, pathp: *mut *mut c_char) -> c_int {
    // SAFETY: `segments` and `pathp` are as # Safety above says.
    unsafe { guard(|| put_string(pathp, &paths::joinpath(&list_strings(segments)?))) }
}

/// Concatenates two key parts into `*pathp`: `prefix` minus one trailing
/// `/`, then `/` if `suffix` is non-empty and does not begin with `/`, then
/// `suffix`. A NULL or `""` prefix means `"/"`, a NULL suffix `""`:
/// `(NULL, "/.nczarr")` gives `"/.nczarr"`, `("/meta1", ".zarray")` gives
/// `"/meta1/.zarray"`, `("/", NULL)` gives `""`.
///
/// The result is `malloc`ed; the caller frees it with `free()`. `pathp` NULL:
/// no result is kept. `NC_NOERR`, or `NC_ENOMEM`.
///
/// # Safety
/// `prefix` and `suffix` are NULL or NUL-terminated strings; `pathp` is NULL
/// or valid for a write.
#[export_name = "zmap_nczm_concat"]
pub unsafe extern "C" fn nczm_concat(
    prefix: *const c_char,
    suffix: *const c_char,
    pathp: *mut *mut c_char,
) -> c_int {
    // SAFETY: `prefix`, `suffix` and `pathp` are as # Safety above says.
    unsafe { guard(|| put_string(pathp, &paths::concat(c_bytes(prefix), c_bytes(suffix)))) }
}

/// Divides `key` after `nsegs` segments into `*prefixp` and `*suffixp` (the
/// suffix keeps its leading `/`); a negative `nsegs` leaves |nsegs| segments
/// in the suffix: `("/a/b/c", -1)` gives `"/a/b"` and `"/c"`, `("/a", 0)`
/// gives `""` and `"/a"`.
///
/// The key has 1 + (number of `/` after an optional leading `/`) segments;
/// |nsegs| above that is `NC_EINVAL`. A NULL or `""` key: `NC_NOERR` and no
/// output. Both results are `malloc`ed, each only if its pointer is not
/// NULL; the caller frees them with `free()`. On any error neither output is
/// written.
///
/// # Safety
/// `key` is NULL or a NUL-terminated string; `prefixp` and `suffixp` are
/// NULL or valid for a write.
#[export_name = "zmap_nczm_divide_at"]
pub unsafe extern "C" fn nczm_divide_at(
    key: *const c_char,
    nsegs: c_int,
    prefixp: *mut *mut c_char,
    suffixp: *mut *mut c_char,
) -> c_int {
    // SAFETY: `key`, `prefixp` and `suffixp` are as # Safety above says;
    // `prefix` is NULL or malloc()ed here, freed only if it is not handed out.
    unsafe {
        guard(|| {
            let Some((prefix, suffix)) = paths::divide_at(c_bytes(key), nsegs)? else {
                return Ok(());
            };
            let prefix = optional_copy(prefixp, prefix)?;
            let suffix = match optional_copy(suffixp, suffix) {
                Ok(s) => s,
                Err(e) => {
                    libc::free(prefix as *mut c_void);
                    return Err(e);
                }
            };
            set_out(prefixp, prefix);
            set_out(suffixp, suffix);
            Ok(())
        })
    }
}

/// A `malloc`ed copy of `bytes` if `out` wants one, else NULL.
fn optional_copy(out: *mut *mut c_char, bytes: &[u8]) -> Result<*mut c_char> {
    if out.is_null() {
        Ok(ptr::null_mut())
    } else {
        malloc_string(bytes)
    }
}

/// Frees `map->url` and sets it to NULL, leaving the map itself alone (the
/// seed's helper for backends' close functions). NULL map: `NC_NOERR`.
///
/// # Safety
/// `map` is NULL, an open handle, or a caller-built `NCZMAP` whose `url` is
/// NULL or `malloc`ed.
#[export_name = "zmap_nczm_clear"]
pub unsafe extern "C" fn nczm_clear(map: *mut NCZMAP) -> c_int {
    // SAFETY: `map` is NULL or an `NCZMAP` whose `url` is NULL or
    // malloc()ed (# Safety above); `url` is set to NULL once freed.
    unsafe {
        guard(|| {
            if let Some(map) = map.as_mut() {
                libc::free(map.url as *mut c_void);
                map.url = ptr::null_mut();
            }
            Ok(())
        })
    }
}

/// 1 if `path` is absolute: it begins with `/` or `\`, or with an ASCII
/// letter and `:` (a Windows drive). 0 otherwise, also for NULL and `""`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[export_name = "zmap_nczm_isabsolutepath"]
pub unsafe extern "C" fn nczm_isabsolutepath(path: *const c_char) -> c_int {
    // SAFETY: `path` is NULL or a NUL-terminated string (# Safety above).
    unsafe { guard_value(0, || paths::is_absolute_path(c_bytes(path)) as c_int) }
}

/// Copies `path` into `*newpathp` with every `\` turned into `/` and the
/// `/` of a leading `/X:` (drive letter from a URL) dropped: `"/C:/x"`
/// gives `"C:/x"`. `local` (convert to the platform's separator) changes
/// nothing off Windows, where the separator is `/`.
///
/// The result is `malloc`ed; the caller frees it with `free()`. `newpathp`
/// NULL: no result is kept. `path` NULL: `NC_EINVAL`. `NC_ENOMEM` if the
/// copy cannot be allocated.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `newpathp` is NULL or valid
/// for a write.
#[export_name = "zmap_nczm_localize"]
pub unsafe extern "C" fn nczm_localize(
    path: *const c_char,
    newpathp: *mut *mut c_char,
    local: c_int,
) -> c_int {
    // `local` only selects '\' as the separator on Windows builds.
    let _ = local;
    // SAFETY: `path` and `newpathp` are as # Safety above says.
    unsafe {
        guard(|| {
            let path = required_bytes(path, "nczm_localize: NULL path")?;
            put_string(newpathp, &paths::localize(path))
        })
    }
}

/// The canonical form of a dataset path in `*cpathp`: the same as
/// `nczm_localize(path, cpathp, 0)`. netCDF's MSYS/Cygwin rewrites of
/// `/x/...` and `/cygdrive/x/...` into `x:/...` are not applied: on Linux
/// they would make absolute paths relative.
///
/// The result is `malloc`ed; the caller frees it with `free()`. `cpathp`
/// NULL: no result is kept. `path` NULL: `NC_NOERR` with `*cpathp`
/// untouched (as netCDF). `NC_ENOMEM` if the copy cannot be allocated.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `cpathp` is NULL or valid for
/// a write.
#[export_name = "zmap_nczm_canonicalpath"]
pub unsafe extern "C" fn nczm_canonicalpath(
    path: *const c_char,
    cpathp: *mut *mut c_char,
) -> c_int {
    // SAFETY: `path` and `cpathp` are as # Safety above says.
    unsafe {
        guard(|| match paths::canonicalpath(c_bytes(path)) {
            Some(canonical) => put_string(cpathp, &canonical),
            None => Ok(()),
        })
    }
}
