//! Writing a whole archive (the zip crate's writer): every entry stored,
//! zip64 where an entry, an offset or the entry count needs it, central
//! directory at the end. Metadata entries come first, breadth first (what
//! OME-Zarr RFC-9 recommends, so a reader finds them at the start), then the
//! other entries in key order.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::archive::{Archive, Entry};
use crate::error::{Error, Result};
use crate::store::is_dataset_marker;

/// What an object's bytes come from.
pub enum Source<'a> {
    /// Held in memory (written or changed since the archive was read).
    Staged(&'a [u8]),
    /// An entry of the current archive, copied (inflated if it was deflated).
    Entry(&'a Entry),
}

/// Copy and write buffer size.
const PIECE: usize = 1 << 20;

/// A write buffer that seeks inside what it holds: the zip writer goes
/// back to each entry's local header to fill in its CRC and sizes, which
/// through a `BufWriter` cost two flushes and two seeks per entry. Here the
/// header is patched in memory; the file sees one `pwrite` per megabyte.
struct PatchBuffer {
    file: File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// The write position.
    pos: u64,
    /// Length of the file as written so far (flushed or held).
    len: u64,
}

impl PatchBuffer {
    fn new(file: File) -> PatchBuffer {
        PatchBuffer {
            file,
            buf: Vec::with_capacity(PIECE),
            base: 0,
            pos: 0,
            len: 0,
        }
    }

    fn flush_held(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.base)?;
            self.buf.clear();
        }
        self.base = self.pos;
        Ok(())
    }

    fn into_file(mut self) -> io::Result<File> {
        self.flush_held()?;
        Ok(self.file)
    }
}

impl Write for PatchBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let at = (self.pos - self.base) as usize;
        let overlap = self.buf.len().saturating_sub(at).min(data.len());
        self.buf[at..at + overlap].copy_from_slice(&data[..overlap]);
        self.buf.extend_from_slice(&data[overlap..]);
        self.pos += data.len() as u64;
        self.len = self.len.max(self.pos);
        if self.buf.len() >= PIECE && self.pos == self.base + self.buf.len() as u64 {
            self.flush_held()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_held()
    }
}

impl Seek for PatchBuffer {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let held_end = self.base + self.buf.len() as u64;
        if target < self.base || target > held_end {
            self.flush_held()?;
            self.base = target;
        }
        self.pos = target;
        Ok(target)
    }
}

fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => Error::Io(io),
        other => Error::Format(format!("writing the ZIP archive: {other}")),
    }
}

/// The order of entries: metadata first, shallow before deep, then by key.
fn order_key(key: &str) -> (bool, usize, &str) {
    let name = key.rsplit('/').next().unwrap_or(key);
    let metadata = is_dataset_marker(name);
    (
        !metadata,
        if metadata {
            key.matches('/').count()
        } else {
            0
        },
        key,
    )
}

/// Writes an archive of `objects` (`(key, source)`, keys as `/a/b`) into
/// `file` (empty), entry names prefixed with `prefix` (`""` or `"S/"`; with
/// `"S/"` the directory entry `S/` comes first, as netCDF writes it).
/// Reads entries from `from`. Returns the file, flushed but not synced.
pub fn write_archive(
    file: File,
    from: Option<&Archive>,
    prefix: &str,
    mut objects: Vec<(&str, Source<'_>)>,
    comment: &str,
) -> Result<File> {
    objects.sort_unstable_by(|a, b| order_key(a.0).cmp(&order_key(b.0)));
    let mut zip = ZipWriter::new(PatchBuffer::new(file));
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(0o644);
    if !prefix.is_empty() {
        zip.add_directory(prefix, base.unix_permissions(0o755))
            .map_err(zip_error)?;
    }
    for (key, source) in objects {
        let len = match &source {
            Source::Staged(data) => data.len() as u64,
            Source::Entry(e) => e.size,
        };
        let options = base.large_file(len >= u64::from(u32::MAX));
        zip.start_file(format!("{prefix}{}", &key[1..]), options)
            .map_err(zip_error)?;
        match source {
            Source::Staged(data) => zip.write_all(data)?,
            Source::Entry(e) => {
                let archive = from.ok_or(Error::Internal("entry without its archive"))?;
                archive.stream(e, PIECE, &mut |piece| Ok(zip.write_all(piece)?))?;
            }
        }
    }
    if !comment.is_empty() {
        zip.set_comment(comment);
    }
    let writer = zip.finish().map_err(zip_error)?;
    Ok(writer.into_file()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_buffer_writes_what_a_plain_file_would() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let mut patched = PatchBuffer::new(file);
        let mut plain = std::io::Cursor::new(Vec::new());
        let big = vec![7u8; PIECE + 10];
        // Appends, a patch inside the held bytes, one behind a flush, a
        // seek from the end, a write past the end.
        let steps: Vec<(SeekFrom, &[u8])> = vec![
            (SeekFrom::Start(0), b"header--data"),
            (SeekFrom::Start(6), b"HD"),
            (SeekFrom::End(0), &big),
            (SeekFrom::Start(2), b"xy"),
            (SeekFrom::End(-3), b"tail!"),
            (SeekFrom::Current(4), b"gap"),
        ];
        for (to, data) in steps {
            assert_eq!(patched.seek(to).unwrap(), plain.seek(to).unwrap());
            patched.write_all(data).unwrap();
            plain.write_all(data).unwrap();
        }
        let file = patched.into_file().unwrap();
        drop(file);
        let written = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(written, plain.into_inner());
    }

    #[test]
    fn metadata_first_breadth_first() {
        let mut keys = vec![
            "/v/0",
            "/v/.zarray",
            "/.zgroup",
            "/g/h/zarr.json",
            "/a",
            "/g/zarr.json",
            "/zarr.json",
        ];
        keys.sort_by_key(|k| order_key(k));
        assert_eq!(
            keys,
            [
                "/.zgroup",
                "/zarr.json",
                "/g/zarr.json",
                "/v/.zarray",
                "/g/h/zarr.json",
                "/a",
                "/v/0"
            ]
        );
    }
}
