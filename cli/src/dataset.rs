//! Dataset arguments: which backend a URL names, opening it, walking its keys.

use std::fmt;
use std::io::Write;

use clap::ValueEnum;
use zmap_core::location;
use zmap_core::map::{NC_NOCLOBBER, NC_WRITE};
use zmap_core::{Error, Impl, Key, Map};

use crate::failure::{At, Failure};

/// `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    File,
    Gnz,
    Zip,
    S3,
    Mem,
    Nc4,
}

impl BackendArg {
    fn imp(self) -> Impl {
        match self {
            BackendArg::File => Impl::File,
            BackendArg::Gnz => Impl::Gnz,
            BackendArg::Zip => Impl::Zip,
            BackendArg::S3 => Impl::S3,
            BackendArg::Mem => Impl::Memory,
            BackendArg::Nc4 => Impl::Nc4,
        }
    }
}

/// A dataset argument: the backend and the location handed to it unchanged.
#[derive(Clone, Debug)]
pub struct Target {
    pub imp: Impl,
    pub location: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)
    }
}

impl Target {
    pub fn resolve(url: &str, forced: Option<BackendArg>) -> Result<Target, Failure> {
        if url.is_empty() {
            return Err(Failure::usage("an empty dataset path or URL"));
        }
        let imp = match forced {
            Some(b) => b.imp(),
            None => guess(url),
        };
        Ok(Target {
            imp,
            location: url.to_string(),
        })
    }

    pub fn open_read(&self) -> Result<Map, Failure> {
        self.open(0)
    }

    pub fn open_write(&self) -> Result<Map, Failure> {
        self.open(NC_WRITE)
    }

    fn open(&self, mode: i32) -> Result<Map, Failure> {
        Map::open(self.imp, &self.location, mode, 0)
            .map(show_warnings)
            .map_err(|e| self.dataset_error(e))
    }

    /// An error of open/create, with what it means for this dataset.
    fn dataset_error(&self, e: Error) -> Failure {
        let backend = self.imp.name();
        match e {
            Error::Empty => Failure::nc(format!("{self} (no {backend} dataset there)"), e),
            Error::NotBuilt => {
                Failure::nc(format!("{self} (the {backend} backend is not built in)"), e)
            }
            e => Failure::nc(self, e),
        }
    }

    /// Creates the dataset: `keep` keeps existing content (`NC_NOCLOBBER`),
    /// else an existing dataset is emptied.
    pub fn create(&self, keep: bool) -> Result<Map, Failure> {
        let mode = if keep { NC_NOCLOBBER } else { 0 };
        Map::create(self.imp, &self.location, mode, 0)
            .map(show_warnings)
            .map_err(|e| self.dataset_error(e))
    }

    /// The local file or directory behind a FILE, GNZ or ZIP dataset.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        match self.imp {
            Impl::File | Impl::Gnz | Impl::Nc4 | Impl::Zip => {
                location::file_path(&self.location).ok()
            }
            _ => None,
        }
    }

    /// `url key`, for messages about one key of this dataset.
    pub fn key_context(&self, key: &Key) -> String {
        format!("{} {}", self.location, key)
    }
}

/// Prints what the library has to say about a map it opened (it never
/// prints itself), on stderr.
fn show_warnings(map: Map) -> Map {
    for warning in map.warnings() {
        eprintln!("zmap: warning: {warning}");
    }
    map
}

/// The backend a URL names (see the crate doc of the binary).
fn guess(url: &str) -> Impl {
    match location::scheme(url)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mem") => Impl::Memory,
        Some("s3") | Some("http") | Some("https") => Impl::S3,
        Some("file") => {
            if let Some(imp) = fragment_mode(url) {
                return imp;
            }
            match location::file_path(url) {
                Ok(path) if is_gnz_name(&path.to_string_lossy()) => Impl::Gnz,
                Ok(path) if is_nc4_name(&path.to_string_lossy()) => Impl::Nc4,
                Ok(path) if is_zip_name(&path.to_string_lossy()) => Impl::Zip,
                _ => Impl::File,
            }
        }
        // A plain path keeps every byte ('#' included); other schemes are
        // handed to FILE, which rejects them with NC_EURL.
        _ if is_gnz_name(url) => Impl::Gnz,
        _ if is_nc4_name(url) => Impl::Nc4,
        _ if is_zip_name(url) => Impl::Zip,
        _ => Impl::File,
    }
}

/// True if `path` ends with `.ext` (any case) after a non-empty name.
fn has_extension(path: &str, ext: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.len() > ext.len() + 1
        && path.is_char_boundary(path.len() - ext.len() - 1)
        && path[path.len() - ext.len() - 1..].eq_ignore_ascii_case(&format!(".{ext}"))
}

fn is_gnz_name(path: &str) -> bool {
    has_extension(path, "gnz")
}

/// ZIP archives: `.zip` (netCDF, zarr's ZipStore) and `.ozx` (OME-Zarr).
fn is_zip_name(path: &str) -> bool {
    has_extension(path, "zip") || has_extension(path, "ozx")
}

/// A netCDF-4 file: `.nc`, or `.nz4` (netCDF 2020's name for the backend).
fn is_nc4_name(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    (lower.len() > 3 && lower.ends_with(".nc")) || (lower.len() > 4 && lower.ends_with(".nz4"))
}

/// A backend named in a `#mode=a,b,c` fragment, as netCDF's URLs carry it
/// (`file://x#mode=nczarr,file`).
fn fragment_mode(url: &str) -> Option<Impl> {
    let fragment = &url[url.find('#')? + 1..];
    let mode = fragment
        .split('&')
        .find_map(|pair| pair.strip_prefix("mode="))?;
    mode.split(',').find_map(|word| match word {
        "file" | "nzf" => Some(Impl::File),
        "gnz" => Some(Impl::Gnz),
        "nc4" | "nz4" => Some(Impl::Nc4),
        "zip" => Some(Impl::Zip),
        "s3" => Some(Impl::S3),
        "mem" => Some(Impl::Memory),
        _ => None,
    })
}

/// One key met by [`walk`]: an object with its length, or an intermediate key.
pub struct Entry {
    pub key: Key<'static>,
    pub len: Option<u64>,
}

/// Visits `start` (when it is an object or intermediate key) and every key
/// below it, depth first, children in byte order (zmapio's order).
pub fn walk(
    map: &Map,
    target: &Target,
    start: &Key,
    visit: &mut dyn FnMut(&Entry) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let entry = Entry {
        key: start.clone().into_owned(),
        len: object_len(map, target, start)?,
    };
    visit(&entry)?;
    if entry.len.is_none() {
        walk_below(map, target, start, visit)?;
    }
    Ok(())
}

fn walk_below(
    map: &Map,
    target: &Target,
    prefix: &Key,
    visit: &mut dyn FnMut(&Entry) -> Result<(), Failure>,
) -> Result<(), Failure> {
    for name in map.search(prefix).at(target.key_context(prefix))? {
        let key = prefix.child(&name).at(format!(
            "{} {}/{}",
            target,
            prefix.as_str().trim_end_matches('/'),
            name
        ))?;
        let entry = Entry {
            len: object_len(map, target, &key)?,
            key,
        };
        visit(&entry)?;
        if entry.len.is_none() {
            walk_below(map, target, &entry.key, visit)?;
        }
    }
    Ok(())
}

/// `Some(len)` for an object, `None` for anything else.
pub fn object_len(map: &Map, target: &Target, key: &Key) -> Result<Option<u64>, Failure> {
    match map.len(key) {
        Ok(len) => Ok(Some(len)),
        Err(Error::Empty) => Ok(None),
        Err(e) => Err(Failure::nc(target.key_context(key), e)),
    }
}

/// Every object below `start` (or `start` itself), with its length.
pub fn objects(
    map: &Map,
    target: &Target,
    start: &Key,
) -> Result<Vec<(Key<'static>, u64)>, Failure> {
    let mut found = Vec::new();
    walk(map, target, start, &mut |entry| {
        if let Some(len) = entry.len {
            found.push((entry.key.clone(), len));
        }
        Ok(())
    })?;
    Ok(found)
}

/// Parses a key argument; a rejected key is an NC error (`NC_EINVAL`).
pub fn parse_key(target: &Target, raw: &str) -> Result<Key<'static>, Failure> {
    Key::parse(raw.as_bytes())
        .map(Key::into_owned)
        .at(format!("{target} {raw}"))
}

/// Like [`parse_key`], for arguments that must name an object.
pub fn parse_object_key(target: &Target, raw: &str) -> Result<Key<'static>, Failure> {
    Key::parse_object(raw.as_bytes())
        .map(Key::into_owned)
        .at(format!("{target} {raw}"))
}

/// Whether a backend is compiled in: opening a dataset that cannot exist
/// gives `NC_ENOTBUILT` only from a backend that is not.
pub fn is_built(imp: Impl) -> bool {
    let probe = match imp {
        Impl::Memory => return true,
        Impl::Nc4 => "/nonexistent/zmap-backend-probe/dataset.nc",
        Impl::File => "/nonexistent/zmap-backend-probe/dataset",
        Impl::Gnz => "/nonexistent/zmap-backend-probe/dataset.gnz",
        Impl::Zip => "/nonexistent/zmap-backend-probe/dataset.zip",
        // Malformed on purpose: a built S3 backend rejects it before any
        // network traffic.
        Impl::S3 => "s3://",
    };
    !matches!(Map::open(imp, probe, 0, 0), Err(Error::NotBuilt))
}

pub fn print_backends() -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    for (name, imp) in [
        ("file", Impl::File),
        ("gnz", Impl::Gnz),
        ("zip", Impl::Zip),
        ("s3", Impl::S3),
        ("mem", Impl::Memory),
        ("nc4", Impl::Nc4),
    ] {
        let state = if is_built(imp) { "built" } else { "not-built" };
        writeln!(out, "{name} {state}").map_err(Failure::stdout)?;
    }
    out.flush().map_err(Failure::stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_from_urls() {
        for (url, imp) in [
            ("mem://x", Impl::Memory),
            ("MEM://x", Impl::Memory),
            ("s3://bucket/root", Impl::S3),
            ("http://127.0.0.1:9000/bucket/root", Impl::S3),
            ("https://host/bucket/root", Impl::S3),
            ("/data/x.gnz", Impl::Gnz),
            ("rel/x.GNZ", Impl::Gnz),
            ("file:///data/x.gnz#mode=nczarr", Impl::Gnz),
            ("file:///data/x.gnz", Impl::Gnz),
            ("file:///data/dir#mode=nczarr,file", Impl::File),
            ("file:///data/dir#mode=nczarr,gnz", Impl::Gnz),
            ("file://rel/dir", Impl::File),
            ("/data/dir", Impl::File),
            ("dir", Impl::File),
            (".gnz", Impl::File),
            ("/data/x.gnzz", Impl::File),
            ("/data/x.nc", Impl::Nc4),
            ("rel/x.NZ4", Impl::Nc4),
            ("file:///data/x.nz4", Impl::Nc4),
            ("file:///data/x#mode=nczarr,nz4", Impl::Nc4),
            (".nc", Impl::File),
            ("/data/x.ncx", Impl::File),
            ("/data/x.zip", Impl::Zip),
            ("rel/x.OZX", Impl::Zip),
            ("file:///data/x.zip", Impl::Zip),
            ("file:///data/x.zip#mode=nczarr,zip", Impl::Zip),
            ("file:///data/x#mode=nczarr,zip", Impl::Zip),
            (".zip", Impl::File),
            ("/data/x.zipx", Impl::File),
        ] {
            assert_eq!(guess(url), imp, "{url}");
        }
    }

    #[test]
    fn forced_backend_wins() {
        let t = Target::resolve("x.gnz", Some(BackendArg::File)).unwrap();
        assert_eq!(t.imp, Impl::File);
        assert!(Target::resolve("", None).is_err());
    }
}
