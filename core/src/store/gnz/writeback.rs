//! Write-behind: the writer's large writes start going to the device at
//! once, so that the commit's `fdatasync` finds little left to write (the
//! idea of RocksDB's `bytes_per_sync`).
//!
//! After each write of `FROM` bytes or more the writer calls Linux's
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)` on it: that submits the pages'
//! I/O (block allocation included) without waiting for its completion,
//! though it can wait for room in a full device queue. It is only a hint:
//! durability still comes from the commit's sync, which also reports any
//! I/O error. On a file system without real write-back (tmpfs) it costs a
//! syscall per large write.
//!
//! Called by whichever thread did the write: the stage's write-behind
//! worker for a stage write-out (`behind.rs`), the writer's own thread for
//! a large direct write.

use std::fs::File;

/// Writes shorter than this are left to the commit's sync.
pub const FROM: usize = 256 << 10;

/// Starts the device write of the `len` bytes just written at `at`.
pub fn start(file: &File, at: u64, len: usize) {
    if len >= FROM {
        start_writeback(file, at, len);
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, at: u64, len: usize) {
    use std::os::fd::AsRawFd;
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor the caller owns; no memory is
    // passed. Errors are left for the commit's fdatasync to report.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), at, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn hints_leave_the_data_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let data: Vec<u8> = (0..FROM * 3).map(|i| (i % 251) as u8).collect();
        file.write_all_at(&data, 4096).unwrap();
        start(&file, 4096, data.len());
        start(&file, 0, 10); // short: nothing to do
        start(&file, u64::MAX, FROM); // out of range: ignored
        file.sync_data().unwrap();
        let mut back = vec![0u8; data.len()];
        file.read_exact_at(&mut back, 4096).unwrap();
        assert!(back == data);
    }
}
