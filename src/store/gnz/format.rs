//! The GNZ container format (gnz-format.md Part 1): parsing and writing the
//! header, and finding the newest valid header of a file (the one at offset 0
//! or the commit record at the tail, see DESIGN.md).
//!
//! Everything here is pure: it works on any [`Source`] (a `File`, or a byte
//! slice for tests and fuzzing), validates strictly, never panics, never
//! reads past the end of the source and never allocates more than the source
//! holds (plus a constant factor for the parsed JSON). A file that is not a
//! valid GNZ file is `Error::Format` (`NC_ENOTNC`).

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde_json::{Map, Number, Value};

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
/// Trailer: magic (8), JSON length (8), generation (8), CRC-32 (4), zero (4).
pub const TRAILER_LEN: u64 = 32;

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

fn bad(why: impl Into<String>) -> Error {
    Error::Format(why.into())
}

/// Reads `len` bytes at `offset`, after checking that they lie in the source.
fn read_vec(source: &(impl Source + ?Sized), offset: u64, len: u64, size: u64) -> Result<Vec<u8>> {
    match offset.checked_add(len) {
        Some(end) if end <= size => {}
        _ => return Err(bad("read past the end of the file")),
    }
    let len = usize::try_from(len).map_err(|_| bad("length too large"))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Error::NoMem)?;
    buf.resize(len, 0);
    source.read_exact_at(&mut buf, offset)?;
    Ok(buf)
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
    pub metadata: Map<String, Value>,
    /// Top-level members other than `version`, `metadata` and `arrays`,
    /// kept so that a rewrite loses nothing.
    pub extra: Map<String, Value>,
    /// The arrays, in the file's order.
    pub arrays: Vec<Array>,
}

impl Header {
    /// libzmap's commit counter (`metadata.zmap.generation`), 0 if absent.
    pub fn generation(&self) -> u64 {
        self.metadata
            .get("zmap")
            .and_then(|z| z.get("generation"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Parses the header JSON of a file of `file_len` bytes whose header
    /// takes bytes `0..8 + json.len()`, checking every array against it.
    pub fn parse(json: &[u8], file_len: u64) -> Result<Header> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(bad("header is not a JSON object"));
        };
        let mut header = Header::default();
        let mut arrays = None;
        for (name, value) in top {
            match name.as_str() {
                "version" => match value.as_u64() {
                    Some(VERSION) => {}
                    _ => return Err(bad(format!("unsupported GNZ version {value}"))),
                },
                "metadata" => match value {
                    Value::Object(m) => header.metadata = m,
                    _ => return Err(bad("'metadata' is not an object")),
                },
                "arrays" => match value {
                    Value::Object(a) => arrays = Some(a),
                    _ => return Err(bad("'arrays' is not an object")),
                },
                _ => {
                    header.extra.insert(name, value);
                }
            }
        }
        let header_end = PREFIX_LEN + json.len() as u64;
        for (name, info) in arrays.unwrap_or_default() {
            header.arrays.push(parse_array(name, &info, file_len)?);
        }
        check_overlaps(&header.arrays, header_end)?;
        Ok(header)
    }

    /// The header as JSON: keys sorted at every level and the separators and
    /// escapes of Python's `json.dumps(..., sort_keys=True)`, like the
    /// original writer.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut top = self.extra.clone();
        let mut arrays = Map::new();
        for a in &self.arrays {
            let mut entry = Map::new();
            entry.insert("dtype".into(), Value::String(a.dtype.clone()));
            entry.insert("offset".into(), Value::Number(Number::from(a.offset)));
            entry.insert("order".into(), Value::String(a.order.clone()));
            entry.insert(
                "shape".into(),
                Value::Array(a.shape.iter().map(|&d| Value::Number(d.into())).collect()),
            );
            arrays.insert(a.name.clone(), Value::Object(entry));
        }
        top.insert("arrays".into(), Value::Object(arrays));
        top.insert("metadata".into(), Value::Object(self.metadata.clone()));
        top.insert("version".into(), Value::Number(VERSION.into()));
        let mut out = String::new();
        write_value(&mut out, &Value::Object(top));
        if out.len() as u64 > MAX_HEADER_LEN {
            return Err(Error::Invalid("GNZ header would exceed 1 GiB"));
        }
        Ok(out.into_bytes())
    }
}

fn parse_array(name: String, info: &Value, file_len: u64) -> Result<Array> {
    let what = |field: &str| bad(format!("array {name:?}: bad or missing '{field}'"));
    let Value::Object(info) = info else {
        return Err(bad(format!("array {name:?} is not an object")));
    };
    let offset = info
        .get("offset")
        .and_then(Value::as_u64)
        .ok_or_else(|| what("offset"))?;
    let dtype = info
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| what("dtype"))?
        .to_string();
    let order = match info.get("order") {
        None => "C".to_string(),
        Some(Value::String(o)) if o == "C" || o == "F" => o.clone(),
        Some(_) => return Err(what("order")),
    };
    let Some(Value::Array(dims)) = info.get("shape") else {
        return Err(what("shape"));
    };
    if dims.len() > MAX_NDIM {
        return Err(what("shape"));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        match d.as_u64() {
            Some(d) if d <= MAX_FILE_OFFSET => shape.push(d),
            _ => return Err(what("shape")),
        }
    }
    let itemsize = dtype_itemsize(&dtype).map_err(|e| bad(format!("array {name:?}: {e}")))?;
    // An empty dimension makes the array empty, whatever the others say.
    let nbytes = if shape.contains(&0) {
        0
    } else {
        shape
            .iter()
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
    Ok(Array {
        name,
        offset,
        shape,
        dtype,
        order,
        nbytes,
    })
}

/// Non-empty arrays may not overlap one another nor the header.
fn check_overlaps(arrays: &[Array], header_end: u64) -> Result<()> {
    let mut extents: Vec<(u64, u64, &str)> = arrays
        .iter()
        .filter(|a| a.nbytes > 0)
        .map(|a| (a.offset, a.offset + a.nbytes, a.name.as_str()))
        .collect();
    extents.sort_unstable();
    let mut prev_end = header_end;
    let mut prev_name = "the header";
    for (start, end, name) in extents {
        if start < prev_end {
            return Err(bad(format!("array {name:?} overlaps {prev_name}")));
        }
        prev_end = end;
        prev_name = name;
    }
    Ok(())
}

// ---- JSON output as Python writes it ---------------------------------------------

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, name);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string with Python's `ensure_ascii` escapes.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

// ---- whole files -------------------------------------------------------------------

/// The 8 bytes in front of a header.
pub fn prefix(json_len: usize) -> Result<[u8; 8]> {
    let len = u32::try_from(json_len).map_err(|_| Error::Invalid("GNZ header too large"))?;
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(MAGIC);
    p[4..].copy_from_slice(&len.to_le_bytes());
    Ok(p)
}

/// The header at offset 0: its JSON bytes and what they say.
fn read_primary(source: &(impl Source + ?Sized), size: u64) -> Result<(Vec<u8>, Header)> {
    if size < PREFIX_LEN {
        return Err(bad("file too short for a GNZ header"));
    }
    let mut p = [0u8; 8];
    source.read_exact_at(&mut p, 0)?;
    if &p[..4] != MAGIC {
        return Err(bad("not a GNZ file (bad magic)"));
    }
    let len = u64::from(u32::from_le_bytes([p[4], p[5], p[6], p[7]]));
    if len > MAX_HEADER_LEN {
        return Err(bad("header longer than 1 GiB"));
    }
    if PREFIX_LEN + len > size {
        return Err(bad("header length past the end of the file"));
    }
    let json = read_vec(source, PREFIX_LEN, len, size)?;
    let header = Header::parse(&json, size)?;
    Ok((json, header))
}

/// The commit record at the tail, if there is a valid one: its generation
/// and header JSON.
fn read_record(source: &(impl Source + ?Sized), size: u64) -> Result<Option<(u64, Vec<u8>)>> {
    if size < TRAILER_LEN {
        return Ok(None);
    }
    let mut t = [0u8; TRAILER_LEN as usize];
    source.read_exact_at(&mut t, size - TRAILER_LEN)?;
    if &t[..8] != RECORD_MAGIC || t[28..] != [0; 4] {
        return Ok(None);
    }
    let word = |i: usize| u64::from_le_bytes(t[i..i + 8].try_into().unwrap_or([0; 8]));
    let (len, generation) = (word(8), word(16));
    let crc = u32::from_le_bytes([t[24], t[25], t[26], t[27]]);
    if len > MAX_HEADER_LEN || len > size - TRAILER_LEN {
        return Ok(None);
    }
    let json = read_vec(source, size - TRAILER_LEN - len, len, size)?;
    let mut sum = Crc32::new();
    sum.update(&json);
    sum.update(&t[..24]);
    if sum.finish() != crc {
        return Ok(None);
    }
    Ok(Some((generation, json)))
}

/// The commit record for `json` (see DESIGN.md): the JSON, then the trailer.
pub fn record(json: &[u8], generation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + TRAILER_LEN as usize);
    out.extend_from_slice(json);
    let mut t = Vec::with_capacity(TRAILER_LEN as usize);
    t.extend_from_slice(RECORD_MAGIC);
    t.extend_from_slice(&(json.len() as u64).to_le_bytes());
    t.extend_from_slice(&generation.to_le_bytes());
    let mut sum = Crc32::new();
    sum.update(json);
    sum.update(&t);
    t.extend_from_slice(&sum.finish().to_le_bytes());
    t.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&t);
    out
}

/// The header a file stands for.
#[derive(Debug)]
pub struct Loaded {
    pub header: Header,
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
/// does not match (a commit interrupted while rewriting the header).
pub fn load(source: &(impl Source + ?Sized)) -> Result<Loaded> {
    let size = source.size()?;
    let primary = read_primary(source, size);
    let record = read_record(source, size)?;
    if let Some((generation, json)) = record {
        let stale = match &primary {
            Ok((primary_json, header)) => {
                generation > header.generation()
                    || (generation == header.generation() && *primary_json != json)
            }
            Err(_) => true,
        };
        if stale {
            if let Ok(header) = Header::parse(&json, size) {
                if header.generation() == generation {
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
    let (json, header) = primary?;
    Ok(Loaded {
        header,
        json,
        recovered: false,
        size,
    })
}

/// Parses a whole file held in memory (the fuzzing entry point).
pub fn parse_file(bytes: &[u8]) -> Result<Loaded> {
    load(bytes)
}

// ---- CRC-32 (IEEE 802.3, as zlib) -------------------------------------------

/// A running CRC-32.
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(!0)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    pub fn finish(&self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
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
        assert_eq!(loaded.header.metadata["user"], 1);
        assert_eq!(loaded.header.generation(), 0);
    }

    #[test]
    fn serialization_is_python_style() {
        let mut h = Header::default();
        h.metadata.insert("z".into(), Value::from("é\n\u{1F600}"));
        h.metadata
            .insert("a".into(), serde_json::json!({"y": [1, 2], "b": null}));
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
}
