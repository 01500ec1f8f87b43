//! `NCZM_GNZ`: one GNZ container file (see /work/shared/spec/gnz-format.md).
//! Not built yet: open gives `NC_ENOTBUILT`.

use super::OpenOptions;
use crate::error::{Error, Result};

pub fn open(_location: &str, _options: OpenOptions) -> Result<Box<dyn super::Store>> {
    Err(Error::NotBuilt)
}
