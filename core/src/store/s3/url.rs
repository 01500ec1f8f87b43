//! S3 dataset locations (zmap-api.md Part A2):
//!
//! - `s3://bucket/root/...`: endpoint, region and credentials come from the
//!   standard `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`,
//!   `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
//! - `http(s)://host[:port]/bucket/root/...`: path-style requests to that
//!   endpoint (credentials and region still from the environment).
//!   `https://s3.REGION.amazonaws.com/bucket/root` also sets the region, and
//!   `https://bucket.s3.REGION.amazonaws.com/root` (virtual-hosted style) is
//!   understood as the same thing.
//!
//! Query and `#fragment` are ignored; `%XX` escapes in the root are decoded.
//! The root must be non-empty (a dataset is never a whole bucket) and every
//! segment of it must be a valid key segment, so that object names are
//! `root/a/b` with no empty, `.` or `..` segment. Anything else is `NC_EURL`.

use crate::error::{Error, Result};
use crate::key::check_segment;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `scheme://host[:port]` for `http(s)` URLs; `None`: from the environment.
    pub endpoint: Option<String>,
    /// `Some(true)` for `http://` URLs (plain HTTP must be allowed explicitly).
    pub allow_http: Option<bool>,
    /// The region named by an `amazonaws.com` host.
    pub region: Option<String>,
    pub bucket: String,
    /// The dataset's prefix, `seg/seg`, no leading or trailing `/`.
    pub root: String,
}

impl S3Location {
    /// A stable name for this dataset, to find its request counters.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.endpoint.as_deref().unwrap_or("s3:/"),
            self.bucket,
            self.root
        )
    }
}

pub fn parse(location: &str) -> Result<S3Location> {
    let end = location.find(['?', '#']).unwrap_or(location.len());
    let url = &location[..end];
    let (scheme, rest) = url.split_once("://").ok_or(Error::Url)?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash + 1..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::Url);
    }
    let mut loc = match scheme.as_str() {
        "s3" | "s3a" => {
            check_bucket(authority)?;
            S3Location {
                endpoint: None,
                allow_http: None,
                region: None,
                bucket: authority.to_string(),
                root: path.to_string(),
            }
        }
        "http" | "https" => {
            check_authority(authority)?;
            let host = authority.split(':').next().unwrap_or(authority);
            let labels: Vec<&str> = host.split('.').collect();
            let aws = host.to_ascii_lowercase().ends_with(".amazonaws.com");
            if aws && labels.len() == 5 && labels[1].eq_ignore_ascii_case("s3") {
                // bucket.s3.REGION.amazonaws.com/root
                check_bucket(labels[0])?;
                S3Location {
                    endpoint: Some(format!("{scheme}://{}", labels[1..].join("."))),
                    allow_http: Some(scheme == "http"),
                    region: Some(labels[2].to_string()),
                    bucket: labels[0].to_string(),
                    root: path.to_string(),
                }
            } else {
                let (bucket, root) = path.split_once('/').unwrap_or((path, ""));
                check_bucket(bucket)?;
                let region = (aws && labels.len() == 4 && labels[0].eq_ignore_ascii_case("s3"))
                    .then(|| labels[1].to_string());
                S3Location {
                    endpoint: Some(format!("{scheme}://{authority}")),
                    allow_http: Some(scheme == "http"),
                    region,
                    bucket: bucket.to_string(),
                    root: root.to_string(),
                }
            }
        }
        _ => return Err(Error::Url),
    };
    loc.root = parse_root(&loc.root)?;
    Ok(loc)
}

/// `a/b/` → `a/b`, with escapes decoded and every segment checked.
fn parse_root(raw: &str) -> Result<String> {
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    if raw.is_empty() {
        return Err(Error::Url);
    }
    let mut segments = Vec::new();
    for segment in raw.split('/') {
        let decoded = percent_decode(segment)?;
        check_segment(&decoded).map_err(|_| Error::Url)?;
        segments.push(decoded);
    }
    let root = segments.join("/");
    if root.len() >= crate::key::MAX_KEY_LEN {
        return Err(Error::Url);
    }
    Ok(root)
}

fn percent_decode(segment: &str) -> Result<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(Error::Url)?;
            let text = std::str::from_utf8(hex).map_err(|_| Error::Url)?;
            out.push(u8::from_str_radix(text, 16).map_err(|_| Error::Url)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Url)
}

/// Bucket names: 1..=63 of `a-z A-Z 0-9 . - _` (S3 proper is stricter; other
/// servers are not).
fn check_bucket(bucket: &str) -> Result<()> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 63
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Url)
    }
}

/// `host`, `host:port`, `[v6]:port`.
fn check_authority(authority: &str) -> Result<()> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(Error::Url)?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(Error::Url);
        }
        (addr, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    let port_ok = match port {
        None => true,
        Some(p) => !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok(),
    };
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(Error::Url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> S3Location {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn s3_urls() {
        let l = ok("s3://bucket/root");
        assert_eq!(l.endpoint, None);
        assert_eq!(l.allow_http, None);
        assert_eq!((l.bucket.as_str(), l.root.as_str()), ("bucket", "root"));
        let l = ok("s3://b/a/b/c/#mode=nczarr,s3");
        assert_eq!(l.root, "a/b/c");
        assert_eq!(ok("S3://b/x?q=1").root, "x");
        assert_eq!(ok("s3://b/my%20data/%5Bx%5D").root, "my data/[x]");
    }

    #[test]
    fn http_urls() {
        let l = ok("http://127.0.0.1:8333/bucket/run/ds-1#mode=nczarr,s3");
        assert_eq!(l.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(l.allow_http, Some(true));
        assert_eq!(l.region, None);
        assert_eq!((l.bucket.as_str(), l.root.as_str()), ("bucket", "run/ds-1"));
        let l = ok("https://s3.eu-west-1.amazonaws.com/bkt/root");
        assert_eq!(
            l.endpoint.as_deref(),
            Some("https://s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(l.region.as_deref(), Some("eu-west-1"));
        assert_eq!(l.allow_http, Some(false));
        let l = ok("https://bkt.s3.us-east-2.amazonaws.com/r/s");
        assert_eq!(
            l.endpoint.as_deref(),
            Some("https://s3.us-east-2.amazonaws.com")
        );
        assert_eq!((l.bucket.as_str(), l.root.as_str()), ("bkt", "r/s"));
        assert_eq!(l.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            ok("http://[::1]:9000/b/r").endpoint.as_deref(),
            Some("http://[::1]:9000")
        );
        assert_eq!(ok("http://localhost/b/r").bucket, "b");
    }

    #[test]
    fn malformed() {
        for url in [
            "",
            "bucket/root",
            "s3:/bucket/root",
            "s3://bucket",
            "s3://bucket/",
            "s3:///root",
            "s3://bucket//root",
            "s3://bucket/a//b",
            "s3://bucket/a/../b",
            "s3://bucket/./b",
            "s3://buc ket/root",
            "s3://bucket/a%2Fb",
            "s3://bucket/a%zz",
            "s3://bucket/a%2",
            "s3://bucket/a%00b",
            "s3://bucket/a\\b",
            "http://host:port/b/r",
            "http://host:99999/b/r",
            "http://user@host/b/r",
            "http://host/b",
            "http:///b/r",
            "ftp://host/b/r",
            "file:///tmp/x",
        ] {
            assert!(matches!(parse(url), Err(Error::Url)), "{url:?}");
        }
        let long = format!("s3://b/{}", vec!["x".repeat(200); 6].join("/"));
        assert!(matches!(parse(&long), Err(Error::Url)));
    }

    #[test]
    fn ids_differ_per_dataset() {
        assert_ne!(ok("s3://b/root").id(), ok("s3://b/root2").id());
        assert_eq!(ok("http://h:1/b/r#x").id(), ok("http://h:1/b/r/?y").id());
    }
}
