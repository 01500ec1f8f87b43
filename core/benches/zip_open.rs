//! Opening a large ZIP archive: how long, how many bytes it reads, and the
//! first chunk after it, for zmap ZIP against zmap GNZ (the same objects)
//! and zarr's ZipStore (2.x and 3.x, on the very archive zmap wrote), in
//! the same run.
//!
//!     cargo bench --bench zip_open
//!
//! Environment: ZMAP_BENCH_DIR (default /dev/shm, else the temporary
//! directory), ZMAP_BENCH_ZIP_N (comma-separated entry counts, default
//! 10000,100000,1000000), ZMAP_BENCH_RUNS (default 5; the median is shown).
//! zarr runs where the repository's .venv-zarr2 / .venv-zarr3 exist.
//! "bytes read" is the process's `rchar` (/proc/self/io) across the open.
//! Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use zmap_core::{Impl, Key, Map};

/// Objects of the archive: 1 KiB each, in 100 groups (the standard workload's keys).
const SIZE: usize = 1024;
const GROUPS: usize = 100;

fn key(i: usize) -> Key<'static> {
    Key::parse(format!("/g0/v{}/c.{i}", i % GROUPS).as_bytes())
        .unwrap()
        .into_owned()
}

fn rchar() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn build(imp: Impl, location: &str, n: usize) {
    let map = Map::create(imp, location, 0, 0).unwrap();
    map.write(
        &Key::parse(b"/.zgroup").unwrap(),
        0,
        b"{\"zarr_format\": 2}",
    )
    .unwrap();
    let mut buf = vec![0u8; SIZE];
    for i in 0..n {
        buf[..8].copy_from_slice(&(i as u64).to_le_bytes());
        map.write(&key(i), 0, &buf).unwrap();
    }
    map.close(false).unwrap();
}

/// (open ms, bytes read by open, first read µs), medians.
fn measure_zmap(imp: Impl, location: &str, n: usize, runs: usize) -> (f64, u64, f64) {
    let (mut opens, mut bytes, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = vec![0u8; SIZE];
    for _ in 0..runs {
        let before = rchar();
        let t0 = Instant::now();
        let map = Map::open(imp, location, 0, 0).unwrap();
        opens.push(t0.elapsed().as_secs_f64() * 1e3);
        bytes.push(rchar() - before);
        let t1 = Instant::now();
        map.read(&key(n / 2), 0, &mut buf).unwrap();
        reads.push(t1.elapsed().as_secs_f64() * 1e6);
        assert_eq!(buf[..8], ((n / 2) as u64).to_le_bytes());
        map.close(false).unwrap();
    }
    bytes.sort_unstable();
    (median(opens), bytes[bytes.len() / 2], median(reads))
}

const ZARR_PROBE: &str = r#"
import os, sys, time, asyncio
path, key, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import zarr
def rchar():
    for line in open("/proc/self/io"):
        if line.startswith("rchar: "):
            return int(line.split()[1])
out = []
for _ in range(runs):
    b0 = rchar(); t0 = time.perf_counter()
    if zarr.__version__.startswith("2."):
        store = zarr.ZipStore(path, mode="r")
        t1 = time.perf_counter(); b1 = rchar()
        value = store[key]
        t2 = time.perf_counter()
    else:
        from zarr.core.buffer import default_buffer_prototype
        store = zarr.storage.ZipStore(path, mode="r")
        store._sync_open()
        t1 = time.perf_counter(); b1 = rchar()
        value = asyncio.run(store.get(key, prototype=default_buffer_prototype())).to_bytes()
        t2 = time.perf_counter()
    assert len(value) == 1024
    store.close()
    out.append(((t1 - t0) * 1e3, b1 - b0, (t2 - t1) * 1e6))
out.sort()
o = sorted(x[0] for x in out)[len(out) // 2]
b = sorted(x[1] for x in out)[len(out) // 2]
r = sorted(x[2] for x in out)[len(out) // 2]
print(f"{o} {b} {r}")
"#;

fn measure_zarr(python: &Path, archive: &str, n: usize, runs: usize) -> Option<(f64, u64, f64)> {
    let key = key(n / 2);
    let out = Command::new(python)
        .args(["-c", ZARR_PROBE, archive, key.relative(), &runs.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

fn main() {
    let base = std::env::var_os("ZMAP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let dir = tempfile::tempdir_in(&base).unwrap();
    let counts: Vec<usize> = std::env::var("ZMAP_BENCH_ZIP_N")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let runs: usize = std::env::var("ZMAP_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let pythons: Vec<(&str, PathBuf)> = [
        ("zarr 2 ZipStore", repo.join(".venv-zarr2/bin/python")),
        ("zarr 3 ZipStore", repo.join(".venv-zarr3/bin/python")),
    ]
    .into_iter()
    .filter(|(_, p)| p.exists())
    .collect();

    println!(
        "Open of a large archive ({}; {runs} runs, medians): {SIZE}-byte objects \
              in {GROUPS} groups; zarr opens the archive zmap ZIP wrote.\n",
        base.display()
    );
    println!(
        "| entries | archive MiB | store | open ms | bytes read by open | read of one object µs |"
    );
    println!("|---:|---:|---|---:|---:|---:|");
    for &n in &counts {
        let zip = dir.path().join(format!("ds-{n}.zip"));
        let gnz = dir.path().join(format!("ds-{n}.gnz"));
        let (zip_s, gnz_s) = (zip.to_str().unwrap(), gnz.to_str().unwrap());
        build(Impl::Zip, zip_s, n);
        build(Impl::Gnz, gnz_s, n);
        let mib = std::fs::metadata(&zip).unwrap().len() as f64 / (1 << 20) as f64;
        let mut rows = vec![
            ("zmap ZIP", Some(measure_zmap(Impl::Zip, zip_s, n, runs))),
            (
                "zmap GNZ (same objects)",
                Some(measure_zmap(Impl::Gnz, gnz_s, n, runs)),
            ),
        ];
        for (label, python) in &pythons {
            rows.push((label, measure_zarr(python, zip_s, n, runs)));
        }
        for (label, m) in rows {
            match m {
                Some((open, bytes, read)) => {
                    println!("| {n} | {mib:.1} | {label} | {open:.2} | {bytes} | {read:.1} |")
                }
                None => println!("| {n} | {mib:.1} | {label} | failed | | |"),
            }
        }
        let _ = std::fs::remove_file(&zip);
        let _ = std::fs::remove_file(&gnz);
    }
}
