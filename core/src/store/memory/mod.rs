//! `NCZM_UNDEF` / `NCZM_MEM`: datasets in process memory.
//!
//! A dataset is named by any string and lives in a process-wide table until
//! it is deleted (`close(map, 1)`), so create/close/open/read works as it
//! does with files. Objects are found in a `Tree` (hash map by key plus
//! each intermediate key's sorted children): reads and writes are one
//! lookup, a one-level search lists one set. Small objects' bytes are
//! carved from large blocks (`arena`), large ones have their own allocation
//! (`bytes`).

mod arena;
mod bytes;
mod objects;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{OpenOptions, Store};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::location;
use objects::Objects;

#[derive(Default)]
struct Dataset {
    objects: RwLock<Objects>,
}

impl Dataset {
    // A panic while holding a lock cannot leave an object half-updated in a
    // way that breaks memory safety, so poisoned locks are simply reused.
    fn read(&self) -> RwLockReadGuard<'_, Objects> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Objects> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }
}

static DATASETS: Mutex<BTreeMap<String, Arc<Dataset>>> = Mutex::new(BTreeMap::new());

fn datasets() -> MutexGuard<'static, BTreeMap<String, Arc<Dataset>>> {
    DATASETS.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct MemoryStore {
    name: String,
    dataset: Arc<Dataset>,
}

impl MemoryStore {
    pub fn open(location: &str, options: OpenOptions) -> Result<MemoryStore> {
        let name = location::memory_name(location)?;
        let mut table = datasets();
        let dataset = match table.get(name) {
            Some(existing) => {
                if options.create && !options.noclobber {
                    existing.write().clear();
                }
                existing.clone()
            }
            None if options.create => {
                let fresh = Arc::new(Dataset::default());
                table.insert(name.to_string(), fresh.clone());
                fresh
            }
            None => return Err(Error::Empty),
        };
        Ok(MemoryStore {
            name: name.to_string(),
            dataset,
        })
    }
}

/// Grows `object` to `len` bytes with zeros, reporting allocation failure.
pub(crate) fn grow(object: &mut Vec<u8>, len: u64) -> Result<()> {
    let len = usize::try_from(len).map_err(|_| Error::NoMem)?;
    if len > object.len() {
        object
            .try_reserve_exact(len - object.len())
            .map_err(|_| Error::NoMem)?;
        object.resize(len, 0);
    }
    Ok(())
}

/// Writes `data` at `start`, zero-filling a gap; what lies past the end is
/// appended straight from `data` (no zeros written first). Memory is had
/// before anything changes.
pub(crate) fn put(object: &mut Vec<u8>, start: u64, data: &[u8]) -> Result<()> {
    let start = usize::try_from(start).map_err(|_| Error::NoMem)?;
    let end = start.checked_add(data.len()).ok_or(Error::NoMem)?;
    let inside = object.len().saturating_sub(start).min(data.len());
    if end > object.len() {
        object
            .try_reserve_exact(end - object.len())
            .map_err(|_| Error::NoMem)?;
        if start > object.len() {
            object.resize(start, 0);
        }
        object.extend_from_slice(&data[inside..]);
    }
    object[start..start + inside].copy_from_slice(&data[..inside]);
    Ok(())
}

impl Store for MemoryStore {
    fn len(&self, key: &Key) -> Result<u64> {
        self.dataset.read().len(key.as_str())
    }

    fn define(&self, key: &Key) -> Result<()> {
        self.dataset.write().define(key.as_str())
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        self.dataset.read().read_at(key.as_str(), start, buf)
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        self.dataset.write().write_at(key.as_str(), start, data)
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        Ok(self.dataset.read().children(prefix.as_str()))
    }

    fn each_child(&self, prefix: &Key, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        // store::tree keeps each level sorted: no copies, no sort.
        self.dataset.read().each_child(prefix.as_str(), each)
    }

    fn remove(&self, key: &Key) -> Result<()> {
        self.dataset.write().remove(key.as_str())
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        self.dataset.write().truncate(key.as_str(), len)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        if delete {
            let mut table = datasets();
            if table
                .get(&self.name)
                .is_some_and(|d| Arc::ptr_eq(d, &self.dataset))
            {
                table.remove(&self.name);
            }
        }
        Ok(())
    }
}
