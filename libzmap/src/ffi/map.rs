//! `nczmap_*`: the map API of the seed header, plus the additions of Part A1.
//!
//! A map handle is a C-visible `NCZMAP` (allocated here, retired by
//! `nczmap_close`). The Rust side of each open map lives in a table keyed by
//! the handle's address, so a NULL, closed or foreign handle is recognised and
//! refused (`NC_EINVAL`, `NC_EBADID`) instead of being dereferenced, and a map
//! being closed on one thread stays alive until other threads' calls on it
//! return.
//!
//! A closed handle's memory is not freed at once: it waits in a quarantine
//! until `RETIRED_HANDLES` more handles have been closed. Until then no new
//! map can get its address, so a call through a stale handle is `NC_EBADID`
//! and can never reach a map opened after it.

use std::collections::{BTreeMap, VecDeque};
use std::os::raw::{c_char, c_int, c_ulonglong, c_void};
use std::ptr;
use std::sync::{Arc, Mutex, RwLock};

use super::list::{self, NClist};
use super::{c_bytes, guard, malloc_joined, malloc_string, required_bytes, set_out};
use zmap_core::codes::*;
use zmap_core::error::{Error, Result};
use zmap_core::key::Key;
use zmap_core::map::{Map, NC_WRITE};
use zmap_core::store::Impl;

/// netCDF's 64-bit size type.
#[allow(non_camel_case_types)]
pub type size64_t = c_ulonglong;

/// The storage backends. `NCZM_UNDEF` (alias `NCZM_MEM`) is in-memory.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NCZM_IMPL {
    /// In-memory datasets, named by any string, shared within the process.
    NCZM_UNDEF = 0,
    /// An S3-compatible object store.
    NCZM_S3 = 1,
    /// One netCDF-4 file in netCDF-C 2020's layout (a group per key segment);
    /// `NC_ENOTBUILT` unless libzmap was built with libnetcdf.
    NCZM_NC4 = 2,
    /// A directory tree: one directory per intermediate key, one regular
    /// file per object. Anything else at a key (a FIFO, socket, device or
    /// symbolic link) is not an object: every operation on that key gives
    /// `NC_EINVAL`, never reads or writes it and never opens it for writing
    /// (a read may open it read-only and non-blocking to see its type; one
    /// swapped in for a regular file while a write opens that file may be
    /// opened, then is refused unwritten); search skips it.
    ///
    /// Open works on any directory. `nczmap_close(map, 1)` deletes only a
    /// dataset, also through a read-only map (netCDF's tests do): a
    /// directory with `.nczarr`, `.zgroup`, `.zarray`, `.zattrs`,
    /// `.zmetadata` or `zarr.json` at its top, or one this map created;
    /// any other gives `NC_EPERM` and nothing is removed. It deletes the
    /// directory the map holds open (device and inode), never what has its
    /// name now: renamed while open, its contents are deleted and the
    /// emptied directory stays under its new name.
    ///
    /// Crashes: after `nczmap_flush` or `nczmap_close(map, 0)` returned
    /// `NC_NOERR`, a crash leaves a dataset that opens, with every object
    /// not written, truncated or removed since then exactly as flushed.
    /// Objects are changed in place, so an object written or truncated
    /// after the flush may hold its flushed bytes, the new ones, a mix, or
    /// zeros where it was being extended, and one created or removed after
    /// it may exist or not. (GNZ keeps the whole dataset as flushed.)
    NCZM_FILE = 3,
    /// One GNZ container file.
    NCZM_GNZ = 4,
    /// One ZIP archive: netCDF's NCZarr zip layout or zarr's ZipStore / OME-Zarr
    /// `.ozx` layout (keys at the archive root). Appended after `NCZM_GNZ`: 5.
    NCZM_ZIP = 5,
}

/// `NCZM_IMPL` as it crosses the boundary: an `int`, so that any value a C
/// caller passes is defined behaviour here. The header spells it `NCZM_IMPL`.
pub type NczmImplArg = c_int;

/// A map handle. C may read `format`, `url`, `mode` and `flags`; `api` gives
/// the object operations (`map->api->read(map, ...)` = `nczmap_read(map, ...)`).
#[repr(C)]
pub struct NCZMAP {
    pub format: NczmImplArg,
    pub url: *mut c_char,
    pub mode: c_int,
    pub flags: size64_t,
    pub api: *mut NCZMAP_API,
}

/// The object-level operations of a map.
#[repr(C)]
pub struct NCZMAP_API {
    pub version: c_int,
    pub close: Option<unsafe extern "C" fn(map: *mut NCZMAP, deleteit: c_int) -> c_int>,
    pub exists: Option<unsafe extern "C" fn(map: *mut NCZMAP, key: *const c_char) -> c_int>,
    pub len: Option<
        unsafe extern "C" fn(map: *mut NCZMAP, key: *const c_char, sizep: *mut size64_t) -> c_int,
    >,
    pub defineobj: Option<unsafe extern "C" fn(map: *mut NCZMAP, key: *const c_char) -> c_int>,
    pub read: Option<
        unsafe extern "C" fn(
            map: *mut NCZMAP,
            key: *const c_char,
            start: size64_t,
            count: size64_t,
            content: *mut c_void,
        ) -> c_int,
    >,
    pub write: Option<
        unsafe extern "C" fn(
            map: *mut NCZMAP,
            key: *const c_char,
            start: size64_t,
            count: size64_t,
            content: *const c_void,
        ) -> c_int,
    >,
    pub search: Option<
        unsafe extern "C" fn(
            map: *mut NCZMAP,
            prefix: *const c_char,
            matches: *mut NClist,
        ) -> c_int,
    >,
}

/// The dataset-level operations of a backend (the seed's plug-in table type).
#[repr(C)]
pub struct NCZMAP_DS_API {
    pub version: c_int,
    pub create: Option<
        unsafe extern "C" fn(
            path: *const c_char,
            mode: c_int,
            flags: size64_t,
            parameters: *mut c_void,
            mapp: *mut *mut NCZMAP,
        ) -> c_int,
    >,
    pub open: Option<
        unsafe extern "C" fn(
            path: *const c_char,
            mode: c_int,
            flags: size64_t,
            parameters: *mut c_void,
            mapp: *mut *mut NCZMAP,
        ) -> c_int,
    >,
}

/// The one object API table; every handle's `api` points here.
static OBJECT_API: NCZMAP_API = NCZMAP_API {
    version: 1,
    close: Some(nczmap_close),
    exists: Some(nczmap_exists),
    len: Some(nczmap_len),
    defineobj: Some(nczmap_defineobj),
    read: Some(nczmap_read),
    write: Some(nczmap_write),
    search: Some(nczmap_search),
};

/// Open maps by handle address.
static OPEN_MAPS: RwLock<BTreeMap<usize, Arc<Map>>> = RwLock::new(BTreeMap::new());

/// How many closed handles keep their memory (about 48 bytes each): a
/// closed handle's address is handed out again only after this many more
/// closes (README, "Handles are checked").
const RETIRED_HANDLES: usize = 65_536;

/// A closed handle, kept allocated so that its address cannot be reused
/// (held, never read).
struct Retired {
    _memory: Box<NCZMAP>,
}

// SAFETY: a retired handle is never read or written through again; its raw
// pointers (NULL `url`, the static `api`) are only held, never dereferenced.
unsafe impl Send for Retired {}

/// Closed handles, oldest first.
static RETIRED: Mutex<VecDeque<Retired>> = Mutex::new(VecDeque::new());

/// Keeps a closed handle's memory for the next `RETIRED_HANDLES` closes.
/// It stays a valid `NCZMAP` (its `api` still points to the table, whose
/// functions give `NC_EBADID` for it), with its `url` freed and NULL.
fn retire(mut handle: Box<NCZMAP>) {
    // SAFETY: `url` is NULL or the string malloc_string made for this
    // handle, freed only here.
    unsafe { libc::free(handle.url as *mut c_void) };
    handle.url = ptr::null_mut();
    handle.mode = 0;
    let oldest = {
        let mut retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
        retired.push_back(Retired { _memory: handle });
        if retired.len() > RETIRED_HANDLES {
            retired.pop_front()
        } else {
            None
        }
    };
    drop(oldest);
}

pub(crate) fn lookup(map: *mut NCZMAP) -> Result<Arc<Map>> {
    if map.is_null() {
        return Err(Error::Invalid("NULL map"));
    }
    let table = OPEN_MAPS.read().unwrap_or_else(|e| e.into_inner());
    table.get(&(map as usize)).cloned().ok_or(Error::BadHandle)
}

/// Runs `op` on the open map behind `map`.
pub(crate) fn with_map(map: *mut NCZMAP, op: impl FnOnce(&Map) -> Result<()>) -> c_int {
    guard(|| op(&*lookup(map)?))
}

/// Parses a key argument: NULL and `""` are `NC_EINVAL`; `/` is the root.
/// The key borrows the caller's string: it lives for the call only.
///
/// # Safety
/// As for `c_bytes`: `key` outlives `'a`.
pub(crate) unsafe fn object_key<'a>(key: *const c_char) -> Result<Key<'a>> {
    // SAFETY: the caller makes `c_bytes`'s promise about `key`.
    let bytes = unsafe { required_bytes(key, "NULL key") }?;
    if bytes.is_empty() {
        return Err(Error::Invalid("empty key"));
    }
    Key::parse(bytes)
}

/// Shared body of create and open.
unsafe fn start_map(
    impl_: NczmImplArg,
    path: *const c_char,
    mode: c_int,
    flags: size64_t,
    mapp: *mut *mut NCZMAP,
    create: bool,
) -> Result<()> {
    // SAFETY: `path` is NULL or a NUL-terminated string (the exports' # Safety).
    let path = unsafe { required_bytes(path, "NULL dataset path") }?;
    if path.is_empty() {
        return Err(Error::Invalid("empty dataset path"));
    }
    if mapp.is_null() {
        return Err(Error::Invalid("NULL mapp"));
    }
    // SAFETY: `mapp` is not NULL, so writable (the exports' # Safety).
    unsafe { *mapp = ptr::null_mut() };
    let imp = Impl::from_raw(impl_).ok_or(Error::NotBuilt)?;
    let location = std::str::from_utf8(path).map_err(|_| Error::Url)?;
    let map = if create {
        Map::create(imp, location, mode, flags)?
    } else {
        Map::open(imp, location, mode, flags)?
    };
    let url = match malloc_string(path) {
        Ok(url) => url,
        Err(e) => {
            let _ = map.close(false);
            return Err(e);
        }
    };
    // netCDF records NC_NETCDF4 in the mode; NC_WRITE says what the map
    // really allows (set for created maps, cleared when forced read-only).
    let writable = if map.is_writable() { NC_WRITE } else { 0 };
    let mode = (mode & !NC_WRITE) | 0x1000 | writable;
    let handle = Box::into_raw(Box::new(NCZMAP {
        format: imp as c_int,
        url,
        mode,
        flags,
        api: &OBJECT_API as *const NCZMAP_API as *mut NCZMAP_API,
    }));
    OPEN_MAPS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(handle as usize, Arc::new(map));
    // SAFETY: `mapp` is not NULL, so writable (the exports' # Safety).
    unsafe { *mapp = handle };
    Ok(())
}

/// Creates a dataset and opens a map on it, writable.
///
/// `impl`: the backend. `path`: a directory path or `file:` URL (FILE), any
/// name or `mem://name` (UNDEF/MEM). `mode`: `NC_NOCLOBBER` keeps an existing
/// dataset's content; otherwise an existing dataset is emptied, and a
/// non-empty directory that holds no dataset is refused with `NC_EEXIST`.
/// `flags` bit 8 (byte-range) gives `NC_EPERM`. `parameters` is unused.
/// On success `*mapp` is a map to release with `nczmap_close` (never `free`).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `mapp` is NULL or writable.
#[export_name = "zmap_nczmap_create"]
pub unsafe extern "C" fn nczmap_create(
    impl_: NczmImplArg,
    path: *const c_char,
    mode: c_int,
    flags: size64_t,
    parameters: *mut c_void,
    mapp: *mut *mut NCZMAP,
) -> c_int {
    let _ = parameters;
    // SAFETY: `path` and `mapp` are as `start_map` needs (# Safety above).
    guard(|| unsafe { start_map(impl_, path, mode, flags, mapp, true) })
}

/// Opens a map on an existing dataset: writable with `NC_WRITE` in `mode`,
/// else read-only (every mutation then gives `NC_EPERM`). A missing dataset
/// gives `NC_EEMPTY`. Release `*mapp` with `nczmap_close`.
///
/// # Safety
/// As for `nczmap_create`.
#[export_name = "zmap_nczmap_open"]
pub unsafe extern "C" fn nczmap_open(
    impl_: NczmImplArg,
    path: *const c_char,
    mode: c_int,
    flags: size64_t,
    parameters: *mut c_void,
    mapp: *mut *mut NCZMAP,
) -> c_int {
    let _ = parameters;
    // SAFETY: `path` and `mapp` are as `start_map` needs (# Safety above).
    guard(|| unsafe { start_map(impl_, path, mode, flags, mapp, false) })
}

/// Closes a map and retires the handle, also when an error is returned.
/// With `deleteit` non-zero the dataset is deleted (and nothing outside it;
/// FILE refuses a directory that is no dataset with `NC_EPERM`, see
/// `NCZM_FILE`); otherwise everything written is made durable first. NULL: `NC_NOERR`.
/// GNZ deletes the file the map opened (a symbolic link's target, resolved
/// at open) only while its path still names that file: renamed away or
/// replaced, nothing is deleted and the answer is `NC_EEMPTY`.
/// A handle that is not open gives `NC_EBADID`.
///
/// A closed handle gives `NC_EBADID` from every function (through
/// `map->api` too) and can never act on another map until 65,536 more maps
/// have been closed: its memory is kept until then (its `url` is freed and
/// set to NULL), so no map opened meanwhile can have its address.
///
/// # Safety
/// `map` is NULL or a handle from `nczmap_create`/`nczmap_open`.
#[export_name = "zmap_nczmap_close"]
pub unsafe extern "C" fn nczmap_close(map: *mut NCZMAP, deleteit: c_int) -> c_int {
    if map.is_null() {
        return NC_NOERR;
    }
    guard(|| {
        let entry = OPEN_MAPS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(map as usize))
            .ok_or(Error::BadHandle)?;
        // SAFETY: `map` was in the table of open maps, so it is a handle
        // `start_map` made with `Box::into_raw`, and removing it from the
        // table made this call its only owner.
        retire(unsafe { Box::from_raw(map) });
        // Calls still running on other threads hold a reference: wait for them.
        let mut entry = entry;
        let map = loop {
            match Arc::try_unwrap(entry) {
                Ok(map) => break map,
                Err(shared) => {
                    entry = shared;
                    std::thread::yield_now();
                }
            }
        };
        map.close(deleteit != 0)
    })
}

/// `NC_NOERR` if `key` names an object (content, possibly empty);
/// `NC_EEMPTY` for anything else (missing, intermediate key, `/`), except
/// FILE's non-regular files at a key: `NC_EINVAL` (see `NCZM_FILE`).
///
/// # Safety
/// `map` is NULL or a handle; `key` is NULL or a NUL-terminated string.
#[export_name = "zmap_nczmap_exists"]
pub unsafe extern "C" fn nczmap_exists(map: *mut NCZMAP, key: *const c_char) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        m.exists(&key)
    })
}

/// The object's length into `*sizep` (`sizep` may be NULL); `NC_EEMPTY`
/// and `*sizep = 0` if `key` is not an object.
///
/// # Safety
/// As for `nczmap_exists`; `sizep` is NULL or writable.
#[export_name = "zmap_nczmap_len"]
pub unsafe extern "C" fn nczmap_len(
    map: *mut NCZMAP,
    key: *const c_char,
    sizep: *mut size64_t,
) -> c_int {
    // SAFETY: `sizep` is NULL or writable (# Safety above).
    unsafe { set_out(sizep, 0) };
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        let len = m.len(&key)?;
        // SAFETY: `sizep` is NULL or writable (# Safety above).
        unsafe { set_out(sizep, len) };
        Ok(())
    })
}

/// Creates an empty object (and its intermediate keys) if it does not exist;
/// an existing object is left as it is. A key that is a prefix of an object,
/// or lies below one, gives `NC_EINVAL`.
///
/// # Safety
/// As for `nczmap_exists`.
#[export_name = "zmap_nczmap_defineobj"]
pub unsafe extern "C" fn nczmap_defineobj(map: *mut NCZMAP, key: *const c_char) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        m.define(&key)
    })
}

/// Reads `count` bytes at `start` into `content` (caller's buffer of at
/// least `count` bytes). Past the end: `NC_EEDGE`, buffer untouched.
/// `count == 0`: `NC_NOERR` for an object.
///
/// # Safety
/// As for `nczmap_exists`; `content` is valid for `count` bytes of writes.
#[export_name = "zmap_nczmap_read"]
pub unsafe extern "C" fn nczmap_read(
    map: *mut NCZMAP,
    key: *const c_char,
    start: size64_t,
    count: size64_t,
    content: *mut c_void,
) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        let buf: &mut [u8] = match buffer_len(count, content.is_null())? {
            0 => &mut [],
            // SAFETY: `content` is not NULL and valid for `count` = `n`
            // bytes of writes (# Safety above).
            n => unsafe { std::slice::from_raw_parts_mut(content as *mut u8, n) },
        };
        m.read(&key, start, buf)
    })
}

/// The length of a caller's buffer of `count` bytes: 0 whatever the
/// pointer, else a count a slice can have (at most `isize::MAX`) over a
/// non-NULL pointer.
fn buffer_len(count: size64_t, null: bool) -> Result<usize> {
    match usize::try_from(count) {
        Ok(0) => Ok(0),
        Ok(n) if n <= isize::MAX as usize && !null => Ok(n),
        Ok(_) if null => Err(Error::Invalid("NULL buffer")),
        _ => Err(Error::Invalid("count too large")),
    }
}

/// Writes `count` bytes from `content` at `start`. The object is created if
/// missing, extended when the write passes its end (a gap reads as zeros),
/// never shrunk. `count == 0` changes nothing.
///
/// # Safety
/// As for `nczmap_exists`; `content` is valid for `count` bytes of reads.
#[export_name = "zmap_nczmap_write"]
pub unsafe extern "C" fn nczmap_write(
    map: *mut NCZMAP,
    key: *const c_char,
    start: size64_t,
    count: size64_t,
    content: *const c_void,
) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        let data: &[u8] = match buffer_len(count, content.is_null())? {
            0 => &[],
            // SAFETY: `content` is not NULL and valid for `count` = `n`
            // bytes of reads (# Safety above).
            n => unsafe { std::slice::from_raw_parts(content as *const u8, n) },
        };
        m.write(&key, start, data)
    })
}

/// Appends to `matches` the full keys of the immediate children of `prefix`
/// (objects and intermediate keys), sorted bytewise: the prefix as given,
/// then `/` unless it ends in one, then the name. NULL or `""` prefix: the
/// root. A leaf or a missing prefix adds nothing and returns `NC_NOERR`.
/// The strings are `malloc`ed: free them with `nclistfreeall`.
///
/// # Safety
/// As for `nczmap_exists`; `matches` is NULL or a valid list.
#[export_name = "zmap_nczmap_search"]
pub unsafe extern "C" fn nczmap_search(
    map: *mut NCZMAP,
    prefix: *const c_char,
    matches: *mut NClist,
) -> c_int {
    with_map(map, |m| {
        // SAFETY: `matches` is NULL or a valid list, `prefix` NULL or a
        // NUL-terminated string living for the call (# Safety above).
        let (matches, given) = unsafe { (matches.as_mut(), c_bytes(prefix)) };
        let matches = matches.ok_or(Error::Invalid("NULL matches list"))?;
        let given = given.unwrap_or(b"");
        // The prefix as given, then `/` unless it ends in one.
        let mut stem = Vec::with_capacity(given.len() + 1);
        stem.extend_from_slice(given);
        if given.last() != Some(&b'/') {
            stem.push(b'/');
        }
        // Straight from the backend's names into the list: each entry is
        // joined in its own malloc()ed string, no copies between.
        m.search_each(&Key::parse(given)?, &mut |name| {
            let entry = malloc_joined(&stem, name.as_bytes())?;
            // SAFETY: `matches` is a valid list; `entry` is malloc()ed here
            // and freed only if the list did not take it.
            unsafe {
                if !list::push(matches, entry as *mut c_void) {
                    libc::free(entry as *mut c_void);
                    return Err(Error::NoMem);
                }
            }
            Ok(())
        })
    })
}
