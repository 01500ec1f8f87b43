//! `zmap cp` (any backend to any backend) and `zmap compact`.
//!
//! An interrupted copy must never leave a destination that looks complete.
//! The choice made here is *order*, not a temporary destination (which S3
//! cannot rename): objects are copied in three phases, each made durable
//! (`flush`) before the next begins:
//!   1. data objects (chunks: every key whose name does not start with '.'
//!      and is not `zarr.json`), in parallel;
//!   2. the metadata objects below the top (`/g/.zgroup`, `/v/.zarray`,
//!      `/v/zarr.json`, …), in parallel;
//!   3. the dataset markers at the top (`/.zattrs`, `/.zmetadata`, `/.nczarr`,
//!      `/.zarray`, `/.zgroup`, `/zarr.json`), one by one, last.
//!
//! Until phase 3 the destination has no marker at its top: Zarr and NCZarr
//! readers refuse to open it, and libzmap's `create` refuses to empty it
//! (`NC_EEXIST`), so it cannot be mistaken for a dataset. `--resume` takes
//! it up again: it first removes the top markers (a resumed destination
//! must not look complete while it changes), removes objects the source
//! lacks, skips objects whose bytes already equal the source's and copies
//! the rest in the same three phases. A destination without markers that
//! holds objects the source lacks is not an interrupted copy of it, and
//! `--resume` refuses it untouched.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use zmap_core::store::is_dataset_marker;
use zmap_core::{Error, Impl, Key, Map};

use crate::dataset::{self, Target};
use crate::failure::{At, Failure};
use crate::inspect::CHUNK;
use crate::progress::Progress;

pub const LONG_ABOUT: &str = "\
Copy a dataset from any backend to any backend (FILE, GNZ, S3, memory).

DST is created; an existing dataset there is replaced. A progress bar (bytes
and objects) is shown when stderr is a terminal.

An interrupted copy never leaves a destination that looks complete: data
objects are copied first, then the metadata objects below the top, and the
dataset markers at the top (.zgroup, .zarray, .zattrs, .zmetadata, .nczarr,
zarr.json) last, each phase flushed before the next. A destination without
its markers is refused by Zarr readers and by 'zmap cp' without --resume;
'zmap cp --resume SRC DST' completes it, copying only what differs.";

pub struct CopyOptions {
    pub jobs: usize,
    pub resume: bool,
    pub quiet: bool,
}

/// Which phase an object is copied in (see the module doc).
fn phase_of(key: &Key) -> usize {
    let name = key.name();
    let metadata = name.starts_with('.') || name == "zarr.json";
    let top = key.parent().is_some_and(|p| p.is_root());
    match (metadata, top && is_dataset_marker(name)) {
        (_, true) => 2,
        (true, false) => 1,
        (false, false) => 0,
    }
}

/// Order of the top markers: the ones Zarr readers look for first go last.
fn marker_rank(key: &Key) -> usize {
    [
        ".zattrs",
        ".zmetadata",
        ".nczarr",
        ".zarray",
        ".zgroup",
        "zarr.json",
    ]
    .iter()
    .position(|m| *m == key.name())
    .unwrap_or(0)
}

pub fn cp(src: &Target, dst: &Target, options: &CopyOptions) -> Result<(), Failure> {
    refuse_overlap(src, dst)?;
    let smap = src.open_read()?;
    let objects = dataset::objects(&smap, src, &Key::root())?;
    let created = if options.resume {
        match dst.open_write() {
            Err(Failure::Nc {
                error: Error::Empty,
                ..
            }) => dst.create(false),
            opened => opened,
        }
    } else {
        dst.create(false)
    };
    let dmap = match created {
        Err(Failure::Nc {
            context,
            error: Error::Exists,
        }) => {
            return Err(Failure::nc(
                format!(
                    "{context} (not empty and not a dataset: an interrupted copy? \
                     use 'zmap cp --resume')"
                ),
                Error::Exists,
            ))
        }
        other => other?,
    };
    let result = copy_all(&smap, src, &dmap, dst, objects, options);
    if result.is_err() && !options.quiet {
        eprintln!(
            "zmap: {dst} is incomplete (no dataset markers at its top); \
             'zmap cp --resume' completes it"
        );
    }
    let closed = dmap.close(false).at(dst);
    let _ = smap.close(false);
    result.and(closed)
}

fn copy_all(
    smap: &Map,
    src: &Target,
    dmap: &Map,
    dst: &Target,
    objects: Vec<(Key, u64)>,
    options: &CopyOptions,
) -> Result<(), Failure> {
    let existing = if options.resume {
        prepare_resume(src, dmap, dst, &objects)?
    } else {
        HashMap::new()
    };
    let total: u64 = objects.iter().map(|(_, len)| len).sum();
    let count = objects.len();
    let mut phases: [Vec<(Key, u64)>; 3] = Default::default();
    for object in objects {
        phases[phase_of(&object.0)].push(object);
    }
    phases[2].sort_by_key(|(key, _)| marker_rank(key));

    let progress = Progress::new("copied", total, count as u64, options.quiet);
    let job = Job {
        smap,
        src,
        dmap,
        dst,
        existing: &existing,
        progress: &progress,
    };
    let mut skipped = 0usize;
    for (phase, items) in phases.iter().enumerate() {
        let jobs = if phase == 2 { 1 } else { options.jobs };
        match job.run(items, jobs) {
            Ok(n) => skipped += n,
            Err(failure) => {
                progress.abandon();
                return Err(failure);
            }
        }
        if let Err(e) = dmap.flush() {
            progress.abandon();
            return Err(Failure::nc(dst, e));
        }
    }
    let note = if options.resume {
        format!(" ({skipped} already there)")
    } else {
        String::new()
    };
    progress.finish(total, &note);
    Ok(())
}

/// Makes a destination being resumed unmistakably incomplete (top markers
/// removed and flushed), removes what the source does not have, and gives
/// the lengths of the objects that stay. A destination without markers that
/// holds an object the source lacks is refused (`NC_EEXIST`) untouched: it
/// is not an interrupted copy of this source.
fn prepare_resume(
    src: &Target,
    dmap: &Map,
    dst: &Target,
    objects: &[(Key, u64)],
) -> Result<HashMap<Key<'static>, u64>, Failure> {
    let present = dataset::objects(dmap, dst, &Key::root())?;
    let wanted: HashMap<&Key, u64> = objects.iter().map(|(k, l)| (k, *l)).collect();
    let complete = present.iter().any(|(key, _)| phase_of(key) == 2);
    if !complete {
        // Not a dataset: only an interrupted copy of this source may be
        // taken over, and it holds nothing the source lacks.
        if let Some((stray, _)) = present.iter().find(|(key, _)| !wanted.contains_key(key)) {
            return Err(Failure::nc(
                format!(
                    "{} (not in {src}: {dst} is neither a dataset nor an interrupted copy of it)",
                    dst.key_context(stray)
                ),
                Error::Exists,
            ));
        }
    }
    for (key, _) in &present {
        if phase_of(key) == 2 {
            dmap.remove(key).at(dst.key_context(key))?;
        }
    }
    dmap.flush().at(dst)?;
    let mut kept = HashMap::new();
    for (key, len) in present {
        if phase_of(&key) == 2 {
            continue;
        }
        if wanted.contains_key(&key) {
            kept.insert(key, len);
        } else {
            dmap.remove(&key).at(dst.key_context(&key))?;
        }
    }
    Ok(kept)
}

struct Job<'a> {
    smap: &'a Map,
    src: &'a Target,
    dmap: &'a Map,
    dst: &'a Target,
    existing: &'a HashMap<Key<'static>, u64>,
    progress: &'a Progress,
}

impl Job<'_> {
    /// Copies `items` with up to `jobs` threads; the first failure stops
    /// the others. Gives the number of objects left as they were (resume).
    fn run(&self, items: &[(Key, u64)], jobs: usize) -> Result<usize, Failure> {
        let next = AtomicUsize::new(0);
        let skipped = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<Failure>> = Mutex::new(None);
        let worker = || {
            let mut buffers = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((key, len)) = items.get(i) else {
                    break;
                };
                match self.copy_object(key, *len, &mut buffers) {
                    Ok(copied) => {
                        if !copied {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        self.progress.object_done();
                    }
                    Err(f) => {
                        stop.store(true, Ordering::Relaxed);
                        failure
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(f);
                    }
                }
            }
        };
        let threads = jobs.clamp(1, items.len().max(1));
        if threads == 1 {
            worker();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(worker);
                }
            });
        }
        match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(f) => Err(f),
            None => Ok(skipped.into_inner()),
        }
    }

    /// Copies one object; `Ok(false)` when the destination already held
    /// exactly these bytes (resume).
    fn copy_object(
        &self,
        key: &Key,
        len: u64,
        (buf, other): &mut (Vec<u8>, Vec<u8>),
    ) -> Result<bool, Failure> {
        let at_src = || self.src.key_context(key);
        let at_dst = || self.dst.key_context(key);
        let old = self.existing.get(key).copied();
        if old == Some(len) && self.same_bytes(key, len, buf, other)? {
            self.progress.bytes(len);
            return Ok(false);
        }
        if buf.is_empty() {
            buf.resize(CHUNK, 0);
        }
        if len == 0 {
            self.dmap.define(key).at(at_dst())?;
        }
        let mut at = 0u64;
        while at < len {
            let n = ((len - at) as usize).min(buf.len());
            self.smap.read(key, at, &mut buf[..n]).at(at_src())?;
            self.dmap.write(key, at, &buf[..n]).at(at_dst())?;
            self.progress.bytes(n as u64);
            at += n as u64;
        }
        if old.is_some_and(|old| old > len) {
            self.dmap.truncate(key, len).at(at_dst())?;
        }
        Ok(true)
    }

    fn same_bytes(
        &self,
        key: &Key,
        len: u64,
        buf: &mut Vec<u8>,
        other: &mut Vec<u8>,
    ) -> Result<bool, Failure> {
        buf.resize(CHUNK, 0);
        other.resize(CHUNK, 0);
        let mut at = 0u64;
        while at < len {
            let n = ((len - at) as usize).min(CHUNK);
            self.smap
                .read(key, at, &mut buf[..n])
                .at(self.src.key_context(key))?;
            if self.dmap.read(key, at, &mut other[..n]).is_err() || buf[..n] != other[..n] {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }
}

/// Refuses to copy a dataset onto itself, into itself or over a dataset
/// that holds it (creating DST would empty SRC).
fn refuse_overlap(src: &Target, dst: &Target) -> Result<(), Failure> {
    let overlapping = match (src.local_path(), dst.local_path()) {
        (Some(a), Some(b)) => {
            let (a, b) = (resolved(&a), resolved(&b));
            a.starts_with(&b) || b.starts_with(&a)
        }
        _ => src.imp == dst.imp && src.location == dst.location,
    };
    if overlapping {
        return Err(Failure::usage(format!(
            "'{src}' and '{dst}' overlap: the source and destination must be separate datasets"
        )));
    }
    Ok(())
}

/// The absolute path with every existing part's symlinks resolved.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) {
        rest.push(name.to_os_string());
        if let Ok(real) = parent.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        existing = parent;
    }
    absolute
}

/// Compacts a GNZ file in place (the backend's crash-safe rewrite without
/// holes) and reports its size before and after.
pub fn compact(target: &Target) -> Result<(), Failure> {
    if target.imp != Impl::Gnz {
        return Err(Failure::usage(format!(
            "'{target}' is not a GNZ file (compact works on *.gnz, or --backend gnz)"
        )));
    }
    let map = target.open_write()?;
    let result = map.compact().at(target);
    let closed = map.close(false).at(target);
    let (before, after) = result?;
    closed?;
    let saved = before.saturating_sub(after);
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "before: {before} bytes\nafter:  {after} bytes\nsaved:  {saved} bytes\n"
    )
    .and_then(|()| out.flush())
    .map_err(Failure::stdout)
}
