//! An S3 map used in a fork()ed child: the child must not touch the
//! runtime and connections it inherited (they share the parent's epoll
//! instance), and the parent's map must keep working after the child is
//! gone. Its own binary, so no other test thread holds a lock at the fork.
//! Prints "skipped" and passes when `ZMAP_TEST_S3_URL` is unset.
#![cfg(feature = "s3")]

mod s3_support;

use s3_support::*;
use zmap_core::map::NC_WRITE;

#[test]
fn a_forked_child_uses_the_map_and_the_parent_still_can() {
    let Some(base) = base_url() else { return };
    let url = dataset(&base, "fork");
    let map = create(&url);
    map.write(&key("/parent"), 0, b"before fork").unwrap();
    map.flush().unwrap();
    assert_eq!(read_all(&map, "/parent"), b"before fork");
    map.write(&key("/pending"), 0, b"buffered in the parent")
        .unwrap();

    // Parent and child now use the map at the same time: were the child to
    // reuse the parent's pooled connections, requests and responses of the
    // two processes would interleave on one socket.
    const ROUNDS: usize = 40;
    // SAFETY: fork(2); the child only runs the closure below and _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..ROUNDS {
                assert_eq!(read_all(&map, "/parent"), b"before fork");
            }
            map.write(&key("/child/a"), 0, b"from the child").unwrap();
            map.flush().unwrap();
            // A second map, made in the child.
            let other = open(&url, NC_WRITE);
            other.write(&key("/child/b"), 0, b"second map").unwrap();
            other.close(false).unwrap();
            // Closing drops what the child made, and must leave alone what
            // it inherited (registered in the parent's epoll instance).
            map.close(false).unwrap();
        }))
        .is_ok();
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let t0 = std::time::Instant::now();
    for _ in 0..ROUNDS {
        assert_eq!(read_all(&map, "/parent"), b"before fork");
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status:#x}"
    );

    // The parent's map (its runtime, its connections) still works, and sees
    // what the child uploaded.
    for _ in 0..3 {
        assert_eq!(read_all(&map, "/child/a"), b"from the child");
        assert_eq!(read_all(&map, "/child/b"), b"second map");
    }
    assert_eq!(map.search(&key("/child")).unwrap(), ["a", "b"]);
    let took = t0.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    map.close(false).unwrap();
    let map = open(&url, 0);
    // The child flushed its copy of the parent's buffer too (as stdio does).
    assert_eq!(read_all(&map, "/pending"), b"buffered in the parent");
    map.close(true).unwrap();
}
