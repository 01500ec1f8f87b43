//! The maps the bridge opened: an `NCZMAP` handed to netCDF (its fields as
//! netCDF's own implementations fill them) and, by that pointer, the
//! `zmap_core::Map` behind it. Pointers not in this table are netCDF's own.

use std::collections::HashMap;
use std::ffi::c_int;
use std::io::Write as _;
use std::sync::{Arc, Mutex, RwLock};

use zmap_core::{Error, Impl, Key, Map, Result};

use crate::abi::{c_string_copy, NcZmap, NcZmapApi, NC_NETCDF4, NC_WRITE};
use crate::host::Generation;

/// One open map of ours.
pub struct Open {
    /// `None` once closed (a call racing the close gets `NC_EBADID`).
    map: RwLock<Option<Map>>,
    pub generation: Generation,
    /// The dataset URL of an S3 map (for its request counts).
    s3_url: Option<String>,
}

type Table = HashMap<usize, Arc<Open>>;

static OPEN: Mutex<Option<Table>> = Mutex::new(None);

fn table<T>(body: impl FnOnce(&mut Table) -> T) -> T {
    let mut guard = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    body(guard.get_or_insert_with(HashMap::new))
}

/// Our map behind `map`, if it is one of ours.
pub fn lookup(map: *const NcZmap) -> Option<Arc<Open>> {
    if map.is_null() {
        return None;
    }
    table(|t| t.get(&(map as usize)).cloned())
}

/// How a map is asked for.
pub struct Request<'a> {
    pub backend: Impl,
    /// Path (GNZ) or URL (S3) for the core.
    pub location: &'a str,
    /// The URL netCDF gave (stored in `map->url`).
    pub url: &'a str,
    /// netCDF's `NCZM_IMPL` number (stored in `map->format`).
    pub format: c_int,
    /// netCDF's mode flags.
    pub mode: c_int,
    pub flags: u64,
    pub generation: Generation,
}

/// Creates or opens the dataset and returns its `NCZMAP`. netCDF's
/// `flags` (NCZarr's controls) mean nothing to the core and are only kept.
pub fn start(request: Request, create: bool, api: &'static NcZmapApi) -> Result<*mut NcZmap> {
    let (map, mode) = if create {
        let map = Map::create(request.backend, request.location, request.mode, 0)?;
        (map, request.mode | NC_NETCDF4 | NC_WRITE)
    } else {
        let map = Map::open(request.backend, request.location, request.mode, 0)?;
        let mode = if map.is_writable() {
            request.mode | NC_NETCDF4
        } else {
            (request.mode | NC_NETCDF4) & !NC_WRITE
        };
        (map, mode)
    };
    let url = c_string_copy(request.url);
    if url.is_null() {
        let _ = map.close(false);
        return Err(Error::NoMem);
    }
    let handle = Box::into_raw(Box::new(NcZmap {
        format: request.format,
        url,
        mode,
        flags: request.flags,
        api,
    }));
    let open = Arc::new(Open {
        map: RwLock::new(Some(map)),
        generation: request.generation,
        s3_url: (request.backend == Impl::S3).then(|| request.location.to_string()),
    });
    table(|t| t.insert(handle as usize, open));
    Ok(handle)
}

impl Open {
    /// Runs `body` on the open map.
    pub fn with<T>(&self, body: impl FnOnce(&Map) -> Result<T>) -> Result<T> {
        let guard = self.map.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(map) => body(map),
            None => Err(Error::BadHandle),
        }
    }
}

/// Closes our map `handle` (deleting the dataset with `delete`) and frees it.
///
/// # Safety
/// `handle` was returned by `start` and is not used after this call.
pub unsafe fn finish(handle: *mut NcZmap, delete: bool) -> Result<()> {
    let Some(open) = table(|t| t.remove(&(handle as usize))) else {
        return Err(Error::BadHandle);
    };
    let map = open.map.write().unwrap_or_else(|p| p.into_inner()).take();
    // SAFETY: `handle` came from Box::into_raw in `start` and left the table
    // just now, so nobody else frees it; its url came from malloc.
    let boxed = unsafe { Box::from_raw(handle) };
    // SAFETY: the url came from malloc and is freed only here.
    unsafe { libc::free(boxed.url.cast()) };
    drop(boxed);
    let result = match map {
        Some(map) => map.close(delete),
        None => Err(Error::BadHandle),
    };
    if let Some(url) = &open.s3_url {
        log_requests(url);
    }
    result
}

/// With `ZMAP_NETCDF_REQUEST_LOG=<file>` set, appends the S3 requests of the
/// map just closed on `url` to that file, one line per map (the library never
/// prints; this log is the bridge's only output, and only on request).
pub fn log_requests(url: &str) {
    let Some(path) = std::env::var_os("ZMAP_NETCDF_REQUEST_LOG") else {
        return;
    };
    let Some(c) = zmap_core::store::s3::request_counts(url) else {
        return;
    };
    let line = format!(
        "{} requests={} head={} get={} list={} put={} multipart={} parts={} delete={} bulk_delete={} other={}\n",
        url.split('#').next().unwrap_or(url),
        c.total(),
        c.head,
        c.get,
        c.list,
        c.put,
        c.multipart_start,
        c.part,
        c.delete,
        c.bulk_delete,
        c.other
    );
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// netCDF 4.9.3's write (and 4.9.0's at offset 0, which is how NCZarr
/// writes every object): the object becomes exactly `data`.
pub fn replace(map: &Map, key: &Key, data: &[u8]) -> Result<()> {
    if data.is_empty() {
        map.define(key)?;
    } else {
        map.write(key, 0, data)?;
    }
    match map.len(key) {
        Ok(len) if len > data.len() as u64 => map.truncate(key, data.len() as u64),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_makes_the_object_exactly_the_data() {
        let name = format!("mem://bridge-replace-{}", std::process::id());
        let map = Map::create(Impl::Memory, &name, 0, 0).unwrap();
        let key = Key::parse(b"/g/.zattrs").unwrap();
        replace(&map, &key, b"{\"a\": 1234567}").unwrap();
        replace(&map, &key, b"{}").unwrap();
        assert_eq!(map.len(&key).unwrap(), 2);
        let mut buf = [0u8; 2];
        map.read(&key, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"{}");
        replace(&map, &key, b"").unwrap();
        assert_eq!(map.len(&key).unwrap(), 0);
        let fresh = Key::parse(b"/empty").unwrap();
        replace(&map, &fresh, b"").unwrap();
        assert_eq!(map.len(&fresh).unwrap(), 0);
        map.close(true).unwrap();
    }
}
