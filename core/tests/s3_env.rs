//! S3 behaviour that depends on process-wide environment variables, so it
//! runs as one test in its own binary: wrong credentials, credentials from
//! the shared files (`~/.aws/credentials`), and the bound of
//! the write-back buffer (`ZMAP_S3_BUFFER_BYTES`). Prints "skipped" and
//! passes when `ZMAP_TEST_S3_URL` is unset.
#![cfg(feature = "s3")]

mod s3_support;

use s3_support::*;
use zmap_core::codes::*;
use zmap_core::map::NC_WRITE;
use zmap_core::store::s3::request_counts;
use zmap_core::{Impl, Map};

#[test]
fn environment_dependent_behaviour() {
    let Some(base) = base_url() else { return };
    wrong_credentials_are_an_auth_error(&base);
    credentials_come_from_the_shared_files(&base);
    the_write_buffer_is_bounded(&base);
    a_malformed_buffer_size_is_refused(&base);
}

fn wrong_credentials_are_an_auth_error(base: &str) {
    let url = dataset(base, "auth");
    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.close(false).unwrap();
    let good = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let good_id = std::env::var("AWS_ACCESS_KEY_ID").unwrap();

    std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let denied = [NC_EAUTH, NC_EACCESS];
    let rc = code(Map::open(Impl::S3, &url, 0, 0));
    assert!(denied.contains(&rc), "open with a wrong secret: {rc}");
    let rc = code(Map::create(Impl::S3, &url, 0, 0));
    assert!(denied.contains(&rc), "create with a wrong secret: {rc}");
    std::env::set_var("AWS_ACCESS_KEY_ID", "nobody");
    let rc = code(Map::open(Impl::S3, &url, NC_WRITE, 0));
    assert!(denied.contains(&rc), "open with an unknown key id: {rc}");

    // A map opened with good credentials keeps them.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &good);
    std::env::set_var("AWS_ACCESS_KEY_ID", &good_id);
    let map = open(&url, 0);
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(true).unwrap();
}

/// Without `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the keys come from
/// the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, profile
/// `AWS_PROFILE`), as netCDF users set them; the environment wins over it.
fn credentials_come_from_the_shared_files(base: &str) {
    let url = dataset(base, "profile");
    let map = create(&url);
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.close(false).unwrap();
    let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\
             [zmap-test]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .unwrap();
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &file);
    std::env::set_var("AWS_CONFIG_FILE", dir.path().join("no-config"));
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");

    // Profile "default" holds wrong keys: refused.
    let rc = code(Map::open(Impl::S3, &url, 0, 0));
    assert!(
        [NC_EAUTH, NC_EACCESS].contains(&rc),
        "default profile: {rc}"
    );
    // Profile "zmap-test" holds the right ones.
    std::env::set_var("AWS_PROFILE", "zmap-test");
    let map = open(&url, 0);
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(false).unwrap();
    // The environment wins over the file.
    std::env::set_var("AWS_PROFILE", "default");
    std::env::set_var("AWS_ACCESS_KEY_ID", &id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &secret);
    let map = open(&url, NC_WRITE);
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(true).unwrap();
    std::env::remove_var("AWS_PROFILE");
    std::env::remove_var("AWS_SHARED_CREDENTIALS_FILE");
    std::env::remove_var("AWS_CONFIG_FILE");
}

fn the_write_buffer_is_bounded(base: &str) {
    std::env::set_var("ZMAP_S3_BUFFER_BYTES", "1M");
    let url = dataset(base, "bounded");
    let map = create(&url);
    let part = vec![5u8; 600 << 10];
    map.write(&key("/a"), 0, &part).unwrap();
    assert_eq!(request_counts(&url).unwrap().uploads(), 0);
    // 1.2 MiB buffered > 1 MiB: the oldest object (/a) goes up now.
    map.write(&key("/b"), 0, &part).unwrap();
    assert_eq!(request_counts(&url).unwrap().uploads(), 1);
    // Still readable, now from the server.
    assert_eq!(read_all(&map, "/a"), part);
    map.write(&key("/c"), 0, &part).unwrap();
    assert_eq!(request_counts(&url).unwrap().uploads(), 2);
    // An object larger than the whole buffer is uploaded as soon as written.
    map.write(&key("/huge"), 0, &vec![7u8; 2 << 20]).unwrap();
    assert_eq!(request_counts(&url).unwrap().uploads(), 4);
    map.close(false).unwrap();
    assert_eq!(request_counts(&url).unwrap().uploads(), 4);
    std::env::remove_var("ZMAP_S3_BUFFER_BYTES");
    let map = open(&url, 0);
    assert_eq!(map.search(&key("/")).unwrap(), ["a", "b", "c", "huge"]);
    assert_eq!(read_all(&map, "/c"), part);
    assert_eq!(map.len(&key("/huge")).unwrap(), 2 << 20);
    map.close(true).unwrap();
}

fn a_malformed_buffer_size_is_refused(base: &str) {
    std::env::set_var("ZMAP_S3_BUFFER_BYTES", "lots");
    let url = dataset(base, "badsize");
    assert_eq!(code(Map::create(Impl::S3, &url, 0, 0)), NC_EINVAL);
    std::env::remove_var("ZMAP_S3_BUFFER_BYTES");
}
