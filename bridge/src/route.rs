//! Which datasets the bridge serves (README, "Using libzmap from netCDF"):
//!
//! - `NCZM_S3` (`#mode=nczarr,s3`) with an `s3://`, `http://` or `https://`
//!   URL: libzmap's S3 backend.
//! - `NCZM_FILE` (`#mode=nczarr,file`) naming a GNZ file: an existing file
//!   that starts with GNZ's magic, or (not yet there) a path ending `.gnz`.
//! - Everything else (directories, zip, other URLs): netCDF's own; a zip
//!   URL netCDF answers with `NC_ENOTBUILT` is then served by libzmap's ZIP
//!   backend (`exports::zip_fallback`).

use std::ffi::c_int;
use std::io::Read;
use std::path::Path;

use crate::abi::{NCZM_FILE, NCZM_S3};

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A GNZ file at this path.
    Gnz(String),
    /// An S3 dataset at this URL.
    S3(String),
    /// netCDF's own implementation.
    PassThrough,
}

/// What is at a path.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Nothing,
    GnzFile,
    Other,
}

/// Looks at `path`: a regular file starting with GNZ's magic, nothing, or
/// something else.
pub fn probe(path: &Path) -> Found {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Nothing,
        Err(_) => Found::Other,
        Ok(meta) if !meta.is_file() => Found::Other,
        Ok(_) => {
            let mut magic = [0u8; 4];
            match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)) {
                Ok(()) if &magic == zmap_core::store::gnz::format::MAGIC => Found::GnzFile,
                _ => Found::Other,
            }
        }
    }
}

/// The route of `nczmap_create/open(impl, url)`; `look` tells what is at a path.
pub fn route(imp: c_int, url: &str, look: impl Fn(&Path) -> Found) -> Route {
    match imp {
        NCZM_S3 => match zmap_core::location::scheme(url)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("s3" | "s3a" | "http" | "https") => Route::S3(s3_location(url, &env_endpoint())),
            _ => Route::PassThrough,
        },
        NCZM_FILE => {
            let is_file_url =
                zmap_core::location::scheme(url).is_some_and(|s| s.eq_ignore_ascii_case("file"));
            let Ok(path) = zmap_core::location::file_path(url) else {
                return Route::PassThrough;
            };
            if !is_file_url {
                return Route::PassThrough;
            }
            let text = path.to_string_lossy().into_owned();
            match look(&path) {
                Found::GnzFile => Route::Gnz(text),
                Found::Nothing if text.ends_with(".gnz") => Route::Gnz(text),
                _ => Route::PassThrough,
            }
        }
        _ => Route::PassThrough,
    }
}

/// The endpoint the AWS environment names (`AWS_ENDPOINT`, `AWS_ENDPOINT_URL`).
fn env_endpoint() -> Option<String> {
    ["AWS_ENDPOINT", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// The core's location for an S3 URL as netCDF hands it over. netCDF 4.9
/// rewrites every S3 URL before NCZarr sees it (`NC_s3urlrebuild`):
/// `s3://bucket/root` becomes `https://s3.<region>.amazonaws.com/bucket/root`,
/// and `http://host:port/bucket/root` becomes `https://host:port/...`. So:
/// - with an endpoint in the environment, the AWS path-style form goes back
///   to `s3://bucket/root` (the environment's endpoint serves it);
/// - `https://` to the environment's own `http://` endpoint (same host and
///   port) is `http://` again (the environment allows plain HTTP there).
///
/// Everything else is passed on as it is; the fragment is dropped.
pub fn s3_location(url: &str, endpoint: &Option<String>) -> String {
    let url = &url[..url.find('#').unwrap_or(url.len())];
    let Some(endpoint) = endpoint else {
        return url.to_string();
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .split(':')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() == 4 && labels[0] == "s3" && host.ends_with(".amazonaws.com") {
        return format!("s3://{path}");
    }
    let endpoint_authority = endpoint
        .strip_prefix("http://")
        .map(|e| e.trim_end_matches('/'));
    if endpoint_authority.is_some_and(|e| e.eq_ignore_ascii_case(authority)) {
        return format!("http://{rest}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{NCZM_UNDEF, NCZM_ZIP};

    fn nothing(_: &Path) -> Found {
        Found::Nothing
    }
    fn gnz(_: &Path) -> Found {
        Found::GnzFile
    }
    fn other(_: &Path) -> Found {
        Found::Other
    }

    #[test]
    fn gnz_files() {
        let url = "file:///tmp/x/ds.gnz#mode=nczarr,file";
        assert_eq!(
            route(NCZM_FILE, url, nothing),
            Route::Gnz("/tmp/x/ds.gnz".into())
        );
        assert_eq!(
            route(NCZM_FILE, url, gnz),
            Route::Gnz("/tmp/x/ds.gnz".into())
        );
        // A directory (or any non-GNZ thing) named .gnz stays netCDF's.
        assert_eq!(route(NCZM_FILE, url, other), Route::PassThrough);
        // An existing GNZ file under any name is ours.
        let plain = "file:///tmp/x/ds.file#mode=nczarr,file";
        assert_eq!(
            route(NCZM_FILE, plain, gnz),
            Route::Gnz("/tmp/x/ds.file".into())
        );
        assert_eq!(route(NCZM_FILE, plain, nothing), Route::PassThrough);
        assert_eq!(route(NCZM_FILE, plain, other), Route::PassThrough);
    }

    #[test]
    fn s3_urls() {
        for url in [
            "https://127.0.0.1:8333/bucket/root#mode=nczarr,s3",
            "http://localhost:9000/b/r#mode=nczarr,s3",
            "s3://bucket/root#mode=nczarr,s3",
        ] {
            assert!(
                matches!(route(NCZM_S3, url, nothing), Route::S3(_)),
                "{url}"
            );
        }
        assert_eq!(
            route(NCZM_S3, "file:///x#mode=nczarr,s3", nothing),
            Route::PassThrough
        );
    }

    #[test]
    fn s3_urls_as_netcdf_rewrites_them() {
        let local = Some("http://127.0.0.1:8333".to_string());
        let aws = "https://s3.us-east-1.amazonaws.com/bucket/root#mode=nczarr,s3";
        assert_eq!(s3_location(aws, &local), "s3://bucket/root");
        assert_eq!(
            s3_location(aws, &None),
            "https://s3.us-east-1.amazonaws.com/bucket/root"
        );
        let https = "https://127.0.0.1:8333/bucket/root#mode=nczarr,s3";
        assert_eq!(
            s3_location(https, &local),
            "http://127.0.0.1:8333/bucket/root"
        );
        assert_eq!(
            s3_location(https, &None),
            "https://127.0.0.1:8333/bucket/root"
        );
        let other = "https://example.org:8333/bucket/root";
        assert_eq!(s3_location(other, &local), other);
        // Virtual-hosted AWS URLs keep their host.
        let virt = "https://bucket.s3.eu-west-1.amazonaws.com/root";
        assert_eq!(s3_location(virt, &local), virt);
    }

    #[test]
    fn everything_else_passes_through() {
        assert_eq!(
            route(NCZM_ZIP, "file:///x.gnz#mode=nczarr,zip", nothing),
            Route::PassThrough
        );
        assert_eq!(
            route(NCZM_UNDEF, "file:///x.gnz", nothing),
            Route::PassThrough
        );
        assert_eq!(route(7, "file:///x.gnz", nothing), Route::PassThrough);
        assert_eq!(
            route(NCZM_FILE, "/plain/path.gnz", nothing),
            Route::PassThrough
        );
        assert_eq!(
            route(NCZM_FILE, "https://h/b/r.gnz", nothing),
            Route::PassThrough
        );
        assert_eq!(route(NCZM_FILE, "", nothing), Route::PassThrough);
    }

    #[test]
    fn probe_reads_the_magic() {
        let dir = std::env::temp_dir().join(format!("zmap-netcdf-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a");
        std::fs::write(&file, b"GNZ1rest").unwrap();
        assert_eq!(probe(&file), Found::GnzFile);
        std::fs::write(&file, b"\x89HDF").unwrap();
        assert_eq!(probe(&file), Found::Other);
        assert_eq!(probe(&dir), Found::Other);
        assert_eq!(probe(&dir.join("missing")), Found::Nothing);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
