//! Advisory locks on a GNZ file (DESIGN.md, "Locks").
//!
//! Linux open-file-description (OFD) byte-range locks on three single bytes
//! far past any data (a lock range need not exist in the file). OFD locks
//! belong to one `open()` — not to the process, as classic POSIX locks do —
//! so two maps opened on one file in the same process exclude each other
//! exactly as two processes do, and closing an unrelated descriptor of the
//! same file releases nothing. The kernel drops them when the process dies.
//!
//! - `Writer`: exclusive, held by a writable map for its whole life. A second
//!   writer's non-blocking attempt fails at once: `Error::Locked`.
//! - `Readers`: shared, held by every read-only map for its whole life. The
//!   writer never takes it; it only asks whether anyone holds it, to know
//!   whether freed space may still be in some reader's snapshot.
//! - `Header`: exclusive while a writer rewrites the header at offset 0,
//!   shared while an opener reads it — a few microseconds each, so an opener
//!   never sees a half-written header of a live writer.
//! - Generation slots: a reader also holds a shared lock on the byte
//!   `GENERATIONS + generation mod SLOTS` of the commit its snapshot is; the
//!   writer lists the locked slots (`pinned_slots`) to learn which
//!   generations live readers see (DESIGN.md, "Reader protocol").
//!
//! A map gives its lock up explicitly when it ends: the lock belongs to the
//! open file description, which a child process forked meanwhile by another
//! thread shares until it execs (or exits), so merely closing the file could
//! leave the lock held for a moment and make the next open fail.
//!
//! Other systems fall back to `flock` for the writer lock only (readers are
//! then not tracked: see DESIGN.md).

use std::fs::File;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Writer = 0,
    Readers = 1,
    Header = 2,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    use super::Slot;

    /// First lock byte: far past any file, well inside `off_t`.
    const BASE: i64 = 0x4000_0000_0000_0000;
    /// First generation slot (`super::SLOTS` of them follow, still inside
    /// `off_t`).
    const GENERATIONS: i64 = BASE + 16;

    fn request(slot: Slot, l_type: libc::c_int) -> libc::flock {
        range(BASE + slot as i64, 1, l_type)
    }

    fn range(start: i64, len: i64, l_type: libc::c_int) -> libc::flock {
        // SAFETY: `flock` is a plain C struct; all-zero is a valid value.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = l_type as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = start;
        lock.l_len = len;
        lock.l_pid = 0;
        lock
    }

    /// Takes (`true`) or drops a shared lock on generation slot `slot`.
    pub fn pin_slot(file: &File, slot: u64, take: bool) -> io::Result<bool> {
        let kind = if take { libc::F_RDLCK } else { libc::F_UNLCK };
        let mut lock = range(GENERATIONS + slot as i64, 1, kind);
        match fcntl(file, libc::F_OFD_SETLK, &mut lock) {
            Ok(()) => Ok(true),
            Err(e) if busy(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The generation slots other opens hold, and whether some lock covers
    /// so many that listing them is pointless (`true`: treat every
    /// generation as seen). `F_OFD_GETLK` names one lock in a range; the
    /// range is split around it until no lock is left: about two calls per
    /// locked slot.
    pub fn pinned_slots(file: &File) -> io::Result<(Vec<u64>, bool)> {
        let mut found = Vec::new();
        let mut todo = vec![(0u64, super::SLOTS)];
        while let Some((lo, hi)) = todo.pop() {
            if lo >= hi {
                continue;
            }
            let mut lock = range(GENERATIONS + lo as i64, (hi - lo) as i64, libc::F_WRLCK);
            fcntl(file, libc::F_OFD_GETLK, &mut lock)?;
            if lock.l_type == libc::F_UNLCK as libc::c_short {
                continue;
            }
            // In i128: a foreign lock may cover any range (`l_len` 0: to
            // the end of all offsets).
            let first = i128::from(lock.l_start) - i128::from(GENERATIONS);
            let last = match lock.l_len {
                0 => i128::from(hi),
                n => first + i128::from(n),
            };
            let start = first.clamp(i128::from(lo), i128::from(hi)) as u64;
            let end = last.clamp(i128::from(lo), i128::from(hi)) as u64;
            if end <= start
                || end - start > super::MAX_LISTED
                || found.len() > super::MAX_LISTED as usize
            {
                // Not a reader of this protocol (it locks one byte).
                return Ok((found, true));
            }
            found.extend(start..end);
            todo.push((lo, start));
            todo.push((end, hi));
        }
        Ok((found, false))
    }

    fn fcntl(file: &File, cmd: libc::c_int, lock: &mut libc::flock) -> io::Result<()> {
        loop {
            // SAFETY: the descriptor is open for the duration of the call
            // and `lock` points to a valid, writable `flock`.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, lock as *mut libc::flock) };
            if rc != -1 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn busy(err: &io::Error) -> bool {
        matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES))
    }

    pub fn try_lock(file: &File, slot: Slot, exclusive: bool) -> io::Result<bool> {
        let kind = if exclusive {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        };
        match fcntl(file, libc::F_OFD_SETLK, &mut request(slot, kind)) {
            Ok(()) => Ok(true),
            Err(e) if busy(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn lock_wait(file: &File, slot: Slot, exclusive: bool) -> io::Result<()> {
        let kind = if exclusive {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        };
        fcntl(file, libc::F_OFD_SETLKW, &mut request(slot, kind))
    }

    pub fn unlock(file: &File, slot: Slot) -> io::Result<()> {
        fcntl(file, libc::F_OFD_SETLK, &mut request(slot, libc::F_UNLCK))
    }

    pub fn held_by_other(file: &File, slot: Slot) -> io::Result<bool> {
        let mut lock = request(slot, libc::F_WRLCK);
        fcntl(file, libc::F_OFD_GETLK, &mut lock)?;
        Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::fs::File;
    use std::io;

    use rustix::fs::{flock, FlockOperation};

    use super::Slot;

    pub fn try_lock(file: &File, slot: Slot, exclusive: bool) -> io::Result<bool> {
        if slot != Slot::Writer || !exclusive {
            return Ok(true);
        }
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn lock_wait(_file: &File, _slot: Slot, _exclusive: bool) -> io::Result<()> {
        Ok(())
    }

    pub fn unlock(file: &File, slot: Slot) -> io::Result<()> {
        if slot == Slot::Writer {
            flock(file, FlockOperation::Unlock)?;
        }
        Ok(())
    }

    pub fn held_by_other(_file: &File, _slot: Slot) -> io::Result<bool> {
        Ok(false)
    }

    pub fn pin_slot(_file: &File, _slot: u64, _take: bool) -> io::Result<bool> {
        Ok(true)
    }

    pub fn pinned_slots(_file: &File) -> io::Result<(Vec<u64>, bool)> {
        Ok((Vec::new(), false))
    }
}

/// Generation slots: a reader of generation `g` locks slot `g mod SLOTS`.
/// 2^61 commits — 73,000 years at a million commits a second — before two
/// generations share a slot.
pub const SLOTS: u64 = 1 << 61;
/// A lock covering more slots than this, or more locked slots than this, is
/// not listed slot by slot: every generation then counts as seen.
const MAX_LISTED: u64 = 1 << 16;

/// Records that this open reads the snapshot of commit `generation` (a
/// shared lock nobody takes exclusively: it cannot fail for contention).
pub fn pin_generation(file: &File, generation: u64) -> Result<()> {
    if imp::pin_slot(file, generation % SLOTS, true)? {
        Ok(())
    } else {
        Err(Error::Locked)
    }
}

/// Gives up the generation lock of `generation`.
pub fn unpin_generation(file: &File, generation: u64) -> Result<()> {
    imp::pin_slot(file, generation % SLOTS, false)?;
    Ok(())
}

/// The generation slots that other opens hold (each `generation mod SLOTS`),
/// and `true` if some lock covers too many slots to list (every generation
/// is then taken as seen).
pub fn pinned_slots(file: &File) -> Result<(Vec<u64>, bool)> {
    Ok(imp::pinned_slots(file)?)
}

/// Takes the writer lock, or `Error::Locked` at once if another open holds it.
pub fn lock_writer(file: &File) -> Result<()> {
    if imp::try_lock(file, Slot::Writer, true)? {
        Ok(())
    } else {
        Err(Error::Locked)
    }
}

/// Gives up the writer lock (a writable open that turned out read-only).
pub fn unlock_writer(file: &File) -> Result<()> {
    Ok(imp::unlock(file, Slot::Writer)?)
}

/// Registers a reader. Only a writer probes this byte and nobody holds it
/// exclusively, so this cannot fail for contention; if it does anyway the
/// error is reported rather than reading unprotected.
pub fn register_reader(file: &File) -> Result<()> {
    if imp::try_lock(file, Slot::Readers, false)? {
        Ok(())
    } else {
        Err(Error::Locked)
    }
}

/// Gives up a reader's lock.
pub fn unregister_reader(file: &File) -> Result<()> {
    Ok(imp::unlock(file, Slot::Readers)?)
}

/// True if some other open holds the readers lock.
pub fn readers_present(file: &File) -> Result<bool> {
    Ok(imp::held_by_other(file, Slot::Readers)?)
}

/// Runs `body` holding the header lock (exclusive for a writer rewriting
/// the header, shared for an opener reading it).
pub fn with_header_lock<T>(
    file: &File,
    exclusive: bool,
    body: impl FnOnce() -> Result<T>,
) -> Result<T> {
    imp::lock_wait(file, Slot::Header, exclusive)?;
    let result = body();
    let unlocked = imp::unlock(file, Slot::Header);
    let value = result?;
    unlocked?;
    Ok(value)
}
