//! The storage trait every backend implements, and the table that picks a
//! backend by its `NCZM_IMPL` number.
//!
//! Backends are peers: each lives in its own module, knows nothing of C, and
//! implements only storage. The rules common to all of them (read-only maps,
//! zero-length I/O, overflow, search formatting) live one level up, in
//! `crate::map`.

use crate::error::Result;
use crate::key::Key;

pub mod file;
pub mod gnz;
pub mod memory;
pub mod nc4;
pub(crate) mod pages;
pub(crate) mod place;
pub mod s3;
pub mod tree;
pub mod zip;

/// The backends, numbered as `NCZM_IMPL` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Memory = 0,
    S3 = 1,
    Nc4 = 2,
    File = 3,
    Gnz = 4,
    Zip = 5,
}

impl Impl {
    pub fn from_raw(raw: i32) -> Option<Impl> {
        Some(match raw {
            0 => Impl::Memory,
            1 => Impl::S3,
            2 => Impl::Nc4,
            3 => Impl::File,
            4 => Impl::Gnz,
            5 => Impl::Zip,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Impl::Memory => "mem",
            Impl::S3 => "s3",
            Impl::Nc4 => "nc4",
            Impl::File => "file",
            Impl::Gnz => "gnz",
            Impl::Zip => "zip",
        }
    }
}

/// How a dataset is to be opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Create the dataset (making a missing root); else it must exist.
    pub create: bool,
    /// With `create`: keep an existing dataset's content instead of emptying it.
    pub noclobber: bool,
    /// Mutations allowed. A store opened without it must never change anything.
    pub writable: bool,
}

/// A dataset's objects. Keys arrive validated and canonical (`crate::key`).
///
/// Every method may be called from several threads at once.
pub trait Store: Send + Sync {
    /// Length of the object at `key`. `Err(Empty)` when `key` is not an object
    /// (missing, intermediate key, root).
    fn len(&self, key: &Key) -> Result<u64>;

    /// Creates an empty object at `key` if none is there; never truncates.
    /// `Err(Invalid)` if `key` is a proper prefix of an object or lies below one.
    fn define(&self, key: &Key) -> Result<()>;

    /// Fills `buf` from `start`. `Err(Edge)` when `start + buf.len()` is past
    /// the object's end, and then `buf` is left untouched. `Err(Empty)` when
    /// `key` is not an object. Called with a non-empty `buf` only.
    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes `data` at `start`, creating the object (and its intermediate
    /// keys) when missing, zero-filling any gap, never shrinking. Prefix
    /// conflicts as for `define`. Called with non-empty `data` only.
    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()>;

    /// Names of the next level below `prefix` (objects and intermediate keys),
    /// in any order. A leaf or a missing prefix gives an empty list.
    fn children(&self, prefix: &Key) -> Result<Vec<String>>;

    /// Calls `each` with the names `children` gives, sorted bytewise and
    /// without duplicates (what `Map::search` lists), stopping at the first
    /// error. Backends with a sorted index override it to hand their names
    /// out without collecting or sorting them.
    fn each_child(&self, prefix: &Key, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        let mut names = self.children(prefix)?;
        names.sort_unstable();
        names.dedup();
        names.iter().try_for_each(|n| each(n))
    }

    /// Deletes the object at `key`. `Err(Empty)` if it is not an object.
    fn remove(&self, key: &Key) -> Result<()>;

    /// Sets the object's length, cutting or zero-extending. `Err(Empty)` if
    /// it is not an object.
    fn truncate(&self, key: &Key, len: u64) -> Result<()>;

    /// Makes everything written so far durable.
    fn flush(&self) -> Result<()>;

    /// Rewrites the dataset without unused space; its size in bytes before
    /// and after. Backends without holes to remove do nothing and report
    /// `(0, 0)`. Called on writable maps only.
    fn compact(&self) -> Result<(u64, u64)> {
        Ok((0, 0))
    }

    /// True when the store refuses every mutation although it was opened
    /// writable (a GNZ file holding arrays that are not valid keys): the map
    /// then reports itself read-only (`map->mode` without `NC_WRITE`).
    fn refuses_writes(&self) -> bool {
        false
    }

    /// Diagnostics of the open for tools to show (e.g. arrays of a GNZ file
    /// that are not keys, which made the map read-only). The library never
    /// prints; a tool asks here (`Map::warnings`). None by default.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Backend facts for tools (`zmap info`): name/value pairs such as
    /// header size or free space. None by default.
    fn stats(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The first range `[s, e)` of `[start, end)` of the object `key` whose
    /// bytes the backend stores, or `None` if the rest reads as zeros that no
    /// I/O can fail to return (the holes of a sparse file). For tools that
    /// read every byte to check it (`zmap verify`): their work is then
    /// bounded by the data there is, not by the lengths a header claims.
    /// By default everything is data.
    fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        let _ = key;
        Ok((start < end).then_some((start, end)))
    }

    /// Checks the backend's own structures (beyond reading every object,
    /// which callers do themselves). Nothing to check by default.
    fn verify(&self) -> Result<()> {
        Ok(())
    }

    /// Ends the store: flushes (if writable) or, with `delete`, removes the
    /// whole dataset and nothing else.
    fn close(self: Box<Self>, delete: bool) -> Result<()>;
}

/// Opens (or creates) a dataset with the backend `imp`.
pub fn open(imp: Impl, location: &str, options: OpenOptions) -> Result<Box<dyn Store>> {
    match imp {
        Impl::Memory => Ok(Box::new(memory::MemoryStore::open(location, options)?)),
        Impl::File => Ok(Box::new(file::FileStore::open(location, options)?)),
        Impl::Gnz => gnz::open(location, options),
        Impl::Zip => zip::open(location, options),
        Impl::S3 => s3::open(location, options),
        Impl::Nc4 => nc4::open(location, options),
    }
}

/// True if `name` at the top of a dataset marks it as a Zarr/NCZarr dataset:
/// create refuses to empty a non-empty place that has none of them.
pub fn is_dataset_marker(name: &str) -> bool {
    matches!(
        name,
        ".nczarr" | ".zgroup" | ".zarray" | ".zattrs" | ".zmetadata" | "zarr.json"
    )
}
