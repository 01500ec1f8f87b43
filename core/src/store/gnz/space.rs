//! Free space of a GNZ file: which byte ranges a new extent may use.
//!
//! The file is divided into the header region `[0, floor)`, the managed
//! region `[floor, end)` and unused space from `end` on. Inside the managed
//! region a byte is either part of an object's extent, or free, or
//! *pending* (freed since the last commit, so still referenced by the
//! committed header), or *deferred* (no longer referenced by the committed
//! header, but by the snapshot of a commit some live reader may hold).
//! Only free bytes and bytes past `end` are ever handed out. Pending and
//! deferred extents carry the commits that referenced them — from `born`
//! to `died - 1` — and become free once no live reader's generation lies
//! in between (DESIGN.md, "Reader protocol").
//!
//! Allocation is best fit over a size index (smallest free range that fits,
//! honouring the alignment), else at `end`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

use super::format::MAX_FILE_OFFSET;

/// How many size-ordered candidates are tried for an aligned exact fit
/// before falling back to a range that fits whatever its alignment.
const FIT_PROBES: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct Space {
    /// Free ranges: start -> end, disjoint, coalesced, inside [floor, end).
    by_start: BTreeMap<u64, u64>,
    /// The same ranges as (length, start).
    by_len: BTreeSet<(u64, u64)>,
    floor: u64,
    end: u64,
    /// (start, end, born): freed since the last commit.
    pending: Vec<(u64, u64, u64)>,
    deferred: Vec<Held>,
}

/// Bytes that the commits `born .. died` referenced (`died` excluded).
#[derive(Clone, Copy, Debug)]
struct Held {
    start: u64,
    end: u64,
    born: u64,
    died: u64,
}

/// `x` rounded up to a multiple of `align` (a power of two).
pub fn align_up(x: u64, align: u64) -> Result<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1)
        .map(|v| v & !(align - 1))
        .filter(|&v| v <= MAX_FILE_OFFSET)
        .ok_or(Error::Invalid("file offset overflows"))
}

impl Space {
    /// Everything in `[floor, end)` is in use until freed.
    pub fn new(floor: u64, end: u64) -> Space {
        Space {
            floor,
            end: end.max(floor),
            ..Space::default()
        }
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes free now (not counting pending and deferred ones).
    pub fn free_bytes(&self) -> u64 {
        self.by_start.iter().map(|(s, e)| e - s).sum()
    }

    /// Bytes waiting for a commit (or for readers to leave).
    pub fn waiting_bytes(&self) -> u64 {
        let pending: u64 = self.pending.iter().map(|p| p.1.saturating_sub(p.0)).sum();
        let deferred: u64 = self
            .deferred
            .iter()
            .map(|h| h.end.saturating_sub(h.start))
            .sum();
        pending + deferred
    }

    /// True if some bytes wait for readers to leave.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The free ranges, in order (for checks and statistics).
    pub fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_start.iter().map(|(&s, &e)| (s, e))
    }

    fn insert(&mut self, start: u64, end: u64) {
        if start < end {
            self.by_start.insert(start, end);
            self.by_len.insert((end - start, start));
        }
    }

    fn remove(&mut self, start: u64) -> Option<u64> {
        let end = self.by_start.remove(&start)?;
        self.by_len.remove(&(end - start, start));
        Some(end)
    }

    /// Makes `[start, end)` free now, merging with its neighbours. Parts
    /// outside `[floor, end)` are dropped.
    pub fn free(&mut self, start: u64, end: u64) {
        let mut start = start.max(self.floor);
        let mut end = end.min(self.end);
        if start >= end {
            return;
        }
        if let Some((&ps, &pe)) = self.by_start.range(..=start).next_back() {
            if pe >= start {
                self.remove(ps);
                start = ps;
                end = end.max(pe);
            }
        }
        while let Some((&ns, &ne)) = self.by_start.range(start..).next() {
            if ns > end {
                break;
            }
            self.remove(ns);
            end = end.max(ne);
        }
        self.insert(start, end);
    }

    /// `[start, end)`, referenced by the commits from `born` on, is still
    /// referenced by the committed header: the next commit is its last.
    pub fn free_after_commit(&mut self, start: u64, end: u64, born: u64) {
        if start < end {
            self.pending.push((start, end, born));
        }
    }

    /// `[start, end)` was referenced by the commits `born .. died` (`died`
    /// excluded) and by no later one.
    pub fn defer(&mut self, start: u64, end: u64, born: u64, died: u64) {
        if start < end {
            self.deferred.push(Held {
                start,
                end,
                born,
                died,
            });
        }
    }

    /// Commit `generation` is durable: pending space was last referenced by
    /// the commit before it. Then as `release_unseen`.
    pub fn committed(&mut self, generation: u64, seen: impl Fn(u64, u64) -> bool) {
        for (start, end, born) in std::mem::take(&mut self.pending) {
            self.defer(start, end, born, generation);
        }
        self.release_unseen(seen);
    }

    /// Deferred extents that no live reader sees (`seen(born, died)` is
    /// false) become free.
    pub fn release_unseen(&mut self, seen: impl Fn(u64, u64) -> bool) {
        let mut kept = Vec::new();
        for h in std::mem::take(&mut self.deferred) {
            if seen(h.born, h.died) {
                kept.push(h);
            } else {
                self.free(h.start, h.end);
            }
        }
        self.deferred = kept;
    }

    /// A commit made without readers: everything waiting becomes free.
    pub fn release_all(&mut self) {
        self.committed(0, |_, _| false);
    }

    /// A commit while readers may see anything released: pending space
    /// stays out of use.
    #[cfg(test)]
    pub fn hold_pending(&mut self) {
        self.committed(0, |_, _| true);
    }

    /// Drops a free range that reaches `end`, lowering `end`.
    pub fn trim(&mut self) {
        if let Some((&s, &e)) = self.by_start.iter().next_back() {
            if e == self.end {
                self.remove(s);
                self.end = s.max(self.floor);
            }
        }
    }

    /// Takes `size` bytes aligned to `align` (a power of two).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64> {
        if size == 0 {
            return Err(Error::Internal("zero-size allocation"));
        }
        let fits = |len: u64, start: u64| -> Option<u64> {
            let at = align_up(start, align).ok()?;
            (at.checked_add(size)? <= start + len).then_some(at)
        };
        // Smallest ranges first: an exact aligned fit, if one is near.
        let mut found = self
            .by_len
            .range((size, 0)..)
            .take(FIT_PROBES)
            .find_map(|&(len, start)| fits(len, start).map(|at| (start, at)));
        if found.is_none() {
            // Any range this long fits, whatever its alignment.
            let need = size
                .checked_add(align - 1)
                .ok_or(Error::Invalid("size overflows"))?;
            found = self
                .by_len
                .range((need, 0)..)
                .next()
                .and_then(|&(len, start)| fits(len, start).map(|at| (start, at)));
        }
        if let Some((start, at)) = found {
            self.carve(start, at, size)
                .ok_or(Error::Internal("free list"))?;
            return Ok(at);
        }
        // At the end, reusing a free range that reaches it.
        let mut base = self.end;
        if let Some((&s, &e)) = self.by_start.iter().next_back() {
            if e == self.end {
                self.remove(s);
                base = s;
            }
        }
        let at = self.extend_end(base, size, align)?;
        self.insert(base, at);
        Ok(at)
    }

    /// Takes `size` bytes aligned to `align` at or past `end`, never in a
    /// free range below it (compaction parks objects there, clear of every
    /// target).
    pub fn alloc_past_end(&mut self, size: u64, align: u64) -> Result<u64> {
        let base = self.end;
        let at = self.extend_end(base, size, align)?;
        self.free(base, at);
        Ok(at)
    }

    /// Moves the end to `size` bytes past `base` aligned to `align`, and
    /// returns that aligned start (the caller accounts for `[base, at)`).
    fn extend_end(&mut self, base: u64, size: u64, align: u64) -> Result<u64> {
        let at = align_up(base, align)?;
        self.end = at
            .checked_add(size)
            .filter(|&e| e <= MAX_FILE_OFFSET)
            .ok_or(Error::Invalid("file would be too large"))?;
        Ok(at)
    }

    /// Takes `[at, at + size)` out of the free range starting at `start`,
    /// keeping what is left on either side free. `None` if no free range
    /// starts there.
    fn carve(&mut self, start: u64, at: u64, size: u64) -> Option<()> {
        let end = self.remove(start)?;
        self.insert(start, at);
        self.insert(at + size, end);
        Some(())
    }

    /// Takes `size` bytes aligned to `align` from the lowest free range that
    /// holds them entirely at or above `min_start` (compaction parks objects
    /// there, clear of every place it packs objects into). `None` if no free
    /// range does; the end never moves.
    pub fn park(&mut self, size: u64, align: u64, min_start: u64) -> Option<u64> {
        let below = self.by_start.range(..min_start).next_back();
        let (start, at) = below
            .into_iter()
            .chain(self.by_start.range(min_start..))
            .find_map(|(&s, &e)| {
                let at = align_up(s.max(min_start), align).ok()?;
                (at.checked_add(size)? <= e).then_some((s, at))
            })?;
        self.carve(start, at, size)?;
        Some(at)
    }

    /// Takes `size` bytes aligned to `align` from the lowest free range that
    /// holds them entirely below `limit`; `None` if none does.
    pub fn lowest_fit(&mut self, size: u64, align: u64, limit: u64) -> Option<u64> {
        let (start, at) = self
            .by_start
            .range(..limit)
            .filter(|(&s, &e)| e - s >= size)
            .find_map(|(&s, &e)| {
                let at = align_up(s, align).ok()?;
                (at.checked_add(size)? <= e.min(limit)).then_some((s, at))
            })?;
        self.carve(start, at, size)?;
        Some(at)
    }

    /// True if nothing is in use from `at` to `end` (so an extent ending at
    /// `at` can grow in place as far as it likes).
    pub fn free_to_end(&self, at: u64) -> bool {
        at >= self.end || self.by_start.get(&at) == Some(&self.end)
    }

    /// Takes exactly `[start, end)` if it is free (or past `end`, or a free
    /// range reaching `end` and then past it). False, changing nothing, if
    /// any byte of it is in use.
    pub fn take(&mut self, start: u64, end: u64) -> bool {
        if start < self.floor || start >= end || end > MAX_FILE_OFFSET {
            return false;
        }
        if start >= self.end {
            let old_end = self.end;
            self.end = end;
            self.free(old_end, start);
            return true;
        }
        let Some((&s, &e)) = self.by_start.range(..=start).next_back() else {
            return false;
        };
        if e <= start {
            return false;
        }
        if end <= e {
            self.remove(s);
            self.insert(s, start);
            self.insert(end, e);
            return true;
        }
        if e == self.end {
            self.remove(s);
            self.insert(s, start);
            self.end = end;
            return true;
        }
        false
    }

    /// Moves the floor up: free space below it is withdrawn (the caller
    /// moves the extents that lie there), `end` is at least the floor.
    pub fn raise_floor(&mut self, floor: u64) {
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        while let Some((&s, &e)) = self.by_start.iter().next() {
            if s >= floor {
                break;
            }
            self.remove(s);
            if e > floor {
                self.insert(floor, e);
            }
        }
        if self.end < floor {
            self.end = floor;
        }
    }

    /// Moves the floor down to `floor`, making `[floor, old floor)` free.
    /// The caller guarantees nothing committed lies there.
    pub fn lower_floor(&mut self, floor: u64) {
        if floor >= self.floor {
            return;
        }
        let old = self.floor;
        self.floor = floor;
        self.free(floor, old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(s: &Space) -> Vec<(u64, u64)> {
        s.free_ranges().collect()
    }

    #[test]
    fn alloc_at_end_and_alignment() {
        let mut s = Space::new(4096, 4096);
        assert_eq!(s.alloc(100, 16).unwrap(), 4096);
        assert_eq!(s.end(), 4196);
        assert_eq!(s.alloc(5000, 4096).unwrap(), 8192);
        assert_eq!(ranges(&s), vec![(4196, 8192)]);
        // The gap is reused, aligned.
        assert_eq!(s.alloc(10, 16).unwrap(), 4208);
        assert_eq!(ranges(&s), vec![(4196, 4208), (4218, 8192)]);
    }

    #[test]
    fn free_coalesces_and_best_fit() {
        let mut s = Space::new(0, 1000);
        s.free(100, 200);
        s.free(300, 350);
        s.free(200, 300);
        assert_eq!(ranges(&s), vec![(100, 350)]);
        s.free(500, 510);
        // Best fit: the 10-byte range, not the big one.
        assert_eq!(s.alloc(10, 1).unwrap(), 500);
        assert_eq!(ranges(&s), vec![(100, 350)]);
        s.free(990, 1000);
        s.trim();
        assert_eq!(s.end(), 990);
        assert_eq!(s.free_bytes(), 250);
    }

    #[test]
    fn aligned_exact_fit_is_found() {
        let mut s = Space::new(0, 100_000);
        s.free(8192, 12288);
        s.free(20_000, 60_000);
        assert_eq!(s.alloc(4096, 4096).unwrap(), 8192);
        assert_eq!(s.alloc(4096, 4096).unwrap(), 20480);
    }

    #[test]
    fn pending_waits_for_a_commit_without_readers() {
        let mut s = Space::new(0, 1000);
        s.free_after_commit(0, 100, 0);
        assert_eq!(s.free_bytes(), 0);
        s.hold_pending();
        assert_eq!(s.free_bytes(), 0);
        assert_eq!(s.waiting_bytes(), 100);
        s.free_after_commit(100, 150, 0);
        s.release_all();
        assert_eq!(ranges(&s), vec![(0, 150)]);
        assert_eq!(s.waiting_bytes(), 0);
    }

    #[test]
    fn deferred_space_waits_for_the_readers_that_see_it() {
        let mut s = Space::new(0, 1000);
        // Referenced by commits 2..5 and 6..7; a reader of 3 is open.
        s.free_after_commit(0, 100, 2);
        s.committed(5, |born, died| born <= 3 && 3 < died);
        s.free_after_commit(200, 300, 6);
        s.committed(7, |born, died| born <= 3 && 3 < died);
        assert_eq!(ranges(&s), vec![(200, 300)]);
        assert!(s.has_deferred());
        // The reader left.
        s.release_unseen(|_, _| false);
        assert_eq!(ranges(&s), vec![(0, 100), (200, 300)]);
        assert!(!s.has_deferred());
    }

    #[test]
    fn take_exact() {
        let mut s = Space::new(100, 1000);
        s.free(200, 300);
        assert!(s.take(210, 220));
        assert_eq!(ranges(&s), vec![(200, 210), (220, 300)]);
        assert!(!s.take(250, 350));
        assert!(!s.take(50, 60));
        assert!(s.take(1200, 1300));
        assert_eq!(s.end(), 1300);
        assert_eq!(ranges(&s), vec![(200, 210), (220, 300), (1000, 1200)]);
        assert!(!s.take(1100, 1400));
        s.free(1200, 1300);
        assert!(s.take(1100, 1400));
        assert_eq!(s.end(), 1400);
        assert_eq!(ranges(&s), vec![(200, 210), (220, 300), (1000, 1100)]);
    }

    #[test]
    fn floors() {
        let mut s = Space::new(100, 1000);
        s.free(150, 300);
        s.free(400, 500);
        s.raise_floor(200);
        assert_eq!(ranges(&s), vec![(200, 300), (400, 500)]);
        s.raise_floor(2000);
        assert_eq!(ranges(&s), vec![]);
        assert_eq!(s.end(), 2000);
        s.lower_floor(1500);
        assert_eq!(ranges(&s), vec![(1500, 2000)]);
        // Freed space below the floor is dropped.
        s.free(0, 1600);
        assert_eq!(ranges(&s), vec![(1500, 2000)]);
    }

    #[test]
    fn past_end() {
        let mut s = Space::new(0, 100);
        s.free(50, 100);
        assert_eq!(s.alloc_past_end(10, 64).unwrap(), 128);
        assert_eq!(ranges(&s), vec![(50, 128)]);
        assert_eq!(s.end(), 138);
    }

    #[test]
    fn parking_and_free_to_end() {
        let mut s = Space::new(0, 10_000);
        s.free(100, 300);
        s.free(1000, 5000);
        s.free(6000, 10_000);
        // Above 2000: the part of [1000, 5000) past it, aligned.
        assert_eq!(s.park(100, 64, 2000), Some(2048));
        assert_eq!(s.park(3000, 16, 2000), Some(6000));
        assert_eq!(s.park(9000, 16, 0), None);
        assert_eq!(s.end(), 10_000);
        assert!(s.free_to_end(9000));
        assert!(s.free_to_end(10_000));
        assert!(!s.free_to_end(2148));
        assert!(!s.free_to_end(8000));
        // The lowest range that holds it below the limit.
        assert_eq!(s.lowest_fit(150, 16, 10_000), Some(112));
        assert_eq!(s.lowest_fit(2000, 16, 4000), None);
        assert_eq!(s.lowest_fit(2000, 16, 10_000), Some(2160));
        assert_eq!(s.lowest_fit(4000, 16, 10_000), None);
    }

    #[test]
    fn overflow_is_refused() {
        let mut s = Space::new(0, MAX_FILE_OFFSET - 10);
        assert!(s.alloc(100, 1).is_err());
        assert!(align_up(u64::MAX - 2, 4096).is_err());
    }
}
