//! libzmap's MEM backend through its C API (the `nczmap_*` entry points,
//! called from Rust, so the FFI layer's handle lookup, pointer checks and key
//! parsing are counted) against object_store's `InMemory`, on the same keys
//! and sizes, in the same process, runs interleaved
//! (`cargo bench --bench mem_vs_object_store`).
//!
//! The workload is bench/zmap_bench.c's small-object one: N = 10,000
//! (ZMAP_BENCH_MEM_N) objects of 1 KiB under `/g0/v{i%100}/c.{i}` (object_store
//! paths have no leading `/`), created, read whole, then `exists`+`len`
//! (`head` for object_store). Each side copies the caller's bytes into a new
//! allocation on every put (`PutPayload` from `Bytes::copy_from_slice`) and
//! into the caller's buffer on every read; each side parses the key text of
//! every call (`Path::parse`, `Key::parse`). object_store's calls are awaited
//! one at a time inside one `block_on` of a current-thread tokio runtime.
//!
//! Prints the median rate of 7 (ZMAP_BENCH_MEM_RUNS) runs of each and the
//! median of the per-run ratios zmap / InMemory (target for create: > 1).
//! A benchmark, not a test: nothing is asserted but the values read back.

use std::ffi::CString;
use std::hint::black_box;
use std::os::raw::c_void;
use std::time::Instant;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use zmap::ffi::map::{
    nczmap_close, nczmap_create, nczmap_exists, nczmap_len, nczmap_read, nczmap_write, NCZMAP,
};
use zmap_core::codes::NC_NOERR;

const SIZE: usize = 1024;
const GROUPS: usize = 100;
const PHASES: [&str; 3] = ["create", "read", "exists+len"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The object's bytes: its number, repeated (so a read checks the object).
fn stamp(buf: &mut [u8], i: usize) {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) ^ j) as u8;
    }
}

fn check(st: i32, what: &str) {
    assert_eq!(st, NC_NOERR, "zmap {what} failed");
}

/// One run of libzmap's MEM backend; seconds per phase.
fn zmap_run(keys: &[CString], run: usize) -> [f64; 3] {
    let name = CString::new(format!("mem://bench-mem-vs-object-store-{run}")).unwrap();
    let mut map: *mut NCZMAP = std::ptr::null_mut();
    let mut buf = vec![0u8; SIZE];
    let mut times = [0.0; 3];
    // SAFETY: every pointer passed is a live CString, buffer or out-parameter
    // of this function; `map` is the handle create gave, closed once at the end.
    unsafe {
        check(
            nczmap_create(0, name.as_ptr(), 0, 0, std::ptr::null_mut(), &mut map),
            "create",
        );
        let t = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            stamp(&mut buf, i);
            check(
                nczmap_write(
                    map,
                    k.as_ptr(),
                    0,
                    SIZE as u64,
                    buf.as_ptr() as *const c_void,
                ),
                "write",
            );
        }
        times[0] = t.elapsed().as_secs_f64();
        let mut want = vec![0u8; SIZE];
        let t = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            check(
                nczmap_read(
                    map,
                    k.as_ptr(),
                    0,
                    SIZE as u64,
                    buf.as_mut_ptr() as *mut c_void,
                ),
                "read",
            );
            stamp(&mut want, i);
            assert!(buf == want, "zmap read back wrong bytes");
        }
        times[1] = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for k in keys {
            let mut len = 0;
            check(nczmap_exists(map, k.as_ptr()), "exists");
            check(nczmap_len(map, k.as_ptr(), &mut len), "len");
            assert_eq!(len, SIZE as u64);
        }
        times[2] = t.elapsed().as_secs_f64();
        check(nczmap_close(map, 1), "close");
    }
    times
}

/// One run of object_store's `InMemory`; seconds per phase.
fn object_store_run(rt: &tokio::runtime::Runtime, keys: &[String]) -> [f64; 3] {
    let store = InMemory::new();
    let mut buf = vec![0u8; SIZE];
    let mut times = [0.0; 3];
    rt.block_on(async {
        let t = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            stamp(&mut buf, i);
            let path = Path::parse(k).expect("path");
            let payload = PutPayload::from(Bytes::copy_from_slice(&buf));
            store.put(&path, payload).await.expect("put");
        }
        times[0] = t.elapsed().as_secs_f64();
        let mut want = vec![0u8; SIZE];
        let t = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            let path = Path::parse(k).expect("path");
            let got = store.get(&path).await.expect("get");
            let bytes = got.bytes().await.expect("bytes");
            buf.copy_from_slice(&bytes);
            stamp(&mut want, i);
            assert!(buf == want, "InMemory read back wrong bytes");
        }
        times[1] = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for k in keys {
            let path = Path::parse(k).expect("path");
            let meta = store.head(&path).await.expect("head");
            assert_eq!(black_box(meta.size), SIZE as u64);
        }
        times[2] = t.elapsed().as_secs_f64();
    });
    times
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.0}k", x / 1e3)
    }
}

fn main() {
    let n = env_or("ZMAP_BENCH_MEM_N", 10_000);
    let runs = env_or("ZMAP_BENCH_MEM_RUNS", 7).max(1);
    let zmap_keys: Vec<CString> = (0..n)
        .map(|i| CString::new(format!("/g0/v{}/c.{i}", i % GROUPS)).unwrap())
        .collect();
    let store_keys: Vec<String> = (0..n)
        .map(|i| format!("g0/v{}/c.{i}", i % GROUPS))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "MEM (C API) vs object_store InMemory: {n} objects of {SIZE} B, {runs} runs, interleaved; load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let mut zmap_times = Vec::new();
    let mut store_times = Vec::new();
    for run in 0..runs {
        // Alternate which goes first, so neither always runs on a warmer heap.
        if run % 2 == 0 {
            zmap_times.push(zmap_run(&zmap_keys, run));
            store_times.push(object_store_run(&rt, &store_keys));
        } else {
            store_times.push(object_store_run(&rt, &store_keys));
            zmap_times.push(zmap_run(&zmap_keys, run));
        }
    }
    println!();
    println!("| phase | zmap MEM ops/s | InMemory ops/s | zmap / InMemory (median of per-run ratios, min–max) |");
    println!("|---|---:|---:|---:|");
    for (p, phase) in PHASES.iter().enumerate() {
        let ops = n as f64;
        let z = median(zmap_times.iter().map(|t| ops / t[p]).collect());
        let s = median(store_times.iter().map(|t| ops / t[p]).collect());
        let ratios: Vec<f64> = zmap_times
            .iter()
            .zip(&store_times)
            .map(|(zt, st)| st[p] / zt[p])
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| {phase} | {} | {} | {:.2}× ({lo:.2}×–{hi:.2}×) |",
            rate(z),
            rate(s),
            median(ratios)
        );
    }
}
