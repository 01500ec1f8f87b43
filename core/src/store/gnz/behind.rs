//! The writer's file, with the stage's write-outs done behind its back
//! (DESIGN.md, "Staging"): a full stage goes to a worker thread, which
//! writes it while the writer fills the next ones.
//!
//! Up to `DEPTH` write-outs wait in a queue, written in the order they
//! were handed over, and every other use of the file waits until the queue
//! is empty (`Behind::file`): the file sees the same operations in the same
//! order as when the writer wrote each stage itself (the crash simulation's
//! log included); only the time of the write-outs overlaps the writer's
//! own work. Creating 10,000 objects of 1 KiB on tmpfs spends more time in
//! the kernel's `pwrite` of the stages than in everything else: with a
//! queue, the writer goes on (to the commit's header serialisation) while
//! the worker catches up.
//!
//! A write that failed stops the worker; the next wait writes the queue
//! itself, so the error surfaces there (at the latest at the commit), as a
//! staged write's always did, and the bytes stay queued until written. The
//! worker starts with the first write-out (small datasets never start one)
//! and ends with the writer. A process forked from the writer's never
//! writes the queue: its copy of it is the parent's, which the parent's
//! worker writes (a late copy could land on space the parent has reused).

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use super::stage::StageBuf;
use super::storage::Storage;
use super::writeback;
use crate::process::Process;
use crate::store::pages::HugePages;

/// Write-outs that may wait in the queue (each a stage of about 1 MiB).
const DEPTH: usize = 3;

/// A queued write-out: a stage's bytes and where they go, or a copy of
/// the file's bytes `[from, from + len)` to `to` (a commit's moves).
#[derive(Clone)]
enum Job {
    Write(Arc<StageBuf>, u64),
    Copy { from: u64, to: u64, len: u64 },
}

impl Job {
    fn run<S: Storage>(&self, file: &S) -> io::Result<()> {
        let (at, len) = match self {
            Job::Write(data, at) => {
                file.write_at(data, *at)?;
                (*at, data.len())
            }
            &Job::Copy { from, to, len } => {
                file.copy_range(from, to, len)?;
                (to, usize::try_from(len).unwrap_or(usize::MAX))
            }
        };
        // The start of their device write.
        writeback::start(file.as_file(), at, len);
        Ok(())
    }

    /// A finished write-out's buffer, emptied for the next stage, if
    /// nobody else holds it.
    fn into_spare(self) -> Option<StageBuf> {
        match self {
            Job::Write(data, _) => Arc::try_unwrap(data).ok().map(|mut buf| {
                buf.clear();
                buf
            }),
            Job::Copy { .. } => None,
        }
    }
}

/// The file, and the write-outs queued for it.
pub(super) struct Behind<S: Storage> {
    file: Arc<S>,
    shared: Arc<Shared>,
    worker: Option<Worker>,
    /// The process the writer belongs to.
    owner: Process,
}

struct Worker {
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread (a forked child has none).
    started_in: Process,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Handed over and not yet written, oldest first.
    jobs: VecDeque<Job>,
    /// The front job failed: the worker leaves the queue to the writer.
    stalled: bool,
    /// Buffers of finished write-outs, for the next stages.
    spares: Vec<StageBuf>,
    /// What the writer let go of, freed by the worker once the queue is
    /// empty (`Behind::discard`).
    trash: Vec<Box<dyn Send>>,
    quit: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Storage> Behind<S> {
    pub fn new(file: S) -> Behind<S> {
        Behind {
            file: Arc::new(file),
            shared: Arc::default(),
            worker: None,
            owner: Process::current(),
        }
    }

    /// True in a process forked from the writer's.
    pub fn forked(&self) -> bool {
        self.owner.is_gone()
    }

    /// The file, once every queued write-out is in it.
    pub fn file(&self) -> io::Result<&S> {
        self.settle()?;
        Ok(&self.file)
    }

    /// The file for what does not depend on the bytes written (locks, the
    /// file's identity), without waiting.
    pub fn as_file(&self) -> &std::fs::File {
        self.file.as_file()
    }

    /// The file to read from (or to ask its length), once every queued
    /// write-out is in it.
    pub fn settled_file(&self) -> io::Result<&std::fs::File> {
        Ok(self.file()?.as_file())
    }

    pub fn write_at(&self, data: &[u8], at: u64) -> io::Result<()> {
        self.file()?.write_at(data, at)
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }

    pub fn zero_range(&self, at: u64, len: u64) -> io::Result<()> {
        self.file()?.zero_range(at, len)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file()?.sync()
    }

    /// An empty buffer for the next stage (one a finished write-out gave
    /// back, when there is one).
    pub fn spare(&self) -> StageBuf {
        lock(&self.shared.queue)
            .spares
            .pop()
            .unwrap_or_else(|| StageBuf::new_in(HugePages))
    }

    /// True if write-outs go to a worker (one was started).
    pub fn has_worker(&self) -> bool {
        self.worker.is_some()
    }

    fn worker_here(&self) -> bool {
        self.worker.is_some() && !self.forked()
    }

    /// Waits until another write-out may be queued (fewer than `DEPTH`
    /// wait); after a failure, writes the queue here first, and returns
    /// the error if that fails too (the bytes stay queued).
    pub fn make_room(&self) -> io::Result<()> {
        self.wait_for(DEPTH - 1)
    }

    /// Queues `data`, to be written at `at` behind the writer's back.
    /// The caller made room first (`make_room`). Without a worker (none
    /// could be started, or a forked process) the next wait writes it.
    pub fn write_behind(&mut self, data: StageBuf, at: u64) {
        self.queue(Job::Write(Arc::new(data), at));
    }

    /// Queues a copy of the file's bytes `[from, from + len)` to `to`
    /// (`Storage::copy_range`), after what is queued; as `write_behind`.
    pub fn copy_behind(&mut self, from: u64, to: u64, len: u64) {
        self.queue(Job::Copy { from, to, len });
    }

    /// Copies the file's bytes `[from, from + len)` to `to` here and now,
    /// once the queue is written, as the worker would (its write-back
    /// started too): for a writer that has no worker.
    pub fn copy_now(&self, from: u64, to: u64, len: u64) -> io::Result<()> {
        Job::Copy { from, to, len }.run(self.file()?)
    }

    /// Frees `what` on the worker once it has written the queue, while
    /// the writer goes on (a closing writer's index: a quarter of a
    /// millisecond per 10,000 objects); here if no worker runs. Freed
    /// before the worker ends, so before `Behind` is dropped.
    pub fn discard(&self, what: Box<dyn Send>) {
        if !self.worker_here() {
            return drop(what);
        }
        lock(&self.shared.queue).trash.push(what);
        self.shared.changed.notify_all();
    }

    fn queue(&mut self, job: Job) {
        if self.worker.is_none() {
            self.worker = Worker::start(Arc::clone(&self.file), Arc::clone(&self.shared));
        }
        let mut queue = lock(&self.shared.queue);
        debug_assert!(queue.jobs.len() < DEPTH, "no room was made");
        queue.jobs.push_back(job);
        self.shared.changed.notify_all();
    }

    /// Waits until every queued write-out is in the file; after a
    /// failure, writes the queue here, and returns the error if that
    /// fails too (the bytes stay queued, for the next wait).
    pub fn settle(&self) -> io::Result<()> {
        self.wait_for(0)
    }

    /// Waits until at most `left` write-outs are queued (or the worker
    /// stopped at a failure, or there is none in this process: then the
    /// whole queue is written here, oldest first).
    fn wait_for(&self, left: usize) -> io::Result<()> {
        let here = self.worker_here();
        let mut queue = lock(&self.shared.queue);
        while here && !queue.stalled && queue.jobs.len() > left {
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
        if here && !queue.stalled {
            return Ok(());
        }
        if self.forked() && !queue.jobs.is_empty() {
            return Err(io::Error::other(
                "a forked process does not write its parent's queued write-outs",
            ));
        }
        // The worker is idle (stalled or absent): the queue is the
        // writer's to write.
        while let Some(job) = queue.jobs.front() {
            job.run(&*self.file)?;
            if let Some(spare) = queue.jobs.pop_front().and_then(Job::into_spare) {
                queue.spares.push(spare);
            }
        }
        queue.stalled = false;
        Ok(())
    }
}

impl Worker {
    /// A worker writing `shared`'s queue to `file`; `None` if no thread
    /// could be started.
    fn start<S: Storage>(file: Arc<S>, shared: Arc<Shared>) -> Option<Worker> {
        let quiet = crate::quiet::is_quiet();
        let thread = thread::Builder::new()
            .name("zmap-gnz-write".into())
            .spawn(move || crate::quiet::inherit(quiet, || work(&*file, &shared)))
            .ok()?;
        Some(Worker {
            thread: Some(thread),
            started_in: Process::current(),
        })
    }
}

/// The worker's loop: the front job written, then removed from the queue
/// (so a wait sees it queued until it is in the file); a failure stops it.
fn work<S: Storage>(file: &S, shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        let idle = queue.jobs.is_empty() || queue.stalled;
        if idle && !queue.trash.is_empty() {
            let trash = std::mem::take(&mut queue.trash);
            drop(queue);
            drop(trash);
            queue = lock(&shared.queue);
            continue;
        }
        if queue.quit {
            return;
        }
        let Some(job) = queue.jobs.front().cloned().filter(|_| !queue.stalled) else {
            queue = shared
                .changed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(queue);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| job.run(file)))
            .unwrap_or_else(|_| Err(io::Error::other("write-behind panicked")));
        // Our copy of the job goes first, so that the queue's is the only
        // holder of a stage's buffer.
        drop(job);
        queue = lock(&shared.queue);
        if outcome.is_ok() {
            if let Some(spare) = queue.jobs.pop_front().and_then(Job::into_spare) {
                queue.spares.push(spare);
            }
        } else {
            queue.stalled = true;
        }
        shared.changed.notify_all();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            if self.started_in.is_gone() {
                // A forked child: the thread is not in this process.
                std::mem::forget(thread);
            } else {
                let _ = thread.join();
            }
        }
    }
}

impl<S: Storage> Drop for Behind<S> {
    fn drop(&mut self) {
        // What was handed over reaches the file before the writer lets go
        // of it (its lock is released after this); a forked child's copy
        // of the queue is the parent's to write.
        if !self.forked() {
            let _ = self.settle();
        }
        lock(&self.shared.queue).quit = true;
        self.shared.changed.notify_all();
        // `worker` drops after this, joining the thread.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file whose next `fail` writes fail.
    struct Flaky {
        file: File,
        fail: AtomicUsize,
    }

    impl Storage for Flaky {
        fn as_file(&self) -> &File {
            &self.file
        }
        fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(io::Error::other("injected"));
            }
            self.file.write_all_at(data, offset)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)
        }
        fn sync(&self) -> io::Result<()> {
            Ok(())
        }
        fn map(&self) -> io::Result<memmap2::Mmap> {
            unreachable!()
        }
    }

    fn flaky(fail: usize) -> (tempfile::TempDir, Behind<Flaky>) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap();
        let storage = Flaky {
            file,
            fail: AtomicUsize::new(fail),
        };
        (dir, Behind::new(storage))
    }

    fn stage_of(byte: u8, len: usize) -> StageBuf {
        let mut buf = StageBuf::new_in(HugePages);
        buf.resize(len, byte);
        buf
    }

    fn read(b: &Behind<Flaky>, at: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        b.settled_file()
            .unwrap()
            .read_exact_at(&mut buf, at)
            .unwrap();
        buf
    }

    #[test]
    fn every_use_of_the_file_waits_for_the_write_in_flight() {
        let (_dir, mut b) = flaky(0);
        for round in 0..50u8 {
            let data = stage_of(round, 64 << 10);
            b.write_behind(data, u64::from(round) * 100);
            // No settle: reading through the file waits for it.
            assert_eq!(read(&b, u64::from(round) * 100, 100), vec![round; 100]);
        }
        assert!(b.has_worker());
        // A finished write-out's buffer comes back for the next stage.
        assert!(b.spare().capacity() >= 64 << 10);
    }

    /// Notes the thread it is dropped on.
    struct Noted(Arc<Mutex<Option<thread::ThreadId>>>);

    impl Drop for Noted {
        fn drop(&mut self) {
            *lock(&self.0) = Some(thread::current().id());
        }
    }

    #[test]
    fn discarded_things_are_freed_by_the_worker_before_it_ends() {
        let (_dir, mut b) = flaky(0);
        b.write_behind(stage_of(1, 1 << 20), 0);
        let dropped_on = Arc::new(Mutex::new(None));
        b.discard(Box::new(Noted(Arc::clone(&dropped_on))));
        // Reading waits for the write, not for the discarded thing.
        assert_eq!(read(&b, 0, 10), vec![1; 10]);
        drop(b);
        let on = lock(&dropped_on).expect("freed by the time Behind is dropped");
        assert_ne!(on, thread::current().id(), "freed by the worker");
        // Without a worker: freed at once, here.
        let (_dir, b) = flaky(0);
        let dropped_on = Arc::new(Mutex::new(None));
        b.discard(Box::new(Noted(Arc::clone(&dropped_on))));
        assert_eq!(*lock(&dropped_on), Some(thread::current().id()));
    }

    #[test]
    fn a_failed_write_is_kept_and_written_by_a_later_wait() {
        // The worker's write fails, and so does the first wait's retry.
        let (_dir, mut b) = flaky(2);
        b.write_behind(stage_of(7, 5000), 4096);
        assert!(b.settle().is_err(), "the error surfaces at the wait");
        assert!(b.file().is_ok(), "the next wait writes the bytes");
        assert_eq!(read(&b, 4096, 5000), vec![7; 5000]);
        // Nothing is in flight any more.
        assert!(b.settle().is_ok());
    }

    #[test]
    fn queued_write_outs_reach_the_file_in_order_even_after_a_failure() {
        for fail in 0..4 {
            let (_dir, mut b) = flaky(fail);
            // Each job is shorter than the one before and starts at 0:
            // the file ends up right only if it saw them in order.
            let mut expect = vec![0u8; 3000];
            let mut errors = 0;
            for round in 1..=20u8 {
                if b.make_room().is_err() {
                    // As the writer does: the stage is kept, not handed over.
                    errors += 1;
                    continue;
                }
                let len = 3000 - usize::from(round) * 100;
                b.write_behind(stage_of(round, len), 0);
                expect[..len].fill(round);
            }
            while b.settle().is_err() {
                errors += 1;
            }
            assert!(errors <= fail, "fail {fail}: {errors} errors");
            assert!(
                read(&b, 0, 2900) == expect[..2900],
                "fail {fail}: wrong bytes"
            );
        }
    }

    #[test]
    fn a_queued_copy_sees_the_writes_before_it_and_not_those_after() {
        for fail in 0..3 {
            let (_dir, mut b) = flaky(fail);
            // A write, a copy of it, a write over it.
            for step in 0..3 {
                while b.make_room().is_err() {}
                match step {
                    0 => b.write_behind(stage_of(1, 100), 0),
                    1 => b.copy_behind(0, 1000, 100),
                    _ => b.write_behind(stage_of(2, 100), 0),
                }
            }
            while b.settle().is_err() {}
            assert_eq!(read(&b, 1000, 100), vec![1; 100], "fail {fail}");
            assert_eq!(read(&b, 0, 100), vec![2; 100], "fail {fail}");
        }
    }

    #[test]
    fn dropping_writes_what_is_in_flight() {
        let (dir, mut b) = flaky(0);
        b.write_behind(stage_of(3, 100_000), 0);
        drop(b);
        let bytes = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(bytes, vec![3; 100_000]);
    }
}
