//! Large reads: out of a read-only map's file mapping, or by `pread`.
//!
//! A freshly mapped file costs a minor page fault per few pages on first
//! touch (tmpfs maps 4 KiB pages; fault-around maps 64 KiB per fault), so
//! one thread copying out of the mapping runs at ~0.75× of a heap `memcpy`
//! on tmpfs (`pread` from tmpfs ~0.7×, from the page cache of a disk file
//! ~0.95×). The faults are per page and independent, so a large copy is
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
pub fn copy(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    let done: Result<(), ()> = fill(dst, |part, at| {
        part.copy_from_slice(&src[at..at + part.len()]);
        Ok(())
    });
    debug_assert!(done.is_ok());
}

/// Fills `dst` by calling `each(part, at)` for consecutive parts of it
/// (`at`: the part's offset in `dst`), on several threads when `dst` is
/// large; the first error wins. A thread that cannot be started leaves its
/// part to the calling thread.
pub fn fill<E: Send>(
    dst: &mut [u8],
    each: impl Fn(&mut [u8], usize) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let threads = threads_for(dst.len());
    if threads <= 1 {
        return each(dst, 0);
    }
    // Page-sized multiples per part.
    let part = dst.len().div_ceil(threads).next_multiple_of(4096);
    let each = &each;
    let (not_started, outcome) = thread::scope(|scope| {
        let mut parts = dst.chunks_mut(part).enumerate();
        // The calling thread fills the first part itself.
        let first = parts.next();
        let mut running = Vec::new();
        let mut not_started = Vec::new();
        let quiet = crate::quiet::is_quiet();
        for (i, d) in parts {
            let spawned = thread::Builder::new()
                .name("zmap-gnz-copy".into())
                .spawn_scoped(scope, move || {
                    crate::quiet::inherit(quiet, || each(d, i * part))
                });
            match spawned {
                Ok(handle) => running.push(handle),
                Err(_) => not_started.push(i),
            }
        }
        let mut outcome = first.map_or(Ok(()), |(_, d)| each(d, 0));
        for handle in running {
            // A part's panic is re-raised here (the FFI guard catches it).
            let result = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            outcome = outcome.and(result);
        }
        (not_started, outcome)
    });
    outcome?;
    for i in not_started {
        let range = i * part..((i + 1) * part).min(dst.len());
        each(&mut dst[range], i * part)?;
    }
    Ok(())
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
    fn fill_gives_each_part_its_offset_and_the_first_error() {
        let len = (16 << 20) + 5;
        let mut dst = vec![0u8; len];
        let ok: Result<(), String> = fill(&mut dst, |part, at| {
            for (i, b) in part.iter_mut().enumerate() {
                *b = ((at + i) % 251) as u8;
            }
            Ok(())
        });
        assert!(ok.is_ok());
        assert!(dst.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        // A part past the first fails: the whole fill fails.
        let failed = fill(&mut dst, |_, at| if at > 0 { Err(at) } else { Ok(()) });
        assert!(matches!(failed, Err(at) if at > 0));
        let first_fails = fill(&mut dst[..100], |_, at| Err(at));
        assert_eq!(first_fails, Err(0));
    }

    #[test]
    fn small_copies_stay_on_the_calling_thread() {
        assert_eq!(threads_for(PARALLEL_FROM - 1), 1);
        assert!(threads_for(64 << 20) <= MAX_THREADS);
        assert!(threads_for(PARALLEL_FROM) >= 1);
    }
}
