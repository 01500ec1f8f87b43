//! Small writes staged in memory (DESIGN.md, "Staging").
//!
//! The stage holds the bytes `[at, at + len)` of the file as the writer
//! means them to be; the file's own bytes there are stale until the stage is
//! written out, at the next commit, before a direct write that
//! overlaps it, or once it holds `STAGE_MAX` bytes. So creating many small
//! objects costs one `pwrite` per MiB instead of one per object.
//!
//! The stage only ever covers bytes at or past `fresh_from`, the managed
//! end at the last commit (or open): no committed header and no reader's
//! snapshot references them. Between the data it holds it may hold zero
//! padding (alignment, the unused capacity of an object) — written out with
//! it — but only where nothing was written directly since `fresh_from`
//! (`direct_hi` is the end of the highest such write), so padding never
//! covers bytes the writer put there itself.

/// Writes shorter than this are staged.
pub const PIECE: u64 = 4096;
/// The stage is written out when it would grow past this.
#[cfg(not(test))]
pub const STAGE_MAX: u64 = 1 << 20;
/// In unit tests a few pages: the crash simulation and the other tests
/// then hand many stages to the write-behind worker (`behind.rs`).
#[cfg(test)]
pub const STAGE_MAX: u64 = 16 << 10;
/// The first stage handed to an idle write-behind worker is this long; each
/// next one twice as long, up to `STAGE_MAX` (`Stage::set_limit`).
pub const FIRST_BEHIND: u64 = STAGE_MAX / 8;
/// At most this much zero padding between two staged writes.
const MAX_PAD: u64 = 4096;
/// A stage that grows past this reserves room for a full stage at once:
/// from `store::pages` (huge pages, reused from writer to writer), so
/// filling it costs no page faults and no copies of a growing buffer. A
/// smaller dataset never holds more than it needs.
const EARLY: usize = 64 << 10;

/// A stage's bytes.
pub type StageBuf = PageVec<u8>;

use crate::store::pages::{HugePages, PageVec, HUGE_PAGE};

#[derive(Debug)]
pub struct Stage {
    buf: StageBuf,
    /// The most bytes short writes may fill it with (`STAGE_MAX` at most).
    limit: u64,
    at: u64,
    fresh_from: u64,
    direct_hi: u64,
}

/// Appends `data` with one copy (allocator_api2's `extend_from_slice`
/// clones byte by byte: on a 1 KiB write, the largest cost of a GNZ create).
fn append(buf: &mut StageBuf, data: &[u8]) {
    buf.reserve(data.len());
    let len = buf.len();
    // SAFETY: `reserve` made room for `data.len()` bytes past `len`, which
    // `data` (another allocation) fills before `set_len` admits them.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf.as_mut_ptr().add(len), data.len());
        buf.set_len(len + data.len());
    }
}

/// Extends `buf` with zeros to `len` bytes (nothing if it is as long).
fn zeros_to(buf: &mut StageBuf, len: usize) {
    let old = buf.len();
    if len <= old {
        return;
    }
    buf.reserve(len - old);
    // SAFETY: `reserve` made room for the `len - old` bytes past `old`,
    // zeroed before `set_len` admits them.
    unsafe {
        buf.as_mut_ptr().add(old).write_bytes(0, len - old);
        buf.set_len(len);
    }
}

impl Default for Stage {
    fn default() -> Stage {
        Stage {
            buf: StageBuf::new_in(HugePages),
            limit: STAGE_MAX,
            at: 0,
            fresh_from: 0,
            direct_hi: 0,
        }
    }
}

impl Stage {
    /// An empty stage; bytes from `fresh_from` on are referenced by no
    /// header and no reader.
    pub fn new(fresh_from: u64) -> Stage {
        Stage {
            fresh_from,
            direct_hi: fresh_from,
            ..Stage::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Where the staged bytes start, and where they end.
    pub fn range(&self) -> (u64, u64) {
        (self.at, self.at + self.buf.len() as u64)
    }

    /// True if `[at, end)` shares a byte with the staged bytes.
    pub fn overlaps(&self, at: u64, end: u64) -> bool {
        let (s, e) = self.range();
        !self.buf.is_empty() && at < e && s < end
    }

    /// Takes `data` for the file's bytes at `at` if it may: a short write
    /// past `fresh_from` that falls in the staged range, starts it, or
    /// extends it (after at most `MAX_PAD` bytes of padding over which
    /// nothing was written directly) within `STAGE_MAX`.
    pub fn put(&mut self, data: &[u8], at: u64) -> bool {
        let len = data.len() as u64;
        if len >= PIECE {
            return false;
        }
        self.put_within(data, at, self.limit)
    }

    /// How many bytes short writes may fill the stage with: less than
    /// `STAGE_MAX` while a worker that waits for its first bytes should get
    /// them soon.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit.min(STAGE_MAX);
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `data` whatever its length (bytes a commit moves, bounded by
    /// the caller) on the same conditions as `put`, the stage growing to
    /// at most `max` bytes.
    pub fn put_run(&mut self, data: &[u8], at: u64, max: u64) -> bool {
        self.put_within(data, at, max)
    }

    fn put_within(&mut self, data: &[u8], at: u64, max: u64) -> bool {
        let len = data.len() as u64;
        if len == 0 || at < self.fresh_from {
            return false;
        }
        if self.buf.is_empty() {
            if self.direct_hi > at {
                return false;
            }
            self.at = at;
        } else {
            let (s, e) = self.range();
            let end = at + len;
            if at < s || end - s > max {
                return false;
            }
            if at > e && (at - e > MAX_PAD || self.direct_hi > e) {
                return false;
            }
        }
        // Only a write the stage takes may grow it: a full stage refusing
        // the next write must not first copy itself into a larger buffer.
        let from = (at - self.at) as usize;
        let to = from + data.len();
        self.room_for(to);
        if from >= self.buf.len() {
            // Past the staged bytes (the usual case): padding, then the
            // data appended, each byte written once.
            zeros_to(&mut self.buf, from);
            append(&mut self.buf, data);
            return true;
        }
        zeros_to(&mut self.buf, to);
        self.buf[from..to].copy_from_slice(data);
        true
    }

    /// Makes room for `len` staged bytes. Past `EARLY` the buffer is whole
    /// 2 MiB mappings (a full stage fits one), so a writer's stages are the
    /// `store::pages` mappings the last stages gave back; a stage that a
    /// commit's moves grow further doubles.
    fn room_for(&mut self, len: usize) {
        let cap = self.buf.capacity();
        if len <= cap || len.max(2 * cap) <= EARLY {
            // Room already, or small: `append`'s own growth.
            return;
        }
        let want = len
            .max(2 * cap)
            .max(STAGE_MAX as usize + PIECE as usize)
            .next_multiple_of(HUGE_PAGE);
        self.buf.reserve_exact(want - self.buf.len());
    }

    /// A write (or extension) of the file itself over `[at, end)`.
    pub fn wrote_directly(&mut self, end: u64) {
        self.direct_hi = self.direct_hi.max(end);
    }

    /// The staged bytes and where they go.
    pub fn staged(&self) -> (u64, &[u8]) {
        (self.at, &self.buf)
    }

    /// Takes the staged bytes out (where they go, and the bytes), for
    /// the caller to write; `spare` becomes the stage's (empty) buffer. The
    /// taken bytes count as written directly.
    pub fn take(&mut self, mut spare: StageBuf) -> (u64, StageBuf) {
        let (_, end) = self.range();
        self.wrote_directly(end);
        spare.clear();
        std::mem::swap(&mut self.buf, &mut spare);
        (self.at, spare)
    }

    /// The staged bytes are in the file now: the stage is empty, and counts
    /// them as written directly.
    pub fn written_out(&mut self) {
        let (_, end) = self.range();
        self.wrote_directly(end);
        self.buf.clear();
    }

    /// After a commit: empty, and nothing is referenced from `fresh_from` on.
    pub fn reset(&mut self, fresh_from: u64) {
        self.buf.clear();
        self.fresh_from = fresh_from;
        self.direct_hi = fresh_from;
    }

    /// Copies the staged part of the file's bytes `[at, at + buf.len())`
    /// into `buf`; returns the parts it did not cover (before, after).
    pub fn read(&self, buf: &mut [u8], at: u64) -> [(u64, u64); 2] {
        let end = at + buf.len() as u64;
        if !self.overlaps(at, end) {
            return [(at, end), (end, end)];
        }
        let (s, e) = self.range();
        let from = at.max(s);
        let to = end.min(e);
        buf[(from - at) as usize..(to - at) as usize]
            .copy_from_slice(&self.buf[(from - s) as usize..(to - s) as usize]);
        [(at, from), (to, end)]
    }
}

/// The first stage of a dataset whose committed header references no
/// extent, held back from the file until the commit (DESIGN.md,
/// "Staging"). That commit's header usually grows over these bytes: the
/// objects in them then move out in memory, and the bytes the header
/// takes are never written at all. Every write and read of the writer
/// that meets them goes to them instead of the file.
#[derive(Default)]
pub struct Held {
    /// The bytes and where they go (a stage that takes no more writes).
    bytes: Stage,
}

impl Held {
    /// Holds `buf`, the file's bytes from `at` on.
    pub fn new(at: u64, buf: StageBuf) -> Held {
        Held {
            bytes: Stage {
                buf,
                limit: 0,
                at,
                fresh_from: at,
                direct_hi: at,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Where the held bytes start, and where they end.
    pub fn range(&self) -> (u64, u64) {
        self.bytes.range()
    }

    /// True if `[at, end)` shares a byte with the held bytes.
    pub fn overlaps(&self, at: u64, end: u64) -> bool {
        self.bytes.overlaps(at, end)
    }

    /// Copies the held bytes that overlap `buf` (the file's bytes at `at`)
    /// into it; gives the parts before and after them.
    pub fn read(&self, buf: &mut [u8], at: u64) -> [(u64, u64); 2] {
        self.bytes.read(buf, at)
    }

    /// Takes the part of `data` (the file's bytes at `at`) that falls in
    /// the held bytes; gives the parts before and after it, which do not.
    pub fn write(&mut self, data: &[u8], at: u64) -> [(u64, u64); 2] {
        let end = at + data.len() as u64;
        if !self.overlaps(at, end) {
            return [(at, end), (end, end)];
        }
        let (s, e) = self.range();
        let (from, to) = (at.max(s), end.min(e));
        self.bytes.buf[(from - s) as usize..(to - s) as usize]
            .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
        [(at, from), (to, end)]
    }

    /// Zeros the held bytes in `[at, end)`.
    pub fn zero(&mut self, at: u64, end: u64) {
        let (s, e) = self.range();
        let (from, to) = (at.max(s), end.min(e));
        if from < to {
            self.bytes.buf[(from - s) as usize..(to - s) as usize].fill(0);
        }
    }

    /// The held bytes `[at, end)`, if they are all held.
    pub fn slice(&self, at: u64, end: u64) -> Option<&[u8]> {
        let (s, e) = self.range();
        (!self.is_empty() && s <= at && at <= end && end <= e)
            .then(|| &self.bytes.buf[(at - s) as usize..(end - s) as usize])
    }

    /// Gives up the held bytes from `from` on (where they go, and the
    /// bytes; none if `from` is past them); those below are dropped.
    pub fn take_from(&mut self, from: u64) -> Option<(u64, StageBuf)> {
        let held = std::mem::take(self);
        let (s, e) = held.range();
        let from = from.max(s);
        if held.is_empty() || from >= e {
            return None;
        }
        let mut buf = held.bytes.buf;
        if from > s {
            buf.drain(..(from - s) as usize);
        }
        Some((from, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_extends_pads_and_refuses() {
        let mut s = Stage::new(1000);
        assert!(!s.put(b"x", 999), "before fresh_from");
        assert!(!s.put(&[1; 4096], 2000), "too long");
        assert!(s.put(b"abc", 1000));
        assert!(s.put(b"de", 1003));
        assert!(s.put(b"fg", 1010), "padding");
        assert_eq!(s.range(), (1000, 1012));
        assert!(s.put(b"Z", 1001), "inside");
        assert!(!s.put(b"y", 999), "before the stage");
        assert!(!s.put(b"far", 1012 + 4097), "too much padding");
        let mut buf = [9u8; 16];
        assert_eq!(s.read(&mut buf, 996), [(996, 1000), (1012, 1012)]);
        assert_eq!(&buf[4..], b"aZcde\0\0\0\0\0fg");
        // A direct write past the stage: no padding over it.
        s.wrote_directly(1100);
        assert!(!s.put(b"h", 1200));
        assert!(s.put(b"h", 1012), "contiguous is fine");
        let (at, bytes) = s.staged();
        assert_eq!((at, bytes.len()), (1000, 13));
        s.written_out();
        assert!(s.is_empty());
        // Nothing starts below what was written out.
        assert!(!s.put(b"i", 1005));
        assert!(s.put(b"i", 1100));
    }

    #[test]
    fn a_refused_write_leaves_the_buffer_alone_and_a_grown_one_is_whole_mappings() {
        let piece = [5u8; 1000];
        let mut s = Stage::new(0);
        let mut at = 0;
        while s.buf.len() <= EARLY {
            assert!(s.put_run(&piece, at, u64::MAX));
            at += 1000;
        }
        let cap = s.buf.capacity();
        assert_eq!(cap % HUGE_PAGE, 0, "capacity {cap}");
        // Filled to the last byte of its buffer: the writes it refuses
        // (past its limit, too much padding) neither grow nor move it.
        let max = cap as u64;
        while s.put_run(&piece[..(max - at).clamp(1, 1000) as usize], at, max) {
            at = s.range().1;
        }
        assert_eq!(s.buf.len(), cap);
        let start = s.buf.as_ptr();
        assert!(!s.put_run(&piece, at, max));
        assert!(!s.put_run(b"x", at + MAX_PAD + 1, u64::MAX));
        assert_eq!((s.buf.capacity(), s.buf.as_ptr()), (cap, start));
        // Grown by a commit's longer run: whole mappings again.
        assert!(s.put_run(&vec![6u8; HUGE_PAGE], at, u64::MAX));
        assert_eq!(s.buf.capacity() % HUGE_PAGE, 0);
        let (first, bytes) = s.staged();
        assert_eq!((first, bytes.len()), (0, cap + HUGE_PAGE));
        assert!(bytes[..cap].iter().all(|&b| b == 5));
        assert!(bytes[cap..].iter().all(|&b| b == 6));
    }

    #[test]
    fn held_bytes_take_reads_and_writes_over_them() {
        let mut h = Held::new(100, {
            let mut b = StageBuf::new_in(HugePages);
            b.extend_from_slice(&[1u8; 50]);
            b
        });
        assert_eq!(h.range(), (100, 150));
        assert!(h.overlaps(149, 200) && !h.overlaps(150, 200) && !h.overlaps(0, 100));
        // A write across its start: the part before is the caller's.
        assert_eq!(h.write(&[2u8; 20], 90), [(90, 100), (110, 110)]);
        // Apart from it: all the caller's.
        assert_eq!(h.write(&[3u8; 5], 200), [(200, 205), (205, 205)]);
        h.zero(140, 160);
        h.zero(300, 400);
        h.zero(0, 50);
        let mut buf = [9u8; 70];
        assert_eq!(h.read(&mut buf, 90), [(90, 100), (150, 160)]);
        assert_eq!(buf[..10], [9; 10]);
        assert_eq!(buf[10..20], [2; 10]);
        assert_eq!(buf[20..50], [1; 30]);
        assert_eq!(buf[50..60], [0; 10]);
        assert_eq!(buf[60..], [9; 10]);
        assert_eq!(h.slice(120, 125), Some(&[1u8; 5][..]));
        assert_eq!(h.slice(95, 105), None);
        assert_eq!(h.slice(145, 151), None);
        // Below `from` dropped; the rest given up once.
        let (at, bytes) = h.take_from(130).unwrap();
        assert_eq!((at, bytes.len()), (130, 20));
        assert!(h.is_empty() && h.take_from(0).is_none());
        let mut h = Held::new(100, StageBuf::new_in(HugePages));
        assert!(h.take_from(0).is_none());
    }

    #[test]
    fn limited_to_a_mib() {
        let mut s = Stage::new(0);
        let piece = [7u8; 4000];
        let mut at = 0;
        while s.put(&piece, at) {
            at += 4000;
        }
        assert!(s.range().1 <= STAGE_MAX);
        assert!(s.range().1 + 4000 > STAGE_MAX);
    }
}
