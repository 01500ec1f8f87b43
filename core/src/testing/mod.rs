//! Helpers shared by the tests of every package (feature `test-support`,
//! as object_store's `integration` feature): the core's own unit tests and
//! tests/, libzmap's and the `zmap` tool's tests. Test code: it panics on
//! every failure it is not asked to return.
//!
//! `conformance` is the one suite of scenarios every backend runs.

#[cfg(test)]
pub(crate) mod conformance;

use crate::codes::NC_NOERR;
use crate::error::Result;
use crate::key::Key;
use crate::map::Map;

/// A key from its text (`/a/b`); panics if it is not a valid key.
pub fn key(k: &str) -> Key<'_> {
    Key::parse(k.as_bytes()).expect("valid key")
}

/// The NC code of a result (`NC_NOERR` for success), as a C caller sees it.
pub fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => NC_NOERR,
        Err(e) => e.code(),
    }
}

/// The whole content of the object `k`.
pub fn read_all(map: &Map, k: &str) -> Vec<u8> {
    let len = map.len(&key(k)).expect("len");
    let mut buf = vec![0u8; len as usize];
    map.read(&key(k), 0, &mut buf).expect("read");
    buf
}
