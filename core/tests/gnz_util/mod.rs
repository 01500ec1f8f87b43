//! Helpers shared by the GNZ integration tests (`tests/gnz_*.rs`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map as JsonMap, Value};

use zmap_core::map::{Map, NC_WRITE};
use zmap_core::store::gnz::format::{Array, Header};
pub use zmap_core::store::gnz::json::Json;
use zmap_core::store::gnz::recovery;
#[allow(unused_imports)] // not every test file uses every helper
pub use zmap_core::testing::{code, key, read_all};
use zmap_core::{Impl, Result};

pub const ALIGNMENT: u64 = 4096;

pub fn loc(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

pub fn create(path: &Path) -> Map {
    Map::create(Impl::Gnz, &loc(path), 0, 0).unwrap()
}

pub fn open_ro(path: &Path) -> Result<Map> {
    Map::open(Impl::Gnz, &loc(path), 0, 0)
}

pub fn open_rw(path: &Path) -> Result<Map> {
    Map::open(Impl::Gnz, &loc(path), NC_WRITE, 0)
}

/// Every object of a map: key -> content.
pub fn contents(map: &Map) -> Vec<(String, Vec<u8>)> {
    fn walk(map: &Map, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        for name in map.search(&key(prefix)).unwrap() {
            let full = if prefix == "/" {
                format!("/{name}")
            } else {
                format!("{prefix}/{name}")
            };
            if map.exists(&key(&full)).is_ok() {
                out.push((full.clone(), read_all(map, &full)));
            }
            walk(map, &full, out);
        }
    }
    let mut out = Vec::new();
    walk(map, "/", &mut out);
    out.sort();
    out
}

/// A backend fact from `Map::stats`.
pub fn stat(map: &Map, name: &str) -> u64 {
    map.stats()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .1
        .parse()
        .unwrap()
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// What the original Python reader sees: the header at offset 0 only (no
/// recovery), and each array's bytes at its offset.
pub fn python_read(path: &Path) -> (Header, Vec<(String, Vec<u8>)>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"GNZ1", "magic");
    let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let header = Header::parse(&bytes[8..8 + len], bytes.len() as u64).unwrap();
    let arrays = header
        .arrays
        .iter()
        .map(|a| {
            let start = a.offset as usize;
            (
                a.name.clone(),
                bytes[start..start + a.nbytes as usize].to_vec(),
            )
        })
        .collect();
    (header, arrays)
}

/// One array for [`python_write`].
pub struct PyArray {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl PyArray {
    pub fn new(name: &str, dtype: &str, shape: &[u64], data: Vec<u8>) -> PyArray {
        PyArray {
            name: name.into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
            data,
        }
    }
}

/// Writes a file exactly as the original `GnzWriter.write()` lays it out:
/// arrays at 4096-aligned offsets from 4096 (shifted by whole pages when the
/// header needs more than 4088 bytes), zero padding, the file cut at the
/// last aligned boundary.
pub fn python_write(path: &Path, arrays: &[PyArray], metadata: JsonMap<String, Value>) {
    let mut current = ALIGNMENT;
    let mut infos = Vec::new();
    for a in arrays {
        let nbytes = a.data.len() as u64;
        infos.push(Array {
            name: a.name.clone(),
            offset: current,
            shape: a.shape.clone(),
            dtype: a.dtype.clone(),
            order: "C".into(),
            nbytes,
        });
        let next = current + nbytes;
        current = next + (ALIGNMENT - next % ALIGNMENT) % ALIGNMENT;
    }
    let mut header = Header {
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v)))
            .collect(),
        extra: Default::default(),
        arrays: infos,
    };
    let mut json = header.to_json().unwrap();
    let max = ALIGNMENT - 8;
    let (data_start, total) = if json.len() as u64 > max {
        let pages = (json.len() as u64 + 8).div_ceil(ALIGNMENT);
        let base = pages * ALIGNMENT;
        let shift = base - ALIGNMENT;
        for a in &mut header.arrays {
            a.offset += shift;
        }
        json = header.to_json().unwrap();
        (base, current + shift)
    } else {
        (ALIGNMENT, current)
    };
    let mut file = Vec::new();
    file.extend_from_slice(b"GNZ1");
    file.extend_from_slice(&(json.len() as u32).to_le_bytes());
    file.extend_from_slice(&json);
    assert!(file.len() as u64 <= data_start);
    file.resize(total.max(data_start) as usize, 0);
    for (a, info) in arrays.iter().zip(&header.arrays) {
        let at = info.offset as usize;
        file[at..at + a.data.len()].copy_from_slice(&a.data);
    }
    std::fs::write(path, file).unwrap();
}

/// A fresh temporary directory and a `.gnz` path inside it.
pub fn temp_gnz(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.gnz"));
    (dir, path)
}

/// Loads a file as libzmap does (with recovery).
pub fn load(path: &Path) -> recovery::Loaded {
    recovery::parse_file(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs `child` (an ignored test of the calling test binary) in a new
/// process, with the GNZ file's path in `ZMAP_GNZ_TEST_PATH`.
#[allow(dead_code)] // not every test file spawns children
pub fn spawn_child(child: &str, path: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        child,
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd.env("ZMAP_GNZ_TEST_PATH", path);
    cmd.stdout(std::process::Stdio::null());
    cmd
}

/// Waits (60 s at most) until a child process creates `path`.
#[allow(dead_code)] // not every test file spawns children
pub fn wait_for(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
