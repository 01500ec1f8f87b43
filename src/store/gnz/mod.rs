//! `NCZM_GNZ`: a dataset in one GNZ container file
//! (the GNZ format and this design: `DESIGN.md` here).
//!
//! - `format`: the header — parsing with strict validation, writing as the
//!   original Python writer does, and choosing between the header at offset
//!   0 and the commit record at the tail (crash recovery).
//! - `space`: the free-space allocator.
//! - `json`: header values kept as written (`metadata`, NaN included).
//! - `stage`: small writes held in memory until the next commit.
//! - `lock`: the advisory locks (one writer, tracked readers).
//! - `place`: where the file is (held directory, name): delete by identity.
//! - `store`: the `Store` — index, copy-on-write extents, commit, compaction.
//! - `writeback`: large writes start going to the device before the commit.
//! - `index`: the objects by key (store::tree over a slab).
//! - `compact`: planning compaction (dry runs over a copy of the free space).
//! - `copy`: large reads out of the file mapping, split over threads.
//! - `fault`: test-only crash points (`ZMAP_GNZ_FAULT`).

mod commit;
mod compact;
mod compaction;
mod copy;
pub mod format;
mod index;
mod index_build;
pub mod json;
mod lock;
mod place;
mod reader;
pub mod recovery;
pub mod space;
mod stage;
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

/// Crash points for tests (DESIGN.md, "Fault points").
///
/// Compiled in only with the cargo feature `fault-injection` *and* debug
/// assertions (the dev and test profiles): `cargo test` turns the feature on
/// (a dev-dependency of the crate on itself), the C crash test links a
/// library built with it (CMakeLists.txt). Anywhere else — every release
/// build, any build without the feature — `armed` is `false` and the
/// environment is never read.
///
/// With `ZMAP_GNZ_FAULT=<point>` in the environment the process aborts when
/// a commit reaches `<point>`; `mid-copy` and `mid-header` first write (and
/// sync) half of the commit record or of the header, simulating a torn
/// write. Unset, each check costs one environment lookup per commit.
pub mod fault {
    /// True if this build has the crash points.
    pub fn enabled() -> bool {
        cfg!(all(feature = "fault-injection", debug_assertions))
    }

    /// The environment variable naming the crash point.
    pub const VAR: &str = "ZMAP_GNZ_FAULT";

    /// Every crash point, in the order a commit reaches them.
    pub const POINTS: &[&str] = &[
        "before-copy",
        "mid-copy",
        "after-copy",
        "after-header-copy",
        "mid-header",
        "after-header",
        "compact-between",
    ];

    /// True if the crash point `name` is armed.
    #[cfg(all(feature = "fault-injection", debug_assertions))]
    pub fn armed(name: &str) -> bool {
        std::env::var_os(VAR).is_some_and(|v| v == name)
    }

    /// Never: this build has no crash points.
    #[cfg(not(all(feature = "fault-injection", debug_assertions)))]
    pub fn armed(_name: &str) -> bool {
        false
    }

    /// Aborts the process (no unwinding, no destructors, like a kill),
    /// silently: the library never prints.
    pub fn crash(_name: &str) -> ! {
        std::process::abort()
    }

    /// Aborts here if `name` is armed.
    pub fn point(name: &str) {
        if armed(name) {
            crash(name);
        }
    }
}
