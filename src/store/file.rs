//! `NCZM_FILE`: a directory tree, one file per object.

use super::{OpenOptions, Store};
use crate::error::{Error, Result};
use crate::key::Key;

pub struct FileStore;

impl FileStore {
    pub fn open(_location: &str, _options: OpenOptions) -> Result<FileStore> {
        Err(Error::NotBuilt)
    }
}

impl Store for FileStore {
    fn len(&self, _key: &Key) -> Result<u64> {
        Err(Error::NotBuilt)
    }
    fn define(&self, _key: &Key) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn read_at(&self, _key: &Key, _start: u64, _buf: &mut [u8]) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn write_at(&self, _key: &Key, _start: u64, _data: &[u8]) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn children(&self, _prefix: &Key) -> Result<Vec<String>> {
        Err(Error::NotBuilt)
    }
    fn remove(&self, _key: &Key) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn truncate(&self, _key: &Key, _len: u64) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn flush(&self) -> Result<()> {
        Err(Error::NotBuilt)
    }
    fn close(self: Box<Self>, _delete: bool) -> Result<()> {
        Err(Error::NotBuilt)
    }
}
