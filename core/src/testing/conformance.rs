//! One conformance suite, run against every backend (zmap-api.md Part A4 and
//! the `ut_map` / `ut_mapapi` scenarios of Part B §9), through
//! `crate::map::Map`: the same layer the C ABI drives.
//!
//! Adding a backend takes one line at the bottom of this file, e.g.
//!
//! ```text
//! backend_suite!(gnz, Impl::Gnz, fresh_path);
//! ```
//!
//! which generates one `#[test]` per scenario in a module `gnz`. The third
//! argument is a fixture: a fn returning a `Fixture`, i.e. the location of a
//! dataset that does not exist yet, plus an optional guard dropped after the
//! test. `fresh_path` (a path inside a new temporary directory) suits FILE
//! and GNZ; `memory_name` gives a unique in-memory name. A backend needing
//! something else (S3: a unique prefix in a test bucket, cleaned up by the
//! guard) writes its own fixture fn next to them. New scenarios are plain
//! `fn(&Target)` functions, listed once in `backend_suite!`.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{code, key, read_all};
use crate::codes::*;
use crate::error::Result;
use crate::key::Key;
use crate::map::{Map, NC_NOCLOBBER, NC_WRITE};
use crate::store::Impl;

/// A dataset location for one test, and what must live as long as the test.
pub(crate) struct Fixture {
    pub(crate) location: String,
    _guard: Option<Box<dyn Any>>,
}

impl Fixture {
    pub(crate) fn new(location: String, guard: Option<Box<dyn Any>>) -> Fixture {
        Fixture {
            location,
            _guard: guard,
        }
    }
}

/// A not-yet-existing path in a fresh temporary directory.
pub(crate) fn fresh_path() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("dataset");
    Fixture::new(
        path.to_str().expect("UTF-8 temp path").to_string(),
        Some(Box::new(dir)),
    )
}

/// Like `fresh_path`, with the FILE backend's `openat` fallback forced for
/// every map this test thread opens.
pub(crate) fn fresh_path_fallback() -> Fixture {
    crate::store::file::FORCE_FALLBACK.with(|f| f.set(true));
    fresh_path()
}

/// A not-yet-existing `dataset.zip` in a fresh temporary directory (ZIP:
/// keys at the archive root).
pub(crate) fn fresh_zip() -> Fixture {
    let mut fixture = fresh_path();
    fixture.location.push_str(".zip");
    fixture
}

/// Like `fresh_zip`, as netCDF names it (`file://...#mode=nczarr,zip`):
/// netCDF's layout, the dataset in the archive's directory `dataset/`.
pub(crate) fn fresh_zip_netcdf() -> Fixture {
    let mut fixture = fresh_zip();
    fixture.location = format!("file://{}#mode=nczarr,zip", fixture.location);
    fixture
}

/// A dataset name no other test uses (the in-memory table is process-wide).
pub(crate) fn memory_name() -> Fixture {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Fixture::new(
        format!("mem://conformance-{}-{n}", std::process::id()),
        None,
    )
}

/// The backend and dataset a scenario runs on.
pub(crate) struct Target {
    pub(crate) imp: Impl,
    pub(crate) location: String,
}

impl Target {
    fn create(&self) -> Map {
        self.create_mode(0)
    }
    fn create_mode(&self, mode: i32) -> Map {
        Map::create(self.imp, &self.location, mode, 0).expect("create")
    }
    fn open(&self, mode: i32) -> Map {
        Map::open(self.imp, &self.location, mode, 0).expect("open")
    }
    fn try_open(&self, mode: i32) -> Result<Map> {
        Map::open(self.imp, &self.location, mode, 0)
    }
}

/// Generates one test per scenario for a backend (see the top of the file).
macro_rules! backend_suite {
    ($name:ident, $imp:expr, $fixture:path) => {
        mod $name {
            use super::*;
            backend_suite!(@tests $imp, $fixture;
                create_define_close_open,
                open_missing_is_empty,
                delete_then_open_is_empty,
                close_delete_on_read_only_map,
                write_creates_implicitly,
                holes_are_zero_filled,
                writes_extend_never_shrink,
                define_is_idempotent_and_never_truncates,
                zero_count_io,
                read_past_end_is_edge_and_buffer_untouched,
                overflow_is_invalid,
                failed_write_leaves_nothing,
                root_is_not_an_object,
                search_lists_one_sorted_level,
                prefix_conflicts_are_invalid,
                read_only_map_rejects_every_mutation,
                noclobber_create_keeps_content,
                default_create_empties,
                remove_semantics,
                truncate_semantics,
                zero_byte_objects,
                keys_with_dots,
                reopen_sees_flushed_content,
                threads_share_a_map,
                ut_map,
                ut_mapapi,
            );
        }
    };
    (@tests $imp:expr, $fixture:path; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            #[allow(clippy::print_stderr)] // a test's own output, not the library's
            fn $scenario() {
                let fixture = $fixture();
                if fixture.location.is_empty() { eprintln!("skipped: no dataset for this backend here"); return; }
                super::$scenario(&Target {
                    imp: $imp,
                    location: fixture.location.clone(),
                });
            }
        )*
    };
}

// ---- helpers ---------------------------------------------------------------

fn names(map: &Map, prefix: &str) -> Vec<String> {
    map.search(&key(prefix)).expect("search")
}

/// Every key below `prefix`, depth first as ut_map's search step walks it,
/// as full keys (`/a/b`), sorted.
fn all_keys(map: &Map) -> Vec<String> {
    fn walk(map: &Map, prefix: &str, out: &mut Vec<String>) {
        out.push(prefix.to_string());
        for name in map.search(&key(prefix)).expect("search") {
            let full = if prefix == "/" {
                format!("/{name}")
            } else {
                format!("{prefix}/{name}")
            };
            walk(map, &full, out);
        }
    }
    let mut out = Vec::new();
    walk(map, "/", &mut out);
    out.sort();
    out
}

/// Everything in the dataset: each object's key and content.
fn snapshot(map: &Map) -> Vec<(String, Option<Vec<u8>>)> {
    all_keys(map)
        .into_iter()
        .map(|k| {
            let content = map.len(&key(&k)).ok().map(|_| read_all(map, &k));
            (k, content)
        })
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// netCDF's ut_map / ut_mapapi test data.
pub(crate) const METADATA1: &[u8] =
    b"{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4]}";
pub(crate) const METADATA2: &[u8] =
    b"{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4],\n\"extra\": 137}";
const METAARRAY1: &[u8] = b"{\n\"shape\": [1,2,3],\n\"dtype\": \"<1\"}";

/// 25 native ints 0..24 (little-endian, as the 2020 refs expect).
fn ut_data() -> Vec<u8> {
    (0i32..25).flat_map(|i| i.to_le_bytes()).collect()
}

// ---- scenarios -------------------------------------------------------------

fn create_define_close_open(t: &Target) {
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(code(map.exists(&key("/.nczarr"))), NC_NOERR);
    assert_eq!(map.len(&key("/.nczarr")).unwrap(), 0);
    assert_eq!(code(map.exists(&key("/other"))), NC_EEMPTY);
    assert!(!map.is_writable());
    map.close(false).unwrap();
    let map = t.open(NC_WRITE);
    assert!(map.is_writable());
    map.close(false).unwrap();
}

fn open_missing_is_empty(t: &Target) {
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
    assert_eq!(code(t.try_open(NC_WRITE)), NC_EEMPTY);
    // A failed open creates nothing.
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
}

fn delete_then_open_is_empty(t: &Target) {
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.write(&key("/g/deep/obj"), 0, b"content").unwrap();
    map.close(false).unwrap();
    let map = t.open(NC_WRITE);
    map.close(true).unwrap();
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
    // A created-then-deleted dataset is gone too; create works again after.
    t.create().close(true).unwrap();
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
    let map = t.create();
    assert!(names(&map, "/").is_empty());
    map.close(false).unwrap();
}

fn close_delete_on_read_only_map(t: &Target) {
    let map = t.create();
    map.write(&key("/.nczarr"), 0, b"x").unwrap();
    map.close(false).unwrap();
    // netCDF's suite deletes through a map opened with mode 0.
    t.open(0).close(true).unwrap();
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
}

fn write_creates_implicitly(t: &Target) {
    let map = t.create();
    map.write(&key("/a/b/c"), 0, b"xyz").unwrap();
    assert_eq!(code(map.exists(&key("/a/b/c"))), NC_NOERR);
    assert_eq!(read_all(&map, "/a/b/c"), b"xyz");
    for intermediate in ["/a", "/a/b"] {
        assert_eq!(code(map.exists(&key(intermediate))), NC_EEMPTY);
        assert_eq!(code(map.len(&key(intermediate))), NC_EEMPTY);
        let mut buf = [9u8; 1];
        assert_eq!(code(map.read(&key(intermediate), 0, &mut buf)), NC_EEMPTY);
        assert_eq!(buf, [9]);
    }
    // Relative spelling and a trailing '/' name the same object.
    assert_eq!(map.len(&key("a/b/c/")).unwrap(), 3);
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(read_all(&map, "/a/b/c"), b"xyz");
    map.close(false).unwrap();
}

fn holes_are_zero_filled(t: &Target) {
    let map = t.create();
    map.write(&key("/h"), 10, b"abcde").unwrap();
    assert_eq!(map.len(&key("/h")).unwrap(), 15);
    map.write(&key("/h"), 30, b"z").unwrap();
    let mut expected = vec![0u8; 31];
    expected[10..15].copy_from_slice(b"abcde");
    expected[30] = b'z';
    assert_eq!(read_all(&map, "/h"), expected);
    // A large gap: still zeros, and the end lands exactly.
    map.write(&key("/big"), 1 << 20, b"end").unwrap();
    assert_eq!(map.len(&key("/big")).unwrap(), (1 << 20) + 3);
    let mut middle = [0xFFu8; 64];
    map.read(&key("/big"), 1 << 19, &mut middle).unwrap();
    assert_eq!(middle, [0u8; 64]);
    map.close(false).unwrap();
}

fn writes_extend_never_shrink(t: &Target) {
    let map = t.create();
    let long: Vec<u8> = (0..100u8).collect();
    map.write(&key("/o"), 0, &long).unwrap();
    map.write(&key("/o"), 0, b"short").unwrap();
    let mut expected = long.clone();
    expected[..5].copy_from_slice(b"short");
    assert_eq!(read_all(&map, "/o"), expected);
    // Overlapping the end extends.
    map.write(&key("/o"), 98, b"XYZW").unwrap();
    expected.truncate(98);
    expected.extend_from_slice(b"XYZW");
    assert_eq!(read_all(&map, "/o"), expected);
    // Appending at exactly the end.
    map.write(&key("/o"), 102, b"!").unwrap();
    assert_eq!(map.len(&key("/o")).unwrap(), 103);
    map.close(false).unwrap();
}

fn define_is_idempotent_and_never_truncates(t: &Target) {
    let map = t.create();
    map.define(&key("/d/obj")).unwrap();
    map.define(&key("/d/obj")).unwrap();
    assert_eq!(map.len(&key("/d/obj")).unwrap(), 0);
    map.write(&key("/d/obj"), 0, b"payload").unwrap();
    map.define(&key("/d/obj")).unwrap();
    assert_eq!(read_all(&map, "/d/obj"), b"payload");
    map.close(false).unwrap();
}

fn zero_count_io(t: &Target) {
    let map = t.create();
    // count 0 changes nothing: no object appears, none grows.
    map.write(&key("/none"), 5, &[]).unwrap();
    assert_eq!(code(map.exists(&key("/none"))), NC_EEMPTY);
    assert!(names(&map, "/").is_empty());
    map.write(&key("/o"), 0, b"abc").unwrap();
    map.write(&key("/o"), 100, &[]).unwrap();
    assert_eq!(map.len(&key("/o")).unwrap(), 3);
    // A zero-length read succeeds anywhere in or past an object...
    map.read(&key("/o"), 0, &mut []).unwrap();
    map.read(&key("/o"), 3, &mut []).unwrap();
    map.read(&key("/o"), 1000, &mut []).unwrap();
    // ...but not on what is not an object.
    assert_eq!(code(map.read(&key("/none"), 0, &mut [])), NC_EEMPTY);
    map.close(false).unwrap();
}

fn read_past_end_is_edge_and_buffer_untouched(t: &Target) {
    let map = t.create();
    map.write(&key("/ten"), 0, b"0123456789").unwrap();
    for (start, len) in [(5u64, 10usize), (10, 1), (0, 11), (100, 1), (9, 2)] {
        let mut buf = vec![0xAAu8; len];
        assert_eq!(
            code(map.read(&key("/ten"), start, &mut buf)),
            NC_EEDGE,
            "read({start}, {len})"
        );
        assert!(buf.iter().all(|&b| b == 0xAA), "read({start}, {len}) wrote");
    }
    let mut buf = [0u8; 4];
    map.read(&key("/ten"), 6, &mut buf).unwrap();
    assert_eq!(&buf, b"6789");
    let mut missing = [0x55u8; 3];
    assert_eq!(code(map.read(&key("/nope"), 0, &mut missing)), NC_EEMPTY);
    assert_eq!(missing, [0x55; 3]);
    map.close(false).unwrap();
}

fn overflow_is_invalid(t: &Target) {
    let map = t.create();
    map.write(&key("/o"), 0, b"abc").unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(code(map.read(&key("/o"), u64::MAX, &mut buf)), NC_EINVAL);
    assert_eq!(
        code(map.read(&key("/o"), u64::MAX - 1, &mut buf)),
        NC_EINVAL
    );
    assert_eq!(code(map.write(&key("/o"), u64::MAX, b"xy")), NC_EINVAL);
    assert_eq!(
        code(map.write(&key("/new"), u64::MAX - 1, b"xy")),
        NC_EINVAL
    );
    assert_eq!(code(map.truncate(&key("/o"), u64::MAX)), NC_EINVAL);
    assert_eq!(code(map.exists(&key("/new"))), NC_EEMPTY);
    assert_eq!(read_all(&map, "/o"), b"abc");
    map.close(false).unwrap();
}

fn failed_write_leaves_nothing(t: &Target) {
    let map = t.create();
    map.write(&key("/h/obj"), 0, b"0123456789").unwrap();
    // So far out that most stores refuse it (ext4: EFBIG, memory: ENOMEM);
    // where one accepts it, the object must then really have that length.
    let start = 1u64 << 62;
    match map.write(&key("/h/new/deep"), start, b"xy") {
        Ok(()) => assert_eq!(map.len(&key("/h/new/deep")).unwrap(), start + 2),
        Err(_) => {
            assert_eq!(code(map.exists(&key("/h/new/deep"))), NC_EEMPTY);
            assert_eq!(names(&map, "/h"), strings(&["obj"]));
        }
    }
    // A failed write to an existing object keeps it.
    if map.write(&key("/h/obj"), start, b"xy").is_err() {
        assert_eq!(read_all(&map, "/h/obj"), b"0123456789");
    }
    map.close(false).unwrap();
}

fn root_is_not_an_object(t: &Target) {
    let map = t.create();
    map.write(&key("/x"), 0, b"1").unwrap();
    let root = Key::root();
    assert_eq!(code(map.exists(&root)), NC_EEMPTY);
    assert_eq!(code(map.len(&root)), NC_EEMPTY);
    assert_eq!(code(map.read(&root, 0, &mut [0u8; 1])), NC_EEMPTY);
    assert_eq!(code(map.define(&root)), NC_EINVAL);
    assert_eq!(code(map.write(&root, 0, b"1")), NC_EINVAL);
    assert_eq!(code(map.remove(&root)), NC_EEMPTY);
    assert_eq!(names(&map, "/"), strings(&["x"]));
    map.close(false).unwrap();
}

fn search_lists_one_sorted_level(t: &Target) {
    let map = t.create();
    for k in [
        "/zeta",
        "/.nczarr",
        "/meta1/.zarray",
        "/data1/0",
        "/data1/1",
        "/b/c/d/e",
        "/Z",
    ] {
        map.write(&key(k), 0, k.as_bytes()).unwrap();
    }
    assert_eq!(
        names(&map, "/"),
        strings(&[".nczarr", "Z", "b", "data1", "meta1", "zeta"])
    );
    assert_eq!(names(&map, "/data1"), strings(&["0", "1"]));
    assert_eq!(names(&map, "data1/"), strings(&["0", "1"]));
    assert_eq!(names(&map, "/b"), strings(&["c"]));
    assert_eq!(names(&map, "/b/c"), strings(&["d"]));
    // Leaves, missing prefixes and keys below a leaf list nothing.
    for empty in [
        "/zeta",
        "/meta1/.zarray",
        "/missing",
        "/missing/deeper",
        "/zeta/below",
    ] {
        assert!(names(&map, empty).is_empty(), "{empty}");
    }
    // A prefix that is a byte prefix of a sibling does not leak into it.
    map.write(&key("/data10/x"), 0, b"x").unwrap();
    assert_eq!(names(&map, "/data1"), strings(&["0", "1"]));
    map.close(false).unwrap();
}

fn prefix_conflicts_are_invalid(t: &Target) {
    let map = t.create();
    map.write(&key("/a/b"), 0, b"leaf").unwrap();
    let before = snapshot(&map);
    assert_eq!(code(map.define(&key("/a"))), NC_EINVAL);
    assert_eq!(code(map.write(&key("/a"), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.define(&key("/a/b/c"))), NC_EINVAL);
    assert_eq!(code(map.write(&key("/a/b/c"), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.write(&key("/a/b/c/d"), 3, b"x")), NC_EINVAL);
    assert_eq!(snapshot(&map), before);
    assert!(names(&map, "/a/b").is_empty());
    map.close(false).unwrap();
}

fn read_only_map_rejects_every_mutation(t: &Target) {
    let map = t.create();
    map.write(&key("/.nczarr"), 0, b"{}").unwrap();
    map.write(&key("/g/obj"), 0, b"content").unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    let before = snapshot(&map);
    for k in ["/g/obj", "/new", "/g/new/deeper"] {
        assert_eq!(code(map.define(&key(k))), NC_EPERM, "define {k}");
        assert_eq!(code(map.write(&key(k), 0, b"x")), NC_EPERM, "write {k}");
        assert_eq!(
            code(map.write(&key(k), 0, &[])),
            NC_EPERM,
            "empty write {k}"
        );
        assert_eq!(code(map.remove(&key(k))), NC_EPERM, "remove {k}");
        assert_eq!(code(map.truncate(&key(k), 0)), NC_EPERM, "truncate {k}");
    }
    map.flush().unwrap();
    assert_eq!(snapshot(&map), before);
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(snapshot(&map), before);
    map.close(false).unwrap();
}

fn noclobber_create_keeps_content(t: &Target) {
    let map = t.create();
    map.write(&key("/.nczarr"), 0, b"{}").unwrap();
    map.write(&key("/g/obj"), 0, b"kept").unwrap();
    map.close(false).unwrap();
    let map = t.create_mode(NC_NOCLOBBER);
    assert_eq!(read_all(&map, "/g/obj"), b"kept");
    assert_eq!(read_all(&map, "/.nczarr"), b"{}");
    map.write(&key("/g/more"), 0, b"+").unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(names(&map, "/g"), strings(&["more", "obj"]));
    map.close(false).unwrap();
}

fn default_create_empties(t: &Target) {
    let map = t.create();
    map.write(&key("/.nczarr"), 0, b"{}").unwrap();
    map.write(&key("/g/obj"), 0, b"gone").unwrap();
    map.close(false).unwrap();
    let map = t.create();
    assert!(names(&map, "/").is_empty());
    assert_eq!(code(map.exists(&key("/g/obj"))), NC_EEMPTY);
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(all_keys(&map), strings(&["/", "/.nczarr"]));
    assert_eq!(map.len(&key("/.nczarr")).unwrap(), 0);
    map.close(false).unwrap();
}

fn remove_semantics(t: &Target) {
    let map = t.create();
    map.write(&key("/a/b/obj"), 0, b"1").unwrap();
    map.write(&key("/a/sibling"), 0, b"2").unwrap();
    map.write(&key("/top"), 0, b"3").unwrap();
    assert_eq!(code(map.remove(&key("/a"))), NC_EEMPTY);
    assert_eq!(code(map.remove(&key("/a/b"))), NC_EEMPTY);
    assert_eq!(code(map.remove(&key("/missing"))), NC_EEMPTY);
    assert_eq!(code(map.remove(&key("/top/below"))), NC_EEMPTY);
    map.remove(&key("/a/b/obj")).unwrap();
    assert_eq!(code(map.exists(&key("/a/b/obj"))), NC_EEMPTY);
    assert_eq!(code(map.remove(&key("/a/b/obj"))), NC_EEMPTY);
    // The intermediate key with nothing left below it is gone too.
    assert_eq!(names(&map, "/a"), strings(&["sibling"]));
    assert_eq!(read_all(&map, "/a/sibling"), b"2");
    map.remove(&key("/a/sibling")).unwrap();
    assert_eq!(names(&map, "/"), strings(&["top"]));
    // A removed key can become an intermediate key, and the reverse.
    map.write(&key("/top"), 0, b"3").unwrap();
    map.remove(&key("/top")).unwrap();
    map.write(&key("/top/child"), 0, b"4").unwrap();
    map.remove(&key("/top/child")).unwrap();
    map.write(&key("/top"), 0, b"5").unwrap();
    assert_eq!(read_all(&map, "/top"), b"5");
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(all_keys(&map), strings(&["/", "/top"]));
    map.close(false).unwrap();
}

fn truncate_semantics(t: &Target) {
    let map = t.create();
    map.write(&key("/o"), 0, b"0123456789").unwrap();
    map.truncate(&key("/o"), 4).unwrap();
    assert_eq!(read_all(&map, "/o"), b"0123");
    map.truncate(&key("/o"), 8).unwrap();
    assert_eq!(read_all(&map, "/o"), b"0123\0\0\0\0");
    map.truncate(&key("/o"), 0).unwrap();
    assert_eq!(map.len(&key("/o")).unwrap(), 0);
    map.write(&key("/d/leaf"), 0, b"x").unwrap();
    assert_eq!(code(map.truncate(&key("/missing"), 3)), NC_EEMPTY);
    assert_eq!(code(map.truncate(&key("/d"), 3)), NC_EEMPTY);
    assert_eq!(code(map.exists(&key("/missing"))), NC_EEMPTY);
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(map.len(&key("/o")).unwrap(), 0);
    map.close(false).unwrap();
}

fn zero_byte_objects(t: &Target) {
    let map = t.create();
    map.define(&key("/empty")).unwrap();
    map.write(&key("/g/alsoempty"), 0, b"abc").unwrap();
    map.truncate(&key("/g/alsoempty"), 0).unwrap();
    for k in ["/empty", "/g/alsoempty"] {
        assert_eq!(code(map.exists(&key(k))), NC_NOERR);
        assert_eq!(map.len(&key(k)).unwrap(), 0);
        map.read(&key(k), 0, &mut []).unwrap();
        let mut one = [7u8];
        assert_eq!(code(map.read(&key(k), 0, &mut one)), NC_EEDGE);
        assert_eq!(one, [7]);
    }
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(
        all_keys(&map),
        strings(&["/", "/empty", "/g", "/g/alsoempty"])
    );
    map.close(false).unwrap();
}

fn keys_with_dots(t: &Target) {
    let map = t.create();
    let keys = [
        "/.zgroup",
        "/a.b/c..d",
        "/..x/.y.",
        "/.hidden/.zarray",
        "/...",
        "/v/0.0.1",
    ];
    for k in keys {
        map.write(&key(k), 0, k.as_bytes()).unwrap();
    }
    for k in keys {
        assert_eq!(read_all(&map, k), k.as_bytes());
    }
    assert_eq!(
        names(&map, "/"),
        strings(&["...", "..x", ".hidden", ".zgroup", "a.b", "v"])
    );
    assert_eq!(names(&map, "/..x"), strings(&[".y."]));
    map.close(false).unwrap();
}

fn reopen_sees_flushed_content(t: &Target) {
    let map = t.create();
    map.write(&key("/a"), 0, b"first").unwrap();
    map.flush().unwrap();
    map.write(&key("/a"), 5, b"+second").unwrap();
    map.flush().unwrap();
    map.flush().unwrap();
    map.close(false).unwrap();
    let map = t.open(NC_WRITE);
    assert_eq!(read_all(&map, "/a"), b"first+second");
    map.close(false).unwrap();
}

fn threads_share_a_map(t: &Target) {
    const THREADS: usize = 4;
    const ROUNDS: usize = 25;
    const SLICE: usize = 1000;
    let map = t.create();
    std::thread::scope(|scope| {
        for i in 0..THREADS {
            let map = &map;
            scope.spawn(move || {
                let fill = [i as u8 + 1; SLICE];
                for j in 0..ROUNDS {
                    // Own objects, written then read back.
                    let own = format!("/t{i}/obj{j}");
                    let content = format!("{i}:{j}").repeat(j + 1);
                    map.write(&key(&own), 0, content.as_bytes()).unwrap();
                    assert_eq!(read_all(map, &own), content.as_bytes());
                    // One shared object, disjoint ranges.
                    let start = ((j * THREADS + i) * SLICE) as u64;
                    map.write(&key("/shared"), start, &fill).unwrap();
                    let mut back = [0u8; SLICE];
                    map.read(&key("/shared"), start, &mut back).unwrap();
                    assert_eq!(back, fill);
                    // Shared intermediate keys, created and pruned by turns.
                    let churn = format!("/churn/sub/t{i}_{j}");
                    map.write(&key(&churn), 0, b"c").unwrap();
                    if j + 1 < ROUNDS {
                        map.remove(&key(&churn)).unwrap();
                    }
                    // Idempotent define racing with itself.
                    map.define(&key("/common/.zarray")).unwrap();
                    assert!(!names(map, "/").is_empty());
                }
            });
        }
    });
    map.flush().unwrap();
    assert_eq!(
        map.len(&key("/shared")).unwrap(),
        (THREADS * ROUNDS * SLICE) as u64
    );
    let shared = read_all(&map, "/shared");
    for (n, chunk) in shared.chunks(SLICE).enumerate() {
        let owner = n % THREADS;
        assert!(chunk.iter().all(|&b| b == owner as u8 + 1), "slice {n}");
    }
    let mut expected: Vec<String> = (0..THREADS)
        .map(|i| format!("t{i}_{}", ROUNDS - 1))
        .collect();
    expected.sort();
    assert_eq!(names(&map, "/churn/sub"), expected);
    for i in 0..THREADS {
        assert_eq!(names(&map, &format!("/t{i}")).len(), ROUNDS);
    }
    assert_eq!(map.len(&key("/common/.zarray")).unwrap(), 0);
    map.close(false).unwrap();
}

/// The `ut_map` steps of netCDF 2020 (zmap-api.md B §9.2), every call
/// checked; leaves the dataset in its final state. Public to the crate so a
/// backend can also check what it left on disk.
pub(crate) fn ut_map_steps(imp: Impl, url: &str) {
    let t = Target {
        imp,
        location: url.to_string(),
    };
    assert_eq!(METADATA1.len(), 50);
    assert_eq!(METADATA2.len(), 64);
    // create
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    // delete
    t.open(0).close(true).unwrap();
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
    // create (again, as the script does), then writemeta, which clobbers
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.define(&key("/meta1/.zarray")).unwrap();
    map.write(&key("/meta1/.zarray"), 0, METADATA1).unwrap();
    map.close(false).unwrap();
    // writemeta2
    let map = t.open(NC_WRITE);
    map.define(&key("/meta2/.nczvar")).unwrap();
    map.write(&key("/meta2/.nczvar"), 0, METADATA2).unwrap();
    map.close(false).unwrap();
    // readmeta
    let map = t.open(0);
    assert_eq!(map.len(&key("/meta1/.zarray")).unwrap(), 50);
    assert_eq!(read_all(&map, "/meta1/.zarray"), METADATA1);
    map.close(false).unwrap();
    // writedata: three slices, each at the current end
    let data = ut_data();
    let map = t.open(NC_WRITE);
    map.define(&key("/data1/0")).unwrap();
    for (start, end) in [(0, 34), (34, 68), (68, 100)] {
        map.write(&key("/data1/0"), start as u64, &data[start..end])
            .unwrap();
    }
    map.close(false).unwrap();
    // readdata
    let map = t.open(0);
    assert_eq!(code(map.exists(&key("/data1/0"))), NC_NOERR);
    let mut back = Vec::new();
    for (start, end) in [(0usize, 36usize), (36, 72), (72, 100)] {
        let mut buf = vec![0u8; end - start];
        map.read(&key("/data1/0"), start as u64, &mut buf).unwrap();
        back.extend_from_slice(&buf);
    }
    assert_eq!(back, data);
    // search
    assert_eq!(
        all_keys(&map),
        strings(&[
            "/",
            "/.nczarr",
            "/data1",
            "/data1/0",
            "/meta1",
            "/meta1/.zarray",
            "/meta2",
            "/meta2/.nczvar",
        ])
    );
    map.close(false).unwrap();
}

fn ut_map(t: &Target) {
    ut_map_steps(t.imp, &t.location);
    let map = t.open(0);
    assert_eq!(map.len(&key("/.nczarr")).unwrap(), 0);
    assert_eq!(read_all(&map, "/meta2/.nczvar"), METADATA2);
    map.close(false).unwrap();
}

/// The `ut_mapapi` steps (zmap-api.md B §9.3).
fn ut_mapapi(t: &Target) {
    assert_eq!(METAARRAY1.len(), 34);
    // create
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(code(map.exists(&key("/.nczarr"))), NC_NOERR);
    map.close(false).unwrap();
    // delete: open must then be exactly NC_EEMPTY
    t.open(0).close(true).unwrap();
    assert_eq!(code(t.try_open(0)), NC_EEMPTY);
    // (the script re-creates)
    let map = t.create();
    map.define(&key("/.nczarr")).unwrap();
    map.close(false).unwrap();
    // simplemeta
    let map = t.open(NC_WRITE);
    map.define(&key("/.nczarr")).unwrap();
    map.define(&key("/meta1/.zarray")).unwrap();
    map.write(&key("/.nczarr"), 0, METADATA1).unwrap();
    map.write(&key("/meta1/.zarray"), 0, METAARRAY1).unwrap();
    map.close(false).unwrap();
    let map = t.open(0);
    for (k, content) in [("/.nczarr", METADATA1), ("/meta1/.zarray", METAARRAY1)] {
        assert_eq!(code(map.exists(&key(k))), NC_NOERR);
        assert_eq!(map.len(&key(k)).unwrap(), content.len() as u64);
        assert_eq!(read_all(&map, k), content);
    }
    map.close(false).unwrap();
    // simpledata: /data1 is a top-level leaf here
    let data = ut_data();
    let map = t.open(NC_WRITE);
    map.define(&key("/data1")).unwrap();
    for (start, end) in [(0, 34), (34, 68), (68, 100)] {
        map.write(&key("/data1"), start as u64, &data[start..end])
            .unwrap();
    }
    map.close(false).unwrap();
    let map = t.open(0);
    assert_eq!(code(map.exists(&key("/data1"))), NC_NOERR);
    assert_eq!(map.len(&key("/data1")).unwrap(), 100);
    assert_eq!(read_all(&map, "/data1"), data);
    // search: a leaf searched gives nothing, with success
    assert_eq!(
        all_keys(&map),
        strings(&["/", "/.nczarr", "/data1", "/meta1", "/meta1/.zarray"])
    );
    map.close(false).unwrap();
}

// ---- the backends ----------------------------------------------------------

backend_suite!(memory, Impl::Memory, memory_name);
backend_suite!(file, Impl::File, fresh_path);
backend_suite!(file_fallback, Impl::File, fresh_path_fallback);
backend_suite!(gnz, Impl::Gnz, fresh_path);
backend_suite!(zip, Impl::Zip, fresh_zip);
backend_suite!(zip_netcdf, Impl::Zip, fresh_zip_netcdf);
#[cfg(feature = "s3")]
backend_suite!(s3, Impl::S3, crate::store::s3::conformance_fixture);
#[cfg(feature = "nc4")]
backend_suite!(nc4, Impl::Nc4, fresh_path);
