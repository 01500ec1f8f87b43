//! Every change to a GNZ file, and every map of it, goes through a
//! [`Storage`]: the file itself in production ([`FileStorage`]), or in tests a
//! file that also records each operation ([`Recording`]), from which the
//! crash tests build the states a power loss can leave (`crash_tests.rs`).
//!
//! Static dispatch only (the store is generic over it, `FileStorage` by
//! default): each method is the one system call it wraps, inlined.
//! Reads, locks and hints that change no byte (write-behind) use the file
//! directly ([`Storage::as_file`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use memmap2::Mmap;

/// The operations that change a GNZ file or snapshot it.
pub trait Storage: Send + Sync + 'static {
    /// The file, for reads, locks and hints.
    fn as_file(&self) -> &File;
    /// Writes all of `data` at `offset`.
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Sets the file's length (cuts or extends with zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every completed write and length change durable
    /// (`fdatasync`): the only ordering point the media give.
    fn sync(&self) -> io::Result<()>;
    /// Maps the whole file read-only (a reader's snapshot).
    fn map(&self) -> io::Result<Mmap>;
    /// Copies the file's bytes `[from, from + len)` to `[to, to + len)`
    /// (ranges apart). By default a read and a `write_at` per MiB, so a
    /// copy is recorded as the writes it amounts to.
    fn copy_range(&self, from: u64, to: u64, len: u64) -> io::Result<()> {
        copy_through_memory(self, from, to, len)
    }
    /// Makes the file's bytes `[offset, offset + len)` (inside the file)
    /// read as zeros. By default a `write_at` of zeros per MiB, so it is
    /// recorded as the writes it amounts to.
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        zeros_through_writes(self, offset, len)
    }
}

/// The largest piece the default copies and zero writes handle at once.
const PIECE: u64 = 1 << 20;

/// `Storage::zero_range` as writes of at most 1 MiB of zeros.
fn zeros_through_writes<S: Storage + ?Sized>(storage: &S, offset: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; len.min(PIECE) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PIECE) as usize;
        storage.write_at(&zeros[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// `Storage::copy_range` through a buffer of at most 1 MiB.
fn copy_through_memory<S: Storage + ?Sized>(
    storage: &S,
    from: u64,
    to: u64,
    len: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; len.min(PIECE) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PIECE) as usize;
        storage
            .as_file()
            .read_exact_at(&mut buf[..n], from + done)?;
        storage.write_at(&buf[..n], to + done)?;
        done += n as u64;
    }
    Ok(())
}

/// The file itself.
pub struct FileStorage(File);

impl FileStorage {
    pub fn new(file: File) -> FileStorage {
        FileStorage(file)
    }
}

impl Storage for FileStorage {
    #[inline]
    fn as_file(&self) -> &File {
        &self.0
    }
    #[inline]
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    #[inline]
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    #[inline]
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    #[inline]
    fn map(&self) -> io::Result<Mmap> {
        map_file(&self.0)
    }
    /// `copy_file_range`: the kernel copies (or shares) the bytes, with no
    /// buffer in this process. Where it is refused (an old kernel, a file
    /// system without it), through memory.
    fn copy_range(&self, from: u64, to: u64, len: u64) -> io::Result<()> {
        let (mut src, mut dst) = (from, to);
        let end = from + len;
        while src < end {
            let n = usize::try_from(end - src)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            match rustix::fs::copy_file_range(&self.0, Some(&mut src), &self.0, Some(&mut dst), n) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP,
                ) => return copy_through_memory(self, src, dst, end - src),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    /// A hole punched (`fallocate(PUNCH_HOLE)`): the range reads as zeros
    /// and holds no blocks. Zeros written instead would take as much disk
    /// as the range, which can be far larger than the data (an object
    /// truncated to a terabyte, cut, then grown again). Where holes cannot
    /// be punched, zeros are written.
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        loop {
            match fallocate(&self.0, punch, offset, len) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                    return zeros_through_writes(self, offset, len)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Maps `file` read-only.
fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is only read, and only at extents that the header
    // it was taken with references. libzmap writers never change those
    // bytes while a reader holds its generation slot (copy-on-write,
    // DESIGN.md "Reader protocol") and never cut the file below them. A
    // process that ignores the protocol and truncates the file could make
    // such a read fault (SIGBUS), as with any memory map.
    unsafe { Mmap::map(file) }
}

#[cfg(test)]
pub use recording::{Hook, Op, Recording};

#[cfg(test)]
mod recording {
    use super::*;
    use std::sync::{Arc, Mutex, OnceLock};

    /// One operation on the file, as the storage saw it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Op {
        Write {
            offset: u64,
            data: Vec<u8>,
        },
        SetLen(u64),
        Sync,
        /// A reader's snapshot: what it may read is what a crash-free file
        /// holds at this point.
        Map,
    }

    /// Called after an operation is in the log (the log's lock released):
    /// the crash simulation opens and closes readers there, in the middle
    /// of a writer's commit.
    pub type Hook = Arc<dyn Fn(&Op) + Send + Sync>;

    /// A file that records every operation (in order, shared by every
    /// store opened with the same log). Without a log, it only skips the
    /// syncs (for checking crash images, which are thrown away).
    pub struct Recording {
        file: File,
        log: Option<Arc<Mutex<Vec<Op>>>>,
        hook: Option<Hook>,
        /// Once set, `as_file` gives this other file: the locks the store
        /// then drops explicitly are not its own, so only closing `file`
        /// drops them, as the kernel does for a process that dies.
        stand_in: Option<Arc<OnceLock<File>>>,
    }

    impl Recording {
        pub fn new(file: File, log: Option<Arc<Mutex<Vec<Op>>>>) -> Recording {
            Recording {
                file,
                log,
                hook: None,
                stand_in: None,
            }
        }

        /// Calls `hook` after every operation recorded.
        pub fn with_hook(mut self, hook: Hook) -> Recording {
            self.hook = Some(hook);
            self
        }

        /// Lets the caller make this store die (see `stand_in`).
        pub fn with_stand_in(mut self, stand_in: Arc<OnceLock<File>>) -> Recording {
            self.stand_in = Some(stand_in);
            self
        }

        fn push(&self, op: Op) {
            if let Some(log) = &self.log {
                let seen = self.hook.as_ref().map(|_| op.clone());
                log.lock().unwrap_or_else(|e| e.into_inner()).push(op);
                if let (Some(hook), Some(op)) = (&self.hook, seen) {
                    hook(&op);
                }
            }
        }
    }

    impl Storage for Recording {
        fn as_file(&self) -> &File {
            match self.stand_in.as_ref().and_then(|s| s.get()) {
                Some(other) => other,
                None => &self.file,
            }
        }
        fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
            self.file.write_all_at(data, offset)?;
            if self.log.is_some() {
                self.push(Op::Write {
                    offset,
                    data: data.to_vec(),
                });
            }
            Ok(())
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)?;
            self.push(Op::SetLen(len));
            Ok(())
        }
        /// Recorded only: what a sync makes durable is what the crash
        /// simulation derives from the log, and the file serves reads.
        fn sync(&self) -> io::Result<()> {
            self.push(Op::Sync);
            Ok(())
        }
        fn map(&self) -> io::Result<Mmap> {
            self.push(Op::Map);
            map_file(&self.file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(len: usize) -> (FileStorage, Vec<u8>) {
        let file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all_at(&bytes, 0).unwrap();
        (FileStorage::new(file), bytes)
    }

    fn read(storage: &FileStorage, at: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        storage.as_file().read_exact_at(&mut buf, at).unwrap();
        buf
    }

    #[test]
    fn copy_range_copies_forward_backward_and_past_the_end() {
        let (s, bytes) = file_with(3 << 20);
        // Past the end (the file grows), then back into the start.
        s.copy_range(100, (3 << 20) + 5, (2 << 20) + 3).unwrap();
        assert_eq!(
            read(&s, (3 << 20) + 5, (2 << 20) + 3),
            &bytes[100..(2 << 20) + 103]
        );
        s.copy_range((3 << 20) + 5, 7, 4096).unwrap();
        assert_eq!(read(&s, 7, 4096), &bytes[100..4196]);
        // Through memory (the fallback, and every other storage's way).
        copy_through_memory(&s, 0, 1 << 20, (1 << 20) + 9).unwrap();
        assert_eq!(read(&s, 1 << 20, 5), read(&s, 0, 5));
        // A source past the end of the file is an error either way.
        let len = s.as_file().metadata().unwrap().len();
        assert!(s.copy_range(len - 10, 0, 20).is_err());
        assert!(copy_through_memory(&s, len - 10, 0, 20).is_err());
    }
}
