//! Crash consistency, simulated in-process at every operation on the file.
//!
//! A random workload runs on a [`Recording`] storage, which logs every
//! write, length change, sync and map. For every prefix of that log (a
//! crash after each operation) the states a power loss can leave are built:
//! everything up to the last completed sync is on disk; each 512-byte
//! sector written since may hold its content from before any of the later
//! operations or after any one of them (lost, reordered, torn writes), and
//! the file's length may be any it had since the sync. Each state must open
//! (read-only, then writable, which repairs the header) and hold exactly
//! the last completed commit, or the commit in flight: that one for certain
//! once its commit point (the sync after its commit record) is in the log.
//!
//! Readers open, close and die meanwhile (`live_readers.rs`): between the
//! writer's steps and in their middle. Each must keep reading its snapshot,
//! and the log (where each mapped the file: `Op::Map`) must show no write
//! or length change over what a live reader's snapshot references.
//!
//! `ZMAP_CRASH_WORKLOADS` (default 40) and `ZMAP_CRASH_SEED` set the size of
//! the run (the long run is recorded in BENCHMARKS.md, "Crash simulation").

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::format::{RECORD_MAGIC, TRAILER_LEN, UNDO_MAGIC};
use super::recovery;
use super::stage::{FIRST_BEHIND, STAGE_MAX};
use super::storage::{Op, Recording};
use super::store::GnzStore;
use crate::key::Key;
use crate::store::{OpenOptions, Store};
use live_readers::{generation, Readers};

/// What a power loss tears at most: one sector.
const SECTOR: usize = 512;
/// Random crash states per crash point, besides "every write" and "none".
const RANDOM_STATES: usize = 3;

type Model = BTreeMap<String, Vec<u8>>;

mod live_readers;

const KEYS: &[&str] = &["/.zgroup", "/a", "/b", "/g/c", "/g/d", "/h/e", "/big"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A commit and the ops it spans: `[start, end)` in the log, and the
/// dataset it makes.
struct Commit {
    start: usize,
    end: usize,
    model: Model,
}

/// What one workload did.
struct Run {
    ops: Vec<Op>,
    commits: Vec<Commit>,
    readers: live_readers::Outcomes,
}

fn key(k: &str) -> Key<'_> {
    Key::parse(k.as_bytes()).unwrap()
}

fn log_len(log: &Arc<Mutex<Vec<Op>>>) -> usize {
    log.lock().unwrap().len()
}

/// Runs a random workload of `steps` steps on a recorded store at `path`,
/// with readers opening and closing meanwhile.
fn run_workload(path: &Path, rng: &mut Rng, steps: usize) -> Run {
    let log = Arc::new(Mutex::new(Vec::new()));
    let readers = Readers::new(path, log.clone());
    let hook = readers.hook();
    let wrap = |file| Recording::new(file, Some(log.clone())).with_hook(hook.clone());
    let create = OpenOptions {
        create: true,
        noclobber: false,
        writable: true,
    };
    let mut store = GnzStore::open_on(path.to_path_buf(), create, &wrap).unwrap();
    let mut commits = vec![Commit {
        start: 0,
        end: log_len(&log),
        model: Model::new(),
    }];
    let mut model = Model::new();
    readers.after_step(rng, Some((generation(&store), Model::new())));
    for _ in 0..steps {
        let k = KEYS[rng.below(KEYS.len())];
        let step = rng.below(13);
        let commits_now = step >= 8;
        readers.before_step(rng, commits_now.then_some(&model));
        match step {
            0..=5 => {
                let old = model.get(k).map_or(0, Vec::len);
                let len = match rng.below(4) {
                    0 => 1 + rng.below(40),
                    1 => 1 + rng.below(600),
                    2 => 1 + rng.below(5000),
                    _ => 4096 + rng.below(20_000),
                };
                let start = if rng.below(2) == 0 {
                    0
                } else {
                    rng.below(old + 1)
                };
                let byte = rng.next() as u8;
                let data: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                store.write_at(&key(k), start as u64, &data).unwrap();
                let o = model.entry(k.to_string()).or_default();
                if o.len() < start + len {
                    o.resize(start + len, 0);
                }
                o[start..start + len].copy_from_slice(&data);
            }
            6 if model.contains_key(k) => {
                let len = match rng.below(5) {
                    0 => 0,
                    _ => rng.below(model[k].len() + 3000),
                };
                store.truncate(&key(k), len as u64).unwrap();
                model.get_mut(k).unwrap().resize(len, 0);
            }
            7 if model.contains_key(k) => {
                store.remove(&key(k)).unwrap();
                model.remove(k);
            }
            8..=10 => {
                let start = log_len(&log);
                store.flush().unwrap();
                commits.push(Commit {
                    start,
                    end: log_len(&log),
                    model: model.clone(),
                });
            }
            11 => {
                let start = log_len(&log);
                store.compact().unwrap();
                commits.push(Commit {
                    start,
                    end: log_len(&log),
                    model: model.clone(),
                });
            }
            12 => {
                // Another writer session (readers open meanwhile find it).
                let start = log_len(&log);
                Box::new(store).close(false).unwrap();
                commits.push(Commit {
                    start,
                    end: log_len(&log),
                    model: model.clone(),
                });
                let options = OpenOptions {
                    create: false,
                    noclobber: false,
                    writable: true,
                };
                store = GnzStore::open_on(path.to_path_buf(), options, &wrap).unwrap();
            }
            _ => {}
        }
        let committed = commits_now.then(|| (generation(&store), model.clone()));
        readers.after_step(rng, committed);
    }
    let start = log_len(&log);
    readers.before_step(rng, Some(&model));
    Box::new(store).close(false).unwrap();
    commits.push(Commit {
        start,
        end: log_len(&log),
        model: model.clone(),
    });
    let last = recovery::load(&std::fs::File::open(path).unwrap())
        .unwrap()
        .header
        .generation();
    readers.after_step(rng, Some((last, model)));
    let readers = readers.finish(rng);
    let ops = log.lock().unwrap().clone();
    Run {
        ops,
        commits,
        readers,
    }
}

/// True if `ops` (from a commit's start) reach its commit point: a sync
/// after the commit record (a write ending in a trailer) or, for a new
/// file, after its first header (written at offset 0).
fn committed(ops: &[Op]) -> bool {
    let marks_commit = |op: &Op| match op {
        Op::Write { offset, data } => *offset == 0 || is_record(data),
        _ => false,
    };
    ops.iter()
        .position(marks_commit)
        .is_some_and(|at| ops[at..].contains(&Op::Sync))
}

/// True if `data` ends with a commit record's trailer.
fn is_record(data: &[u8]) -> bool {
    data.len() >= TRAILER_LEN as usize
        && data[data.len() - TRAILER_LEN as usize..].starts_with(RECORD_MAGIC)
}

fn apply(image: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data } => {
            let at = *offset as usize;
            if image.len() < at + data.len() {
                image.resize(at + data.len(), 0);
            }
            image[at..at + data.len()].copy_from_slice(data);
        }
        Op::SetLen(len) => image.resize(*len as usize, 0),
        Op::Sync | Op::Map => {}
    }
}

/// The crash states of a crash after `ops`: every write, none since the
/// last sync, and `RANDOM_STATES` sector-wise mixes.
fn crash_states(ops: &[Op], rng: &mut Rng) -> Vec<Vec<u8>> {
    let synced = ops
        .iter()
        .rposition(|op| *op == Op::Sync)
        .map_or(0, |i| i + 1);
    let mut durable = Vec::new();
    for op in &ops[..synced] {
        apply(&mut durable, op);
    }
    let mut versions = vec![durable];
    for op in &ops[synced..] {
        if matches!(op, Op::Write { .. } | Op::SetLen(_)) {
            let mut next = versions.last().unwrap().clone();
            apply(&mut next, op);
            versions.push(next);
        }
    }
    let mut states = vec![versions.last().unwrap().clone()];
    if versions.len() == 1 {
        return states;
    }
    states.push(versions[0].clone());
    for _ in 0..RANDOM_STATES {
        let len = versions[rng.below(versions.len())].len();
        let mut image = vec![0u8; len];
        for (i, sector) in image.chunks_mut(SECTOR).enumerate() {
            let from = &versions[rng.below(versions.len())];
            let at = i * SECTOR;
            if at < from.len() {
                let n = sector.len().min(from.len() - at);
                sector[..n].copy_from_slice(&from[at..at + n]);
            }
        }
        states.push(image);
    }
    states
}

/// What the file at `path` holds, or `None` if it does not open.
fn contents(path: &Path, writable: bool) -> Option<Model> {
    let options = OpenOptions {
        create: false,
        noclobber: false,
        writable,
    };
    let store =
        GnzStore::open_on(path.to_path_buf(), options, &|f| Recording::new(f, None)).ok()?;
    let mut model = Model::new();
    for k in KEYS {
        let Ok(len) = store.len(&key(k)) else {
            continue;
        };
        let mut buf = vec![0u8; len as usize];
        store.read_at(&key(k), 0, &mut buf).ok()?;
        model.insert(k.to_string(), buf);
    }
    if writable {
        store.verify().ok()?;
    }
    Some(model)
}

/// Counts of one simulation.
#[derive(Default, Debug)]
struct Tally {
    workloads: usize,
    crash_points: usize,
    states: usize,
    readers: live_readers::Counts,
    violations: Vec<String>,
}

/// Checks every crash state of every crash point of one workload.
fn check_workload(seed: u64, dir: &Path, tally: &mut Tally) {
    let mut rng = Rng(seed.wrapping_mul(2).wrapping_add(1));
    let steps = 10 + rng.below(30);
    let run = run_workload(&dir.join("w.gnz"), &mut rng, steps);
    let image_path = dir.join("crash.gnz");
    tally.workloads += 1;
    for point in 0..=run.ops.len() {
        // A map changes no byte: the same states as the point before.
        if point > 0 && run.ops[point - 1] == Op::Map {
            continue;
        }
        let ops = &run.ops[..point];
        tally.crash_points += 1;
        let done = run.commits.iter().rev().find(|c| c.end <= point);
        let flight = run
            .commits
            .iter()
            .find(|c| c.start < point && point < c.end);
        let durable = flight.is_some_and(|c| committed(&run.ops[c.start..point]));
        for (n, image) in crash_states(ops, &mut rng).into_iter().enumerate() {
            tally.states += 1;
            for writable in [false, true] {
                // A new file each time: rewriting one in place makes ext4
                // flush it (auto_da_alloc), as if it were synced.
                let _ = std::fs::remove_file(&image_path);
                std::fs::write(&image_path, &image).unwrap();
                let got = contents(&image_path, writable);
                let ok = match (&got, done, flight) {
                    // Nothing committed yet: an unopenable file is fine.
                    (None, None, _) => !durable,
                    (None, Some(_), _) => false,
                    (Some(m), _, Some(f)) if durable => *m == f.model,
                    (Some(m), done, flight) => {
                        done.is_some_and(|c| *m == c.model) || flight.is_some_and(|c| *m == c.model)
                    }
                };
                if !ok {
                    tally.violations.push(format!(
                        "seed {seed:#x}, crash after op {point} of {}, state {n} \
                         ({} bytes), {}: {}",
                        run.ops.len(),
                        image.len(),
                        if writable { "writable" } else { "read-only" },
                        match got {
                            None => "does not open".to_string(),
                            Some(m) => format!("holds {:?}", summary(&m)),
                        }
                    ));
                }
            }
        }
    }
    for v in live_readers::check(&run.ops, &run.readers, &mut tally.readers) {
        tally
            .violations
            .push(format!("seed {seed:#x}, readers: {v}"));
    }
}

fn summary(m: &Model) -> Vec<(&str, usize)> {
    m.iter().map(|(k, v)| (k.as_str(), v.len())).collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
// The counts of a run are its result (BENCHMARKS.md, "Crash simulation").
#[allow(clippy::print_stderr)]
fn every_crash_state_holds_a_whole_commit() {
    let workloads = env_u64("ZMAP_CRASH_WORKLOADS", 40);
    let seed = env_u64("ZMAP_CRASH_SEED", 0x5eed);
    let dir = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    let started = std::time::Instant::now();
    for w in 0..workloads {
        check_workload(
            seed.wrapping_mul(1_000_003).wrapping_add(w),
            dir.path(),
            &mut tally,
        );
        let _ = std::fs::remove_file(dir.path().join("w.gnz"));
    }
    let r = &tally.readers;
    eprintln!(
        "crash simulation: {} workloads, {} crash points, {} crash states (each opened \
         read-only and writable); readers: {} opened ({} in the middle of a step), {} closed, \
         {} died, {} reads checked ({} refused where a header grew over them), {} writes and \
         length changes checked against {} live snapshots ({} header writes over one), {} slot \
         listings; {} violations, {:.1} s",
        tally.workloads,
        tally.crash_points,
        tally.states,
        r.opened,
        r.opened_mid_step,
        r.closed,
        r.died,
        r.reads,
        r.stale_reads,
        r.guarded_ops,
        r.guarded_pairs,
        r.header_overwrites,
        r.slot_checks,
        tally.violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        tally.violations.is_empty(),
        "{} violations, first: {:#?}",
        tally.violations.len(),
        &tally.violations[..tally.violations.len().min(5)]
    );
}

/// A new store at `path` on a recording storage, and its log.
fn recorded(path: &Path) -> (GnzStore<Recording>, Arc<Mutex<Vec<Op>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let wrap = |file| Recording::new(file, Some(log.clone()));
    let create = OpenOptions {
        create: true,
        noclobber: false,
        writable: true,
    };
    let store = GnzStore::open_on(path.to_path_buf(), create, &wrap).unwrap();
    (store, log)
}

/// Found by the readers' simulation (seed 0x126d717d7a8a of the long run):
/// a header padded while a reader was open stays at offset 0 after the
/// reader leaves; compaction must not lay objects over its tail before its
/// first commit is durable (a crash there left no valid header).
#[test]
fn compaction_keeps_a_padded_header_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.gnz");
    let (store, log) = recorded(&path);
    let wrap = |file| Recording::new(file, Some(log.clone()));
    for k in KEYS {
        store.write_at(&key(k), 0, &[7; 100]).unwrap();
    }
    store.flush().unwrap();
    let read_only = OpenOptions {
        create: false,
        noclobber: false,
        writable: false,
    };
    let reader = GnzStore::open_on(path.clone(), read_only, &wrap).unwrap();
    for k in &KEYS[..5] {
        store.remove(&key(k)).unwrap();
    }
    store.flush().unwrap();
    Box::new(reader).close(false).unwrap();
    let padded = match log.lock().unwrap().iter().rev().find_map(|op| match op {
        Op::Write { offset: 0, data } => Some(data.len() as u64),
        _ => None,
    }) {
        Some(len) => len,
        None => panic!("no header written"),
    };
    let start = log_len(&log);
    store.compact().unwrap();
    let ops = log.lock().unwrap()[start..].to_vec();
    // Up to its first commit record, nothing may touch the header at 0.
    for op in &ops {
        if let Op::Write { offset, data } = op {
            if is_record(data) {
                break;
            }
            assert!(
                *offset >= padded,
                "compaction wrote at {offset}, inside the header at 0 ({padded} bytes)"
            );
        }
    }
    Box::new(store).close(false).unwrap();
}

/// A new dataset's first commit writes its header once: at 0, behind an
/// undo record of the empty header it replaces (DESIGN.md, "Commit"); a
/// commit over objects with bytes writes a copy of its header first. The
/// bytes of the first stage, held until that commit, are never written
/// where the header took their place (DESIGN.md, "Staging").
#[test]
fn a_first_commit_writes_its_header_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("first.gnz");
    let (store, log) = recorded(&path);
    let names: Vec<String> = (0..2000).map(|i| format!("/g/v{}/c.{i}", i % 10)).collect();
    for name in &names {
        store.write_at(&key(name), 0, &[3; 100]).unwrap();
    }
    // What each commit wrote: its record (a write ending in a trailer)
    // and its headers at 0.
    let commit = |store: &GnzStore<Recording>, start: usize| {
        store.flush().unwrap();
        let ops = log.lock().unwrap()[start..].to_vec();
        let tail = |data: &[u8]| data.len() >= 32 && data[data.len() - 32..].starts_with(b"GNZ1");
        let records: Vec<Vec<u8>> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write { data, .. } if tail(data) => Some(data.clone()),
                _ => None,
            })
            .collect();
        let headers: Vec<usize> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write { offset: 0, data } => Some(data.len()),
                _ => None,
            })
            .collect();
        (records, headers)
    };
    let (records, headers) = commit(&store, log_len(&log));
    // The first full stage was held, and the header grew over it: no
    // write but the header's ever reached its place (from the first page
    // on; the held stage is at least half of STAGE_MAX).
    let first_data_write = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|op| match op {
            Op::Write { offset, .. } if *offset > 0 => Some(*offset),
            _ => None,
        })
        .min()
        .unwrap();
    assert!(
        first_data_write >= 4096 + STAGE_MAX / 2,
        "data written at {first_data_write}"
    );
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(&record[record.len() - 32..][..8], UNDO_MAGIC);
    assert!(record.len() < 1024, "undo record of {} bytes", record.len());
    assert_eq!(headers.len(), 1);
    assert!(headers[0] > 100_000, "header of {} bytes", headers[0]);
    // Once objects with bytes are committed, a commit's record is a copy
    // of its header.
    store.write_at(&key("/g/v0/extra"), 0, &[4; 10]).unwrap();
    let (records, headers) = commit(&store, log_len(&log));
    assert_eq!(records.len(), 1);
    assert!(is_record(&records[0]));
    assert_eq!(records[0].len() as u64, headers[0] as u64 - 8 + TRAILER_LEN);
    // Reopened: every object is there.
    Box::new(store).close(false).unwrap();
    let read_only = OpenOptions {
        create: false,
        noclobber: false,
        writable: false,
    };
    let store = GnzStore::open_on(path, read_only, &|f| Recording::new(f, None)).unwrap();
    let mut buf = [0u8; 100];
    for name in &names {
        store.read_at(&key(name), 0, &mut buf).unwrap();
        assert_eq!(buf, [3; 100]);
    }
}

/// The write-outs after a held stage, and after a commit, start short and
/// double up to a full stage: the write-behind worker, idle until then,
/// gets bytes to write soon (DESIGN.md, "Staging").
#[test]
fn write_outs_start_short_and_double() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.gnz");
    let (store, log) = recorded(&path);
    // The sizes of the writes (not at 0) of `more_than` bytes or more
    // since `start`, in the order the file saw them.
    let data_writes = |start: usize, more_than: usize| -> Vec<u64> {
        log.lock().unwrap()[start..]
            .iter()
            .filter_map(|op| match op {
                Op::Write { offset, data } if *offset > 0 && data.len() > more_than => {
                    Some(data.len() as u64)
                }
                _ => None,
            })
            .collect()
    };
    let ramp = |sizes: &[u64]| {
        assert!(
            sizes[0] <= STAGE_MAX / 4,
            "a first write-out of {}",
            sizes[0]
        );
        let mut limit = FIRST_BEHIND;
        for (i, &size) in sizes.iter().take(5).enumerate() {
            assert!(
                size <= limit && size > limit / 2,
                "write-out {i}: {size} bytes, the stage's limit {limit} ({sizes:?})"
            );
            limit = (limit * 2).min(STAGE_MAX);
        }
    };
    let mut n = 0;
    let mut write = |count: usize| {
        for _ in 0..count {
            store
                .write_at(&key(&format!("/g/v{}/c.{n}", n % 7)), 0, &[5; 100])
                .unwrap();
            n += 1;
        }
    };
    // A new dataset: the first stage is held, the ones after it ramp up.
    write(3000);
    store.flush().unwrap();
    let first = data_writes(0, 0);
    ramp(&first);
    assert!(first.iter().any(|&s| s > STAGE_MAX / 2), "{first:?}");
    // After a commit the worker is idle again: the ramp starts over (new
    // objects first fill the space the commit freed, each written
    // directly: not write-outs).
    let start = log_len(&log);
    write(6000);
    store.flush().unwrap();
    ramp(&data_writes(start, 100));
}

/// A commit leaves no undo record at the end of the file, even where the
/// record ended on a page boundary and the cut kept it: a header at 0
/// damaged later would be "recovered" to the header before that commit.
#[test]
fn no_undo_record_is_left_at_the_end_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Commits of one object of `n` bytes over a committed header of one
    // empty object named with `pad` letters; what the second commit's
    // record write was (offset, length), and the file's last 32 bytes.
    let trial = |pad: usize, n: usize| {
        let path = dir.path().join(format!("tail-{pad}-{n}.gnz"));
        let (store, log) = recorded(&path);
        let empty = format!("/{}", "e".repeat(pad + 1));
        store.define(&key(&empty)).unwrap();
        store.flush().unwrap();
        let start = log_len(&log);
        store.write_at(&key("/data"), 0, &vec![5u8; n]).unwrap();
        store.flush().unwrap();
        let record = log.lock().unwrap()[start..]
            .iter()
            .find_map(|op| match op {
                Op::Write { offset, data }
                    if data.len() >= 32 && data[data.len() - 32..].starts_with(UNDO_MAGIC) =>
                {
                    Some((*offset, data.len() as u64))
                }
                _ => None,
            })
            .expect("an undo record");
        Box::new(store).close(false).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let tail = bytes[bytes.len() - 32..].to_vec();
        std::fs::remove_file(&path).unwrap();
        (record, tail)
    };
    let mut found = false;
    for pad in 0..16 {
        let n0 = 2048;
        let ((at, len), _) = trial(pad, n0);
        if (at + len) % 8 != 0 {
            continue;
        }
        let d = (4096 - (at + len) % 4096) % 4096;
        let ((at, len), tail) = trial(pad, n0 + d as usize);
        if (at + len) % 4096 == 0 {
            assert!(
                !tail.starts_with(UNDO_MAGIC),
                "pad {pad}: undo record at the end"
            );
            found = true;
            break;
        }
    }
    assert!(found, "no commit whose undo record ends on a page boundary");
}
