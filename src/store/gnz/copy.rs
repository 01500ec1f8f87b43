//! Copying large reads out of a read-only map's file mapping.
//!
//! A freshly mapped file costs a minor page fault per few pages on first
//! touch (tmpfs maps 4 KiB pages; fault-around maps 64 KiB per fault), so
//! one thread copying out of the mapping runs at ~0.75× of a heap `memcpy`
//! on tmpfs. The faults are per page and independent, so a large copy is
//! split over a few threads: the faults and the copying of the parts
//! overlap, and a 16 MiB read runs at or above heap `memcpy` speed on two
//! cores (the same idea as Arrow's parallel memcopy for large buffers).

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::thread;

/// Copies at or above this size are split over threads; below it the
/// cost of starting a thread (~20–50 µs) is not repaid.
pub const PARALLEL_FROM: usize = 4 << 20;

/// Each thread copies at least this much.
const MIN_PART: usize = 2 << 20;

/// Never more threads than this for one copy (memory bandwidth, not
/// cores, is the limit beyond a few).
const MAX_THREADS: usize = 4;

/// Copies `src` into `dst` (same lengths), in parallel when it is large.
/// A thread that cannot be started leaves its part to the calling thread.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    let threads = threads_for(dst.len());
    if threads <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    // Whole pages per part, so no two threads touch the same page.
    let part = dst.len().div_ceil(threads).next_multiple_of(4096);
    let not_started = thread::scope(|scope| {
        let mut parts = dst.chunks_mut(part).zip(src.chunks(part)).enumerate();
        // The calling thread copies the first part itself.
        let first = parts.next();
        let mut not_started = Vec::new();
        for (i, (d, s)) in parts {
            let spawned = thread::Builder::new()
                .name("zmap-gnz-copy".into())
                .spawn_scoped(scope, || d.copy_from_slice(s));
            if spawned.is_err() {
                not_started.push(i);
            }
        }
        if let Some((_, (d, s))) = first {
            d.copy_from_slice(s);
        }
        not_started
    });
    for i in not_started {
        let range = i * part..((i + 1) * part).min(dst.len());
        dst[range.clone()].copy_from_slice(&src[range]);
    }
}

/// How many threads copy `len` bytes: 1 below `PARALLEL_FROM`, else one
/// per `MIN_PART`, at most the machine's parallelism and `MAX_THREADS`.
fn threads_for(len: usize) -> usize {
    if len < PARALLEL_FROM {
        return 1;
    }
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| {
        thread::available_parallelism()
            .map(NonZeroUsize::get)
            .unwrap_or(1)
    });
    (len / MIN_PART).clamp(1, cores.min(MAX_THREADS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_byte_at_every_size_class() {
        for len in [
            0,
            1,
            4095,
            PARALLEL_FROM - 1,
            PARALLEL_FROM,
            16 << 20,
            (9 << 20) + 7,
        ] {
            let src: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut dst = vec![0u8; len];
            copy(&mut dst, &src);
            assert!(dst == src, "len {len}");
        }
    }

    #[test]
    fn small_copies_stay_on_the_calling_thread() {
        assert_eq!(threads_for(PARALLEL_FROM - 1), 1);
        assert!(threads_for(64 << 20) <= MAX_THREADS);
        assert!(threads_for(PARALLEL_FROM) >= 1);
    }
}
