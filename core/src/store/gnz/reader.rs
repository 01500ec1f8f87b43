//! A read-only map: an immutable index over a memory map of the file,
//! taken under the header lock (DESIGN.md, "Reader protocol").

use std::path::Path;

use memmap2::Mmap;

use super::format::PREFIX_LEN;
use super::index::Index;
use super::index_build::{build, skipped_warning};
use super::lock;
use super::recovery;
use super::storage::Storage;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::process::Process;

pub(super) struct Reader<S: Storage> {
    /// `live_header_end()` when the map opened (see `Reader::overwritten`).
    pub(super) header_end_at_open: u64,
    pub(super) objects: Index,
    pub(super) map: Mmap,
    /// Holds the readers lock for the map's lifetime.
    pub(super) file: S,
    pub(super) generation: u64,
    pub(super) header_len: u64,
    pub(super) skipped: usize,
    /// What the open would have told a user (`Store::warnings`).
    pub(super) warning: Option<String>,
    /// The process that took the locks (a forked child shares them).
    owner: Process,
}

impl<S: Storage> Drop for Reader<S> {
    fn drop(&mut self) {
        if self.forked() {
            // A forked child's copy: the locks are the parent's map's.
            return;
        }
        // Explicitly: the file's description may outlive this map (lock.rs).
        let _ = lock::unpin_generation(self.file.as_file(), self.generation);
        let _ = lock::unregister_reader(self.file.as_file());
    }
}

impl<S: Storage> Reader<S> {
    /// True in a process forked from the one that opened the map.
    pub(super) fn forked(&self) -> bool {
        self.owner.is_gone()
    }

    pub(super) fn open(path: &Path, file: S) -> Result<Reader<S>> {
        lock::register_reader(file.as_file())?;
        // The header and the mapping are taken under one header lock, so
        // the mapping covers every extent of the header it goes with.
        let (loaded, map) = lock::with_header_lock(file.as_file(), false, || {
            let loaded = recovery::load_with(file.as_file(), build)?;
            // Before the header lock goes: a writer lists the readers only
            // after writing a header under it (DESIGN.md, "Reader protocol").
            lock::pin_generation(file.as_file(), loaded.header.generation)?;
            let map = file.map()?;
            Ok((loaded, map))
        })?;
        let header_len = PREFIX_LEN + loaded.json.len() as u64;
        let built = loaded.header;
        let warning = skipped_warning(path, &built.skipped);
        let objects = built.objects;
        let size = map.len() as u64;
        if objects.values().any(|o| o.offset + o.len > size) {
            return Err(Error::Format("file shrank while being opened".into()));
        }
        let mut reader = Reader {
            generation: built.generation,
            header_len,
            skipped: built.skipped.len(),
            warning,
            objects,
            map,
            file,
            header_end_at_open: 0,
            owner: Process::current(),
        };
        reader.header_end_at_open = reader.live_header_end();
        Ok(reader)
    }

    pub(super) fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let object = self.objects.get(key.as_str()).ok_or(Error::Empty)?;
        let end = start + buf.len() as u64;
        if end > object.len {
            return Err(Error::Edge);
        }
        let from = object.offset + start;
        // A writer never touches what this snapshot references, except when
        // its header outgrows the header region: the new header is written
        // over the place of objects it moved away. Those reads fail instead
        // of returning another header's bytes. The live header's length is
        // read before and after the copy: the header is written in one
        // pwrite, length first, so a torn copy sees the new length after.
        if self.overwritten(from) {
            return Err(Error::Stale);
        }
        let at = from as usize;
        super::copy::copy(buf, &self.map[at..at + buf.len()]);
        if self.overwritten(from) {
            return Err(Error::Stale);
        }
        Ok(())
    }

    /// See `Store::next_data`: from the file's own map of its holes
    /// (`SEEK_DATA`/`SEEK_HOLE`); without one, everything is data.
    pub(super) fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        use rustix::fs::{seek, SeekFrom};
        let object = self.objects.get(key.as_str()).ok_or(Error::Empty)?;
        let end = end.min(object.len);
        if start >= end {
            return Ok(None);
        }
        let (base, stop) = (object.offset, object.offset + end);
        let data = match seek(self.file.as_file(), SeekFrom::Data(base + start)) {
            Ok(at) => at,
            // Nothing but holes from there to the end of the file.
            Err(rustix::io::Errno::NXIO) => return Ok(None),
            Err(_) => return Ok(Some((start, end))),
        };
        if data >= stop {
            return Ok(None);
        }
        let data = data.max(base + start);
        let hole = seek(self.file.as_file(), SeekFrom::Hole(data)).unwrap_or(stop);
        Ok(Some((data - base, hole.clamp(data + 1, stop) - base)))
    }

    /// True if a header written since this map opened reaches `offset`.
    /// (A header that was torn at open, or that overlaps objects in a file
    /// of another writer, is what the snapshot was taken with: no change.)
    pub(super) fn overwritten(&self, offset: u64) -> bool {
        let live = self.live_header_end();
        live != self.header_end_at_open && offset < live
    }

    /// Where the header now at offset 0 ends (`GNZ1`, its length, the JSON).
    pub(super) fn live_header_end(&self) -> u64 {
        let len = self
            .map
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes);
        PREFIX_LEN + u64::from(len)
    }
}
