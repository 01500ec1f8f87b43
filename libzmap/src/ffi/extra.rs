//! Additions beyond the 2020 API (zmap-api.md Part A1): flush, remove,
//! truncate, compact, strerror, version. Same conventions as the seed functions.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

use super::map::{object_key, size64_t, with_map, NCZMAP};
use super::{guard_value, set_out};
use zmap_core::codes::NC_CODES;

/// Makes everything written through `map` durable (on disk or in the store)
/// before returning `NC_NOERR`. A no-op for read-only maps. What a later
/// crash keeps: GNZ, the dataset exactly as of the last successful flush;
/// FILE, every object not changed since it (see `NCZM_FILE`).
///
/// # Safety
/// `map` is NULL or a handle.
#[export_name = "zmap_nczmap_flush"]
pub unsafe extern "C" fn nczmap_flush(map: *mut NCZMAP) -> c_int {
    with_map(map, |m| m.flush())
}

/// Deletes one object. `NC_EEMPTY` if `key` is not an object.
///
/// # Safety
/// As for `nczmap_exists`.
#[export_name = "zmap_nczmap_remove"]
pub unsafe extern "C" fn nczmap_remove(map: *mut NCZMAP, key: *const c_char) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        m.remove(&key)
    })
}

/// Sets an object's length to `len`: cuts it, or extends it with zeros.
/// `NC_EEMPTY` if `key` is not an object.
///
/// # Safety
/// As for `nczmap_exists`.
#[export_name = "zmap_nczmap_truncate"]
pub unsafe extern "C" fn nczmap_truncate(
    map: *mut NCZMAP,
    key: *const c_char,
    len: size64_t,
) -> c_int {
    with_map(map, |m| {
        // SAFETY: `key` is NULL or a NUL-terminated string that lives for
        // the call (# Safety above).
        let key = unsafe { object_key(key) }?;
        m.truncate(&key, len)
    })
}

/// Rewrites the dataset without unused space, crash-safely, and reports
/// its size in bytes before and after (`before`/`after` may be NULL).
///
/// GNZ: moves objects into the holes left by removed, grown or rewritten
/// objects and cuts the file; two commits, each as safe as `nczmap_flush`
/// (uncommitted writes are committed first). While read-only maps of the
/// file are open their snapshots stay intact: objects move into space none
/// of them sees, and the space their snapshots hold comes back at the first
/// commit or flush after they closed (`after` is the size now).
/// Other backends have nothing to compact: `NC_NOERR` with
/// `*before == *after == 0`. A read-only map gives `NC_EPERM`. On error
/// both sizes are 0.
///
/// # Safety
/// `map` is NULL or a handle; `before` and `after` are NULL or writable.
#[export_name = "zmap_nczmap_compact"]
pub unsafe extern "C" fn nczmap_compact(
    map: *mut NCZMAP,
    before: *mut size64_t,
    after: *mut size64_t,
) -> c_int {
    // SAFETY: `before` and `after` are NULL or writable (# Safety above).
    unsafe {
        set_out(before, 0);
        set_out(after, 0);
    }
    with_map(map, |m| {
        let (b, a) = m.compact()?;
        // SAFETY: `before` and `after` are NULL or writable (# Safety above).
        unsafe {
            set_out(before, b);
            set_out(after, a);
        }
        Ok(())
    })
}

/// A static, NUL-terminated message for an NC status code (never freed).
#[export_name = "zmap_nczmap_strerror"]
pub extern "C" fn nczmap_strerror(code: c_int) -> *const c_char {
    static MESSAGES: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    static UNKNOWN: &[u8] = b"NetCDF: Unknown error\0";
    guard_value(UNKNOWN.as_ptr() as *const c_char, || {
        let messages = MESSAGES.get_or_init(|| {
            NC_CODES
                .iter()
                .filter_map(|&(_, value, msg)| Some((value, CString::new(msg).ok()?)))
                .collect()
        });
        messages
            .iter()
            .find(|(value, _)| *value == code)
            .map_or(UNKNOWN.as_ptr() as *const c_char, |(_, msg)| msg.as_ptr())
    })
}

/// The library version, e.g. `"0.1.0"` (static, never freed).
#[export_name = "zmap_nczmap_version"]
pub extern "C" fn nczmap_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}
