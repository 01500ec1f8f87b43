//! `zmap` with NC4 datasets: the backend is guessed from `.nc`/`.nz4`
//! (or forced with `-b nc4`), listed by `zmap backends`, and `zmap cp`
//! copies exactly between NC4 and every other backend.
#![cfg(feature = "nc4")]

use std::path::Path;

mod support;

use support::{ok, s, text, tree, zmap};

/// A Zarr-v2-shaped dataset as plain files (markers, nested groups, chunks
/// of several sizes, an empty object, one object over 1 MiB).
fn zarr_like(root: &Path) {
    let write = |rel: &str, data: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    write(".zgroup", b"{\"zarr_format\": 2}");
    write(".zattrs", b"{\"title\": \"nc4 copy\"}");
    write("g/.zgroup", b"{\"zarr_format\": 2}");
    write("g/v/.zarray", b"{\"chunks\": [4], \"dtype\": \"<i4\"}");
    write("g/empty", b"");
    for i in 0..12 {
        let data: Vec<u8> = (0..3000 + i).map(|j| (i * 31 + j) as u8).collect();
        write(&format!("g/v/{i}"), &data);
    }
    let big: Vec<u8> = (0..(1 << 20) + 17)
        .map(|j: usize| (j % 251) as u8)
        .collect();
    write("g/big/0.0", &big);
}

#[test]
fn backends_lists_nc4_as_built() {
    let out = text(&ok(&["backends"]).stdout);
    assert!(out.contains("nc4 built\n"), "{out}");
}

#[test]
fn cp_between_nc4_and_every_other_backend() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src);
    // FILE -> NC4 (guessed from .nc) -> GNZ -> NC4 (.nz4) -> NC4 (forced,
    // any name) -> FILE.
    let nc = dir.path().join("copy.nc");
    ok(&["cp", "-j", "4", s(&src), s(&nc)]);
    assert!(nc.is_file());
    ok(&["verify", s(&nc)]);
    let listing = text(&ok(&["ls", "-lR", s(&nc)]).stdout);
    assert!(listing.contains(".zarray"), "{listing}");
    let gnz = dir.path().join("copy.gnz");
    ok(&["cp", s(&nc), s(&gnz)]);
    let nz4 = dir.path().join("copy.nz4");
    ok(&["cp", s(&gnz), s(&nz4)]);
    let forced = dir.path().join("forced.data");
    ok(&["cp", "--dst-backend", "nc4", s(&nz4), s(&forced)]);
    ok(&["ls", "-b", "nc4", s(&forced)]);
    let back = dir.path().join("back");
    ok(&["cp", "--src-backend", "nc4", s(&forced), s(&back)]);
    assert_eq!(tree(&back), tree(&src));
    // NC4 replacing an existing NC4 dataset, and NC4 -> memory.
    ok(&["cp", s(&gnz), s(&nc)]);
    ok(&["cp", s(&nc), "mem://nc4-copy"]);
    // S3, when a test server is configured.
    if let Ok(base) = std::env::var("ZMAP_TEST_S3_URL") {
        let url = format!("{base}/cli-nc4-{}", std::process::id());
        ok(&["cp", s(&nc), &url]);
        let again = dir.path().join("again.nc");
        ok(&["cp", &url, s(&again)]);
        let back2 = dir.path().join("back2");
        ok(&["cp", s(&again), s(&back2)]);
        assert_eq!(tree(&back2), tree(&src));
        ok(&["rm", "-r", &url, "/"]);
    }
}

#[test]
fn a_key_nc4_cannot_store_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("g")).unwrap();
    std::fs::write(src.join(".zgroup"), b"{}").unwrap();
    std::fs::write(src.join("g/_private"), b"x").unwrap();
    let nc = dir.path().join("copy.nc");
    let out = zmap(&["cp", s(&src), s(&nc)]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("_private"), "{err}");
    assert!(err.contains("Invalid argument"), "{err}");
}
