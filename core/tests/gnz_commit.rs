//! GNZ: the commit protocol and what rests on it — copy-on-write (crash
//! states are simulated in src/store/gnz/crash_tests.rs), header-region growth, free-space reuse, compaction, the writer lock and
//! readers' snapshots.

mod gnz_util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gnz_util::*;
use zmap_core::codes::*;
use zmap_core::map::{Map, NC_NOCLOBBER};
use zmap_core::Impl;

type Snapshot = Vec<(String, Vec<u8>)>;

/// Until the next commit, the file (header at 0, no recovery) shows the
/// last commit exactly, whatever is written meanwhile.
#[test]
fn uncommitted_writes_never_touch_committed_bytes() {
    let (_dir, path) = temp_gnz("cow");
    let map = create(&path);
    let mut committed: Snapshot = Vec::new();
    let mut current: Snapshot = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for step in 0..600 {
        let k = format!("/k{}", next(12));
        match next(10) {
            0..=4 => {
                let start = next(6000);
                let len = 1 + next(5000) as usize;
                let byte = (step % 251) as u8;
                map.write(&key(&k), start, &vec![byte; len]).unwrap();
                let entry = match current.iter_mut().find(|(n, _)| *n == k) {
                    Some(e) => e,
                    None => {
                        current.push((k.clone(), Vec::new()));
                        current.last_mut().unwrap()
                    }
                };
                let end = start as usize + len;
                if entry.1.len() < end {
                    entry.1.resize(end, 0);
                }
                entry.1[start as usize..end].fill(byte);
            }
            5 => {
                let len = next(7000);
                if map.truncate(&key(&k), len).is_ok() {
                    let e = current.iter_mut().find(|(n, _)| *n == k).unwrap();
                    e.1.resize(len as usize, 0);
                }
            }
            6 => {
                if map.remove(&key(&k)).is_ok() {
                    current.retain(|(n, _)| *n != k);
                }
            }
            7 => {
                map.flush().unwrap();
                committed = current.clone();
                committed.sort();
            }
            _ => {
                let mut got = Vec::new();
                map.read(&key(&k), 0, &mut got).ok();
            }
        }
        if step % 7 == 0 {
            let (_, mut on_disk) = python_read(&path);
            on_disk.sort();
            assert_eq!(on_disk, committed, "step {step}");
            map.verify().unwrap();
        }
    }
    map.close(false).unwrap();
    current.sort();
    assert_eq!(contents(&open_ro(&path).unwrap()), current);
}

#[test]
fn header_growth_moves_objects_out_of_the_way() {
    let (_dir, path) = temp_gnz("grow");
    let map = create(&path);
    for i in 0..8 {
        map.write(&key(&format!("/first/{i}")), 0, &vec![i as u8; 300])
            .unwrap();
    }
    map.flush().unwrap();
    let region = stat(&map, "gnz header region");
    assert_eq!(region, 4096);
    let (header, _) = python_read(&path);
    assert_eq!(header.arrays.iter().map(|a| a.offset).min(), Some(4096));
    for i in 0..150 {
        map.write(
            &key(&format!("/second/a_name_long_enough_to_matter_{i:05}")),
            0,
            b"x",
        )
        .unwrap();
    }
    map.flush().unwrap();
    assert!(stat(&map, "gnz header region") > region);
    let header_bytes = stat(&map, "gnz header bytes");
    assert!(header_bytes > 4096);
    let (header, data) = python_read(&path);
    assert!(header
        .arrays
        .iter()
        .all(|a| a.nbytes == 0 || a.offset >= header_bytes));
    for i in 0..8 {
        let name = format!("/first/{i}");
        let d = &data.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(d, &vec![i as u8; 300]);
    }
    map.verify().unwrap();
    map.close(false).unwrap();
    assert_eq!(contents(&open_ro(&path).unwrap()).len(), 158);
}

#[test]
fn free_space_is_reused() {
    let (_dir, path) = temp_gnz("reuse");
    let map = create(&path);
    for i in 0..20 {
        map.write(&key(&format!("/o{i:02}")), 0, &vec![1; 10_000])
            .unwrap();
    }
    map.flush().unwrap();
    let full = file_size(&path);
    for i in 0..10 {
        map.remove(&key(&format!("/o{i:02}"))).unwrap();
    }
    // Not reusable before the commit that drops them.
    assert_eq!(stat(&map, "gnz bytes awaiting commit"), 10 * 10_000);
    map.flush().unwrap();
    assert_eq!(stat(&map, "gnz bytes awaiting commit"), 0);
    assert!(stat(&map, "gnz free bytes") >= 10 * 12_288);
    for i in 0..10 {
        map.write(&key(&format!("/n{i:02}")), 0, &vec![2; 10_000])
            .unwrap();
    }
    map.flush().unwrap();
    assert_eq!(file_size(&path), full);
    // Rewriting a committed object moves it (one spare slot at most); the
    // old place is reused by the next rewrite.
    let mut sizes = Vec::new();
    for round in 0..5u8 {
        map.write(&key("/n00"), 0, &vec![round; 10_000]).unwrap();
        map.flush().unwrap();
        sizes.push(file_size(&path));
    }
    assert!(sizes.iter().all(|&s| s <= full + 12_288), "{sizes:?}");
    map.close(false).unwrap();
    assert_eq!(read_all(&open_ro(&path).unwrap(), "/n00"), vec![4; 10_000]);
}

#[test]
fn appends_after_a_commit_stay_in_place() {
    let (_dir, path) = temp_gnz("append");
    let map = create(&path);
    map.write(&key("/log"), 0, &[1; 1000]).unwrap();
    map.flush().unwrap();
    let offset = |path: &Path| python_read(path).0.arrays[0].offset;
    let first = offset(&path);
    let mut len = 1000;
    for i in 0..20u64 {
        map.write(&key("/log"), len, &[2; 100]).unwrap();
        len += 100;
        if i % 5 == 4 {
            map.flush().unwrap();
        }
    }
    map.close(false).unwrap();
    // The object was last in the file, so it grew into the space after it.
    assert_eq!(offset(&path), first);
    let log = read_all(&open_ro(&path).unwrap(), "/log");
    assert_eq!(log.len(), 3000);
    assert!(log[..1000].iter().all(|&b| b == 1) && log[1000..].iter().all(|&b| b == 2));
}

#[test]
fn compaction_shrinks_and_keeps_everything() {
    let (_dir, path) = temp_gnz("compact");
    let map = create(&path);
    for i in 0..60 {
        let len = [200usize, 5000, 9000][i % 3];
        map.write(&key(&format!("/c/{i:02}")), 0, &vec![i as u8; len])
            .unwrap();
    }
    map.flush().unwrap();
    for i in (0..60).filter(|i| i % 4 != 1) {
        map.remove(&key(&format!("/c/{i:02}"))).unwrap();
    }
    map.write(&key("/c/01"), 0, &[9; 100]).unwrap();
    let want = contents(&map);
    let size_before = file_size(&path);
    let (before, after_size) = map.compact().unwrap();
    assert!(before >= size_before, "{before} < {size_before}");
    assert!(after_size < before / 2, "{before} -> {after_size}");
    assert_eq!(file_size(&path), after_size);
    assert_eq!(contents(&map), want);
    // Only alignment padding is left.
    let free = stat(&map, "gnz free bytes");
    assert!(free < 15 * 4096, "{free} free bytes");
    map.verify().unwrap();
    // Again: nothing more to gain.
    let (b2, a2) = map.compact().unwrap();
    assert_eq!((b2, a2), (after_size, after_size));
    map.close(false).unwrap();
    let (_, mut data) = python_read(&path);
    data.sort();
    assert_eq!(data, want);
    // Compaction works while a reader is open, and leaves its snapshot be.
    let map = open_rw(&path).unwrap();
    let reader = open_ro(&path).unwrap();
    map.compact().unwrap();
    assert_eq!(contents(&reader), want);
    reader.close(false).unwrap();
    map.compact().unwrap();
    map.close(false).unwrap();
    // Read-only maps cannot compact; other backends have nothing to do.
    assert_eq!(code(open_ro(&path).unwrap().compact()), NC_EPERM);
    let mem = Map::create(Impl::Memory, "gnz-commit-compact", 0, 0).unwrap();
    assert_eq!(mem.compact().unwrap(), (0, 0));
    mem.close(true).unwrap();
}

#[test]
fn one_writer_at_a_time_in_one_process() {
    let (_dir, path) = temp_gnz("lock");
    let w1 = create(&path);
    assert_eq!(code(open_rw(&path)), NC_EACCESS);
    assert_eq!(code(Map::create(Impl::Gnz, &loc(&path), 0, 0)), NC_EACCESS);
    assert_eq!(
        code(Map::create(Impl::Gnz, &loc(&path), NC_NOCLOBBER, 0)),
        NC_EACCESS
    );
    let reader = open_ro(&path).unwrap();
    w1.close(false).unwrap();
    let w2 = open_rw(&path).unwrap();
    w2.close(false).unwrap();
    reader.close(false).unwrap();
}

/// Child process: holds the writer lock until told to let go.
#[test]
#[ignore = "child process of one_writer_at_a_time_across_processes"]
fn lock_holder_child() {
    let path = PathBuf::from(std::env::var("ZMAP_GNZ_TEST_PATH").unwrap());
    let map = open_rw(&path).unwrap();
    map.write(&key("/held"), 0, b"yes").unwrap();
    std::fs::write(path.with_extension("ready"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.with_extension("release").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    map.close(false).unwrap();
}

#[test]
fn one_writer_at_a_time_across_processes() {
    let (_dir, path) = temp_gnz("xlock");
    create(&path).close(false).unwrap();
    let mut child = spawn_child("lock_holder_child", &path).spawn().unwrap();
    // The child creates it once it holds the lock.
    wait_for(&path.with_extension("ready"));
    let refused = Instant::now();
    assert_eq!(code(open_rw(&path)), NC_EACCESS);
    assert!(
        refused.elapsed() < Duration::from_secs(1),
        "refusal must not wait"
    );
    // A reader is welcome, and sees the last commit (not the child's write).
    let reader = open_ro(&path).unwrap();
    assert_eq!(code(reader.exists(&key("/held"))), NC_EEMPTY);
    std::fs::write(path.with_extension("release"), b"").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(code(reader.exists(&key("/held"))), NC_EEMPTY);
    reader.close(false).unwrap();
    let map = open_rw(&path).unwrap();
    assert_eq!(read_all(&map, "/held"), b"yes");
    map.close(false).unwrap();
}

#[test]
fn readers_see_commits_and_keep_their_snapshot() {
    let (_dir, path) = temp_gnz("snap");
    let writer = create(&path);
    writer.write(&key("/a"), 0, &vec![1; 9000]).unwrap();
    writer.write(&key("/b"), 0, &vec![2; 300]).unwrap();
    writer.flush().unwrap();
    let old = open_ro(&path).unwrap();
    let snapshot = contents(&old);
    // Uncommitted changes are invisible to a new reader; committed ones not.
    writer.write(&key("/a"), 0, &vec![3; 9000]).unwrap();
    assert_eq!(read_all(&open_ro(&path).unwrap(), "/a"), vec![1; 9000]);
    writer.remove(&key("/b")).unwrap();
    writer.flush().unwrap();
    let fresh = open_ro(&path).unwrap();
    assert_eq!(read_all(&fresh, "/a"), vec![3; 9000]);
    assert_eq!(code(fresh.exists(&key("/b"))), NC_EEMPTY);
    fresh.close(false).unwrap();
    // Several more commits that would reuse the freed space: the old
    // reader's bytes are left alone while it is open.
    for round in 0..4u8 {
        writer
            .write(&key(&format!("/c{round}")), 0, &vec![round; 300])
            .unwrap();
        writer
            .write(&key("/a"), 0, &vec![10 + round; 9000])
            .unwrap();
        writer.flush().unwrap();
        assert_eq!(contents(&old), snapshot, "round {round}");
    }
    assert!(stat(&writer, "gnz bytes awaiting commit") > 0);
    old.close(false).unwrap();
    writer.write(&key("/d"), 0, b"1").unwrap();
    writer.flush().unwrap();
    assert_eq!(stat(&writer, "gnz bytes awaiting commit"), 0);
    writer.verify().unwrap();
    writer.close(false).unwrap();
}

#[test]
fn a_later_writer_session_respects_an_older_readers_snapshot() {
    let (_dir, path) = temp_gnz("sessions");
    let w = create(&path);
    for i in 0..10 {
        w.write(&key(&format!("/o{i}")), 0, &vec![i as u8; 5000])
            .unwrap();
    }
    w.close(false).unwrap();
    let reader = open_ro(&path).unwrap();
    let snapshot = contents(&reader);
    // First session: frees everything the reader sees.
    let w = open_rw(&path).unwrap();
    for i in 0..10 {
        w.remove(&key(&format!("/o{i}"))).unwrap();
    }
    w.close(false).unwrap();
    // Second session: knows nothing of the first one's frees, but sees the
    // reader and leaves its bytes alone.
    let w = open_rw(&path).unwrap();
    for i in 0..10 {
        w.write(&key(&format!("/n{i}")), 0, &vec![0xee; 5000])
            .unwrap();
    }
    w.flush().unwrap();
    assert_eq!(contents(&reader), snapshot);
    reader.close(false).unwrap();
    // Without readers the space comes back at the next commit.
    w.write(&key("/last"), 0, b"1").unwrap();
    w.flush().unwrap();
    assert_eq!(stat(&w, "gnz bytes awaiting commit"), 0);
    let (_, a) = w.compact().unwrap();
    assert!(a <= 4096 + 10 * 8192 + 4096, "{a}");
    w.close(false).unwrap();
}

#[test]
fn delete_removes_the_file_only() {
    let (dir, path) = temp_gnz("delete");
    std::fs::write(dir.path().join("neighbour"), b"stay").unwrap();
    let map = create(&path);
    map.write(&key("/x"), 0, b"1").unwrap();
    map.close(true).unwrap();
    assert!(!path.exists());
    assert!(dir.path().join("neighbour").exists());
    assert_eq!(code(open_ro(&path)), NC_EEMPTY);
    // Through a symlink: the dataset is the file it names, resolved at
    // open; that file goes, the link (not a dataset) stays, dangling.
    let target = dir.path().join("target.gnz");
    create(&target).close(false).unwrap();
    let link = dir.path().join("link.gnz");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    open_ro(&link).unwrap().close(true).unwrap();
    assert!(!target.exists() && link.symlink_metadata().is_ok());
}
