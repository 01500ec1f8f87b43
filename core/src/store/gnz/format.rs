//! The GNZ container format (gnz-format.md Part 1): parsing and writing the
//! header, and finding the newest valid header of a file (the one at offset 0
//! or the commit record at the tail, see DESIGN.md).
//!
//! Everything here is pure: it works on any [`Source`] (a `File`, or a byte
//! slice for tests and fuzzing), validates strictly, never panics, never
//! reads past the end of the source and never allocates more than the source
//! holds (plus a constant factor for the parsed JSON). A file that is not a
//! valid GNZ file is `Error::Format` (`NC_ENOTNC`).

use std::borrow::Cow;
use std::collections::HashMap;

use super::json::parse::{syntax, JsonParser};
use super::json::write::{write_object, write_string, write_u64, write_value};
use super::json::{Json, Object};

use crate::error::{Error, Result};

/// Bytes 0..4 of every GNZ file.
pub const MAGIC: &[u8; 4] = b"GNZ1";
/// The original writer's alignment, and the alignment of large objects.
pub const ALIGNMENT: u64 = 4096;
/// Magic + header length.
pub const PREFIX_LEN: u64 = 8;
/// The only format version.
pub const VERSION: u64 = 1;
/// Headers longer than this are refused (reading and writing), bounding the
/// memory a hostile file can make us allocate.
pub const MAX_HEADER_LEN: u64 = 1 << 30;
/// At most this many dimensions (numpy allows 64).
pub const MAX_NDIM: usize = 64;
/// Offsets and sizes past this cannot be addressed in a file.
pub const MAX_FILE_OFFSET: u64 = i64::MAX as u64;

/// The commit record at the tail of a file: the header JSON, then this
/// trailer (see DESIGN.md).
pub const RECORD_MAGIC: &[u8; 8] = b"GNZ1COPY";
/// The undo record of a commit over a header that references no extent:
/// the *committed* header JSON, then a trailer whose last 4 bytes are the
/// CRC-32 of the whole new header at 0 (see DESIGN.md, "Commit").
pub const UNDO_MAGIC: &[u8; 8] = b"GNZ1UNDO";
/// Trailer: magic (8), JSON length (8), generation (8), CRC-32 of the JSON
/// and the trailer's other bytes but its last 4 (and those too for
/// `UNDO_MAGIC`) (4), then zero (`RECORD_MAGIC`) or the new header's
/// CRC-32 (`UNDO_MAGIC`) (4).
pub const TRAILER_LEN: u64 = 32;

fn bad(why: impl Into<String>) -> Error {
    Error::Format(why.into())
}

// ---- dtypes ------------------------------------------------------------------

/// The item size of a numpy dtype string as numpy's `dtype.str` spells it:
/// an optional byte order (`<`, `>`, `|`, `=`), a kind and a size —
/// `b1`, `i1/2/4/8`, `u1/2/4/8`, `f2/4/8/12/16`, `c8/16/24/32`, `S<n>`,
/// `V<n>`, `U<n>` (n characters of 4 bytes), `M8` and `m8` with an optional
/// `[unit]`, and `?` (bool). Anything else is refused.
pub fn dtype_itemsize(dtype: &str) -> Result<u64> {
    let unknown = || bad(format!("unknown dtype {dtype:?}"));
    let rest = dtype.strip_prefix(['<', '>', '|', '=']).unwrap_or(dtype);
    let mut chars = rest.chars();
    let kind = chars.next().ok_or_else(unknown)?;
    let tail = chars.as_str();
    if kind == '?' {
        return match tail {
            "" | "1" => Ok(1),
            _ => Err(unknown()),
        };
    }
    // Datetimes carry a unit: M8[ns], m8[10us], or none (generic).
    let (digits, unit) = match tail.find('[') {
        Some(i) if matches!(kind, 'M' | 'm') => (&tail[..i], Some(&tail[i..])),
        _ => (tail, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
        return Err(unknown());
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(unknown());
    }
    let n: u64 = digits.parse().map_err(|_| unknown())?;
    if let Some(unit) = unit {
        if !valid_time_unit(unit) {
            return Err(unknown());
        }
    }
    let size = match kind {
        'b' if n == 1 => 1,
        'i' | 'u' if matches!(n, 1 | 2 | 4 | 8) => n,
        'f' if matches!(n, 2 | 4 | 8 | 12 | 16) => n,
        'c' if matches!(n, 8 | 16 | 24 | 32) => n,
        'S' | 'V' => n,
        'U' => n.checked_mul(4).ok_or_else(unknown)?,
        'M' | 'm' if n == 8 => 8,
        _ => return Err(unknown()),
    };
    Ok(size)
}

/// `[unit]` or `[<count>unit]` of a numpy datetime/timedelta.
fn valid_time_unit(unit: &str) -> bool {
    let Some(inner) = unit.strip_prefix('[').and_then(|u| u.strip_suffix(']')) else {
        return false;
    };
    let name = inner.trim_start_matches(|c: char| c.is_ascii_digit());
    let count = &inner[..inner.len() - name.len()];
    if count.len() > 9 || count.starts_with('0') {
        return false;
    }
    matches!(
        name,
        "Y" | "M"
            | "W"
            | "D"
            | "h"
            | "m"
            | "s"
            | "ms"
            | "us"
            | "μs"
            | "ns"
            | "ps"
            | "fs"
            | "as"
            | "generic"
    )
}

// ---- the header ----------------------------------------------------------------

/// One entry of `arrays`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Array {
    /// The name as the file spells it.
    pub name: String,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub dtype: String,
    /// `"C"` (also when the file leaves it out) or `"F"`.
    pub order: String,
    /// `prod(shape) * itemsize`.
    pub nbytes: u64,
}

/// A parsed, validated header.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// Every `metadata` entry, libzmap's own `zmap` entry included.
    pub metadata: Object,
    /// Top-level members other than `version`, `metadata` and `arrays`,
    /// kept so that a rewrite loses nothing.
    pub extra: Object,
    /// The arrays, in the file's order.
    pub arrays: Vec<Array>,
}

/// libzmap's commit counter in a header's metadata
/// (`metadata.zmap.generation`), 0 if absent.
pub fn generation_of(metadata: &Object) -> u64 {
    metadata
        .get("zmap")
        .and_then(|z| z.get("generation"))
        .and_then(Json::as_u64)
        .unwrap_or(0)
}

impl Header {
    /// libzmap's commit counter (`metadata.zmap.generation`), 0 if absent.
    pub fn generation(&self) -> u64 {
        generation_of(&self.metadata)
    }

    /// Parses the header JSON of a file of `file_len` bytes whose header
    /// takes bytes `0..8 + json.len()`, checking every array against it.
    pub fn parse(json: &[u8], file_len: u64) -> Result<Header> {
        Ok(parse_header(json, file_len)?.into_owned())
    }

    /// The header as JSON: keys sorted at every level and the separators and
    /// escapes of Python's `json.dumps(..., sort_keys=True)`, like the
    /// original writer.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut arrays: Vec<ArrayOut<'_>> = self
            .arrays
            .iter()
            .map(|a| ArrayOut {
                name: &a.name,
                offset: a.offset,
                dtype: &a.dtype,
                order: &a.order,
                shape: &a.shape,
            })
            .collect();
        // Sorted by name; of two arrays of one name the last one counts.
        arrays.reverse();
        arrays.sort_by(|a, b| a.name.cmp(b.name));
        arrays.dedup_by(|later, earlier| later.name == earlier.name);
        let mut out = Vec::new();
        write_header(&mut out, &self.metadata, &self.extra, arrays.into_iter())?;
        Ok(out)
    }
}

/// An array's shape: one dimension inline (every libzmap object), more on
/// the heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    One(u64),
    Many(Vec<u64>),
}

impl Shape {
    pub fn as_slice(&self) -> &[u64] {
        match self {
            Shape::One(d) => std::slice::from_ref(d),
            Shape::Many(v) => v,
        }
    }
}

/// One entry of `arrays`, validated, borrowing from the JSON where it can.
#[derive(Clone, Debug)]
pub struct ArrayRef<'a> {
    pub name: Cow<'a, str>,
    pub offset: u64,
    pub shape: Shape,
    pub dtype: Cow<'a, str>,
    /// `"C"` (also when the file leaves it out) or `"F"`.
    pub order: &'static str,
    /// `prod(shape) * itemsize`.
    pub nbytes: u64,
}

impl ArrayRef<'_> {
    /// `"|u1"`, `[nbytes]`, `"C"`: how libzmap writes every object.
    pub fn is_plain(&self) -> bool {
        self.dtype == "|u1" && self.order == "C" && self.shape == Shape::One(self.nbytes)
    }
}

/// A parsed, validated header that borrows from its JSON.
#[derive(Clone, Debug, Default)]
pub struct Parsed<'a> {
    pub metadata: Object,
    pub extra: Object,
    /// The arrays, in the file's order (one per name).
    pub arrays: Vec<ArrayRef<'a>>,
    /// True if the names are in strictly increasing order (as writers that
    /// sort their keys write them).
    pub sorted: bool,
}

impl Parsed<'_> {
    pub fn generation(&self) -> u64 {
        generation_of(&self.metadata)
    }

    pub fn into_owned(self) -> Header {
        Header {
            metadata: self.metadata,
            extra: self.extra,
            arrays: self
                .arrays
                .into_iter()
                .map(|a| Array {
                    name: a.name.into_owned(),
                    offset: a.offset,
                    shape: a.shape.as_slice().to_vec(),
                    dtype: a.dtype.into_owned(),
                    order: a.order.to_string(),
                    nbytes: a.nbytes,
                })
                .collect(),
        }
    }
}

/// A member seen in the JSON: absent, of a usable value, or not (only the
/// last of equal names counts, as in any JSON object).
#[derive(Clone, Debug)]
enum Field<T> {
    Missing,
    Valid(T),
    Invalid,
}

/// An `arrays` entry as read, checked once duplicates are settled.
#[derive(Debug)]
struct RawArray<'a> {
    name: Cow<'a, str>,
    /// `None`: the entry is not an object.
    fields: Option<RawFields<'a>>,
}

#[derive(Debug)]
struct RawFields<'a> {
    offset: Field<u64>,
    dtype: Field<Cow<'a, str>>,
    order: Field<&'static str>,
    shape: Field<Shape>,
}

/// Parses the header JSON of a file of `file_len` bytes whose header takes
/// bytes `0..8 + json.len()`, checking every array against it. One pass
/// over the bytes: names and dtypes are borrowed unless they hold escapes;
/// `metadata` and unknown members are kept as `Json` values. Accepts what
/// `serde_json` accepts as JSON, and Python's `NaN`, `Infinity` and
/// `-Infinity` (which the original writer writes) where a value may be any.
pub fn parse_header(json: &[u8], file_len: u64) -> Result<Parsed<'_>> {
    let mut p = JsonParser { b: json, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        // Not an object; a JSON error if it is not JSON at all.
        p.any()?;
        p.end()?;
        return Err(bad("header is not a JSON object"));
    }
    p.i += 1;
    let mut version = Field::Missing;
    let mut metadata = Field::Missing;
    let mut arrays: Field<(Vec<RawArray<'_>>, bool)> = Field::Missing;
    let mut extra = Object::new();
    if !p.eat(b'}') {
        loop {
            let name = p.key()?;
            match &*name {
                "version" => version = p.unsigned()?,
                "metadata" => {
                    metadata = match p.any()? {
                        Json::Object(m) => Field::Valid(m),
                        _ => Field::Invalid,
                    }
                }
                "arrays" => arrays = p.arrays()?,
                _ => {
                    let value = p.any()?;
                    extra.insert(name.into_owned(), value);
                }
            }
            if !p.next_member(b'}')? {
                break;
            }
        }
    }
    p.end()?;
    match version {
        Field::Missing | Field::Valid(VERSION) => {}
        Field::Valid(v) => return Err(bad(format!("unsupported GNZ version {v}"))),
        Field::Invalid => return Err(bad("unsupported GNZ version")),
    }
    let metadata = match metadata {
        Field::Missing => Object::new(),
        Field::Valid(m) => m,
        Field::Invalid => return Err(bad("'metadata' is not an object")),
    };
    let (raw, sorted) = match arrays {
        Field::Missing => (Vec::new(), true),
        Field::Valid(a) => a,
        Field::Invalid => return Err(bad("'arrays' is not an object")),
    };
    let raw = if sorted { raw } else { settle_duplicates(raw) };
    let mut arrays = Vec::with_capacity(raw.len());
    for a in raw {
        arrays.push(check_array(a, file_len)?);
    }
    check_overlaps(&arrays, PREFIX_LEN + json.len() as u64)?;
    Ok(Parsed {
        metadata,
        extra,
        arrays,
        sorted,
    })
}

/// Of several entries of one name, the last counts, in the place of the
/// first (a JSON object read into an insertion-ordered map).
fn settle_duplicates(raw: Vec<RawArray<'_>>) -> Vec<RawArray<'_>> {
    let mut place: HashMap<Cow<'_, str>, usize> = HashMap::with_capacity(raw.len());
    let mut out: Vec<RawArray<'_>> = Vec::with_capacity(raw.len());
    for a in raw {
        match place.get(&a.name) {
            Some(&i) => out[i] = a,
            None => {
                place.insert(a.name.clone(), out.len());
                out.push(a);
            }
        }
    }
    out
}

/// Item sizes of the dtypes seen most, without parsing them.
fn itemsize(dtype: &str) -> Result<u64> {
    match dtype {
        "|u1" | "|i1" | "|b1" => Ok(1),
        "<f8" | "<i8" | "<u8" => Ok(8),
        "<f4" | "<i4" | "<u4" => Ok(4),
        _ => dtype_itemsize(dtype),
    }
}

fn check_array(a: RawArray<'_>, file_len: u64) -> Result<ArrayRef<'_>> {
    let name = a.name;
    let what = |field: &str| bad(format!("array {name:?}: bad or missing '{field}'"));
    let Some(f) = a.fields else {
        return Err(bad(format!("array {name:?} is not an object")));
    };
    let Field::Valid(offset) = f.offset else {
        return Err(what("offset"));
    };
    let Field::Valid(dtype) = f.dtype else {
        return Err(what("dtype"));
    };
    let order = match f.order {
        Field::Missing => "C",
        Field::Valid(o) => o,
        Field::Invalid => return Err(what("order")),
    };
    let Field::Valid(shape) = f.shape else {
        return Err(what("shape"));
    };
    let itemsize = itemsize(&dtype).map_err(|e| bad(format!("array {name:?}: {e}")))?;
    let dims = shape.as_slice();
    // An empty dimension makes the array empty, whatever the others say.
    let nbytes = if dims.contains(&0) {
        0
    } else {
        dims.iter()
            .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= MAX_FILE_OFFSET)
            .ok_or_else(|| bad(format!("array {name:?}: size overflows")))?
    };
    match offset.checked_add(nbytes) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(bad(format!(
                "array {name:?}: bytes {offset}+{nbytes} lie past the end of the file ({file_len})"
            )))
        }
    }
    Ok(ArrayRef {
        name,
        offset,
        shape,
        dtype,
        order,
        nbytes,
    })
}

/// Non-empty arrays may not overlap one another nor the header.
fn check_overlaps(arrays: &[ArrayRef<'_>], header_end: u64) -> Result<()> {
    let mut extents: Vec<(u64, u64, usize)> = arrays
        .iter()
        .enumerate()
        .filter(|(_, a)| a.nbytes > 0)
        .map(|(i, a)| (a.offset, a.offset + a.nbytes, i))
        .collect();
    extents.sort_unstable();
    let mut prev_end = header_end;
    let mut prev: Option<usize> = None;
    for (start, end, i) in extents {
        if start < prev_end {
            let other = match prev {
                Some(j) => format!("{:?}", arrays[j].name),
                None => "the header".to_string(),
            };
            return Err(bad(format!("array {:?} overlaps {other}", arrays[i].name)));
        }
        prev_end = end;
        prev = Some(i);
    }
    Ok(())
}

// ---- reading JSON ---------------------------------------------------------------
impl<'a> JsonParser<'a> {
    /// A value that should be a non-negative integer.
    fn unsigned(&mut self) -> Result<Field<u64>> {
        self.ws();
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => Ok(match self.number()? {
                Some(v) => Field::Valid(v),
                None => Field::Invalid,
            }),
            _ => {
                self.any()?;
                Ok(Field::Invalid)
            }
        }
    }

    /// A value that should be a string.
    fn text(&mut self) -> Result<Field<Cow<'a, str>>> {
        self.ws();
        if self.peek() == Some(b'"') {
            Ok(Field::Valid(self.string()?))
        } else {
            self.any()?;
            Ok(Field::Invalid)
        }
    }

    /// The `arrays` member's value; the flag says whether its names come
    /// sorted (strictly increasing, so also without duplicates).
    fn arrays(&mut self) -> Result<Field<(Vec<RawArray<'a>>, bool)>> {
        self.ws();
        if self.peek() != Some(b'{') {
            self.any()?;
            return Ok(Field::Invalid);
        }
        self.i += 1;
        let mut out: Vec<RawArray<'a>> = Vec::new();
        let mut sorted = true;
        if self.eat(b'}') {
            return Ok(Field::Valid((out, sorted)));
        }
        loop {
            let name = self.key()?;
            if let Some(prev) = out.last() {
                sorted &= prev.name < name;
            }
            let fields = self.entry()?;
            out.push(RawArray { name, fields });
            if !self.next_member(b'}')? {
                return Ok(Field::Valid((out, sorted)));
            }
        }
    }

    /// One array's description (`None` if it is not an object).
    fn entry(&mut self) -> Result<Option<RawFields<'a>>> {
        self.ws();
        if self.peek() != Some(b'{') {
            self.any()?;
            return Ok(None);
        }
        self.i += 1;
        let mut f = RawFields {
            offset: Field::Missing,
            dtype: Field::Missing,
            order: Field::Missing,
            shape: Field::Missing,
        };
        if self.eat(b'}') {
            return Ok(Some(f));
        }
        loop {
            let name = self.raw_key()?;
            match &*name {
                b"offset" => f.offset = self.unsigned()?,
                b"dtype" => f.dtype = self.text()?,
                b"order" => {
                    f.order = match self.text()? {
                        Field::Valid(o) if o == "C" => Field::Valid("C"),
                        Field::Valid(o) if o == "F" => Field::Valid("F"),
                        _ => Field::Invalid,
                    }
                }
                b"shape" => f.shape = self.shape()?,
                other => {
                    std::str::from_utf8(other).map_err(|_| syntax(self.i))?;
                    self.any()?;
                }
            }
            if !self.next_member(b'}')? {
                return Ok(Some(f));
            }
        }
    }

    /// A shape: at most MAX_NDIM integers that a file offset can hold.
    fn shape(&mut self) -> Result<Field<Shape>> {
        self.ws();
        if self.peek() != Some(b'[') {
            self.any()?;
            return Ok(Field::Invalid);
        }
        self.i += 1;
        let mut dims: Vec<u64> = Vec::new();
        let mut first = None;
        let mut ndim = 0usize;
        let mut valid = true;
        if !self.eat(b']') {
            loop {
                let d = match self.unsigned()? {
                    Field::Valid(d) if d <= MAX_FILE_OFFSET => d,
                    _ => {
                        valid = false;
                        0
                    }
                };
                ndim += 1;
                if ndim > MAX_NDIM {
                    valid = false;
                } else if ndim == 1 {
                    first = Some(d);
                } else {
                    if ndim == 2 {
                        dims.extend(first);
                    }
                    dims.push(d);
                }
                if !self.next_member(b']')? {
                    break;
                }
            }
        }
        Ok(match (valid, ndim, first) {
            (false, _, _) => Field::Invalid,
            (true, 1, Some(d)) => Field::Valid(Shape::One(d)),
            (true, _, _) => Field::Valid(Shape::Many(dims)),
        })
    }
}

// ---- JSON output as Python writes it ---------------------------------------------

/// One array to write.
#[derive(Clone, Copy, Debug)]
pub struct ArrayOut<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub dtype: &'a str,
    pub order: &'a str,
    pub shape: &'a [u64],
}

/// Appends the header JSON to `out`: `arrays` (given sorted by name),
/// `metadata` and `version`, and the `extra` members, each object's keys
/// sorted, with the separators and escapes of Python's
/// `json.dumps(..., sort_keys=True)`, like the original writer.
pub fn write_header<'a>(
    out: &mut Vec<u8>,
    metadata: &Object,
    extra: &Object,
    arrays: impl Iterator<Item = ArrayOut<'a>>,
) -> Result<()> {
    let start = out.len();
    enum Top<'v> {
        Arrays,
        Metadata,
        Version,
        Extra(&'v Json),
    }
    let mut top: Vec<(&str, Top<'_>)> = vec![
        ("arrays", Top::Arrays),
        ("metadata", Top::Metadata),
        ("version", Top::Version),
    ];
    for (k, v) in extra {
        if !matches!(k.as_str(), "arrays" | "metadata" | "version") {
            top.push((k, Top::Extra(v)));
        }
    }
    top.sort_by(|a, b| a.0.cmp(b.0));
    let mut arrays = Some(arrays);
    out.push(b'{');
    for (i, (name, member)) in top.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_string(out, name);
        out.extend_from_slice(b": ");
        match member {
            Top::Arrays => {
                out.push(b'{');
                for (j, a) in arrays.take().into_iter().flatten().enumerate() {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    write_array(out, &a);
                    if out.len() - start > MAX_HEADER_LEN as usize {
                        return Err(Error::Invalid("GNZ header would exceed 1 GiB"));
                    }
                }
                out.push(b'}');
            }
            Top::Metadata => write_object(out, metadata),
            Top::Version => write_u64(out, VERSION),
            Top::Extra(v) => write_value(out, v),
        }
    }
    out.push(b'}');
    if out.len() - start > MAX_HEADER_LEN as usize {
        return Err(Error::Invalid("GNZ header would exceed 1 GiB"));
    }
    Ok(())
}

/// `"NAME": {"dtype": ..., "offset": ..., "order": ..., "shape": [...]}`.
fn write_array(out: &mut Vec<u8>, a: &ArrayOut<'_>) {
    if a.dtype == "|u1" && a.order == "C" && a.shape.len() == 1 {
        // Every libzmap object.
        write_string(out, a.name);
        out.extend_from_slice(b": {\"dtype\": \"|u1\", \"offset\": ");
        write_u64(out, a.offset);
        out.extend_from_slice(b", \"order\": \"C\", \"shape\": [");
        write_u64(out, a.shape[0]);
        out.extend_from_slice(b"]}");
        return;
    }
    write_string(out, a.name);
    out.extend_from_slice(b": {\"dtype\": ");
    write_string(out, a.dtype);
    out.extend_from_slice(b", \"offset\": ");
    write_u64(out, a.offset);
    out.extend_from_slice(b", \"order\": ");
    write_string(out, a.order);
    out.extend_from_slice(b", \"shape\": [");
    for (i, &d) in a.shape.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_u64(out, d);
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;
    // The header is tested through whole files (recovery.rs).
    use crate::store::gnz::recovery::{parse_file, record, trailer, undo_record};
    use serde_json::Value;

    fn file_with(json: &str, size: usize) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(&(json.len() as u32).to_le_bytes());
        f.extend_from_slice(json.as_bytes());
        f.resize(size.max(f.len()), 0);
        f
    }

    fn format_error(bytes: &[u8]) -> bool {
        matches!(parse_file(bytes), Err(Error::Format(_)))
    }

    #[test]
    fn crc_matches_zlib() {
        // The check value of CRC-32/ISO-HDLC (zlib.crc32(b"123456789")).
        let t = trailer(b"123456789", 0);
        let mut sum = crc32fast::Hasher::new();
        sum.update(b"123456789");
        assert_eq!(sum.finalize(), 0xCBF4_3926);
        // And the trailer's sum covers the JSON and the trailer's first 24 bytes.
        let mut sum = crc32fast::Hasher::new();
        sum.update(b"123456789");
        sum.update(&t[..24]);
        assert_eq!(t[24..28], sum.finalize().to_le_bytes());
    }

    #[test]
    fn dtypes() {
        for (s, n) in [
            ("|u1", 1),
            ("<f8", 8),
            (">i4", 4),
            ("=i2", 2),
            ("i8", 8),
            ("|b1", 1),
            ("|S10", 10),
            ("|S0", 0),
            ("|V16", 16),
            ("<U5", 20),
            ("<c16", 16),
            ("<f16", 16),
            ("<M8[ns]", 8),
            ("<m8[10us]", 8),
            ("<M8", 8),
            ("?", 1),
            ("|?", 1),
        ] {
            assert_eq!(dtype_itemsize(s).unwrap(), n, "{s}");
        }
        for s in [
            "",
            "<",
            "<f",
            "<f3",
            "<i3",
            "<x4",
            "<f08",
            "<u16",
            "<M4",
            "<M8[xs]",
            "<M8[ns",
            "|b2",
            "<?2",
            "float64",
            "<S-1",
            "<U99999999999999999999",
            "<i 4",
            "<<i4",
        ] {
            assert!(dtype_itemsize(s).is_err(), "{s}");
        }
        assert!(dtype_itemsize("<U4611686018427387904").is_err());
    }

    #[test]
    fn original_layout_parses() {
        let json = r#"{"arrays": {"a": {"dtype": "<f8", "offset": 4096, "order": "C", "shape": [3, 5]}, "s": {"dtype": "<i4", "offset": 8192, "shape": []}, "z": {"dtype": "<f8", "offset": 12288, "order": "C", "shape": [0]}}, "metadata": {"user": 1}, "version": 1}"#;
        let f = file_with(json, 12288);
        let loaded = parse_file(&f).unwrap();
        assert!(!loaded.recovered);
        let a = &loaded.header.arrays;
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].nbytes, a[1].nbytes, a[2].nbytes), (120, 4, 0));
        assert_eq!(a[1].order, "C");
        assert_eq!(loaded.header.metadata["user"], Json::from(1));
        assert_eq!(loaded.header.generation(), 0);
    }

    #[test]
    fn serialization_is_python_style() {
        let mut h = Header::default();
        h.metadata
            .insert("z".into(), Json::String("é\n\u{1F600}".into()));
        h.metadata.insert(
            "a".into(),
            Json::from(&serde_json::json!({"y": [1, 2], "b": null})),
        );
        h.arrays.push(Array {
            name: "/x".into(),
            offset: 4096,
            shape: vec![3],
            dtype: "|u1".into(),
            order: "C".into(),
            nbytes: 3,
        });
        let json = String::from_utf8(h.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"arrays": {"/x": {"dtype": "|u1", "offset": 4096, "order": "C", "shape": [3]}}, "metadata": {"a": {"b": null, "y": [1, 2]}, "z": "\u00e9\n\ud83d\ude00"}, "version": 1}"#
        );
        let back = Header::parse(json.as_bytes(), 4099).unwrap();
        assert_eq!(back.arrays, h.arrays);
        assert_eq!(back.metadata["z"], h.metadata["z"]);
    }

    #[test]
    fn non_finite_metadata_round_trips_as_written() {
        // What Python's json.dumps writes for float('nan') and infinities.
        let json = r#"{"arrays": {}, "metadata": {"_FillValue": NaN, "max": Infinity, "min": -Infinity, "v": [NaN, -0.0, 1e+300, 12345678901234567890123]}, "version": 1}"#;
        let h = Header::parse(json.as_bytes(), 4096).unwrap();
        assert_eq!(h.metadata["_FillValue"], Json::Number("NaN".into()));
        assert_eq!(h.metadata["min"], Json::Number("-Infinity".into()));
        assert_eq!(String::from_utf8(h.to_json().unwrap()).unwrap(), json);
        // Only those three words, and not where the format wants integers.
        for bad_json in [
            r#"{"metadata": {"x": nan}}"#,
            r#"{"metadata": {"x": -NaN}}"#,
            r#"{"metadata": {"x": Infinit}}"#,
            r#"{"metadata": {"x": +Infinity}}"#,
            r#"{"metadata": {"x": NaNa}}"#,
            r#"{"version": NaN}"#,
            r#"{"arrays": {"a": {"dtype": "|u1", "offset": NaN, "shape": [1]}}}"#,
            r#"{"arrays": {"a": {"dtype": "|u1", "offset": 4096, "shape": [Infinity]}}}"#,
        ] {
            assert!(
                matches!(
                    Header::parse(bad_json.as_bytes(), 8192),
                    Err(Error::Format(_))
                ),
                "{bad_json}"
            );
        }
    }

    #[test]
    fn metadata_nesting_is_bounded() {
        let nested = |n: usize| {
            format!(
                r#"{{"metadata": {{"x": {}{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(Header::parse(nested(126).as_bytes(), 4096).is_ok());
        assert!(matches!(
            Header::parse(nested(100_000).as_bytes(), 4096),
            Err(Error::Format(_))
        ));
    }

    #[test]
    fn every_truncation_is_refused() {
        let json = r#"{"arrays": {"a": {"dtype": "|u1", "offset": 4096, "order": "C", "shape": [10]}}, "metadata": {}, "version": 1}"#;
        let f = file_with(json, 4106);
        assert!(parse_file(&f).is_ok());
        for cut in 0..f.len() {
            assert!(format_error(&f[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn corruptions_are_refused() {
        let arr = |body: &str| {
            format!(r#"{{"arrays": {{"a": {body}}}, "metadata": {{}}, "version": 1}}"#)
        };
        let ok = r#"{"dtype": "|u1", "offset": 4096, "shape": [10]}"#;
        assert!(parse_file(&file_with(&arr(ok), 8192)).is_ok());
        for body in [
            r#"{"dtype": "|u1", "offset": -1, "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": 4096.5, "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": 4096.0, "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": "4096", "shape": [10]}"#,
            r#"{"dtype": "|u1", "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": 8190, "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": 18446744073709551615, "shape": [10]}"#,
            r#"{"dtype": "|u1", "offset": 4, "shape": [10]}"#,
            r#"{"dtype": "<f8", "offset": 4096, "shape": [4294967296, 4294967296]}"#,
            r#"{"dtype": "<f8", "offset": 4096, "shape": [-1]}"#,
            r#"{"dtype": "<f8", "offset": 4096, "shape": [1.5]}"#,
            r#"{"dtype": "<f8", "offset": 4096, "shape": 10}"#,
            r#"{"dtype": "<q8", "offset": 4096, "shape": [1]}"#,
            r#"{"dtype": 8, "offset": 4096, "shape": [1]}"#,
            r#"{"dtype": "|u1", "offset": 4096, "shape": [1], "order": "K"}"#,
            r#"[4096]"#,
            r#"null"#,
        ] {
            assert!(format_error(&file_with(&arr(body), 8192)), "{body}");
        }
        // Two arrays on the same bytes.
        let two = r#"{"arrays": {"a": {"dtype": "|u1", "offset": 4096, "shape": [10]}, "b": {"dtype": "|u1", "offset": 4100, "shape": [10]}}, "version": 1}"#;
        assert!(format_error(&file_with(two, 8192)));
        // Zero-size arrays may share offsets.
        let zeros = r#"{"arrays": {"a": {"dtype": "|u1", "offset": 4096, "shape": [0]}, "b": {"dtype": "|u1", "offset": 4096, "shape": [0, 7]}}, "version": 1}"#;
        assert!(parse_file(&file_with(zeros, 4096)).is_ok());
        for top in [
            "[]",
            "{",
            "not json",
            r#"{"arrays": [], "version": 1}"#,
            r#"{"arrays": {}, "metadata": [], "version": 1}"#,
            r#"{"arrays": {}, "version": 2}"#,
            r#"{"arrays": {}, "version": "1"}"#,
            "{\"arrays\": {}} trailing",
        ] {
            assert!(format_error(&file_with(top, 4096)), "{top}");
        }
        // Missing members are the original reader's defaults.
        assert!(parse_file(&file_with("{}", 4096)).is_ok());
        // Bad magic; length past the end.
        let mut f = file_with("{}", 4096);
        f[0] = b'X';
        assert!(format_error(&f));
        let mut f = file_with("{}", 64);
        f[4..8].copy_from_slice(&100u32.to_le_bytes());
        assert!(format_error(&f));
        let mut f = file_with("{}", 64);
        f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(format_error(&f));
        // Not UTF-8.
        let mut f = file_with("{\"x\": \"ab\"}", 64);
        f[15] = 0xff;
        assert!(format_error(&f));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(format_error(&file_with(&json, 0)));
    }

    /// Random damage to a valid file with a commit record: parsing never
    /// panics, and whatever it accepts is self-consistent.
    #[test]
    fn random_damage_never_panics() {
        let json = r#"{"arrays": {"/a": {"dtype": "<f8", "offset": 4096, "order": "C", "shape": [2, 3]}, "b": {"dtype": "|S4", "offset": 4144, "shape": []}, "/z": {"dtype": "<M8[ns]", "offset": 0, "shape": [0]}}, "metadata": {"zmap": {"generation": 3}, "x": [1.5, "é"]}, "version": 1}"#;
        let mut base = file_with(json, 8192);
        base.extend_from_slice(&record(json.as_bytes(), 3));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let interesting = b"{}[]\":,0123456789-.eE\\u \0\xffGNZ1";
        for _ in 0..20_000 {
            let mut f = base.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % f.len() as u64) as usize;
                match next() % 5 {
                    0 => f[at] = next() as u8,
                    1 => f[at] = interesting[(next() % interesting.len() as u64) as usize],
                    2 => f.truncate(at),
                    3 => {
                        f.remove(at);
                    }
                    _ => f.insert(
                        at,
                        interesting[(next() % interesting.len() as u64) as usize],
                    ),
                }
                if f.is_empty() {
                    break;
                }
            }
            if let Ok(loaded) = parse_file(&f) {
                for a in &loaded.header.arrays {
                    assert!(a.offset + a.nbytes <= f.len() as u64);
                }
            }
        }
    }

    /// The header parser before the streaming one: everything through a
    /// `serde_json::Value` tree. The streaming parser must accept exactly
    /// what it accepts, with the same result.
    fn reference_parse(json: &[u8], file_len: u64) -> Option<Header> {
        let value: Value = serde_json::from_slice(json).ok()?;
        let Value::Object(top) = value else {
            return None;
        };
        let mut header = Header::default();
        let mut arrays = None;
        for (name, value) in top {
            match name.as_str() {
                "version" => {
                    if value.as_u64() != Some(VERSION) {
                        return None;
                    }
                }
                "metadata" => match Json::from(&value) {
                    Json::Object(m) => header.metadata = m,
                    _ => return None,
                },
                "arrays" => arrays = Some(value.as_object()?.clone()),
                _ => {
                    header.extra.insert(name, Json::from(&value));
                }
            }
        }
        for (name, info) in arrays.unwrap_or_default() {
            let info = info.as_object()?;
            let offset = info.get("offset")?.as_u64()?;
            let dtype = info.get("dtype")?.as_str()?.to_string();
            let order = match info.get("order") {
                None => "C".to_string(),
                Some(Value::String(o)) if o == "C" || o == "F" => o.clone(),
                Some(_) => return None,
            };
            let dims = info.get("shape")?.as_array()?;
            if dims.len() > MAX_NDIM {
                return None;
            }
            let mut shape = Vec::new();
            for d in dims {
                shape.push(d.as_u64().filter(|&d| d <= MAX_FILE_OFFSET)?);
            }
            let itemsize = dtype_itemsize(&dtype).ok()?;
            let nbytes = if shape.contains(&0) {
                0
            } else {
                shape
                    .iter()
                    .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
                    .filter(|&n| n <= MAX_FILE_OFFSET)?
            };
            if offset.checked_add(nbytes)? > file_len {
                return None;
            }
            header.arrays.push(Array {
                name,
                offset,
                shape,
                dtype,
                order,
                nbytes,
            });
        }
        let mut extents: Vec<(u64, u64)> = header
            .arrays
            .iter()
            .filter(|a| a.nbytes > 0)
            .map(|a| (a.offset, a.offset + a.nbytes))
            .collect();
        extents.sort_unstable();
        let mut prev_end = PREFIX_LEN + json.len() as u64;
        for (start, end) in extents {
            if start < prev_end {
                return None;
            }
            prev_end = end;
        }
        Some(header)
    }

    fn same_as_reference(json: &[u8], file_len: u64) {
        let new = parse_header(json, file_len).map(Parsed::into_owned);
        let old = reference_parse(json, file_len);
        match (&new, &old) {
            (Ok(n), Some(o)) => {
                assert_eq!(n.arrays, o.arrays, "{}", String::from_utf8_lossy(json));
                assert_eq!(n.metadata, o.metadata);
                assert_eq!(n.extra, o.extra);
            }
            (Err(Error::Format(_)), None) => {}
            _ => panic!(
                "streaming {:?}, reference {:?}: {}",
                new.map(|_| ()),
                old.map(|_| ()),
                String::from_utf8_lossy(json)
            ),
        }
    }

    #[test]
    fn streaming_parser_accepts_what_serde_json_does() {
        let headers = [
            r#"{"arrays": {"/a": {"dtype": "<f8", "offset": 4096, "order": "C", "shape": [2, 3]}, "b": {"dtype": "|S4", "offset": 4144, "shape": []}, "/z": {"dtype": "<M8[ns]", "offset": 0, "shape": [0]}}, "metadata": {"zmap": {"generation": 3}, "x": [1.5, "\u00e9"]}, "version": 1}"#,
            r#"{"version": 1, "x": {"y": null}, "arrays": {"/b\u0041\n": {"shape": [7], "order": "F", "offset": 5000, "dtype": "|u1", "other": [1, {"a": true}]}, "/a": {"dtype": "|u1", "offset": 4096, "shape": [10]}}, "metadata": {}}"#,
            "{\"arrays\":{\"/q\":{\"dtype\":\"|u1\",\"offset\":4096,\"shape\":[1]},\"/q\":{\"dtype\":\"|u1\",\"offset\":4100,\"shape\":[2]}},\"version\":1,\"version\":1}",
            "{}",
            " { \"arrays\" : { } } ",
        ];
        let interesting = b"{}[]\":,0123456789-.eE\\u \t\n\x00\x7f\xc3\xa9\xffdDabF/";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for h in headers {
            same_as_reference(h.as_bytes(), 9000);
            for _ in 0..6000 {
                let mut j = h.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    if j.is_empty() {
                        break;
                    }
                    let at = (next() % j.len() as u64) as usize;
                    let c = interesting[(next() % interesting.len() as u64) as usize];
                    match next() % 4 {
                        0 => j[at] = c,
                        1 => {
                            j.remove(at);
                        }
                        2 => j.insert(at, c),
                        _ => j.truncate(at),
                    }
                }
                same_as_reference(&j, 9000);
            }
        }
        // Surrogates, escapes and numbers at the edges.
        for name in [
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
            r#""\u00""#,
            r#""\x""#,
            r#""a\/b""#,
            r#""\uD83D\uDE00\u00E9""#,
        ] {
            let h = format!(
                r#"{{"arrays": {{{name}: {{"dtype": "|u1", "offset": 4096, "shape": [1]}}}}}}"#
            );
            same_as_reference(h.as_bytes(), 9000);
        }
        for offset in [
            "18446744073709551615",
            "18446744073709551616",
            "-0",
            "0",
            "01",
            "1e3",
            "4096.0",
            "4096",
            "4.096e3",
            "-",
            "1.",
            "1e",
            "1e+",
        ] {
            let h = format!(
                r#"{{"arrays": {{"a": {{"dtype": "|u1", "offset": {offset}, "shape": [1]}}}}}}"#
            );
            same_as_reference(h.as_bytes(), u64::MAX);
        }
    }

    #[test]
    fn record_recovery_rules() {
        let gen_json = |g: u64, off: u64| {
            format!(
                r#"{{"arrays": {{"/a": {{"dtype": "|u1", "offset": {off}, "order": "C", "shape": [4]}}}}, "metadata": {{"zmap": {{"generation": {g}}}}}, "version": 1}}"#
            )
        };
        let old = gen_json(1, 4096);
        let new = gen_json(2, 4112);
        let mut f = file_with(&old, 8192);
        f.extend_from_slice(&record(new.as_bytes(), 2));
        // Newer record wins over a valid older header.
        let l = parse_file(&f).unwrap();
        assert!(l.recovered);
        assert_eq!(l.header.arrays[0].offset, 4112);
        // A torn header at 0 is recovered.
        let mut torn = f.clone();
        torn[20] = b'#';
        assert_eq!(parse_file(&torn).unwrap().header.arrays[0].offset, 4112);
        // A corrupt record is ignored.
        let n = f.len();
        let mut bad_rec = f.clone();
        bad_rec[n - 40] ^= 1;
        let l = parse_file(&bad_rec).unwrap();
        assert!(!l.recovered);
        assert_eq!(l.header.arrays[0].offset, 4096);
        // An older record is ignored.
        let mut f2 = file_with(&new, 8192);
        f2.extend_from_slice(&record(old.as_bytes(), 1));
        assert!(!parse_file(&f2).unwrap().recovered);
        // The same record as the header: nothing to recover.
        let mut f3 = file_with(&new, 8192);
        f3.extend_from_slice(&record(new.as_bytes(), 2));
        assert!(!parse_file(&f3).unwrap().recovered);
        // A record whose JSON disagrees with its trailer's generation is ignored.
        let mut f4 = file_with(&old, 8192);
        f4.extend_from_slice(&record(new.as_bytes(), 7));
        assert!(!parse_file(&f4).unwrap().recovered);
        // Torn header and no record: not a GNZ file.
        let mut f5 = file_with(&old, 8192);
        f5[20] = b'#';
        assert!(format_error(&f5));
    }

    #[test]
    fn undo_record_recovery_rules() {
        let bare = r#"{"arrays": {}, "metadata": {"zmap": {"generation": 1}}, "version": 1}"#;
        let new = r#"{"arrays": {"/a": {"dtype": "|u1", "offset": 8192, "order": "C", "shape": [4]}}, "metadata": {"zmap": {"generation": 2}}, "version": 1}"#;
        let new_at_zero = file_with(new, 0);
        // The file as a crash may leave it: `at_zero` at 0, the undo
        // record of the commit from `bare` to `new` at the tail.
        let with_undo = |at_zero: &[u8], generation: u64| {
            let mut f = at_zero.to_vec();
            f.resize(16384, 0);
            f.extend_from_slice(&undo_record(bare.as_bytes(), generation, &new_at_zero));
            f
        };
        let arrays = |f: &[u8]| parse_file(f).unwrap().header.arrays.len();
        // Before the new header was written: the committed one, as it is.
        let f = with_undo(&file_with(bare, 0), 1);
        assert!(!parse_file(&f).unwrap().recovered);
        assert_eq!(arrays(&f), 0);
        // The new header whole: the new commit.
        let f = with_undo(&new_at_zero, 1);
        let l = parse_file(&f).unwrap();
        assert!(!l.recovered);
        assert_eq!(l.header.arrays[0].offset, 8192);
        // Torn, whether it parses (another offset) or not: the committed one.
        for (at, byte) in [(new.find("8192").unwrap() + 11, b'3'), (40, b'#')] {
            let mut torn = new_at_zero.clone();
            torn[at] = byte;
            let l = parse_file(&with_undo(&torn, 1)).unwrap();
            assert!(l.recovered);
            assert_eq!(l.header.arrays.len(), 0);
            assert_eq!(l.json, bare.as_bytes());
        }
        // Only its prefix written (the new length over the old JSON): the same.
        let mut short = file_with(bare, 0);
        short[..8].copy_from_slice(&new_at_zero[..8]);
        assert!(parse_file(&with_undo(&short, 1)).unwrap().recovered);
        // An undo record whose generation is not its JSON's, or whose CRC
        // fails, is no record: the header at 0 stands (or fails) alone.
        let mut torn = new_at_zero.clone();
        torn[40] = b'#';
        assert!(format_error(&with_undo(&torn, 5)));
        let mut bad = with_undo(&torn, 1);
        let n = bad.len();
        bad[n - 40] ^= 1;
        assert!(format_error(&bad));
        // An undo record left at the end of the file by a later commit's
        // cut: a header of a later commit at 0 wins over it.
        let later = new.replace(r#""generation": 2"#, r#""generation": 3"#);
        let l = parse_file(&with_undo(&file_with(&later, 0), 1)).unwrap();
        assert!(!l.recovered);
        assert_eq!(l.header.generation(), 3);
        // Its last 4 bytes (the new header's CRC) torn: no record either,
        // and the complete new header stands (the crash simulation found
        // a record winning over it with those bytes overwritten).
        let mut f = with_undo(&new_at_zero, 1);
        let n = f.len();
        f[n - 2] ^= 0x55;
        let l = parse_file(&f).unwrap();
        assert!(!l.recovered);
        assert_eq!(l.header.arrays[0].offset, 8192);
    }
}
