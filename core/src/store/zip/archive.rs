//! Reading an archive: the central directory (through rc-zip, driven by
//! positioned reads of the held file), the checks that make it a dataset,
//! the layout, and entry data read in place.
//!
//! Opening reads the end-of-central-directory search window (at most 65 KiB)
//! and the central directory, nothing else. An entry's local header (30
//! bytes plus its name and extra field) is read on the entry's first read,
//! to find where its data starts; a stored entry is then copied out of a
//! read-only mapping of the file at that offset, whatever the archive's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

use rc_zip::fsm::{ArchiveFsm, FsmResult};
use rc_zip::parse::{EntryKind, Method as ZipMethod};

use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::is_dataset_marker;

/// Signature of a local file header.
const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
/// Fixed part of a local file header.
const LOCAL_HEADER_LEN: u64 = 30;
/// Flag bit 0: the entry is encrypted.
const FLAG_ENCRYPTED: u16 = 1;

#[cfg(test)]
thread_local! {
    /// Bytes this thread read from archives (tests prove what open reads).
    pub(crate) static BYTES_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Fills `buf` from `offset` of `file`; a short file is `Format` (the
/// archive says there is data where the file has none).
pub(crate) fn pread_exact(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => {
            #[cfg(test)]
            BYTES_READ.with(|n| n.set(n.get() + buf.len() as u64));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::Format(
            "ZIP archive shorter than its directory says".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// How entries are compressed: what zmap reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Stored,
    Deflated,
}

/// One object's entry in the archive.
#[derive(Debug)]
pub struct Entry {
    /// The entry's name in the archive (layout prefix included).
    pub name: String,
    pub header_offset: u64,
    pub compressed_size: u64,
    pub size: u64,
    pub method: Method,
    pub crc32: u32,
    /// Where the data starts, known after the first read of the entry.
    data_start: OnceLock<u64>,
}

/// Where a dataset's keys are in the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// zarr's ZipStore, OME-Zarr RFC-9: key `/a/b` is entry `a/b`.
    Root,
    /// netCDF's NCZM_ZIP: key `/a/b` is entry `S/a/b`, S a top-level directory.
    Dir(String),
}

impl Layout {
    /// What entry names start with: `""` or `"S/"`.
    pub fn prefix(&self) -> String {
        match self {
            Layout::Root => String::new(),
            Layout::Dir(s) => format!("{s}/"),
        }
    }
}

/// An open archive: the held file and its object entries.
pub struct Archive {
    pub file: File,
    pub file_len: u64,
    /// The file mapped read-only (None for an empty file): entry data and
    /// local headers are copied out of it, without a system call.
    map: Option<memmap2::Mmap>,
    /// Object entries (directory entries are not objects), keyed by the
    /// entries' position here.
    pub entries: Vec<Entry>,
    /// Entries whose name a later entry took again (not read).
    pub superseded: usize,
    pub layout: Layout,
    pub comment: String,
}

/// The central directory of `file` (`len` bytes long), read by rc-zip's
/// state machine with positioned reads.
fn read_directory(file: &File, len: u64) -> Result<rc_zip::parse::Archive> {
    let mut fsm = ArchiveFsm::new(len);
    loop {
        if let Some(offset) = fsm.wants_read() {
            let space = fsm.space();
            let n = match file.read_at(space, offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            #[cfg(test)]
            BYTES_READ.with(|c| c.set(c.get() + n as u64));
            fsm.fill(n);
            if n == 0 {
                // rc-zip asked past the end: it reports the archive broken.
                match fsm.process() {
                    Ok(FsmResult::Done(archive)) => return Ok(archive),
                    Ok(FsmResult::Continue(_)) => {
                        return Err(Error::Format("truncated ZIP archive".into()))
                    }
                    Err(e) => return Err(Error::Format(format!("not a ZIP archive: {e}"))),
                }
            }
        }
        fsm = match fsm.process() {
            Ok(FsmResult::Done(archive)) => return Ok(archive),
            Ok(FsmResult::Continue(fsm)) => fsm,
            Err(e) => return Err(Error::Format(format!("not a ZIP archive: {e}"))),
        };
    }
}

/// Why an archive is not a dataset, as an error.
fn not_a_dataset(why: String) -> Error {
    Error::Format(format!("ZIP archive is not a dataset: {why}"))
}

/// Checks an entry name as a path inside the dataset: relative, `/`-separated,
/// no `.`/`..`/empty segment, no backslash or control character, UTF-8,
/// within the key limits. A trailing `/` (directory entry) is allowed.
fn check_name(name: &str) -> Result<()> {
    if name.starts_with('/') {
        return Err(not_a_dataset(format!("absolute entry name {name:?}")));
    }
    if name.contains('\\') {
        return Err(not_a_dataset(format!("backslash in entry name {name:?}")));
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    if body.is_empty() || Key::parse(body.as_bytes()).is_err() || body.contains("//") {
        return Err(not_a_dataset(format!(
            "entry name {name:?} is not a valid key"
        )));
    }
    Ok(())
}

/// The layout of a non-empty archive from its entry names, in directory
/// order: netCDF's when entry 0 is a directory entry `S/` at the top and
/// every entry lies in S (netCDF writes `S/` first, so does `zip -r S`);
/// keys at the root otherwise. libzmap writes no directory entry in root
/// layout, so its root-layout archives are never taken for netCDF's, even
/// while every object lies below one top-level name.
pub fn detect_layout(names: &[&str]) -> Layout {
    let Some(first) = names.first() else {
        return Layout::Root;
    };
    let Some(top) = first.strip_suffix('/') else {
        return Layout::Root;
    };
    if top.is_empty() || top.contains('/') {
        return Layout::Root;
    }
    if names.iter().all(|n| n.starts_with(first)) {
        Layout::Dir(top.to_string())
    } else {
        Layout::Root
    }
}

impl Archive {
    /// An archive without entries over `file` (a file of 0 bytes, claimed
    /// by `create`).
    pub fn empty(file: File, layout: Layout) -> Result<Archive> {
        Ok(Archive {
            file_len: file.metadata()?.len(),
            map: None,
            file,
            entries: Vec::new(),
            superseded: 0,
            layout,
            comment: String::new(),
        })
    }

    /// Reads the directory of `file` and checks it is a dataset. `fresh` is
    /// the layout for an archive without entries; `known` the layout of an
    /// archive this process has just written (no detection then).
    pub fn load(file: File, fresh: &Layout, known: bool) -> Result<Archive> {
        let file_len = file.metadata()?.len();
        let directory = read_directory(&file, file_len)?;
        let comment = directory.comment().to_string();
        let all: Vec<&rc_zip::parse::Entry> = directory.entries().collect();
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        let layout = if names.is_empty() || known {
            fresh.clone()
        } else {
            detect_layout(&names)
        };
        let prefix = layout.prefix();
        // Entries by name: a name met again is superseded by the later entry
        // (Python's zipfile, which zarr's ZipStore writes with, appends a
        // key written twice and reads the last one).
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(all.len());
        let mut entries: Vec<Entry> = Vec::with_capacity(all.len());
        let mut superseded = 0;
        for e in all {
            check_name(&e.name)?;
            if e.flags & FLAG_ENCRYPTED != 0 {
                return Err(not_a_dataset(format!("encrypted entry {:?}", e.name)));
            }
            if e.name.ends_with('/') {
                // A directory entry: names a level, holds nothing.
                if e.uncompressed_size != 0 {
                    return Err(not_a_dataset(format!(
                        "directory entry {:?} with content",
                        e.name
                    )));
                }
                continue;
            }
            match e.kind() {
                EntryKind::File => {}
                _ => {
                    return Err(not_a_dataset(format!(
                        "entry {:?} is a link or directory",
                        e.name
                    )))
                }
            }
            let method = match e.method {
                ZipMethod::Store => Method::Stored,
                ZipMethod::Deflate => Method::Deflated,
                other => {
                    return Err(not_a_dataset(format!(
                        "entry {:?} is compressed with {other:?} (zmap reads stored and deflated entries)",
                        e.name
                    )))
                }
            };
            if method == Method::Stored && e.compressed_size != e.uncompressed_size {
                return Err(not_a_dataset(format!(
                    "stored entry {:?} with two sizes",
                    e.name
                )));
            }
            if e.header_offset.saturating_add(e.compressed_size) > file_len {
                return Err(not_a_dataset(format!(
                    "entry {:?} lies past the end of the file",
                    e.name
                )));
            }
            let entry = Entry {
                name: e.name.clone(),
                header_offset: e.header_offset,
                compressed_size: e.compressed_size,
                size: e.uncompressed_size,
                method,
                crc32: e.crc32,
                data_start: OnceLock::new(),
            };
            match by_name.get(e.name.as_str()) {
                Some(&earlier) => {
                    entries[earlier] = entry;
                    superseded += 1;
                }
                None => {
                    by_name.insert(e.name.as_str(), entries.len());
                    entries.push(entry);
                }
            }
        }
        // Every object must be inside the layout's directory (true by
        // detection) and have a key of its own.
        for e in &entries {
            if e.name.len() <= prefix.len() || !e.name.starts_with(&prefix) {
                return Err(not_a_dataset(format!(
                    "entry {:?} lies outside the dataset directory",
                    e.name
                )));
            }
        }
        let map = map_file(&file, file_len)?;
        Ok(Archive {
            file,
            file_len,
            map,
            entries,
            superseded,
            layout,
            comment,
        })
    }

    /// The key of entry `e` (its name without the layout prefix).
    pub fn key_of(&self, e: &Entry) -> String {
        let prefix_len = self.layout.prefix().len();
        format!("/{}", &e.name[prefix_len..])
    }

    /// Where entry `e`'s data starts (its local header read once).
    fn data_start(&self, e: &Entry) -> Result<u64> {
        if let Some(&start) = e.data_start.get() {
            return Ok(start);
        }
        let mut header = [0u8; LOCAL_HEADER_LEN as usize];
        self.fill(&mut header, e.header_offset)?;
        let word = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]) as u64;
        let signature = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if signature != LOCAL_HEADER_SIGNATURE {
            return Err(Error::Format(format!(
                "ZIP entry {:?}: no local header at {}",
                e.name, e.header_offset
            )));
        }
        let start = e.header_offset + LOCAL_HEADER_LEN + word(26) + word(28);
        if start.saturating_add(e.compressed_size) > self.file_len {
            return Err(Error::Format(format!(
                "ZIP entry {:?} lies past the end of the file",
                e.name
            )));
        }
        let _ = e.data_start.set(start);
        Ok(start)
    }

    /// Fills `buf` from `offset` of the archive file.
    fn fill(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let Some(map) = &self.map else {
            return pread_exact(&self.file, buf, offset);
        };
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= map.len() as u64 => {
                buf.copy_from_slice(&map[offset as usize..end as usize]);
                #[cfg(test)]
                BYTES_READ.with(|n| n.set(n.get() + buf.len() as u64));
                Ok(())
            }
            _ => Err(Error::Format(
                "ZIP archive shorter than its directory says".into(),
            )),
        }
    }

    /// A reader of entry `e`'s bytes as stored (compressed or not).
    fn raw(&self, e: &Entry) -> Result<RawReader<'_>> {
        let start = self.data_start(e)?;
        Ok(RawReader {
            file: &self.file,
            at: start,
            end: start + e.compressed_size,
        })
    }

    /// Fills `buf` from `start` of entry `e` (the range is inside the entry).
    pub fn read(&self, e: &Entry, start: u64, buf: &mut [u8]) -> Result<()> {
        match e.method {
            Method::Stored => {
                let at = self.data_start(e)? + start;
                self.fill(buf, at)
            }
            Method::Deflated => {
                let mut inflate = flate2::read::DeflateDecoder::new(self.raw(e)?);
                let skipped = io::copy(&mut (&mut inflate).take(start), &mut io::sink())
                    .map_err(|err| inflate_error(e, err))?;
                if skipped != start {
                    return Err(inflate_error(e, io::ErrorKind::UnexpectedEof.into()));
                }
                inflate.read_exact(buf).map_err(|err| inflate_error(e, err))
            }
        }
    }

    /// Entry `e`'s whole content.
    pub fn read_all(&self, e: &Entry) -> Result<Vec<u8>> {
        let len = usize::try_from(e.size).map_err(|_| Error::NoMem)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| Error::NoMem)?;
        data.resize(len, 0);
        if len > 0 {
            self.read(e, 0, &mut data)?;
        }
        Ok(data)
    }

    /// Streams entry `e`'s content to `each` in pieces of at most `piece`
    /// bytes (copying into a new archive, checking CRCs).
    pub fn stream(
        &self,
        e: &Entry,
        piece: usize,
        each: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = vec![0u8; piece.min(e.size as usize).max(1)];
        let mut reader: Box<dyn Read + '_> = match e.method {
            Method::Stored => Box::new(self.raw(e)?),
            Method::Deflated => Box::new(flate2::read::DeflateDecoder::new(self.raw(e)?)),
        };
        let mut left = e.size;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            reader
                .read_exact(&mut buf[..n])
                .map_err(|err| inflate_error(e, err))?;
            each(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads every entry and checks its size and CRC-32 against the
    /// central directory.
    pub fn verify(&self) -> Result<()> {
        for e in &self.entries {
            let mut crc = crc32fast::Hasher::new();
            self.stream(e, 1 << 20, &mut |piece| {
                crc.update(piece);
                Ok(())
            })?;
            if crc.finalize() != e.crc32 {
                return Err(Error::Format(format!(
                    "ZIP entry {:?}: CRC mismatch",
                    e.name
                )));
            }
        }
        Ok(())
    }

    /// True if a dataset marker lies at the top of the dataset.
    pub fn is_marked(&self) -> bool {
        let prefix = self.layout.prefix();
        self.entries.iter().any(|e| {
            let rest = &e.name[prefix.len()..];
            !rest.contains('/') && is_dataset_marker(rest)
        })
    }
}

/// Maps `file` read-only for reads of entries.
fn map_file(file: &File, len: u64) -> Result<Option<memmap2::Mmap>> {
    if len == 0 || usize::try_from(len).is_err() {
        return Ok(None);
    }
    // SAFETY: the mapping is only read. libzmap never writes an archive in
    // place (a flush writes a new file and renames it over the name), so
    // the bytes under the mapping do not change while it lives. A process
    // that ignores that and truncates the file could make a read fault
    // (SIGBUS), as with GNZ's mapping and any memory map.
    let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(file)? };
    Ok(Some(map))
}

fn inflate_error(e: &Entry, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(_) => Error::Io(err),
        None => Error::Format(format!("ZIP entry {:?}: bad deflate data: {err}", e.name)),
    }
}

/// The raw bytes of one entry, read with `pread` (no shared file offset).
struct RawReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for RawReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.at).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.at)?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        #[cfg(test)]
        BYTES_READ.with(|c| c.set(c.get() + got as u64));
        self.at += got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let dir = |s: &str| Layout::Dir(s.to_string());
        // netCDF: the dataset directory first.
        assert_eq!(
            detect_layout(&["data/", "data/.zgroup", "data/v/0"]),
            dir("data")
        );
        // Without the directory entry first: root (keys /ds/...), even
        // with a marker inside (a root-layout dataset being written).
        assert_eq!(detect_layout(&["ds/.zgroup", "ds/v/.zarray"]), Layout::Root);
        assert_eq!(detect_layout(&["ds/v/0", "ds/"]), Layout::Root);
        assert_eq!(detect_layout(&["a/b/", "a/b/c"]), Layout::Root);
        // zarr's ZipStore: metadata at the root.
        assert_eq!(
            detect_layout(&[".zgroup", "v/.zarray", "v/0"]),
            Layout::Root
        );
        assert_eq!(detect_layout(&["zarr.json", "a/zarr.json"]), Layout::Root);
        // One top-level name without marker nor directory entry: root.
        assert_eq!(detect_layout(&["a/b/c"]), Layout::Root);
        // Something outside the directory: root.
        assert_eq!(detect_layout(&["d/", "d/.zgroup", "x"]), Layout::Root);
        assert_eq!(detect_layout(&[]), Layout::Root);
    }

    #[test]
    fn entry_names() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\..\\b",
            "..",
            "",
            "/",
            "a/\u{1}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "a/b", "a/", ".zgroup", "..x/y..", "c/0/0"] {
            check_name(good).unwrap();
        }
    }
}
