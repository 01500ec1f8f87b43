//! `NCZM_GNZ`: a dataset in one GNZ container file
//! (the GNZ format and this design: `DESIGN.md` here).
//!
//! - `format`: the header model — parsing with strict validation, writing
//!   as the original Python writer does.
//! - `recovery`: whole files — the header at offset 0 or the commit record
//!   at the tail, whichever is the newest valid one.
//! - `space`: the free-space allocator.
//! - `json`: header values kept as written (`metadata`, NaN included);
//!   `json/parse.rs` reads JSON, `json/write.rs` writes it as Python does.
//! - `stage`: small writes held in memory until the next commit.
//! - `lock`: the advisory locks (one writer, tracked readers).
//! - `readers`: which commits live readers see (space reuse around them).
//! - `store`: the `Store` — opening, creating, and the interface over:
//! - `reader`: a read-only map (an index over a memory map);
//! - `writer`: the writable map (index, free space, copy-on-write updates);
//! - `commit`: the commit protocol;
//! - `compaction`: running a compaction, a commit per round.
//! - `index_build`: which arrays of a header are objects.
//! - `storage`: every write, sync, truncate and map of the file goes through
//!   a `Storage` (the file; in tests, one that records each operation).
//! - `writeback`: large writes start going to the device before the commit.
//! - `index`: the objects by key (store::tree over a slab).
//! - `compact`: planning compaction (dry runs over a copy of the free space).
//! - `copy`: large reads out of the file mapping, split over threads.

mod behind;
mod commit;
mod compact;
mod compaction;
mod copy;
#[cfg(test)]
mod crash_tests;
pub mod format;
mod index;
mod index_build;
pub mod json;
mod lock;
mod reader;
mod readers;
pub mod recovery;
mod space;
mod stage;
pub mod storage;
mod store;
mod writeback;
mod writer;

pub use store::GnzStore;

use super::{OpenOptions, Store};
use crate::error::Result;
use crate::location;

/// Opens (or creates) the GNZ file named by `location` (a path or `file:` URL).
pub fn open(location: &str, options: OpenOptions) -> Result<Box<dyn Store>> {
    let path = location::file_path(location)?;
    Ok(Box::new(GnzStore::open(path, options)?))
}
