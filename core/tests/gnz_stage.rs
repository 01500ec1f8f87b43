//! GNZ: small writes staged in memory (DESIGN.md, "Staging") — what the
//! writer reads is always what it wrote, whatever mix of short and long
//! writes, moves, removals and reuse of freed space; every commit puts
//! exactly that in the file (header at 0 alone, and reopened); readers'
//! snapshots stay intact.

mod gnz_util;

use std::collections::BTreeMap;

use gnz_util::*;

type Model = BTreeMap<String, Vec<u8>>;

/// Which objects differ (a short message instead of the bytes).
fn same(got: &Model, want: &Model, when: &str) {
    if got == want {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diffs.push(format!("{k} missing")),
            Some(g) if g.len() != v.len() => {
                diffs.push(format!("{k} len {} != {}", g.len(), v.len()))
            }
            Some(g) if g != v => {
                let at = g.iter().zip(v).position(|(a, b)| a != b).unwrap_or(0);
                diffs.push(format!("{k} differs at {at} of {}", v.len()))
            }
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{k} extra"));
    }
    panic!("{when}: {}", diffs.join("; "));
}

/// Where the header at offset 0 ends now, and where the lowest object of
/// the committed header starts.
fn header_end_and_lowest(path: &std::path::Path) -> (u64, u64) {
    let (header, _) = python_read(path);
    let bytes = std::fs::read(path).unwrap();
    let end = 8 + u64::from(u32::from_le_bytes(bytes[4..8].try_into().unwrap()));
    let lowest = header
        .arrays
        .iter()
        .filter(|a| a.nbytes > 0)
        .map(|a| a.offset)
        .min()
        .unwrap_or(u64::MAX);
    (end, lowest)
}

fn check_writer(map: &zmap_core::map::Map, model: &Model, when: &str) {
    let got: Model = model
        .keys()
        .map(|k| (k.clone(), read_all(map, k)))
        .collect();
    same(&got, model, when);
}

fn check_file(path: &std::path::Path, model: &Model, when: &str) {
    let (_, data) = python_read(path);
    let got: Model = data.into_iter().collect();
    same(&got, model, &format!("{when}: header at offset 0"));
    let reader = open_ro(path).unwrap();
    let again: Model = contents(&reader).into_iter().collect();
    same(&again, model, &format!("{when}: reopened"));
    reader.close(false).unwrap();
}

#[test]
fn writes_reads_and_commits_agree_with_a_model() {
    for seed in 1..=(std::env::var("SEEDS").map_or(6u64, |s| s.parse().unwrap())) {
        let (_dir, path) = temp_gnz(&format!("stage{seed}"));
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut map = create(&path);
        let mut model = Model::new();
        let mut stamp = 0u8;
        // A reader, what it must show, the lowest byte its objects use, and
        // whether a later header reached that byte (DESIGN.md's known limit:
        // the header region grew over the snapshot; not compared then).
        let mut reader: Option<(zmap_core::map::Map, Model, u64, bool)> = None;
        for step in 0..600 {
            let k = format!("/s{}/o{}", next(4), next(30));
            stamp = stamp.wrapping_add(1);
            let op = next(12);
            match op {
                0..=4 => {
                    // Mostly short writes, at the start, past the end, inside.
                    let len = [1u64, 15, 16, 100, 1000, 1024, 4095, 4096, 9000, 70_000]
                        [next(10) as usize] as usize;
                    let cur = model.get(&k).map_or(0, |v| v.len() as u64);
                    let start = match next(3) {
                        0 => 0,
                        1 => cur,
                        _ => next(cur + 200),
                    };
                    let data: Vec<u8> = (0..len).map(|i| stamp ^ i as u8).collect();
                    map.write(&key(&k), start, &data).unwrap();
                    let v = model.entry(k.clone()).or_default();
                    let end = start as usize + len;
                    if v.len() < end {
                        v.resize(end, 0);
                    }
                    v[start as usize..end].copy_from_slice(&data);
                }
                5 => {
                    if let Some(v) = model.get_mut(&k) {
                        let len = next(v.len() as u64 + 5000) as usize;
                        map.truncate(&key(&k), len as u64).unwrap();
                        v.resize(len, 0);
                    }
                }
                6 | 7 => {
                    if model.remove(&k).is_some() {
                        map.remove(&key(&k)).unwrap();
                    }
                }
                8 => {
                    map.flush().unwrap();
                    check_file(&path, &model, &format!("seed {seed} step {step}"));
                }
                9 => {
                    // A reader's snapshot must survive what follows.
                    map.flush().unwrap();
                    if let Some((_, _, lowest, clobbered)) = reader.as_mut() {
                        *clobbered |= header_end_and_lowest(&path).0 > *lowest;
                    }
                    if let Some((r, snap, _, clobbered)) = reader.take() {
                        if !clobbered {
                            let got: Model = contents(&r).into_iter().collect();
                            same(&got, &snap, &format!("seed {seed} step {step}: snapshot"));
                        }
                        r.close(false).unwrap();
                    } else {
                        let lowest = header_end_and_lowest(&path).1;
                        reader = Some((open_ro(&path).unwrap(), model.clone(), lowest, false));
                    }
                }
                10 => {
                    map.close(false).unwrap();
                    check_file(&path, &model, &format!("seed {seed} step {step}"));
                    map = open_rw(&path).unwrap();
                }
                _ => {
                    // Reads of parts, straddling whatever is staged.
                    if let Some(v) = model.get(&k) {
                        if !v.is_empty() {
                            let at = next(v.len() as u64) as usize;
                            let n = 1 + next((v.len() - at) as u64) as usize;
                            let mut buf = vec![0u8; n];
                            map.read(&key(&k), at as u64, &mut buf).unwrap();
                            assert_eq!(&buf[..], &v[at..at + n], "seed {seed} step {step}");
                        }
                    }
                }
            }
            if matches!(op, 8 | 10) {
                if let Some((_, _, lowest, clobbered)) = reader.as_mut() {
                    *clobbered |= header_end_and_lowest(&path).0 > *lowest;
                }
            }
            if step % 25 == 0 {
                check_writer(&map, &model, &format!("seed {seed} step {step}"));
            }
        }
        check_writer(&map, &model, "end");
        map.verify().unwrap();
        if let Some((r, snap, _, clobbered)) = reader.take() {
            if !clobbered {
                let got: Model = contents(&r).into_iter().collect();
                same(&got, &snap, &format!("seed {seed}: snapshot at the end"));
            }
            r.close(false).unwrap();
        }
        map.close(false).unwrap();
        check_file(&path, &model, "closed");
    }
}

#[test]
fn ten_thousand_small_objects_take_a_few_writes() {
    let (_dir, path) = temp_gnz("few");
    let map = create(&path);
    let mut model = Model::new();
    for i in 0..10_000u32 {
        let k = format!("/g/v{}/c.{i}", i % 100);
        let v: Vec<u8> = (0..1000 + i % 50).map(|j| (i ^ j) as u8).collect();
        map.write(&key(&k), 0, &v).unwrap();
        model.insert(k, v);
    }
    // Before the commit the file holds at most what was written out per
    // MiB; the writer reads everything.
    check_writer(&map, &model, "staged");
    map.close(false).unwrap();
    check_file(&path, &model, "committed");
    let size = file_size(&path);
    let payload: usize = model.values().map(Vec::len).sum();
    assert!(
        size < payload as u64 + payload as u64 / 10 + 2 * 4096 + 1_200_000,
        "{size}"
    );
}
