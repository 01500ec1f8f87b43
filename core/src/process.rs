//! Which process this is, without a system call: a map opened by one
//! process and used in a child it forked is the parent's map (a GNZ map's
//! file description, and so its locks, are shared with the parent).
//!
//! `getpid` is a system call in glibc (no cache since 2.25), too dear for
//! every write of a map; a `pthread_atfork` handler counts the forks
//! instead, and a map keeps the count it was opened under. glibc forgets
//! the handler when the library is unloaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Forks this process image went through (incremented in each child).
static FORKS: AtomicU64 = AtomicU64::new(0);
static WATCHING: Once = Once::new();

extern "C" fn forked_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// This process, as a value that differs in every child forked after it
/// was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process(u64);

impl Process {
    pub fn current() -> Process {
        WATCHING.call_once(|| {
            // SAFETY: registers a handler that only increments an atomic
            // (async-signal-safe, as a fork handler must be); no prepare or
            // parent handler. A failure (ENOMEM) leaves forks uncounted:
            // then a child is taken for its parent, as before this module.
            unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
        });
        Process(FORKS.load(Ordering::Relaxed))
    }

    /// True in a process forked (directly or not) from the one `self` was
    /// taken in.
    pub fn is_gone(self) -> bool {
        Process::current() != self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_is_another_process() {
        let parent = Process::current();
        assert!(!parent.is_gone());
        // SAFETY: the child only computes and exits (no allocation, no lock).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = if parent.is_gone() { 0 } else { 1 };
            // SAFETY: leaves the child at once, without running Rust's exit.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert!(!parent.is_gone());
    }
}
