//! libzmap's S3 backend against a bare `object_store` client doing the same
//! requests, in the same process, against the server of `ZMAP_TEST_S3_URL`
//! (`bash scripts/seaweedfs.sh run cargo bench --bench s3_overhead`).
//! Prints, per phase, the median wall time of 3 (ZMAP_BENCH_S3_RUNS)
//! interleaved runs of each,
//! their ratio (target: zmap/bare <= 1.10) and the HTTP requests each made.
//! A benchmark, not a test: nothing is asserted.
//!
//! Each zmap phase opens (or creates) its map and closes it. An open must
//! tell a missing dataset (`NC_EEMPTY`), which costs a LIST, and a create
//! must look for a dataset to replace (a LIST too): the bare client sends
//! the same LIST at the start of each phase, as any client with those
//! semantics must. The "open+close" row shows that fixed cost alone.
//!
//! Environment: ZMAP_TEST_S3_URL (http://HOST:PORT/BUCKET/ROOT; unset: skip),
//! ZMAP_BENCH_S3_N (small objects, default 1000), ZMAP_BENCH_S3_RUNS (runs,
//! default 3), AWS_* (credentials, region).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use zmap_core::map::NC_WRITE;
use zmap_core::store::s3::{process_request_counts, RequestCounts};
use zmap_core::{Impl, Key, Map};

const SMALL: usize = 1024;
const PIECE: usize = 1 << 20;
const PIECES: usize = 16;
const BIG: usize = PIECE * PIECES;
/// As the backend (store.rs): 8 MiB parts above 8 MiB, up to 4 in flight.
const PART: usize = 8 << 20;

const PHASES: [&str; 7] = [
    "create+commit",
    "read all",
    "exists+len",
    "search",
    "16 MiB in 1 MiB pieces",
    "16 MiB read",
    "open+close",
];

/// What one run of one phase cost: wall time and requests.
#[derive(Clone, Copy, Default)]
struct Cost {
    time: Duration,
    zmap: RequestCounts,
    bare: RequestCounts,
}

fn key(k: &str) -> Key<'static> {
    Key::parse(k.as_bytes()).expect("key").into_owned()
}

fn small_key(i: usize) -> String {
    format!("/g0/v{}/c.{}", i % 10, i)
}

fn search_prefixes() -> Vec<String> {
    let mut p: Vec<String> = (0..10).map(|j| format!("/g0/v{j}")).collect();
    p.push("/g0".into());
    p.push("/".into());
    p
}

/// Times `f`, with the process's S3 request counts across it.
fn zmap_phase(f: impl FnOnce()) -> Cost {
    let before = process_request_counts();
    let t = Instant::now();
    f();
    let time = t.elapsed();
    Cost {
        time,
        zmap: process_request_counts().since(&before),
        bare: RequestCounts::default(),
    }
}

fn zmap_run(url: &str, n: usize) -> [Cost; 7] {
    let data = vec![7u8; SMALL];
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let keys: Vec<Key<'static>> = (0..n).map(|i| key(&small_key(i))).collect();
    let mut out = [Cost::default(); 7];
    out[0] = zmap_phase(|| {
        let map = Map::create(Impl::S3, url, 0, 0).expect("create");
        for k in &keys {
            map.write(k, 0, &data).expect("write");
        }
        map.flush().expect("flush");
        map.close(false).expect("close");
    });
    out[1] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, 0, 0).expect("open");
        let mut buf = vec![0u8; SMALL];
        for k in &keys {
            map.read(k, 0, &mut buf).expect("read");
        }
        map.close(false).expect("close");
    });
    out[2] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, 0, 0).expect("open");
        for k in &keys {
            map.exists(k).expect("exists");
            assert_eq!(map.len(k).expect("len"), SMALL as u64);
        }
        map.close(false).expect("close");
    });
    out[3] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, 0, 0).expect("open");
        for p in search_prefixes() {
            std::hint::black_box(map.search(&key(&p)).expect("search"));
        }
        map.close(false).expect("close");
    });
    let bigkey = key("/big/c.0");
    out[4] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, NC_WRITE, 0).expect("open");
        for (i, piece) in big.chunks(PIECE).enumerate() {
            map.write(&bigkey, (i * PIECE) as u64, piece)
                .expect("write");
        }
        map.flush().expect("flush");
        map.close(false).expect("close");
    });
    out[5] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, 0, 0).expect("open");
        let mut buf = vec![0u8; BIG];
        map.read(&bigkey, 0, &mut buf).expect("read");
        std::hint::black_box(&buf);
        map.close(false).expect("close");
    });
    out[6] = zmap_phase(|| {
        let map = Map::open(Impl::S3, url, 0, 0).expect("open");
        map.close(false).expect("close");
    });
    out
}

/// What opening an existing dataset needs: is anything below `root/`? (As
/// the backend asks it: one LIST of a few keys.)
async fn open_probe(s3: &AmazonS3, root: &str) {
    let options = PaginatedListOptions {
        max_keys: Some(4),
        ..Default::default()
    };
    let page = s3
        .list_paginated(Some(&format!("{root}/")), options)
        .await
        .expect("open probe");
    assert!(!page.result.objects.is_empty(), "no dataset at {root}");
}

/// The client the backend builds (same configuration, by the backend's own
/// builder), minus its request-counting connector.
fn bare_client(dataset_url: &str) -> AmazonS3 {
    zmap_core::store::s3::client_builder(dataset_url)
        .expect("ZMAP_TEST_S3_URL")
        .build()
        .expect("bare client")
}

fn bare_run(rt: &tokio::runtime::Runtime, s3: &Arc<AmazonS3>, root: &str, n: usize) -> [Cost; 7] {
    let path = |k: &str| Path::from(format!("{root}{k}"));
    let paths: Vec<Path> = (0..n).map(|i| path(&small_key(i))).collect();
    let data = bytes::Bytes::from(vec![7u8; SMALL]);
    let big = bytes::Bytes::from((0..BIG).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut out = [Cost::default(); 7];
    let mut phase = |i: usize, counts: RequestCounts, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        out[i] = Cost {
            time: t.elapsed(),
            zmap: RequestCounts::default(),
            bare: counts,
        };
    };
    let n64 = n as u64;
    phase(
        0,
        RequestCounts {
            list: 1,
            put: n64,
            ..Default::default()
        },
        &mut || {
            rt.block_on(async {
                // Create: is there a dataset to replace?
                let top = Path::from(root);
                std::hint::black_box(s3.list_with_delimiter(Some(&top)).await.expect("list"));
                for p in &paths {
                    s3.put(p, PutPayload::from(data.clone()))
                        .await
                        .expect("put");
                }
            })
        },
    );
    phase(
        1,
        RequestCounts {
            list: 1,
            get: n64,
            ..Default::default()
        },
        &mut || {
            rt.block_on(async {
                open_probe(s3, root).await;
                for p in &paths {
                    let b = s3.get(p).await.expect("get").bytes().await.expect("body");
                    assert_eq!(b.len(), SMALL);
                }
            })
        },
    );
    phase(
        2,
        RequestCounts {
            list: 1,
            head: n64,
            ..Default::default()
        },
        &mut || {
            rt.block_on(async {
                open_probe(s3, root).await;
                for p in &paths {
                    assert_eq!(s3.head(p).await.expect("head").size, SMALL as u64);
                }
            })
        },
    );
    let prefixes = search_prefixes();
    let lists = prefixes.len() as u64;
    phase(
        3,
        RequestCounts {
            list: 1 + lists,
            ..Default::default()
        },
        &mut || {
            rt.block_on(async {
                open_probe(s3, root).await;
                for p in &prefixes {
                    let prefix = Path::from(format!("{root}{}", p.trim_end_matches('/')));
                    std::hint::black_box(
                        s3.list_with_delimiter(Some(&prefix)).await.expect("list"),
                    );
                }
            })
        },
    );
    let bigpath = path("/big/c.0");
    let parts = BIG.div_ceil(PART) as u64;
    let multipart = RequestCounts {
        list: 1,
        multipart_start: 1,
        part: parts,
        multipart_complete: 1,
        ..Default::default()
    };
    phase(4, multipart, &mut || {
        rt.block_on(async {
            open_probe(s3, root).await;
            let mut upload = s3.put_multipart(&bigpath).await.expect("initiate");
            let sent: Vec<_> = (0..BIG)
                .step_by(PART)
                .map(|s| upload.put_part(PutPayload::from(big.slice(s..(s + PART).min(BIG)))))
                .collect();
            let done: Vec<_> = futures_util::stream::iter(sent)
                .buffer_unordered(4)
                .collect()
                .await;
            for r in done {
                r.expect("part");
            }
            upload.complete().await.expect("complete");
        })
    });
    phase(
        5,
        RequestCounts {
            list: 1,
            get: 1,
            ..Default::default()
        },
        &mut || {
            rt.block_on(async {
                open_probe(s3, root).await;
                let b = s3.get_range(&bigpath, 0..BIG as u64).await.expect("get");
                assert_eq!(b.len(), BIG);
            })
        },
    );
    phase(
        6,
        RequestCounts {
            list: 1,
            ..Default::default()
        },
        &mut || rt.block_on(open_probe(s3, root)),
    );
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// `12 PUT` style summary of the nonzero kinds.
fn brief(c: &RequestCounts) -> String {
    let kinds = [
        (c.head, "HEAD"),
        (c.get, "GET"),
        (c.list, "LIST"),
        (c.put, "PUT"),
        (c.multipart_start, "initiate"),
        (c.part, "part"),
        (c.multipart_complete, "complete"),
        (c.delete, "DELETE"),
        (c.bulk_delete, "bulk DELETE"),
        (c.other, "other"),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        format!("{} ({})", c.total(), parts.join(", "))
    }
}

fn main() {
    let Ok(url) = std::env::var("ZMAP_TEST_S3_URL") else {
        println!("s3_overhead: skipped: ZMAP_TEST_S3_URL not set (bash scripts/seaweedfs.sh run cargo bench --bench s3_overhead)");
        return;
    };
    let n: usize = std::env::var("ZMAP_BENCH_S3_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runs: usize = std::env::var("ZMAP_BENCH_S3_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    // http://HOST:PORT/BUCKET/ROOT
    let url = url.trim_end_matches('/').to_string();
    let (scheme, rest) = url
        .split_once("://")
        .expect("ZMAP_TEST_S3_URL: scheme://host/bucket/root");
    let mut segs = rest.splitn(3, '/');
    let host = segs.next().unwrap();
    let bucket = segs
        .next()
        .expect("ZMAP_TEST_S3_URL: no bucket")
        .to_string();
    let root = segs.next().unwrap_or("").to_string();
    let endpoint = format!("{scheme}://{host}");
    let tag = format!(
        "s3-overhead-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let base = if root.is_empty() {
        tag
    } else {
        format!("{root}/{tag}")
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s3 = Arc::new({
        let _g = rt.enter();
        bare_client(&url)
    });

    let mut zmap_runs = Vec::new();
    let mut bare_runs = Vec::new();
    for r in 0..runs {
        let zurl = format!("{endpoint}/{bucket}/{base}/zmap-{r}");
        zmap_runs.push(zmap_run(&zurl, n));
        bare_runs.push(bare_run(&rt, &s3, &format!("{base}/bare-{r}"), n));
        eprintln!("s3_overhead: run {}/{runs} done", r + 1);
    }

    println!(
        "S3 overhead: libzmap vs a bare object_store client, {n} × {SMALL} B objects and one 16 MiB \
         object, {runs} interleaved runs (median), server {endpoint}\n"
    );
    println!("| phase | zmap ms | bare ms | zmap/bare | zmap requests | bare requests |");
    println!("|---|---:|---:|---:|---|---|");
    for (i, name) in PHASES.iter().enumerate() {
        let z = median(zmap_runs.iter().map(|c| c[i].time).collect());
        let b = median(bare_runs.iter().map(|c| c[i].time).collect());
        let ratio = z.as_secs_f64() / b.as_secs_f64();
        let flag = if ratio > 1.10 { " (> 1.10)" } else { "" };
        // Requests: the last run's (they do not vary between runs).
        println!(
            "| {name} | {} | {} | {ratio:.2}×{flag} | {} | {} |",
            ms(z),
            ms(b),
            brief(&zmap_runs[runs - 1][i].zmap),
            brief(&bare_runs[runs - 1][i].bare)
        );
    }
    let total = |runs: &Vec<[Cost; 7]>| -> Duration {
        (0..PHASES.len() - 1)
            .map(|i| median(runs.iter().map(|c| c[i].time).collect()))
            .sum()
    };
    let (zt, bt) = (total(&zmap_runs), total(&bare_runs));
    println!(
        "| all phases but open+close (sum of medians) | {} | {} | {:.2}× | | |",
        ms(zt),
        ms(bt),
        zt.as_secs_f64() / bt.as_secs_f64()
    );
    let up = zmap_runs[runs - 1][4].zmap;
    let search = zmap_runs[runs - 1][3].zmap;
    println!(
        "\n16 MiB written in {PIECES} × 1 MiB pieces: {} upload(s) by zmap; search: {} LIST for {} calls \
         (and 1 for the open).",
        up.uploads(),
        search.list - 1,
        search_prefixes().len()
    );
}
