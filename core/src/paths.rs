//! The `nczm_*` string rules of netCDF 2020 (zmap-api.md Part B §3.2), in
//! safe Rust on byte strings.
//!
//! C strings need not be UTF-8, so everything here works on `&[u8]`. A C
//! NULL pointer is `None` where the C function gives NULL a meaning; the
//! C boundary (`ffi::path`) handles the remaining NULL checks and the
//! `malloc`ing of results.

use crate::error::{Error, Result};

const SLASH: u8 = b'/';
const BACKSLASH: u8 = b'\\';

/// The outcome of [`split_delim`]: the pieces found, and the status.
///
/// netCDF appends pieces to the caller's list as it finds them and stops at
/// the first empty one, so a failed split still hands over the pieces before
/// the failure. Both halves are therefore always meaningful.
#[derive(Debug)]
pub struct Split<'a> {
    /// The pieces produced, in order (those before the error, if any).
    pub pieces: Vec<&'a [u8]>,
    /// `Ok`, `Err(Error::Url)` for an empty piece, `Err(Error::Invalid)` for
    /// a NULL or empty path.
    pub status: Result<()>,
}

/// Splits `path` at `delim` (`nczm_split_delim`).
///
/// Exactly one leading `delim` is skipped and one trailing `delim` is
/// accepted; any other empty piece stops the split with `NC_EURL`. NULL or
/// `""` is `NC_EINVAL`. `"."` and `".."` are ordinary pieces.
pub fn split_delim(path: Option<&[u8]>, delim: u8) -> Split<'_> {
    let mut pieces = Vec::new();
    let path = match path {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Split {
                pieces,
                status: Err(Error::Invalid("path to split is NULL or empty")),
            }
        }
    };
    let mut rest = path.strip_prefix(&[delim]).unwrap_or(path);
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == delim).unwrap_or(rest.len());
        if end == 0 {
            return Split {
                pieces,
                status: Err(Error::Url),
            };
        }
        pieces.push(&rest[..end]);
        // Step over the delimiter too; a final one leaves `rest` empty.
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    Split {
        pieces,
        status: Ok(()),
    }
}

/// Splits `path` at `/` (`nczm_split`).
pub fn split(path: Option<&[u8]>) -> Split<'_> {
    split_delim(path, SLASH)
}

/// Joins `segments` into a path (`nczm_join`): no segments give `"/"`;
/// otherwise each segment is preceded by `/` unless it already begins with
/// one.
pub fn join<S: AsRef<[u8]>>(segments: &[S]) -> Vec<u8> {
    if segments.is_empty() {
        return vec![SLASH];
    }
    let mut out = Vec::new();
    for segment in segments {
        push_segment(&mut out, segment.as_ref());
    }
    out
}

/// Like [`join`], but a first segment that is a Windows drive (exactly an
/// ASCII letter and `:`, as `split("C:/a")` yields it) is not preceded by
/// `/`: `["C:", "a"]` → `"C:/a"`. A lone drive gives its root, `"C:/"`, as
/// the empty list gives `"/"`, so the result is always an absolute path in
/// the sense of [`is_absolute_path`]. (`nczm_joinpath`, which netCDF
/// declared but never defined.)
pub fn joinpath<S: AsRef<[u8]>>(segments: &[S]) -> Vec<u8> {
    match segments.split_first() {
        Some((first, rest)) if is_drive(first.as_ref()) => {
            let mut out = first.as_ref().to_vec();
            if rest.is_empty() {
                out.push(SLASH);
            }
            for segment in rest {
                push_segment(&mut out, segment.as_ref());
            }
            out
        }
        _ => join(segments),
    }
}

fn push_segment(out: &mut Vec<u8>, segment: &[u8]) {
    if segment.first() != Some(&SLASH) {
        out.push(SLASH);
    }
    out.extend_from_slice(segment);
}

/// `X:` exactly, X an ASCII letter.
fn is_drive(segment: &[u8]) -> bool {
    matches!(segment, [letter, b':'] if letter.is_ascii_alphabetic())
}

/// Concatenates a key prefix and suffix (`nczm_concat`).
///
/// A NULL or empty prefix is `"/"`, a NULL suffix is `""`. The result is the
/// prefix without one trailing `/`, then `/` if the suffix is non-empty and
/// does not begin with `/`, then the suffix. So `("/", NULL)` gives `""`.
pub fn concat(prefix: Option<&[u8]>, suffix: Option<&[u8]>) -> Vec<u8> {
    let prefix = match prefix {
        Some(p) if !p.is_empty() => p,
        _ => b"/",
    };
    let suffix = suffix.unwrap_or(b"");
    let mut out = prefix.strip_suffix(b"/").unwrap_or(prefix).to_vec();
    if !suffix.is_empty() && suffix[0] != SLASH {
        out.push(SLASH);
    }
    out.extend_from_slice(suffix);
    out
}

/// Divides `key` after `nsegs` segments (`nczm_divide_at`), giving
/// `(prefix, suffix)` with the suffix keeping its leading `/`.
///
/// The key has L = 1 + (number of `/` after an optional leading `/`)
/// segments. A negative `nsegs` counts from the end (the suffix holds
/// |nsegs| segments). |nsegs| > L is `NC_EINVAL`. A NULL or empty key gives
/// `Ok(None)`: netCDF reports success without producing anything.
pub fn divide_at(key: Option<&[u8]>, nsegs: i32) -> Result<Option<(&[u8], &[u8])>> {
    let key = match key {
        Some(k) if !k.is_empty() => k,
        _ => return Ok(None),
    };
    let body = key.strip_prefix(b"/").unwrap_or(key);
    let count = 1 + body.iter().filter(|&&b| b == SLASH).count();
    let wanted = usize::try_from(nsegs.unsigned_abs()).unwrap_or(usize::MAX);
    if wanted > count {
        return Err(Error::Invalid(
            "nczm_divide_at: more segments than the key has",
        ));
    }
    let before = if nsegs >= 0 { wanted } else { count - wanted };
    // Each step moves to the next '/' strictly after the current position,
    // so a leading '/' belongs to the first segment.
    let mut at = 0;
    for _ in 0..before {
        at = key
            .iter()
            .skip(at + 1)
            .position(|&b| b == SLASH)
            .map_or(key.len(), |offset| at + 1 + offset);
    }
    Ok(Some(key.split_at(at)))
}

/// Whether `path` is absolute (`nczm_isabsolutepath`): it begins with `/` or
/// `\`, or with an ASCII letter and `:`. NULL and `""` are not.
pub fn is_absolute_path(path: Option<&[u8]>) -> bool {
    match path {
        Some([SLASH, ..] | [BACKSLASH, ..]) => true,
        Some([letter, b':', ..]) => letter.is_ascii_alphabetic(),
        _ => false,
    }
}

/// Localizes `path` (`nczm_localize`) as a non-Windows build does: a leading
/// `/X:` (from a URL such as `file:///C:/x`) loses its `/`, and every `\`
/// becomes `/` (the `local` flag only matters on Windows, so it is not
/// taken).
pub fn localize(path: &[u8]) -> Vec<u8> {
    let path = match path {
        [SLASH, letter, b':', ..] if letter.is_ascii_alphabetic() => &path[1..],
        _ => path,
    };
    path.iter()
        .map(|&b| if b == BACKSLASH { SLASH } else { b })
        .collect()
}

/// The canonical form of a dataset path (`nczm_canonicalpath`): on Linux
/// this is [`localize`] and nothing more. netCDF 2020 also rewrote `/x/...`
/// and `/cygdrive/x/...` into `x:/...`; on Linux that turns real absolute
/// paths into relative ones (zmap-api.md A2 and weakness 5), so neither rule
/// is applied. NULL gives `None` (netCDF: success, nothing produced).
pub fn canonicalpath(path: Option<&[u8]>) -> Option<Vec<u8>> {
    path.map(localize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{NC_EINVAL, NC_EURL};

    fn pieces(path: &str) -> (Vec<String>, i32) {
        let split = split(Some(path.as_bytes()));
        let pieces = split
            .pieces
            .iter()
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect();
        (pieces, split.status.map_or_else(|e| e.code(), |()| 0))
    }

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn split_examples_of_the_spec() {
        assert_eq!(pieces("/a/b"), (owned(&["a", "b"]), 0));
        assert_eq!(pieces("a/b/"), (owned(&["a", "b"]), 0));
        assert_eq!(pieces("/"), (owned(&[]), 0));
        assert_eq!(pieces("//a"), (owned(&[]), NC_EURL));
        assert_eq!(pieces("/a//b"), (owned(&["a"]), NC_EURL));
        assert_eq!(pieces("/./.."), (owned(&[".", ".."]), 0));
    }

    #[test]
    fn split_edge_cases() {
        assert_eq!(pieces("a"), (owned(&["a"]), 0));
        assert_eq!(pieces("/a"), (owned(&["a"]), 0));
        assert_eq!(pieces("/a/"), (owned(&["a"]), 0));
        // Only one trailing delimiter is accepted.
        assert_eq!(pieces("/a//"), (owned(&["a"]), NC_EURL));
        assert_eq!(pieces("a/b//c"), (owned(&["a", "b"]), NC_EURL));
        assert_eq!(pieces("//"), (owned(&[]), NC_EURL));
        assert_eq!(
            pieces("/.nczarr/meta1/.zarray"),
            (owned(&[".nczarr", "meta1", ".zarray"]), 0)
        );
        assert_eq!(pieces("x/ y /z"), (owned(&["x", " y ", "z"]), 0));
    }

    #[test]
    fn split_rejects_null_and_empty() {
        for path in [None, Some(&b""[..])] {
            let split = split(path);
            assert!(split.pieces.is_empty());
            assert_eq!(split.status.unwrap_err().code(), NC_EINVAL);
        }
    }

    #[test]
    fn split_with_other_delimiters() {
        let split = split_delim(Some(b"mode=nczarr,nzf"), b',');
        assert_eq!(split.pieces, vec![&b"mode=nczarr"[..], b"nzf"]);
        assert!(split.status.is_ok());
        let split = split_delim(Some(b",a,b,"), b',');
        assert_eq!(split.pieces, vec![&b"a"[..], b"b"]);
        assert!(split.status.is_ok());
        // With ',' as delimiter, '/' is an ordinary byte.
        let split = split_delim(Some(b"/a,b"), b',');
        assert_eq!(split.pieces, vec![&b"/a"[..], b"b"]);
        let split = split_delim(Some(b"a,,b"), b',');
        assert_eq!(split.pieces, vec![&b"a"[..]]);
        assert_eq!(split.status.unwrap_err().code(), NC_EURL);
        // NUL never occurs inside a C string: the whole path is one piece.
        let split = split_delim(Some(b"a/b"), 0);
        assert_eq!(split.pieces, vec![&b"a/b"[..]]);
        assert!(split.status.is_ok());
    }

    #[test]
    fn split_handles_non_utf8_bytes() {
        let split = split(Some(b"/\xff\xfe/\x80"));
        assert_eq!(split.pieces, vec![&b"\xff\xfe"[..], b"\x80"]);
        assert!(split.status.is_ok());
    }

    fn joined(segments: &[&str]) -> String {
        String::from_utf8(join(segments)).unwrap()
    }

    fn joinedpath(segments: &[&str]) -> String {
        String::from_utf8(joinpath(segments)).unwrap()
    }

    #[test]
    fn join_examples_of_the_spec() {
        assert_eq!(joined(&[]), "/");
        assert_eq!(joined(&["a", "b"]), "/a/b");
        assert_eq!(joined(&["/a", "b"]), "/a/b");
        assert_eq!(joined(&["a", "/b"]), "/a/b");
    }

    #[test]
    fn join_edge_cases() {
        assert_eq!(joined(&["a"]), "/a");
        assert_eq!(joined(&["/"]), "/");
        assert_eq!(joined(&["//a", "b/"]), "//a/b/");
        assert_eq!(joined(&["", "a"]), "//a");
        assert_eq!(joined(&["a", ""]), "/a/");
        assert_eq!(joined(&["C:", "a"]), "/C:/a");
        assert_eq!(join(&[&b"\xff"[..]]), b"/\xff");
    }

    #[test]
    fn join_inverts_a_successful_split() {
        for path in ["/a", "/a/b/c", "/.nczarr", "/meta1/.zarray"] {
            let split = split(Some(path.as_bytes()));
            assert!(split.status.is_ok());
            assert_eq!(join(&split.pieces), path.as_bytes());
        }
    }

    #[test]
    fn joinpath_honours_a_leading_drive() {
        assert_eq!(joinedpath(&["C:", "a"]), "C:/a");
        assert_eq!(joinedpath(&["z:", "a", "b"]), "z:/a/b");
        assert_eq!(joinedpath(&["C:", "/a"]), "C:/a");
        assert_eq!(joinedpath(&["C:"]), "C:/");
        let split = split(Some(b"C:/data/x.nzf"));
        assert_eq!(joinpath(&split.pieces), b"C:/data/x.nzf");
    }

    #[test]
    fn joinpath_is_join_otherwise() {
        assert_eq!(joinedpath(&[]), "/");
        assert_eq!(joinedpath(&["a", "b"]), "/a/b");
        assert_eq!(joinedpath(&["/a", "b"]), "/a/b");
        // Only the first segment, and only a bare drive, is special.
        assert_eq!(joinedpath(&["a", "C:"]), "/a/C:");
        assert_eq!(joinedpath(&["C:x", "a"]), "/C:x/a");
        assert_eq!(joinedpath(&["/C:", "a"]), "/C:/a");
        assert_eq!(joinedpath(&["1:", "a"]), "/1:/a");
        assert_eq!(joinedpath(&[":", "a"]), "/:/a");
        assert_eq!(joinedpath(&["C", "a"]), "/C/a");
    }

    fn concatenated(prefix: Option<&str>, suffix: Option<&str>) -> String {
        String::from_utf8(concat(prefix.map(str::as_bytes), suffix.map(str::as_bytes))).unwrap()
    }

    #[test]
    fn concat_examples_of_the_spec() {
        assert_eq!(concatenated(None, Some("/.nczarr")), "/.nczarr");
        assert_eq!(
            concatenated(Some("/meta1"), Some(".zarray")),
            "/meta1/.zarray"
        );
        assert_eq!(concatenated(Some("/a/"), Some("/b")), "/a/b");
        assert_eq!(concatenated(Some("a"), Some("b")), "a/b");
        assert_eq!(concatenated(Some("/a//"), Some("b")), "/a//b");
        assert_eq!(concatenated(Some("/"), None), "");
        assert_eq!(concatenated(Some("/a"), None), "/a");
    }

    #[test]
    fn concat_edge_cases() {
        assert_eq!(concatenated(Some(""), Some("/x")), "/x");
        assert_eq!(concatenated(None, Some("x")), "/x");
        assert_eq!(concatenated(None, None), "");
        assert_eq!(concatenated(Some(""), None), "");
        assert_eq!(concatenated(Some("/a"), Some("")), "/a");
        assert_eq!(concatenated(Some("/a/"), Some("")), "/a");
        assert_eq!(concatenated(Some("/a"), Some("/b")), "/a/b");
        assert_eq!(concatenated(Some("/a"), Some("//b")), "/a//b");
        assert_eq!(concatenated(Some("/"), Some("b")), "/b");
        assert_eq!(concatenated(Some("//"), Some("b")), "//b");
    }

    fn divided(key: &str, nsegs: i32) -> (String, String) {
        let (prefix, suffix) = divide_at(Some(key.as_bytes()), nsegs).unwrap().unwrap();
        (
            String::from_utf8(prefix.to_vec()).unwrap(),
            String::from_utf8(suffix.to_vec()).unwrap(),
        )
    }

    fn pair(prefix: &str, suffix: &str) -> (String, String) {
        (prefix.to_string(), suffix.to_string())
    }

    #[test]
    fn divide_at_examples_of_the_spec() {
        assert_eq!(divided("/a/b/c", -1), pair("/a/b", "/c"));
        assert_eq!(divided("/a/b", 1), pair("/a", "/b"));
        assert_eq!(divided("/a", 0), pair("", "/a"));
        assert_eq!(divided("/a", 1), pair("/a", ""));
        assert_eq!(divided("a/b/c", 1), pair("a", "/b/c"));
    }

    #[test]
    fn divide_at_counts_segments_as_netcdf() {
        // "/" has one (empty) segment, "/a/b/" three.
        assert_eq!(divided("/", 1), pair("/", ""));
        assert_eq!(divided("/", -1), pair("", "/"));
        assert_eq!(divide_at(Some(b"/"), 2).unwrap_err().code(), NC_EINVAL);
        assert_eq!(divided("/a/b/", 3), pair("/a/b/", ""));
        assert_eq!(divided("/a/b/", -1), pair("/a/b", "/"));
        assert_eq!(divide_at(Some(b"/a/b/"), 4).unwrap_err().code(), NC_EINVAL);
        assert_eq!(divide_at(Some(b"/a/b/"), -4).unwrap_err().code(), NC_EINVAL);
    }

    #[test]
    fn divide_at_edge_cases() {
        assert_eq!(divided("/a/b/c", 0), pair("", "/a/b/c"));
        assert_eq!(divided("/a/b/c", 3), pair("/a/b/c", ""));
        assert_eq!(divided("/a/b/c", -3), pair("", "/a/b/c"));
        assert_eq!(divided("/a/b/c", 2), pair("/a/b", "/c"));
        assert_eq!(divided("/a/b/c", -2), pair("/a", "/b/c"));
        assert_eq!(divided("a", 1), pair("a", ""));
        assert_eq!(divided("a", -1), pair("", "a"));
        assert_eq!(divided("a/b/c", -1), pair("a/b", "/c"));
        assert_eq!(divided("/meta1/.zarray", -1), pair("/meta1", "/.zarray"));
        assert_eq!(divided("//a", 1), pair("/", "/a"));
        assert_eq!(divided("//a", 2), pair("//a", ""));
        for nsegs in [4, -4, i32::MAX, i32::MIN] {
            let err = divide_at(Some(b"/a/b/c"), nsegs).unwrap_err();
            assert_eq!(err.code(), NC_EINVAL, "nsegs {nsegs}");
        }
    }

    #[test]
    fn divide_at_null_or_empty_key_produces_nothing() {
        assert!(divide_at(None, 1).unwrap().is_none());
        assert!(divide_at(Some(b""), 0).unwrap().is_none());
        assert!(divide_at(Some(b""), 99).unwrap().is_none());
    }

    #[test]
    fn absolute_paths() {
        for path in ["/", "/a", "\\", "\\a", "C:", "c:/x", "z:x", "Z:\\x"] {
            assert!(is_absolute_path(Some(path.as_bytes())), "{path}");
        }
        for path in ["", "a", "a/b", "./a", "1:/x", ":", "C", "é:", "ab:"] {
            assert!(!is_absolute_path(Some(path.as_bytes())), "{path}");
        }
        assert!(!is_absolute_path(None));
    }

    fn localized(path: &str) -> String {
        String::from_utf8(localize(path.as_bytes())).unwrap()
    }

    #[test]
    fn localize_rewrites_backslashes_and_url_drives() {
        assert_eq!(localized("/C:/x/y"), "C:/x/y");
        assert_eq!(localized("/c:"), "c:");
        assert_eq!(localized("/c:x"), "c:x");
        assert_eq!(localized("a\\b\\c"), "a/b/c");
        assert_eq!(localized("\\C:\\x"), "/C:/x");
        assert_eq!(localized("/C:\\x"), "C:/x");
        assert_eq!(localized("/a/b"), "/a/b");
        assert_eq!(localized("/1:/x"), "/1:/x");
        assert_eq!(localized("//C:/x"), "//C:/x");
        assert_eq!(localized("/C"), "/C");
        assert_eq!(localized(""), "");
        assert_eq!(localize(b"\xff\\\x80"), b"\xff/\x80");
    }

    #[test]
    fn canonicalpath_is_localize_without_msys_rules() {
        assert_eq!(canonicalpath(None), None);
        for (path, want) in [
            ("/d/data", "/d/data"),
            ("/w", "/w"),
            ("/cygdrive/c/x", "/cygdrive/c/x"),
            ("/C:/x", "C:/x"),
            ("C:/x", "C:/x"),
            ("rel/x.nzf", "rel/x.nzf"),
            ("./x", "./x"),
            ("a\\b", "a/b"),
            ("", ""),
        ] {
            assert_eq!(
                canonicalpath(Some(path.as_bytes())).unwrap(),
                want.as_bytes()
            );
        }
    }
}
