//! `NCZM_S3`: an S3-compatible object store. Not built yet: `NC_ENOTBUILT`.

use super::OpenOptions;
use crate::error::{Error, Result};

pub fn open(_location: &str, _options: OpenOptions) -> Result<Box<dyn super::Store>> {
    Err(Error::NotBuilt)
}
