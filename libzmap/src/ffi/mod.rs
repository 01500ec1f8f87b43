//! The C boundary: libzmap's only `unsafe` (the core's own is in its GNZ
//! locks and write-back, its S3 client and its NC4 bindings).
//!
//! Every export runs its body inside `guard`, which turns a Rust `Result`
//! into an NC status and a panic into `NC_EINTERNAL`, so no unwind ever
//! crosses into C, and no panic message reaches the host's stderr. Pointers are checked here; past this module, the code
//! works on validated Rust values only.

// Declaration order is the header's order: the seed API, the additions,
// then the NClist functions.
pub mod extra;
pub mod list;
pub mod map;
pub mod path;

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use zmap_core::codes::{NC_EINTERNAL, NC_NOERR};
use zmap_core::error::{Error, Result};

/// Runs `body`, mapping its outcome to an NC status code (a panic is
/// `NC_EINTERNAL`, and prints nothing). Public for tests/no_output.rs.
#[doc(hidden)]
pub fn guard(body: impl FnOnce() -> Result<()>) -> c_int {
    match zmap_core::quiet::catch(body) {
        Ok(Ok(())) => NC_NOERR,
        Ok(Err(e)) => e.code(),
        Err(_) => NC_EINTERNAL,
    }
}

/// Runs `body` for a value-returning export; a panic gives `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    zmap_core::quiet::catch(body).unwrap_or(fallback)
}

/// The bytes of a NUL-terminated C string; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: not NULL, and the caller promises a NUL-terminated string
        // that outlives 'a.
        Some(unsafe { CStr::from_ptr(ptr) }.to_bytes())
    }
}

/// Like `c_bytes`, but NULL is `NC_EINVAL`.
///
/// # Safety
/// As for `c_bytes`.
pub(crate) unsafe fn required_bytes<'a>(
    ptr: *const c_char,
    what: &'static str,
) -> Result<&'a [u8]> {
    // SAFETY: the caller makes `c_bytes`'s promise about `ptr`.
    unsafe { c_bytes(ptr) }.ok_or(Error::Invalid(what))
}

/// A `malloc`ed, NUL-terminated copy of `bytes`, for C to `free`.
pub(crate) fn malloc_string(bytes: &[u8]) -> Result<*mut c_char> {
    malloc_joined(bytes, b"")
}

/// A `malloc`ed, NUL-terminated copy of `head` followed by `tail`, for C to
/// `free`: search's entries are built in place, not copied twice.
pub(crate) fn malloc_joined(head: &[u8], tail: &[u8]) -> Result<*mut c_char> {
    let len = head.len() + tail.len();
    // SAFETY: we allocate len+1 bytes and write exactly that many: `head`
    // at 0, `tail` right after it, the NUL at `len`.
    unsafe {
        let ptr = libc::malloc(len + 1) as *mut u8;
        if ptr.is_null() {
            return Err(Error::NoMem);
        }
        std::ptr::copy_nonoverlapping(head.as_ptr(), ptr, head.len());
        std::ptr::copy_nonoverlapping(tail.as_ptr(), ptr.add(head.len()), tail.len());
        *ptr.add(len) = 0;
        Ok(ptr as *mut c_char)
    }
}

/// Stores `value` through `out` when `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn set_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: not NULL, and the caller promises it is valid for a write.
        unsafe { out.write(value) };
    }
}
