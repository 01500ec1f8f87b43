//! The `Store` over one ZIP archive: objects by key (entries of the archive
//! as it was read, or bytes staged in memory since), the writer lock, the
//! crash-safe rewrite at flush/close, and deletion by identity.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustix::fs::{self as rfs, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::archive::{Archive, Layout};
use super::write::{write_archive, Source};
use crate::error::{Error, Result};
use crate::key::{self, Key};
use crate::location;
use crate::store::memory::{grow, put};
use crate::store::tree::Tree;
use crate::store::{place, OpenOptions, Store};

/// How often an open that lost a race with a rewrite (the name moved to a
/// new archive between open and lock) is retried.
const RETRIES: usize = 16;

#[cfg(test)]
thread_local! {
    /// Tests make the next rewrite fail after the new archive is written
    /// and synced, before it is swapped in (a crash at the worst moment).
    pub(crate) static FAIL_BEFORE_SWAP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An object: an entry of the archive read at open (or last flush), or
/// bytes staged since.
enum Object {
    Entry(usize),
    Staged(Vec<u8>),
}

struct State {
    archive: Archive,
    /// The layout new archives are written in (the archive's, or for a new
    /// or emptied one the location's).
    layout: Layout,
    objects: Tree<Object>,
    /// Something changed since the archive was written.
    dirty: bool,
}

pub struct ZipStore {
    place: Place,
    state: RwLock<State>,
}

/// Where the archive is, and how it was opened.
struct Place {
    /// The held directory and the archive's name in it: renames, identity
    /// checks and the directory sync need no path lookups.
    at: place::Place,
    path: PathBuf,
    writable: bool,
    /// The layout of a new (or emptied) archive at this location.
    fresh: Layout,
}

/// The layout a new archive gets at `location`: netCDF's (a top-level
/// directory named after the file without its extension) for a `file:` URL
/// whose fragment has `mode=...,zip` (how netCDF names a zip dataset), keys
/// at the root for everything else.
pub fn fresh_layout(location: &str, path: &Path) -> Result<Layout> {
    let is_file_url = location::scheme(location).is_some_and(|s| s.eq_ignore_ascii_case("file"));
    let zip_mode = location.split_once('#').is_some_and(|(_, fragment)| {
        fragment.split('&').any(|kv| {
            kv.strip_prefix("mode=")
                .is_some_and(|modes| modes.split(',').any(|m| m.eq_ignore_ascii_case("zip")))
        })
    });
    if !(is_file_url && zip_mode) {
        return Ok(Layout::Root);
    }
    let stem = path
        .file_stem()
        .and_then(OsStr::to_str)
        .ok_or(Error::Invalid("archive name is not UTF-8"))?;
    key::check_segment(stem)?;
    Ok(Layout::Dir(stem.to_string()))
}

fn missing_is_empty(e: Errno) -> Error {
    match e {
        Errno::NOENT | Errno::NOTDIR => Error::Empty,
        e => e.into(),
    }
}

/// The objects of an archive, checked: no object at a key that is also an
/// intermediate key of another.
fn tree_of(archive: &Archive) -> Result<Tree<Object>> {
    let mut tree = Tree::default();
    for (i, e) in archive.entries.iter().enumerate() {
        let key = archive.key_of(e);
        if tree.contains(&key) || tree.check_leaf(&key).is_err() {
            return Err(Error::Format(format!(
                "ZIP archive is not a dataset: entry {:?} is both an object and a level of objects",
                e.name
            )));
        }
        tree.insert(&key, Object::Entry(i));
    }
    Ok(tree)
}

impl ZipStore {
    pub fn open(location: &str, options: OpenOptions) -> Result<ZipStore> {
        let path = location::file_path(location)?;
        let fresh = fresh_layout(location, &path)?;
        let name = path
            .file_name()
            .ok_or(Error::Invalid("a ZIP dataset path must name a file"))?
            .to_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if options.create {
            fs::create_dir_all(&parent).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Exists,
                _ => Error::Io(e),
            })?;
        }
        let at = place::Place::new(&parent, &name).map_err(missing_is_empty)?;
        let place = Place {
            at,
            path,
            writable: options.writable,
            fresh,
        };
        let state = if options.create {
            place.create(options.noclobber)?
        } else {
            place.open_existing()?
        };
        Ok(ZipStore {
            place,
            state: RwLock::new(state),
        })
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Place {
    /// Takes the writer lock of `file` (one writer per archive, across
    /// processes; readers never lock: a rewrite never changes their file).
    fn lock(file: &File) -> Result<()> {
        match rfs::flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(()),
            Err(Errno::WOULDBLOCK) => Err(Error::Locked),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the archive at the name: `nofollow` refuses a symbolic link.
    fn open_file(&self, nofollow: bool) -> std::result::Result<File, Errno> {
        let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        if nofollow {
            flags |= OFlags::NOFOLLOW;
        }
        // NONBLOCK: a FIFO at the name must not hang the open.
        rfs::openat(self.at.dir(), self.at.name(), flags, Mode::empty()).map(File::from)
    }

    fn state_of(archive: Archive) -> Result<State> {
        let objects = tree_of(&archive)?;
        Ok(State {
            layout: archive.layout.clone(),
            archive,
            objects,
            dirty: false,
        })
    }

    fn open_existing(&self) -> Result<State> {
        for _ in 0..RETRIES {
            // A writer renames over the name: it must be the archive itself.
            let file = match self.open_file(self.writable) {
                Ok(file) => file,
                Err(Errno::LOOP) => {
                    return Err(Error::Format(format!(
                        "{} is a symbolic link: open it read-only, or open its target",
                        self.path.display()
                    )))
                }
                Err(e) => return Err(missing_is_empty(e)),
            };
            let st = rfs::fstat(&file)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(Error::Format(format!(
                    "{} is not a regular file",
                    self.path.display()
                )));
            }
            if self.writable {
                Self::lock(&file)?;
                if !self.at.holds(&file)? {
                    continue; // a writer replaced it meanwhile
                }
            }
            return Self::state_of(Archive::load(file, &self.fresh, false)?);
        }
        Err(Error::Locked)
    }

    /// `create`: a new archive where there is none; an existing archive is
    /// emptied (or kept, with `noclobber`) only if it is a dataset: any other
    /// file is refused untouched (`Exists`).
    fn create(&self, noclobber: bool) -> Result<State> {
        for _ in 0..RETRIES {
            let file = match self.open_file(true) {
                Ok(file) => file,
                Err(Errno::NOENT) => match self.write_new(None, Vec::new(), "", &self.fresh) {
                    Ok(file) => return Self::state_of(Archive::load(file, &self.fresh, true)?),
                    // Someone made the name meanwhile: look again.
                    Err(Error::Exists) => continue,
                    Err(e) => return Err(e),
                },
                Err(Errno::LOOP) => return Err(Error::Exists),
                Err(e) => return Err(e.into()),
            };
            let st = rfs::fstat(&file)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(Error::Exists);
            }
            Self::lock(&file)?;
            if !self.at.holds(&file)? {
                continue;
            }
            let mut state = if st.st_size == 0 {
                // An empty file holds nothing to lose: it becomes the archive.
                State {
                    archive: Archive::empty(file, self.fresh.clone())?,
                    layout: self.fresh.clone(),
                    objects: Tree::default(),
                    dirty: true,
                }
            } else {
                let loaded = match Archive::load(file, &self.fresh, false).and_then(Self::state_of)
                {
                    Ok(loaded) => loaded,
                    // Not a ZIP archive, or one that is not a dataset: not ours.
                    Err(Error::Format(_)) => return Err(Error::Exists),
                    Err(e) => return Err(e),
                };
                if noclobber {
                    return Ok(loaded);
                }
                if !loaded.archive.entries.is_empty() && !loaded.archive.is_marked() {
                    return Err(Error::Exists);
                }
                State {
                    archive: loaded.archive,
                    layout: self.fresh.clone(),
                    objects: Tree::default(),
                    dirty: true,
                }
            };
            self.commit(&mut state)?;
            return Ok(state);
        }
        Err(Error::Locked)
    }

    /// Writes a new archive of `objects` into a new file in the archive's
    /// directory, makes it durable, and puts it at the name: replacing
    /// `current` (which must still be what the name refers to, else
    /// `Exists` and nothing is replaced), or where there was nothing
    /// (`current` None; `Exists` if a file appeared). Returns the new
    /// archive's file, locked.
    fn write_new(
        &self,
        current: Option<&Archive>,
        objects: Vec<(&str, Source<'_>)>,
        comment: &str,
        layout: &Layout,
    ) -> Result<File> {
        let temp = self.at.temp_name();
        let mode = match current {
            Some(a) => Mode::from_raw_mode(rfs::fstat(&a.file)?.st_mode & 0o7777),
            None => Mode::from_raw_mode(0o666),
        };
        let fd = rfs::openat(
            self.at.dir(),
            temp.as_os_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            mode,
        )?;
        let file = File::from(fd);
        let written = (|| {
            if current.is_some() {
                // The umask may have narrowed the old archive's mode.
                rfs::fchmod(&file, mode)?;
            }
            Self::lock(&file)?;
            let file = write_archive(file, current, &layout.prefix(), objects, comment)?;
            file.sync_all()?;
            Ok(file)
        })();
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                self.at.discard(&temp);
                return Err(e);
            }
        };
        #[cfg(test)]
        if FAIL_BEFORE_SWAP.with(|f| f.replace(false)) {
            self.at.discard(&temp);
            return Err(Error::Internal("test: rewrite stopped before the swap"));
        }
        if let Err(e) = self.at.replace(&temp, current.map(|a| &a.file)) {
            self.at.discard(&temp);
            return Err(e);
        }
        self.at.sync()?;
        Ok(file)
    }

    /// Writes the staged state as a new archive (if anything changed).
    fn commit(&self, state: &mut State) -> Result<()> {
        if !state.dirty {
            return Ok(());
        }
        let file = {
            let archive = &state.archive;
            let objects: Vec<(&str, Source<'_>)> = state
                .objects
                .iter()
                .map(|(key, o)| {
                    let source = match o {
                        Object::Entry(i) => Source::Entry(&archive.entries[*i]),
                        Object::Staged(data) => Source::Staged(data),
                    };
                    (key, source)
                })
                .collect();
            self.write_new(Some(archive), objects, &archive.comment, &state.layout)?
        };
        let archive = Archive::load(file, &state.layout, true)?;
        state.objects = tree_of(&archive)?;
        state.archive = archive;
        state.dirty = false;
        Ok(())
    }

    /// Removes the archive if its name still refers to it (device and inode
    /// of the held descriptor); a file put there since is left alone, and
    /// the answer is `Empty` (the dataset is not at its name).
    fn delete(&self, file: &File) -> Result<()> {
        self.at.remove(file)?.into_result()
    }
}

impl State {
    /// The object at `key` as staged bytes (an entry is read in first).
    fn staged(&mut self, key: &str) -> Result<&mut Vec<u8>> {
        let index = match self.objects.get(key) {
            None => return Err(Error::Empty),
            Some(Object::Entry(i)) => Some(*i),
            Some(Object::Staged(_)) => None,
        };
        if let Some(i) = index {
            let data = self.archive.read_all(&self.archive.entries[i])?;
            if let Some(o) = self.objects.get_mut(key) {
                *o = Object::Staged(data);
            }
        }
        match self.objects.get_mut(key) {
            Some(Object::Staged(data)) => Ok(data),
            _ => Err(Error::Internal("staged object vanished")),
        }
    }
}

impl Store for ZipStore {
    fn len(&self, key: &Key) -> Result<u64> {
        let state = self.read_state();
        match state.objects.get(key.as_str()) {
            Some(Object::Entry(i)) => Ok(state.archive.entries[*i].size),
            Some(Object::Staged(data)) => Ok(data.len() as u64),
            None => Err(Error::Empty),
        }
    }

    fn define(&self, key: &Key) -> Result<()> {
        let mut state = self.write_state();
        if state.objects.contains(key.as_str()) {
            return Ok(());
        }
        state.objects.check_leaf(key.as_str())?;
        state
            .objects
            .insert(key.as_str(), Object::Staged(Vec::new()));
        state.dirty = true;
        Ok(())
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let state = self.read_state();
        let end = start + buf.len() as u64;
        match state.objects.get(key.as_str()) {
            Some(Object::Entry(i)) => {
                let e = &state.archive.entries[*i];
                if end > e.size {
                    return Err(Error::Edge);
                }
                state.archive.read(e, start, buf)
            }
            Some(Object::Staged(data)) => {
                if end > data.len() as u64 {
                    return Err(Error::Edge);
                }
                buf.copy_from_slice(&data[start as usize..end as usize]);
                Ok(())
            }
            None => Err(Error::Empty),
        }
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        let mut state = self.write_state();
        if state.objects.contains(key.as_str()) {
            let object = state.staged(key.as_str())?;
            put(object, start, data)?;
        } else {
            state.objects.check_leaf(key.as_str())?;
            let mut object = Vec::new();
            put(&mut object, start, data)?;
            state.objects.insert(key.as_str(), Object::Staged(object));
        }
        state.dirty = true;
        Ok(())
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        Ok(self.read_state().objects.children(prefix.as_str()))
    }

    fn each_child(&self, prefix: &Key, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        self.read_state().objects.each_child(prefix.as_str(), each)
    }

    fn remove(&self, key: &Key) -> Result<()> {
        let mut state = self.write_state();
        state.objects.remove(key.as_str()).ok_or(Error::Empty)?;
        state.dirty = true;
        Ok(())
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        let mut state = self.write_state();
        let object = state.staged(key.as_str())?;
        if len < object.len() as u64 {
            object.truncate(len as usize);
            object.shrink_to_fit();
        } else {
            grow(object, len)?;
        }
        state.dirty = true;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.place.commit(&mut self.write_state())
    }

    fn stats(&self) -> Vec<(String, String)> {
        let state = self.read_state();
        let layout = match &state.layout {
            Layout::Root => "root (zarr ZipStore, OME-Zarr .ozx)".to_string(),
            Layout::Dir(s) => format!("netCDF (dataset in {s}/)"),
        };
        let staged = state
            .objects
            .iter()
            .filter(|(_, o)| matches!(o, Object::Staged(_)))
            .count();
        let deflated = state
            .archive
            .entries
            .iter()
            .filter(|e| e.method == super::archive::Method::Deflated)
            .count();
        vec![
            ("layout".into(), layout),
            ("archive bytes".into(), state.archive.file_len.to_string()),
            ("entries".into(), state.archive.entries.len().to_string()),
            ("deflated entries".into(), deflated.to_string()),
            (
                "superseded entries".into(),
                state.archive.superseded.to_string(),
            ),
            ("staged objects".into(), staged.to_string()),
        ]
    }

    fn verify(&self) -> Result<()> {
        self.read_state().archive.verify()
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        let ZipStore { place, state } = *self;
        let mut state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        if delete {
            // Staged changes are dropped with the dataset.
            return place.delete(&state.archive.file);
        }
        if place.writable {
            place.commit(&mut state)?;
        }
        Ok(())
    }
}
