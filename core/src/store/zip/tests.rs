//! ZIP-specific behaviour: layouts, hostile archives, reads in place, the
//! crash-safe rewrite, identity. Archives are built byte by byte here (any
//! name, duplicates, deflate, zip64, holes), so no writer's own checks
//! stand between a test and what it wants the reader to meet.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::archive::BYTES_READ;
use crate::codes::*;
use crate::error::Error;
use crate::key::Key;
use crate::map::{Map, NC_NOCLOBBER, NC_WRITE};
use crate::store::Impl;
use crate::testing::{code, key, read_all};

fn loc(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// What an entry holds.
enum Data {
    Bytes(Vec<u8>),
    /// Stored zeros left as a hole in the file (sparse).
    Hole(u64, u32),
}

struct Spec {
    name: Vec<u8>,
    data: Data,
    deflate: bool,
    /// Unix mode in the external attributes (0: none).
    mode: u32,
    flags: u16,
}

fn entry(name: &str, data: &[u8]) -> Spec {
    Spec {
        name: name.as_bytes().to_vec(),
        data: Data::Bytes(data.to_vec()),
        deflate: false,
        mode: 0,
        flags: 0,
    }
}

/// Writes a zip64 archive of `specs` at `path`: local headers, data
/// (deflated when asked, holes seeked over), central directory, zip64 end
/// records, end record.
fn build(path: &Path, specs: &[Spec]) {
    let mut f = fs::File::create(path).unwrap();
    let mut central = Vec::new();
    let mut at = 0u64;
    for s in specs {
        let (raw, size, crc) = match &s.data {
            Data::Bytes(b) => {
                let crc = crc32fast::hash(b);
                let raw = if s.deflate {
                    let mut enc = flate2::write::DeflateEncoder::new(
                        Vec::new(),
                        flate2::Compression::default(),
                    );
                    enc.write_all(b).unwrap();
                    enc.finish().unwrap()
                } else {
                    b.clone()
                };
                (Some(raw), b.len() as u64, crc)
            }
            Data::Hole(len, crc) => (None, *len, *crc),
        };
        let csize = raw.as_ref().map_or(size, |r| r.len() as u64);
        let method: u16 = if s.deflate { 8 } else { 0 };
        let mut extra = Vec::new();
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&csize.to_le_bytes());
        let mut local = Vec::new();
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&45u16.to_le_bytes());
        local.extend_from_slice(&s.flags.to_le_bytes());
        local.extend_from_slice(&method.to_le_bytes());
        local.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&u32::MAX.to_le_bytes());
        local.extend_from_slice(&u32::MAX.to_le_bytes());
        local.extend_from_slice(&(s.name.len() as u16).to_le_bytes());
        local.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        local.extend_from_slice(&s.name);
        local.extend_from_slice(&extra);
        f.write_all(&local).unwrap();
        match &raw {
            Some(r) => f.write_all(r).unwrap(),
            None => {
                use std::io::Seek;
                f.seek(std::io::SeekFrom::Current(csize as i64)).unwrap();
            }
        }
        let mut cextra = extra.clone();
        cextra[2..4].copy_from_slice(&24u16.to_le_bytes());
        cextra.extend_from_slice(&at.to_le_bytes());
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&(3u16 << 8 | 45).to_le_bytes()); // made by unix
        central.extend_from_slice(&45u16.to_le_bytes());
        central.extend_from_slice(&s.flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&u32::MAX.to_le_bytes());
        central.extend_from_slice(&u32::MAX.to_le_bytes());
        central.extend_from_slice(&(s.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(cextra.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
        central.extend_from_slice(&(s.mode << 16).to_le_bytes());
        central.extend_from_slice(&u32::MAX.to_le_bytes()); // offset: in zip64 extra
        central.extend_from_slice(&s.name);
        central.extend_from_slice(&cextra);
        at += local.len() as u64 + csize;
    }
    let cd_start = at;
    f.write_all(&central).unwrap();
    let eocd64_at = cd_start + central.len() as u64;
    let n = specs.len() as u64;
    let mut end = Vec::new();
    end.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
    end.extend_from_slice(&44u64.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&n.to_le_bytes());
    end.extend_from_slice(&n.to_le_bytes());
    end.extend_from_slice(&(central.len() as u64).to_le_bytes());
    end.extend_from_slice(&cd_start.to_le_bytes());
    end.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&eocd64_at.to_le_bytes());
    end.extend_from_slice(&1u32.to_le_bytes());
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0, 0, 0, 0]);
    end.extend_from_slice(&u16::MAX.to_le_bytes());
    end.extend_from_slice(&u16::MAX.to_le_bytes());
    end.extend_from_slice(&u32::MAX.to_le_bytes());
    end.extend_from_slice(&u32::MAX.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    f.write_all(&end).unwrap();
    f.sync_all().unwrap();
}

/// The entry names of the archive at `path`, in directory order (read
/// with the zip crate: a second reader).
fn names(path: &Path) -> Vec<String> {
    let archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    archive.file_names().map(str::to_string).collect()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.zip");
    (dir, path)
}

#[test]
fn reads_netcdf_layout_and_root_layout() {
    let (_dir, path) = tmp();
    build(
        &path,
        &[
            entry("data/", b""),
            entry("data/.zgroup", b"{}"),
            entry("data/v/", b""),
            entry("data/v/0", b"chunk"),
        ],
    );
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(map.search(&Key::root()).unwrap(), [".zgroup", "v"]);
    assert_eq!(read_all(&map, "/v/0"), b"chunk");
    map.close(false).unwrap();
    // A renamed netCDF archive: the directory is what entry 0 names.
    let renamed = path.with_file_name("other.zip");
    fs::rename(&path, &renamed).unwrap();
    let map = Map::open(Impl::Zip, &loc(&renamed), 0, 0).unwrap();
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(false).unwrap();
    // zarr's ZipStore: keys at the root.
    build(
        &path,
        &[
            entry(".zgroup", b"{}"),
            entry("v/.zarray", b"[]"),
            entry("v/0", b"x"),
        ],
    );
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(map.search(&Key::root()).unwrap(), [".zgroup", "v"]);
    assert_eq!(map.search(&key("/v")).unwrap(), [".zarray", "0"]);
    map.close(false).unwrap();
}

#[test]
fn write_rule_netcdf_url_or_root() {
    let (dir, path) = tmp();
    let netcdf = format!("file://{}#mode=nczarr,zip", loc(&path));
    let map = Map::create(Impl::Zip, &netcdf, 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.write(&key("/v/0"), 0, b"abc").unwrap();
    map.close(false).unwrap();
    assert_eq!(names(&path), ["data/", "data/.zgroup", "data/v/0"]);
    // Reopened under a plain path, written again: the layout stays.
    let map = Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0).unwrap();
    map.write(&key("/v/1"), 0, b"d").unwrap();
    map.close(false).unwrap();
    assert_eq!(
        names(&path),
        ["data/", "data/.zgroup", "data/v/0", "data/v/1"]
    );
    // A plain path (and an .ozx) creates keys at the root, metadata first.
    for name in ["plain.zip", "image.ozx"] {
        let p = dir.path().join(name);
        let map = Map::create(Impl::Zip, &loc(&p), 0, 0).unwrap();
        map.write(&key("/a/0"), 0, b"1").unwrap();
        map.write(&key("/a/zarr.json"), 0, b"{}").unwrap();
        map.write(&key("/zarr.json"), 0, b"{}").unwrap();
        map.close(false).unwrap();
        assert_eq!(names(&p), ["zarr.json", "a/zarr.json", "a/0"]);
    }
}

#[test]
fn root_layout_below_one_group_stays_root() {
    // A copy in progress: only /g/... written so far, /g/.zgroup included.
    let (_dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/g/v/0"), 0, b"1").unwrap();
    map.flush().unwrap();
    map.write(&key("/g/.zgroup"), 0, b"{}").unwrap();
    map.flush().unwrap();
    assert_eq!(map.search(&Key::root()).unwrap(), ["g"]);
    map.close(false).unwrap();
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(map.search(&Key::root()).unwrap(), ["g"]);
    assert_eq!(read_all(&map, "/g/.zgroup"), b"{}");
    map.close(false).unwrap();
}

#[test]
fn deflated_entries_are_read() {
    let (_dir, path) = tmp();
    let data: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut deflated = entry("v/0", &data);
    deflated.deflate = true;
    build(&path, &[entry(".zgroup", b"{}"), deflated]);
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(map.len(&key("/v/0")).unwrap(), data.len() as u64);
    let mut part = [0u8; 10];
    map.read(&key("/v/0"), 1234, &mut part).unwrap();
    assert_eq!(part, data[1234..1244]);
    assert_eq!(read_all(&map, "/v/0"), data);
    map.verify().unwrap();
    map.close(false).unwrap();
    // Rewritten, it is stored.
    let map = Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0).unwrap();
    map.write(&key("/v/1"), 0, b"x").unwrap();
    map.close(false).unwrap();
    let mut archive = zip::ZipArchive::new(fs::File::open(&path).unwrap()).unwrap();
    let method = archive.by_name("v/0").unwrap().compression();
    assert_eq!(method, zip::CompressionMethod::Stored);
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&map, "/v/0"), data);
    map.verify().unwrap();
    map.close(false).unwrap();
}

#[test]
fn hostile_archives_are_not_datasets() {
    let (_dir, path) = tmp();
    let mut cases: Vec<Vec<Spec>> = [
        "../evil",
        "a/../../evil",
        "/etc/passwd",
        "a\\..\\evil",
        "a//b",
        "./a",
        "a/\u{1}",
    ]
    .iter()
    .map(|bad| vec![entry(".zgroup", b"{}"), entry(bad, b"x")])
    .collect();
    // An object that is also a level, a link, encryption.
    cases.push(vec![
        entry(".zgroup", b"{}"),
        entry("a", b"1"),
        entry("a/b", b"2"),
    ]);
    let mut link = entry("l", b"/etc/passwd");
    link.mode = 0o120777;
    cases.push(vec![entry(".zgroup", b"{}"), link]);
    let mut secret = entry("s", b"x");
    secret.flags = 1;
    cases.push(vec![entry(".zgroup", b"{}"), secret]);
    for (i, specs) in cases.iter().enumerate() {
        build(&path, specs);
        let before = fs::read(&path).unwrap();
        for mode in [0, NC_WRITE] {
            let err = Map::open(Impl::Zip, &loc(&path), mode, 0).err();
            assert!(
                matches!(err, Some(Error::Format(_))),
                "case {i} mode {mode}: {err:?}"
            );
            assert_eq!(code(Map::open(Impl::Zip, &loc(&path), mode, 0)), NC_ENOTNC);
        }
        // Create never claims it.
        for mode in [0, NC_NOCLOBBER] {
            assert_eq!(
                code(Map::create(Impl::Zip, &loc(&path), mode, 0)),
                NC_EEXIST
            );
        }
        assert_eq!(fs::read(&path).unwrap(), before, "case {i} changed");
    }
    assert_eq!(
        fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1,
        "something was extracted or left behind"
    );
}

#[test]
fn a_name_written_again_is_superseded_by_the_later_entry() {
    // What zarr's ZipStore leaves when a key is written twice.
    let (_dir, path) = tmp();
    build(
        &path,
        &[
            entry(".zgroup", b"{}"),
            entry("v/.zattrs", b"old"),
            entry("v/0", b"x"),
            entry("v/.zattrs", b"new"),
        ],
    );
    let map = Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0).unwrap();
    assert_eq!(read_all(&map, "/v/.zattrs"), b"new");
    assert_eq!(map.search(&key("/v")).unwrap(), [".zattrs", "0"]);
    map.verify().unwrap();
    // Rewritten, the archive holds each name once.
    map.write(&key("/v/1"), 0, b"y").unwrap();
    map.close(false).unwrap();
    assert_eq!(names(&path), [".zgroup", "v/.zattrs", "v/0", "v/1"]);
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&map, "/v/.zattrs"), b"new");
    map.close(false).unwrap();
}

#[test]
fn create_claims_only_datasets() {
    let (dir, path) = tmp();
    // Not a ZIP: refused, untouched.
    fs::write(&path, b"my thesis").unwrap();
    assert_eq!(code(Map::create(Impl::Zip, &loc(&path), 0, 0)), NC_EEXIST);
    assert_eq!(fs::read(&path).unwrap(), b"my thesis");
    assert_eq!(code(Map::open(Impl::Zip, &loc(&path), 0, 0)), NC_ENOTNC);
    // A ZIP of something else (no dataset marker): refused.
    build(&path, &[entry("photo.jpg", b"jpeg")]);
    let before = fs::read(&path).unwrap();
    assert_eq!(code(Map::create(Impl::Zip, &loc(&path), 0, 0)), NC_EEXIST);
    assert_eq!(fs::read(&path).unwrap(), before);
    // ...but kept and added to with NOCLOBBER.
    let map = Map::create(Impl::Zip, &loc(&path), NC_NOCLOBBER, 0).unwrap();
    assert_eq!(read_all(&map, "/photo.jpg"), b"jpeg");
    map.close(false).unwrap();
    // An empty file: claimed.
    fs::write(&path, b"").unwrap();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.close(false).unwrap();
    assert_eq!(names(&path), [".zgroup"]);
    // A directory or a link in the way: refused.
    let sub = dir.path().join("sub.zip");
    fs::create_dir(&sub).unwrap();
    assert_eq!(code(Map::create(Impl::Zip, &loc(&sub), 0, 0)), NC_EEXIST);
    let link = dir.path().join("link.zip");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(code(Map::create(Impl::Zip, &loc(&link), 0, 0)), NC_EEXIST);
    // Read-only through the link works; writable does not (a rewrite
    // would replace the link, not its target).
    let map = Map::open(Impl::Zip, &loc(&link), 0, 0).unwrap();
    assert_eq!(read_all(&map, "/.zgroup"), b"{}");
    map.close(false).unwrap();
    assert_eq!(
        code(Map::open(Impl::Zip, &loc(&link), NC_WRITE, 0)),
        NC_ENOTNC
    );
}

#[test]
fn one_writer_many_readers_and_snapshots() {
    let (_dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.write(&key("/v/0"), 0, b"old").unwrap();
    map.flush().unwrap();
    let on_disk = fs::read(&path).unwrap();
    // A second writer is refused; readers are not.
    assert_eq!(
        code(Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0)),
        NC_EACCESS
    );
    assert_eq!(code(Map::create(Impl::Zip, &loc(&path), 0, 0)), NC_EACCESS);
    let reader = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    // Staged changes do not touch the archive until flush.
    map.write(&key("/v/0"), 0, b"new").unwrap();
    map.remove(&key("/.zgroup")).unwrap();
    assert_eq!(fs::read(&path).unwrap(), on_disk);
    map.flush().unwrap();
    // The reader keeps its snapshot; a new reader sees the new archive.
    assert_eq!(read_all(&reader, "/v/0"), b"old");
    assert_eq!(read_all(&reader, "/.zgroup"), b"{}");
    let fresh = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&fresh, "/v/0"), b"new");
    assert_eq!(code(fresh.exists(&key("/.zgroup"))), NC_EEMPTY);
    for m in [reader, fresh, map] {
        m.close(false).unwrap();
    }
    // No temporary file is left, and the mode is kept.
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn a_rewrite_stopped_before_the_swap_leaves_the_old_archive() {
    let (_dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.write(&key("/v/0"), 0, b"old").unwrap();
    map.flush().unwrap();
    let before = fs::read(&path).unwrap();
    map.write(&key("/v/0"), 0, b"new").unwrap();
    map.write(&key("/v/1"), 0, b"more").unwrap();
    super::store::FAIL_BEFORE_SWAP.with(|f| f.set(true));
    assert_eq!(code(map.flush()), NC_EINTERNAL);
    // The archive is the old one, whole, and nothing else was left.
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    let reader = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&reader, "/v/0"), b"old");
    assert_eq!(code(reader.exists(&key("/v/1"))), NC_EEMPTY);
    reader.close(false).unwrap();
    // The staged changes are still there: the next flush writes them.
    map.close(false).unwrap();
    let reader = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&reader, "/v/0"), b"new");
    assert_eq!(read_all(&reader, "/v/1"), b"more");
    reader.close(false).unwrap();
}

#[test]
fn comment_is_kept_and_zip64_used_past_65535_entries() {
    let (_dir, path) = tmp();
    let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file(".zgroup", stored).unwrap();
    writer.write_all(b"{}").unwrap();
    writer.set_comment("{\"ome\": {\"version\": \"0.5\"}}");
    writer.finish().unwrap();
    const N: usize = 70_000;
    let map = Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0).unwrap();
    for i in 0..N {
        map.write(&key(&format!("/c/{i}")), 0, &(i as u32).to_le_bytes())
            .unwrap();
    }
    map.close(false).unwrap();
    let archive = zip::ZipArchive::new(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(archive.len(), N + 1);
    assert_eq!(archive.comment(), b"{\"ome\": {\"version\": \"0.5\"}}");
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    assert_eq!(read_all(&map, "/c/69999"), 69_999u32.to_le_bytes());
    assert_eq!(map.search(&key("/c")).unwrap().len(), N);
    map.close(false).unwrap();
}

#[test]
fn rewrite_keeps_the_file_mode() {
    let (_dir, path) = tmp();
    Map::create(Impl::Zip, &loc(&path), 0, 0)
        .unwrap()
        .close(false)
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let map = Map::open(Impl::Zip, &loc(&path), NC_WRITE, 0).unwrap();
    map.write(&key("/a"), 0, b"1").unwrap();
    map.close(false).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
}

#[test]
fn delete_and_rewrite_only_by_identity() {
    let (dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.flush().unwrap();
    // Someone puts another file at the name.
    let other = dir.path().join("other");
    fs::write(&other, b"not yours").unwrap();
    fs::rename(&other, &path).unwrap();
    // A flush does not overwrite it (the staged data stays staged)...
    map.write(&key("/v/0"), 0, b"x").unwrap();
    assert_eq!(code(map.flush()), NC_EEXIST);
    assert_eq!(fs::read(&path).unwrap(), b"not yours");
    // ...and delete does not remove it (the archive has no name left:
    // someone else removed it, which is not an error).
    map.close(true).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"not yours");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // A read-only map deletes its own archive.
    fs::remove_file(&path).unwrap();
    Map::create(Impl::Zip, &loc(&path), 0, 0)
        .unwrap()
        .close(false)
        .unwrap();
    Map::open(Impl::Zip, &loc(&path), 0, 0)
        .unwrap()
        .close(true)
        .unwrap();
    assert!(!path.exists());
}

#[test]
fn delete_of_an_archive_renamed_away_is_empty_and_removes_nothing() {
    let (dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    map.flush().unwrap();
    let moved = dir.path().join("moved.zip");
    fs::rename(&path, &moved).unwrap();
    fs::write(&path, b"not yours").unwrap();
    // The dataset is not at its name: NC_EEMPTY, and neither file goes.
    assert_eq!(code(map.close(true)), NC_EEMPTY);
    assert_eq!(fs::read(&path).unwrap(), b"not yours");
    let reopened = Map::open(Impl::Zip, &loc(&moved), 0, 0).unwrap();
    assert_eq!(reopened.len(&key("/.zgroup")).unwrap(), 2);
    reopened.close(false).unwrap();
}

#[test]
fn vanished_archive_is_written_anew_at_flush() {
    let (_dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/.zgroup"), 0, b"{}").unwrap();
    fs::remove_file(&path).unwrap();
    map.close(false).unwrap();
    assert_eq!(names(&path), [".zgroup"]);
}

/// CRC-32 of `len` zero bytes (`len` a multiple of 1 MiB), by combining.
fn zeros_crc(len: u64) -> u32 {
    let mut piece = crc32fast::Hasher::new();
    piece.update(&vec![0u8; 1 << 20]);
    let mut total = crc32fast::Hasher::new();
    let mut left = len >> 20;
    while left > 0 {
        if left & 1 == 1 {
            total.combine(&piece);
        }
        let copy = piece.clone();
        piece.combine(&copy);
        left >>= 1;
    }
    total.finalize()
}

#[test]
fn ten_gib_archive_opens_by_its_directory_and_reads_one_chunk() {
    const BIG: u64 = 10 << 30;
    let (_dir, path) = tmp();
    let mut specs = vec![
        entry(".zgroup", b"{}"),
        Spec {
            name: b"big/0".to_vec(),
            data: Data::Hole(BIG, zeros_crc(BIG)),
            deflate: false,
            mode: 0,
            flags: 0,
        },
    ];
    for i in 0..1000 {
        specs.push(entry(&format!("v/{i}"), format!("chunk {i}").as_bytes()));
    }
    build(&path, &specs);
    let meta = fs::metadata(&path).unwrap();
    assert!(meta.len() > BIG);
    let directory_len: u64 = (0..1000)
        .map(|i| 46 + 28 + format!("v/{i}").len() as u64)
        .sum();
    BYTES_READ.with(|n| n.set(0));
    let map = Map::open(Impl::Zip, &loc(&path), 0, 0).unwrap();
    let at_open = BYTES_READ.with(|n| n.get());
    // The end-record search window and the directory, nothing more.
    assert!(
        at_open <= (65 << 10) + directory_len + 1024,
        "open read {at_open} bytes"
    );
    assert_eq!(map.len(&key("/big/0")).unwrap(), BIG);
    BYTES_READ.with(|n| n.set(0));
    assert_eq!(read_all(&map, "/v/777"), b"chunk 777");
    let for_chunk = BYTES_READ.with(|n| n.get());
    // The fixed part of its local header (which gives the data offset)
    // and its 9 bytes.
    assert_eq!(for_chunk, 30 + 9);
    // A read far into the big entry reads just that.
    BYTES_READ.with(|n| n.set(0));
    let mut four = [9u8; 4];
    map.read(&key("/big/0"), BIG - 4, &mut four).unwrap();
    assert_eq!(four, [0; 4]);
    assert_eq!(BYTES_READ.with(|n| n.get()), 30 + 4);
    map.close(false).unwrap();
}

#[test]
fn entries_are_dated_when_written() {
    let (_dir, path) = tmp();
    let map = Map::create(Impl::Zip, &loc(&path), 0, 0).unwrap();
    map.write(&key("/v/0"), 0, b"x").unwrap();
    map.close(false).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Years since 1970, within a day of the calendar year (UTC).
    let year = |secs: u64| 1970 + (secs as f64 / 31_556_952.0) as u16;
    let (earliest, latest) = (year(now - 86_400), year(now + 86_400));
    let mut archive = zip::ZipArchive::new(fs::File::open(&path).unwrap()).unwrap();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).unwrap();
        let written = entry.last_modified().unwrap().year();
        assert!(
            (earliest..=latest).contains(&written),
            "{}: dated {written}",
            entry.name()
        );
    }
}
