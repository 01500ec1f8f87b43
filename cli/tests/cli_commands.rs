//! The `zmap` tool's subcommands, run as a user runs them: exit codes,
//! stdout, stderr. Datasets are FILE directories in temporary directories
//! (the in-memory backend lives only as long as one process).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ZMAP: &str = env!("CARGO_BIN_EXE_zmap");

fn zmap(args: &[&str]) -> Output {
    Command::new(ZMAP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zmap")
}

fn zmap_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(ZMAP)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zmap");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and expects success; gives stdout.
fn ok(args: &[&str]) -> String {
    let out = zmap(args);
    assert!(
        out.status.success(),
        "zmap {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs and expects exit status `code`; gives stderr.
fn fails(args: &[&str], code: i32) -> String {
    let out = zmap(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "zmap {args:?}: stdout {} stderr {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn put(ds: &str, key: &str, data: &[u8]) {
    let out = zmap_stdin(&["put", "--create", ds, key, "-"], data);
    assert!(out.status.success(), "put {key}: {}", text(&out.stderr));
}

const METADATA1: &str = "{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4]}";
const METAARRAY1: &str = "{\n\"shape\": [1,2,3],\n\"dtype\": \"<1\"}";

/// The dataset of netCDF's `ut_mapapi` after its `simpledata` step.
fn mapapi_dataset(dir: &Path) -> String {
    let ds = s(&dir.join("testmapapi.nzf")).to_string();
    put(&ds, "/.nczarr", METADATA1.as_bytes());
    put(&ds, "/meta1/.zarray", METAARRAY1.as_bytes());
    let data: Vec<u8> = (0..25i32).flat_map(|i| i.to_le_bytes()).collect();
    put(&ds, "/data1", &data);
    ds
}

#[test]
fn usage_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["frobnicate"],
        vec!["ls"],
        vec!["cat", &ds],
        vec!["cat", &ds, "/data1", "--range", "5:2"],
        vec!["cat", &ds, "/data1", "--range", "x"],
        vec!["put", &ds, "/k"],
        vec!["rm"],
        vec!["cp", &ds],
        vec!["cp", "-j", "0", &ds, "elsewhere"],
        vec!["--backend", "nc5", "ls", &ds],
        vec!["tree", "--limit", "3", "--full", &ds],
        vec!["ls", "--no-such-flag", &ds],
        vec!["compact", &ds],
        vec!["cp", &ds, &ds],
        vec!["ls", ""],
    ];
    for args in cases {
        let err = fails(&args, 1);
        assert!(!err.is_empty(), "{args:?}: no message");
    }
    // Help and version are not errors.
    assert!(ok(&["--help"]).contains("Usage: zmap"));
    assert!(ok(&["cp", "--help"]).contains("markers"));
    assert!(ok(&["--version"]).starts_with("zmap "));
}

#[test]
fn missing_dataset_exits_2_with_the_message_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let m = s(&missing);
    let other = dir.path().join("other");
    let o = s(&other);
    for args in [
        vec!["ls", m],
        vec!["ls", "-l", m, "/a"],
        vec!["tree", m],
        vec!["cat", m, "/a"],
        vec!["rm", m, "/a"],
        vec!["info", m],
        vec!["verify", m],
        vec!["cp", m, o],
        vec!["put", m, "/a", "-"],
    ] {
        let err = fails(&args, 2);
        assert!(
            err.contains("NetCDF: Attempt to read empty NCZarr map key")
                && err.contains("NC_EEMPTY -139")
                && err.contains(m),
            "{args:?}: {err}"
        );
    }
    assert!(!other.exists(), "a failed cp created its destination");
    assert!(!missing.exists(), "a failed command created the dataset");
}

#[test]
fn put_and_cat_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ds = s(&dir.path().join("ds")).to_string();
    // Larger than the tool's 1 MiB pieces, not a multiple of them.
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &big).unwrap();
    fails(&["put", &ds, "/v/0", s(&file)], 2); // no dataset yet, no --create
    ok(&["put", "-c", &ds, "/v/0", s(&file)]);
    assert_eq!(std::fs::read(dir.path().join("ds/v/0")).unwrap(), big);
    let out = zmap(&["cat", &ds, "v/0"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, big);

    // Ranges.
    let out = zmap(&["cat", &ds, "/v/0", "--range", "1000:1010"]);
    assert_eq!(out.stdout, &big[1000..1010]);
    let out = zmap(&["cat", &ds, "/v/0", "--range", ":4"]);
    assert_eq!(out.stdout, &big[..4]);
    let tail = format!("{}:", big.len() - 3);
    let out = zmap(&["cat", &ds, "/v/0", "--range", &tail]);
    assert_eq!(out.stdout, &big[big.len() - 3..]);
    let out = zmap(&["cat", &ds, "/v/0", "--range", "7:7"]);
    assert!(out.status.success() && out.stdout.is_empty());
    let past = format!("0:{}", big.len() + 1);
    let err = fails(&["cat", &ds, "/v/0", "--range", &past], 2);
    assert!(
        err.contains("NC_EEDGE -57") && err.contains("/v/0"),
        "{err}"
    );

    // A shorter put replaces the content entirely (no stale tail).
    put(&ds, "/v/0", b"short");
    assert_eq!(zmap(&["cat", &ds, "/v/0"]).stdout, b"short");
    // An empty input makes an empty object.
    put(&ds, "/v/empty", b"");
    assert_eq!(ok(&["ls", "-l", &ds, "/v/empty"]).trim(), "0  /v/empty");
    // Missing input file, bad keys, prefix/leaf conflicts: NC errors.
    let err = fails(&["put", &ds, "/x", s(&dir.path().join("nope"))], 2);
    assert!(err.contains("nope"), "{err}");
    let err = fails(&["cat", &ds, "/v"], 2);
    assert!(err.contains("NC_EEMPTY") && err.contains("/v"), "{err}");
    let err = fails(&["cat", &ds, "/a//b"], 2);
    assert!(
        err.contains("NC_EINVAL -36") && err.contains("/a//b"),
        "{err}"
    );
    let err = fails(&["cat", &ds, "/"], 2);
    assert!(err.contains("NC_EINVAL"), "{err}");
    let out = zmap_stdin(&["put", &ds, "/v/0/below", "-"], b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NC_EINVAL"));
    let out = zmap_stdin(&["put", &ds, "/v", "-"], b"x");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cat_into_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let ds = s(&dir.path().join("ds")).to_string();
    put(&ds, "/big", &vec![7u8; 4 << 20]);
    let mut child = Command::new(ZMAP)
        .args(["cat", &ds, "/big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// Output into a pipe nobody reads (`zmap … | head` after head exited):
/// every printing command ends quietly with status 0, as cat does.
#[test]
fn printing_into_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    for args in [
        vec!["backends"],
        vec!["ls", "-lR", &ds],
        vec!["tree", &ds],
        vec!["info", &ds],
        vec!["verify", &ds],
        vec!["cat", &ds, "/data1"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(ZMAP)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn ls_lists_one_level_or_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    assert_eq!(ok(&["ls", &ds]), ".nczarr\ndata1\nmeta1/\n");
    assert_eq!(
        ok(&["ls", "-l", &ds]),
        "          50  .nczarr\n         100  data1\n           -  meta1/\n"
    );
    assert_eq!(ok(&["ls", &ds, "meta1"]), ".zarray\n");
    assert_eq!(ok(&["ls", &ds, "/meta1/"]), ".zarray\n");
    assert_eq!(
        ok(&["ls", "-R", &ds]),
        "/.nczarr\n/data1\n/meta1/\n/meta1/.zarray\n"
    );
    assert_eq!(
        ok(&["ls", "-lR", &ds, "/meta1"]),
        "          34  /meta1/.zarray\n"
    );
    // An object lists as itself.
    assert_eq!(ok(&["ls", "-l", &ds, "/data1"]), "         100  /data1\n");
    // The URL forms name the same dataset.
    let url = format!("file://{ds}#mode=nczarr,file");
    assert_eq!(ok(&["ls", &url]), ".nczarr\ndata1\nmeta1/\n");
    assert_eq!(
        ok(&["--backend", "file", "ls", &ds]),
        ".nczarr\ndata1\nmeta1/\n"
    );
    let err = fails(&["ls", &ds, "/nope"], 2);
    assert!(err.contains("NC_EEMPTY") && err.contains("/nope"), "{err}");
    let err = fails(&["ls", &ds, "/a/../b"], 2);
    assert!(err.contains("NC_EINVAL"), "{err}");
}

#[test]
fn tree_dumps_like_zmapio() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    let hex: String = (0..25i32)
        .flat_map(|i| i.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect();
    // netCDF's ref_ut_mapapi_data_nzf.cdl, line for line.
    let expected = format!(
        "[1] /.nczarr : (50) |{METADATA1}|\n[2] /data1 : (100) |{hex}|\n\
         [4] /meta1/.zarray : (34) |{METAARRAY1}|\n"
    );
    assert_eq!(ok(&["tree", "--full", &ds]), expected);
    // The default shows 64 bytes of each content.
    let limited = ok(&["tree", &ds]);
    assert!(
        limited.contains(&format!("[2] /data1 : (100) |{}...|\n", &hex[..128])),
        "{limited}"
    );
    let short = ok(&["tree", "--limit", "4", &ds]);
    assert!(
        short.starts_with("[1] /.nczarr : (50) |{\n\"f...|\n"),
        "{short}"
    );
    assert!(
        short.contains("[2] /data1 : (100) |00000000...|\n"),
        "{short}"
    );
    assert_eq!(
        ok(&["tree", "--limit", "0", &ds, "/meta1"]),
        "[1] /meta1/.zarray : (34) |...|\n"
    );
}

#[test]
fn rm_removes_objects() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    put(&ds, "/g/a/0", b"1");
    put(&ds, "/g/a/1", b"2");
    put(&ds, "/g/b", b"3");
    ok(&["rm", &ds, "/data1"]);
    assert!(!dir.path().join("testmapapi.nzf/data1").exists());
    let err = fails(&["rm", &ds, "/data1"], 2);
    assert!(err.contains("NC_EEMPTY") && err.contains("/data1"), "{err}");
    // An intermediate key needs -r.
    let err = fails(&["rm", &ds, "/g"], 2);
    assert!(err.contains("/g"), "{err}");
    ok(&["rm", "-r", &ds, "/g/a"]);
    assert_eq!(ok(&["ls", "-R", &ds, "/g"]), "/g/b\n");
    fails(&["rm", "-r", &ds, "/g/a"], 2);
    ok(&["rm", "-r", &ds, "/"]);
    assert_eq!(ok(&["ls", "-R", &ds]), "");
}

#[test]
fn info_counts_objects_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    let info = ok(&["info", &ds]);
    let lines: Vec<&str> = info.lines().collect();
    assert!(lines.contains(&"backend:           file"), "{info}");
    assert!(lines.contains(&"objects:           3"), "{info}");
    assert!(lines.contains(&"intermediate keys: 1"), "{info}");
    assert!(lines.contains(&"bytes:             184"), "{info}");
    assert!(lines[0].starts_with("dataset:") && lines[0].ends_with("testmapapi.nzf"));
}

#[test]
fn verify_reads_every_object() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    put(&ds, "/big", &vec![1u8; (1 << 20) + 5]);
    let out = zmap(&["verify", &ds]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("verify: 4 objects, {} bytes: ok\n", 184 + (1 << 20) + 5)
    );
    // Not a terminal: no progress output.
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn backends_lists_all_six() {
    let out = ok(&["backends"]);
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["file", "gnz", "zip", "s3", "mem", "nc4"]);
    for line in out.lines() {
        let state = line.split_whitespace().nth(1).unwrap();
        assert!(state == "built" || state == "not-built", "{line}");
    }
    for backend in ["file", "gnz", "zip", "mem"] {
        assert!(out.contains(&format!("{backend} built\n")), "{out}");
    }
}

fn built(backend: &str) -> bool {
    ok(&["backends"]).contains(&format!("{backend} built\n"))
}

#[test]
fn unbuilt_backends_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    if built("s3") {
        // Built with --features s3: the URL itself is checked.
        let err = fails(&["ls", "s3://"], 2);
        assert!(err.contains("NC_EURL -74"), "{err}");
    } else {
        let err = fails(&["ls", "s3://bucket/root"], 2);
        assert!(
            err.contains("NC_ENOTBUILT -128") && err.contains("s3"),
            "{err}"
        );
        let err = fails(&["cp", &ds, "s3://bucket/root"], 2);
        assert!(err.contains("NC_ENOTBUILT"), "{err}");
    }
    // NCZM_NC4: a directory is not a netCDF-4 file; without libnetcdf the
    // backend says it is not built.
    let err = fails(&["--backend", "nc4", "ls", &ds], 2);
    if built("nc4") {
        assert!(err.contains("NC_ENOTNC -51"), "{err}");
    } else {
        assert!(
            err.contains("NC_ENOTBUILT -128") && err.contains("nc4"),
            "{err}"
        );
    }
}

#[test]
fn memory_datasets_live_for_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    // A copy into memory reads everything and writes it somewhere real.
    ok(&["cp", &ds, "mem://scratch"]);
    let err = fails(&["ls", "mem://scratch"], 2);
    assert!(err.contains("NC_EEMPTY"), "{err}");
    put("mem://m", "/a", b"x");
}

#[test]
fn compact_needs_a_gnz_file() {
    let dir = tempfile::tempdir().unwrap();
    let ds = mapapi_dataset(dir.path());
    fails(&["compact", &ds], 1);
    fails(&["compact", "mem://x.gnz", "--backend", "mem"], 1);
    let gnz = dir.path().join("c.gnz");
    assert!(built("gnz"));
    ok(&["cp", &ds, s(&gnz)]);
    // Grow and shrink objects to leave holes, then compact them away.
    put(s(&gnz), "/big", &vec![3u8; 1 << 20]);
    ok(&["rm", s(&gnz), "/big"]);
    let before = std::fs::metadata(&gnz).unwrap().len();
    let out = ok(&["compact", s(&gnz)]);
    let after = std::fs::metadata(&gnz).unwrap().len();
    assert!(out.contains(&format!("before: {before} bytes")), "{out}");
    assert!(out.contains(&format!("after:  {after} bytes")), "{out}");
    assert!(after < before, "{out}");
    ok(&["verify", s(&gnz)]);
    assert_eq!(
        ok(&["tree", "--full", s(&gnz)]),
        ok(&["tree", "--full", &ds])
    );
    // Not a GNZ file at all, and no file.
    std::fs::write(dir.path().join("bogus.gnz"), b"not a GNZ file").unwrap();
    let err = fails(&["compact", s(&dir.path().join("bogus.gnz"))], 2);
    assert!(err.contains("bogus.gnz"), "{err}");
    let err = fails(&["compact", s(&dir.path().join("missing.gnz"))], 2);
    assert!(err.contains("NC_EEMPTY"), "{err}");
}

/// The value of `name:` in `zmap info` output.
fn info_value(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn info_reports_gnz_holes_and_compact_gives_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let ds = format!("{}/holes.gnz", s(dir.path()));
    ok(&["put", "-c", &ds, "/.zgroup", "-"]);
    for (key, size) in [("/a/big", 50_000), ("/a/small", 100), ("/b/big", 50_000)] {
        put(&ds, key, &vec![7u8; size]);
    }
    ok(&["rm", &ds, "/a/big"]);
    let before = ok(&["info", &ds]);
    let unreferenced = info_value(&before, "gnz unreferenced bytes");
    // The removed 50,000 bytes (and their page padding) are now a hole.
    assert!(unreferenced >= 50_000, "{before}");
    assert!(info_value(&before, "gnz holes") >= 1, "{before}");
    ok(&["compact", &ds]);
    let after = ok(&["info", &ds]);
    assert!(
        info_value(&after, "gnz unreferenced bytes") < 50_000 / 2,
        "{after}"
    );
    assert!(info_value(&after, "gnz file bytes") < info_value(&before, "gnz file bytes"));
    assert_eq!(info_value(&after, "gnz object bytes"), 50_100);
}

/// The library never prints; the tool shows what it reports through
/// `Map::warnings` (here: GNZ arrays that are not keys), on stderr.
#[test]
fn library_warnings_are_printed_by_the_tool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unkeyed.gnz");
    let json = r#"{"arrays": {"x/../y": {"dtype": "|u1", "offset": 4096, "shape": [4]}, "ok": {"dtype": "|u1", "offset": 4100, "shape": [2]}}, "metadata": {}, "version": 1}"#;
    let mut file = vec![0u8; 4102];
    file[..4].copy_from_slice(b"GNZ1");
    file[4..8].copy_from_slice(&(json.len() as u32).to_le_bytes());
    file[8..8 + json.len()].copy_from_slice(json.as_bytes());
    file[4100..4102].copy_from_slice(b"hi");
    std::fs::write(&path, &file).unwrap();
    let out = zmap(&["ls", s(&path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("zmap: warning: ")
            && err.contains("not valid zmap keys")
            && err.contains("x/../y"),
        "{err}"
    );
}

/// `zmap verify` of a sparse GNZ file (4 KiB of data, a header claiming an
/// object of 4 GiB): the holes read as zeros without I/O, so verify reads
/// only the ranges that hold data (the object's last byte here) — its work
/// is bounded by what the file holds, not by the lengths the header claims.
/// Measured by the process's peak resident memory: the holes read through
/// the file's map would become resident page-cache pages (4 GiB; measured
/// 4.2 GB before the fix, and 30 s).
#[test]
// The child is reaped by wait4 (for its resource usage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn verify_of_a_sparse_gnz_file_reads_only_its_data() {
    use std::os::unix::fs::FileExt;
    const LEN: u64 = 4 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.gnz");
    let json = format!(
        "{{\"arrays\": {{\"big\": {{\"dtype\": \"|u1\", \"offset\": 4096, \"order\": \"C\", \
         \"shape\": [{LEN}]}}}}, \"metadata\": {{}}, \"version\": 1}}"
    );
    let mut head = b"GNZ1".to_vec();
    head.extend_from_slice(&(json.len() as u32).to_le_bytes());
    head.extend_from_slice(json.as_bytes());
    let file = std::fs::File::create(&path).unwrap();
    file.write_all_at(&head, 0).unwrap();
    file.write_all_at(b"x", 4096 + LEN - 1).unwrap();
    drop(file);
    let mut child = Command::new(ZMAP)
        .args(["verify", s(&path)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zmap");
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for writes; `pid` is our child,
    // not waited for yet (its `Child` is never waited on).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status:#x}: {err}"
    );
    assert_eq!(out, format!("verify: 1 objects, {LEN} bytes: ok\n"));
    // ru_maxrss is in KiB on Linux.
    assert!(
        usage.ru_maxrss < 256 << 10,
        "verify peaked at {} KiB resident",
        usage.ru_maxrss
    );
}
