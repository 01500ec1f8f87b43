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
    /// This runs on every call of the C API. Canonical ASCII keys of up to 64
    /// bytes are checked with a few SSE2 compares and bit operations (no
    /// byte loop); everything else (no leading `/`, longer keys, non-ASCII
    /// bytes, any error) takes `parse_general`, which decides alone what is
    /// rejected and why. A key with its leading `/` is borrowed, not copied.
    #[inline]
    pub fn parse(raw: &'a [u8]) -> Result<Key<'a>> {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if let Some(key) = sse2::parse_canonical_ascii(raw) {
            return Ok(key);
        }
        Key::parse_general(raw)
    }

    /// `parse` for every key: one pass over the bytes; UTF-8 is only decoded
    /// when a byte outside ASCII appears.
    fn parse_general(raw: &'a [u8]) -> Result<Key<'a>> {
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
            return Err(Error::ROOT_NOT_OBJECT);
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

/// `Key::parse`'s fast path: the whole key classified 16 bytes at a time
/// into bit masks (bit `i` is byte `i`), the segment rules checked on the
/// masks. SSE2 is part of x86_64's baseline.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::*;
    use std::borrow::Cow;

    use super::Key;

    /// Longest key the fast path takes: its bits fit in a `u64` (with the
    /// end boundary, see below). Segment and key length limits cannot be
    /// reached at this length.
    const MAX_FAST_LEN: usize = 64;

    /// The key when `raw` is canonical (leading `/`), 4 to 64 bytes, ASCII
    /// without refused bytes and with valid segments: exactly the keys that
    /// `parse_general` accepts and borrows from those inputs. `None` for
    /// anything else (`parse_general` then decides), never a wrong answer.
    #[inline(always)]
    pub(super) fn parse_canonical_ascii(raw: &[u8]) -> Option<Key<'_>> {
        let n = raw.len();
        let (slash, dot) = masks(raw)?;
        if slash & 1 == 0 {
            return None; // no leading '/': the key must be built (rare)
        }
        // One trailing '/' is dropped (n >= 4: it is not the leading one).
        let end = n - ((slash >> (n - 1)) & 1) as usize;
        // Body coordinates (after the leading '/'): the body is `len` bytes;
        // boundaries are its slashes plus one at `len` (the end) and one at
        // -1 (the leading '/', shifted in as bit 0 of `before`).
        let len = end - 1; // 2..=63
        let bound = (slash >> 1) | (1 << len);
        let dot = dot >> 1;
        // Bit i of `before`: a boundary at i - 1.
        let before = (bound << 1) | 1;
        // Bit i set where a segment starting at i is empty (a boundary right
        // after one), `.` or `..` (dots between two boundaries).
        let bad = (bound & before) | (before & dot & ((bound >> 1) | ((dot >> 1) & (bound >> 2))));
        if bad != 0 {
            return None;
        }
        // SAFETY: `masks` found no byte >= 0x80 in `raw`: ASCII is UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(&raw[..end]) };
        Some(Key(Cow::Borrowed(text)))
    }

    /// Bytes of one 16-byte block as masks: (refused or non-ASCII, slash,
    /// dot).
    #[inline(always)]
    fn classify(v: __m128i) -> (u32, u32, u32) {
        // SAFETY: SSE2 is enabled at compile time (the `cfg` of this module):
        // these intrinsics only compute on registers.
        unsafe {
            // Signed bytes: < 0x20 is both the controls 0x00..=0x1f and
            // every byte >= 0x80 (negative).
            let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let bad = _mm_or_si128(_mm_or_si128(low, del), backslash);
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'/' as i8));
            let dot = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
            (
                _mm_movemask_epi8(bad) as u32,
                _mm_movemask_epi8(slash) as u32,
                _mm_movemask_epi8(dot) as u32,
            )
        }
    }

    /// The (slash, dot) masks of `raw` (4 to 64 bytes), or `None` when
    /// `raw` is another length or holds a refused or non-ASCII byte. Only
    /// bytes of `raw` are read: short keys as two overlapping words, longer
    /// ones as 16-byte blocks, the last one overlapping the one before
    /// (a byte seen twice sets the same bit twice).
    #[inline(always)]
    fn masks(raw: &[u8]) -> Option<(u64, u64)> {
        let n = raw.len();
        let p = raw.as_ptr();
        if n <= 16 {
            // Low half: the first `half` bytes; high half: the last `half`.
            let (v, half) = if n >= 8 {
                // SAFETY: 8 <= n: both 8-byte reads are inside `raw`; SSE2
                // is enabled at compile time.
                let v = unsafe {
                    let first = p.cast::<u64>().read_unaligned();
                    let last = p.add(n - 8).cast::<u64>().read_unaligned();
                    _mm_set_epi64x(last as i64, first as i64)
                };
                (v, 8)
            } else if n >= 4 {
                // SAFETY: 4 <= n: both 4-byte reads are inside `raw`; SSE2
                // is enabled at compile time.
                let v = unsafe {
                    let first = p.cast::<u32>().read_unaligned();
                    let last = p.add(n - 4).cast::<u32>().read_unaligned();
                    // Both halves twice: no padding byte to mask out.
                    let word = (first as u64 | (last as u64) << 32) as i64;
                    _mm_set_epi64x(word, word)
                };
                (v, 4)
            } else {
                return None;
            };
            let (bad, slash, dot) = classify(v);
            if bad != 0 {
                return None;
            }
            let half_mask = (1u32 << half) - 1;
            let merge = |m: u32| ((m & half_mask) | ((m >> half) & half_mask) << (n - half)) as u64;
            return Some((merge(slash), merge(dot)));
        }
        if n > MAX_FAST_LEN {
            return None;
        }
        let (mut bad, mut slash, mut dot) = (0u32, 0u64, 0u64);
        let mut block = |at: usize| {
            // SAFETY: callers pass at + 16 <= n: the block is inside `raw`;
            // SSE2 is enabled at compile time.
            let v = unsafe { _mm_loadu_si128(p.add(at).cast()) };
            let (b, s, d) = classify(v);
            bad |= b;
            slash |= (s as u64) << at;
            dot |= (d as u64) << at;
        };
        let mut at = 0;
        while at + 16 < n {
            block(at);
            at += 16;
        }
        block(n - 16);
        if bad != 0 {
            return None;
        }
        Some((slash, dot))
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

    /// The reference the fast path must agree with: the byte loop every key
    /// took before the SSE2 fast path (unchanged, now `parse_general`).
    fn reference_parse(raw: &[u8]) -> Result<Key<'_>> {
        Key::parse_general(raw)
    }

    /// Same key (same text, borrowed from the same bytes or owned) or the
    /// same error as the reference.
    fn assert_same(raw: &[u8]) {
        let new = Key::parse(raw);
        let old = reference_parse(raw);
        match (&new, &old) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.as_str(), b.as_str(), "{raw:?}");
                match (&a.0, &b.0) {
                    (Cow::Borrowed(a), Cow::Borrowed(b)) => {
                        assert_eq!(a.as_ptr(), b.as_ptr(), "{raw:?}")
                    }
                    (Cow::Owned(_), Cow::Owned(_)) => {}
                    _ => panic!("{raw:?}: {new:?} vs {old:?}"),
                }
            }
            (Err(Error::Invalid(a)), Err(Error::Invalid(b))) => assert_eq!(a, b, "{raw:?}"),
            _ => panic!("{raw:?}: {new:?} vs {old:?}"),
        }
    }

    /// Pieces the equivalence tests build keys from: structure, refused
    /// bytes, and UTF-8 (`é` whole and as loose bytes, a lone continuation).
    const PIECES: [&[u8]; 10] = [
        b"/",
        b".",
        b"a",
        b"\\",
        b"\x01",
        b"\x7f",
        b"\xc3",
        b"\xa9",
        b"\x80",
        "é".as_bytes(),
    ];

    #[test]
    fn same_as_reference_for_every_short_string() {
        // Every string of 0..=5 pieces, alone and after prefixes that put
        // it in each length class of the fast path.
        let mut count = 0;
        let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..=5 {
            for s in &strings {
                for prefix in [&b""[..], b"/", b"/ab/", b"/abcdefgh/", b"/0123456789abcde/"] {
                    let mut raw = prefix.to_vec();
                    raw.extend_from_slice(s);
                    assert_same(&raw);
                    count += 1;
                }
            }
            strings = strings
                .iter()
                .flat_map(|s| {
                    PIECES.iter().map(move |p| {
                        let mut s = s.clone();
                        s.extend_from_slice(p);
                        s
                    })
                })
                .collect();
        }
        assert!(count > 500_000);
    }

    #[test]
    fn same_as_reference_for_random_strings() {
        // xorshift64*: reproducible without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut raw = Vec::new();
        for _ in 0..300_000 {
            raw.clear();
            let len = (next() % 81) as usize;
            // Half of the strings only from '/', '.' and 'a' (the segment
            // rules), the others with every piece and any byte.
            let clean = next() % 2 == 0;
            if next() % 4 != 0 {
                raw.push(b'/');
            }
            while raw.len() < len {
                let r = next();
                match r % 16 {
                    0..=4 => raw.push(b'/'),
                    5..=8 => raw.push(b'.'),
                    9..=12 => raw.push(b'a' + (r >> 8) as u8 % 26),
                    _ if clean => raw.push(b'z'),
                    13 => raw.push((r >> 8) as u8),
                    _ => raw.extend_from_slice(PIECES[(r >> 8) as usize % PIECES.len()]),
                }
            }
            assert_same(&raw);
        }
    }

    #[test]
    fn same_as_reference_at_the_length_limits() {
        for len in (1..=70).chain(250..=260).chain(1018..=1030) {
            // Segments of `seg` bytes filled to `len` bytes, with and
            // without the slashes at either end, and with each bad ending.
            for seg in [1, 2, 3, 7, 15, 16, 17, 63, 64, 254, 255, 256, 1100] {
                let mut key = Vec::new();
                while key.len() < len {
                    key.push(b'/');
                    key.extend(std::iter::repeat_n(b'x', seg));
                }
                key.truncate(len);
                for tail in [
                    &b""[..],
                    b"/",
                    b"//",
                    b"/.",
                    b"/..",
                    b"/./",
                    b"\x01",
                    b"\xc3\xa9",
                ] {
                    let mut raw = key.clone();
                    raw.truncate(len.saturating_sub(tail.len()));
                    raw.extend_from_slice(tail);
                    assert_same(&raw);
                    assert_same(&raw[1.min(raw.len())..]);
                    let mut doubled = raw.clone();
                    doubled.push(b'/');
                    assert_same(&doubled);
                }
            }
            // One bad byte or segment at each position of a valid key.
            if len <= 70 {
                let key: Vec<u8> = (0..len)
                    .map(|i| if i % 5 == 0 { b'/' } else { b'k' })
                    .collect();
                for i in 0..len {
                    for piece in [&b"\\"[..], b"\x7f", b"\x80", b".", b"/", b"\x00", b" "] {
                        let mut raw = key.clone();
                        raw[i] = piece[0];
                        assert_same(&raw);
                    }
                }
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[test]
    fn canonical_ascii_keys_take_the_fast_path() {
        for raw in [
            &b"/a/b"[..],
            b"/g0/v37/c.1234",
            b"/g0/v37/c.1234/",
            b"/.zarray",
            b"/a/..b/c..d/.x/...",
            &[b'/'; 1]
                .iter()
                .chain([b'y'; 63].iter())
                .copied()
                .collect::<Vec<_>>(),
        ] {
            let key = sse2::parse_canonical_ascii(raw).expect("fast path");
            assert_eq!(key, reference_parse(raw).unwrap());
        }
        for raw in [&b"a/b/c"[..], b"/a/", b"/\xc3\xa9/x", b"/a/./b", b"/a//b"] {
            assert!(sse2::parse_canonical_ascii(raw).is_none());
        }
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
