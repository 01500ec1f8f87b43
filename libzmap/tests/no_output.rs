//! The library never writes to its host's stdout or stderr (README,
//! "Diagnostics"). The print macros are denied by clippy at the crate roots
//! (core/src/lib.rs, libzmap/src/lib.rs); this test refuses the other ways to
//! reach the standard streams anywhere in the libraries' sources (cli/ is
//! the `zmap` tool, which may print).

use std::fs;
use std::path::{Path, PathBuf};

/// Spellings that reach the process's standard streams (or its terminal).
const FORBIDDEN: &[&str] = &[
    "stdout()",
    "stderr()",
    "STDOUT_FILENO",
    "STDERR_FILENO",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "Stdio::inherit",
    "libc::write(1",
    "libc::write(2",
    "set_output_capture",
];

/// The source folders of libzmap's library code: this crate's and the core's.
fn library_sources() -> [PathBuf; 2] {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("src"), here.join("../core/src")]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_library_never_touches_the_standard_streams() {
    let mut files = Vec::new();
    for src in library_sources() {
        rust_files(&src, &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the library reaches stdout/stderr:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_print_lints_are_denied_at_the_crate_roots() {
    for src in library_sources() {
        let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
        assert!(
            lib.contains("#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]"),
            "{}/lib.rs must deny the print macros",
            src.display()
        );
    }
}

/// A panic inside a C entry point is `NC_EINTERNAL` and prints nothing (the
/// default panic hook would write to stderr); panics elsewhere still reach
/// the host's hook.
#[test]
fn a_panic_behind_the_c_boundary_prints_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    let status = zmap::ffi::guard(|| panic!("a bug"));
    assert_eq!(status, zmap_core::codes::NC_EINTERNAL);
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "the panic reached the hook"
    );
    // A worker the library starts for a guarded call is quiet too.
    let status = zmap::ffi::guard(|| {
        let quiet = zmap_core::quiet::is_quiet();
        let worker =
            std::thread::spawn(move || zmap_core::quiet::inherit(quiet, || panic!("a bug")));
        assert!(worker.join().is_err());
        Ok(())
    });
    assert_eq!(status, zmap_core::codes::NC_NOERR);
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "the worker's panic reached the hook"
    );
    let outside = std::panic::catch_unwind(|| panic!("the host's own panic"));
    assert!(outside.is_err());
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "the host's hook was lost"
    );
    let _ = std::panic::take_hook();
}
