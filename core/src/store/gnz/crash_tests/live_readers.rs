//! Readers in the crash simulation (DESIGN.md, "Reader protocol").
//!
//! Read-only maps of the workload's file, each a real reader with its own
//! open file description, hence its own generation slot, are opened and
//! closed at random between the writer's steps and in the middle of them:
//! the writer's storage hook runs them after an operation (between a
//! commit's steps, between compaction rounds). Some close, some die: their
//! locks go only with their file, as when the kernel closes the file of a
//! killed process. (Dropping a map without closing it is the same code as
//! closing it.)
//!
//! During the run: after every step and every such action, each live
//! reader reads all of its objects (whole, and from the middle), and must
//! read its snapshot — the last completed commit when it opened, or the
//! commit in flight once that one is found; and the generation slots held
//! on the file must be exactly the live readers' generations.
//!
//! After the run, `check` replays the log: at every write and length change
//! no byte that a live reader's snapshot references is touched (its
//! objects' extents; the header at offset 0 belongs to each new commit),
//! except by a header at offset 0 that grew over them, the known limit
//! (DESIGN.md, "Locks"); a read is refused with `NC_EACCESS` only where
//! such a header reached.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::super::format::MAGIC;
use super::super::index_build::build;
use super::super::lock;
use super::super::recovery;
use super::super::storage::{Hook, Op, Recording};
use super::super::store::GnzStore;
use super::{apply, key, Model, Rng, KEYS};
use crate::error::Error;
use crate::store::{OpenOptions, Store};

/// At most this many readers open at once.
const MAX_LIVE: usize = 4;

#[derive(Clone, Copy, Debug)]
enum Action {
    Open,
    Close(usize),
    Die(usize),
}

impl Action {
    fn random(rng: &mut Rng) -> Action {
        match rng.below(8) {
            0..=4 => Action::Open,
            5 | 6 => Action::Close(rng.next() as usize),
            _ => Action::Die(rng.next() as usize),
        }
    }
}

/// An action due after the `skip + 1`-th operation of the step that an
/// opener may follow: a write past offset 0 or a sync (the header write at
/// 0 and every length change run under the writer's exclusive header lock,
/// which an opener would wait for). A commit has 2 to 5 such operations.
struct Trigger {
    skip: usize,
    action: Action,
}

struct Live {
    id: usize,
    store: GnzStore<Recording>,
    stand_in: Arc<OnceLock<File>>,
    /// Its snapshot, as the workload's model has it.
    expected: Model,
    /// Past the last byte of its objects: a read past the file's end
    /// would fault (SIGBUS) instead of failing the check.
    end: u64,
}

/// One reader's life, in positions of the log.
pub(super) struct Life {
    /// Where its `Op::Map` is.
    map_at: usize,
    /// The log's length when it closed or died.
    gone_at: usize,
    generation: u64,
}

enum Outcome {
    Same,
    Differs(String),
    Stale,
    Failed(String),
}

/// A read by reader `reader` of `key` from `start` (`len` bytes), after the
/// first `at` operations of the log.
struct Read {
    at: usize,
    reader: usize,
    key: &'static str,
    start: u64,
    len: u64,
    outcome: Outcome,
}

/// Counts of the readers' checks.
#[derive(Default, Debug)]
pub(super) struct Counts {
    pub opened: usize,
    /// Of those, opened in the middle of a writer's step.
    pub opened_mid_step: usize,
    pub closed: usize,
    pub died: usize,
    /// Reads compared with the snapshot.
    pub reads: usize,
    /// Reads refused where a header grew over the snapshot (allowed).
    pub stale_reads: usize,
    /// Writes and length changes made while readers were open.
    pub guarded_ops: usize,
    /// Those, times the readers open at each.
    pub guarded_pairs: usize,
    /// Header writes at 0 over a live snapshot's extents (allowed).
    pub header_overwrites: usize,
    /// Listings of the generation slots compared with the live readers.
    pub slot_checks: usize,
}

/// What the readers of one workload did and found.
#[derive(Default)]
pub(super) struct Outcomes {
    lives: Vec<Life>,
    reads: Vec<Read>,
    counts: Counts,
    pub violations: Vec<String>,
}

/// State shared by the workload and the writer's hook.
struct Shared {
    path: PathBuf,
    log: Arc<Mutex<Vec<Op>>>,
    /// An open of the file that holds no lock: it lists the others'.
    probe: Option<File>,
    trigger: Option<Trigger>,
    /// The last completed commit: its generation and dataset.
    committed: (u64, Model),
    /// The dataset of the commit the current step may make.
    flight: Option<Model>,
    live: Vec<Live>,
    out: Outcomes,
}

/// The readers of one workload.
pub(super) struct Readers {
    shared: Arc<Mutex<Shared>>,
}

impl Readers {
    pub fn new(path: &Path, log: Arc<Mutex<Vec<Op>>>) -> Readers {
        let shared = Shared {
            path: path.to_path_buf(),
            log,
            probe: None,
            trigger: None,
            committed: (0, Model::new()),
            flight: None,
            live: Vec::new(),
            out: Outcomes::default(),
        };
        Readers {
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For the writer's storage: runs the due action.
    pub fn hook(&self) -> Hook {
        let shared = self.shared.clone();
        Arc::new(move |op: &Op| {
            shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .after_op(op)
        })
    }

    /// Before a writer step: `flight` is the dataset of the commit it may
    /// make; sometimes an action is due in its middle.
    pub fn before_step(&self, rng: &mut Rng, flight: Option<&Model>) {
        let mut s = self.lock();
        s.flight = flight.cloned();
        s.trigger = (rng.below(2) == 0).then(|| Trigger {
            skip: rng.below(5),
            action: Action::random(rng),
        });
    }

    /// After a writer step (`committed`: the commit it completed last, if
    /// it committed): readers open, close and die at random, then read.
    pub fn after_step(&self, rng: &mut Rng, committed: Option<(u64, Model)>) {
        let mut s = self.lock();
        s.trigger = None;
        s.flight = None;
        if let Some(c) = committed {
            s.committed = c;
        }
        if rng.below(4) == 0 {
            s.act(Action::Open, false);
        }
        if rng.below(7) == 0 {
            s.act(Action::Close(rng.next() as usize), false);
        }
        if rng.below(14) == 0 {
            s.act(Action::Die(rng.next() as usize), false);
        }
        s.read_all();
    }

    /// Closes (or kills) the readers still open.
    pub fn finish(self, rng: &mut Rng) -> Outcomes {
        let mut s = self.lock();
        while !s.live.is_empty() {
            let action = if rng.below(3) == 0 {
                Action::Die(0)
            } else {
                Action::Close(0)
            };
            s.act(action, false);
        }
        std::mem::take(&mut s.out)
    }
}

/// The generation a store reads or writes (from its statistics).
pub(super) fn generation(store: &dyn Store) -> u64 {
    store
        .stats()
        .into_iter()
        .find(|(k, _)| k == "gnz generation")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Shared {
    fn log_len(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn after_op(&mut self, op: &Op) {
        let opener_may_run = match op {
            Op::Write { offset, .. } => *offset != 0,
            Op::Sync => true,
            Op::SetLen(_) | Op::Map => false,
        };
        let Some(t) = self.trigger.as_mut().filter(|_| opener_may_run) else {
            return;
        };
        if t.skip > 0 {
            t.skip -= 1;
            return;
        }
        let action = t.action;
        self.trigger = None;
        self.act(action, true);
        self.read_all();
    }

    fn act(&mut self, action: Action, mid_step: bool) {
        match action {
            Action::Open if self.live.len() < MAX_LIVE => self.open(mid_step),
            Action::Open => return,
            Action::Close(_) | Action::Die(_) if self.live.is_empty() => return,
            Action::Close(i) => {
                let live = self.live.remove(i % self.live.len());
                let result = Box::new(live.store).close(false);
                if let Err(e) = result {
                    self.out
                        .violations
                        .push(format!("closing reader {} failed: {e}", live.id));
                }
                self.out.lives[live.id].gone_at = self.log_len();
                self.out.counts.closed += 1;
            }
            Action::Die(i) => {
                let live = self.live.remove(i % self.live.len());
                // Its explicit unlocks go elsewhere; dropping the map and
                // then the file drops its locks (the kernel does this when
                // it closes the files of a process that died).
                let _ = live.stand_in.set(File::open("/dev/null").unwrap());
                drop(live.store);
                self.out.lives[live.id].gone_at = self.log_len();
                self.out.counts.died += 1;
            }
        }
        self.check_slots(action);
    }

    fn open(&mut self, mid_step: bool) {
        let before = self.log_len();
        let stand_in = Arc::new(OnceLock::new());
        let wrap = |f| Recording::new(f, Some(self.log.clone())).with_stand_in(stand_in.clone());
        let options = OpenOptions {
            create: false,
            noclobber: false,
            writable: false,
        };
        let store = match GnzStore::open_on(self.path.clone(), options, &wrap) {
            Ok(store) => store,
            Err(e) => {
                self.out
                    .violations
                    .push(format!("a reader failed to open after op {before}: {e}"));
                return;
            }
        };
        let g = generation(&store);
        let expected = if g == self.committed.0 {
            self.committed.1.clone()
        } else if let (true, Some(flight)) = (g > self.committed.0, &self.flight) {
            flight.clone()
        } else {
            self.out.violations.push(format!(
                "a reader opened after op {before} reads generation {g}, the last commit \
                 is {} and none {}",
                self.committed.0,
                if self.flight.is_some() {
                    "may follow"
                } else {
                    "is in flight"
                }
            ));
            return;
        };
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let map_at = (before..log.len()).find(|&i| log[i] == Op::Map);
        drop(log);
        let Some(map_at) = map_at else {
            self.out
                .violations
                .push(format!("a reader opened after op {before} mapped nothing"));
            return;
        };
        // The file has not changed since the reader read its header.
        let end = match File::open(&self.path)
            .map_err(Error::from)
            .and_then(|f| snapshot_of(&f))
        {
            Ok((_, snapshot)) => snapshot.end,
            Err(e) => {
                self.out
                    .violations
                    .push(format!("after op {before}: the file does not open: {e}"));
                return;
            }
        };
        let id = self.out.lives.len();
        self.out.lives.push(Life {
            map_at,
            gone_at: usize::MAX,
            generation: g,
        });
        self.live.push(Live {
            id,
            store,
            stand_in,
            expected,
            end,
        });
        self.out.counts.opened += 1;
        self.out.counts.opened_mid_step += usize::from(mid_step);
    }

    /// The generation slots held on the file are the live readers'.
    fn check_slots(&mut self, after: Action) {
        if self.probe.is_none() {
            self.probe = File::open(&self.path).ok();
        }
        let Some(probe) = &self.probe else {
            self.out.violations.push("cannot open the file".into());
            return;
        };
        let mut want: Vec<u64> = self
            .live
            .iter()
            .map(|l| self.out.lives[l.id].generation)
            .collect();
        want.sort_unstable();
        want.dedup();
        let slots = lock::pinned_slots(probe).map(|(mut slots, unknown)| {
            slots.sort_unstable();
            (slots, unknown)
        });
        let present = lock::readers_present(probe).ok();
        self.out.counts.slot_checks += 1;
        let ok = match &slots {
            Ok((slots, false)) => *slots == want && present == Some(!want.is_empty()),
            _ => false,
        };
        if !ok {
            self.out.violations.push(format!(
                "after {after:?} at op {}: slots held {slots:?} (readers byte {present:?}), \
                 live readers' generations {want:?}",
                self.log_len()
            ));
        }
    }

    /// Every live reader reads each object of its snapshot, whole and from
    /// its middle, after checking every key's length (absent ones absent).
    fn read_all(&mut self) {
        let at = self.log_len();
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        for live in &self.live {
            if size < live.end {
                self.out.violations.push(format!(
                    "after op {at}: the file is cut to {size} bytes, below the end {} of \
                     live reader {}'s objects",
                    live.end, live.id
                ));
                continue;
            }
            for &k in KEYS {
                let want = live.expected.get(k);
                let got = live.store.len(&key(k));
                let n = match (want, got) {
                    (None, Err(Error::Empty)) => continue,
                    (Some(w), Ok(n)) if n == w.len() as u64 => n,
                    (w, got) => {
                        self.out.reads.push(Read {
                            at,
                            reader: live.id,
                            key: k,
                            start: 0,
                            len: 0,
                            outcome: Outcome::Differs(format!(
                                "length {:?}, expected {:?}",
                                got.map_err(|e| e.to_string()),
                                w.map(Vec::len)
                            )),
                        });
                        continue;
                    }
                };
                let w = &live.expected[k];
                // Never an empty read: `Store::read_at` takes none (its length
                // was checked).
                let starts: &[u64] = match n {
                    0 => &[],
                    1 => &[0],
                    _ => &[0, n / 2],
                };
                for &start in starts {
                    let mut buf = vec![0u8; (n - start) as usize];
                    let outcome = match live.store.read_at(&key(k), start, &mut buf) {
                        Ok(()) if buf[..] == w[start as usize..] => Outcome::Same,
                        Ok(()) => {
                            let first = buf
                                .iter()
                                .zip(&w[start as usize..])
                                .position(|(a, b)| a != b)
                                .unwrap_or(0);
                            Outcome::Differs(format!(
                                "byte {} is {:#04x}, the snapshot's {:#04x}",
                                start as usize + first,
                                buf[first],
                                w[start as usize + first]
                            ))
                        }
                        Err(Error::Stale) => Outcome::Stale,
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                    self.out.reads.push(Read {
                        at,
                        reader: live.id,
                        key: k,
                        start,
                        len: n - start,
                        outcome,
                    });
                }
            }
        }
    }
}

/// A reader's snapshot as the log has it at its `Op::Map`: where each
/// object lies (offset, length).
struct Snapshot {
    extents: BTreeMap<String, (u64, u64)>,
    /// Past the last byte of its objects.
    end: u64,
    /// How far headers written at offset 0 since reached.
    header_reach: u64,
}

/// Replays `ops` with the readers' lives: no write or length change touches
/// what a live reader's snapshot references (but a header grown over it),
/// and each read gave the snapshot's bytes or, where such a header reached,
/// `NC_EACCESS`. Returns the violations; adds to `counts`.
pub(super) fn check(ops: &[Op], out: &Outcomes, counts: &mut Counts) -> Vec<String> {
    let mut violations = out.violations.clone();
    let mut image = Vec::new();
    let mut snapshots: Vec<Option<Snapshot>> = out.lives.iter().map(|_| None).collect();
    let mut reads = out.reads.iter().peekable();
    for (i, op) in ops.iter().enumerate() {
        while let Some(read) = reads.next_if(|r| r.at <= i) {
            judge(read, &snapshots, counts, &mut violations);
        }
        let live: Vec<usize> = (0..out.lives.len())
            .filter(|&r| out.lives[r].map_at < i && i < out.lives[r].gone_at)
            .collect();
        match op {
            Op::Map => {
                let Some(r) = out.lives.iter().position(|l| l.map_at == i) else {
                    continue;
                };
                match snapshot_of(&image[..]) {
                    Ok((generation, snapshot)) => {
                        if generation != out.lives[r].generation {
                            violations.push(format!(
                                "reader {r} reads generation {}, the file at its map {generation}",
                                out.lives[r].generation
                            ));
                        }
                        snapshots[r] = Some(snapshot);
                    }
                    Err(e) => violations.push(format!("op {i}: the file does not open: {e}")),
                }
            }
            Op::Write { offset, data } if !live.is_empty() => {
                let (s, e) = (*offset, offset + data.len() as u64);
                let header = *offset == 0 && data.starts_with(MAGIC);
                counts.guarded_ops += 1;
                for &r in &live {
                    counts.guarded_pairs += 1;
                    let Some(snap) = snapshots[r].as_mut() else {
                        continue;
                    };
                    let hit = snap.extents.iter().find(|(_, &(o, n))| o < e && s < o + n);
                    match hit {
                        Some(_) if header => counts.header_overwrites += 1,
                        Some((k, &(o, n))) => violations.push(format!(
                            "op {i} writes [{s}, {e}) over {k} [{o}, {}) of live reader {r} \
                             (generation {})",
                            o + n,
                            out.lives[r].generation
                        )),
                        None => {}
                    }
                    if header {
                        snap.header_reach = snap.header_reach.max(e);
                    }
                }
            }
            Op::SetLen(len) if !live.is_empty() => {
                counts.guarded_ops += 1;
                for &r in &live {
                    counts.guarded_pairs += 1;
                    if let Some(snap) = &snapshots[r] {
                        if *len < snap.end {
                            violations.push(format!(
                                "op {i} cuts the file to {len}, below the end {} of live \
                                 reader {r}'s objects (generation {})",
                                snap.end, out.lives[r].generation
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        apply(&mut image, op);
    }
    for read in reads {
        judge(read, &snapshots, counts, &mut violations);
    }
    counts.opened += out.counts.opened;
    counts.opened_mid_step += out.counts.opened_mid_step;
    counts.closed += out.counts.closed;
    counts.died += out.counts.died;
    counts.slot_checks += out.counts.slot_checks;
    violations
}

/// The generation and the extents of the commit a reader of `image` sees.
fn snapshot_of(image: &(impl recovery::Source + ?Sized)) -> crate::error::Result<(u64, Snapshot)> {
    let loaded = recovery::load_with(image, build)?;
    let extents: BTreeMap<String, (u64, u64)> = loaded
        .header
        .objects
        .iter()
        .map(|(k, o)| (k.to_string(), (o.offset, o.len)))
        .collect();
    let end = extents.values().map(|&(o, n)| o + n).max().unwrap_or(0);
    Ok((
        loaded.header.generation,
        Snapshot {
            extents,
            end,
            header_reach: 0,
        },
    ))
}

fn judge(read: &Read, snapshots: &[Option<Snapshot>], counts: &mut Counts, out: &mut Vec<String>) {
    counts.reads += 1;
    let why = match &read.outcome {
        Outcome::Same => return,
        Outcome::Stale => {
            // Refused: only if a header written since its map reaches the
            // first byte read.
            let reached = snapshots[read.reader].as_ref().is_some_and(|snap| {
                snap.extents
                    .get(read.key)
                    .is_some_and(|&(o, _)| o + read.start < snap.header_reach)
            });
            if reached {
                counts.stale_reads += 1;
                return;
            }
            "NC_EACCESS, though no header written since reaches it".to_string()
        }
        Outcome::Differs(why) => why.clone(),
        Outcome::Failed(why) => format!("failed: {why}"),
    };
    out.push(format!(
        "after op {}: reader {} reading {} from {} ({} bytes): {why}",
        read.at, read.reader, read.key, read.start, read.len
    ));
}
