//! Shared helpers of the S3 integration tests (tests/s3_*.rs). They need a
//! server: `scripts/seaweedfs.sh run cargo test ...` (or scripts/test.sh)
//! sets `ZMAP_TEST_S3_URL`; without it every test prints "skipped" and passes.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

#[allow(unused_imports)] // not every test file uses every helper
pub use zmap_core::testing::{code, key, read_all};
use zmap_core::{Impl, Map};

/// `$ZMAP_TEST_S3_URL`, or `None` after printing why the test is skipped.
pub fn base_url() -> Option<String> {
    match std::env::var("ZMAP_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ => {
            println!("skipped: ZMAP_TEST_S3_URL is not set (run under scripts/seaweedfs.sh)");
            None
        }
    }
}

/// A dataset location below `base` that no other test uses.
pub fn dataset(base: &str, name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{base}/{name}-{}-{n}", std::process::id())
}

pub fn create(url: &str) -> Map {
    Map::create(Impl::S3, url, 0, 0).unwrap_or_else(|e| panic!("create {url}: {e}"))
}

pub fn open(url: &str, mode: i32) -> Map {
    Map::open(Impl::S3, url, mode, 0).unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// Deletes the dataset if it exists (cleanup after a test).
pub fn remove_dataset(url: &str) {
    if let Ok(map) = Map::open(Impl::S3, url, 0, 0) {
        map.close(true).expect("delete dataset");
    }
}
