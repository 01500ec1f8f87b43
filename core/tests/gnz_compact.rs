//! GNZ compaction (DESIGN.md, "Compaction"): it never grows the file, it
//! leaves no hole but alignment padding (and bounded room for the header),
//! and a second compaction changes nothing (a crash in the middle of one:
//! src/store/gnz/crash_tests.rs).

mod gnz_util;

use std::path::Path;

use gnz_util::*;
use zmap_core::map::Map;

type Snapshot = Vec<(String, Vec<u8>)>;

/// A pseudo-random byte pattern for object `n`.
fn pattern(n: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (n.wrapping_mul(0x9e37_79b9) ^ i.wrapping_mul(31)) as u8)
        .collect()
}

/// The benchmark's workload (BENCHMARKS.md), scaled down: small objects in
/// one session, large ones written in pieces in a second.
fn bench_workload(path: &Path, small: u64, big: u64, big_len: u64, piece: u64) -> Snapshot {
    let map = create(path);
    for i in 0..small {
        map.write(
            &key(&format!("/g0/v{}/c.{i}", i % 100)),
            0,
            &pattern(i, 1024),
        )
        .unwrap();
    }
    map.close(false).unwrap();
    let map = open_rw(path).unwrap();
    for j in 0..big {
        let data = pattern(1 << 20 | j, big_len as usize);
        for q in (0..big_len).step_by(piece as usize) {
            let end = (q + piece).min(big_len);
            map.write(
                &key(&format!("/big/b{j}")),
                q,
                &data[q as usize..end as usize],
            )
            .unwrap();
        }
    }
    map.close(false).unwrap();
    contents(&open_ro(path).unwrap())
}

/// Large objects growing in turns (so that they move and leave holes),
/// then a third of the small objects removed.
fn holey_workload(path: &Path) -> Snapshot {
    let map = create(path);
    for i in 0..1000u64 {
        map.write(&key(&format!("/s/c.{i}")), 0, &pattern(i, 1024))
            .unwrap();
    }
    map.close(false).unwrap();
    let map = open_rw(path).unwrap();
    let piece = 64 * 1024;
    for q in 0..16u64 {
        for j in 0..8u64 {
            map.write(
                &key(&format!("/big/b{j}")),
                q * piece,
                &pattern(j << 8 | q, piece as usize),
            )
            .unwrap();
        }
    }
    for i in (0..1000).step_by(3) {
        map.remove(&key(&format!("/s/c.{i}"))).unwrap();
    }
    map.close(false).unwrap();
    contents(&open_ro(path).unwrap())
}

/// Bytes of the file that no object references, past the header: what a
/// read-only open reports.
fn unreferenced(path: &Path) -> (u64, u64) {
    let map = open_ro(path).unwrap();
    let r = (
        stat(&map, "gnz unreferenced bytes"),
        stat(&map, "gnz header bytes"),
    );
    map.close(false).unwrap();
    r
}

/// Compacts twice and checks everything compaction promises; returns the
/// size after.
fn compact_and_check(path: &Path, want: &Snapshot, pages: u64) -> u64 {
    let map = open_rw(path).unwrap();
    let size = file_size(path);
    let (before, after) = map.compact().unwrap();
    assert_eq!(before, size);
    assert!(
        after <= before,
        "compaction grew the file: {before} -> {after}"
    );
    assert_eq!(file_size(path), after);
    assert_eq!(&contents(&map), want);
    map.verify().unwrap();
    // A second compaction has nothing to do.
    assert_eq!(map.compact().unwrap(), (after, after));
    assert_eq!(file_size(path), after);
    map.close(false).unwrap();
    assert_eq!(file_size(path), after);
    // No hole but alignment padding (16 bytes per small object, a page per
    // large one) and room for the header of a quarter of it (or a page).
    let (gaps, header) = unreferenced(path);
    let small = want.iter().filter(|(_, v)| v.len() < 4096).count() as u64;
    let allowed = (header / 4).max(4096) + 16 * small + 4096 * pages;
    assert!(
        gaps <= allowed,
        "{gaps} unreferenced bytes (allowed {allowed})"
    );
    // The original reader sees the same objects.
    let (_, mut data) = python_read(path);
    data.sort();
    assert_eq!(&data, want);
    assert_eq!(&contents(&open_ro(path).unwrap()), want);
    // And once more from a new session: still nothing to do.
    let map = open_rw(path).unwrap();
    assert_eq!(map.compact().unwrap(), (after, after));
    map.close(false).unwrap();
    after
}

#[test]
fn the_benchmark_workload_compacts_without_growing() {
    let (_dir, path) = temp_gnz("bench");
    let want = bench_workload(&path, 2000, 16, 1 << 20, 64 << 10);
    let payload: u64 = want.iter().map(|(_, v)| v.len() as u64).sum();
    let after = compact_and_check(&path, &want, 16);
    assert!(
        after as f64 <= 1.05 * payload as f64,
        "{after} bytes for {payload}"
    );
}

#[test]
fn holes_between_large_objects_are_closed() {
    let (_dir, path) = temp_gnz("holey");
    let want = holey_workload(&path);
    let payload: u64 = want.iter().map(|(_, v)| v.len() as u64).sum();
    let before = file_size(&path);
    assert!(before as f64 > 1.2 * payload as f64, "no holes to close");
    let after = compact_and_check(&path, &want, 8);
    assert!(
        after as f64 <= 1.02 * payload as f64 + 65536.0,
        "{after} bytes for {payload}"
    );
}

#[test]
fn a_shrunken_header_gives_its_room_back() {
    let (_dir, path) = temp_gnz("header");
    let map = create(&path);
    for i in 0..2000u64 {
        map.write(
            &key(&format!("/a_long_name_that_makes_the_header_big/{i:05}")),
            0,
            &pattern(i, 40),
        )
        .unwrap();
    }
    map.write(&key("/large"), 0, &pattern(7, 300_000)).unwrap();
    map.close(false).unwrap();
    let map = open_rw(&path).unwrap();
    for i in 0..1990u64 {
        map.remove(&key(&format!(
            "/a_long_name_that_makes_the_header_big/{i:05}"
        )))
        .unwrap();
    }
    map.close(false).unwrap();
    let want = contents(&open_ro(&path).unwrap());
    let after = compact_and_check(&path, &want, 1);
    assert!(after <= 4096 + 300_000 + 4096 * 2, "{after}");
}

#[test]
fn random_histories_compact_completely() {
    for seed in 1..=(std::env::var("SEEDS").map_or(12u64, |s| s.parse().unwrap())) {
        let (_dir, path) = temp_gnz(&format!("random{seed}"));
        let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut map = create(&path);
        let mut writes = 0u64;
        for step in 0..400u64 {
            let k = format!("/d{}/o{}", next(3), next(40));
            match next(10) {
                0..=3 => {
                    let len = [0u64, 10, 100, 1000, 4096, 5000, 70_000][next(7) as usize];
                    map.truncate(&key(&k), 0).ok();
                    writes += 1;
                    if len > 0 {
                        map.write(&key(&k), 0, &pattern(writes, len as usize))
                            .unwrap();
                    } else {
                        map.define(&key(&k)).unwrap();
                    }
                }
                4..=5 => {
                    // Appends, in pieces.
                    let at = map.len(&key(&k)).unwrap_or(0);
                    writes += 1;
                    let piece = [100usize, 3000, 20_000][next(3) as usize];
                    map.write(&key(&k), at, &pattern(writes, piece)).unwrap();
                }
                6 => {
                    // Overwrites inside (copy-on-write once committed).
                    if let Ok(len) = map.len(&key(&k)) {
                        if len > 0 {
                            writes += 1;
                            let at = next(len);
                            let n = (len - at).min(500) as usize;
                            map.write(&key(&k), at, &pattern(writes, n)).unwrap();
                        }
                    }
                }
                7 => {
                    if let Ok(len) = map.len(&key(&k)) {
                        map.truncate(&key(&k), len / 2).unwrap();
                    }
                }
                _ => {
                    map.remove(&key(&k)).ok();
                }
            }
            if step % 50 == 49 {
                map.flush().unwrap();
            }
            if step % 150 == 149 {
                map.close(false).unwrap();
                map = open_rw(&path).unwrap();
            }
        }
        map.close(false).unwrap();
        let want = contents(&open_ro(&path).unwrap());
        let pages = want.iter().filter(|(_, v)| v.len() >= 4096).count() as u64;
        compact_and_check(&path, &want, pages);
    }
}

#[test]
fn compaction_with_a_reader_keeps_its_snapshot() {
    let (_dir, path) = temp_gnz("readers");
    let want = holey_workload(&path);
    let map = open_rw(&path).unwrap();
    let reader = open_ro(&path).unwrap();
    let size = file_size(&path);
    // Objects move into the holes; their old places stay the reader's.
    let (before, after) = map.compact().unwrap();
    assert_eq!((before, after), (size, file_size(&path)));
    assert_eq!(contents(&reader), want);
    assert_eq!(contents(&map), want);
    reader.close(false).unwrap();
    // The reader gone, the next flush gives its space back.
    map.flush().unwrap();
    assert!(file_size(&path) < size, "{} !< {size}", file_size(&path));
    let (_, packed) = map.compact().unwrap();
    assert!(packed <= file_size(&path));
    assert_eq!(contents(&map), want);
    map.close(false).unwrap();
    let _ = Map::close;
}

/// The fuzzer's `compact-no-progress` input (fuzz/regressions/gnz_ops):
/// 48 long keys added, close and reopen, the keys removed and added again,
/// compact.
#[test]
fn long_keys_replaced_then_compacted() {
    let (_dir, path) = temp_gnz("long-keys");
    let many = |i: usize| format!("/many/{i:03}/{}", "a-rather-long-segment-name.".repeat(3));
    let add = |map: &Map| {
        for i in 0..48 {
            let v = vec![i as u8; i % 7 * 100];
            map.write(&key(&many(i)), 0, &v).unwrap();
            map.define(&key(&many(i))).unwrap();
        }
    };
    let map = create(&path);
    add(&map);
    map.close(false).unwrap();
    let map = open_rw(&path).unwrap();
    for i in 0..48 {
        map.remove(&key(&many(i))).unwrap();
    }
    add(&map);
    let (before, after) = map.compact().unwrap();
    assert!(after <= before);
    map.close(false).unwrap();
    let want = contents(&open_ro(&path).unwrap());
    assert_eq!(want.len(), 48);
    compact_and_check(&path, &want, 0);
}
