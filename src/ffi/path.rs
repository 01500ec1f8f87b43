//! `nczm_*` path utilities (seed header), over `crate::paths`.

use std::os::raw::{c_int, c_void};
use std::ptr;

use super::guard;
use super::map::NCZMAP;

/// Frees `map->url` and sets it to NULL, leaving the map itself alone (the
/// seed's helper for backends' close functions). NULL map: `NC_NOERR`.
///
/// # Safety
/// `map` is NULL, an open handle, or a caller-built `NCZMAP` whose `url` is
/// NULL or `malloc`ed.
#[no_mangle]
pub unsafe extern "C" fn nczm_clear(map: *mut NCZMAP) -> c_int {
    guard(|| {
        if let Some(map) = map.as_mut() {
            libc::free(map.url as *mut c_void);
            map.url = ptr::null_mut();
        }
        Ok(())
    })
}
