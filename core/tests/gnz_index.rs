//! GNZ: the index — search lists one level, sorted bytewise (GNZ tells
//! `Map::search` it need not sort), in writers and readers, across removals
//! and reopening; the leaf rules.

mod gnz_util;

use gnz_util::*;
use zmap_core::codes::*;

const KEYS: [&str; 9] = [
    "/b/x", "/a.1", "/a/c/d", "/a/b", "/.z", "/a-b", "/a/c/e", "/\u{e9}", "/Z",
];

#[test]
fn search_is_sorted_bytewise_in_writers_and_readers() {
    let (_dir, path) = temp_gnz("search");
    let map = create(&path);
    for (i, k) in KEYS.iter().enumerate() {
        map.write(&key(k), 0, &[i as u8; 3]).unwrap();
    }
    let check = |m: &zmap_core::map::Map| {
        assert_eq!(
            m.search(&key("/")).unwrap(),
            [".z", "Z", "a", "a-b", "a.1", "b", "\u{e9}"]
        );
        assert_eq!(m.search(&key("/a")).unwrap(), ["b", "c"]);
        assert_eq!(m.search(&key("/a/c")).unwrap(), ["d", "e"]);
        assert!(m.search(&key("/a/b")).unwrap().is_empty());
        assert!(m.search(&key("/nothing")).unwrap().is_empty());
    };
    check(&map);
    map.close(false).unwrap();
    let reader = open_ro(&path).unwrap();
    check(&reader);
    reader.close(false).unwrap();
    let map = open_rw(&path).unwrap();
    check(&map);
    // Removing the last object below an intermediate key removes the key.
    map.remove(&key("/a/c/d")).unwrap();
    map.remove(&key("/a/c/e")).unwrap();
    assert_eq!(map.search(&key("/a")).unwrap(), ["b"]);
    assert_eq!(code(map.exists(&key("/a/c"))), NC_EEMPTY);
    // The leaf rules.
    assert_eq!(code(map.write(&key("/a"), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.write(&key("/a/b/c"), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.define(&key("/b"))), NC_EINVAL);
    map.write(&key("/a/c"), 0, b"now an object").unwrap();
    map.close(false).unwrap();
    let reader = open_ro(&path).unwrap();
    assert_eq!(reader.search(&key("/a")).unwrap(), ["b", "c"]);
    assert_eq!(read_all(&reader, "/a/c"), b"now an object");
}
