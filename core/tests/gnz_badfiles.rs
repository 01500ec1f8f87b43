//! GNZ: files that are not (valid) GNZ files, and arrays that are not
//! objects. Bad files give NC_ENOTNC (never a panic) and a failed open
//! changes nothing; bad names make the file read-only.

mod gnz_util;

use gnz_util::*;
use serde_json::json;
use zmap_core::codes::*;
use zmap_core::map::{Map, NC_NOCLOBBER};
use zmap_core::Impl;

fn header_file(json: &str, size: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"GNZ1");
    f.extend_from_slice(&(json.len() as u32).to_le_bytes());
    f.extend_from_slice(json.as_bytes());
    f.resize(size.max(f.len()), 0);
    f
}

/// Opening `bytes` read-only and writable gives `want`, and neither open
/// changes the file.
fn assert_open_fails(bytes: &[u8], want: i32, what: &str) {
    let (_dir, path) = temp_gnz("bad");
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(code(open_ro(&path)), want, "read-only open of {what}");
    assert_eq!(code(open_rw(&path)), want, "writable open of {what}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what} was modified");
}

#[test]
fn every_truncation_of_a_tight_file_is_not_gnz() {
    // The last array ends exactly at the end of the file, as the original
    // writer lays out a file whose last array fills its page.
    let (_dir, path) = temp_gnz("tight");
    python_write(
        &path,
        &[
            PyArray::new("a", "<f8", &[3, 5], (0..120).collect()),
            PyArray::new("/b", "|u1", &[4096], vec![7; 4096]),
        ],
        Default::default(),
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 3 * 4096);
    assert!(open_ro(&path).is_ok());
    for cut in 0..bytes.len() {
        // Checking every length through the full open path is slow in debug
        // builds; the header part byte by byte, the data part in steps.
        if cut > 512 && cut % 61 != 0 && cut != bytes.len() - 1 {
            continue;
        }
        assert_open_fails(&bytes[..cut], NC_ENOTNC, &format!("cut at {cut}"));
    }
}

#[test]
fn every_truncation_of_a_zmap_file_fails_or_keeps_everything() {
    let (_dir, path) = temp_gnz("zmap");
    let map = create(&path);
    map.write(&key("/.nczarr"), 0, b"{}").unwrap();
    map.write(&key("/g/small"), 0, b"small object").unwrap();
    map.write(&key("/g/big"), 0, &vec![3u8; 5000]).unwrap();
    map.close(false).unwrap();
    let full = contents(&open_ro(&path).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let ends: Vec<usize> = load(&path)
        .header
        .arrays
        .iter()
        .map(|a| (a.offset + a.nbytes) as usize)
        .collect();
    let (_d, p) = temp_gnz("cut");
    for cut in 0..bytes.len() {
        // Every cut through the header, each array's last bytes, and a
        // sample of the rest.
        let near_end = ends.iter().any(|&e| cut + 2 >= e && cut <= e + 1);
        if cut > 1024 && !near_end && cut % 89 != 0 {
            continue;
        }
        std::fs::write(&p, &bytes[..cut]).unwrap();
        match open_ro(&p) {
            Ok(map) => assert_eq!(contents(&map), full, "cut at {cut}"),
            Err(e) => assert_eq!(e.code(), NC_ENOTNC, "cut at {cut}"),
        }
    }
}

#[test]
fn corruption_classes_are_not_gnz() {
    let arr =
        |body: &str| format!(r#"{{"arrays": {{"/a": {body}}}, "metadata": {{}}, "version": 1}}"#);
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("empty file".into(), vec![]),
        ("wrong magic".into(), {
            let mut f = header_file("{}", 4096);
            f[..4].copy_from_slice(b"GNZ2");
            f
        }),
        (
            "HDF5 file".into(),
            b"\x89HDF\r\n\x1a\n and more bytes".to_vec(),
        ),
        ("header length past EOF".into(), {
            let mut f = header_file("{}", 100);
            f[4..8].copy_from_slice(&200u32.to_le_bytes());
            f
        }),
        (
            "malformed JSON".into(),
            header_file(r#"{"arrays": {"#, 4096),
        ),
        ("JSON array".into(), header_file("[1, 2]", 4096)),
        (
            "arrays not an object".into(),
            header_file(r#"{"arrays": [1]}"#, 4096),
        ),
        ("entry not an object".into(), header_file(&arr("7"), 4096)),
        (
            "negative offset".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": -4096, "shape": [1]}"#),
                8192,
            ),
        ),
        (
            "fractional offset".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": 4096.5, "shape": [1]}"#),
                8192,
            ),
        ),
        (
            "offset past EOF".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": 8192, "shape": [1]}"#),
                8192,
            ),
        ),
        (
            "data past EOF".into(),
            header_file(
                &arr(r#"{"dtype": "<f8", "offset": 4096, "shape": [513]}"#),
                8192,
            ),
        ),
        (
            "offset inside the header".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": 10, "shape": [1]}"#),
                8192,
            ),
        ),
        (
            "overlapping arrays".into(),
            header_file(
                r#"{"arrays": {"/a": {"dtype": "|u1", "offset": 4096, "shape": [100]}, "/b": {"dtype": "|u1", "offset": 4150, "shape": [100]}}}"#,
                8192,
            ),
        ),
        (
            "shape overflow".into(),
            header_file(
                &arr(r#"{"dtype": "<c16", "offset": 4096, "shape": [4294967296, 4294967296, 2]}"#),
                8192,
            ),
        ),
        (
            "absurd shape".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": 4096, "shape": [1e300]}"#),
                8192,
            ),
        ),
        (
            "unknown dtype".into(),
            header_file(
                &arr(r#"{"dtype": "<x8", "offset": 4096, "shape": [1]}"#),
                8192,
            ),
        ),
        (
            "unknown order".into(),
            header_file(
                &arr(r#"{"dtype": "|u1", "offset": 4096, "shape": [1], "order": "Z"}"#),
                8192,
            ),
        ),
        (
            "version 2".into(),
            header_file(r#"{"arrays": {}, "version": 2}"#, 4096),
        ),
    ];
    for (what, bytes) in &cases {
        assert_open_fails(bytes, NC_ENOTNC, what);
    }
}

#[test]
fn a_directory_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(open_ro(dir.path())), NC_ENOTNC);
    assert_eq!(code(open_ro(&dir.path().join("missing.gnz"))), NC_EEMPTY);
    assert_eq!(code(open_rw(&dir.path().join("missing.gnz"))), NC_EEMPTY);
    assert_eq!(
        code(Map::create(Impl::Gnz, &loc(dir.path()), 0, 0)),
        NC_EEXIST
    );
}

#[test]
fn names_that_are_not_keys_make_the_file_read_only() {
    let (_dir, path) = temp_gnz("names");
    python_write(
        &path,
        &[
            PyArray::new("good", "|u1", &[3], b"abc".to_vec()),
            PyArray::new("bad//name", "|u1", &[2], b"xy".to_vec()),
            PyArray::new("/dots/../up", "|u1", &[1], b"z".to_vec()),
            PyArray::new("/good", "|u1", &[1], b"!".to_vec()),
            PyArray::new("/leaf", "|u1", &[1], b"L".to_vec()),
            PyArray::new("/leaf/below", "|u1", &[1], b"B".to_vec()),
        ],
        Default::default(),
    );
    let before = std::fs::read(&path).unwrap();
    for map in [open_ro(&path).unwrap(), open_rw(&path).unwrap()] {
        // "/good" and "good" are one key: the first by name order wins;
        // "/leaf/below" lies below the object "/leaf".
        assert_eq!(
            contents(&map),
            vec![
                ("/good".to_string(), b"!".to_vec()),
                ("/leaf".to_string(), b"L".to_vec()),
            ]
        );
        if map.is_writable() {
            assert_eq!(code(map.write(&key("/new"), 0, b"1")), NC_EPERM);
            assert_eq!(code(map.define(&key("/new"))), NC_EPERM);
            assert_eq!(code(map.remove(&key("/leaf"))), NC_EPERM);
            assert_eq!(code(map.truncate(&key("/leaf"), 0)), NC_EPERM);
            assert_eq!(code(map.compact()), NC_EPERM);
            map.flush().unwrap();
        }
        map.close(false).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // NOCLOBBER create opens it the same way: read-only.
    let noclobber = Map::create(Impl::Gnz, &loc(&path), NC_NOCLOBBER, 0).unwrap();
    assert_eq!(code(noclobber.write(&key("/x"), 0, b"1")), NC_EPERM);
    noclobber.close(false).unwrap();
}

#[test]
fn create_refuses_what_it_does_not_own() {
    let (dir, path) = temp_gnz("create");
    // Not a GNZ file: refused and untouched, whatever the mode.
    let text = b"not a dataset\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(code(Map::create(Impl::Gnz, &loc(&path), 0, 0)), NC_EEXIST);
    assert_eq!(
        code(Map::create(Impl::Gnz, &loc(&path), NC_NOCLOBBER, 0)),
        NC_EEXIST
    );
    assert_eq!(std::fs::read(&path).unwrap(), text);
    // A GNZ file with arrays but no dataset marker: refused too.
    python_write(
        &path,
        &[PyArray::new("weights", "<f4", &[2], vec![0; 8])],
        Default::default(),
    );
    let gnz = std::fs::read(&path).unwrap();
    assert_eq!(code(Map::create(Impl::Gnz, &loc(&path), 0, 0)), NC_EEXIST);
    assert_eq!(std::fs::read(&path).unwrap(), gnz);
    // ... but NOCLOBBER opens it, and the arrays are objects.
    let map = Map::create(Impl::Gnz, &loc(&path), NC_NOCLOBBER, 0).unwrap();
    assert_eq!(map.len(&key("/weights")).unwrap(), 8);
    map.close(false).unwrap();
    // A GNZ file it cannot parse (good magic, broken header) is not its
    // dataset either: refused in both modes, untouched.
    let broken = header_file("{\"arrays\": ", 4096);
    std::fs::write(&path, &broken).unwrap();
    assert_eq!(
        code(Map::create(Impl::Gnz, &loc(&path), NC_NOCLOBBER, 0)),
        NC_EEXIST
    );
    assert_eq!(code(Map::create(Impl::Gnz, &loc(&path), 0, 0)), NC_EEXIST);
    assert_eq!(std::fs::read(&path).unwrap(), broken);
    // Missing parent directories are made.
    let deep = dir.path().join("a/b/c.gnz");
    create(&deep).close(false).unwrap();
    assert!(open_ro(&deep).is_ok());
}

#[test]
fn metadata_of_other_writers_survives_a_rewrite() {
    let (_dir, path) = temp_gnz("meta");
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "creator".into(),
        json!({"tool": "gnz.py", "n": [1, 2.5, null]}),
    );
    metadata.insert("zmap".into(), json!({"future": "kept"}));
    python_write(
        &path,
        &[PyArray::new(".zgroup", "|u1", &[2], b"{}".to_vec())],
        metadata,
    );
    let map = open_rw(&path).unwrap();
    map.write(&key("/x"), 0, b"1").unwrap();
    map.close(false).unwrap();
    let (header, _) = python_read(&path);
    assert_eq!(
        header.metadata["creator"],
        Json::from(&json!({"tool": "gnz.py", "n": [1, 2.5, null]}))
    );
    let zmap = &header.metadata["zmap"];
    assert_eq!(zmap.get("future"), Some(&Json::String("kept".into())));
    assert_eq!(zmap.get("revision"), Some(&Json::from(1)));
    assert!(zmap.get("generation").and_then(Json::as_u64).unwrap() >= 1);
    // The array keeps its name without a leading '/'.
    assert!(header.arrays.iter().any(|a| a.name == ".zgroup"));
    // A clobbering create forgets it all.
    let map = Map::create(Impl::Gnz, &loc(&path), 0, 0).unwrap();
    map.close(false).unwrap();
    let (header, arrays) = python_read(&path);
    assert!(arrays.is_empty());
    assert!(!header.metadata.contains_key("creator"));
}
