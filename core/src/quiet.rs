//! Panics behind the C boundary are caught (`ffi::guard`) and must not be
//! printed either: the default panic hook writes to the host's stderr (a
//! closed pipe there kills a C host with SIGPIPE). A thread inside a
//! guarded call, or a worker the library started for one, is *quiet*: a
//! hook installed once stays silent for it and hands every other panic to
//! the hook that was there before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many quiet scopes this thread is inside.
    static QUIET: Cell<u32> = const { Cell::new(0) };
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_quiet() {
                previous(info);
            }
        }));
    });
}

/// True inside a guarded call (or a worker started for one).
pub fn is_quiet() -> bool {
    QUIET.try_with(Cell::get).unwrap_or(0) > 0
}

/// Runs `body` quietly when `quiet` (a worker thread passes what
/// `is_quiet` said on the thread that started it).
pub fn inherit<T>(quiet: bool, body: impl FnOnce() -> T) -> T {
    if !quiet {
        return body();
    }
    install_hook();
    QUIET.with(|depth| depth.set(depth.get() + 1));
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = QUIET.try_with(|depth| depth.set(depth.get() - 1));
        }
    }
    let _leave = Leave;
    body()
}

/// Runs `body` quietly, catching a panic (for the C boundaries: libzmap's
/// and the netCDF bridge's).
pub fn catch<T>(body: impl FnOnce() -> T) -> std::thread::Result<T> {
    inherit(true, || catch_unwind(AssertUnwindSafe(body)))
}
