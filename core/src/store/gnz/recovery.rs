//! Whole files: reading the header at offset 0 and the commit record at the
//! tail, and choosing the newest valid one (DESIGN.md, "Recovery"). Pure: it
//! works on any [`Source`] (a `File`, or bytes for tests and fuzzing).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::format::{
    parse_header, Header, Parsed, MAGIC, MAX_HEADER_LEN, PREFIX_LEN, RECORD_MAGIC, TRAILER_LEN,
    UNDO_MAGIC,
};
use crate::error::{Error, Result};

fn bad(why: impl Into<String>) -> Error {
    Error::Format(why.into())
}

/// Where the bytes come from: a file, or memory.
pub trait Source {
    /// Length in bytes.
    fn size(&self) -> Result<u64>;
    /// Fills `buf` from `offset`; the range is known to lie inside the source.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
}

impl Source for File {
    fn size(&self) -> Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        FileExt::read_exact_at(self, buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::Format("file shrank while being read".into())
            } else {
                Error::Io(e)
            }
        })
    }
}

impl Source for [u8] {
    fn size(&self) -> Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let start = usize::try_from(offset).map_err(|_| bad("offset out of range"))?;
        let end = start
            .checked_add(buf.len())
            .filter(|&end| end <= self.len())
            .ok_or_else(|| bad("read past the end"))?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// Header JSON is read in pieces of this size.
const JSON_PIECE: usize = 1 << 20;

/// Reads the `len` bytes of header JSON at `offset`, after checking that they
/// lie in the source; `None` as soon as a piece holds a NUL byte, which JSON
/// never does (it is not JSON). The work and the memory are bounded by the
/// bytes the file really holds before such a byte, not by the length it
/// claims: a length of 1 GiB over a hole of a sparse file ends after the
/// first piece.
fn read_json(
    source: &(impl Source + ?Sized),
    offset: u64,
    len: u64,
    size: u64,
) -> Result<Option<Vec<u8>>> {
    match offset.checked_add(len) {
        Some(end) if end <= size => {}
        _ => return Err(bad("read past the end of the file")),
    }
    let len = usize::try_from(len).map_err(|_| bad("length too large"))?;
    let mut buf = Vec::new();
    while buf.len() < len {
        let at = buf.len();
        let n = (len - at).min(JSON_PIECE.max(at));
        buf.try_reserve_exact(n).map_err(|_| Error::NoMem)?;
        buf.resize(at + n, 0);
        source.read_exact_at(&mut buf[at..], offset + at as u64)?;
        if buf[at..].contains(&0) {
            return Ok(None);
        }
    }
    Ok(Some(buf))
}

/// The 8 bytes in front of a header.
pub fn prefix(json_len: usize) -> Result<[u8; 8]> {
    let len = u32::try_from(json_len).map_err(|_| Error::Invalid("GNZ header too large"))?;
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(MAGIC);
    p[4..].copy_from_slice(&len.to_le_bytes());
    Ok(p)
}

/// The length (prefix included) the header at offset 0 claims, if the
/// source (of `size` bytes) starts with the magic.
pub fn claimed_header_len(source: &(impl Source + ?Sized), size: u64) -> Result<Option<u64>> {
    if size < PREFIX_LEN {
        return Ok(None);
    }
    let mut p = [0u8; PREFIX_LEN as usize];
    source.read_exact_at(&mut p, 0)?;
    if &p[..4] != MAGIC {
        return Ok(None);
    }
    Ok(Some(
        PREFIX_LEN + u64::from(u32::from_le_bytes([p[4], p[5], p[6], p[7]])),
    ))
}

/// The JSON of the header at offset 0.
fn read_primary(source: &(impl Source + ?Sized), size: u64) -> Result<Vec<u8>> {
    if size < PREFIX_LEN {
        return Err(bad("file too short for a GNZ header"));
    }
    let len = claimed_header_len(source, size)?.ok_or_else(|| bad("not a GNZ file (bad magic)"))?
        - PREFIX_LEN;
    if len > MAX_HEADER_LEN {
        return Err(bad("header longer than 1 GiB"));
    }
    if PREFIX_LEN + len > size {
        return Err(bad("header length past the end of the file"));
    }
    read_json(source, PREFIX_LEN, len, size)?
        .ok_or_else(|| bad("header holds a NUL byte: not JSON"))
}

/// What the record at the tail is (DESIGN.md, "Commit").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The new commit's header: it wins over an older or torn header at 0.
    Redo,
    /// The committed header, written before a header at 0 that replaces
    /// it; the new header's CRC-32: the header at 0 wins only if complete.
    Undo { next: u32 },
}

/// The record at the tail, if there is a valid one: its kind, generation
/// and header JSON.
fn read_record(source: &(impl Source + ?Sized), size: u64) -> Result<Option<(Kind, u64, Vec<u8>)>> {
    if size < TRAILER_LEN {
        return Ok(None);
    }
    let mut t = [0u8; TRAILER_LEN as usize];
    source.read_exact_at(&mut t, size - TRAILER_LEN)?;
    let last = u32::from_le_bytes([t[28], t[29], t[30], t[31]]);
    let kind = match &t[..8] {
        m if m == RECORD_MAGIC && last == 0 => Kind::Redo,
        m if m == UNDO_MAGIC => Kind::Undo { next: last },
        _ => return Ok(None),
    };
    let word = |i: usize| u64::from_le_bytes(t[i..i + 8].try_into().unwrap_or([0; 8]));
    let (len, generation) = (word(8), word(16));
    let crc = u32::from_le_bytes([t[24], t[25], t[26], t[27]]);
    if len > MAX_HEADER_LEN || len > size - TRAILER_LEN {
        return Ok(None);
    }
    let Some(json) = read_json(source, size - TRAILER_LEN - len, len, size)? else {
        // Not JSON: no commit, as if its CRC failed.
        return Ok(None);
    };
    if trailer_sum(&json, &t) != crc {
        return Ok(None);
    }
    Ok(Some((kind, generation, json)))
}

/// The trailer of the commit record for `json` (see DESIGN.md).
pub fn trailer(json: &[u8], generation: u64) -> [u8; TRAILER_LEN as usize] {
    make_trailer(RECORD_MAGIC, json, generation, 0)
}

/// The trailer of an undo record: `json` is the committed header (of
/// `generation`), `next` the CRC-32 of the header bytes about to be
/// written at 0.
pub fn undo_trailer(json: &[u8], generation: u64, next: u32) -> [u8; TRAILER_LEN as usize] {
    make_trailer(UNDO_MAGIC, json, generation, next)
}

fn make_trailer(
    magic: &[u8; 8],
    json: &[u8],
    generation: u64,
    last: u32,
) -> [u8; TRAILER_LEN as usize] {
    let mut t = [0u8; TRAILER_LEN as usize];
    t[..8].copy_from_slice(magic);
    t[8..16].copy_from_slice(&(json.len() as u64).to_le_bytes());
    t[16..24].copy_from_slice(&generation.to_le_bytes());
    t[28..].copy_from_slice(&last.to_le_bytes());
    let sum = trailer_sum(json, &t);
    t[24..28].copy_from_slice(&sum.to_le_bytes());
    t
}

/// The CRC-32 (zlib's, IEEE 802.3; by crc32fast, SIMD where available) a
/// trailer `t` carries for `json`: over the JSON and the trailer's first
/// 24 bytes, and for an undo record its last 4 too (the new header's CRC:
/// a torn one must not make the record win over a complete header).
fn trailer_sum(json: &[u8], t: &[u8; TRAILER_LEN as usize]) -> u32 {
    let mut sum = crc32fast::Hasher::new();
    sum.update(json);
    sum.update(&t[..24]);
    if &t[..8] == UNDO_MAGIC {
        sum.update(&t[28..]);
    }
    sum.finalize()
}

/// The CRC-32 of a whole header at 0 (prefix and JSON, as written), given
/// in consecutive parts.
fn header_crc(parts: &[&[u8]]) -> u32 {
    let mut sum = crc32fast::Hasher::new();
    for part in parts {
        sum.update(part);
    }
    sum.finalize()
}

/// The commit record for `json` (see DESIGN.md): the JSON, then the trailer.
pub fn record(json: &[u8], generation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + TRAILER_LEN as usize);
    out.extend_from_slice(json);
    out.extend_from_slice(&trailer(json, generation));
    out
}

/// The undo record of a commit from the header `json` of `generation` to
/// the header bytes `next` (see DESIGN.md): the JSON, then the trailer.
pub fn undo_record(json: &[u8], generation: u64, next: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + TRAILER_LEN as usize);
    out.extend_from_slice(json);
    out.extend_from_slice(&undo_trailer(json, generation, header_crc(&[next])));
    out
}

/// The header a file stands for.
#[derive(Debug)]
pub struct Loaded<T = Header> {
    pub header: T,
    /// Its JSON, as it is (or must be) at offset 8.
    pub json: Vec<u8>,
    /// True when it came from the commit record because the header at 0 is
    /// torn, corrupt or older: a writer must write `json` back at offset 0.
    pub recovered: bool,
    /// The size of the source when it was read.
    pub size: u64,
}

/// Finds the committed header of a GNZ file: the header at offset 0, unless
/// the tail holds a valid commit record at least as new that the header at 0
/// does not match (a commit interrupted while rewriting the header), or a
/// valid undo record and the header at 0 is neither the one it holds nor,
/// whole, the one that was being written.
pub fn load(source: &(impl Source + ?Sized)) -> Result<Loaded> {
    load_with(source, |parsed| Ok(parsed.into_owned()))
}

/// As [`load`], handing the chosen header, parsed (and borrowing its JSON),
/// to `build`, whose result becomes `Loaded::header`.
pub fn load_with<T>(
    source: &(impl Source + ?Sized),
    mut build: impl FnMut(Parsed<'_>) -> Result<T>,
) -> Result<Loaded<T>> {
    let size = source.size()?;
    let primary_json = read_primary(source, size);
    let primary = primary_json.as_ref().ok().map(|j| parse_header(j, size));
    if let Some((kind, generation, json)) = read_record(source, size)? {
        let record_wins = match (kind, &primary) {
            (Kind::Redo, Some(Ok(parsed))) => {
                generation > parsed.generation()
                    || (generation == parsed.generation()
                        && primary_json.as_ref().ok() != Some(&json))
            }
            (Kind::Redo, _) => true,
            // The header at 0 is the commit in flight only if all of it
            // is there: a torn one may even parse. One of a later commit
            // wins (an undo record a later commit's cut left at the end
            // of the file, its trailer intact, names an older header).
            (Kind::Undo { next }, Some(Ok(parsed))) => match &primary_json {
                Ok(at_zero) => {
                    parsed.generation() <= generation.saturating_add(1)
                        && *at_zero != json
                        && !whole_header_is(at_zero, next)
                }
                Err(_) => true,
            },
            (Kind::Undo { .. }, _) => true,
        };
        if record_wins {
            if let Ok(parsed) = parse_header(&json, size) {
                if parsed.generation() == generation {
                    let header = build(parsed)?;
                    return Ok(Loaded {
                        header,
                        json,
                        recovered: true,
                        size,
                    });
                }
            }
        }
    }
    match primary {
        Some(Ok(parsed)) => {
            let header = build(parsed)?;
            Ok(Loaded {
                header,
                json: primary_json?,
                recovered: false,
                size,
            })
        }
        Some(Err(e)) => Err(e),
        None => Err(primary_json
            .err()
            .unwrap_or(Error::Internal("no header at offset 0"))),
    }
}

/// True if the header at 0 with JSON `json` has the CRC-32 `crc` (prefix
/// included).
fn whole_header_is(json: &[u8], crc: u32) -> bool {
    prefix(json.len()).is_ok_and(|prefix| header_crc(&[&prefix, json]) == crc)
}

/// Parses a whole file held in memory (the fuzzing entry point).
pub fn parse_file(bytes: &[u8]) -> Result<Loaded> {
    load(bytes)
}
