//! The S3 backend against a real server (SeaweedFS via scripts/seaweedfs.sh):
//! what the shared conformance suite cannot see — pagination, segment-aware
//! prefixes, neighbouring datasets, request counts of the write-back buffer,
//! search and prefix checks, tokio callers, and a server that goes away.
//! Each test prints "skipped" and passes when `ZMAP_TEST_S3_URL` is unset.
#![cfg(feature = "s3")]

mod s3_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use s3_support::*;
use zmap_core::codes::*;
use zmap_core::map::{NC_NOCLOBBER, NC_WRITE};
use zmap_core::store::s3::{request_counts, RequestCounts, MULTIPART_THRESHOLD};
use zmap_core::{Impl, Map};

fn counts(url: &str) -> RequestCounts {
    request_counts(url).expect("a map was opened on this dataset")
}

#[test]
fn pagination_over_1000_keys() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "many");
    const N: usize = 1100;
    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    for i in 0..N {
        map.write(
            &key(&format!("/many/k{i:04}")),
            0,
            format!("{i}").as_bytes(),
        )
        .unwrap();
    }
    map.close(false).unwrap();
    assert_eq!(counts(&url).put, N as u64 + 1);

    let map = open(&url, 0);
    let before = counts(&url);
    let names = map.search(&key("/many")).unwrap();
    let spent = counts(&url).since(&before);
    assert_eq!(names.len(), N);
    assert_eq!(names[0], "k0000");
    assert_eq!(names[N - 1], format!("k{:04}", N - 1));
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(spent.list, 2, "1100 keys are two pages: {spent}");
    assert_eq!(spent.total(), 2);
    assert_eq!(read_all(&map, "/many/k1099"), b"1099");
    map.close(false).unwrap();

    // Deleting pages through all of them too.
    let map = open(&url, NC_WRITE);
    map.close(true).unwrap();
    let spent = counts(&url);
    assert!(spent.list >= 2 && spent.bulk_delete >= 2, "{spent}");
    assert_eq!(code(Map::open(Impl::S3, &url, 0, 0)), NC_EEMPTY);
}

#[test]
fn search_and_prefixes_are_segment_aware() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "segments");
    let map = create(&url);
    for k in ["/data1/a", "/data10/b", "/data1x", "/data1.z/c"] {
        map.write(&key(k), 0, k.as_bytes()).unwrap();
    }
    map.close(false).unwrap();
    let map = open(&url, NC_WRITE);
    assert_eq!(map.search(&key("/data1")).unwrap(), ["a"]);
    assert_eq!(map.search(&key("/data10")).unwrap(), ["b"]);
    assert!(map.search(&key("/data")).unwrap().is_empty());
    assert_eq!(
        map.search(&key("/")).unwrap(),
        ["data1", "data1.z", "data10", "data1x"]
    );
    // /data1 is an intermediate key; /data1x an object: neither conflicts
    // with the other, checked against the server (not the buffer).
    assert_eq!(code(map.write(&key("/data1"), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.write(&key("/data1x/y"), 0, b"x")), NC_EINVAL);
    map.write(&key("/data1/b"), 0, b"ok").unwrap();
    map.write(&key("/data100"), 0, b"ok").unwrap();
    map.close(false).unwrap();
    let map = open(&url, 0);
    assert_eq!(map.search(&key("/data1")).unwrap(), ["a", "b"]);
    map.close(true).unwrap();
}

#[test]
fn neighbour_with_a_shared_string_prefix_survives() {
    let Some(base) = base_url() else { return };
    let root = dataset(&base, "root");
    let root2 = format!("{root}2");
    for url in [&root, &root2] {
        let map = create(url);
        map.write(&key("/.zgroup"), 0, url.as_bytes()).unwrap();
        map.write(&key("/v/0"), 0, b"chunk").unwrap();
        map.close(false).unwrap();
    }
    // Re-creating (clobbering) and deleting root2 leaves root alone...
    let map = create(&root2);
    assert!(map.search(&key("/")).unwrap().is_empty());
    map.write(&key("/.zgroup"), 0, b"new").unwrap();
    map.close(false).unwrap();
    open(&root2, NC_WRITE).close(true).unwrap();
    assert_eq!(code(Map::open(Impl::S3, &root2, 0, 0)), NC_EEMPTY);
    let map = open(&root, 0);
    assert_eq!(read_all(&map, "/.zgroup"), root.as_bytes());
    assert_eq!(read_all(&map, "/v/0"), b"chunk");
    map.close(false).unwrap();
    // ...and the other way round.
    let map = create(&root2);
    map.write(&key("/.zgroup"), 0, b"2").unwrap();
    map.close(false).unwrap();
    open(&root, 0).close(true).unwrap();
    let map = open(&root2, 0);
    assert_eq!(read_all(&map, "/.zgroup"), b"2");
    map.close(true).unwrap();
}

#[test]
fn sixteen_mib_in_one_mib_pieces_is_one_upload() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "big");
    const MIB: usize = 1 << 20;
    let piece = |i: usize| vec![i as u8 + 1; MIB];
    let map = create(&url);
    for i in 0..16 {
        map.write(&key("/var/0.0"), (i * MIB) as u64, &piece(i))
            .unwrap();
    }
    // Reads and lengths see the pending object; nothing was sent yet.
    assert_eq!(map.len(&key("/var/0.0")).unwrap(), 16 * MIB as u64);
    assert_eq!(counts(&url).total(), 1, "only create's LIST so far");
    map.close(false).unwrap();
    let spent = counts(&url);
    const { assert!(16 * MIB > MULTIPART_THRESHOLD) };
    assert_eq!(spent.uploads(), 1, "{spent}");
    assert_eq!(spent.multipart_complete, 1, "{spent}");
    assert_eq!(spent.put, 0, "{spent}");
    assert_eq!(spent.get, 0, "no read-modify-write: {spent}");
    assert_eq!(spent.part, 2, "two 8 MiB parts: {spent}");

    // Patching 1 MiB of the uploaded object and appending 5 bytes (a last
    // part that is not whole pieces): one GET of it, one upload.
    let map = open(&url, NC_WRITE);
    map.write(&key("/var/0.0"), (3 * MIB) as u64, &piece(100))
        .unwrap();
    map.write(&key("/var/0.0"), (16 * MIB) as u64, b"tail!")
        .unwrap();
    map.close(false).unwrap();
    let spent = counts(&url);
    assert_eq!((spent.get, spent.uploads()), (1, 1), "{spent}");
    assert_eq!(spent.part, 3, "8 MiB, 8 MiB, 5 bytes: {spent}");

    let map = open(&url, 0);
    assert_eq!(map.len(&key("/var/0.0")).unwrap(), 16 * MIB as u64 + 5);
    let mut tail = [0u8; 7];
    map.read(&key("/var/0.0"), (16 * MIB - 2) as u64, &mut tail)
        .unwrap();
    assert_eq!(&tail, &[16, 16, b't', b'a', b'i', b'l', b'!']);
    let mut buf = vec![0u8; MIB];
    for i in 0..16 {
        map.read(&key("/var/0.0"), (i * MIB) as u64, &mut buf)
            .unwrap();
        let want = if i == 3 { 101 } else { i as u8 + 1 };
        assert!(buf.iter().all(|&b| b == want), "piece {i}");
    }
    // A read across the end is NC_EEDGE and leaves the buffer alone.
    buf.fill(7);
    assert_eq!(
        code(map.read(&key("/var/0.0"), (16 * MIB - 10) as u64, &mut buf)),
        NC_EEDGE
    );
    assert!(buf.iter().all(|&b| b == 7));
    map.close(true).unwrap();
}

#[test]
fn search_costs_one_list_request() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "search");
    let map = create(&url);
    for k in ["/.zgroup", "/a/.zarray", "/a/0", "/a/1", "/b/c/d", "/e"] {
        map.write(&key(k), 0, b"x").unwrap();
    }
    map.close(false).unwrap();
    let map = open(&url, 0);
    for (prefix, want) in [
        ("/", &[".zgroup", "a", "b", "e"][..]),
        ("/a", &[".zarray", "0", "1"][..]),
        ("/b", &["c"][..]),
        ("/e", &[][..]),
        ("/missing", &[][..]),
    ] {
        let before = counts(&url);
        assert_eq!(map.search(&key(prefix)).unwrap(), want, "{prefix}");
        let spent = counts(&url).since(&before);
        assert_eq!((spent.list, spent.total()), (1, 1), "{prefix}: {spent}");
    }
    map.close(true).unwrap();
}

#[test]
fn pending_writes_are_seen_by_their_map_only_until_flush() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "pending");
    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.flush().unwrap();
    map.write(&key("/g/obj"), 0, b"abc").unwrap();
    map.write(&key("/g/obj"), 10, b"z").unwrap();
    assert_eq!(map.len(&key("/g/obj")).unwrap(), 11);
    assert_eq!(map.search(&key("/")).unwrap(), [".zgroup", "g"]);
    assert_eq!(map.search(&key("/g")).unwrap(), ["obj"]);
    let mut buf = [9u8; 11];
    map.read(&key("/g/obj"), 0, &mut buf).unwrap();
    assert_eq!(&buf, b"abc\0\0\0\0\0\0\0z");
    // Another map sees only what was flushed.
    let other = open(&url, 0);
    assert_eq!(code(other.exists(&key("/g/obj"))), NC_EEMPTY);
    assert_eq!(other.search(&key("/")).unwrap(), [".zgroup"]);
    map.flush().unwrap();
    assert_eq!(read_all(&other, "/g/obj"), b"abc\0\0\0\0\0\0\0z");
    other.close(false).unwrap();
    // remove of an object that was only ever buffered costs nothing.
    map.write(&key("/tmp/x"), 0, b"1").unwrap();
    let before = counts(&url);
    map.remove(&key("/tmp/x")).unwrap();
    assert_eq!(counts(&url).since(&before).total(), 0);
    map.close(true).unwrap();
}

#[test]
fn new_keys_in_a_fresh_dataset_cost_no_checks() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "fresh");
    let map = create(&url);
    let after_create = counts(&url);
    for i in 0..50 {
        map.write(&key(&format!("/arr/{i}")), 0, b"c").unwrap();
    }
    map.define(&key("/arr/.zarray")).unwrap();
    assert_eq!(code(map.write(&key("/arr/3/x"), 0, b"c")), NC_EINVAL);
    assert_eq!(code(map.define(&key("/arr"))), NC_EINVAL);
    assert_eq!(counts(&url).since(&after_create).total(), 0);
    map.close(false).unwrap();
    assert_eq!(counts(&url).since(&after_create).put, 51);

    // Reopened, the same checks ask the server, once per intermediate key.
    let map = open(&url, NC_WRITE);
    let before = counts(&url);
    assert_eq!(code(map.write(&key("/arr/3/x"), 0, b"c")), NC_EINVAL);
    assert_eq!(code(map.define(&key("/arr"))), NC_EINVAL);
    map.write(&key("/arr/50"), 0, b"c").unwrap();
    map.write(&key("/arr/51"), 0, b"c").unwrap();
    let spent = counts(&url).since(&before);
    // /arr/3/x: HEAD it, HEAD + LIST /arr (once per map), HEAD /arr/3 (an
    // object, now known). /arr: HEAD; /arr/3 lies below it (known). /arr/50
    // and /arr/51: HEAD, LIST below it.
    assert_eq!((spent.head, spent.list), (6, 3), "{spent}");
    assert_eq!(spent.uploads(), 0);
    map.close(true).unwrap();
}

#[test]
fn s3_scheme_urls_use_the_environment() {
    let Some(base) = base_url() else { return };
    if std::env::var("AWS_ENDPOINT").is_err() {
        println!("skipped: AWS_ENDPOINT is not set");
        return;
    }
    // http://host:port/bucket/run/name and s3://bucket/run/name are the
    // same dataset when AWS_ENDPOINT is http://host:port.
    let (scheme, rest) = base.split_once("://").unwrap();
    let (host, bucket_and_root) = rest.split_once('/').unwrap();
    let name = dataset("", "scheme");
    let s3_url = format!("s3://{bucket_and_root}{name}");
    let http_url = format!("{scheme}://{host}/{bucket_and_root}{name}");
    let map = create(&s3_url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.close(false).unwrap();
    let map = open(&http_url, 0);
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(false).unwrap();
    open(&s3_url, 0).close(true).unwrap();
    assert_eq!(code(Map::open(Impl::S3, &http_url, 0, 0)), NC_EEMPTY);
}

#[test]
fn works_inside_a_tokio_runtime() {
    let Some(base) = base_url() else { return };
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, runtime) in [("current", &current), ("multi", &multi)] {
        let url = dataset(&base, &format!("tokio-{name}"));
        runtime.block_on(async {
            let map = create(&url);
            map.write(&key("/a/b"), 0, b"inside").unwrap();
            map.close(false).unwrap();
            let map = open(&url, 0);
            assert_eq!(read_all(&map, "/a/b"), b"inside");
            assert_eq!(map.search(&key("/a")).unwrap(), ["b"]);
            map.close(true).unwrap();
        });
        // And from a task on the runtime's own threads.
        let task_url = format!("{url}-task");
        runtime
            .block_on(runtime.spawn(async move {
                let map = create(&task_url);
                map.write(&key("/x"), 0, b"task").unwrap();
                map.close(false).unwrap();
                let map = open(&task_url, 0);
                assert_eq!(read_all(&map, "/x"), b"task");
                map.close(true).unwrap();
            }))
            .unwrap();
    }
}

/// A private server, stopped (SIGKILL) in the middle of the test: every
/// operation then fails with NC_ES3, quickly, and nothing panics.
#[test]
fn server_stopped_mid_run_gives_clean_errors() {
    if base_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let envfile = dir.path().join("server.env");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/seaweedfs.sh");
    let mut server = Command::new("bash")
        .arg(script)
        .arg("serve")
        .arg(&envfile)
        .arg("outage")
        .stdin(Stdio::piped())
        .spawn()
        .expect("start a private server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !envfile.exists() {
        assert!(Instant::now() < deadline, "private server did not start");
        assert!(server.try_wait().unwrap().is_none(), "server script failed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let vars: Vec<(String, String)> = std::fs::read_to_string(&envfile)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let url = format!("{}/outage", var("ZMAP_TEST_S3_URL"));
    let pid: i32 = var("ZMAP_S3_PID").parse().unwrap();

    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.flush().unwrap();
    map.write(&key("/pending"), 0, b"not yet uploaded").unwrap();
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");

    // SAFETY: plain kill(2) of the server process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    std::thread::sleep(Duration::from_millis(200));

    let timed = |what: &str, f: &dyn Fn() -> i32| {
        let t0 = Instant::now();
        let rc = f();
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(15), "{what} took {took:?}");
        assert_eq!(rc, NC_ES3, "{what}");
    };
    timed("len", &|| code(map.len(&key("/.zgroup"))));
    timed("read", &|| {
        code(map.read(&key("/.zgroup"), 0, &mut [0u8; 2]))
    });
    timed("search", &|| code(map.search(&key("/"))));
    timed("flush", &|| code(map.flush()));
    // Pending data stays readable in the map after the failed upload.
    assert_eq!(read_all(&map, "/pending"), b"not yet uploaded");
    timed("open", &|| code(Map::open(Impl::S3, &url, 0, 0)));
    timed("create", &|| code(Map::create(Impl::S3, &url, 0, 0)));
    let t0 = Instant::now();
    assert_eq!(code(map.close(false)), NC_ES3, "close");
    assert!(t0.elapsed() < Duration::from_secs(15), "close");

    drop(server.stdin.take());
    let status = server.wait().unwrap();
    assert!(status.success(), "server script: {status}");
    std::io::stdout().flush().unwrap();
}

/// S3 limits whole object names (root + key) to 1024 bytes: the longest key
/// works, one byte more is refused before anything is sent.
#[test]
fn keys_up_to_the_object_name_limit() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "long");
    let root_len = url
        .split_once("://")
        .unwrap()
        .1
        .splitn(3, '/')
        .nth(2)
        .unwrap()
        .len();
    let room = 1024 - root_len; // for "/" + segments
    let segment = |n: usize| "s".repeat(n);
    let mut longest = String::new();
    while longest.len() + 256 <= room {
        longest.push('/');
        longest.push_str(&segment(255));
    }
    let rest = room - longest.len() - 1;
    longest.push('/');
    longest.push_str(&segment(rest));
    assert_eq!(longest.len(), room);
    let map = create(&url);
    map.write(&key(&longest), 0, b"fits").unwrap();
    let too_long = format!("{longest}t");
    let before = counts(&url);
    assert_eq!(code(map.write(&key(&too_long), 0, b"x")), NC_EINVAL);
    assert_eq!(code(map.define(&key(&too_long))), NC_EINVAL);
    assert_eq!(code(map.len(&key(&too_long))), NC_EEMPTY);
    assert_eq!(counts(&url).since(&before).total(), 0);
    map.close(false).unwrap();
    let map = open(&url, 0);
    assert_eq!(read_all(&map, &longest), b"fits");
    map.close(true).unwrap();
}

/// A client of our own, to put things into a dataset's prefix behind the
/// library's back: (bucket-relative root, client).
fn raw_client(url: &str) -> (String, object_store::aws::AmazonS3) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let (bucket, root) = path.split_once('/').unwrap();
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_endpoint(format!("{scheme}://{host}"))
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .build()
        .unwrap();
    (root.to_string(), s3)
}

#[test]
fn create_keeps_a_prefix_that_holds_no_dataset() {
    use object_store::path::Path;
    use object_store::ObjectStoreExt;
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "foreign");
    let (root, s3) = raw_client(&url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let foreign = Path::parse(format!("{root}/not/a/dataset")).unwrap();
    rt.block_on(s3.put(&foreign, "precious".into())).unwrap();
    assert_eq!(code(Map::create(Impl::S3, &url, 0, 0)), NC_EEXIST);
    assert_eq!(rt.block_on(s3.head(&foreign)).unwrap().size, 8);
    // NOCLOBBER opens it as it is.
    let map = Map::create(Impl::S3, &url, NC_NOCLOBBER, 0).unwrap();
    assert_eq!(read_all(&map, "/not/a/dataset"), b"precious");
    map.close(false).unwrap();
    // Once the object is gone (a server may keep its empty directories,
    // which list as common prefixes), create works and lists nothing.
    rt.block_on(s3.delete(&foreign)).unwrap();
    let map = create(&url);
    assert!(map.search(&key("/")).unwrap().is_empty());
    map.close(true).unwrap();
}

#[test]
fn removing_the_last_object_below_a_key_removes_the_key() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "prune");
    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.write(&key("/g/h/obj"), 0, b"1").unwrap();
    map.write(&key("/g/other"), 0, b"2").unwrap();
    map.close(false).unwrap();
    let map = open(&url, NC_WRITE);
    map.remove(&key("/g/h/obj")).unwrap();
    assert_eq!(map.search(&key("/g")).unwrap(), ["other"]);
    map.remove(&key("/g/other")).unwrap();
    assert_eq!(map.search(&key("/")).unwrap(), [".zgroup"]);
    assert_eq!(code(map.remove(&key("/g/other"))), NC_EEMPTY);
    // The removed intermediate key can now be an object.
    map.write(&key("/g"), 0, b"leaf").unwrap();
    map.close(false).unwrap();
    let map = open(&url, 0);
    assert_eq!(map.search(&key("/")).unwrap(), [".zgroup", "g"]);
    assert_eq!(read_all(&map, "/g"), b"leaf");
    map.close(true).unwrap();
}
