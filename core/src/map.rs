//! An open dataset: the rules every backend shares (zmap-api.md Part A4),
//! applied once, above the `Store` of the chosen backend.

use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{self, Impl, OpenOptions, Store};

/// `mode` bit: open for writing (netcdf.h `NC_WRITE`).
pub const NC_WRITE: i32 = 0x0001;
/// `mode` bit: create keeps an existing dataset's content (`NC_NOCLOBBER`).
pub const NC_NOCLOBBER: i32 = 0x0004;
/// `flags` bit: byte-range (read-only HTTP) access, from NCZarr's `FLAG_BYTERANGE`.
pub const FLAG_BYTERANGE: u64 = 8;

/// Offsets past this cannot be represented by the file APIs underneath.
const MAX_OFFSET: u64 = i64::MAX as u64;

pub struct Map {
    store: Box<dyn Store>,
    imp: Impl,
    writable: bool,
}

impl Map {
    /// Creates a dataset (`nczmap_create`): always writable; `NC_NOCLOBBER`
    /// keeps existing content; `FLAG_BYTERANGE` makes creation impossible.
    pub fn create(imp: Impl, location: &str, mode: i32, flags: u64) -> Result<Map> {
        if flags & FLAG_BYTERANGE != 0 {
            return Err(Error::ReadOnly);
        }
        let options = OpenOptions {
            create: true,
            noclobber: mode & NC_NOCLOBBER != 0,
            writable: true,
        };
        Ok(Map {
            store: store::open(imp, location, options)?,
            imp,
            writable: true,
        })
    }

    /// Opens an existing dataset (`nczmap_open`); writable only with `NC_WRITE`.
    pub fn open(imp: Impl, location: &str, mode: i32, flags: u64) -> Result<Map> {
        let writable = mode & NC_WRITE != 0 && flags & FLAG_BYTERANGE == 0;
        let options = OpenOptions {
            create: false,
            noclobber: true,
            writable,
        };
        let store = store::open(imp, location, options)?;
        let writable = writable && !store.refuses_writes();
        Ok(Map {
            store,
            imp,
            writable,
        })
    }

    pub fn backend(&self) -> Impl {
        self.imp
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }

    /// `Ok` for an object, `Err(Empty)` for anything else.
    pub fn exists(&self, key: &Key) -> Result<()> {
        self.len(key).map(|_| ())
    }

    pub fn len(&self, key: &Key) -> Result<u64> {
        if key.is_root() {
            return Err(Error::Empty);
        }
        self.store.len(key)
    }

    pub fn define(&self, key: &Key) -> Result<()> {
        self.check_writable()?;
        if key.is_root() {
            return Err(Error::ROOT_NOT_OBJECT);
        }
        self.store.define(key)
    }

    /// Reads `buf.len()` bytes at `start`; past the end is `Err(Edge)` with
    /// `buf` untouched.
    pub fn read(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        end_of(start, buf.len())?;
        if key.is_root() {
            return Err(Error::Empty);
        }
        if buf.is_empty() {
            return self.store.len(key).map(|_| ());
        }
        self.store.read_at(key, start, buf)
    }

    /// Writes `data` at `start`, creating and extending the object as needed.
    pub fn write(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        end_of(start, data.len())?;
        if key.is_root() {
            return Err(Error::ROOT_NOT_OBJECT);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.store.write_at(key, start, data)
    }

    /// Names of the next level below `prefix`, sorted bytewise, no duplicates.
    pub fn search(&self, prefix: &Key) -> Result<Vec<String>> {
        let mut names = Vec::new();
        self.search_each(prefix, &mut |name| {
            names.push(name.to_owned());
            Ok(())
        })?;
        Ok(names)
    }

    /// `search` without collecting: calls `each` with every name, in order.
    pub fn search_each(
        &self,
        prefix: &Key,
        each: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        if !cfg!(debug_assertions) {
            // Straight through: a wrapping closure costs every name a call.
            return self.store.each_child(prefix, each);
        }
        // Debug builds check the backend's order (names are never empty).
        let mut last = String::new();
        self.store.each_child(prefix, &mut |name| {
            assert!(last.as_str() < name, "children out of order");
            last.clear();
            last.push_str(name);
            each(name)
        })
    }

    pub fn remove(&self, key: &Key) -> Result<()> {
        self.check_writable()?;
        if key.is_root() {
            return Err(Error::Empty);
        }
        self.store.remove(key)
    }

    pub fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        self.check_writable()?;
        if len > MAX_OFFSET {
            return Err(Error::Invalid("length too large"));
        }
        if key.is_root() {
            return Err(Error::Empty);
        }
        self.store.truncate(key, len)
    }

    pub fn flush(&self) -> Result<()> {
        if self.writable {
            self.store.flush()
        } else {
            Ok(())
        }
    }

    /// Removes unused space from the dataset (GNZ: rewrites the file without
    /// holes, crash-safely); its size in bytes before and after. `(0, 0)`
    /// for backends with nothing to compact.
    pub fn compact(&self) -> Result<(u64, u64)> {
        self.check_writable()?;
        self.store.compact()
    }

    /// What the open has to tell a user (the library itself never prints):
    /// e.g. why a map asked for writable is read-only. Empty when all is well.
    pub fn warnings(&self) -> Vec<String> {
        self.store.warnings()
    }

    /// Backend facts for tools, as name/value pairs.
    pub fn stats(&self) -> Vec<(String, String)> {
        self.store.stats()
    }

    /// The first range of `[start, end)` of the object `key` that holds
    /// data; `None` if the rest reads as zeros without any I/O (holes of a
    /// sparse GNZ file). Callers still read every byte the ranges cover.
    pub fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        if key.is_root() {
            return Err(Error::Empty);
        }
        self.store.next_data(key, start, end)
    }

    /// Checks the backend's own structures.
    pub fn verify(&self) -> Result<()> {
        self.store.verify()
    }

    /// Closes the map; with `delete`, removes the dataset (allowed on a
    /// read-only map, as netCDF's suite requires).
    pub fn close(self, delete: bool) -> Result<()> {
        self.store.close(delete)
    }
}

/// `start + len`, refused when it overflows or passes what files can address.
fn end_of(start: u64, len: usize) -> Result<u64> {
    match start.checked_add(len as u64) {
        Some(end) if end <= MAX_OFFSET => Ok(end),
        _ => Err(Error::Invalid("start + count overflows")),
    }
}
