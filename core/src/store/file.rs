//! `NCZM_FILE`: a directory tree, one regular file per object, one directory
//! per intermediate key, and nothing else (no lock, metadata or temporary
//! files), so `find` over a dataset shows exactly its keys (zmap-api.md A4).
//!
//! Every operation works relative to a directory fd of the root held for the
//! map's lifetime, so a relative root is resolved once, at open, and later
//! `chdir`s do not move the dataset.
//!
//! Only regular files are objects and only directories intermediate keys.
//! Symbolic links, FIFOs, sockets and devices are foreign to the data model:
//! the backend never creates or lists one, and every operation on a key
//! naming one gives `Invalid` (`NC_EINVAL`), never reading or writing it and
//! never opening it for writing (mutations look its type up first and open
//! with write access only what was a regular file, then check the type and
//! identity on the descriptor; reads open `O_RDONLY | O_NONBLOCK` and check the type
//! on that descriptor before reading);
//! `close(delete)` unlinks them without following or opening them.
//! A link in an intermediate position is followed by object opens only while
//! it stays inside the dataset (`openat2` with `RESOLVE_BENEATH`, where the
//! kernel has it). `len` is a single `fstatat`, which cannot confine
//! intermediate links: through a link leading out of the dataset it may
//! report a size, but no byte is ever read or written there.
//!
//! `define` of a new key creates its file `O_CREAT | O_EXCL | O_NOFOLLOW`
//! (a regular file this map made, nothing else) open for writing and keeps
//! that one descriptor for the write of the same key that follows (NCZarr's
//! create): that write checks with one `fstat` that the file still has a
//! name and writes, without resolving the key again (`Defined`).
//!
//! `close(delete)` removes the directory held open, found by its fd, and
//! only a dataset (a marker at its top, or created by this map): never
//! whatever has its name now, never a plain directory.
//!
//! Durability: mutations set `dirty`; `flush` and `close(false)` then run one
//! `syncfs` on the root's file system, which covers file data and the
//! directory entries of new objects alike. Objects are changed in place: a
//! crash keeps what was not changed since the last flush, not the flushed
//! state of what was (README "Durability"; GNZ keeps all of it).

use std::ffi::{CStr, CString, OsString};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use super::{OpenOptions, Store};
use crate::error::{Error, Result};
use crate::key::{self, Key};
use crate::location;

/// Permissions of new objects and directories, before the umask.
const FILE_MODE: u32 = 0o666;
const DIR_MODE: u32 = 0o777;

/// How often an operation that lost a race (a directory it needed was pruned
/// by a concurrent `remove`, or `openat2` saw a concurrent rename) is retried.
const RETRIES: usize = 16;

/// How object paths are resolved below the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolve {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: no escape.
    Beneath,
    /// Plain `openat`, one directory level at a time with `O_NOFOLLOW`: no
    /// link is followed at all (stricter than `Beneath`, which follows links
    /// that stay inside the dataset).
    StepByStep,
}

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

/// Whether `openat2` works here, probed once per process on a real root.
fn detect_resolve(root: BorrowedFd<'_>) -> Resolve {
    match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_YES => return Resolve::Beneath,
        OPENAT2_NO => return Resolve::StepByStep,
        _ => {}
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rfs::openat2(root, ".", flags, Mode::empty(), beneath()) {
        Ok(_) => {
            OPENAT2.store(OPENAT2_YES, Ordering::Relaxed);
            Resolve::Beneath
        }
        // Old kernel, or a seccomp filter that refuses the syscall.
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG | Errno::OPNOTSUPP) => {
            OPENAT2.store(OPENAT2_NO, Ordering::Relaxed);
            Resolve::StepByStep
        }
        // Anything else may be transient: stay safe-ish, do not cache.
        Err(_) => Resolve::StepByStep,
    }
}

#[cfg(test)]
thread_local! {
    /// Tests set this to run a whole suite on the `openat` fallback.
    pub(crate) static FORCE_FALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub struct FileStore {
    /// The dataset root, `O_DIRECTORY`, for the map's lifetime.
    root: OwnedFd,
    /// The directory holding the root, and the root's name in it: what
    /// `close(delete)` removes, without re-resolving a relative path.
    parent: OwnedFd,
    name: OsString,
    resolve: Resolve,
    writable: bool,
    /// This map made (or claimed) the root with `create`: `close(delete)`
    /// may remove it even while it holds no dataset marker.
    created: bool,
    /// Something changed since the last successful sync.
    dirty: AtomicBool,
    /// The object the last `define` created, still open for writing.
    defined: Mutex<Option<Defined>>,
}

/// A new object `define` created (`O_CREAT | O_EXCL | O_NOFOLLOW`: a regular
/// file this map made, nothing else), kept open for writing: NCZarr defines
/// a key and writes it next, and that write is then one `fstat` and the
/// `pwrite`, with no lookup and no second open. Only the last define is kept
/// (one descriptor); a define of another key, a `remove` of this one, the
/// write that uses it, and close drop it.
struct Defined {
    /// The key, relative to the root.
    rel: String,
    fd: OwnedFd,
}

/// Objects are opened `O_NONBLOCK` so that a FIFO planted at a key cannot
/// hang the open; on a regular file Linux may still answer `EAGAIN` under
/// memory or writeback pressure. Then the flag is dropped and I/O retried.
fn make_blocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = rfs::fcntl_getfl(fd)?;
    rfs::fcntl_setfl(fd, flags - OFlags::NONBLOCK)?;
    Ok(())
}

fn is_missing(e: Errno) -> bool {
    e == Errno::NOENT || e == Errno::NOTDIR
}

fn missing_is_empty(e: Errno) -> Error {
    if is_missing(e) {
        Error::Empty
    } else {
        e.into()
    }
}

/// The directory holding `path` and `path`'s name in it. A path without a
/// final name (`.`, `..`, `a/..`) is made canonical first so it has one.
fn split_root(path: &Path) -> Result<(PathBuf, OsString)> {
    let path = match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => std::fs::canonicalize(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::Empty,
            _ => Error::Io(e),
        })?,
    };
    let name = path
        .file_name()
        .ok_or(Error::Invalid("the file-system root cannot be a dataset"))?
        .to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Makes a missing root and its missing parents for `create`.
///
/// A `.` or `..` after the first missing directory is refused before
/// anything is made: `p/new/..` would make `p/new` only to name `p` (and be
/// refused there), `p/a/b/../c` would leave `p/a/b` beside the dataset.
fn make_root(path: &Path) -> Result<()> {
    let mut missing_from = None;
    let mut at = PathBuf::new();
    for (i, part) in path.components().enumerate() {
        at.push(part);
        if missing_from.is_none() && matches!(part, Component::Normal(_)) {
            if let Err(e) = std::fs::symlink_metadata(&at) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    missing_from = Some(i);
                }
            }
        }
        if missing_from.is_some() && matches!(part, Component::CurDir | Component::ParentDir) {
            return Err(Error::Invalid(
                "dataset path: `.` or `..` after a directory that does not exist",
            ));
        }
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    match std::fs::DirBuilder::create(&builder, path) {
        Ok(()) => Ok(()),
        // A regular file (or another non-directory) is in the way.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(Error::Exists),
        Err(e) => Err(Error::Io(e)),
    }
}

/// The entries of the directory `fd` (consumed), without `.` and `..`, with
/// the `Dir` so callers can keep using its fd.
fn read_entries(fd: OwnedFd) -> Result<(Dir, Vec<(CString, FileType)>)> {
    let mut dir = Dir::new(fd)?;
    let mut entries = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        entries.push((name.to_owned(), entry.file_type()));
    }
    Ok((dir, entries))
}

/// The type of `name` in `dir` when `readdir` did not say (some file systems
/// never do), without following a link.
fn entry_type(dir: BorrowedFd<'_>, name: &CStr, listed: FileType) -> FileType {
    if listed != FileType::Unknown {
        return listed;
    }
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode))
        .unwrap_or(FileType::Unknown)
}

/// Removes everything inside the directory `fd` (consumed), depth first,
/// never following a link: links are unlinked, their targets untouched.
fn remove_contents(fd: OwnedFd) -> Result<()> {
    let (dir, entries) = read_entries(fd)?;
    let dirfd = dir.fd()?;
    for (name, listed) in entries {
        if entry_type(dirfd, &name, listed) == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rfs::openat(dirfd, name.as_c_str(), flags, Mode::empty()) {
                Ok(child) => remove_contents(child)?,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            }
            match rfs::unlinkat(dirfd, name.as_c_str(), AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match rfs::unlinkat(dirfd, name.as_c_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `(parent, name)` of a relative key path: `("a/b", "c")`, `("", "c")`.
fn split_rel(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// Why opening an object for creation failed, in zmap terms.
fn creation_error(e: Errno) -> Error {
    match e {
        Errno::ISDIR => Error::PREFIX_OF_OBJECTS,
        Errno::NOTDIR => Error::BELOW_AN_OBJECT,
        Errno::LOOP | Errno::NXIO => not_an_object(),
        e => e.into(),
    }
}

/// A key whose last component is on disk but neither a regular file (an
/// object) nor a directory (an intermediate key): a FIFO, socket, device or
/// symbolic link. Every operation on such a key answers this one error.
fn not_an_object() -> Error {
    Error::Invalid("key names a file that is not a regular file or directory")
}

/// Why an existing object could not be opened, for operations on existing
/// objects only (`len`, `read`, `truncate`, `remove`): missing, an
/// intermediate key, or a path below an object are `Empty`.
fn query_error(e: Errno) -> Error {
    match e {
        e if is_missing(e) => Error::Empty,
        // ISDIR: an intermediate key. XDEV: a link leading out of the
        // dataset in an intermediate position (nothing there is ours).
        Errno::ISDIR | Errno::XDEV => Error::Empty,
        Errno::NXIO | Errno::LOOP => not_an_object(),
        e => e.into(),
    }
}

fn is_regular(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

impl FileStore {
    pub fn open(location: &str, options: OpenOptions) -> Result<FileStore> {
        let path = location::file_path(location)?;
        if options.create {
            make_root(&path)?;
        }
        let (parent_path, name) = split_root(&path)?;
        let parent = rfs::openat(
            CWD,
            &parent_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(missing_is_empty)?;
        let root = rfs::openat(
            &parent,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            // The root exists but is not a directory.
            Errno::NOTDIR if options.create => Error::Exists,
            e => missing_is_empty(e),
        })?;
        #[allow(unused_mut)]
        let mut resolve = detect_resolve(root.as_fd());
        #[cfg(test)]
        if FORCE_FALLBACK.with(|f| f.get()) {
            resolve = Resolve::StepByStep;
        }
        let store = FileStore {
            root,
            parent,
            name,
            resolve,
            writable: options.writable,
            created: options.create,
            dirty: AtomicBool::new(options.create),
            defined: Mutex::new(None),
        };
        if options.create {
            store.claim(options.noclobber)?;
        }
        Ok(store)
    }

    /// Makes an existing root ours for `create`: an empty directory is fine;
    /// a dataset is emptied unless `noclobber`; anything else is refused
    /// untouched, so creating over the wrong directory never deletes data.
    fn claim(&self, noclobber: bool) -> Result<()> {
        let (_, entries) = read_entries(self.reopen_root()?)?;
        if entries.is_empty() {
            return Ok(());
        }
        let marked = entries.iter().any(|(name, _)| {
            std::str::from_utf8(name.to_bytes()).is_ok_and(super::is_dataset_marker)
        });
        if !marked {
            return Err(Error::Exists);
        }
        if noclobber {
            return Ok(());
        }
        remove_contents(self.reopen_root()?)
    }

    /// A fresh fd of the root: directory reads need their own file offset,
    /// which concurrent listings must not share.
    fn reopen_root(&self) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(rfs::openat(&self.root, ".", flags, Mode::empty())?)
    }

    /// Opens `rel` below the root (`rel` non-empty), confined to the dataset
    /// where the kernel allows it.
    fn open_at(&self, rel: &str, flags: OFlags, mode: Mode) -> std::result::Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        let mut tries = 0;
        loop {
            let result = match self.resolve {
                Resolve::Beneath => rfs::openat2(&self.root, rel, flags, mode, beneath()),
                Resolve::StepByStep => self.open_step_by_step(rel, flags, mode),
            };
            match result {
                // EAGAIN: openat2 saw a concurrent rename and asks to retry.
                Err(Errno::INTR | Errno::AGAIN) if tries < RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Without `openat2`: opens each directory of `rel` with `O_NOFOLLOW`
    /// from the one before, then the last component with `O_NOFOLLOW`, so a
    /// link anywhere in the path stops the walk instead of leaving the root.
    fn open_step_by_step(
        &self,
        rel: &str,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        let (parents, last) = split_rel(rel);
        let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir: Option<OwnedFd> = None;
        for segment in parents.split('/').filter(|s| !s.is_empty()) {
            let from = dir.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            dir = Some(rfs::openat(from, segment, step, Mode::empty())?);
        }
        let from = dir.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
        rfs::openat(from, last, flags | OFlags::NOFOLLOW, mode)
    }

    /// Runs `op` on the directory `rel` below the root (`""` is the root).
    fn with_dir<T>(
        &self,
        rel: &str,
        op: impl FnOnce(BorrowedFd<'_>) -> std::result::Result<T, Errno>,
    ) -> std::result::Result<T, Errno> {
        if rel.is_empty() {
            return op(self.root.as_fd());
        }
        let dir = self.open_at(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        op(dir.as_fd())
    }

    /// Creates the missing intermediate directories of `key`, one level at a
    /// time through confined opens so a link cannot redirect a `mkdir`.
    /// Returns quietly when a concurrent `remove` pruned a level under us:
    /// the caller retries the whole operation.
    fn make_parents(&self, key: &Key) -> Result<()> {
        let mut parent: Option<OwnedFd> = None;
        for ancestor in key.ancestors() {
            let rel = &ancestor[1..];
            let (_, name) = split_rel(rel);
            let dir = parent.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            match rfs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(Errno::NOENT) => return Ok(()),
                Err(e) => return Err(creation_error(e)),
            }
            match self.open_at(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
                Ok(fd) => parent = Some(fd),
                Err(Errno::NOENT) => return Ok(()),
                Err(e) => return Err(creation_error(e)),
            }
        }
        Ok(())
    }

    /// Opens the existing object `rel` with `access` (`None`: an `O_PATH`
    /// handle, only to `fstat`), and its status. Only a regular file is ever
    /// opened with access here: its type is looked up first without opening
    /// it (an `fstatat`, which never calls a device driver or blocks on a
    /// FIFO), then the key is opened with `access` and the descriptor must
    /// be that same regular file (`fstat`), so anything swapped in between
    /// is refused unwritten. Not an object: `ISDIR` for a directory, `NXIO`
    /// for anything else (FIFO, socket, device, a symbolic link at the key).
    fn open_existing(
        &self,
        rel: &str,
        access: Option<OFlags>,
    ) -> std::result::Result<(OwnedFd, rfs::Stat), Errno> {
        let kind = |st: &rfs::Stat| match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Ok(()),
            FileType::Directory => Err(Errno::ISDIR),
            _ => Err(Errno::NXIO),
        };
        let Some(access) = access else {
            // Confined like every open: an O_PATH handle opens nothing.
            let handle = self.open_at(rel, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty())?;
            let st = rfs::fstat(&handle)?;
            kind(&st)?;
            return Ok((handle, st));
        };
        let seen = rfs::statat(&self.root, rel, AtFlags::SYMLINK_NOFOLLOW)?;
        kind(&seen)?;
        let access = access | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = self.open_at(rel, access, Mode::empty())?;
        let st = rfs::fstat(&fd)?;
        kind(&st)?;
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) {
            return Err(Errno::NXIO);
        }
        Ok((fd, st))
    }

    /// Opens the object at `key` with `access` (`None`: only to check it is
    /// an object), creating it (and its intermediate directories) when
    /// missing, then opened with `new_access`; says whether this call
    /// created it. One `open` for a new object whose parents exist; an
    /// existing one goes through `open_existing`: a new object must be known
    /// as new, so a failed first write can take it back.
    fn open_creating(
        &self,
        key: &Key,
        access: Option<OFlags>,
        new_access: OFlags,
    ) -> Result<(OwnedFd, bool)> {
        // NONBLOCK: harmless on the regular file O_EXCL creates.
        let new = new_access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CREATE | OFlags::EXCL;
        let mode = Mode::from_raw_mode(FILE_MODE);
        if access.is_some() {
            // Writes mostly meet existing objects (NCZarr defines, then
            // writes; chunks are rewritten): look first, create if missing.
            match self.open_existing(key.relative(), access) {
                Ok((fd, _)) => return Ok((fd, false)),
                Err(e) if is_missing(e) => {}
                Err(e) => return Err(creation_error(e)),
            }
        }
        let mut made_parents = false;
        let mut tries = 0;
        let failure = loop {
            let err = match self.open_at(key.relative(), new, mode) {
                Ok(fd) => return Ok((fd, true)),
                // Something is there: an object, or a directory / link /
                // special file, which `open_existing` refuses unopened.
                Err(Errno::EXIST) => match self.open_existing(key.relative(), access) {
                    Ok((fd, _)) => return Ok((fd, false)),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if err != Errno::NOENT || tries >= RETRIES {
                break creation_error(err);
            }
            // ENOENT: a missing parent, or a concurrent remove; try again.
            tries += 1;
            made_parents = true;
            if let Err(e) = self.make_parents(key) {
                break e;
            }
        };
        if made_parents {
            // Leave no empty directory behind a failed creation.
            self.prune_parents(key);
        }
        Err(failure)
    }

    /// Takes back the object a failed first write created, unless someone
    /// else has written to it meanwhile.
    fn discard_new(&self, key: &Key, fd: BorrowedFd<'_>) {
        if !rfs::fstat(fd).is_ok_and(|st| st.st_size == 0) {
            return;
        }
        let (parent, name) = split_rel(key.relative());
        if self
            .with_dir(parent, |dir| rfs::unlinkat(dir, name, AtFlags::empty()))
            .is_ok()
        {
            self.prune_parents(key);
        }
    }

    /// Removes the now-empty intermediate directories above `key`, deepest
    /// first, stopping at the first one still in use (never the root).
    /// Best effort: a failure leaves a harmless empty intermediate key.
    fn prune_parents(&self, key: &Key) {
        let ancestors: Vec<&str> = key.ancestors().collect();
        for ancestor in ancestors.into_iter().rev() {
            let (parent, name) = split_rel(&ancestor[1..]);
            let removed = self.with_dir(parent, |dir| rfs::unlinkat(dir, name, AtFlags::REMOVEDIR));
            if removed.is_err() {
                break;
            }
        }
    }

    fn touch(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// The cache of the last define. Its state is valid at every instant,
    /// so a panic elsewhere while it was held does not make it unusable.
    fn defined(&self) -> MutexGuard<'_, Option<Defined>> {
        self.defined.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The descriptor the last `define` of `key` created, taken out of the
    /// cache, if that file still has a name (`st_nlink > 0`). A file that
    /// was unlinked, or renamed over, since then (by `remove`, or by another
    /// process) is dropped: the caller then resolves the key afresh, as if
    /// nothing had been cached, and never writes into the orphan.
    fn take_defined(&self, key: &Key) -> Option<OwnedFd> {
        let fd = {
            let mut defined = self.defined();
            match defined.as_ref() {
                Some(d) if d.rel == key.relative() => defined.take()?.fd,
                _ => return None,
            }
        };
        match rfs::fstat(&fd) {
            Ok(st) if st.st_nlink > 0 => Some(fd),
            _ => None,
        }
    }

    /// Drops the cached define of `key`, if any.
    fn forget_defined(&self, key: &Key) {
        let mut defined = self.defined();
        if defined.as_ref().is_some_and(|d| d.rel == key.relative()) {
            *defined = None;
        }
    }

    fn sync(&self) -> Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = rfs::syncfs(&self.root) {
                self.dirty.store(true, Ordering::Release);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Removes the dataset this map opened, found by its held descriptor,
    /// never by its name: its contents (walked from the held root fd, links
    /// unlinked, never followed), then its entry in the parent, only if that
    /// entry is still the same directory (device and inode). A directory
    /// that holds no dataset marker at its top is refused untouched
    /// (`NotDataset`), unless this map created it.
    fn delete(&self) -> Result<()> {
        let root = rfs::fstat(&self.root)?;
        // A root unlinked under us (st_nlink 0) has nothing left to delete.
        if root.st_nlink > 0 {
            let (_, entries) = read_entries(self.reopen_root()?)?;
            let marked = entries.iter().any(|(name, _)| {
                std::str::from_utf8(name.to_bytes()).is_ok_and(super::is_dataset_marker)
            });
            if !marked && !self.created {
                return Err(Error::NotDataset);
            }
            remove_contents(self.reopen_root()?)?;
        }
        let name = self.name.as_os_str();
        let same = |st: &rfs::Stat| (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino);
        let flags = match rfs::statat(&self.parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if same(&st) => AtFlags::REMOVEDIR,
            // The root was given as a link to this directory: drop the link.
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                match rfs::statat(&self.parent, name, AtFlags::empty()) {
                    Ok(target) if same(&target) => AtFlags::empty(),
                    _ => return Ok(()),
                }
            }
            // Renamed or removed while open: whatever has the name now is
            // not ours; the dataset's contents are gone, its emptied
            // directory stays under whatever name it has now.
            Ok(_) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match rfs::unlinkat(&self.parent, name, flags) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_all_at(fd: BorrowedFd<'_>, start: u64, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            match rustix::io::pwrite(fd, &data[done..], start + done as u64) {
                Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => make_blocking(fd)?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl Store for FileStore {
    fn len(&self, key: &Key) -> Result<u64> {
        // An O_PATH handle, resolved like every other open (confined to the
        // dataset), then fstat: O_PATH never opens the file itself, so a
        // FIFO cannot block, and a link at the key is seen as a link.
        match self.open_existing(key.relative(), None) {
            Ok((_, st)) => Ok(st.st_size as u64),
            Err(e) => Err(query_error(e)),
        }
    }

    fn define(&self, key: &Key) -> Result<()> {
        // An existing object is only checked: neither opened for reading or
        // writing, nor truncated or touched. A new one is created open for
        // writing and kept for the write of the same key that follows.
        let result = self
            .open_creating(key, None, OFlags::WRONLY)
            .map(|(fd, created)| {
                if created {
                    let rel = key.relative().to_owned();
                    *self.defined() = Some(Defined { rel, fd });
                }
            });
        self.touch();
        result
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        // Opened directly (the hot path): read-only and non-blocking, a
        // FIFO or device is then refused by its type, before any read.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = self
            .open_at(key.relative(), flags, Mode::empty())
            .map_err(query_error)?;
        let st = rfs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Error::Empty),
            _ => return Err(not_an_object()),
        }
        if start + buf.len() as u64 > st.st_size as u64 {
            return Err(Error::Edge);
        }
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pread(&fd, &mut buf[done..], start + done as u64) {
                // The object shrank since the fstat.
                Ok(0) => return Err(Error::Edge),
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => make_blocking(fd.as_fd())?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        if let Some(fd) = self.take_defined(key) {
            // The regular file define created: written like any existing
            // object (a failure leaves it, as define made it, in place).
            let result = Self::write_all_at(fd.as_fd(), start, data);
            self.touch();
            return result;
        }
        let result = self
            .open_creating(key, Some(OFlags::WRONLY), OFlags::WRONLY)
            .and_then(|(fd, created)| {
                let written = Self::write_all_at(fd.as_fd(), start, data);
                if written.is_err() && created {
                    // A failed write leaves no object behind.
                    self.discard_new(key, fd.as_fd());
                }
                written
            });
        self.touch();
        result
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        let opened = if prefix.is_root() {
            self.reopen_root()
        } else {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
            match self.open_at(prefix.relative(), flags, Mode::empty()) {
                Ok(fd) => Ok(fd),
                // A leaf, a link, or nothing: no children.
                Err(e) if is_missing(e) || e == Errno::LOOP => return Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        };
        let (dir, entries) = read_entries(opened?)?;
        let dirfd = dir.fd()?;
        let mut names = Vec::with_capacity(entries.len());
        for (name, listed) in entries {
            // Only what a key can name: regular files and directories whose
            // name is a valid key segment. Links, FIFOs, sockets, devices
            // and odd names are not part of the dataset.
            match entry_type(dirfd, &name, listed) {
                FileType::RegularFile | FileType::Directory => {}
                _ => continue,
            }
            if let Ok(text) = std::str::from_utf8(name.to_bytes()) {
                if key::check_segment(text).is_ok() {
                    names.push(text.to_string());
                }
            }
        }
        Ok(names)
    }

    fn remove(&self, key: &Key) -> Result<()> {
        self.forget_defined(key);
        let (parent, name) = split_rel(key.relative());
        let result = self.with_dir(parent, |dir| {
            match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if is_regular(&st) => rfs::unlinkat(dir, name, AtFlags::empty()),
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    Err(Errno::ISDIR)
                }
                Ok(_) => Err(Errno::NXIO),
                Err(e) => Err(e),
            }
        });
        match result {
            Ok(()) => {
                self.prune_parents(key);
                self.touch();
                Ok(())
            }
            Err(e) => Err(query_error(e)),
        }
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        let (fd, _) = self
            .open_existing(key.relative(), Some(OFlags::WRONLY))
            .map_err(query_error)?;
        let result = rfs::ftruncate(&fd, len).map_err(Error::from);
        self.touch();
        result
    }

    fn flush(&self) -> Result<()> {
        self.sync()
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        *self.defined() = None;
        if delete {
            self.delete()
        } else if self.writable {
            self.sync()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Map, NC_NOCLOBBER, NC_WRITE};
    use crate::store::Impl;
    use crate::testing::key;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    fn loc(path: &Path) -> String {
        path.to_str().unwrap().to_string()
    }

    /// Every path below `root` (relative), directories as `"d/"`, files with
    /// their content.
    fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    out.insert(format!("{rel}/"), None);
                    walk(base, &path, out);
                } else {
                    out.insert(rel, Some(fs::read(&path).unwrap_or_default()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn create_refuses_a_non_dataset_directory_and_deletes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        fs::create_dir_all(home.join("docs")).unwrap();
        fs::write(home.join("docs/thesis.tex"), b"years of work").unwrap();
        fs::write(home.join("notes"), b"keep").unwrap();
        let before = tree(&home);
        for mode in [0, NC_NOCLOBBER] {
            let err = Map::create(Impl::File, &loc(&home), mode, 0).err().unwrap();
            assert!(matches!(err, Error::Exists), "mode {mode}: {err:?}");
            assert_eq!(tree(&home), before);
        }
    }

    #[test]
    fn create_over_datasets_empty_dirs_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        // A dataset marked only by .zgroup is emptied by a default create.
        let ds = tmp.path().join("ds");
        fs::create_dir_all(ds.join("g")).unwrap();
        fs::write(ds.join(".zgroup"), b"{}").unwrap();
        fs::write(ds.join("g/.zarray"), b"{}").unwrap();
        Map::create(Impl::File, &loc(&ds), 0, 0)
            .unwrap()
            .close(false)
            .unwrap();
        assert!(tree(&ds).is_empty());
        assert!(ds.is_dir());
        // An empty directory is accepted as is.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let map = Map::create(Impl::File, &loc(&empty), 0, 0).unwrap();
        map.write(&key("/x"), 0, b"1").unwrap();
        map.close(false).unwrap();
        assert_eq!(fs::read(empty.join("x")).unwrap(), b"1");
        // A regular file in the way: Exists, and it stays.
        let file = tmp.path().join("file");
        fs::write(&file, b"data").unwrap();
        assert!(matches!(
            Map::create(Impl::File, &loc(&file), 0, 0).err().unwrap(),
            Error::Exists
        ));
        assert_eq!(fs::read(&file).unwrap(), b"data");
        // Missing parents are made.
        let deep = tmp.path().join("a/b/c/ds");
        Map::create(Impl::File, &loc(&deep), 0, 0)
            .unwrap()
            .close(false)
            .unwrap();
        assert!(deep.is_dir());
    }

    #[test]
    fn create_makes_nothing_for_dot_components_past_a_missing_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("p");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("keep"), b"keep").unwrap();
        let before = tree(&p);
        for rel in ["new/..", "a/b/../c", "x/..", "x/./.."] {
            let err = Map::create(Impl::File, &loc(&p.join(rel)), 0, 0).err();
            assert!(matches!(err, Some(Error::Invalid(_))), "{rel}: {err:?}");
            assert_eq!(tree(&p), before, "{rel}");
        }
        // `.` and `..` through directories that exist are paths like any.
        fs::create_dir(p.join("sub")).unwrap();
        Map::create(Impl::File, &loc(&p.join("sub/../made")), 0, 0)
            .unwrap()
            .close(false)
            .unwrap();
        assert!(p.join("made").is_dir());
    }

    #[test]
    fn open_of_a_regular_file_or_below_one_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"data").unwrap();
        for path in [file.clone(), file.join("below")] {
            let err = Map::open(Impl::File, &loc(&path), 0, 0).err().unwrap();
            assert!(matches!(err, Error::Empty), "{path:?}: {err:?}");
        }
    }

    #[test]
    fn url_forms_open_the_same_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds.nzf");
        let map = Map::create(
            Impl::File,
            &format!("file://{}#mode=nczarr,nzf", loc(&ds)),
            0,
            0,
        )
        .unwrap();
        map.write(&key("/.nczarr"), 0, b"x").unwrap();
        map.close(false).unwrap();
        for url in [format!("file:{}", loc(&ds)), format!("{}/", loc(&ds))] {
            let map = Map::open(Impl::File, &url, 0, 0).unwrap();
            assert_eq!(map.len(&key("/.nczarr")).unwrap(), 1, "{url}");
            map.close(false).unwrap();
        }
    }

    #[test]
    fn delete_does_not_follow_links_out_of_the_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), b"keep me").unwrap();
        let ds = tmp.path().join("ds");
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        map.write(&key("/.nczarr"), 0, b"{}").unwrap();
        map.write(&key("/g/obj"), 0, b"v").unwrap();
        symlink(&outside, ds.join("dirlink")).unwrap();
        symlink(outside.join("precious"), ds.join("g/filelink")).unwrap();
        map.close(true).unwrap();
        assert!(!ds.exists() && fs::symlink_metadata(&ds).is_err());
        assert_eq!(fs::read(outside.join("precious")).unwrap(), b"keep me");
        assert_eq!(tree(&outside).len(), 1);
    }

    #[test]
    fn links_are_neither_objects_nor_ways_out() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        let ds = tmp.path().join("ds");
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        map.write(&key("/real/obj"), 0, b"inside").unwrap();
        symlink(outside.join("secret"), ds.join("filelink")).unwrap();
        symlink(&outside, ds.join("dirlink")).unwrap();
        symlink("real", ds.join("innerlink")).unwrap();

        // A link as the object itself: not an object, one error for all.
        assert!(matches!(map.len(&key("/filelink")), Err(Error::Invalid(_))));
        let mut buf = [0u8; 6];
        assert!(matches!(
            map.read(&key("/filelink"), 0, &mut buf),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.write(&key("/filelink"), 0, b"x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.define(&key("/filelink")),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.truncate(&key("/filelink"), 0),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.remove(&key("/filelink")),
            Err(Error::Invalid(_))
        ));
        // Through a link leading out: nothing read, written or created there.
        assert!(map.read(&key("/dirlink/secret"), 0, &mut buf).is_err());
        assert!(map.write(&key("/dirlink/secret"), 0, b"pwned!").is_err());
        assert!(map.write(&key("/dirlink/new/obj"), 0, b"x").is_err());
        assert!(map.remove(&key("/dirlink/secret")).is_err());
        assert_eq!(buf, [0u8; 6]);
        // Links are not listed.
        assert_eq!(map.search(&Key::root()).unwrap(), vec!["real".to_string()]);
        assert!(map.search(&key("/dirlink")).unwrap().is_empty());
        map.close(true).unwrap();
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
        assert_eq!(tree(&outside).len(), 1);
    }

    #[test]
    fn fifo_never_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        map.write(&key("/obj"), 0, b"x").unwrap();
        rfs::mknodat(
            CWD,
            ds.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let k = key("/fifo");
            let mut buf = [0u8; 1];
            let outcome = (
                map.len(&k).err().map(|e| e.code()),
                map.exists(&k).err().map(|e| e.code()),
                map.read(&k, 0, &mut buf).err().map(|e| e.code()),
                map.read(&k, 0, &mut []).err().map(|e| e.code()),
                map.search(&Key::root()).unwrap(),
                map.define(&k).is_err(),
                map.write(&k, 0, b"x").is_err(),
                map.truncate(&k, 0).err().map(|e| e.code()),
            );
            map.close(true).unwrap();
            done.send(outcome).unwrap();
        });
        let (len, exists, read, read0, listed, define_failed, write_failed, truncate) = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("an operation on a FIFO blocked");
        let not_object = Some(crate::codes::NC_EINVAL);
        assert_eq!(
            (len, exists, read, read0, truncate),
            (not_object, not_object, not_object, not_object, not_object)
        );
        assert_eq!(listed, vec!["obj".to_string()]);
        assert!(define_failed && write_failed);
        assert!(!ds.exists());
    }

    /// The ut_map scenario (zmap-api.md B §9.2) leaves exactly this tree.
    #[test]
    fn ut_map_tree_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("testmap.nzf");
        let url = format!("file://{}#mode=nczarr,nzf", loc(&ds));
        crate::testing::conformance::ut_map_steps(Impl::File, &url);
        let data: Vec<u8> = (0i32..25).flat_map(|i| i.to_le_bytes()).collect();
        let mut expected = BTreeMap::new();
        expected.insert(".nczarr".to_string(), Some(Vec::new()));
        expected.insert("meta1/".to_string(), None);
        expected.insert(
            "meta1/.zarray".to_string(),
            Some(crate::testing::conformance::METADATA1.to_vec()),
        );
        expected.insert("meta2/".to_string(), None);
        expected.insert(
            "meta2/.nczvar".to_string(),
            Some(crate::testing::conformance::METADATA2.to_vec()),
        );
        expected.insert("data1/".to_string(), None);
        expected.insert("data1/0".to_string(), Some(data));
        assert_eq!(tree(&ds), expected);
    }

    #[test]
    fn vanished_root_is_not_an_error_to_close() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        for delete in [true, false] {
            let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
            map.write(&key("/g/obj"), 0, b"x").unwrap();
            fs::remove_dir_all(&ds).unwrap();
            assert!(matches!(map.len(&key("/g/obj")), Err(Error::Empty)));
            assert!(map.search(&Key::root()).unwrap().is_empty());
            map.close(delete).unwrap();
            assert!(!ds.exists());
        }
    }

    #[test]
    fn remove_prunes_empty_directories_only() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        map.write(&key("/a/b/c/obj"), 0, b"1").unwrap();
        map.write(&key("/a/other"), 0, b"2").unwrap();
        map.remove(&key("/a/b/c/obj")).unwrap();
        let expected: Vec<String> = vec!["a/".into(), "a/other".into()];
        assert_eq!(tree(&ds).into_keys().collect::<Vec<_>>(), expected);
        map.remove(&key("/a/other")).unwrap();
        assert!(tree(&ds).is_empty());
        assert!(ds.is_dir());
        // A failed write leaves no directory behind either.
        map.write(&key("/x"), 0, b"1").unwrap();
        assert!(map.write(&key("/x/y/z"), 0, b"1").is_err());
        assert_eq!(
            tree(&ds).into_keys().collect::<Vec<_>>(),
            vec!["x".to_string()]
        );
        map.close(false).unwrap();
    }

    #[test]
    fn flush_syncs_only_when_dirty() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            create: true,
            noclobber: false,
            writable: true,
        };
        let store = FileStore::open(&loc(&tmp.path().join("ds")), opts).unwrap();
        assert!(store.dirty.load(Ordering::Acquire));
        store.flush().unwrap();
        assert!(!store.dirty.load(Ordering::Acquire));
        store.write_at(&key("/k"), 0, b"v").unwrap();
        assert!(store.dirty.load(Ordering::Acquire));
        store.flush().unwrap();
        assert!(!store.dirty.load(Ordering::Acquire));
        let mut buf = [0u8; 1];
        store.read_at(&key("/k"), 0, &mut buf).unwrap();
        store.len(&key("/k")).unwrap();
        store.children(&Key::root()).unwrap();
        assert!(
            !store.dirty.load(Ordering::Acquire),
            "reads dirtied the store"
        );
        Box::new(store).close(false).unwrap();
    }

    #[test]
    fn relative_root_survives_chdir() {
        // chdir is process-wide: run the scenario alone in a child process.
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "store::file::tests::relative_root_chdir_child",
                "--ignored",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "changes the process's directory; run by relative_root_survives_chdir"]
    fn relative_root_chdir_child() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(&a).unwrap();
        let map = Map::create(Impl::File, "file://ds.nzf", 0, 0).unwrap();
        std::env::set_current_dir(&b).unwrap();
        map.write(&key("/g/obj"), 0, b"here").unwrap();
        assert_eq!(map.search(&Key::root()).unwrap(), vec!["g".to_string()]);
        map.close(false).unwrap();
        assert_eq!(fs::read(a.join("ds.nzf/g/obj")).unwrap(), b"here");
        assert!(tree(&b).is_empty());
        std::env::set_current_dir(&a).unwrap();
        let map = Map::open(Impl::File, "ds.nzf", NC_WRITE, 0).unwrap();
        std::env::set_current_dir(&b).unwrap();
        // Only a dataset is deleted: it needs its marker first.
        assert!(matches!(map.close(true), Err(Error::NotDataset)));
        fs::write(a.join("ds.nzf/.zgroup"), b"{}").unwrap();
        std::env::set_current_dir(&a).unwrap();
        let map = Map::open(Impl::File, "ds.nzf", NC_WRITE, 0).unwrap();
        std::env::set_current_dir(&b).unwrap();
        map.close(true).unwrap();
        assert!(tree(&a).is_empty() && tree(&b).is_empty());
        // "." as root: still removable, by its canonical name.
        std::env::set_current_dir(&b).unwrap();
        let map = Map::create(Impl::File, ".", 0, 0).unwrap();
        map.write(&key("/.zgroup"), 0, b"{}").unwrap();
        map.close(true).unwrap();
        assert!(!b.exists());
        std::env::set_current_dir(cwd).unwrap();
    }

    fn writable_store(ds: &Path) -> FileStore {
        let opts = OpenOptions {
            create: true,
            noclobber: false,
            writable: true,
        };
        FileStore::open(&loc(ds), opts).unwrap()
    }

    fn cached(store: &FileStore) -> Option<String> {
        store.defined().as_ref().map(|d| d.rel.clone())
    }

    /// What the define cache holds when: only a new object define made, until
    /// the write of its key, a define of another key, its remove, or close.
    #[test]
    fn define_keeps_only_the_new_object_until_its_write() {
        let tmp = tempfile::tempdir().unwrap();
        let store = writable_store(&tmp.path().join("ds"));
        store.define(&key("/g/a")).unwrap();
        assert_eq!(cached(&store).as_deref(), Some("g/a"));
        // Other keys' operations leave it.
        store.write_at(&key("/g/b"), 0, b"b").unwrap();
        let mut one = [0u8; 1];
        store.read_at(&key("/g/b"), 0, &mut one).unwrap();
        assert_eq!(store.len(&key("/g/a")).unwrap(), 0);
        assert_eq!(cached(&store).as_deref(), Some("g/a"));
        // Its write uses it up.
        store.write_at(&key("/g/a"), 2, b"xy").unwrap();
        assert_eq!(cached(&store), None);
        let mut buf = [9u8; 4];
        store.read_at(&key("/g/a"), 0, &mut buf).unwrap();
        assert_eq!(&buf, b"\0\0xy");
        // A define of an existing object keeps nothing.
        store.define(&key("/g/a")).unwrap();
        assert_eq!(cached(&store), None);
        // Only the last define is kept.
        store.define(&key("/g/c")).unwrap();
        store.define(&key("/g/d")).unwrap();
        assert_eq!(cached(&store).as_deref(), Some("g/d"));
        store.write_at(&key("/g/c"), 0, b"c").unwrap();
        assert_eq!(cached(&store).as_deref(), Some("g/d"));
        // remove of another key keeps it, of its key drops it.
        store.remove(&key("/g/c")).unwrap();
        assert_eq!(cached(&store).as_deref(), Some("g/d"));
        store.remove(&key("/g/d")).unwrap();
        assert_eq!(cached(&store), None);
        Box::new(store).close(true).unwrap();
    }

    /// define, remove, write: the write makes a new object (never writes
    /// into the removed file), and remove pruned nothing still needed.
    #[test]
    fn define_remove_write_makes_a_new_object() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        map.define(&key("/a/b/obj")).unwrap();
        map.remove(&key("/a/b/obj")).unwrap();
        assert!(matches!(map.len(&key("/a/b/obj")), Err(Error::Empty)));
        map.write(&key("/a/b/obj"), 0, b"new").unwrap();
        assert_eq!(fs::read(ds.join("a/b/obj")).unwrap(), b"new");
        map.close(false).unwrap();
    }

    /// Another process unlinks or replaces the file between define and
    /// write: the cached descriptor is used only while the file still has a
    /// name; else the key is resolved afresh, as without the cache. Nothing
    /// is ever written into what replaced it.
    #[test]
    fn define_then_external_replacement_then_write() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"secret").unwrap();
        for fallback in [false, true] {
            let ds = tmp.path().join(format!("ds{fallback}"));
            FORCE_FALLBACK.with(|f| f.set(fallback));
            let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
            FORCE_FALLBACK.with(|f| f.set(false));
            let fifo = |path: &Path| {
                rfs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap()
            };
            let is_fifo = |path: &Path| {
                use std::os::unix::fs::FileTypeExt;
                fs::symlink_metadata(path).unwrap().file_type().is_fifo()
            };

            // Unlinked: the write makes the object anew.
            map.define(&key("/g/unlinked")).unwrap();
            fs::remove_file(ds.join("g/unlinked")).unwrap();
            map.write(&key("/g/unlinked"), 0, b"data").unwrap();
            assert_eq!(fs::read(ds.join("g/unlinked")).unwrap(), b"data");

            // Unlinked and a FIFO made there (a reader attached, so a
            // write-open would deliver): refused, nothing written.
            map.define(&key("/g/fifo")).unwrap();
            fs::remove_file(ds.join("g/fifo")).unwrap();
            fifo(&ds.join("g/fifo"));
            let reader = rfs::open(
                ds.join("g/fifo"),
                OFlags::RDONLY | OFlags::NONBLOCK,
                Mode::empty(),
            )
            .unwrap();
            assert!(matches!(
                map.write(&key("/g/fifo"), 0, b"pwned!"),
                Err(Error::Invalid(_))
            ));
            let mut got = [0u8; 8];
            assert!(!matches!(rustix::io::read(&reader, &mut got), Ok(n) if n > 0));
            assert!(is_fifo(&ds.join("g/fifo")));

            // A FIFO renamed over it: refused.
            map.define(&key("/g/renamed")).unwrap();
            fifo(&ds.join("g/tmp"));
            fs::rename(ds.join("g/tmp"), ds.join("g/renamed")).unwrap();
            assert!(matches!(
                map.write(&key("/g/renamed"), 0, b"pwned!"),
                Err(Error::Invalid(_))
            ));
            assert!(is_fifo(&ds.join("g/renamed")));

            // A link out of the dataset in its place: refused, target kept.
            map.define(&key("/g/link")).unwrap();
            fs::remove_file(ds.join("g/link")).unwrap();
            symlink(&outside, ds.join("g/link")).unwrap();
            assert!(matches!(
                map.write(&key("/g/link"), 0, b"pwned!"),
                Err(Error::Invalid(_))
            ));
            assert_eq!(fs::read(&outside).unwrap(), b"secret");

            // Another regular file in its place: written as the key's object.
            map.define(&key("/g/swapped")).unwrap();
            fs::remove_file(ds.join("g/swapped")).unwrap();
            fs::write(ds.join("g/swapped"), b"theirs").unwrap();
            map.write(&key("/g/swapped"), 0, b"ours").unwrap();
            assert_eq!(fs::read(ds.join("g/swapped")).unwrap(), b"oursrs");

            // The documented limit: the file define made, renamed away
            // inside the dataset (it keeps a name) and a FIFO put at the
            // key. The write goes into the file define made, under its new
            // name; the FIFO is never opened.
            map.define(&key("/g/moved")).unwrap();
            fs::rename(ds.join("g/moved"), ds.join("g/elsewhere")).unwrap();
            fifo(&ds.join("g/moved"));
            map.write(&key("/g/moved"), 0, b"data").unwrap();
            assert_eq!(fs::read(ds.join("g/elsewhere")).unwrap(), b"data");
            assert!(is_fifo(&ds.join("g/moved")));
            map.close(true).unwrap();
        }
        assert_eq!(fs::read(&outside).unwrap(), b"secret");
    }

    /// Threads defining and writing keys of their own and shared keys at
    /// once: every object ends with what its last writer wrote, whichever
    /// thread's define the cache held.
    #[test]
    fn define_then_write_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        let map = std::sync::Arc::new(Map::create(Impl::File, &loc(&ds), 0, 0).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let own_name = format!("/t{t}/o{i}");
                        let own = key(&own_name);
                        map.define(&own).unwrap();
                        map.write(&own, 0, &[t, i as u8]).unwrap();
                        let shared_name = format!("/shared/s{}", i % 10);
                        let shared = key(&shared_name);
                        map.define(&shared).unwrap();
                        map.write(&shared, 0, &[7, 7]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for t in 0..4u8 {
            for i in 0..200 {
                let mut buf = [0u8; 2];
                map.read(&key(&format!("/t{t}/o{i}")), 0, &mut buf).unwrap();
                assert_eq!(buf, [t, i as u8]);
            }
        }
        for i in 0..10 {
            assert_eq!(fs::read(ds.join(format!("shared/s{i}"))).unwrap(), [7, 7]);
        }
        std::sync::Arc::try_unwrap(map)
            .ok()
            .unwrap()
            .close(true)
            .unwrap();
    }

    #[test]
    fn fallback_resolver_confines_last_component() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret");
        fs::write(&outside, b"secret").unwrap();
        let ds = tmp.path().join("ds");
        FORCE_FALLBACK.with(|f| f.set(true));
        let map = Map::create(Impl::File, &loc(&ds), 0, 0).unwrap();
        FORCE_FALLBACK.with(|f| f.set(false));
        map.write(&key("/a/obj"), 3, b"x").unwrap();
        symlink(&outside, ds.join("a/link")).unwrap();
        assert!(matches!(
            map.write(&key("/a/link"), 0, b"pwned!"),
            Err(Error::Invalid(_))
        ));
        let mut buf = [7u8; 4];
        map.read(&key("/a/obj"), 0, &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0, b'x']);
        assert!(matches!(
            map.read(&key("/a/link"), 0, &mut buf),
            Err(Error::Invalid(_))
        ));
        map.close(true).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"secret");
    }
}
