//! The GNZ store: opening and creating a file, and the `Store` interface
//! over its reader (`reader.rs`) or writer (`writer.rs`). DESIGN.md
//! explains the why.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::compaction::snapshot_gaps;
use super::format;
use super::index_build::{build, Built};
use super::lock;
use super::reader::Reader;
use super::recovery::{self, Loaded};
use super::storage::{FileStorage, Storage};
use super::writer::Writer;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::place::Place;
use crate::store::{OpenOptions, Store};

/// Page size of the layout: large objects start on multiples of it, the
/// header region and the file end are multiples of it.
pub const PAGE: u64 = format::ALIGNMENT;
/// Alignment of objects smaller than a page.
pub const SMALL_ALIGN: u64 = 16;
/// libzmap's own revision of the layout, recorded in `metadata.zmap`.
pub const REVISION: u64 = 1;
/// An object that grows gets up to half its length again as spare capacity,
/// at most this much.
pub(super) const MAX_SLACK: u64 = 64 << 20;
/// Compaction: how many bytes it is worth copying to make the file one byte
/// shorter (page-rounded), when it chooses between layouts.
pub(super) const SIZE_WEIGHT: u64 = 1024;
/// A writable open refuses a file whose generation (`metadata.zmap.generation`,
/// or the commit record's) is this or more: its commits could overflow the
/// counter. Below it, 2^63 commits would be needed to get there.
pub const MAX_WRITABLE_GENERATION: u64 = 1 << 63;
/// Buffer size for the writer's copies through memory (and a compaction's
/// cost estimates).
pub(super) const CHUNK: u64 = 1 << 20;

// ---- file helpers ------------------------------------------------------------

fn sync_parent_dir(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    Ok(())
}

// ---- the store -----------------------------------------------------------------

/// One open GNZ file.
///
/// Generic over what writes, syncs and maps the file (`storage.rs`): the file
/// itself, or in tests one that records every operation.
pub struct GnzStore<S: Storage = FileStorage> {
    /// Where the file is, for `close(map, 1)`.
    place: Place,
    state: State<S>,
}

enum State<S: Storage> {
    /// Read-only: an immutable index over a memory map of the file.
    Reader(Reader<S>),
    /// Writable: the index, free space and commit machinery, behind a lock.
    Writer(Box<RwLock<Writer<S>>>),
}

impl GnzStore {
    /// Opens (or creates) the GNZ file at `path`.
    pub fn open(path: PathBuf, options: OpenOptions) -> Result<GnzStore> {
        GnzStore::open_on(path, options, &FileStorage::new)
    }
}

impl<S: Storage> GnzStore<S> {
    /// Opens (or creates) the GNZ file at `path`, on the storage `wrap`
    /// makes of it.
    pub(super) fn open_on(
        path: PathBuf,
        options: OpenOptions,
        wrap: &impl Fn(File) -> S,
    ) -> Result<GnzStore<S>> {
        if options.create {
            return GnzStore::create(path, options.noclobber, wrap);
        }
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::Empty),
            Err(e) => return Err(e.into()),
        };
        if meta.is_dir() {
            return Err(Error::Format(format!("{} is a directory", path.display())));
        }
        if !meta.is_file() {
            // A FIFO or a device: not a GNZ file, and opening a FIFO would
            // wait for a writer.
            return Err(Error::Format(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if !options.writable {
            let file = open_file(&path, false)?;
            let place = Place::resolved(&path)?;
            let reader = Reader::open(&path, wrap(file))?;
            return Ok(GnzStore {
                place,
                state: State::Reader(reader),
            });
        }
        let file = open_file(&path, true)?;
        let place = Place::resolved(&path)?;
        lock::lock_writer(&file)?;
        let loaded = recovery::load_with(&file, build)?;
        GnzStore::from_loaded(path, place, file, loaded, wrap)
    }

    /// A writer on a loaded file, or a reader when some arrays are not
    /// objects (the file is then read-only).
    fn from_loaded(
        path: PathBuf,
        place: Place,
        file: File,
        loaded: Loaded<Built>,
        wrap: &impl Fn(File) -> S,
    ) -> Result<GnzStore<S>> {
        if !loaded.header.skipped.is_empty() {
            lock::unlock_writer(&file)?;
            let reader = Reader::open(&path, wrap(file))?;
            return Ok(GnzStore {
                place,
                state: State::Reader(reader),
            });
        }
        let writer = Writer::from_loaded(wrap(file), loaded)?;
        Ok(GnzStore {
            place,
            state: State::Writer(Box::new(RwLock::new(writer))),
        })
    }

    fn create(path: PathBuf, noclobber: bool, wrap: &impl Fn(File) -> S) -> Result<GnzStore<S>> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        // Something that is not a regular file is not ours: refused,
        // untouched (a FIFO would also block the open).
        match fs::metadata(&path) {
            Ok(m) if !m.is_file() => return Err(Error::Exists),
            _ => {}
        }
        let (file, new) = match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open_file_io(&path, true) {
                Ok(f) => (f, false),
                // Something at the name that leads nowhere: a dangling
                // symbolic link (or a file removed in between). Nothing is
                // created where a link points.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::Exists),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let place = Place::resolved(&path)?;
        lock::lock_writer(&file)?;
        if file.metadata()?.len() == 0 {
            let writer = Writer::fresh(wrap(file))?;
            if new {
                sync_parent_dir(&path)?;
            }
            return Ok(GnzStore {
                place,
                state: State::Writer(Box::new(RwLock::new(writer))),
            });
        }
        // What this library cannot fully parse (another format, a GNZ file
        // of a later version or with dtypes it does not know, a damaged
        // one) is not its dataset: refused in either mode, touching nothing.
        // Its own files always parse, crashes included (DESIGN.md).
        let loaded = match recovery::load_with(&file, build) {
            Ok(loaded) => loaded,
            Err(Error::Format(_)) => return Err(Error::Exists),
            Err(e) => return Err(e),
        };
        if noclobber {
            return GnzStore::from_loaded(path, place, file, loaded, wrap);
        }
        if loaded.header.arrays > 0 && !loaded.header.marked {
            return Err(Error::Exists);
        }
        // Empty the dataset: every array goes (those that are not objects
        // too), and with them everything the metadata said. Their bytes stay
        // untouched until the emptied header is committed.
        let mut writer = Writer::from_loaded(wrap(file), loaded)?;
        writer.clear();
        writer.commit()?;
        Ok(GnzStore {
            place,
            state: State::Writer(Box::new(RwLock::new(writer))),
        })
    }

    /// The writer, in the process that opened it. A forked child shares the
    /// file description, and so the locks (lock.rs): there a writable map
    /// neither writes nor reads the file, and closing a map leaves the
    /// locks, the queue and the file to the parent (DESIGN.md, "Fork").
    fn writer(&self) -> Result<RwLockWriteGuard<'_, Writer<S>>> {
        match &self.state {
            State::Writer(w) => {
                let w = w.write().unwrap_or_else(|e| e.into_inner());
                if w.file.forked() {
                    return Err(Error::ReadOnly);
                }
                Ok(w)
            }
            State::Reader(_) => Err(Error::ReadOnly),
        }
    }

    /// True in a process forked from the one that opened the map.
    fn forked(&self) -> bool {
        match &self.state {
            State::Reader(r) => r.forked(),
            State::Writer(w) => read(w).file.forked(),
        }
    }

    /// Rewrites the file without holes; its size before and after.
    pub fn compact_file(&self) -> Result<(u64, u64)> {
        self.writer()?.compact()
    }
}

fn open_file(path: &Path, writable: bool) -> Result<File> {
    Ok(open_file_io(path, writable)?)
}

fn open_file_io(path: &Path, writable: bool) -> io::Result<File> {
    fs::OpenOptions::new().read(true).write(writable).open(path)
}

impl<S: Storage> Store for GnzStore<S> {
    fn refuses_writes(&self) -> bool {
        matches!(self.state, State::Reader(_))
    }

    fn warnings(&self) -> Vec<String> {
        match &self.state {
            State::Reader(r) => r.warning.iter().cloned().collect(),
            State::Writer(_) => Vec::new(),
        }
    }

    fn len(&self, key: &Key) -> Result<u64> {
        match &self.state {
            State::Reader(r) => r
                .objects
                .get(key.as_str())
                .map(|o| o.len)
                .ok_or(Error::Empty),
            State::Writer(w) => Ok(read(w).object(key)?.len),
        }
    }

    fn define(&self, key: &Key) -> Result<()> {
        self.writer()?.define(key)
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        match &self.state {
            State::Reader(r) => r.read_at(key, start, buf),
            State::Writer(w) => {
                let w = read(w);
                if w.file.forked() {
                    // Its bytes may still be queued for the parent's worker.
                    return Err(Error::ReadOnly);
                }
                w.read_at(key, start, buf)
            }
        }
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        self.writer()?.write_at(key, start, data)
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        Ok(match &self.state {
            State::Reader(r) => r.objects.children(prefix.as_str()),
            State::Writer(w) => read(w).objects.children(prefix.as_str()),
        })
    }

    fn each_child(&self, prefix: &Key, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        // One sorted set per intermediate key (store::tree): no copies.
        match &self.state {
            State::Reader(r) => r.objects.each_child(prefix.as_str(), each),
            State::Writer(w) => read(w).objects.each_child(prefix.as_str(), each),
        }
    }

    fn remove(&self, key: &Key) -> Result<()> {
        self.writer()?.remove(key)
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        self.writer()?.truncate(key, len)
    }

    fn flush(&self) -> Result<()> {
        match &self.state {
            State::Reader(_) => Ok(()),
            State::Writer(_) => self.writer()?.commit(),
        }
    }

    fn compact(&self) -> Result<(u64, u64)> {
        self.compact_file()
    }

    fn stats(&self) -> Vec<(String, String)> {
        match &self.state {
            State::Reader(r) => {
                let data: u64 = r.objects.values().map(|o| o.len).sum();
                let (holes, unreferenced) =
                    snapshot_gaps(&r.objects, r.header_len, r.map.len() as u64);
                vec![
                    ("gnz generation".into(), r.generation.to_string()),
                    ("gnz file bytes".into(), r.map.len().to_string()),
                    ("gnz header bytes".into(), r.header_len.to_string()),
                    ("gnz objects".into(), r.objects.len().to_string()),
                    ("gnz object bytes".into(), data.to_string()),
                    ("gnz holes".into(), holes.to_string()),
                    ("gnz unreferenced bytes".into(), unreferenced.to_string()),
                    ("gnz skipped arrays".into(), r.skipped.to_string()),
                ]
            }
            State::Writer(w) => read(w).stats(),
        }
    }

    fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        match &self.state {
            State::Reader(r) => r.next_data(key, start, end),
            // Staged bytes are not in the file yet: all data.
            State::Writer(w) => {
                let len = read(w).object(key)?.len;
                Ok((start < end.min(len)).then_some((start, end.min(len))))
            }
        }
    }

    fn verify(&self) -> Result<()> {
        match &self.state {
            State::Reader(r) => {
                // The file must still be a valid GNZ file (a writer may have
                // committed since; our snapshot stays readable regardless).
                lock::with_header_lock(r.file.as_file(), false, || recovery::load(r.file.as_file()))
                    .map(|_| ())
            }
            State::Writer(w) => {
                let w = read(w);
                if w.file.forked() {
                    return Err(Error::ReadOnly);
                }
                w.verify()
            }
        }
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        let forked = self.forked();
        let GnzStore { place, state, .. } = *self;
        if forked {
            // The parent's map: nothing committed, removed or unlocked
            // here (the Drop impls know it too). Nothing written was
            // accepted, so nothing is lost; a delete is refused.
            drop(state);
            return if delete { Err(Error::ReadOnly) } else { Ok(()) };
        }
        if delete {
            // The file is removed while the map still holds it (and its
            // locks), by identity; uncommitted changes are dropped with it.
            // Renamed away or replaced by another file: nothing is removed,
            // and the dataset is no longer at its path (`Empty`).
            let removed = match &state {
                State::Reader(r) => place.remove(r.file.as_file()),
                State::Writer(w) => place.remove(read(w).file.as_file()),
            };
            drop(state);
            return removed?.into_result();
        }
        match state {
            State::Reader(_) => Ok(()),
            State::Writer(w) => (*w).into_inner().unwrap_or_else(|e| e.into_inner()).close(),
        }
    }
}

fn read<S: Storage>(w: &RwLock<Writer<S>>) -> RwLockReadGuard<'_, Writer<S>> {
    w.read().unwrap_or_else(|e| e.into_inner())
}
