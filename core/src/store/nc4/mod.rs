//! `NCZM_NC4`: a dataset inside one netCDF-4 file, in netCDF-C 2020's layout
//! (one group per key segment, an object's bytes in `ubyte data(data_dim)`),
//! through the system libnetcdf. Built with the cargo feature `nc4`; without
//! it every open answers `NC_ENOTBUILT`.

#[cfg(feature = "nc4")]
mod names;
#[cfg(feature = "nc4")]
mod store;
#[cfg(feature = "nc4")]
mod sys;

#[cfg(not(feature = "nc4"))]
use crate::error::Error;
use crate::error::Result;
use crate::store::{OpenOptions, Store};

#[cfg(feature = "nc4")]
pub use store::{Nc4Store, MAX_OBJECT_LEN};

/// Opens (or creates) the netCDF-4 file `location` (a plain path or a
/// `file:` URL).
#[cfg(feature = "nc4")]
pub fn open(location: &str, options: OpenOptions) -> Result<Box<dyn Store>> {
    let path = crate::location::file_path(location)?;
    Ok(Box::new(Nc4Store::open(path, options)?))
}

#[cfg(not(feature = "nc4"))]
pub fn open(_location: &str, _options: OpenOptions) -> Result<Box<dyn Store>> {
    Err(Error::NotBuilt)
}
