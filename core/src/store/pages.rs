//! Memory for the large parts of an open dataset (a MEM dataset's blocks of
//! object bytes, the key tree's hash table): anonymous mappings asked for
//! transparent huge pages, with a few freed 2 MiB mappings kept for reuse.
//!
//! Why: a dataset of 10,000 objects of 1 KiB touches about 12 MiB. In
//! 4 KiB pages each first write is a page fault, about 2 µs on a virtual
//! machine: more than the rest of a MEM create. With huge pages (`madvise`;
//! ignored where the system does not offer them) it is one fault per 2 MiB,
//! and a 2 MiB mapping given back by a closed dataset is reused by the next
//! one without any fault. Kept mappings stay resident: marked `MADV_FREE`,
//! their pages were taken back by the kernel's background reclaim often
//! enough (on a virtual machine, between two datasets) that every reuse
//! faulted and cleared 2 MiB again, which made a GNZ create up to five
//! times slower in some processes. At most `KEPT_MAX` are kept (32 MiB:
//! a GNZ writer's queued stages and index with a MEM dataset's blocks).
//!
//! `HugePages` is the same as an allocator (for hashbrown's table):
//! requests from 256 KiB up are mappings rounded up to whole 2 MiB (under
//! 2 MiB extra a table, for tables of a few thousand keys or more), smaller
//! ones go to the global allocator.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Mutex;

use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};

pub const HUGE_PAGE: usize = 2 << 20;
/// Allocator requests from this size up are mapped.
const MAPPED_MIN: usize = 256 << 10;
/// Freed 2 MiB mappings kept for reuse (32 MiB at most).
const KEPT_MAX: usize = 16;

/// Start addresses of kept 2 MiB mappings.
static KEPT: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn kept() -> std::sync::MutexGuard<'static, Vec<usize>> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Maps `len` bytes (`len > 0`). Gives the start and whether the memory is
/// fresh (zeros) rather than a kept mapping's old bytes.
fn map(len: usize) -> Result<(NonNull<u8>, bool), AllocError> {
    if len == HUGE_PAGE {
        if let Some(at) = kept().pop() {
            return Ok((NonNull::new(at as *mut u8).ok_or(AllocError)?, false));
        }
    }
    // SAFETY: a new private anonymous mapping at an address of the kernel's
    // choosing: no existing memory is affected.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(AllocError);
    }
    if len >= HUGE_PAGE {
        // SAFETY: `at..at + len` is the mapping just made; advice changes
        // how it is backed, not its contents. Its failure is harmless.
        unsafe { libc::madvise(at, len, libc::MADV_HUGEPAGE) };
    }
    Ok((NonNull::new(at.cast::<u8>()).ok_or(AllocError)?, true))
}

/// Gives back a mapping `map(len)` made.
///
/// # Safety
/// `start` and `len` are a mapping from `map`, no longer used by anyone.
unsafe fn unmap(start: NonNull<u8>, len: usize) {
    if len == HUGE_PAGE {
        let mut kept = kept();
        if kept.len() < KEPT_MAX {
            kept.push(start.as_ptr() as usize);
            return;
        }
    }
    // SAFETY: as the caller promises: the mapping is ours and unused.
    unsafe { libc::munmap(start.as_ptr().cast(), len) };
}

/// An anonymous mapping owned by one value; its bytes are initialised
/// (zeros, or what an earlier owner wrote) but otherwise unspecified.
pub struct Mapping {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` owns its memory exclusively, like a `Box<[u8]>`.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads through `&[u8]`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `len` bytes (`len > 0`); 2 MiB and larger in huge pages.
    pub fn new(len: usize) -> Result<Mapping, AllocError> {
        if len == 0 {
            return Err(AllocError);
        }
        let (start, _) = map(len)?;
        Ok(Mapping { start, len })
    }
}

impl Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `start..start + len` is mapped, readable, initialised (an
        // anonymous mapping reads as zeros until written) and owned by
        // `self` for as long as the borrow lasts.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for Mapping {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `map(self.len)` and nobody holds a
        // borrow of it any more.
        unsafe { unmap(self.start, self.len) }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct HugePages;

/// A vector in `HugePages`: from 256 KiB up (a large commit's sort keys)
/// its memory is a kept mapping instead of fresh memory.
pub type PageVec<T> = allocator_api2::vec::Vec<T, HugePages>;

/// The length of the mapping for `layout`, or `None` for the global
/// allocator (small, or aligned beyond what `mmap` gives).
fn mapped_len(layout: Layout) -> Option<usize> {
    if layout.size() < MAPPED_MIN || layout.align() > 4096 {
        return None;
    }
    layout.size().checked_next_multiple_of(HUGE_PAGE)
}

// SAFETY: memory is valid until `deallocate` gives it back, nothing but
// `deallocate` moves or frees it, and `deallocate` recomputes the mapping's
// length from the layout (the one that allocated it, or one that fits the
// returned length: both round up to the same whole 2 MiB).
unsafe impl Allocator for HugePages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let Some(len) = mapped_len(layout) else {
            return Global.allocate(layout);
        };
        let (start, _) = map(len)?;
        Ok(NonNull::slice_from_raw_parts(start, layout.size()))
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let Some(len) = mapped_len(layout) else {
            return Global.allocate_zeroed(layout);
        };
        let (start, fresh) = map(len)?;
        if !fresh {
            // SAFETY: `start` is `len >= layout.size()` writable bytes that
            // nobody else uses.
            unsafe { start.as_ptr().write_bytes(0, layout.size()) };
        }
        Ok(NonNull::slice_from_raw_parts(start, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        match mapped_len(layout) {
            // SAFETY: the caller gives a pointer this allocator returned for
            // `layout`, which `allocate` mapped with exactly this length.
            Some(len) => unsafe { unmap(ptr, len) },
            // SAFETY: as above; small layouts came from `Global`.
            None => unsafe { Global.deallocate(ptr, layout) },
        }
    }

    /// In place while the larger size still fits the same mapping (a
    /// vector doubling from 512 KiB to 1 MiB keeps its 2 MiB): no copy, no
    /// second mapping. Otherwise a new block and a copy, as by default.
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let same_mapping =
            mapped_len(old_layout).is_some() && mapped_len(old_layout) == mapped_len(new_layout);
        if same_mapping {
            // The mapping already holds `new_layout.size()` bytes, its start
            // is page-aligned (a mapped layout's alignment is at most a
            // page), and `deallocate` with `new_layout` unmaps the same length.
            return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
        }
        let new = self.allocate(new_layout)?;
        // SAFETY: `ptr` holds `old_layout.size()` bytes (the caller's
        // promise), `new` at least as many (`new_layout` is not smaller), and
        // the two blocks are distinct allocations; `ptr` is freed once, here.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                new.cast::<u8>().as_ptr(),
                old_layout.size(),
            );
            self.deallocate(ptr, old_layout);
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_hold_their_bytes_and_zeroed_ones_are_zero_after_reuse() {
        for _ in 0..3 {
            for size in [
                16,
                4096,
                MAPPED_MIN - 1,
                MAPPED_MIN,
                HUGE_PAGE,
                3 * HUGE_PAGE + 5,
            ] {
                let layout = Layout::from_size_align(size, 16).unwrap();
                let block = HugePages.allocate_zeroed(layout).unwrap();
                let start = block.cast::<u8>().as_ptr();
                // SAFETY: `block` is `size` bytes just allocated, not shared.
                let bytes = unsafe { std::slice::from_raw_parts_mut(start, size) };
                assert!(bytes.iter().all(|&b| b == 0), "size {size}");
                // Dirty it, so that a kept mapping comes back dirty.
                bytes.fill(0xa5);
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { HugePages.deallocate(block.cast(), layout) };
            }
        }
    }

    #[test]
    fn growth_within_a_mapping_stays_in_place_and_keeps_the_bytes() {
        let mut v: PageVec<u64> = PageVec::new_in(HugePages);
        let mut starts = Vec::new();
        for i in 0..600_000u64 {
            if v.len() == v.capacity() {
                starts.push((v.capacity(), v.as_ptr() as usize));
            }
            v.push(i);
        }
        assert!(v.iter().copied().eq(0..600_000));
        // 32,768 u64s (256 KiB) up to 262,144 (2 MiB) are one mapping.
        let mapped: Vec<usize> = starts
            .iter()
            .filter(|(cap, _)| (MAPPED_MIN / 8..HUGE_PAGE / 8).contains(cap))
            .map(|&(_, at)| at)
            .collect();
        assert!(mapped.len() >= 3, "{starts:?}");
        assert!(mapped.windows(2).all(|w| w[0] == w[1]), "{starts:?}");
        // Past 2 MiB it moves to a larger mapping.
        assert_ne!(v.as_ptr() as usize, mapped[0]);
    }

    #[test]
    fn mappings_are_kept_up_to_the_limit() {
        let many: Vec<Mapping> = (0..KEPT_MAX + 4)
            .map(|_| Mapping::new(HUGE_PAGE).unwrap())
            .collect();
        drop(many);
        assert!(kept().len() <= KEPT_MAX);
        let mut m = Mapping::new(HUGE_PAGE).unwrap();
        m[HUGE_PAGE - 1] = 7;
        assert_eq!(m[HUGE_PAGE - 1], 7);
        assert!(Mapping::new(0).is_err());
    }
}
