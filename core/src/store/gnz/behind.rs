//! The writer's file, with the stage's write-outs done behind its back
//! (DESIGN.md, "Staging"): a full stage goes to a worker thread, which
//! writes it while the writer fills the next one.
//!
//! At most one write is in flight, and every other use of the file waits
//! for it first (`Behind::file`): the file sees the same operations in the
//! same order as when the writer wrote the stage itself (the crash
//! simulation's log included); only the time of a write-out overlaps the
//! writer's own work. Creating 10,000 objects of 1 KiB on tmpfs spends
//! about half its time in the kernel's `pwrite` of the stage.
//!
//! A write that failed is kept and tried again by the next wait, so its
//! error surfaces there (at the latest at the commit), as a staged write's
//! always did; its bytes are never dropped. The worker starts with the
//! first write-out (small datasets never start one) and ends with the
//! writer. A process forked while a write was in flight has no worker: it
//! writes the bytes itself.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use super::stage::StageBuf;
use super::storage::Storage;
use super::writeback;
use crate::store::pages::HugePages;

/// The file, and the write-out that may be in flight.
pub(super) struct Behind<S: Storage> {
    file: Arc<S>,
    flight: Mutex<Flight>,
    worker: Option<Worker>,
}

/// A write-out handed to the worker: the bytes and where they go, kept
/// here until it succeeded (to be written again after a failure).
struct Flight {
    job: Option<(Arc<StageBuf>, u64)>,
    /// A buffer of a finished write-out, for the next stage.
    spare: StageBuf,
}

impl Default for Flight {
    fn default() -> Flight {
        Flight {
            job: None,
            spare: StageBuf::new_in(HugePages),
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread (a forked child has none).
    pid: u32,
}

#[derive(Default)]
struct Shared {
    state: Mutex<WorkerState>,
    changed: Condvar,
}

#[derive(Default)]
struct WorkerState {
    job: Option<(Arc<StageBuf>, u64)>,
    outcome: Option<io::Result<()>>,
    quit: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Storage> Behind<S> {
    pub fn new(file: S) -> Behind<S> {
        Behind {
            file: Arc::new(file),
            flight: Mutex::new(Flight::default()),
            worker: None,
        }
    }

    /// The file, once the write-out in flight (if any) is in it.
    pub fn file(&self) -> io::Result<&S> {
        self.settle()?;
        Ok(&self.file)
    }

    /// The file for what does not depend on the bytes written (locks, the
    /// file's identity), without waiting.
    pub fn as_file(&self) -> &std::fs::File {
        self.file.as_file()
    }

    /// The file to read from (or to ask its length), once the write-out in
    /// flight is in it.
    pub fn settled_file(&self) -> io::Result<&std::fs::File> {
        Ok(self.file()?.as_file())
    }

    pub fn write_at(&self, data: &[u8], at: u64) -> io::Result<()> {
        self.file()?.write_at(data, at)
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file()?.sync()
    }

    /// An empty buffer for the next stage (one a finished write-out gave
    /// back, when there is one).
    pub fn spare(&self) -> StageBuf {
        std::mem::replace(&mut lock(&self.flight).spare, StageBuf::new_in(HugePages))
    }

    /// True if write-outs go to a worker (one was started).
    pub fn has_worker(&self) -> bool {
        self.worker.is_some()
    }

    /// Hands `data` over, to be written at `at` behind the writer's back.
    /// The caller settled first (`settle`): nothing is in flight, so this
    /// cannot fail and nothing is dropped. Without a worker (none could be
    /// started, or a forked process) the next wait writes it.
    pub fn write_behind(&mut self, data: StageBuf, at: u64) {
        if self.worker.is_none() {
            self.worker = Worker::start(Arc::clone(&self.file));
        }
        let job = (Arc::new(data), at);
        let mut flight = lock(&self.flight);
        debug_assert!(flight.job.is_none(), "a write-out is in flight");
        flight.job = Some(job.clone());
        drop(flight);
        if let Some(worker) = self.worker.as_ref().filter(|w| w.pid == std::process::id()) {
            let mut state = lock(&worker.shared.state);
            state.job = Some(job);
            state.outcome = None;
            worker.shared.changed.notify_all();
        }
    }

    /// Waits for the write-out in flight; a failed one is written again
    /// here, and its error returned if that fails too (it stays in
    /// flight, for the next wait).
    pub fn settle(&self) -> io::Result<()> {
        let mut flight = lock(&self.flight);
        let Some((data, at)) = flight.job.take() else {
            return Ok(());
        };
        let outcome = match &self.worker {
            Some(w) if w.pid == std::process::id() => {
                let mut state = lock(&w.shared.state);
                loop {
                    if let Some(outcome) = state.outcome.take() {
                        break outcome;
                    }
                    if state.job.is_none() {
                        // Its outcome was taken by an earlier wait that
                        // then failed to write it: write it here.
                        break Err(io::Error::other("write-behind failed before"));
                    }
                    state = w
                        .shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
            _ => Err(io::Error::other("no write-behind worker in this process")),
        };
        if outcome.is_err() {
            if let Err(e) = write_out(&*self.file, &data, at) {
                flight.job = Some((data, at));
                return Err(e);
            }
        }
        // The worker has let go of its reference: the buffer is reused.
        flight.spare = Arc::try_unwrap(data)
            .map(recycle)
            .unwrap_or_else(|_| StageBuf::new_in(HugePages));
        Ok(())
    }
}

/// One write-out: the bytes, and the start of their device write.
fn write_out<S: Storage>(file: &S, data: &[u8], at: u64) -> io::Result<()> {
    file.write_at(data, at)?;
    writeback::start(file.as_file(), at, data.len());
    Ok(())
}

/// A buffer emptied for reuse.
fn recycle(mut data: StageBuf) -> StageBuf {
    data.clear();
    data
}

impl Worker {
    /// A worker writing to `file`; `None` if no thread could be started.
    fn start<S: Storage>(file: Arc<S>) -> Option<Worker> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let quiet = crate::quiet::is_quiet();
        let thread = thread::Builder::new()
            .name("zmap-gnz-write".into())
            .spawn(move || crate::quiet::inherit(quiet, || work(&*file, &theirs)))
            .ok()?;
        Some(Worker {
            shared,
            thread: Some(thread),
            pid: std::process::id(),
        })
    }
}

/// The worker's loop: each job written, its outcome handed back.
fn work<S: Storage>(file: &S, shared: &Shared) {
    let mut state = lock(&shared.state);
    loop {
        if state.quit {
            return;
        }
        let Some((data, at)) = state.job.clone().filter(|_| state.outcome.is_none()) else {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(state);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| write_out(file, &data, at)))
            .unwrap_or_else(|_| Err(io::Error::other("write-behind panicked")));
        drop(data);
        state = lock(&shared.state);
        state.job = None;
        state.outcome = Some(outcome);
        shared.changed.notify_all();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A forked child: the thread is not in this process.
            if let Some(thread) = self.thread.take() {
                std::mem::forget(thread);
            }
            return;
        }
        lock(&self.shared.state).quit = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<S: Storage> Drop for Behind<S> {
    fn drop(&mut self) {
        // What was handed over reaches the file before the writer lets go
        // of it (its lock is released after this).
        let _ = self.settle();
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
    fn dropping_writes_what_is_in_flight() {
        let (dir, mut b) = flaky(0);
        b.write_behind(stage_of(3, 100_000), 0);
        drop(b);
        let bytes = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(bytes, vec![3; 100_000]);
    }
}
