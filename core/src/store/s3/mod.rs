//! `NCZM_S3`: datasets in an S3-compatible object store (cargo feature
//! `s3`, on by default; without it every open is `NC_ENOTBUILT`).
//!
//! - Locations: `s3://bucket/root` (endpoint, region and credentials from
//!   the `AWS_*` environment variables) or `http(s)://host[:port]/bucket/root`
//!   (path style): see `url.rs`. Key `/a/b/.zarray` is object
//!   `root/a/b/.zarray`. A dataset is everything below `root/` (segment-aware:
//!   `root2/...` is another dataset).
//! - Client: `object_store`'s S3 client on a current-thread tokio runtime,
//!   one per endpoint and credentials, shared by the process's maps (a map
//!   reuses the connections of the maps before it); works from inside a
//!   tokio runtime and in a `fork()`ed child (see `client.rs`).
//! - Writes go to a bounded write-back buffer per map and are uploaded once
//!   per object at flush/close, or when the buffer is full (oldest first):
//!   `ZMAP_S3_BUFFER_BYTES` (default 64 MiB; `K`, `M`, `G` suffixes accepted).
//!   Reads, lengths and searches see the map's own pending writes.
//! - Prefix/leaf conflicts (Part A3) are checked with cached HEAD/LIST
//!   requests: costs in `store.rs`.
//! - Errors: not found → `NC_EEMPTY`, refused credentials → `NC_EAUTH`,
//!   anything else → `NC_ES3`. Retries are bounded (a few seconds).
//! - Requests are counted per map and per process (`request_counts`,
//!   `process_request_counts`, and a map's `stats` for `zmap info`); the
//!   library never prints them.

use super::OpenOptions;
use crate::error::{Error, Result};

#[cfg(any(feature = "s3", test))]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
mod buffer;
#[cfg(feature = "s3")]
mod client;
/// Buffered objects in 1 MiB pieces (no copies while they grow or upload).
#[cfg(any(feature = "s3", test))]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
mod content;
/// What a map knows of the server's tree (prefix/leaf checks, sizes).
#[cfg(any(feature = "s3", test))]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
mod known;
/// The AWS shared configuration files (`~/.aws/credentials`, `~/.aws/config`).
#[cfg(feature = "s3")]
mod profile;
#[cfg(feature = "s3")]
mod store;
#[cfg(any(feature = "s3", test))]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
mod url;

#[cfg(feature = "s3")]
pub use client::RequestCounts;
#[cfg(feature = "s3")]
pub use store::MULTIPART_THRESHOLD;

/// Default bound of a map's write-back buffer (`ZMAP_S3_BUFFER_BYTES`).
pub const DEFAULT_BUFFER_BYTES: usize = 64 << 20;

/// Opens (or creates) the dataset at `location`.
#[cfg(feature = "s3")]
pub fn open(location: &str, options: OpenOptions) -> Result<Box<dyn super::Store>> {
    let location = url::parse(location)?;
    let counters = registry::register(&location);
    let store = store::S3Store::open(location, counters, options, buffer_bytes()?)?;
    Ok(Box::new(store))
}

/// Without the `s3` feature: `NC_ENOTBUILT`.
#[cfg(not(feature = "s3"))]
pub fn open(_location: &str, _options: OpenOptions) -> Result<Box<dyn super::Store>> {
    Err(Error::NotBuilt)
}

/// The requests made by the map last opened on `location` (a dataset URL),
/// from its open to now (or to its close). `None` if no map was opened there.
#[cfg(feature = "s3")]
pub fn request_counts(location: &str) -> Option<RequestCounts> {
    let id = url::parse(location).ok()?.id();
    registry::find(&id).map(|c| c.snapshot())
}

/// The `object_store` client configuration the maps use for the dataset
/// URL `location` (same endpoint, path style, region, retries and
/// timeouts), without their request counting: for baselines that must make
/// the same requests the same way (benches/s3_overhead.rs).
#[cfg(feature = "s3")]
pub fn client_builder(location: &str) -> Result<object_store::aws::AmazonS3Builder> {
    Ok(client::builder(&url::parse(location)?))
}

/// Every S3 request this process has made.
#[cfg(feature = "s3")]
pub fn process_request_counts() -> RequestCounts {
    client::PROCESS_COUNTS.snapshot()
}

/// Per-dataset request counters of recently opened maps (the last
/// `KEEP` datasets), for tests and benchmarks.
#[cfg(feature = "s3")]
mod registry {
    use std::sync::{Arc, Mutex};

    use super::client::Counters;
    use super::url::S3Location;

    const KEEP: usize = 256;

    static MAPS: Mutex<Vec<(String, Arc<Counters>)>> = Mutex::new(Vec::new());

    /// Fresh counters for a map opened on `location`.
    pub fn register(location: &S3Location) -> Arc<Counters> {
        let counters = Arc::new(Counters::default());
        let id = location.id();
        let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|(other, _)| *other != id);
        if maps.len() >= KEEP {
            maps.remove(0);
        }
        maps.push((id, counters.clone()));
        counters
    }

    pub fn find(id: &str) -> Option<Arc<Counters>> {
        let maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
        maps.iter()
            .rev()
            .find(|(other, _)| other == id)
            .map(|(_, c)| c.clone())
    }
}

/// `ZMAP_S3_BUFFER_BYTES`: a byte count, optionally with a `K`, `M` or `G`
/// (binary) suffix. A malformed value is `NC_EINVAL` rather than ignored.
#[cfg(feature = "s3")]
fn buffer_bytes() -> Result<usize> {
    match std::env::var("ZMAP_S3_BUFFER_BYTES") {
        Ok(text) => parse_size(&text).ok_or(Error::Invalid("malformed ZMAP_S3_BUFFER_BYTES")),
        Err(_) => Ok(DEFAULT_BUFFER_BYTES),
    }
}

#[cfg(any(feature = "s3", test))]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize << shift)
}

/// The conformance suite's S3 fixture: a unique dataset below
/// `$ZMAP_TEST_S3_URL`, deleted after the test. Without that variable, an
/// empty location, which the suite reports as skipped.
#[cfg(all(test, feature = "s3"))]
pub(crate) fn conformance_fixture() -> crate::testing::conformance::Fixture {
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Ok(map) = crate::map::Map::open(super::Impl::S3, &self.0, 0, 0) {
                let _ = map.close(true);
            }
        }
    }

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    match std::env::var("ZMAP_TEST_S3_URL") {
        Ok(base) if !base.is_empty() => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let location = format!(
                "{}/conformance-{}-{n}",
                base.trim_end_matches('/'),
                std::process::id()
            );
            crate::testing::conformance::Fixture::new(
                location.clone(),
                Some(Box::new(Cleanup(location))),
            )
        }
        _ => crate::testing::conformance::Fixture::new(String::new(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size(" 16m "), Some(16 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("0"), Some(0));
        for bad in ["", "M", "x", "-1", "1.5M", "1T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    /// A dataset below `$ZMAP_TEST_S3_URL` (None: no server, skipped).
    #[cfg(feature = "s3")]
    fn server_dataset(name: &str) -> Option<String> {
        let base = std::env::var("ZMAP_TEST_S3_URL").ok()?;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(format!(
            "{}/unit-{name}-{}-{n}",
            base.trim_end_matches('/'),
            std::process::id()
        ))
    }

    #[cfg(feature = "s3")]
    fn k(text: &str) -> crate::key::Key<'_> {
        crate::key::Key::parse(text.as_bytes()).unwrap()
    }

    /// `exists` then `len` is one HEAD; a size seen longer ago is asked
    /// again; the map's own writes and removes are seen at once.
    #[cfg(feature = "s3")]
    #[test]
    fn sizes_seen_answer_for_a_while() {
        use crate::map::{Map, NC_WRITE};
        use crate::store::Impl;
        let Some(url) = server_dataset("sizes") else {
            return;
        };
        let map = Map::create(Impl::S3, &url, 0, 0).unwrap();
        for i in 0..6 {
            map.write(&k(&format!("/a/{i}")), 0, &vec![1u8; i + 1])
                .unwrap();
        }
        map.close(false).unwrap();
        let map = Map::open(Impl::S3, &url, NC_WRITE, 0).unwrap();
        let before = request_counts(&url).unwrap();
        map.exists(&k("/a/5")).unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 6);
        assert_eq!(request_counts(&url).unwrap().since(&before).head, 1);
        std::thread::sleep(known::SIZE_TTL);
        let before = request_counts(&url).unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 6);
        assert_eq!(request_counts(&url).unwrap().since(&before).head, 1);
        // Past the end of a size just seen: no request.
        let before = request_counts(&url).unwrap();
        let mut buf = [0u8; 7];
        assert!(matches!(
            map.read(&k("/a/5"), 0, &mut buf),
            Err(Error::Edge)
        ));
        assert_eq!(request_counts(&url).unwrap().since(&before).total(), 0);
        // Own changes are seen at once.
        map.write(&k("/a/5"), 10, b"x").unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 11);
        map.flush().unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 11);
        map.truncate(&k("/a/5"), 2).unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 2);
        map.flush().unwrap();
        assert_eq!(map.len(&k("/a/5")).unwrap(), 2);
        map.remove(&k("/a/5")).unwrap();
        assert!(matches!(map.len(&k("/a/5")), Err(Error::Empty)));
        assert!(matches!(map.exists(&k("/a/5")), Err(Error::Empty)));
        map.close(true).unwrap();
    }

    /// A name a search did not show needs no HEAD or LIST before it is
    /// written; the prefix/leaf rules still hold.
    #[cfg(feature = "s3")]
    #[test]
    fn what_a_search_listed_saves_checks() {
        use crate::map::{Map, NC_WRITE};
        use crate::store::Impl;
        let Some(url) = server_dataset("listed") else {
            return;
        };
        let map = Map::create(Impl::S3, &url, 0, 0).unwrap();
        map.write(&k("/.zgroup"), 0, b"{}").unwrap();
        map.write(&k("/v/0"), 0, b"x").unwrap();
        map.close(false).unwrap();
        let map = Map::open(Impl::S3, &url, NC_WRITE, 0).unwrap();
        assert_eq!(map.search(&k("/")).unwrap(), [".zgroup", "v"]);
        assert_eq!(map.search(&k("/v")).unwrap(), ["0"]);
        let before = request_counts(&url).unwrap();
        map.write(&k("/w/0"), 0, b"new").unwrap();
        map.write(&k("/w/1"), 0, b"new").unwrap();
        map.write(&k("/v/1"), 0, b"new").unwrap();
        assert_eq!(request_counts(&url).unwrap().since(&before).total(), 0);
        // Listed names are still checked.
        assert!(matches!(
            map.write(&k("/.zgroup/x"), 0, b"x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.write(&k("/v"), 0, b"x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            map.write(&k("/w/0/x"), 0, b"x"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(map.define(&k("/w")), Err(Error::Invalid(_))));
        map.close(false).unwrap();
        let map = Map::open(Impl::S3, &url, 0, 0).unwrap();
        assert_eq!(map.search(&k("/")).unwrap(), [".zgroup", "v", "w"]);
        assert_eq!(map.search(&k("/v")).unwrap(), ["0", "1"]);
        map.close(true).unwrap();
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn not_built() {
        let options = OpenOptions::default();
        assert!(matches!(open("s3://b/r", options), Err(Error::NotBuilt)));
    }
}
