//! Dataset locations given to create/open (zmap-api.md Part A2): plain paths
//! and `file:` URLs for file-based backends, names for in-memory datasets.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The scheme of `url` (`"file"` for `file:///x`), if it has one. A scheme is
/// at least two characters, so a Windows drive letter is not one.
pub fn scheme(url: &str) -> Option<&str> {
    let colon = url.find(':')?;
    let candidate = &url[..colon];
    let mut chars = candidate.chars();
    let first = chars.next()?;
    let valid = candidate.len() >= 2
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(candidate)
}

/// The URL without its `?query` and `#fragment`.
fn strip_query_and_fragment(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The file-system path named by a plain path or a `file:` URL:
/// `file:///abs` and `file:/abs` are absolute, `file://rel` is relative (as in
/// netCDF 2020). Query and fragment of a URL are ignored; percent escapes are
/// not decoded. Any other scheme, or an empty path, is `NC_EURL`.
pub fn file_path(location: &str) -> Result<PathBuf> {
    if location.is_empty() {
        return Err(Error::Invalid("empty dataset path"));
    }
    let path = match scheme(location) {
        None => location,
        Some(s) if s.eq_ignore_ascii_case("file") => {
            let rest = strip_query_and_fragment(&location[s.len() + 1..]);
            if let Some(after) = rest.strip_prefix("//") {
                // file:///abs keeps its '/'; file://rel stays relative.
                after
            } else if rest.starts_with('/') {
                rest
            } else {
                return Err(Error::Url);
            }
        }
        Some(_) => return Err(Error::Url),
    };
    if path.is_empty() || path.contains('\0') {
        return Err(Error::Url);
    }
    Ok(PathBuf::from(path))
}

/// The name of an in-memory dataset: any string, `mem://` optional.
pub fn memory_name(location: &str) -> Result<&str> {
    let name = match scheme(location) {
        Some(s) if s.eq_ignore_ascii_case("mem") => {
            let rest = &location[s.len() + 1..];
            rest.strip_prefix("//").unwrap_or(rest)
        }
        _ => location,
    };
    if name.is_empty() {
        return Err(Error::Url);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(url: &str) -> String {
        file_path(url).unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn file_urls_and_paths() {
        assert_eq!(path("file:///abs/x.nzf#mode=nczarr,nzf"), "/abs/x.nzf");
        assert_eq!(path("file://rel/x"), "rel/x");
        assert_eq!(
            path("file://testmapapi.nzf#mode=nczarr,nzf"),
            "testmapapi.nzf"
        );
        assert_eq!(path("file:/abs/y?q=1"), "/abs/y");
        assert_eq!(path("FILE:///A"), "/A");
        assert_eq!(path("/plain/abs"), "/plain/abs");
        assert_eq!(path("plain/rel"), "plain/rel");
        assert_eq!(path("/d/data"), "/d/data"); // no MSYS drive-letter rewrite
        assert_eq!(path("C:/x"), "C:/x"); // one letter is no scheme
        assert_eq!(path("./a#b"), "./a#b"); // plain paths keep every byte
    }

    #[test]
    fn malformed_urls() {
        for url in [
            "http://host/x",
            "s3://b/r",
            "file:",
            "file:rel",
            "file://",
            "file://#x",
        ] {
            assert!(matches!(file_path(url), Err(Error::Url)), "{url}");
        }
        assert!(matches!(file_path(""), Err(Error::Invalid(_))));
    }

    #[test]
    fn memory_names() {
        assert_eq!(memory_name("mem://abc").unwrap(), "abc");
        assert_eq!(memory_name("abc").unwrap(), "abc");
        assert_eq!(memory_name("file:///x").unwrap(), "file:///x");
        assert!(memory_name("mem://").is_err());
    }
}
