//! `NClist`: netCDF's growable array of `void*` (Part B §7), laid out as
//! netCDF lays it out, with its storage in C's heap so that C code may
//! `free` what it extracts and `nclistfreeall` may `free` the elements.

use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

const DEFAULT_ALLOC: usize = 16;

/// A list of `void*`. `nclistlength(l)` reads `length` directly.
#[repr(C)]
pub struct NClist {
    pub alloc: usize,
    pub length: usize,
    pub content: *mut *mut c_void,
}

/// Grows the storage to hold `size` elements; 0 means "double, or 16".
///
/// # Safety
/// `l` points to a valid list.
unsafe fn set_alloc(l: &mut NClist, size: usize) -> bool {
    let size = if size == 0 {
        if l.length > 0 {
            l.length.saturating_mul(2)
        } else {
            DEFAULT_ALLOC
        }
    } else {
        size
    };
    if l.alloc >= size {
        return true;
    }
    let Some(bytes) = size.checked_mul(std::mem::size_of::<*mut c_void>()) else {
        return false;
    };
    // SAFETY: `content` is NULL or the list's own realloc()ed storage.
    let grown = unsafe { libc::realloc(l.content as *mut c_void, bytes) } as *mut *mut c_void;
    if grown.is_null() {
        return false;
    }
    // SAFETY: the new storage holds `size` > `alloc` slots; the slots from
    // `alloc` on are the new ones.
    unsafe { ptr::write_bytes(grown.add(l.alloc), 0, size - l.alloc) };
    l.content = grown;
    l.alloc = size;
    true
}

/// Sets the length, zeroing new slots.
///
/// # Safety
/// `l` points to a valid list.
unsafe fn set_length(l: &mut NClist, length: usize) -> bool {
    // SAFETY: `l` is a valid list (# Safety above).
    if length > l.alloc && !unsafe { set_alloc(l, length) } {
        return false;
    }
    if length > l.length {
        // SAFETY: the storage holds `alloc` >= `length` slots.
        unsafe { ptr::write_bytes(l.content.add(l.length), 0, length - l.length) };
    }
    l.length = length;
    true
}

/// Appends `elem` (the internal form of `nclistpush`).
///
/// # Safety
/// `l` points to a valid list.
pub(crate) unsafe fn push(l: &mut NClist, elem: *mut c_void) -> bool {
    // SAFETY: `l` is a valid list (# Safety above).
    if l.length >= l.alloc && !unsafe { set_alloc(l, 0) } {
        return false;
    }
    // SAFETY: `length` < `alloc`: the slot is inside the storage.
    unsafe { *l.content.add(l.length) = elem };
    l.length += 1;
    true
}

/// The list behind `l`, `None` for NULL.
///
/// # Safety
/// `l` is NULL or points to a valid list that outlives `'a`, used through
/// nothing else meanwhile.
unsafe fn list<'a>(l: *mut NClist) -> Option<&'a mut NClist> {
    // SAFETY: the caller's promise (# Safety above).
    unsafe { l.as_mut() }
}

/// The elements as a slice (empty for NULL or empty lists).
///
/// # Safety
/// `l` is a valid list: `content` holds `length` initialised slots.
unsafe fn elements(l: &NClist) -> &[*mut c_void] {
    if l.content.is_null() || l.length == 0 {
        &[]
    } else {
        // SAFETY: `content` holds `length` slots (# Safety above).
        unsafe { std::slice::from_raw_parts(l.content, l.length) }
    }
}

/// A new empty list, or NULL when out of memory. Free it with `nclistfree`
/// or, to also `free()` its elements, `nclistfreeall`.
#[export_name = "zmap_nclistnew"]
pub extern "C" fn nclistnew() -> *mut NClist {
    // SAFETY: calloc gives a zeroed NClist: alloc 0, length 0, content NULL.
    unsafe { libc::calloc(1, std::mem::size_of::<NClist>()) as *mut NClist }
}

/// Frees the list and its storage, not the elements. NULL is fine. Returns 1.
///
/// # Safety
/// `l` is NULL or a list from `nclistnew`/`nclistclone`.
#[export_name = "zmap_nclistfree"]
pub unsafe extern "C" fn nclistfree(l: *mut NClist) -> c_int {
    // SAFETY: `l` is NULL or a list from `nclistnew`/`nclistclone` (# Safety
    // above): its storage and itself are calloc()/realloc()ed, freed here once.
    unsafe {
        if let Some(list) = list(l) {
            libc::free(list.content as *mut c_void);
            libc::free(l as *mut c_void);
        }
    }
    1
}

/// Frees every non-NULL element with `free()`, then the list. Returns 1.
///
/// # Safety
/// As for `nclistfree`; every element is NULL or from `malloc`.
#[export_name = "zmap_nclistfreeall"]
pub unsafe extern "C" fn nclistfreeall(l: *mut NClist) -> c_int {
    // SAFETY: `l` is NULL or a list from `nclistnew`/`nclistclone` whose
    // elements are NULL or malloc()ed (# Safety above).
    unsafe {
        if let Some(list) = list(l) {
            for &elem in elements(list) {
                libc::free(elem);
            }
        }
        nclistfree(l)
    }
}

/// Ensures room for `size` elements (0: double). 1 on success, 0 on failure.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistsetalloc"]
pub unsafe extern "C" fn nclistsetalloc(l: *mut NClist, size: usize) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).is_some_and(|l| set_alloc(l, size)) as c_int }
}

/// Sets the length; new slots are NULL. 1 on success, 0 on failure.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistsetlength"]
pub unsafe extern "C" fn nclistsetlength(l: *mut NClist, length: usize) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).is_some_and(|l| set_length(l, length)) as c_int }
}

/// Element `index`, or NULL if out of range.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistget"]
pub unsafe extern "C" fn nclistget(l: *mut NClist, index: usize) -> *mut c_void {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).and_then(|l| elements(l).get(index).copied()) }.unwrap_or(ptr::null_mut())
}

/// Overwrites element `index`, growing the list (new slots NULL). 1 or 0.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistset"]
pub unsafe extern "C" fn nclistset(l: *mut NClist, index: usize, elem: *mut c_void) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    let Some(l) = (unsafe { list(l) }) else {
        return 0;
    };
    let Some(needed) = index.checked_add(1) else {
        return 0;
    };
    // SAFETY: `l` is a valid list.
    if needed > l.length && !unsafe { set_length(l, needed) } {
        return 0;
    }
    // SAFETY: `index` < `length` <= `alloc`: inside the storage.
    unsafe { *l.content.add(index) = elem };
    1
}

/// Inserts `elem` before position `index` (`index` ≤ length). 1 or 0.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistinsert"]
pub unsafe extern "C" fn nclistinsert(l: *mut NClist, index: usize, elem: *mut c_void) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    let Some(l) = (unsafe { list(l) }) else {
        return 0;
    };
    // SAFETY: `l` is a valid list.
    if index > l.length || (l.length >= l.alloc && !unsafe { set_alloc(l, 0) }) {
        return 0;
    }
    // SAFETY: `index` <= `length` < `alloc`: the slots `index..=length` are
    // inside the storage, and `ptr::copy` allows the overlap.
    unsafe {
        ptr::copy(
            l.content.add(index),
            l.content.add(index + 1),
            l.length - index,
        );
        *l.content.add(index) = elem;
    }
    l.length += 1;
    1
}

/// Appends `elem`. 1, or 0 for a NULL list or no memory.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistpush"]
pub unsafe extern "C" fn nclistpush(l: *mut NClist, elem: *mut c_void) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).is_some_and(|l| push(l, elem)) as c_int }
}

/// Removes and returns the last element (NULL if empty).
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistpop"]
pub unsafe extern "C" fn nclistpop(l: *mut NClist) -> *mut c_void {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    match unsafe { list(l) } {
        Some(l) if l.length > 0 => {
            l.length -= 1;
            // SAFETY: the old last slot, inside the storage.
            unsafe { *l.content.add(l.length) }
        }
        _ => ptr::null_mut(),
    }
}

/// The last element (NULL if empty).
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclisttop"]
pub unsafe extern "C" fn nclisttop(l: *mut NClist) -> *mut c_void {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).and_then(|l| elements(l).last().copied()) }.unwrap_or(ptr::null_mut())
}

/// Removes element `index` and returns it (NULL if out of range).
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistremove"]
pub unsafe extern "C" fn nclistremove(l: *mut NClist, index: usize) -> *mut c_void {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    let Some(l) = (unsafe { list(l) }) else {
        return ptr::null_mut();
    };
    if index >= l.length {
        return ptr::null_mut();
    }
    // SAFETY: `index` < `length`: the slots `index..length` are inside the
    // storage, and `ptr::copy` allows the overlap.
    let elem = unsafe {
        let elem = *l.content.add(index);
        ptr::copy(
            l.content.add(index + 1),
            l.content.add(index),
            l.length - index - 1,
        );
        elem
    };
    l.length -= 1;
    elem
}

/// 1 if `elem` (by pointer) is in the list.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistcontains"]
pub unsafe extern "C" fn nclistcontains(l: *mut NClist, elem: *mut c_void) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe { list(l).is_some_and(|l| elements(l).contains(&elem)) as c_int }
}

/// 1 if a string equal to `elem` is in the list (of strings).
///
/// # Safety
/// `l` is NULL or a list of NUL-terminated strings (NULL elements allowed).
#[export_name = "zmap_nclistmatch"]
pub unsafe extern "C" fn nclistmatch(
    l: *mut NClist,
    elem: *const c_char,
    casesensitive: c_int,
) -> c_int {
    // SAFETY: `l` is NULL or a valid list of NULL or NUL-terminated strings,
    // `elem` NULL or a NUL-terminated string (# Safety above).
    unsafe {
        let (Some(l), Some(wanted)) = (list(l), super::c_bytes(elem)) else {
            return 0;
        };
        elements(l).iter().any(
            |&candidate| match super::c_bytes(candidate as *const c_char) {
                Some(c) if casesensitive != 0 => c == wanted,
                Some(c) => c.eq_ignore_ascii_case(wanted),
                None => false,
            },
        ) as c_int
    }
}

/// Removes the first occurrence of `elem` (by pointer). 1 if found.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistelemremove"]
pub unsafe extern "C" fn nclistelemremove(l: *mut NClist, elem: *mut c_void) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    unsafe {
        let Some(position) = list(l).and_then(|l| elements(l).iter().position(|&e| e == elem))
        else {
            return 0;
        };
        nclistremove(l, position);
    }
    1
}

/// Removes later duplicates (by pointer), keeping first occurrences. Returns 1.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistunique"]
pub unsafe extern "C" fn nclistunique(l: *mut NClist) -> c_int {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    if let Some(l) = unsafe { list(l) } {
        let mut kept = 0;
        for i in 0..l.length {
            // SAFETY: `kept` <= `i` < `length`: every slot read or written
            // is inside the storage.
            unsafe {
                let elem = *l.content.add(i);
                let seen = std::slice::from_raw_parts(l.content, kept).contains(&elem);
                if !seen {
                    *l.content.add(kept) = elem;
                    kept += 1;
                }
            }
        }
        l.length = kept;
    }
    1
}

/// A copy of the list, with a NULL slot after the last element. `deep`:
/// the elements are `strdup`ed strings (free with `nclistfreeall`).
/// NULL for a NULL list or no memory.
///
/// # Safety
/// `l` is NULL or a valid list (of strings when `deep`).
#[export_name = "zmap_nclistclone"]
pub unsafe extern "C" fn nclistclone(l: *mut NClist, deep: c_int) -> *mut NClist {
    // SAFETY: `l` is NULL or a valid list, of NUL-terminated strings when
    // `deep` (# Safety above); `clone` is the new list, ours alone, and its
    // storage holds `length + 1` slots, so the closing NULL slot is inside.
    unsafe {
        let Some(source) = list(l) else {
            return ptr::null_mut();
        };
        let clone = nclistnew();
        let Some(c) = list(clone) else {
            return ptr::null_mut();
        };
        if !set_alloc(c, source.length + 1) {
            nclistfree(clone);
            return ptr::null_mut();
        }
        for &elem in elements(source) {
            let copy = if deep != 0 && !elem.is_null() {
                let dup = libc::strdup(elem as *const c_char) as *mut c_void;
                if dup.is_null() {
                    nclistfreeall(clone);
                    return ptr::null_mut();
                }
                dup
            } else {
                elem
            };
            push(c, copy);
        }
        *c.content.add(c.length) = ptr::null_mut();
        clone
    }
}

/// Takes the storage array out (caller `free`s it); the list becomes empty.
///
/// # Safety
/// `l` is NULL or a valid list.
#[export_name = "zmap_nclistextract"]
pub unsafe extern "C" fn nclistextract(l: *mut NClist) -> *mut c_void {
    // SAFETY: `l` is NULL or a valid list (# Safety above).
    let Some(l) = (unsafe { list(l) }) else {
        return ptr::null_mut();
    };
    let content = l.content;
    l.content = ptr::null_mut();
    l.alloc = 0;
    l.length = 0;
    content as *mut c_void
}

/// 1 if `e` is NULL.
#[export_name = "zmap_nclistnull"]
pub extern "C" fn nclistnull(e: *mut c_void) -> c_int {
    e.is_null() as c_int
}
