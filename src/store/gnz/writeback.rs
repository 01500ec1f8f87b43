//! Write-behind: the writer's large writes start going to the device while
//! the caller goes on, so that the commit's `fdatasync` finds little left
//! to write (the idea of RocksDB's `bytes_per_sync`).
//!
//! A helper thread, started at the first large write, calls Linux's
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)` for the ranges the writer
//! queues: that call submits the pages' I/O (block allocation included) and
//! can wait for a full device queue, which the writer itself must not do.
//! It is only a hint: durability still comes from the commit's sync, which
//! also reports any I/O error. A full queue drops hints (the commit's sync
//! covers those bytes); closing drops the ones not yet started.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Writes shorter than this are left to the commit's sync.
pub const FROM: usize = 256 << 10;

/// Ranges queued at most (a hint past it is dropped).
const QUEUE: usize = 256;

#[derive(Default)]
pub struct WriteBehind {
    helper: Option<Helper>,
    /// The helper could not be started: hints are ignored.
    unavailable: bool,
}

struct Helper {
    queue: SyncSender<(u64, u64)>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: a forked child has no such
    /// thread and must not join it.
    pid: u32,
}

impl WriteBehind {
    /// Asks for the write-back of the `len` bytes just written at `at` to
    /// start soon; never waits.
    pub fn hint(&mut self, file: &File, at: u64, len: usize) {
        if !cfg!(target_os = "linux") || len < FROM || self.unavailable {
            return;
        }
        if self.helper.is_none() {
            self.helper = Helper::start(file);
            self.unavailable = self.helper.is_none();
        }
        if let Some(helper) = &self.helper {
            // Full (or helper gone): the commit's sync writes these bytes.
            let _ = helper.queue.try_send((at, len as u64));
        }
    }
}

impl Helper {
    fn start(file: &File) -> Option<Helper> {
        let file = file.try_clone().ok()?;
        let (queue, ranges) = sync_channel(QUEUE);
        let closing = Arc::new(AtomicBool::new(false));
        let stop = closing.clone();
        let thread = thread::Builder::new()
            .name("zmap-gnz-writeback".into())
            .spawn(move || run(&file, &ranges, &stop))
            .ok()?;
        Some(Helper {
            queue,
            closing,
            thread: Some(thread),
            pid: std::process::id(),
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.pid == std::process::id() {
            // The queue closes when `self.queue` drops, after this; the
            // thread stops at `closing` after at most one call.
            let (dead, _) = sync_channel(0);
            drop(std::mem::replace(&mut self.queue, dead));
            let _ = thread.join();
        }
    }
}

/// The helper thread: starts write-back of each queued range, adjacent
/// ranges merged, until the queue closes or the writer is closing.
fn run(file: &File, ranges: &Receiver<(u64, u64)>, closing: &AtomicBool) {
    while let Ok((mut at, mut len)) = ranges.recv() {
        while let Ok((next, n)) = ranges.try_recv() {
            if next == at + len {
                len += n;
            } else {
                if closing.load(Ordering::Relaxed) {
                    return;
                }
                start_writeback(file, at, len);
                (at, len) = (next, n);
            }
        }
        if closing.load(Ordering::Relaxed) {
            return;
        }
        start_writeback(file, at, len);
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, at: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor this thread owns; no memory
    // is passed. Errors are left for the commit's fdatasync to report.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), at, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn hints_start_the_helper_once_and_close_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let mut wb = WriteBehind::default();
        wb.hint(&file, 0, 100); // short: nothing
        assert!(wb.helper.is_none());
        let data = vec![7u8; FROM];
        for i in 0..(QUEUE as u64 + 20) {
            file.write_all_at(&data, i * FROM as u64).unwrap();
            wb.hint(&file, i * FROM as u64, FROM);
        }
        assert_eq!(wb.helper.is_some(), cfg!(target_os = "linux"));
        drop(wb); // joins the helper (dropping what is still queued)
        file.sync_data().unwrap();
        assert_eq!(
            file.metadata().unwrap().len(),
            (QUEUE as u64 + 20) * FROM as u64
        );
    }
}
