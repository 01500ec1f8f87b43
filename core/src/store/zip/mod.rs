//! `NCZM_ZIP`: a dataset in one ZIP archive, as netCDF-C's NCZM_ZIP, zarr's
//! `ZipStore` (v2 and v3) and OME-Zarr's zipped `.ozx` (RFC-9) keep it.
//!
//! - `archive`: reading — the central directory (rc-zip), the checks that
//!   make an archive a dataset (no `..`, absolute or backslashed names:
//!   never followed, the archive is refused; a repeated name is superseded
//!   by its later entry), the two layouts, entry data read in place (out of
//!   a read-only mapping, at the entry's data offset).
//! - `write`: writing a whole archive (zip crate): stored entries, zip64
//!   when needed, central directory at the end.
//! - `store`: the `Store` — objects staged in memory until flush/close,
//!   the writer lock, the crash-safe rewrite, deletion by identity.
//!
//! Layouts. Reading: netCDF's (entry 0 is the directory entry `S/` and every
//! entry lies in S: key `/a` is entry `S/a`) or keys at the archive root
//! (zarr, RFC-9). Writing: an
//! existing archive keeps its layout; a new or emptied one gets netCDF's
//! when the location is a `file:` URL whose fragment says `mode=...,zip`
//! (what netCDF passes: S is the file name without extension), root
//! layout otherwise.

mod archive;
mod store;
mod write;

pub use store::ZipStore;

use super::{OpenOptions, Store};
use crate::error::Result;

/// Opens (or creates) the ZIP archive named by `location` (a path or `file:` URL).
pub fn open(location: &str, options: OpenOptions) -> Result<Box<dyn Store>> {
    Ok(Box::new(ZipStore::open(location, options)?))
}

#[cfg(test)]
mod tests;
