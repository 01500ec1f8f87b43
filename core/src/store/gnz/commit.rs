//! The commit protocol (DESIGN.md, "Commit"): the commit record at the tail,
//! durable first, then the header at offset 0.

use super::format::{PREFIX_LEN, TRAILER_LEN};
use super::lock;
use super::readers::{self, Readers};
use super::recovery;
use super::space::align_up;
use super::stage::STAGE_MAX;
use super::storage::Storage;
use super::store::PAGE;
use super::writer::Writer;
use crate::error::{Error, Result};

/// Extents at most this far apart move in one run (the bytes between them
/// are copied along, and freed at the new place).
const RUN_GAP: u64 = 4096;
/// The longest run moved with one copy.
const RUN_MAX: u64 = 64 << 20;
/// Runs up to this long are copied through the stage (`copy_run`).
const STAGED_RUN_MAX: u64 = 8 << 20;

impl<S: Storage> Writer<S> {
    /// Grows the header region to hold `need` bytes, moving the objects
    /// that stand in the way to free space.
    pub(super) fn grow_header_region(&mut self, need: u64) -> Result<()> {
        let floor = self.space.floor();
        let target = need
            .checked_add(need / 4)
            .ok_or(Error::Invalid("header too large"))?;
        let new_floor = align_up(target, PAGE)?.max(floor.saturating_mul(2));
        self.move_out_of_header_region(new_floor)
    }

    /// Makes `[0, new_floor)` the header region, moving the objects that lie
    /// there to free space. Their old bytes stay intact until the new header
    /// overwrites them, after the commit record that references their new
    /// places is durable.
    ///
    /// Extents that lie close together move as one run: one copy (one read,
    /// one write) keeps their places relative to each other, instead of a
    /// copy per object (a first commit of 10,000 small objects moves about a
    /// thousand of them out of the first header's page).
    pub(super) fn move_out_of_header_region(&mut self, new_floor: u64) -> Result<()> {
        self.space.raise_floor(new_floor);
        let mut movers: Vec<(u64, u64, u64, u32)> = self
            .objects
            .slotted()
            .filter(|(_, o)| o.cap > 0 && o.offset < new_floor)
            .map(|(slot, o)| (o.offset, o.cap, o.len, slot))
            .collect();
        movers.sort_unstable();
        let mut rest = &movers[..];
        while let Some(&(first, cap, _, _)) = rest.first() {
            // A run starts on the page of its first extent, so that every
            // extent in it keeps its alignment (pages for large ones).
            let base = first - first % PAGE;
            let mut end = first + cap;
            let mut n = 1;
            while let Some(&(at, cap, _, _)) = rest.get(n) {
                if at > end + RUN_GAP || at + cap - base > RUN_MAX {
                    break;
                }
                end = end.max(at + cap);
                n += 1;
            }
            let (run, after) = rest.split_at(n);
            rest = after;
            self.move_run(run, base, end)?;
        }
        self.dirty = true;
        Ok(())
    }

    /// Moves the extents of `run` (sorted, within `[base, end)`) to one new
    /// range, at the same places relative to `base`.
    fn move_run(&mut self, run: &[(u64, u64, u64, u32)], base: u64, end: u64) -> Result<()> {
        let to = self.space.alloc(end - base, PAGE)?;
        // The bytes objects hold: from the first one's start to the end of
        // the last one's data (capacity past it is never read).
        let from = run[0].0;
        let data_end = run.iter().map(|m| m.0 + m.2).max().unwrap_or(from);
        if data_end > from {
            if let Err(e) = self.copy_run(from, to + (from - base), data_end - from) {
                self.space.free(to, to + (end - base));
                self.space.trim();
                return Err(e);
            }
        }
        // What the new range holds besides the extents is free.
        let mut used = to;
        for &(at, cap, _, slot) in run {
            let new_at = to + (at - base);
            self.space.free(used, new_at);
            used = used.max(new_at + cap);
            let o = self
                .objects
                .at_mut(slot)
                .ok_or(Error::Internal("object vanished"))?;
            let old = o.clone();
            o.offset = new_at;
            o.committed = 0;
            Self::release(&mut self.space, &old);
        }
        self.space.free(used, to + (end - base));
        Ok(())
    }

    /// Copies a run's bytes to their new place: inside the file when the
    /// stage holds none of them (`copy`, the kernel's copy); else through
    /// the stage when they fit it (they then go to the file with the last
    /// staged bytes, by the write-behind worker while the header is
    /// serialised), else as any copy.
    fn copy_run(&mut self, from: u64, to: u64, len: u64) -> Result<()> {
        let in_memory =
            self.stage.overlaps(from, from + len) || self.head.overlaps(from, from + len);
        if len > STAGED_RUN_MAX || !in_memory {
            return self.copy(from, to, len);
        }
        // Into the stage unless the new place is held bytes (`put` then
        // writes there).
        let to_stage = !self.head.overlaps(to, to + len);
        if let Some(held) = self.head.slice(from, from + len) {
            // All in the held first stage (a new dataset's first commit):
            // from there into the stage, without another copy.
            if to_stage && self.stage.put_run(held, to, STAGED_RUN_MAX + STAGE_MAX) {
                return Ok(());
            }
        }
        let mut bytes = vec![0u8; len as usize];
        self.fetch(&mut bytes, from)?;
        if to_stage && self.stage.put_run(&bytes, to, STAGED_RUN_MAX + STAGE_MAX) {
            return Ok(());
        }
        self.put(&bytes, to)
    }

    /// About the length of the next header, without a pass over the
    /// objects: their keys' bytes, and per entry the fixed text, the digits
    /// of an offset near the end of the file and at least one of a length.
    /// Close for headers of `|u1` objects; the serialisation decides.
    fn header_estimate(&self) -> u64 {
        const ENTRY: u64 = 61; // `"": {"dtype": "|u1", "offset": , "order": "C", "shape": []}, `
        let offset_digits = u64::from(self.space.end().checked_ilog10().unwrap_or(0) + 1);
        let entries = self.objects.len() as u64;
        PREFIX_LEN + self.objects.key_bytes() + entries * (ENTRY + offset_digits + 1)
    }

    /// The generation of the next commit. Cannot overflow in practice: a
    /// writer starts below `MAX_WRITABLE_GENERATION`.
    pub(super) fn next_generation(&self) -> Result<u64> {
        self.generation
            .checked_add(1)
            .ok_or(Error::Internal("generation overflow"))
    }

    /// Makes the current state the committed one (DESIGN.md, "Commit").
    pub(super) fn commit(&mut self) -> Result<()> {
        self.commit_then(After::GoOn)
    }

    /// Commits, and ends the writer (the map's close): its index is freed
    /// by the write-behind worker once the header is serialised, while the
    /// commit goes on.
    pub(super) fn close(mut self) -> Result<()> {
        self.commit_then(After::Close)
    }

    fn commit_then(&mut self, after: After) -> Result<()> {
        if !self.dirty {
            return self.release_space_of_gone_readers();
        }
        let generation = self.next_generation()?;
        // 1. Serialise, growing the header region until the header fits. A
        // header that will clearly not fit (estimated from its entries)
        // grows the region first, rather than being serialised only to
        // find that out (a first commit of many objects).
        let estimate = self.header_estimate();
        if estimate > self.space.floor() {
            self.grow_header_region(estimate)?;
        }
        // The held first stage: what the header region did not take.
        self.write_out_head()?;
        // The staged bytes (the moves' included) go to the file while the
        // header is serialised, when the write-behind worker runs; else in
        // step 2.
        if self.file.has_worker() {
            self.stage_behind()?;
        }
        loop {
            self.serialize(generation)?;
            let need = self.buf.len() as u64;
            if need <= self.space.floor() {
                break;
            }
            self.grow_header_region(need)?;
        }
        // Whether the new header references no extent (then the next
        // commit writes an undo record); a closing writer has no next.
        let bare = after == After::GoOn && self.objects.values().all(|o| o.cap == 0);
        if after == After::Close {
            // Nothing below reads the objects but to prepare the next commit.
            self.file
                .discard(Box::new(std::mem::take(&mut self.objects)));
        }
        // 2. Everything written so far goes to the file, and is durable,
        // before the record: the media may persist later writes first, and
        // a complete record over data that never reached the disk would be
        // a commit of garbage (the crash simulation finds such states).
        self.write_out_stage()?;
        if self.unsynced {
            self.file.sync()?;
            self.unsynced = false;
        }
        // 3. The record at the tail, then its sync. Over a header that
        // references no extent, the record is that header (an undo
        // record: the new header at 0 overwrites nothing else, so the old
        // commit stays whole until the new header is), which saves
        // writing the new header twice; the commit point is then step 4's
        // sync. Otherwise it is a copy of the new header (the commit point).
        let at = align_up(self.space.end(), 8)?;
        let undo = self.committed_bare.is_some();
        // 4's header, padded now if the undo record must name its CRC.
        let mut early = None;
        let record_end = if let Some(old) = &self.committed_bare {
            let readers_now = lock::readers_present(self.file.as_file())?;
            let padded = self.padded_header(readers_now)?;
            let next = padded.as_deref().unwrap_or(&self.buf);
            let record = recovery::undo_record(old, self.generation, next);
            self.file.write_at(&record, at)?;
            early = Some((readers_now, padded));
            at + record.len() as u64
        } else {
            // The JSON and its trailer, written from the header buffer.
            let json_len = self.buf.len() - PREFIX_LEN as usize;
            let trailer = recovery::trailer(&self.buf[PREFIX_LEN as usize..], generation);
            self.buf.extend_from_slice(&trailer);
            let written = self.file.write_at(&self.buf[PREFIX_LEN as usize..], at);
            self.buf.truncate(PREFIX_LEN as usize + json_len);
            written?;
            at + (json_len + trailer.len()) as u64
        };
        if self.file_len > record_end {
            // Openers read the file's length and tail under the header lock:
            // the file shrinks only while they cannot be reading it.
            lock::with_header_lock(self.file.as_file(), true, || {
                Ok(self.file.set_len(record_end)?)
            })?;
        }
        self.file_len = record_end;
        self.file.sync()?;
        if !undo {
            // From here on a reopen finds this commit.
            self.committed(generation);
        }
        // 4. The header at 0. While readers are open it never gets
        // shorter (trailing spaces, valid JSON): a reader refuses extents
        // below the live header's end, which must therefore not fall back
        // after a header grew over its snapshot (Reader::overwritten).
        let (readers_now, padded) = match early {
            Some(decided) => decided,
            None => {
                let readers_now = lock::readers_present(self.file.as_file())?;
                (readers_now, self.padded_header(readers_now)?)
            }
        };
        let bytes: &[u8] = padded.as_deref().unwrap_or(&self.buf);
        lock::with_header_lock(self.file.as_file(), true, || {
            Ok(self.file.write_at(bytes, 0)?)
        })?;
        self.file.sync()?;
        let written = bytes.len() as u64;
        let bare = bare.then(|| bytes[PREFIX_LEN as usize..].to_vec());
        if undo {
            // The commit point of an undo record's commit.
            self.committed(generation);
        }
        self.header_high = if readers_now {
            self.header_high.max(written)
        } else {
            written
        };
        self.header_len = written;
        self.committed_bare = bare;
        self.dirty = false;
        // 5. Space the previous header referenced is free unless a live
        // reader may still see it (DESIGN.md, "Reader protocol"); the file
        // ends at the page after the last extent.
        let live = readers::live(self.file.as_file(), generation)?;
        self.release_unseen(&live, true);
        self.cut_to_end()?;
        if undo && self.file_len == record_end {
            // The cut left the undo record at the end of the file (it ended
            // on a page boundary): its magic goes, or a header at 0 damaged
            // later would be "recovered" to the header before this commit.
            lock::with_header_lock(self.file.as_file(), true, || {
                Ok(self.file.write_at(&[0; 8], record_end - TRAILER_LEN)?)
            })?;
        }
        // Nothing past the end is referenced by this commit or a reader.
        self.stage.reset(self.space.end());
        self.start_stages();
        Ok(())
    }

    /// The commit of `generation` took effect (its commit point is
    /// durable): objects first referenced by it were born with it, and
    /// their bytes are committed.
    fn committed(&mut self, generation: u64) {
        self.generation = generation;
        for o in self.objects.values_mut() {
            if o.committed == 0 {
                // First referenced by this commit at this place.
                o.born = generation;
            }
            o.committed = o.committed.max(o.len);
        }
    }

    /// The header for offset 0 when it is not `self.buf` as it is: padded
    /// with spaces to `header_high` while readers are open.
    fn padded_header(&self, readers_now: bool) -> Result<Option<Vec<u8>>> {
        if !readers_now || (self.buf.len() as u64) >= self.header_high {
            return Ok(None);
        }
        let mut grown = self.buf.clone();
        pad_header(&mut grown, self.header_high)?;
        Ok(Some(grown))
    }

    /// After the commit `self.generation` (`committed`: the pending space
    /// was referenced by the commit before it), or later: the space no
    /// reader in `live` sees becomes free (DESIGN.md, "Reader protocol"),
    /// and so do bytes an object lost by truncation.
    pub(super) fn release_unseen(&mut self, live: &Readers, committed: bool) {
        let generation = self.generation;
        if live.is_empty() {
            for o in self.objects.values_mut() {
                o.committed = o.len;
            }
        } else {
            for o in self.objects.values_mut() {
                if o.committed > o.len && !live.sees(o.born, generation) {
                    o.committed = o.len;
                }
            }
        }
        let seen = |born, died| live.sees(born, died);
        if committed {
            self.space.committed(generation, seen);
        } else {
            self.space.release_unseen(seen);
        }
    }

    /// Cuts the file at the page after the last extent.
    pub(super) fn cut_to_end(&mut self) -> Result<()> {
        self.space.trim();
        let size = align_up(self.space.end(), PAGE)?;
        if size != self.file_len {
            // Openers read the file's length and tail under the header lock.
            lock::with_header_lock(self.file.as_file(), true, || Ok(self.file.set_len(size)?))?;
            self.file_len = size;
        }
        Ok(())
    }

    /// A flush with nothing to commit: space held for readers that have
    /// left since is given back (the file may get shorter).
    fn release_space_of_gone_readers(&mut self) -> Result<()> {
        if !self.space.has_deferred() {
            return Ok(());
        }
        let live = readers::live(self.file.as_file(), self.generation)?;
        self.release_unseen(&live, false);
        if self.space.end() < self.file_len {
            self.cut_to_end()?;
        }
        Ok(())
    }
}

/// What follows a commit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    /// The writer goes on.
    GoOn,
    /// The writer ends.
    Close,
}

/// Pads a header (`GNZ1`, length, JSON) with trailing spaces (still valid
/// JSON) to `len` bytes, fixing its length field; no-op if it is as long.
pub(super) fn pad_header(header: &mut Vec<u8>, len: u64) -> Result<()> {
    if (header.len() as u64) >= len {
        return Ok(());
    }
    header.resize(len as usize, b' ');
    let prefix = recovery::prefix((len - PREFIX_LEN) as usize)?;
    header[..PREFIX_LEN as usize].copy_from_slice(&prefix);
    Ok(())
}
