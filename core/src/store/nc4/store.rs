//! `NCZM_NC4`: a dataset inside one netCDF-4 (HDF5) file, in netCDF-C
//! 2020's layout (nc4-layout.md), through libnetcdf.
//!
//! Every key segment is a group; an object is a group holding the dimension
//! `data_dim` (unlimited) and the variable `ubyte data(data_dim)`. Every
//! call into libnetcdf is made under `sys::lock()`, after this map's own
//! lock (always in that order).
//!
//! netCDF-4 can neither delete a group or variable nor shrink a dimension.
//! So `remove` and a shrinking `truncate` change only what this map shows
//! (removed keys, shorter lengths: `Inner::gone`, `Inner::cut`), and the next
//! flush or close rewrites the file: every live object is copied into a new
//! file next to it, made durable, which then takes the old one's name (after
//! checking that the name still holds this map's file). Gaps are written as
//! zeros (netCDF's fill value for ubyte is 255).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io;
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::names;
use super::sys;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::place::Place;
use crate::store::{OpenOptions, Store};

/// The longest object (ext4's largest file): a longer write is `NC_EINVAL`
/// before anything changes.
pub const MAX_OBJECT_LEN: u64 = 1 << 44;
/// New objects' bytes held in memory before they are put in one batch.
const STAGE_LIMIT: usize = 64 << 20;
/// Zeros and copies go through libnetcdf in pieces of this size.
const PIECE: usize = 1 << 20;
/// The top-level group names that mark a file as a dataset create may empty.
const MARKERS: [&str; 6] = [
    "_nczarr",
    "_zgroup",
    "_zarray",
    "_zattrs",
    "_zmetadata",
    "zarr.json",
];

const DATA: &CStr = c"data";
const DATA_DIM: &CStr = c"data_dim";

/// A libnetcdf status as an error.
fn check(status: c_int) -> Result<()> {
    match status {
        sys::NC_NOERR => Ok(()),
        s if s > 0 => Err(Error::Io(io::Error::from_raw_os_error(s))),
        sys::NC_ENOMEM => Err(Error::NoMem),
        sys::NC_EBADNAME | sys::NC_EMAXNAME | sys::NC_ENAMEINUSE => {
            Err(Error::Invalid("NC4: netCDF refused the name"))
        }
        sys::NC_EPERM => Err(Error::ReadOnly),
        sys::NC_ENOTNC | sys::NC_ENOTNC4 => Err(Error::Format(format!(
            "not a netCDF-4 file ({})",
            strerror(status)
        ))),
        s => Err(Error::Io(io::Error::other(format!(
            "libnetcdf: {} ({s})",
            strerror(s)
        )))),
    }
}

fn strerror(status: c_int) -> &'static str {
    crate::error::strerror(status)
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Url)
}

/// An object's group: the group, its `data` variable and `data_dim`.
#[derive(Clone, Copy)]
struct Object {
    group: c_int,
    var: c_int,
    dim: c_int,
}

// ---- group helpers (called with sys::lock() held) ----------------------------

/// The child group `name` of `group`, if there is one.
fn child_group(group: c_int, name: &CStr) -> Result<Option<c_int>> {
    let mut id = 0;
    // SAFETY: `name` is NUL-terminated, `id` a valid out-pointer; the caller
    // holds sys::lock().
    match unsafe { sys::nc_inq_grp_ncid(group, name.as_ptr(), &mut id) } {
        sys::NC_ENOGRP => Ok(None),
        s => check(s).map(|()| Some(id)),
    }
}

/// The object in `group`, if it is one (`Format` for a `data` variable that
/// is not `ubyte data(dim)`).
fn object_in(group: c_int) -> Result<Option<Object>> {
    let mut var = 0;
    // SAFETY: as in child_group.
    match unsafe { sys::nc_inq_varid(group, DATA.as_ptr(), &mut var) } {
        sys::NC_ENOTVAR => return Ok(None),
        s => check(s)?,
    }
    let (mut xtype, mut ndims) = (0, 0);
    // SAFETY: NULL name, dimids and natts are allowed; the out-pointers are valid.
    check(unsafe {
        sys::nc_inq_var(
            group,
            var,
            std::ptr::null_mut(),
            &mut xtype,
            &mut ndims,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    })?;
    if xtype != sys::NC_UBYTE || ndims != 1 {
        return Err(Error::Format(
            "NC4: a 'data' variable that is not ubyte data(data_dim)".into(),
        ));
    }
    let mut dim = 0;
    // SAFETY: the variable has exactly one dimension: one slot suffices.
    check(unsafe {
        sys::nc_inq_var(
            group,
            var,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut dim,
            std::ptr::null_mut(),
        )
    })?;
    Ok(Some(Object { group, var, dim }))
}

fn object_len(obj: Object) -> Result<u64> {
    let mut len = 0usize;
    // SAFETY: valid out-pointer; lock held.
    check(unsafe { sys::nc_inq_dimlen(obj.group, obj.dim, &mut len) })?;
    Ok(len as u64)
}

/// The ids of `group`'s sub-groups.
fn subgroups(group: c_int) -> Result<Vec<c_int>> {
    let mut n = 0;
    // SAFETY: NULL ids asks for the count only.
    check(unsafe { sys::nc_inq_grps(group, &mut n, std::ptr::null_mut()) })?;
    let mut ids = vec![0; n.max(0) as usize];
    if n > 0 {
        // SAFETY: `ids` has room for the `n` ids just counted (the lock
        // keeps the group unchanged in between).
        check(unsafe { sys::nc_inq_grps(group, &mut n, ids.as_mut_ptr()) })?;
        ids.truncate(n.max(0) as usize);
    }
    Ok(ids)
}

fn group_name(group: c_int) -> Result<String> {
    let mut buf = [0 as c_char; sys::NC_MAX_NAME + 1];
    // SAFETY: netCDF writes at most NC_MAX_NAME bytes and a NUL.
    check(unsafe { sys::nc_inq_grpname(group, buf.as_mut_ptr()) })?;
    // SAFETY: NUL-terminated by nc_inq_grpname, inside `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

fn def_group(parent: c_int, name: &CStr) -> Result<c_int> {
    let mut id = 0;
    // SAFETY: NUL-terminated name, valid out-pointer; lock held.
    check(unsafe { sys::nc_def_grp(parent, name.as_ptr(), &mut id) })?;
    Ok(id)
}

/// Makes `group` an object: `data_dim` (unlimited) and `ubyte data(data_dim)`.
fn def_object(group: c_int) -> Result<Object> {
    let mut dim = 0;
    // SAFETY: NUL-terminated names, valid pointers; lock held.
    check(unsafe { sys::nc_def_dim(group, DATA_DIM.as_ptr(), sys::NC_UNLIMITED, &mut dim) })?;
    let mut var = 0;
    // SAFETY: one dimension id in `dim`.
    check(unsafe { sys::nc_def_var(group, DATA.as_ptr(), sys::NC_UBYTE, 1, &dim, &mut var) })?;
    Ok(Object { group, var, dim })
}

fn put(obj: Object, start: u64, data: &[u8]) -> Result<()> {
    for (i, piece) in data.chunks(PIECE).enumerate() {
        let s = (start + (i * PIECE) as u64) as usize;
        let n = piece.len();
        // SAFETY: one-dimensional start/count; `piece` holds `n` bytes.
        check(unsafe { sys::nc_put_vara_uchar(obj.group, obj.var, &s, &n, piece.as_ptr()) })?;
    }
    Ok(())
}

fn get(obj: Object, start: u64, buf: &mut [u8]) -> Result<()> {
    let s = start as usize;
    let n = buf.len();
    // SAFETY: `buf` has room for `n` bytes; the caller checked the range.
    check(unsafe { sys::nc_get_vara_uchar(obj.group, obj.var, &s, &n, buf.as_mut_ptr()) })
}

/// Writes zeros over `[from, to)`.
fn put_zeros(obj: Object, from: u64, to: u64) -> Result<()> {
    let zeros = vec![0u8; PIECE.min((to - from) as usize)];
    let mut at = from;
    while at < to {
        let n = zeros.len().min((to - at) as usize);
        put(obj, at, &zeros[..n])?;
        at += n as u64;
    }
    Ok(())
}

// ---- files -------------------------------------------------------------------

/// The identity of a file: device and inode.
fn identity(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The place of `path` (its directory held open).
fn place_of(path: &Path) -> Result<Place> {
    let name = path
        .file_name()
        .ok_or(Error::Invalid("an NC4 dataset path must name a file"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(Place::new(parent, name)?)
}

fn nc_open(path: &Path, writable: bool) -> Result<c_int> {
    let c = c_path(path)?;
    let mode = sys::NC_NETCDF4
        | if writable {
            sys::NC_WRITE
        } else {
            sys::NC_NOWRITE
        };
    let mut ncid = -1;
    // SAFETY: NUL-terminated path, valid out-pointer; lock held by the caller.
    check(unsafe { sys::nc_open(c.as_ptr(), mode, &mut ncid) })?;
    let mut format = 0;
    // SAFETY: valid out-pointer.
    let st = unsafe { sys::nc_inq_format(ncid, &mut format) };
    if st != sys::NC_NOERR || format != sys::NC_FORMAT_NETCDF4 {
        // SAFETY: `ncid` was opened above and is closed once.
        unsafe { sys::nc_close(ncid) };
        return Err(Error::Format(format!(
            "{} is not a netCDF-4 file",
            path.display()
        )));
    }
    Ok(ncid)
}

/// Creates a new, empty netCDF-4 file at `path` (which must not exist).
fn nc_create_new(path: &Path) -> Result<c_int> {
    let c = c_path(path)?;
    let mut ncid = -1;
    // SAFETY: NUL-terminated path, valid out-pointer; lock held by the caller.
    check(unsafe { sys::nc_create(c.as_ptr(), sys::NC_NETCDF4 | sys::NC_NOCLOBBER, &mut ncid) })?;
    Ok(ncid)
}

fn nc_close(ncid: c_int) -> Result<()> {
    // SAFETY: the caller owns `ncid` and never uses it again.
    check(unsafe { sys::nc_close(ncid) })
}

fn nc_sync(ncid: c_int) -> Result<()> {
    // SAFETY: an open ncid; lock held.
    check(unsafe { sys::nc_sync(ncid) })
}

/// True when the open file's top level is a dataset create may empty: no
/// variables, dimensions or attributes, and either no group or a marker.
fn is_dataset(root: c_int) -> Result<bool> {
    let (mut nvars, mut ndims, mut natts) = (0, 0, 0);
    // SAFETY: valid out-pointers; lock held.
    unsafe {
        check(sys::nc_inq_nvars(root, &mut nvars))?;
        check(sys::nc_inq_ndims(root, &mut ndims))?;
        check(sys::nc_inq_natts(root, &mut natts))?;
    }
    if nvars != 0 || ndims != 0 || natts != 0 {
        return Ok(false);
    }
    let groups = subgroups(root)?;
    if groups.is_empty() {
        return Ok(true);
    }
    for g in groups {
        if MARKERS.contains(&group_name(g)?.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---- the store -----------------------------------------------------------------

struct Inner {
    /// The root group of the open file; `None` once closed.
    ncid: Option<c_int>,
    /// The dataset's file, held from open/create on: its identity decides
    /// what close(delete) and a rewrite may replace, and fsync goes to it.
    file: File,
    /// Objects removed since the last rewrite (still in the file).
    gone: HashSet<String>,
    /// Objects whose length is shorter than in the file (truncated, or
    /// removed and written again), with that length.
    cut: HashMap<String, u64>,
    /// Objects defined since the last batch, with their bytes, not yet put
    /// into `data`: see `Inner::put_staged`.
    staged: HashMap<String, (Object, Vec<u8>)>,
    /// Bytes held in `staged`.
    staged_bytes: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(ncid) = self.ncid.take() {
            let _guard = sys::lock();
            let _ = nc_close(ncid);
        }
    }
}

impl Inner {
    fn root(&self) -> c_int {
        self.ncid.unwrap_or(-1)
    }

    fn is_gone(&self, key: &str) -> bool {
        !self.gone.is_empty() && self.gone.contains(key)
    }

    /// The live object at `key` and its length.
    fn find_object(&self, key: &Key) -> Result<(Object, u64)> {
        if let Some((obj, data)) = self.staged.get(key.as_str()) {
            return Ok((*obj, data.len() as u64));
        }
        if self.is_gone(key.as_str()) {
            return Err(Error::Empty);
        }
        let group = find_group(self.root(), key)?.ok_or(Error::Empty)?;
        let obj = object_in(group)?.ok_or(Error::Empty)?;
        Ok((obj, self.logical_len(key.as_str(), obj)?))
    }

    fn logical_len(&self, key: &str, obj: Object) -> Result<u64> {
        let len = object_len(obj)?;
        Ok(match self.cut.get(key) {
            Some(&cut) => cut.min(len),
            None => len,
        })
    }

    /// True when `group` (the key `key`) is or holds a live object.
    fn has_live(&self, group: c_int, key: &str) -> Result<bool> {
        if object_in(group)?.is_some() && !self.is_gone(key) {
            return Ok(true);
        }
        for g in subgroups(group)? {
            if let Some(segment) = names::segment(&group_name(g)?) {
                if self.has_live(g, &join(key, &segment))? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The object at `key`, created (with its groups) when missing, and its
    /// length. Prefix conflicts are `Invalid`, found before anything changes.
    fn ensure_object(&mut self, key: &Key) -> Result<(Object, u64)> {
        if let Some((obj, data)) = self.staged.get(key.as_str()) {
            return Ok((*obj, data.len() as u64));
        }
        let names = key
            .segments()
            .map(names::group_name)
            .collect::<Result<Vec<_>>>()?;
        let (last, above) = names.split_last().ok_or(Error::ROOT_NOT_OBJECT)?;
        let mut group = self.root();
        let mut missing = None;
        for (i, (name, ancestor)) in above.iter().zip(key.ancestors()).enumerate() {
            match child_group(group, name)? {
                Some(g) => {
                    if object_in(g)?.is_some() && !self.is_gone(ancestor) {
                        return Err(Error::Invalid("key lies below an object"));
                    }
                    group = g;
                }
                None => {
                    missing = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = missing {
            for name in &above[i..] {
                group = def_group(group, name)?;
            }
            let obj = def_object(def_group(group, last)?)?;
            return Ok(self.stage(key, obj));
        }
        let Some(g) = child_group(group, last)? else {
            let obj = def_object(def_group(group, last)?)?;
            return Ok(self.stage(key, obj));
        };
        let k = key.as_str();
        let gone = self.is_gone(k);
        if let Some(obj) = object_in(g)? {
            if !gone {
                return Ok((obj, self.logical_len(k, obj)?));
            }
        }
        // Not a live object: an intermediate key, or one emptied by removes.
        for sub in subgroups(g)? {
            if let Some(segment) = names::segment(&group_name(sub)?) {
                if self.has_live(sub, &join(k, &segment))? {
                    return Err(Error::Invalid("key is a prefix of an object"));
                }
            }
        }
        let obj = match object_in(g)? {
            Some(obj) => obj,
            None => return Ok(self.stage(key, def_object(g)?)),
        };
        if gone {
            // Removed, now new again: empty, whatever the file still holds.
            self.gone.remove(k);
            self.cut.insert(k.to_string(), 0);
        }
        let len = self.logical_len(k, obj)?;
        Ok((obj, len))
    }

    /// Records a logical length `len` for `key` whose file length is now
    /// `physical`.
    fn set_len(&mut self, key: &str, len: u64, physical: u64) {
        if len >= physical {
            self.cut.remove(key);
        } else {
            self.cut.insert(key.to_string(), len);
        }
    }

    /// A new object's bytes wait in memory: netCDF leaves define mode at the
    /// first data access after a definition, and that writes the metadata of
    /// every group in the file and flushes HDF5 (`nc4_enddef_netcdf4_file`):
    /// done per new object, creating N objects would cost O(N^2). Staged
    /// objects are put in one batch (one such pass) by `put_staged`.
    fn stage(&mut self, key: &Key, obj: Object) -> (Object, u64) {
        self.staged
            .insert(key.as_str().to_string(), (obj, Vec::new()));
        (obj, 0)
    }

    /// Puts every staged object's bytes into the file.
    fn put_staged(&mut self) -> Result<()> {
        for (_, (obj, data)) in self.staged.drain() {
            if !data.is_empty() {
                put(obj, 0, &data)?;
            }
        }
        self.staged_bytes = 0;
        Ok(())
    }

    fn pending(&self) -> bool {
        !self.gone.is_empty() || !self.cut.is_empty()
    }
}

/// `parent/segment` as a key string.
fn join(parent: &str, segment: &str) -> String {
    if parent == "/" {
        format!("/{segment}")
    } else {
        format!("{parent}/{segment}")
    }
}

/// The group of `key` (the root for `/`), if it exists.
fn find_group(root: c_int, key: &Key) -> Result<Option<c_int>> {
    // Every segment is checked, also those below a missing group.
    let names = key
        .segments()
        .map(names::group_name)
        .collect::<Result<Vec<_>>>()?;
    let mut group = root;
    for name in &names {
        match child_group(group, name)? {
            Some(g) => group = g,
            None => return Ok(None),
        }
    }
    Ok(Some(group))
}

/// An object found in the file: its key, its groups' names, where it is.
struct Found {
    key: String,
    groups: Vec<String>,
    obj: Object,
}

/// Every object below `group` (whose key is `key`), depth first.
fn collect(group: c_int, key: &str, groups: &mut Vec<String>, out: &mut Vec<Found>) -> Result<()> {
    for g in subgroups(group)? {
        let name = group_name(g)?;
        let Some(segment) = names::segment(&name) else {
            continue;
        };
        let child = join(key, &segment);
        groups.push(name);
        if let Some(obj) = object_in(g)? {
            out.push(Found {
                key: child.clone(),
                groups: groups.clone(),
                obj,
            });
        }
        // A removed object's group may hold keys written after the remove.
        collect(g, &child, groups, out)?;
        groups.pop();
    }
    Ok(())
}

pub struct Nc4Store {
    path: PathBuf,
    /// The held directory and the file's name: renames and the delete go
    /// through it, and only over the file this map holds.
    place: Place,
    writable: bool,
    inner: Mutex<Inner>,
}

impl Nc4Store {
    pub fn open(path: PathBuf, options: OpenOptions) -> Result<Nc4Store> {
        if options.create {
            return Nc4Store::create(path, options.noclobber);
        }
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::Empty),
            Err(e) => return Err(e.into()),
        };
        if !meta.is_file() {
            return Err(Error::Format(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let file = File::open(&path)?;
        // The dataset is the file a symbolic link names, not the link.
        let path = fs::canonicalize(&path)?;
        let place = place_of(&path)?;
        let guard = sys::lock();
        let ncid = nc_open(&path, options.writable)?;
        drop(guard);
        Ok(Nc4Store::new(path, place, options.writable, ncid, file))
    }

    fn new(path: PathBuf, place: Place, writable: bool, ncid: c_int, file: File) -> Nc4Store {
        Nc4Store {
            path,
            place,
            writable,
            inner: Mutex::new(Inner {
                ncid: Some(ncid),
                file,
                gone: HashSet::new(),
                cut: HashMap::new(),
                staged: HashMap::new(),
                staged_bytes: 0,
            }),
        }
    }

    fn create(path: PathBuf, noclobber: bool) -> Result<Nc4Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let existing = match fs::symlink_metadata(&path) {
            Ok(m) if !m.is_file() => return Err(Error::Exists),
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let place = place_of(&path)?;
        let _guard = sys::lock();
        let mut replace = None;
        if let Some(meta) = existing {
            let file = File::open(&path)?;
            if identity(&file.metadata()?) != identity(&meta) {
                return Err(Error::Exists);
            }
            if meta.len() > 0 {
                let ncid = match nc_open(&path, noclobber) {
                    Ok(ncid) => ncid,
                    Err(Error::Format(_)) => return Err(Error::Exists),
                    Err(e) => return Err(e),
                };
                if noclobber {
                    return Ok(Nc4Store::new(path, place, true, ncid, file));
                }
                let ours = is_dataset(ncid);
                nc_close(ncid)?;
                if !ours? {
                    return Err(Error::Exists);
                }
            }
            replace = Some(file);
        }
        // A new file next to it, made durable, then put in its place: a
        // crash leaves either the old dataset or the new empty one.
        let temp_name = place.temp_name();
        let temp = path.with_file_name(&temp_name);
        let ncid = nc_create_new(&temp)?;
        let placed = (|| {
            nc_sync(ncid)?;
            let file = File::open(&temp)?;
            file.sync_all()?;
            // Over the file found above only, or where nothing is.
            place.replace(&temp_name, replace.as_ref())?;
            place.sync()?;
            Ok(file)
        })();
        match placed {
            Ok(file) => Ok(Nc4Store::new(path, place, true, ncid, file)),
            Err(e) => {
                let _ = nc_close(ncid);
                place.discard(&temp_name);
                Err(e)
            }
        }
    }

    /// This map's state and the libnetcdf lock, taken in that order.
    fn lock(&self) -> Result<(MutexGuard<'_, Inner>, MutexGuard<'static, ()>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.ncid.is_none() {
            return Err(Error::Internal("NC4 map used after a failed rewrite"));
        }
        Ok((inner, sys::lock()))
    }

    /// Replaces the file with a copy of its live objects (removed ones left
    /// out, truncated ones cut, empty groups gone), when something is
    /// pending. The new file is durable before it takes the old one's name.
    fn rewrite(&self, inner: &mut Inner) -> Result<()> {
        inner.put_staged()?;
        if !inner.pending() {
            return Ok(());
        }
        let root = inner.root();
        let mut objects = Vec::new();
        collect(root, "/", &mut Vec::new(), &mut objects)?;

        let temp_name = self.place.temp_name();
        let temp = self.path.with_file_name(&temp_name);
        let dst = nc_create_new(&temp)?;
        let copied = (|| {
            let mut groups: HashMap<Vec<String>, c_int> = HashMap::new();
            let mut buf = Vec::new();
            for found in &objects {
                if inner.is_gone(&found.key) {
                    continue;
                }
                let len = inner.logical_len(&found.key, found.obj)?;
                let mut parent = dst;
                for depth in 1..=found.groups.len() {
                    let path = &found.groups[..depth];
                    parent = match groups.get(path) {
                        Some(&g) => g,
                        None => {
                            let name = CString::new(path[depth - 1].as_str())
                                .map_err(|_| Error::Internal("NUL in a group name"))?;
                            let g = def_group(parent, &name)?;
                            groups.insert(path.to_vec(), g);
                            g
                        }
                    };
                }
                let obj = def_object(parent)?;
                buf.resize(PIECE.min(len as usize), 0);
                let mut at = 0u64;
                while at < len {
                    let n = buf.len().min((len - at) as usize);
                    get(found.obj, at, &mut buf[..n])?;
                    put(obj, at, &buf[..n])?;
                    at += n as u64;
                }
            }
            nc_close(dst)?;
            let file = File::open(&temp)?;
            file.sync_all()?;
            Ok(file)
        })();
        let file = match copied {
            Ok(file) => file,
            Err(e) => {
                let _ = nc_close(dst);
                self.place.discard(&temp_name);
                return Err(e);
            }
        };
        if !self.place.holds(&inner.file)? {
            self.place.discard(&temp_name);
            return Err(Error::Io(io::Error::other(
                "the dataset's file was replaced by another",
            )));
        }
        // The old file is closed before the new one takes its name, and the
        // new one is opened under the name it then has.
        inner.ncid = None;
        nc_close(root)?;
        // Exchanged with the file this map holds, and only with it.
        if let Err(e) = self.place.replace(&temp_name, Some(&inner.file)) {
            self.place.discard(&temp_name);
            inner.ncid = Some(nc_open(&self.path, true)?);
            return Err(e);
        }
        self.place.sync()?;
        inner.ncid = Some(nc_open(&self.path, true)?);
        inner.file = file;
        inner.gone.clear();
        inner.cut.clear();
        Ok(())
    }
}

impl Store for Nc4Store {
    fn len(&self, key: &Key) -> Result<u64> {
        let (inner, _nc) = self.lock()?;
        inner.find_object(key).map(|(_, len)| len)
    }

    fn define(&self, key: &Key) -> Result<()> {
        let (mut inner, _nc) = self.lock()?;
        inner.ensure_object(key).map(|_| ())
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let (inner, _nc) = self.lock()?;
        let (obj, len) = inner.find_object(key)?;
        let end = match start.checked_add(buf.len() as u64) {
            Some(end) if end <= len => end,
            _ => return Err(Error::Edge),
        };
        match inner.staged.get(key.as_str()) {
            Some((_, data)) => {
                buf.copy_from_slice(&data[start as usize..end as usize]);
                Ok(())
            }
            None => get(obj, start, buf),
        }
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        let end = match start.checked_add(data.len() as u64) {
            Some(end) if end <= MAX_OBJECT_LEN => end,
            _ => return Err(Error::Invalid("NC4: object longer than 2^44 bytes")),
        };
        let (mut inner, _nc) = self.lock()?;
        let (obj, len) = inner.ensure_object(key)?;
        if end > STAGE_LIMIT as u64 && inner.staged.contains_key(key.as_str()) {
            // Too large to hold: everything staged goes to the file first.
            inner.put_staged()?;
        }
        if let Some((_, staged)) = inner.staged.get_mut(key.as_str()) {
            let (start, end) = (start as usize, end as usize);
            let grown = end.saturating_sub(staged.len());
            if staged.len() < end {
                staged.resize(end, 0);
            }
            staged[start..end].copy_from_slice(data);
            inner.staged_bytes += grown;
            if inner.staged_bytes > STAGE_LIMIT {
                inner.put_staged()?;
            }
            return Ok(());
        }
        // Past the logical end the file may hold stale bytes: zeros first.
        if start > len {
            put_zeros(obj, len, start)?;
        }
        put(obj, start, data)?;
        if inner.cut.contains_key(key.as_str()) {
            let physical = object_len(obj)?;
            inner.set_len(key.as_str(), len.max(end), physical);
        }
        Ok(())
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        let (inner, _nc) = self.lock()?;
        let Some(group) = find_group(inner.root(), prefix)? else {
            return Ok(Vec::new());
        };
        if !prefix.is_root() && object_in(group)?.is_some() && !inner.is_gone(prefix.as_str()) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for g in subgroups(group)? {
            if let Some(segment) = names::segment(&group_name(g)?) {
                if inner.gone.is_empty() || inner.has_live(g, &join(prefix.as_str(), &segment))? {
                    out.push(segment);
                }
            }
        }
        Ok(out)
    }

    fn remove(&self, key: &Key) -> Result<()> {
        let (mut inner, _nc) = self.lock()?;
        inner.find_object(key)?;
        if let Some((_, data)) = inner.staged.remove(key.as_str()) {
            inner.staged_bytes -= data.len();
        }
        inner.cut.remove(key.as_str());
        inner.gone.insert(key.as_str().to_string());
        Ok(())
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        if len > MAX_OBJECT_LEN {
            return Err(Error::Invalid("NC4: object longer than 2^44 bytes"));
        }
        let (mut inner, _nc) = self.lock()?;
        let (obj, now) = inner.find_object(key)?;
        if len > STAGE_LIMIT as u64 && inner.staged.contains_key(key.as_str()) {
            inner.put_staged()?;
        }
        if let Some((_, data)) = inner.staged.get_mut(key.as_str()) {
            data.resize(len as usize, 0);
            inner.staged_bytes = inner.staged_bytes + len as usize - now as usize;
            if inner.staged_bytes > STAGE_LIMIT {
                inner.put_staged()?;
            }
            return Ok(());
        }
        if len > now {
            put_zeros(obj, now, len)?;
        }
        let physical = object_len(obj)?;
        inner.set_len(key.as_str(), len, physical);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let (mut inner, _nc) = self.lock()?;
        self.rewrite(&mut inner)?;
        nc_sync(inner.root())?;
        inner.file.sync_all()?;
        Ok(())
    }

    fn stats(&self) -> Vec<(String, String)> {
        vec![("file".into(), self.path.display().to_string())]
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let guard = sys::lock();
        let rewritten = if self.writable && !delete && inner.ncid.is_some() {
            self.rewrite(&mut inner)
        } else {
            Ok(())
        };
        let closed = match inner.ncid.take() {
            Some(ncid) => nc_close(ncid),
            None => Ok(()),
        };
        drop(guard);
        if delete {
            // Only the file this map opened: whatever has the name now and
            // is not it stays.
            return self.place.remove(&inner.file)?.into_result();
        }
        rewritten?;
        closed?;
        if self.writable {
            inner.file.sync_all()?;
        }
        Ok(())
    }
}
