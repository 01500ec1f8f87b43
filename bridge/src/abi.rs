//! netCDF 4.9's zmap types (libnczarr/zmap.h of v4.9.0 and v4.9.3), as laid
//! out in memory, and the one `NClist` operation the bridge needs.

use std::ffi::{c_char, c_int, c_void};

/// `NCZM_IMPL` numbers of netCDF 4.9 (not the 2020 ones of zmap.h).
pub const NCZM_UNDEF: c_int = 0;
pub const NCZM_FILE: c_int = 1;
pub const NCZM_ZIP: c_int = 2;
pub const NCZM_S3: c_int = 3;

/// `NCZM_FEATURES` bit: the implementation is not there.
pub const NCZM_UNIMPLEMENTED: u64 = 1;

/// netcdf.h mode bits.
pub const NC_WRITE: c_int = 0x0001;
pub const NC_NETCDF4: c_int = 0x1000;

/// `struct NCZMAP`: identical in 4.9.0 and 4.9.3.
#[repr(C)]
pub struct NcZmap {
    pub format: c_int,
    pub url: *mut c_char,
    pub mode: c_int,
    pub flags: u64,
    pub api: *const NcZmapApi,
}

/// `write` in the table: the raw registers of either generation (4.9.0:
/// key, start, count, content; 4.9.3: key, count, content), decoded by the
/// map's generation (`exports::nczmap_write`).
pub type RawWrite = unsafe extern "C" fn(*mut NcZmap, *const c_char, u64, u64, usize) -> c_int;

/// `struct NCZMAP_API`: identical in both generations except `write`.
#[repr(C)]
pub struct NcZmapApi {
    pub version: c_int,
    pub close: unsafe extern "C" fn(*mut NcZmap, c_int) -> c_int,
    pub exists: unsafe extern "C" fn(*mut NcZmap, *const c_char) -> c_int,
    pub len: unsafe extern "C" fn(*mut NcZmap, *const c_char, *mut u64) -> c_int,
    pub read: unsafe extern "C" fn(*mut NcZmap, *const c_char, u64, u64, *mut c_void) -> c_int,
    pub write: RawWrite,
    pub search: unsafe extern "C" fn(*mut NcZmap, *const c_char, *mut NcList) -> c_int,
}

/// netCDF's `NClist` (include/nclist.h, unchanged since 4.6).
#[repr(C)]
pub struct NcList {
    pub alloc: usize,
    pub length: usize,
    pub content: *mut *mut c_void,
}

/// Appends a malloc'ed copy of `name` to `list`, growing it as `nclistpush`
/// does (with realloc, so netCDF frees it with its own `nclistfreeall`).
///
/// # Safety
/// `list` points to a valid `NClist` whose `content` came from malloc.
pub unsafe fn list_push_copy(list: *mut NcList, name: &str) -> bool {
    // SAFETY: `list` points to a valid `NClist` (# Safety above).
    let list = unsafe { &mut *list };
    if list.length >= list.alloc || list.content.is_null() {
        let alloc = if list.alloc == 0 {
            16
        } else {
            list.alloc.saturating_mul(2)
        };
        let bytes = match alloc.checked_mul(std::mem::size_of::<*mut c_void>()) {
            Some(b) => b,
            None => return false,
        };
        // SAFETY: content is NULL or malloc'ed (the list's contract).
        let grown = unsafe { libc::realloc(list.content.cast(), bytes) }.cast::<*mut c_void>();
        if grown.is_null() {
            return false;
        }
        list.content = grown;
        list.alloc = alloc;
    }
    // SAFETY: malloc of len+1 bytes, filled with the name and its NUL;
    // the slot at `length` < `alloc` is inside the list's storage.
    unsafe {
        let copy = libc::malloc(name.len() + 1).cast::<u8>();
        if copy.is_null() {
            return false;
        }
        std::ptr::copy_nonoverlapping(name.as_ptr(), copy, name.len());
        *copy.add(name.len()) = 0;
        *list.content.add(list.length) = copy.cast();
    }
    list.length += 1;
    true
}

/// A malloc'ed NUL-terminated copy of `text` (NULL on failure).
pub fn c_string_copy(text: &str) -> *mut c_char {
    // SAFETY: malloc of len+1 bytes, filled before it is returned.
    unsafe {
        let copy = libc::malloc(text.len() + 1).cast::<u8>();
        if !copy.is_null() {
            std::ptr::copy_nonoverlapping(text.as_ptr(), copy, text.len());
            *copy.add(text.len()) = 0;
        }
        copy.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_netcdfs() {
        // x86_64/aarch64 LP64: int(4)+pad, char*, int(4)+pad, size64_t, api*.
        assert_eq!(std::mem::size_of::<NcZmap>(), 40);
        assert_eq!(std::mem::offset_of!(NcZmap, api), 32);
        assert_eq!(std::mem::size_of::<NcZmapApi>(), 56);
        assert_eq!(std::mem::size_of::<NcList>(), 24);
    }

    #[test]
    fn push_grows_the_list() {
        let mut list = NcList {
            alloc: 0,
            length: 0,
            content: std::ptr::null_mut(),
        };
        for i in 0..40 {
            // SAFETY: a list built here, content NULL or realloc'ed.
            assert!(unsafe { list_push_copy(&mut list, &format!("n{i}")) });
        }
        assert_eq!(list.length, 40);
        // SAFETY: every entry was malloc'ed by list_push_copy.
        unsafe {
            let first = std::ffi::CStr::from_ptr((*list.content).cast());
            assert_eq!(first.to_str().unwrap(), "n0");
            for i in 0..list.length {
                libc::free(*list.content.add(i));
            }
            libc::free(list.content.cast());
        }
    }
}
