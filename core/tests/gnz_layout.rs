//! GNZ: files in the original writer's layout open with the right lengths
//! and bytes; what libzmap writes keeps the format's rules (valid header at
//! 0 after every commit, alignment policy, arrays of other writers kept).

mod gnz_util;

use gnz_util::*;
use serde_json::json;
use zmap_core::codes::*;

fn f8(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Arrays as numpy would hand them to the original writer.
fn original_arrays(many: usize) -> Vec<PyArray> {
    let mut arrays = vec![
        PyArray::new(
            "matrix",
            "<f8",
            &[3, 5],
            f8(&(0..15).map(|i| i as f64 * 0.5).collect::<Vec<_>>()),
        ),
        PyArray::new("scalar", "<i4", &[], (-7i32).to_le_bytes().to_vec()),
        PyArray::new("empty", "<f8", &[0], vec![]),
        PyArray::new("empty2d", "<i2", &[4, 0], vec![]),
        PyArray::new(
            "group/bytes",
            "|u1",
            &[5000],
            (0..5000).map(|i| i as u8).collect(),
        ),
        PyArray::new("/abs/name", "|S3", &[2], b"abcdef".to_vec()),
    ];
    for i in 0..many {
        arrays.push(PyArray::new(
            &format!("series/a_rather_long_array_name_number_{i:04}"),
            "<u2",
            &[3],
            vec![i as u8; 6],
        ));
    }
    arrays
}

fn check_original(path: &std::path::Path, arrays: &[PyArray]) {
    let map = open_ro(path).unwrap();
    for a in arrays {
        let k = if a.name.starts_with('/') {
            a.name.clone()
        } else {
            format!("/{}", a.name)
        };
        assert_eq!(map.len(&key(&k)).unwrap(), a.data.len() as u64, "{k}");
        assert_eq!(read_all(&map, &k), a.data, "{k}");
    }
    let n = arrays.len();
    assert_eq!(contents(&map).len(), n);
    map.close(false).unwrap();
}

#[test]
fn original_layout_small_header() {
    let (_dir, path) = temp_gnz("orig");
    let arrays = original_arrays(0);
    python_write(&path, &arrays, Default::default());
    let (header, _) = python_read(&path);
    assert!(header.arrays.iter().all(|a| a.offset % 4096 == 0));
    assert_eq!(header.arrays.iter().map(|a| a.offset).min(), Some(4096));
    check_original(&path, &arrays);
    // Searching shows names without a leading '/' under the root.
    let map = open_ro(&path).unwrap();
    let top = map.search(&key("/")).unwrap();
    assert_eq!(
        top,
        ["abs", "empty", "empty2d", "group", "matrix", "scalar"]
    );
    map.close(false).unwrap();
}

#[test]
fn original_layout_with_a_header_past_the_first_page() {
    let (_dir, path) = temp_gnz("bighdr");
    let arrays = original_arrays(60);
    python_write(&path, &arrays, Default::default());
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as u64;
    assert!(
        header_len > 4088,
        "the test needs a long header ({header_len})"
    );
    let (header, _) = python_read(&path);
    let first = header.arrays.iter().map(|a| a.offset).min().unwrap();
    assert!(first >= 8192 && first % 4096 == 0);
    check_original(&path, &arrays);
}

#[test]
fn rewriting_keeps_the_arrays_of_other_writers() {
    let (_dir, path) = temp_gnz("keep");
    let arrays = original_arrays(3);
    python_write(&path, &arrays, Default::default());
    let map = open_rw(&path).unwrap();
    // Same length: dtype/shape/order/name kept. New length: |u1 [len].
    map.write(&key("/matrix"), 8, &1.25f64.to_le_bytes())
        .unwrap();
    map.write(&key("/scalar"), 4, b"more").unwrap();
    map.truncate(&key("/group/bytes"), 10).unwrap();
    map.write(&key("/zmap/new"), 0, b"fresh").unwrap();
    map.close(false).unwrap();

    let (header, data) = python_read(&path);
    let get = |name: &str| header.arrays.iter().find(|a| a.name == name).unwrap();
    let matrix = get("matrix");
    assert_eq!(
        (matrix.dtype.as_str(), &matrix.shape[..]),
        ("<f8", &[3u64, 5][..])
    );
    assert_eq!(get("empty2d").shape, [4, 0]);
    assert_eq!(get("empty2d").dtype, "<i2");
    assert_eq!(get("/abs/name").dtype, "|S3");
    let scalar = get("scalar");
    assert_eq!(
        (scalar.dtype.as_str(), &scalar.shape[..]),
        ("|u1", &[8u64][..])
    );
    assert_eq!(get("group/bytes").shape, [10]);
    assert_eq!(get("/zmap/new").dtype, "|u1");
    // The bytes as the original reader sees them.
    let bytes_of = |name: &str| data.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let mut m = arrays[0].data.clone();
    m[8..16].copy_from_slice(&1.25f64.to_le_bytes());
    assert_eq!(bytes_of("matrix"), m);
    assert_eq!(
        bytes_of("scalar"),
        [&(-7i32).to_le_bytes()[..], b"more"].concat()
    );
    assert_eq!(bytes_of("group/bytes"), (0..10).collect::<Vec<u8>>());
    assert_eq!(bytes_of("/zmap/new"), b"fresh");
    assert_eq!(
        bytes_of("series/a_rather_long_array_name_number_0002"),
        vec![2; 6]
    );
    assert!(bytes_of("empty").is_empty());
}

#[test]
fn placement_policy_and_valid_header_after_every_commit() {
    let (_dir, path) = temp_gnz("policy");
    let map = create(&path);
    let mut expected = Vec::new();
    for round in 0..6u8 {
        for i in 0..40u32 {
            let len = [0usize, 1, 100, 4095, 4096, 9000][(i % 6) as usize];
            let k = format!("/r{}/o{i:03}", round % 3);
            let data = vec![round.wrapping_mul(31).wrapping_add(i as u8); len];
            map.define(&key(&k)).unwrap();
            map.write(&key(&k), 0, &data).unwrap();
            map.truncate(&key(&k), len as u64).unwrap();
            expected.retain(|(n, _): &(String, Vec<u8>)| n != &k);
            expected.push((k, data));
        }
        if round % 2 == 1 {
            map.remove(&key(&format!("/r{}/o001", round % 3))).unwrap();
            expected.retain(|(n, _)| n != &format!("/r{}/o001", round % 3));
        }
        map.flush().unwrap();
        map.verify().unwrap();
        // After each commit the header at offset 0 alone describes it.
        let (header, data) = python_read(&path);
        let mut seen: Vec<(String, Vec<u8>)> = data;
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected, "round {round}");
        for a in &header.arrays {
            if a.nbytes >= 4096 {
                assert_eq!(a.offset % 4096, 0, "{} at {}", a.name, a.offset);
            } else if a.nbytes > 0 {
                assert_eq!(a.offset % 16, 0, "{} at {}", a.name, a.offset);
            } else {
                assert_eq!(a.offset, 0);
            }
            assert_eq!((a.dtype.as_str(), a.order.as_str()), ("|u1", "C"));
            assert_eq!(a.shape, [a.nbytes]);
        }
        assert_eq!(file_size(&path) % 4096, 0);
        assert!(!load(&path).recovered);
    }
    map.close(false).unwrap();
    let map = open_ro(&path).unwrap();
    assert_eq!(contents(&map), expected);
    map.verify().unwrap();
}

#[test]
fn ten_thousand_small_objects_are_cheap() {
    let (_dir, path) = temp_gnz("small");
    let map = create(&path);
    let started = std::time::Instant::now();
    let chunk = vec![0x5au8; 1024];
    for i in 0..10_000 {
        map.write(&key(&format!("/var/c.{}.{}", i / 100, i % 100)), 0, &chunk)
            .unwrap();
    }
    map.close(false).unwrap();
    let elapsed = started.elapsed();
    // Packed: data plus a header of ~70 bytes per object, little waste.
    let size = file_size(&path);
    assert!(
        size < 10_000 * (1024 + 100) + 64 * 1024,
        "file is {size} bytes"
    );
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
    let map = open_ro(&path).unwrap();
    assert_eq!(map.search(&key("/var")).unwrap().len(), 10_000);
    assert_eq!(read_all(&map, "/var/c.99.99"), chunk);
    assert_eq!(code(map.exists(&key("/var/c.100.0"))), NC_EEMPTY);
}

#[test]
fn zero_length_and_sparse_objects() {
    let (_dir, path) = temp_gnz("sparse");
    let map = create(&path);
    map.define(&key("/e")).unwrap();
    map.write(&key("/s"), 1 << 20, b"end").unwrap();
    map.truncate(&key("/t"), 0).unwrap_err();
    map.write(&key("/t"), 0, b"0123456789").unwrap();
    map.flush().unwrap();
    map.truncate(&key("/t"), 3).unwrap();
    map.truncate(&key("/t"), 6).unwrap();
    map.close(false).unwrap();
    let map = open_ro(&path).unwrap();
    assert_eq!(map.len(&key("/e")).unwrap(), 0);
    let s = read_all(&map, "/s");
    assert_eq!(s.len(), (1 << 20) + 3);
    assert!(s[..1 << 20].iter().all(|&b| b == 0));
    assert_eq!(&s[1 << 20..], b"end");
    assert_eq!(read_all(&map, "/t"), b"012\0\0\0");
    let (header, _) = python_read(&path);
    let zmap = &header.metadata["zmap"];
    let generation = zmap.get("generation").and_then(Json::as_u64).unwrap();
    assert_eq!(
        *zmap,
        Json::from(&json!({"generation": generation, "revision": 1}))
    );
}

/// The header's length field at offset 0, prefix included.
fn header_len_at_zero(path: &std::path::Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    8 + u64::from(u32::from_le_bytes(bytes[4..8].try_into().unwrap()))
}

#[test]
fn header_never_shrinks_under_a_reader_across_writer_sessions() {
    // A reader's snapshot object lies right after a small header. One writer
    // session grows the header over it (moving the object); a later session
    // removes keys again. Had the header at 0 shrunk back to the length the
    // reader saw, the reader could not tell that its object was overwritten
    // (found by the gnz_ops fuzzer).
    let (_dir, path) = temp_gnz("sessions");
    let map = create(&path);
    map.write(&key("/a"), 0, &[7u8; 100]).unwrap();
    map.close(false).unwrap();
    let reader = open_ro(&path).unwrap();
    let at_open = header_len_at_zero(&path);

    let long = "x".repeat(200);
    let map = open_rw(&path).unwrap();
    for i in 0..40 {
        map.write(&key(&format!("/k{i}/{long}")), 0, b"1").unwrap();
    }
    map.close(false).unwrap();
    let grown = header_len_at_zero(&path);
    assert!(grown > at_open + 4096, "{grown} {at_open}");

    let map = open_rw(&path).unwrap();
    for i in 0..40 {
        map.remove(&key(&format!("/k{i}/{long}"))).unwrap();
    }
    map.close(false).unwrap();
    assert!(header_len_at_zero(&path) >= grown, "shrank under a reader");
    let mut buf = [0u8; 100];
    match reader.read(&key("/a"), 0, &mut buf) {
        Ok(()) => assert_eq!(buf, [7u8; 100]),
        Err(e) => assert_eq!(code::<()>(Err(e)), NC_EACCESS),
    }
    reader.close(false).unwrap();

    // Without readers the header gets short again.
    let map = open_rw(&path).unwrap();
    map.write(&key("/b"), 0, b"2").unwrap();
    map.close(false).unwrap();
    assert!(header_len_at_zero(&path) < grown);
    let map = open_ro(&path).unwrap();
    assert_eq!(read_all(&map, "/a"), [7u8; 100]);
    map.close(false).unwrap();
}
