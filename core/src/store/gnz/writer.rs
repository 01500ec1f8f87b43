//! The writer: the index, the free space and the copy-on-write updates of a
//! writable map (DESIGN.md, "Writes"). The commit is in `commit.rs`,
//! compaction in `compaction.rs`.

use std::os::unix::fs::FileExt;

use super::behind::Behind;
use super::commit::pad_header;
use super::format::{self, PREFIX_LEN};
use super::index::{Index, Object};
use super::index_build::{array_out, build, Built};
use super::json::{Json, Object as JsonObject};
use super::lock;
use super::readers;
use super::recovery::{self, Loaded};
use super::space::{align_up, Space};
use super::stage::{self, Held, Stage};
use super::storage::Storage;
use super::store::{CHUNK, MAX_SLACK, MAX_WRITABLE_GENERATION, PAGE, REVISION, SMALL_ALIGN};
use super::writeback;
use crate::error::{Error, Result};
use crate::key::Key;

pub(super) struct Writer<S: Storage> {
    /// The longest header at offset 0 written while readers may have been
    /// open: later headers are padded to it (see `commit`).
    pub(super) header_high: u64,
    /// The file, with the stages' write-outs queued for a worker (`behind.rs`).
    pub(super) file: Behind<S>,
    pub(super) objects: Index,
    /// The header being committed: 8 bytes for its prefix, then its JSON
    /// (kept between commits for its capacity).
    pub(super) buf: Vec<u8>,
    /// Small writes not in the file yet (DESIGN.md, "Staging").
    pub(super) stage: Stage,
    /// The first stage of a dataset whose committed header references no
    /// extent, held until the commit (`stage::Held`).
    pub(super) head: Held,
    pub(super) space: Space,
    pub(super) metadata: JsonObject,
    pub(super) extra: JsonObject,
    /// The generation of the last commit (or of its durable record).
    pub(super) generation: u64,
    /// 8 + length of the committed header.
    pub(super) header_len: u64,
    /// The JSON at 0 (padding included) while the committed header
    /// references no extent (a new dataset, or one whose objects are all
    /// empty): a new header at 0 then overwrites nothing but that header,
    /// and the commit writes an undo record (usually this small header)
    /// instead of a copy of the new one (DESIGN.md, "Commit").
    pub(super) committed_bare: Option<Vec<u8>>,
    pub(super) file_len: u64,
    /// Something changed since the last commit.
    pub(super) dirty: bool,
    /// Bytes were written to the file (or its length changed) since its
    /// last sync: the commit makes them durable before writing its record.
    pub(super) unsynced: bool,
}

impl<S: Storage> Drop for Writer<S> {
    fn drop(&mut self) {
        if self.file.forked() {
            // A forked child's copy: the lock, the queue and the file are
            // the parent's writer's.
            return;
        }
        // What was handed to the write-behind worker reaches the file
        // while this writer still holds the lock.
        let _ = self.file.settle();
        let _ = lock::unlock_writer(self.file.as_file());
    }
}

impl<S: Storage> Writer<S> {
    /// A new, empty dataset in an empty file. Nothing was committed before,
    /// so the first header goes straight to offset 0 (one small write in
    /// the first page).
    pub(super) fn fresh(file: S) -> Result<Writer<S>> {
        let mut writer = Writer {
            header_high: 0,
            file: Behind::new(file),
            objects: Index::default(),
            buf: Vec::new(),
            stage: Stage::new(PAGE),
            head: Held::default(),
            space: Space::new(PAGE, PAGE),
            metadata: JsonObject::new(),
            extra: JsonObject::new(),
            generation: 0,
            header_len: 0,
            committed_bare: None,
            file_len: 0,
            dirty: false,
            unsynced: false,
        };
        let generation = 1;
        writer.serialize(generation)?;
        let bytes = std::mem::take(&mut writer.buf);
        lock::with_header_lock(writer.file.as_file(), true, || {
            writer.file.write_at(&bytes, 0)?;
            writer.file.set_len(PAGE.max(bytes.len() as u64))?;
            Ok(())
        })?;
        writer.file.sync()?;
        writer.generation = generation;
        writer.committed_bare = Some(bytes[PREFIX_LEN as usize..].to_vec());
        writer.header_len = bytes.len() as u64;
        writer.file_len = PAGE.max(bytes.len() as u64);
        writer.start_stages();
        Ok(writer)
    }

    /// A writer over the objects of a loaded header. `foreign` are the
    /// extents of arrays that are not objects: in use until the next commit.
    pub(super) fn from_loaded(file: S, loaded: Loaded<Built>) -> Result<Writer<S>> {
        // Refused before anything is written (a recovered header included):
        // a writer must be able to commit what it accepts.
        if loaded.header.generation >= MAX_WRITABLE_GENERATION {
            return Err(Error::Format(format!(
                "commit generation {} is too large for another commit",
                loaded.header.generation
            )));
        }
        let Built {
            objects,
            foreign,
            metadata,
            extra,
            generation,
            ..
        } = loaded.header;
        let foreign = &foreign;
        let mut header_len = PREFIX_LEN + loaded.json.len() as u64;
        // The header region: the header, and the rest of its page unless an
        // object starts there.
        let mut extents: Vec<(u64, u64)> = objects
            .values()
            .filter(|o| o.cap > 0)
            .map(|o| (o.offset, o.offset + o.cap))
            .chain(foreign.iter().copied())
            .collect();
        extents.sort_unstable();
        let bare = extents.is_empty();
        let first = extents.first().map_or(u64::MAX, |e| e.0);
        let floor = header_len.max(align_up(header_len, PAGE)?.min(first));
        let end = extents.iter().map(|e| e.1).max().unwrap_or(0).max(floor);
        // Readers open now may hold an older snapshot: what the header does
        // not reference may still be theirs (as far as this writer knows,
        // referenced by every commit before this one).
        let live = readers::live(file.as_file(), generation)?;
        let readers = !live.is_empty();
        // While readers are open the header at 0 must not get shorter (see
        // `commit`), across writer sessions too: start from what is there
        // (the header as loaded, padding included, or a longer torn one).
        let mut header_high = header_len;
        if readers {
            if let Some(at_zero) =
                recovery::claimed_header_len(file.as_file(), loaded.size)?.filter(|&l| l <= floor)
            {
                header_high = header_high.max(at_zero);
            }
        }
        if loaded.recovered {
            // The header at 0 is torn or older than the durable record:
            // finish that commit (padded as a commit would be).
            let mut bytes = recovery::prefix(loaded.json.len())?.to_vec();
            bytes.extend_from_slice(&loaded.json);
            pad_header(&mut bytes, header_high)?;
            lock::with_header_lock(file.as_file(), true, || Ok(file.write_at(&bytes, 0)?))?;
            file.sync()?;
            header_len = bytes.len() as u64;
        }
        // The JSON at 0 now: as loaded, or as just written back.
        let committed_bare = bare.then(|| {
            let mut json = loaded.json;
            json.resize((header_len - PREFIX_LEN) as usize, b' ');
            json
        });
        let file_len = loaded.size;
        let mut space = Space::new(floor, if readers { end.max(file_len) } else { end });
        let mut at = floor;
        let mut gaps = Vec::new();
        for (s, e) in extents {
            if s > at {
                gaps.push((at, s));
            }
            at = at.max(e);
        }
        gaps.push((at, space.end()));
        for (s, e) in gaps {
            space.defer(s, e, 0, generation);
        }
        space.release_unseen(|born, died| live.sees(born, died));
        for &(s, e) in foreign {
            space.free_after_commit(s, e, 0);
        }
        let mut writer = Writer {
            header_high,
            file: Behind::new(file),
            objects,
            buf: Vec::new(),
            stage: Stage::new(space.end()),
            head: Held::default(),
            space,
            generation,
            metadata,
            extra,
            header_len,
            committed_bare,
            file_len,
            dirty: false,
            unsynced: false,
        };
        writer.start_stages();
        Ok(writer)
    }

    /// Writes the header of the current objects, as commit `generation`,
    /// into `self.buf`: 8 bytes for the prefix, then the JSON.
    pub(super) fn serialize(&mut self, generation: u64) -> Result<()> {
        // libzmap's entry is rewritten at every commit, in place.
        let zmap = self
            .metadata
            .entry("zmap".into())
            .or_insert_with(|| Json::Object(JsonObject::new()));
        if !matches!(zmap, Json::Object(_)) {
            *zmap = Json::Object(JsonObject::new());
        }
        if let Json::Object(zmap) = zmap {
            zmap.insert("generation".into(), Json::from(generation));
            zmap.insert("revision".into(), Json::from(REVISION));
        }
        let arrays = self.objects.by_name();
        self.buf.clear();
        // About what an object's entry takes: no reallocations while the
        // header is written.
        self.buf.reserve(arrays.len().saturating_mul(96));
        self.buf.extend_from_slice(&[0; PREFIX_LEN as usize]);
        format::write_header(
            &mut self.buf,
            &self.metadata,
            &self.extra,
            arrays.iter().map(|&(name, o)| array_out(name, o)),
        )?;
        let prefix = recovery::prefix(self.buf.len() - PREFIX_LEN as usize)?;
        self.buf[..PREFIX_LEN as usize].copy_from_slice(&prefix);
        Ok(())
    }

    /// Gives an extent back: its committed part once the next commit is
    /// durable, the rest now.
    pub(super) fn release(space: &mut Space, o: &Object) {
        if o.cap == 0 {
            return;
        }
        let committed = o.committed.min(o.cap);
        space.free_after_commit(o.offset, o.offset + committed, o.born);
        space.free(o.offset + committed, o.offset + o.cap);
    }

    /// Writes `data` at `at`: staged if it is short and may be, else to the
    /// file (after the staged bytes if it covers some of them).
    pub(super) fn put(&mut self, data: &[u8], at: u64) -> Result<()> {
        let end = at + data.len() as u64;
        if self.head.overlaps(at, end) {
            // Bytes of the held first stage: there (they are not in the
            // file), the rest as any write.
            for (s, e) in self.head.write(data, at) {
                if s < e {
                    self.put(&data[(s - at) as usize..(e - at) as usize], s)?;
                }
            }
            return Ok(());
        }
        if self.stage.put(data, at) {
            return Ok(());
        }
        if !self.stage.is_empty()
            && ((data.len() as u64) < stage::PIECE || self.stage.overlaps(at, end))
        {
            // A short write the stage cannot take (full, or apart from it):
            // a new stage, while the worker writes the old one (or holds
            // it, the first); a direct write over staged bytes: after them.
            self.next_stage()?;
            if self.head.overlaps(at, end) {
                // The stage just held: the write goes over it there.
                return self.put(data, at);
            }
            if self.stage.put(data, at) {
                return Ok(());
            }
        }
        self.file.write_at(data, at)?;
        self.wrote_directly(end);
        writeback::start(self.file.as_file(), at, data.len());
        Ok(())
    }

    /// Writes the staged bytes to the file (one `pwrite`), by the
    /// write-behind worker if one runs (the next use of the file waits for
    /// it).
    pub(super) fn write_out_stage(&mut self) -> Result<()> {
        if self.file.has_worker() {
            return self.stage_behind();
        }
        if self.stage.is_empty() {
            return Ok(());
        }
        let (at, bytes) = self.stage.staged();
        self.file.write_at(bytes, at)?;
        self.unsynced = true;
        self.file_len = self.file_len.max(at + bytes.len() as u64);
        writeback::start(self.file.as_file(), at, bytes.len());
        self.stage.written_out();
        Ok(())
    }

    /// Empties the stage for the next writes: the first stage of a new (or
    /// emptied) dataset, while nothing is written past the header region,
    /// is held until the commit (`stage::Held`); any other goes to the
    /// write-behind worker.
    fn next_stage(&mut self) -> Result<()> {
        if self.may_hold() && !self.stage.is_empty() {
            let (at, bytes) = self.stage.take(self.file.spare());
            self.head = Held::new(at, bytes);
            self.start_stages();
            return Ok(());
        }
        self.stage_behind()
    }

    /// True if the next full stage would be held (`next_stage`).
    fn may_hold(&self) -> bool {
        self.head.is_empty() && self.committed_bare.is_some() && self.file_len <= self.space.floor()
    }

    /// Sizes an empty stage: a full one if it may be held, else the first
    /// write-out's (short, so that the worker starts soon; the stages
    /// after it double, `stage_behind`).
    pub(super) fn start_stages(&mut self) {
        let limit = if self.may_hold() {
            stage::STAGE_MAX
        } else {
            stage::FIRST_BEHIND
        };
        self.stage.set_limit(limit);
    }

    /// Hands the staged bytes to the write-behind worker (started for the
    /// first of them) and empties the stage.
    pub(super) fn stage_behind(&mut self) -> Result<()> {
        if self.stage.is_empty() {
            return Ok(());
        }
        // Room in the write-out queue (or the error of an earlier
        // write-out surfaces here, with this stage kept).
        self.file.make_room()?;
        let (at, bytes) = self.stage.take(self.file.spare());
        self.unsynced = true;
        self.file_len = self.file_len.max(at + bytes.len() as u64);
        self.file.write_behind(bytes, at);
        self.stage.set_limit(self.stage.limit().saturating_mul(2));
        Ok(())
    }

    /// Reads the file's bytes at `at` as the writer sees them (staged ones
    /// included).
    pub(super) fn fetch(&self, buf: &mut [u8], at: u64) -> Result<()> {
        for (s, e) in self.stage.read(buf, at) {
            if s >= e {
                continue;
            }
            let gaps = self
                .head
                .read(&mut buf[(s - at) as usize..(e - at) as usize], s);
            for (s, e) in gaps {
                // Past the file's end nothing was ever written: zeros (a
                // commit's moves copy the free bytes between objects too,
                // and a stage may start a little past the file's end).
                let in_file = e.min(self.file_len.max(s));
                buf[(in_file - at) as usize..(e - at) as usize].fill(0);
                if s < in_file {
                    let file = self.file.settled_file()?;
                    let part = &mut buf[(s - at) as usize..(in_file - at) as usize];
                    // Large reads by several threads at once (copy.rs).
                    super::copy::fill(part, |piece, off| {
                        FileExt::read_exact_at(file, piece, s + off as u64)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Writes out what the held first stage holds from the header region's
    /// end on (after the commit grew the region and moved the objects out
    /// of it; the bytes below are the header's now, and never written).
    pub(super) fn write_out_head(&mut self) -> Result<()> {
        if self.head.is_empty() {
            return Ok(());
        }
        // Room in the queue first: after an earlier write-out's error the
        // held bytes stay held, for the commit that is tried again.
        self.file.make_room()?;
        let floor = self.space.floor();
        let Some((at, bytes)) = self.head.take_from(floor) else {
            return Ok(());
        };
        let end = at + bytes.len() as u64;
        self.file.write_behind(bytes, at);
        self.wrote_directly(end);
        Ok(())
    }

    /// Copies `len` bytes from `from` to `to` (non-overlapping).
    pub(super) fn copy(&mut self, from: u64, to: u64, len: u64) -> Result<()> {
        if len >= stage::PIECE
            && !self.stage.overlaps(from, from + len)
            && !self.head.overlaps(from, from + len)
            && !self.head.overlaps(to, to + len)
        {
            return self.copy_in_file(from, to, len);
        }
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            self.fetch(&mut buf[..n], from + done)?;
            self.put(&buf[..n], to + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Copies file bytes the stage does not hold (`from..from + len`) to
    /// `to` inside the file (`Storage::copy_range`: no buffer here, and no
    /// page faults for one), as a direct write of the destination; by the
    /// write-behind worker when one runs, in order after the queued
    /// write-outs (every read of the file waits for them).
    pub(super) fn copy_in_file(&mut self, from: u64, to: u64, len: u64) -> Result<()> {
        let end = to + len;
        if self.stage.overlaps(to, end) {
            self.stage_behind()?;
        }
        if self.file.has_worker() {
            // Queued behind the stages being written: a commit's moves
            // then overlap its header's serialisation.
            self.file.make_room()?;
            self.file.copy_behind(from, to, len);
        } else {
            self.file.copy_now(from, to, len)?;
        }
        self.wrote_directly(end);
        Ok(())
    }

    /// The file's bytes up to `end` were written directly (not staged):
    /// a sync is due, the length may have grown, and the stage must not
    /// pad over them.
    fn wrote_directly(&mut self, end: u64) {
        self.unsynced = true;
        self.file_len = self.file_len.max(end);
        self.stage.wrote_directly(end);
    }

    /// Makes `[at, at + len)` read as zeros: a short range through the
    /// stage; else a hole where the file holds bytes, and the file extended
    /// (sparsely) over the rest.
    pub(super) fn zeros(&mut self, at: u64, len: u64) -> Result<()> {
        static ZEROS: [u8; stage::PIECE as usize] = [0; stage::PIECE as usize];
        if len < stage::PIECE {
            return self.put(&ZEROS[..len as usize], at);
        }
        let end = at + len;
        // Held bytes are not in the file: zeroed where they are.
        self.head.zero(at, end);
        if self.stage.overlaps(at, end) {
            self.write_out_stage()?;
        }
        let written = end.min(self.file_len);
        if at < written {
            // A hole where the file has bytes (`Storage::zero_range`): the
            // range can be far larger than anything written.
            self.file.zero_range(at, written - at)?;
            self.wrote_directly(written);
        }
        if end > self.file_len {
            self.file.set_len(end)?;
            self.unsynced = true;
            self.file_len = end;
        }
        self.stage.wrote_directly(end);
        Ok(())
    }

    /// Fills a new extent at `at` for `update`: the kept bytes of `old`,
    /// zeros, and `data` at `start`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill(
        &mut self,
        old: &Object,
        at: u64,
        lo: u64,
        end: u64,
        zeros: [(u64, u64); 2],
        start: u64,
        data: &[u8],
    ) -> Result<()> {
        if lo > 0 {
            self.copy(old.offset, at, lo)?;
        }
        if end < old.len {
            self.copy(old.offset + end, at + end, old.len - end)?;
        }
        for (s, e) in zeros {
            if s < e {
                self.zeros(at + s, e - s)?;
            }
        }
        if !data.is_empty() {
            self.put(data, at + start)?;
        }
        Ok(())
    }

    /// Removes every object and all metadata (a clobbering create).
    pub(super) fn clear(&mut self) {
        for o in self.objects.drain() {
            Self::release(&mut self.space, &o);
        }
        self.metadata.clear();
        self.extra.clear();
        self.dirty = true;
    }

    pub(super) fn object(&self, key: &Key) -> Result<&Object> {
        self.objects.get(key.as_str()).ok_or(Error::Empty)
    }

    /// An object the caller knows exists.
    pub(super) fn object_at(&self, key: &str) -> Result<&Object> {
        self.objects
            .get(key)
            .ok_or(Error::Internal("object vanished"))
    }

    pub(super) fn define(&mut self, key: &Key) -> Result<()> {
        if self.objects.contains(key.as_str()) {
            return Ok(());
        }
        self.objects.check_leaf(key.as_str())?;
        self.objects.insert(key.as_str(), Object::empty());
        self.dirty = true;
        Ok(())
    }

    pub(super) fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let o = self.object(key)?;
        if start + buf.len() as u64 > o.len {
            return Err(Error::Edge);
        }
        self.fetch(buf, o.offset + start)
    }

    /// Sets the object's length to `new_len` and its bytes
    /// `[start, start + data.len())` to `data`; bytes past the old length
    /// that `data` does not cover become zeros. Writes in place when the
    /// bytes touched are not committed and fit (growing the extent into
    /// free space when possible), else moves the object to a new extent.
    pub(super) fn update(
        &mut self,
        slot: u32,
        start: u64,
        data: &[u8],
        new_len: u64,
    ) -> Result<()> {
        let old = self
            .objects
            .at(slot)
            .cloned()
            .ok_or(Error::Internal("object vanished"))?;
        let end = start + data.len() as u64;
        let old_len = old.len;
        let lo = start.min(old_len);
        let zeros = [(old_len, start.min(new_len)), (end.max(old_len), new_len)];
        let mut next = old.clone();
        let mut in_place = old.cap > 0 && lo >= old.committed;
        if in_place && new_len > old.cap {
            // Last in the file: grow exactly, and again next time. Else ask
            // for spare room, to move less often.
            let want = if self.space.free_to_end(old.offset + old.cap) {
                capacity(new_len)?
            } else {
                capacity(grow_target(old_len, new_len))?
            };
            in_place = (want < PAGE || old.offset % PAGE == 0)
                && self.space.take(old.offset + old.cap, old.offset + want);
            if in_place {
                next.cap = want;
            }
        }
        if in_place {
            let mut result = Ok(());
            for (s, e) in zeros {
                if s < e && result.is_ok() {
                    result = self.zeros(old.offset + s, e - s);
                }
            }
            if !data.is_empty() && result.is_ok() {
                result = self.put(data, old.offset + start);
            }
            if let Err(e) = result {
                // The object keeps its length; capacity taken for it goes back.
                if next.cap > old.cap {
                    self.space.free(old.offset + old.cap, old.offset + next.cap);
                    self.space.trim();
                }
                return Err(e);
            }
        } else {
            let cap = capacity(grow_target(old_len, new_len))?;
            let at = self.space.alloc(cap, align_for(cap))?;
            if let Err(e) = self.fill(&old, at, lo, end, zeros, start, data) {
                self.space.free(at, at + cap);
                self.space.trim();
                return Err(e);
            }
            Self::release(&mut self.space, &old);
            next.offset = at;
            next.cap = cap;
            next.committed = 0;
        }
        next.len = new_len;
        if new_len != old_len {
            next.layout = None;
        }
        *self
            .objects
            .at_mut(slot)
            .ok_or(Error::Internal("object vanished"))? = next;
        self.dirty = true;
        Ok(())
    }

    pub(super) fn write_at(&mut self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        let end = start + data.len() as u64;
        let (slot, new) = self.objects.slot_or_insert_new(key.as_str())?;
        if !new {
            let len = self.objects.at(slot).map_or(0, |o| o.len);
            return self.update(slot, start, data, len.max(end));
        }
        self.dirty = true;
        let result = self.update(slot, start, data, end);
        if result.is_err() {
            // A write that fails leaves no object behind.
            self.objects.remove(key.as_str());
        }
        result
    }

    pub(super) fn truncate(&mut self, key: &Key, len: u64) -> Result<()> {
        let o = self.object(key)?.clone();
        if len == o.len {
            return Ok(());
        }
        if len > o.len {
            let slot = self
                .objects
                .slot(key.as_str())
                .ok_or(Error::Internal("object vanished"))?;
            return self.update(slot, o.len, &[], len);
        }
        let mut next = o.clone();
        next.len = len;
        next.layout = None;
        if len == 0 {
            Self::release(&mut self.space, &o);
            next.offset = 0;
            next.cap = 0;
            next.committed = 0;
        } else {
            // Spare capacity past the committed bytes goes back.
            let keep = capacity(len)?.min(o.cap).max(o.committed.min(o.cap));
            if keep < o.cap {
                self.space.free(o.offset + keep, o.offset + o.cap);
                next.cap = keep;
            }
        }
        *self
            .objects
            .get_mut(key.as_str())
            .ok_or(Error::Internal("object vanished"))? = next;
        self.dirty = true;
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &Key) -> Result<()> {
        let o = self.objects.remove(key.as_str()).ok_or(Error::Empty)?;
        Self::release(&mut self.space, &o);
        self.dirty = true;
        Ok(())
    }

    pub(super) fn stats(&self) -> Vec<(String, String)> {
        let data: u64 = self.objects.values().map(|o| o.len).sum();
        vec![
            ("gnz generation".into(), self.generation.to_string()),
            ("gnz file bytes".into(), self.file_len.to_string()),
            ("gnz header bytes".into(), self.header_len.to_string()),
            ("gnz header region".into(), self.space.floor().to_string()),
            ("gnz objects".into(), self.objects.len().to_string()),
            ("gnz object bytes".into(), data.to_string()),
            ("gnz free bytes".into(), self.space.free_bytes().to_string()),
            (
                "gnz bytes awaiting commit".into(),
                self.space.waiting_bytes().to_string(),
            ),
            ("gnz uncommitted changes".into(), self.dirty.to_string()),
        ]
    }

    /// Checks the extents against each other, the free list and the file.
    pub(super) fn verify(&self) -> Result<()> {
        let broken = |why: String| Err(Error::Format(why));
        let mut ranges: Vec<(u64, u64, &str)> = self
            .objects
            .iter()
            .filter(|(_, o)| o.cap > 0)
            .map(|(k, o)| (o.offset, o.offset + o.cap, k))
            .chain(self.space.free_ranges().map(|(s, e)| (s, e, "free space")))
            .collect();
        ranges.sort_unstable();
        let mut prev = (0, self.space.floor(), "the header region");
        for r in ranges {
            if r.0 < prev.1 {
                return broken(format!("{} overlaps {}", r.2, prev.2));
            }
            if r.1 > self.space.end() {
                return broken(format!("{} lies past the managed space", r.2));
            }
            prev = r;
        }
        for (k, o) in self.objects.iter() {
            if o.len > o.cap || o.committed > o.cap {
                return broken(format!("{k}: length or committed bytes exceed capacity"));
            }
        }
        if self.header_len > self.space.floor() {
            return broken("the header overflows its region".into());
        }
        let loaded = recovery::load(self.file.settled_file()?)?;
        if loaded.header.generation() != self.generation {
            return broken("the file's header is not the last commit".into());
        }
        if !self.dirty {
            let on_disk = recovery::load_with(self.file.settled_file()?, build)?
                .header
                .objects;
            for (k, o) in self.objects.iter() {
                match on_disk.get(k) {
                    Some(c) if c.len == o.len && (o.len == 0 || c.offset == o.offset) => {}
                    _ => return broken(format!("{k}: the header on disk disagrees")),
                }
            }
            if on_disk.len() != self.objects.len() {
                return broken("the header on disk lists other objects".into());
            }
        }
        Ok(())
    }
}

/// The capacity policy: whole pages from one page up, else 16-byte units.
pub(super) fn capacity(n: u64) -> Result<u64> {
    if n >= PAGE {
        align_up(n, PAGE)
    } else {
        align_up(n, SMALL_ALIGN)
    }
}

/// The alignment policy: extents of a page or more start on a page.
pub(super) fn align_for(cap: u64) -> u64 {
    if cap >= PAGE {
        PAGE
    } else {
        SMALL_ALIGN
    }
}

/// How much room an object growing from `old` to `new` bytes asks for.
pub(super) fn grow_target(old: u64, new: u64) -> u64 {
    if new > old {
        new.max(old.saturating_add((old / 2).min(MAX_SLACK)))
    } else {
        new
    }
}
