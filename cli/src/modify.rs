//! Commands that change a dataset: put, rm.

use std::fs::File;
use std::io::{self, Read};

use zmap_core::{Error, Map};

use crate::dataset::{self, Target};
use crate::failure::{At, Failure};
use crate::inspect::CHUNK;

/// Stores a local file (or stdin) as one object: written piece by piece from
/// offset 0, then cut to the new length so no stale tail of an older, longer
/// content remains. The dataset is flushed and closed before success.
pub fn put(target: &Target, key: &str, source: &str, create: bool) -> Result<(), Failure> {
    let mut input: Box<dyn Read> = if source == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(source).map_err(|e| Failure::nc(source, Error::Io(e)))?)
    };
    let map = match target.open_write() {
        Err(Failure::Nc {
            error: Error::Empty,
            ..
        }) if create => target.create(true)?,
        other => other?,
    };
    let key = dataset::parse_object_key(target, key)?;
    let context = target.key_context(&key);
    let written = match copy_into(&map, &key, &mut *input, source, &context) {
        Ok(n) => n,
        Err(failure) => {
            let _ = map.close(false);
            return Err(failure);
        }
    };
    if written == 0 {
        map.define(&key).at(&context)?;
    }
    map.truncate(&key, written).at(&context)?;
    map.close(false).at(target)
}

fn copy_into(
    map: &Map,
    key: &zmap_core::Key,
    input: &mut dyn Read,
    source: &str,
    context: &str,
) -> Result<u64, Failure> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(at),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::nc(source, Error::Io(e))),
        };
        map.write(key, at, &buf[..n]).at(context)?;
        at += n as u64;
    }
}

/// Removes one object; with `recursive`, every object below `key` too
/// (the key itself may then be an intermediate key or the root).
pub fn rm(target: &Target, key: &str, recursive: bool) -> Result<(), Failure> {
    let map = target.open_write()?;
    let result = remove(&map, target, key, recursive);
    let closed = map.close(false).at(target);
    result.and(closed)
}

fn remove(map: &Map, target: &Target, key: &str, recursive: bool) -> Result<(), Failure> {
    if !recursive {
        let key = dataset::parse_object_key(target, key)?;
        return map.remove(&key).at(target.key_context(&key));
    }
    let start = dataset::parse_key(target, key)?;
    let objects = dataset::objects(map, target, &start)?;
    if objects.is_empty() && !start.is_root() {
        return Err(Failure::nc(target.key_context(&start), Error::Empty));
    }
    for (object, _) in objects {
        map.remove(&object).at(target.key_context(&object))?;
    }
    Ok(())
}
