//! Writing a whole archive (the zip crate's writer): every entry stored,
//! zip64 where an entry, an offset or the entry count needs it, central
//! directory at the end. Metadata entries come first, breadth first (what
//! OME-Zarr RFC-9 recommends, so a reader finds them at the start), then the
//! other entries in key order.

use std::fs::File;
use std::io::{BufWriter, Write};

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
    let mut zip = ZipWriter::new(BufWriter::with_capacity(PIECE, file));
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
    writer.into_inner().map_err(|e| Error::Io(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
