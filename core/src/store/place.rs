//! Where a single-file dataset (GNZ, ZIP, NC4) lives: the directory that
//! holds it, held open, and its name there. Every change to that name —
//! removing the dataset, putting a rewritten copy in its place — is made
//! through the held directory and only after proving, by device and inode,
//! that the name still refers to the map's own file. A path relative to a
//! working directory the host has left since, or a name the user has given
//! to another file since, never leads a map to someone else's file.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fd::OwnedFd;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

pub struct Place {
    /// The directory holding the file: opened for reading where allowed
    /// (so it can be synced), else `O_PATH` (only for the `*at` calls).
    dir: OwnedFd,
    syncable: bool,
    name: OsString,
}

/// What `Place::remove` found at the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The name referred to the file: it is removed (and the removal durable).
    Removed,
    /// The file has no name left: someone else deleted it.
    AlreadyGone,
    /// The file was renamed away, or another file has the name now: nothing
    /// was removed.
    NotThere,
}

impl Removal {
    /// What `close(map, 1)` answers: done if the file is gone (by us or by
    /// someone else); `Empty` if the dataset is no longer at its name.
    pub fn into_result(self) -> Result<()> {
        match self {
            Removal::Removed | Removal::AlreadyGone => Ok(()),
            Removal::NotThere => Err(Error::Empty),
        }
    }
}

/// `(device, inode)` of a file.
fn identity(st: &rfs::Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl Place {
    /// The place `name` in the directory `parent` (relative paths are taken
    /// from the working directory of this moment). The error is the one
    /// opening `parent` gave.
    pub fn new(parent: &Path, name: &OsStr) -> std::result::Result<Place, Errno> {
        let flags = OFlags::DIRECTORY | OFlags::CLOEXEC;
        let (dir, syncable) = match rfs::open(parent, flags | OFlags::RDONLY, Mode::empty()) {
            Ok(dir) => (dir, true),
            // A directory one may search but not read: enough to name files.
            Err(Errno::ACCESS) => (
                rfs::open(parent, flags | OFlags::PATH, Mode::empty())?,
                false,
            ),
            Err(e) => return Err(e),
        };
        Ok(Place {
            dir,
            syncable,
            name: name.to_owned(),
        })
    }

    /// The place of the existing file at `path`, symbolic links resolved:
    /// the dataset is the file a link names, not the link.
    pub fn resolved(path: &Path) -> Result<Place> {
        let real = std::fs::canonicalize(path)?;
        let name = real
            .file_name()
            .ok_or(Error::Invalid("a dataset path must name a file"))?;
        let parent = real.parent().unwrap_or(Path::new("/"));
        Ok(Place::new(parent, name)?)
    }

    /// The held directory (for `openat` and friends).
    pub fn dir(&self) -> &OwnedFd {
        &self.dir
    }

    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// True if the name (not followed if a link) refers to `file`.
    pub fn holds(&self, file: &File) -> Result<bool> {
        let held = identity(&rfs::fstat(file)?);
        match rfs::statat(&self.dir, self.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) => Ok(identity(&now) == held),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the name if it still refers to `file` (the map's own
    /// descriptor), and makes that durable; anything else at the name stays.
    pub fn remove(&self, file: &File) -> Result<Removal> {
        if self.holds(file)? {
            match rfs::unlinkat(&self.dir, self.name.as_os_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            self.sync()?;
            return Ok(Removal::Removed);
        }
        if rfs::fstat(file)?.st_nlink == 0 {
            Ok(Removal::AlreadyGone)
        } else {
            Ok(Removal::NotThere)
        }
    }

    /// A fresh name in the same directory for a file that will replace the
    /// dataset's (`.NAME.zmap-PID-N-SALT.tmp`). SALT is random per process:
    /// a file a killed writer left behind never has the name a later
    /// process (the same process id again, as in a new container) asks
    /// for, which would make its rewrite fail (`O_EXCL`).
    pub fn temp_name(&self) -> OsString {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let salt = *SALT.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            // Seeded from the system's randomness once per process.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        });
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = self.name.as_bytes();
        let base = &base[..base.len().min(160)];
        let mut name = b".".to_vec();
        name.extend_from_slice(base);
        name.extend_from_slice(
            format!(".zmap-{}-{n}-{salt:016x}.tmp", std::process::id()).as_bytes(),
        );
        OsString::from_vec(name)
    }

    /// Removes the file `temp` of this directory, if there (cleanup after a
    /// failed rewrite: errors are of no use to anyone then).
    pub fn discard(&self, temp: &OsStr) {
        let _ = rfs::unlinkat(&self.dir, temp, AtFlags::empty());
    }

    /// Puts the file `temp` (of this directory) at the name, atomically.
    /// With `current`, only over that very file (device and inode): the two
    /// are exchanged and checked, then the old one unlinked — or exchanged
    /// back if the name held something else (`Exists`). Without `current`,
    /// only where nothing is (`Exists` if something is). The caller syncs.
    pub fn replace(&self, temp: &OsStr, current: Option<&File>) -> Result<()> {
        let (dir, name) = (&self.dir, self.name.as_os_str());
        let Some(current) = current else {
            return self.place_new(temp);
        };
        let held = identity(&rfs::fstat(current)?);
        match rfs::renameat_with(dir, temp, dir, name, RenameFlags::EXCHANGE) {
            Ok(()) => {
                let was = rfs::statat(dir, temp, AtFlags::SYMLINK_NOFOLLOW)?;
                if identity(&was) == held {
                    // The old file, now under the temporary name: its
                    // readers keep their descriptors.
                    match rfs::unlinkat(dir, temp, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => Ok(()),
                        Err(e) => Err(e.into()),
                    }
                } else {
                    rfs::renameat_with(dir, temp, dir, name, RenameFlags::EXCHANGE)?;
                    Err(Error::Exists)
                }
            }
            // The dataset's name is gone (deleted by someone): the new file
            // goes there without replacing anything.
            Err(Errno::NOENT) => self.place_new(temp),
            // No exchange on this file system: check, then rename.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if identity(&st) == held => {
                        rfs::renameat(dir, temp, dir, name)?;
                        Ok(())
                    }
                    Ok(_) => Err(Error::Exists),
                    Err(Errno::NOENT) => self.place_new(temp),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `temp` to the name where nothing is; `Exists` if something is.
    fn place_new(&self, temp: &OsStr) -> Result<()> {
        let (dir, name) = (&self.dir, self.name.as_os_str());
        match rfs::renameat_with(dir, temp, dir, name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(Error::Exists),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                // link(2) never replaces either.
                match rfs::linkat(dir, temp, dir, name, AtFlags::empty()) {
                    Ok(()) => {
                        let _ = rfs::unlinkat(dir, temp, AtFlags::empty());
                        Ok(())
                    }
                    Err(Errno::EXIST) => Err(Error::Exists),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the directory's entries durable (after a rename or unlink). A
    /// directory held with `O_PATH` cannot be synced; then nothing is done.
    pub fn sync(&self) -> Result<()> {
        if self.syncable {
            rfs::fsync(&self.dir)?;
        }
        Ok(())
    }
}
