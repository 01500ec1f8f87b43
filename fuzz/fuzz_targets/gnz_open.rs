//! Fuzz target: arbitrary bytes as a GNZ file (fuzz/README.md).
//!
//! The input is turned into a file (see `build_file`), then:
//! 1. `recovery::parse_file` (header at 0, commit record at the tail, recovery);
//! 2. a read-only open agrees with it (both accept or both refuse; a refusal
//!    is `NC_ENOTNC`/`NC_EINVAL`), and every object reads back exactly the
//!    bytes its array covers in the file;
//! 3. a writable open of an accepted file (unless its names make it
//!    read-only) takes a few changes, commits, compacts and closes; after
//!    each commit the header at offset 0 alone (what the original Python
//!    reader sees) names exactly the expected objects with the expected
//!    bytes, and a read-only reopen agrees.
//!
//! Any panic (a failed check or a panic in the library) is a crash.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use zmap_core::codes::{NC_EEMPTY, NC_EINVAL, NC_ENOTNC, NC_EPERM};
use zmap_core::map::{Map, NC_WRITE};
use zmap_core::store::gnz::{format, recovery};
use zmap_core::{Impl, Key};

const PAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let file = build_file(data);
    check(&file);
});

/// Reads a little-endian u16 from the front of `rest`, advancing it.
fn take_u16(rest: &mut &[u8]) -> usize {
    if rest.len() < 2 {
        let v = rest.first().copied().unwrap_or(0) as usize;
        *rest = &[];
        return v;
    }
    let v = u16::from_le_bytes([rest[0], rest[1]]) as usize;
    *rest = &rest[2..];
    v
}

/// The file an input stands for. Byte 0 selects helpers that spare the
/// fuzzer work it cannot do well (lengths, checksums, page-sized padding):
/// - bit 0: the body starts with `GNZ1`, the right length, and the next
///   `u16` bytes as the header JSON;
/// - bit 1: a valid commit record (correct CRC) is appended, whose JSON is
///   the last `u16` bytes of the input and whose generation is the one that
///   JSON names (`metadata.zmap.generation`, else 1);
/// - bit 2: the body is zero-extended to a whole number of pages.
///
/// Byte 0 = 0: the rest is the file as it is.
fn build_file(data: &[u8]) -> Vec<u8> {
    let Some((&mode, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let header_len = if mode & 1 != 0 {
        take_u16(&mut rest)
    } else {
        0
    };
    let record_len = if mode & 2 != 0 {
        take_u16(&mut rest)
    } else {
        0
    };
    let mut body = Vec::with_capacity(rest.len() + PAGE);
    if mode & 1 != 0 {
        let n = header_len.min(rest.len());
        body.extend_from_slice(b"GNZ1");
        body.extend_from_slice(&(n as u32).to_le_bytes());
        body.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    let mut record_json: &[u8] = &[];
    if mode & 2 != 0 {
        let n = record_len.min(rest.len());
        record_json = &rest[rest.len() - n..];
        rest = &rest[..rest.len() - n];
    }
    body.extend_from_slice(rest);
    if mode & 4 != 0 {
        body.resize(body.len().div_ceil(PAGE) * PAGE, 0);
    }
    if mode & 2 != 0 {
        body.resize(body.len().div_ceil(8) * 8, 0);
        let generation = serde_json::from_slice::<serde_json::Value>(record_json)
            .ok()
            .and_then(|v| {
                v.pointer("/metadata/zmap/generation")
                    .and_then(|g| g.as_u64())
            })
            .unwrap_or(1);
        body.extend_from_slice(&recovery::record(record_json, generation));
    }
    body
}

fn scratch_path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("zmap-fuzz-{}.gnz", std::process::id()))
}

fn key(k: &str) -> Key<'static> {
    Key::parse(k.as_bytes()).expect("a key the library listed").into_owned()
}

/// Every object of a map: key -> content.
fn objects(map: &Map) -> BTreeMap<String, Vec<u8>> {
    fn walk(map: &Map, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        let names = map.search(&key(prefix)).expect("search");
        for name in names {
            let full = if prefix == "/" {
                format!("/{name}")
            } else {
                format!("{prefix}/{name}")
            };
            if map.exists(&key(&full)).is_ok() {
                let len = map.len(&key(&full)).expect("len of an object");
                let mut buf = vec![0u8; usize::try_from(len).expect("length fits")];
                map.read(&key(&full), 0, &mut buf)
                    .expect("read of an object");
                out.insert(full.clone(), buf);
            }
            walk(map, &full, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(map, "/", &mut out);
    out
}

/// What a reader of the format sees: each array's bytes, by key (`/` +
/// name unless it has one); several arrays may give one key.
fn arrays_by_key(header: &format::Header, file: &[u8]) -> HashMap<String, Vec<Vec<u8>>> {
    let mut out: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for a in &header.arrays {
        let k = if a.name.starts_with('/') {
            a.name.clone()
        } else {
            format!("/{}", a.name)
        };
        let start = a.offset as usize;
        let bytes = file[start..start + a.nbytes as usize].to_vec();
        out.entry(k).or_default().push(bytes);
    }
    out
}

/// After a commit: the header at 0 alone describes exactly `want`; arrays
/// whose length did not change keep their name, dtype, shape and order, and
/// the metadata (but libzmap's own `zmap` entry) and other top-level
/// members are kept.
fn check_committed(
    path: &PathBuf,
    want: &BTreeMap<String, Vec<u8>>,
    original: &format::Header,
    when: &str,
) {
    let bytes = std::fs::read(path).expect("read the file");
    let loaded = recovery::parse_file(&bytes)
        .unwrap_or_else(|e| panic!("{when}: the file is not valid GNZ: {e}"));
    assert!(
        !loaded.recovered,
        "{when}: the header at 0 is not the committed one"
    );
    let got = arrays_by_key(&loaded.header, &bytes);
    assert_eq!(got.len(), want.len(), "{when}: number of arrays");
    for (k, v) in want {
        let arrays = got
            .get(k)
            .unwrap_or_else(|| panic!("{when}: {k:?} missing from the header at 0"));
        assert_eq!(arrays.len(), 1, "{when}: {k:?} named twice");
        assert!(arrays[0] == *v, "{when}: bytes of {k:?} differ");
    }
    let by_key = |h: &format::Header| -> HashMap<String, format::Array> {
        h.arrays
            .iter()
            .map(|a| (format!("/{}", a.name.trim_start_matches('/')), a.clone()))
            .collect()
    };
    let before = by_key(original);
    for (k, a) in by_key(&loaded.header) {
        if let Some(b) = before.get(&k) {
            if b.nbytes == a.nbytes {
                assert_eq!(
                    (&a.name, &a.dtype, &a.shape, &a.order),
                    (&b.name, &b.dtype, &b.shape, &b.order),
                    "{when}: {k:?} kept its length but not its layout"
                );
            }
        }
    }
    let strip = |h: &format::Header| {
        let mut m = h.metadata.clone();
        m.remove("zmap");
        m
    };
    assert_eq!(strip(&loaded.header), strip(original), "{when}: metadata");
    assert_eq!(
        loaded.header.extra, original.extra,
        "{when}: top-level members"
    );
}

fn check(bytes: &[u8]) {
    let parsed = recovery::parse_file(bytes);
    let path = scratch_path();
    std::fs::write(&path, bytes).expect("write the scratch file");
    let loc = path.to_str().expect("UTF-8 scratch path").to_string();
    let ro = Map::open(Impl::Gnz, &loc, 0, 0);
    let (loaded, map) = match (parsed, ro) {
        (Err(e), Ok(_)) => panic!("open accepts what parse_file refuses ({e})"),
        (Ok(_), Err(e)) => panic!("parse_file accepts what open refuses ({e})"),
        (Err(_), Err(e)) => {
            assert!(
                matches!(e.code(), NC_ENOTNC | NC_EINVAL),
                "a bad file gave {} ({e})",
                e.code()
            );
            let _ = std::fs::remove_file(&path);
            return;
        }
        (Ok(loaded), Ok(map)) => (loaded, map),
    };
    // 2. Every object is an array of the file, with its bytes.
    let arrays = arrays_by_key(&loaded.header, bytes);
    let found = objects(&map);
    for (k, v) in &found {
        let candidates = arrays
            .get(k)
            .unwrap_or_else(|| panic!("object {k:?} is in no array"));
        assert!(
            candidates.contains(v),
            "object {k:?}: bytes differ from the file's"
        );
    }
    map.close(false).expect("close a read-only map");

    // 3. Writable.
    let rw = Map::open(Impl::Gnz, &loc, NC_WRITE, 0)
        .unwrap_or_else(|e| panic!("writable open of a file that opens read-only: {e}"));
    // Names that are not keys make the file read-only (mutations NC_EPERM).
    let probe = key("/zz_fuzz_probe/none");
    let read_only = match rw.remove(&probe) {
        Err(e) if e.code() == NC_EPERM => true,
        Err(e) if e.code() == NC_EEMPTY => false,
        other => panic!("remove of a missing key: {:?}", other.map_err(|e| e.code())),
    };
    let before = objects(&rw);
    if read_only {
        assert!(
            rw.write(&key("/zz"), 0, b"x").is_err(),
            "write to a read-only map"
        );
        assert_eq!(before, found, "two read-only views differ");
        rw.close(false).expect("close");
        assert!(
            std::fs::read(&path).expect("read") == bytes,
            "a read-only map changed the file"
        );
        let _ = std::fs::remove_file(&path);
        return;
    }
    // Writable: every array is an object.
    assert_eq!(before, found, "the writer sees other objects than a reader");
    assert_eq!(
        before.len(),
        loaded.header.arrays.len(),
        "a writable map skipped arrays"
    );
    let mut model = before.clone();
    let ours = !model
        .keys()
        .any(|k| k == "/zz_fuzz" || k.starts_with("/zz_fuzz/"));
    if ours {
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 1) as u8).collect();
        rw.write(&key("/zz_fuzz/big"), 0, &big)
            .expect("write a new object");
        model.insert("/zz_fuzz/big".into(), big);
        rw.define(&key("/zz_fuzz/empty")).expect("define an object");
        model.insert("/zz_fuzz/empty".into(), Vec::new());
    }
    let keys: Vec<String> = before.keys().cloned().collect();
    if let Some(first) = keys.first() {
        // Overwrite committed bytes in the middle (copy-on-write) and append.
        let v = model.get_mut(first).expect("first object");
        let at = v.len() / 2;
        let patch = [0xA5u8, 0x5A, 0xC3];
        rw.write(&key(first), at as u64, &patch).expect("overwrite");
        let end = (at + patch.len()).max(v.len());
        v.resize(end, 0);
        v[at..at + patch.len()].copy_from_slice(&patch);
    }
    if keys.len() >= 2 {
        let last = keys.last().expect("last");
        rw.remove(&key(last)).expect("remove");
        model.remove(last);
    }
    if keys.len() >= 3 {
        let mid = &keys[keys.len() / 2];
        let v = model.get_mut(mid).expect("mid object");
        let cut = v.len() / 3;
        rw.truncate(&key(mid), cut as u64).expect("truncate");
        v.truncate(cut);
    }
    rw.flush().expect("commit");
    check_committed(&path, &model, &loaded.header, "after a commit");
    assert_eq!(objects(&rw), model, "writer's view after a commit");
    rw.compact().expect("compact");
    check_committed(&path, &model, &loaded.header, "after compaction");
    rw.close(false).expect("close the writer");
    let again = Map::open(Impl::Gnz, &loc, 0, 0).expect("reopen after commits");
    assert_eq!(objects(&again), model, "reopened view");
    again.close(false).expect("close");
    let _ = std::fs::remove_file(&path);
}
