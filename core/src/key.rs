//! Object keys: validation (zmap-api.md Part A3) and the canonical form.
//!
//! A `Key` is always valid and canonical: `/` for the root, else `/a/b` with
//! no empty, `.` or `..` segment, no control character or backslash, UTF-8,
//! segments of at most 255 bytes and at most 1024 bytes in all. Backends can
//! therefore join a key to a root directory or an S3 prefix without further
//! checks: a key never reaches outside its dataset.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Longest key (S3's limit, applied to every backend so datasets can move).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest segment (a file name on common file systems).
pub const MAX_SEGMENT_LEN: usize = 255;

/// A valid, canonical key. It borrows the caller's bytes when they are
/// already canonical (`/a/b`, what every C call passes), so validating a key
/// allocates nothing; `Key<'static>` owns its text (`into_owned`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key<'a>(Cow<'a, str>);

/// What a byte of a key is, for `Key::parse`'s one pass.
const PLAIN: u8 = 0;
const SLASH: u8 = 1;
const REFUSED: u8 = 2;
const NON_ASCII: u8 = 3;
const CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        class[b] = match b as u8 {
            b'/' => SLASH,
            0..=0x1f | 0x7f | b'\\' => REFUSED,
            0x80.. => NON_ASCII,
            _ => PLAIN,
        };
        b += 1;
    }
    class
};

impl Key<'static> {
    /// The dataset root, `/`.
    pub fn root() -> Key<'static> {
        Key(Cow::Borrowed("/"))
    }
}

impl<'a> Key<'a> {
    /// Parses a key given by a caller. One leading and one trailing `/` are
    /// optional; `""` and `"/"` are the root.
    ///
    /// One pass over the bytes (this runs on every call of the C API); UTF-8
    /// is only decoded when a byte outside ASCII appears, and a key with its
    /// leading `/` is borrowed, not copied.
    pub fn parse(raw: &'a [u8]) -> Result<Key<'a>> {
        let (body, rooted) = match raw.strip_prefix(b"/") {
            Some(body) => (body, true),
            None => (raw, false),
        };
        if body.is_empty() {
            return Ok(Key::root());
        }
        // One trailing '/' is ignored; what remains must be non-empty ("//").
        let body = body.strip_suffix(b"/").unwrap_or(body);
        if body.len() + 1 > MAX_KEY_LEN {
            return Err(Error::Invalid("key longer than 1024 bytes"));
        }
        let mut segment_start = 0;
        let mut ascii = true;
        for (i, &byte) in body.iter().enumerate() {
            match CLASS[byte as usize] {
                PLAIN => {}
                SLASH => {
                    check_segment_bytes(&body[segment_start..i])?;
                    segment_start = i + 1;
                }
                NON_ASCII => ascii = false,
                _ => return Err(Error::Invalid("control character or backslash in key")),
            }
        }
        check_segment_bytes(&body[segment_start..])?;
        // The key with its leading '/', when the caller gave one.
        let whole = if rooted { &raw[..body.len() + 1] } else { body };
        let text = if ascii {
            // SAFETY: every byte of `whole` is below 0x80 (checked in the
            // loop above; the leading '/' is ASCII too): ASCII is UTF-8.
            unsafe { std::str::from_utf8_unchecked(whole) }
        } else {
            let text =
                std::str::from_utf8(whole).map_err(|_| Error::Invalid("key is not UTF-8"))?;
            // C1 controls (U+0080..U+009F) are control characters too.
            if text.chars().any(char::is_control) {
                return Err(Error::Invalid("control character or backslash in key"));
            }
            text
        };
        if rooted {
            return Ok(Key(Cow::Borrowed(text)));
        }
        let mut key = String::with_capacity(text.len() + 1);
        key.push('/');
        key.push_str(text);
        Ok(Key(Cow::Owned(key)))
    }

    /// Parses a key that must name an object (not the root).
    pub fn parse_object(raw: &'a [u8]) -> Result<Key<'a>> {
        let key = Key::parse(raw)?;
        if key.is_root() {
            return Err(Error::Invalid("the root is not an object"));
        }
        Ok(key)
    }

    /// The same key, owning its text (to keep it past the caller's bytes).
    pub fn into_owned(self) -> Key<'static> {
        Key(Cow::Owned(self.0.into_owned()))
    }

    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Canonical text: `/` or `/a/b`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key without its leading `/` (`""` for the root): a relative path.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// The segments, first to last (none for the root).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.relative().split('/').filter(|s| !s.is_empty())
    }

    /// The last segment (`""` for the root).
    pub fn name(&self) -> &str {
        let rel = self.relative();
        rel.rsplit('/').next().unwrap_or(rel)
    }

    /// The parent key (borrowing this one's text); `None` for the root.
    pub fn parent(&self) -> Option<Key<'_>> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) => Some(Key::root()),
            Some(i) => Some(Key(Cow::Borrowed(&self.0[..i]))),
            None => None,
        }
    }

    /// Every proper ancestor except the root, outermost first: `/a`, `/a/b`
    /// for `/a/b/c`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let s: &str = &self.0;
        s.match_indices('/').skip(1).map(move |(i, _)| &s[..i])
    }

    /// The child key `self/name`; `name` must be a valid segment.
    pub fn child(&self, name: &str) -> Result<Key<'static>> {
        check_segment(name)?;
        let mut key = String::with_capacity(self.0.len() + name.len() + 1);
        key.push_str(&self.0);
        if !self.is_root() {
            key.push('/');
        }
        key.push_str(name);
        if key.len() > MAX_KEY_LEN {
            return Err(Error::Invalid("key longer than 1024 bytes"));
        }
        Ok(Key(Cow::Owned(key)))
    }
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One segment of a key: non-empty, not `.`/`..`, no control character, no
/// backslash, at most 255 bytes.
pub fn check_segment(segment: &str) -> Result<()> {
    check_segment_bytes(segment.as_bytes())?;
    if segment
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == '/')
    {
        return Err(Error::Invalid("control character or backslash in key"));
    }
    Ok(())
}

/// The length and `.`/`..` rules of a segment (characters are checked by
/// the callers).
#[inline(always)]
fn check_segment_bytes(segment: &[u8]) -> Result<()> {
    // By length first: one comparison for most segments (this runs for
    // every segment of every key a C call passes).
    match segment.len() {
        3..=MAX_SEGMENT_LEN => Ok(()),
        0 => Err(Error::Invalid("empty key segment")),
        1 | 2 if segment.iter().all(|&b| b == b'.') => {
            Err(Error::Invalid("'.' or '..' key segment"))
        }
        1 | 2 => Ok(()),
        _ => Err(Error::Invalid("key segment longer than 255 bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        Key::parse(raw.as_bytes()).unwrap().as_str().to_string()
    }

    fn rejected(raw: &[u8]) -> bool {
        matches!(Key::parse(raw), Err(Error::Invalid(_)))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(ok("/a/b"), "/a/b");
        assert_eq!(ok("a/b"), "/a/b");
        assert_eq!(ok("/a/b/"), "/a/b");
        assert_eq!(ok("a/"), "/a");
        assert_eq!(ok("/"), "/");
        assert_eq!(ok(""), "/");
        assert_eq!(ok("/.zarray"), "/.zarray");
        assert_eq!(ok("/a/..b/c..d/.x"), "/a/..b/c..d/.x");
        assert_eq!(ok("/données/ключ"), "/données/ключ");
    }

    #[test]
    fn rejected_forms() {
        for raw in [
            &b"//a"[..],
            b"/a//b",
            b"/a/b//",
            b"//",
            b"/..",
            b"..",
            b"/a/../b",
            b"/a/./b",
            b"./a",
            b"/a/..",
            b"/a\\b",
            b"\\..\\x",
            b"/a\x01b",
            b"/a\nb",
            b"/a\x7fb",
            b"/a\0b",
            b"/\xff\xfe",
            "/a\u{85}b".as_bytes(),
            "/a/\u{9f}".as_bytes(),
        ] {
            assert!(
                rejected(raw),
                "{:?} should be rejected",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn length_limits() {
        let seg255 = "x".repeat(255);
        assert!(Key::parse(format!("/{seg255}").as_bytes()).is_ok());
        assert!(rejected(format!("/{seg255}y").as_bytes()));
        let long = vec!["abcdefg"; 128].join("/"); // 128*8-1 = 1023 bytes + '/'
        assert_eq!(Key::parse(long.as_bytes()).unwrap().as_str().len(), 1024);
        assert!(rejected(format!("{long}x").as_bytes()));
    }

    #[test]
    fn canonical_keys_are_borrowed() {
        // What C callers pass: no copy, the key is the caller's bytes.
        for raw in [
            &b"/a/b/c"[..],
            b"/g0/v12/c.1234",
            b"/a/b/",
            b"/",
            b"",
            "/données".as_bytes(),
        ] {
            let key = Key::parse(raw).unwrap();
            assert!(matches!(key.0, Cow::Borrowed(_)), "{raw:?} was copied");
        }
        let raw = b"/a/b";
        assert_eq!(Key::parse(raw).unwrap().as_str().as_ptr(), raw.as_ptr());
        // Without the leading '/' the canonical text must be made.
        assert!(matches!(Key::parse(b"a/b").unwrap().0, Cow::Owned(_)));
        let owned = Key::parse(b"/a/b").unwrap().into_owned();
        assert!(matches!(owned.0, Cow::Owned(_)));
        assert_eq!(owned, Key::parse(b"a/b").unwrap());
        // A parent borrows its child's text.
        let key = Key::parse(b"a/b/c").unwrap();
        let parent = key.parent().unwrap();
        assert!(matches!(parent.0, Cow::Borrowed(_)));
        assert_eq!(parent.as_str(), "/a/b");
    }

    #[test]
    fn structure() {
        let k = Key::parse(b"/a/b/c").unwrap();
        assert_eq!(k.name(), "c");
        assert_eq!(k.parent().unwrap().as_str(), "/a/b");
        assert_eq!(k.ancestors().collect::<Vec<_>>(), vec!["/a", "/a/b"]);
        assert_eq!(k.segments().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        assert_eq!(Key::parse(b"/a").unwrap().parent().unwrap(), Key::root());
        assert_eq!(Key::root().parent(), None);
        assert_eq!(Key::root().child("x").unwrap().as_str(), "/x");
        assert!(Key::root().child("..").is_err());
        assert!(Key::parse_object(b"/").is_err());
        assert!(Key::parse_object(b"").is_err());
    }
}
