//! `zmap cp`: equal copies between backends, parallel jobs, replacing an
//! existing dataset, and the guarantee that an interrupted copy never looks
//! complete (and that `--resume` completes it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{ok, s, text, tree, zmap, ZMAP};

/// A small Zarr-v2-shaped dataset written as plain files: markers at the
/// top, nested groups and arrays, chunks of several sizes, an empty object.
fn zarr_like(root: &Path, chunks: usize, chunk_len: usize) {
    let write = |rel: &str, data: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    write(".zgroup", b"{\"zarr_format\": 2}");
    write(".zattrs", b"{\"title\": \"copy test\"}");
    write("g/.zgroup", b"{\"zarr_format\": 2}");
    write("g/v/.zarray", b"{\"chunks\": [4], \"dtype\": \"<i4\"}");
    write("g/v/zarr.json", b"{}");
    write("g/empty", b"");
    for i in 0..chunks {
        let data: Vec<u8> = (0..chunk_len + i).map(|j| (i * 31 + j) as u8).collect();
        write(&format!("g/v/{i}"), &data);
    }
}

#[test]
fn file_to_file_is_exact_with_any_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 40, 3000);
    let want = tree(&src);
    for jobs in ["1", "3", "16"] {
        let dst = dir.path().join(format!("dst{jobs}"));
        let out = ok(&["cp", "--jobs", jobs, s(&src), s(&dst)]);
        // Not a terminal: nothing on stderr or stdout.
        assert!(out.stderr.is_empty() && out.stdout.is_empty());
        assert_eq!(tree(&dst), want, "jobs {jobs}");
    }
    // URL forms and a relative file:// URL work too.
    let dst = dir.path().join("dsturl");
    let from = format!("file://{}#mode=nczarr,file", s(&src));
    let to = format!("file://{}", s(&dst));
    ok(&["cp", &from, &to]);
    assert_eq!(tree(&dst), want);
    let out = Command::new(ZMAP)
        .current_dir(dir.path())
        .args(["cp", "file://src", "file://relcopy"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(tree(&dir.path().join("relcopy")), want);
}

#[test]
fn copy_replaces_an_existing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 5, 100);
    let dst = dir.path().join("dst");
    zarr_like(&dst, 9, 50);
    std::fs::write(dst.join("stale"), b"old").unwrap();
    ok(&["cp", s(&src), s(&dst)]);
    assert_eq!(tree(&dst), tree(&src));
}

#[test]
fn refuses_to_clobber_what_is_not_a_dataset_or_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 3, 10);
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), b"years of work").unwrap();
    let out = zmap(&["cp", s(&src), s(&precious)]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("NC_EEXIST -35") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(precious.join("thesis.tex")).unwrap(),
        b"years of work"
    );
    // Into itself, onto itself, or over a dataset that contains the source.
    let inner = src.join("g");
    for (a, b) in [
        (src.clone(), src.join("sub")),
        (src.clone(), src.clone()),
        (inner, src.clone()),
    ] {
        let out = zmap(&["cp", s(&a), s(&b)]);
        assert_eq!(out.status.code(), Some(1), "{a:?} -> {b:?}");
    }
    assert_eq!(tree(&src).len(), {
        let fresh = dir.path().join("fresh");
        zarr_like(&fresh, 3, 10);
        tree(&fresh).len()
    });
}

const MARKERS: [&str; 6] = [
    ".zgroup",
    ".zarray",
    ".zattrs",
    ".zmetadata",
    ".nczarr",
    "zarr.json",
];

fn has_marker(root: &Path) -> bool {
    MARKERS.iter().any(|m| root.join(m).exists())
}

/// Kills a copy in the middle; the destination must not look like a
/// dataset, plain `cp` must refuse it, and `cp --resume` must complete it.
#[test]
fn interrupted_copy_never_looks_complete_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 400, 256 * 1024);
    let dst = dir.path().join("dst");
    let mut interrupted = false;
    for _attempt in 0..5 {
        let _ = std::fs::remove_dir_all(&dst);
        let mut child = Command::new(ZMAP)
            .args(["cp", "-j", "1", s(&src), s(&dst)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Kill as soon as the first chunk has arrived.
        while !dst.join("g/v").is_dir() && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            interrupted = true;
            break;
        }
    }
    assert!(
        interrupted,
        "the copy always finished before it could be killed"
    );
    assert!(!has_marker(&dst), "an interrupted copy has dataset markers");
    assert!(!dst.join("g/.zgroup").exists() && !dst.join("g/v/.zarray").exists());

    // Plain cp refuses the leftover; --resume completes it.
    let out = zmap(&["cp", s(&src), s(&dst)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // An object the source lacks: not an interrupted copy of it; refused
    // and left alone.
    std::fs::write(dst.join("g/stray"), b"not in the source").unwrap();
    let before = tree(&dst);
    let out = zmap(&["cp", "--resume", s(&src), s(&dst)]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("NC_EEXIST") && err.contains("/g/stray"),
        "{err}"
    );
    assert_eq!(tree(&dst), before);
    std::fs::remove_file(dst.join("g/stray")).unwrap();
    // Damage a chunk the first run wrote: resume must repair it.
    let first = dst.join("g/v/0");
    if first.exists() {
        std::fs::write(&first, b"damaged").unwrap();
    }
    ok(&["cp", "--resume", "-j", "4", s(&src), s(&dst)]);
    assert_eq!(tree(&dst), tree(&src));
    // Resuming onto a complete copy (a dataset) brings it up to date: stray
    // objects go, changed ones are copied again.
    std::fs::write(dst.join("g/stray"), b"x").unwrap();
    std::fs::write(dst.join("g/v/7"), b"changed").unwrap();
    ok(&["cp", "--resume", s(&src), s(&dst)]);
    assert_eq!(tree(&dst), tree(&src));
}

/// The same into a GNZ file, which shows only what was committed: killed at
/// any moment, it has markers only if it holds everything, and `--resume`
/// completes it.
#[test]
fn interrupted_copy_into_gnz_never_looks_complete() {
    assert!(gnz_built());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 200, 200 * 1024);
    let gnz = dir.path().join("dst.gnz");
    let full = text(&ok(&["ls", "-lR", s(&src)]).stdout);
    let mut incomplete = 0;
    for delay_ms in [0u64, 20, 40, 80, 160, 320] {
        let _ = std::fs::remove_file(&gnz);
        let mut child = Command::new(ZMAP)
            .args(["cp", "-j", "1", s(&src), s(&gnz)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gnz.exists() && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        if !gnz.exists() {
            continue;
        }
        let out = zmap(&["ls", "-lR", s(&gnz)]);
        if !out.status.success() {
            // Killed before its first commit: not a readable dataset.
            incomplete += 1;
            continue;
        }
        let listed = text(&out.stdout);
        let marked = listed.lines().any(|l| l.ends_with("  /.zgroup"));
        assert!(
            !marked || listed == full,
            "markers in an incomplete copy (finished: {finished}):\n{listed}"
        );
        if !marked {
            incomplete += 1;
            ok(&["cp", "--resume", s(&src), s(&gnz)]);
            assert_eq!(text(&ok(&["ls", "-lR", s(&gnz)]).stdout), full);
        }
    }
    assert!(incomplete > 0, "no copy was ever interrupted");
    let back = dir.path().join("back");
    ok(&["cp", s(&gnz), s(&back)]);
    assert_eq!(tree(&back), tree(&src));
}

#[test]
fn resume_never_takes_over_a_foreign_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 3, 10);
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), b"years of work").unwrap();
    let out = zmap(&["cp", "--resume", s(&src), s(&precious)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(tree(&precious).len(), 1);
    // A missing destination is simply created.
    let fresh = dir.path().join("fresh");
    ok(&["cp", "--resume", s(&src), s(&fresh)]);
    assert_eq!(tree(&fresh), tree(&src));
}

/// Which key arrives last is visible from the phase order: run a copy to
/// completion while watching the destination; no marker may appear before
/// every chunk is there.
#[test]
fn markers_arrive_after_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 300, 64 * 1024);
    let dst = dir.path().join("dst");
    let chunks: Vec<PathBuf> = (0..300).map(|i| dst.join(format!("g/v/{i}"))).collect();
    let mut child = Command::new(ZMAP)
        .args(["cp", "-j", "2", s(&src), s(&dst)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut checks = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        if has_marker(&dst) || dst.join("g/v/.zarray").exists() {
            // The metadata appeared: every chunk must already be complete.
            for (i, chunk) in chunks.iter().enumerate() {
                let len = std::fs::metadata(chunk).map(|m| m.len()).unwrap_or(0);
                assert_eq!(len, 64 * 1024 + i as u64, "{chunk:?} incomplete");
            }
            checks += 1;
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    assert!(child.wait().unwrap().success());
    assert!(checks > 0);
    assert_eq!(tree(&dst), tree(&src));
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 10, 1000);
    let dst = dir.path().join("dst");
    // `script` gives the command a terminal; stdout and stderr both go there.
    let cmd = format!("{ZMAP} cp {} {}", s(&src), s(&dst));
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else {
        panic!("util-linux 'script' is needed for this test");
    };
    assert!(out.status.success(), "{}", text(&out.stdout));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("copied 16 objects") && shown.contains("KiB"),
        "{shown}"
    );
    // -q: nothing, even on a terminal.
    let quiet = format!("{ZMAP} cp -q {} {}", s(&src), s(&dir.path().join("q")));
    let out = Command::new("script")
        .args(["-qec", &quiet, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), "");
}

fn gnz_built() -> bool {
    text(&ok(&["backends"]).stdout).contains("gnz built\n")
}

#[test]
fn file_to_gnz_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 30, 5000);
    let gnz = dir.path().join("copy.gnz");
    assert!(gnz_built());
    ok(&["cp", "-j", "4", s(&src), s(&gnz)]);
    assert!(gnz.is_file());
    ok(&["verify", s(&gnz)]);
    let back = dir.path().join("back");
    ok(&["cp", s(&gnz), s(&back)]);
    assert_eq!(tree(&back), tree(&src));
    // GNZ to GNZ, and replacing an existing GNZ dataset.
    let gnz2 = dir.path().join("copy2.gnz");
    ok(&["cp", s(&gnz), s(&gnz2)]);
    ok(&["cp", s(&gnz2), s(&gnz)]);
    let back2 = dir.path().join("back2");
    ok(&["cp", s(&gnz), s(&back2)]);
    assert_eq!(tree(&back2), tree(&src));
}

/// Two trees hold the same keys and contents (keys shown when not).
fn same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "contents differ");
}

/// The entry names of a ZIP archive, in directory order.
fn zip_names(path: &Path) -> Vec<String> {
    let archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    archive.file_names().map(str::to_string).collect()
}

#[test]
fn zip_to_and_from_every_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    zarr_like(&src, 30, 5000);
    // FILE -> ZIP (guessed from .zip: keys at the root), verified.
    let zip = dir.path().join("copy.zip");
    ok(&["cp", "-j", "4", s(&src), s(&zip)]);
    ok(&["verify", s(&zip)]);
    assert!(zip_names(&zip).iter().all(|n| !n.starts_with("copy/")));
    // ZIP -> GNZ -> ZIP in netCDF's layout (the URL netCDF uses) -> FILE.
    let gnz = dir.path().join("copy.gnz");
    ok(&["cp", s(&zip), s(&gnz)]);
    let nc = dir.path().join("nc.zip");
    let nc_url = format!("file://{}#mode=nczarr,zip", s(&nc));
    ok(&["cp", s(&gnz), &nc_url]);
    let names = zip_names(&nc);
    assert_eq!(names[0], "nc/");
    assert!(names.iter().all(|n| n.starts_with("nc/")));
    let back = dir.path().join("back");
    ok(&["cp", s(&nc), s(&back)]);
    same_tree(&back, &src);
    // .ozx is ZIP too; ZIP -> ZIP replaces an existing ZIP dataset.
    let ozx = dir.path().join("image.ozx");
    ok(&["cp", s(&nc), s(&ozx)]);
    ok(&["cp", s(&src), s(&ozx)]);
    let back2 = dir.path().join("back2");
    ok(&["cp", s(&ozx), s(&back2)]);
    same_tree(&back2, &src);
    // ZIP -> memory (in the CLI's process) succeeds.
    ok(&["cp", s(&zip), "mem://zipcopy"]);
}
