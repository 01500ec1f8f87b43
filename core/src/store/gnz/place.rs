//! Where an open GNZ file lives: the directory that holds it (held open) and
//! its name there, resolved once when the map opens. Deleting the dataset
//! removes the file the map holds open, and nothing else: a path that is
//! relative to a working directory the host has left since, or a name the
//! user has given to another file since, never leads it elsewhere.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

pub struct Place {
    /// The directory holding the file (`O_PATH`: only for the `*at` calls).
    dir: OwnedFd,
    name: OsString,
}

impl Place {
    /// The place of the file just opened at `path`: symbolic links are
    /// resolved (the dataset is the file a link names, not the link) and a
    /// relative path is taken from the working directory of this moment.
    pub fn of(path: &Path) -> Result<Place> {
        let real = std::fs::canonicalize(path)?;
        let name = real
            .file_name()
            .ok_or(Error::Invalid("a GNZ path must name a file"))?
            .to_owned();
        let parent = real.parent().unwrap_or(Path::new("/"));
        let dir = rfs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Place { dir, name })
    }

    /// Removes `file` (the map's own descriptor) from this place, if it is
    /// still there: the name, looked up without following links, must have
    /// the device and inode of `file`. Already deleted by someone else (no
    /// link left): nothing to do. Renamed away or replaced: nothing is
    /// removed and the answer is `Error::Empty` (the dataset is no longer at
    /// its path; whatever is there now is not it).
    pub fn delete(&self, file: &File) -> Result<()> {
        let held = rfs::fstat(file)?;
        let now = match rfs::statat(&self.dir, self.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) => Some(now),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e.into()),
        };
        match now {
            Some(now) if now.st_dev == held.st_dev && now.st_ino == held.st_ino => {
                rfs::unlinkat(&self.dir, self.name.as_os_str(), AtFlags::empty())?;
                Ok(())
            }
            _ if held.st_nlink == 0 => Ok(()),
            _ => Err(Error::Empty),
        }
    }
}
