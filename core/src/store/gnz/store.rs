//! The GNZ store: an index of extents over one file, copy-on-write updates,
//! the commit protocol and compaction. DESIGN.md explains the why; this file
//! is the how.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::json::{Json, Object as JsonObject};
use memmap2::Mmap;

use super::compact;
use super::fault;
use super::format::{self, ArrayOut, Loaded, Parsed, PREFIX_LEN};
use super::index::{Index, Layout, Object};
use super::lock;
use super::readers::{self, Readers};
use super::space::{align_up, Space};
use super::stage::{self, Stage};
use super::writeback;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::place::{Place, Removal};
use crate::store::{is_dataset_marker, OpenOptions, Store};

/// Page size of the layout: large objects start on multiples of it, the
/// header region and the file end are multiples of it.
pub const PAGE: u64 = format::ALIGNMENT;
/// Alignment of objects smaller than a page.
pub const SMALL_ALIGN: u64 = 16;
/// libzmap's own revision of the layout, recorded in `metadata.zmap`.
pub const REVISION: u64 = 1;
/// An object that grows gets up to half its length again as spare capacity,
/// at most this much.
const MAX_SLACK: u64 = 64 << 20;
/// Compaction: how many bytes it is worth copying to make the file one byte
/// shorter (page-rounded), when it chooses between layouts.
const SIZE_WEIGHT: u64 = 1024;
/// A writable open refuses a file whose generation (`metadata.zmap.generation`,
/// or the commit record's) is this or more: its commits could overflow the
/// counter. Below it, 2^63 commits would be needed to get there.
pub const MAX_WRITABLE_GENERATION: u64 = 1 << 63;
/// Buffer size for copying and zero-filling.
const CHUNK: u64 = 1 << 20;

/// The gaps a committed header leaves: how many runs of bytes between the
/// header and the end of the file no object references (alignment padding
/// included), and how many bytes they hold. What compaction can give back.
fn snapshot_gaps(objects: &Index, header_len: u64, file_len: u64) -> (u64, u64) {
    let mut extents: Vec<(u64, u64)> = objects
        .values()
        .filter(|o| o.len > 0)
        .map(|o| (o.offset, o.offset + o.len))
        .collect();
    extents.sort_unstable();
    let (mut holes, mut bytes, mut covered) = (0, 0, header_len);
    for (start, end) in extents.into_iter().chain([(file_len, file_len)]) {
        if start > covered {
            holes += 1;
            bytes += start - covered;
        }
        covered = covered.max(end);
    }
    (holes, bytes)
}

/// Decimal digits of `n`.
fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

/// True if the extents (offset, length) are packed from `floor` by the
/// alignment policy, with nothing between them but alignment padding.
fn packed(floor: u64, extents: &mut [(u64, u64)]) -> Result<bool> {
    extents.sort_unstable();
    let mut p = floor;
    for &(offset, len) in extents.iter() {
        if align_up(p, align_for(len))? != offset {
            return Ok(false);
        }
        p = offset + len;
    }
    Ok(true)
}

/// The capacity policy: whole pages from one page up, else 16-byte units.
fn capacity(n: u64) -> Result<u64> {
    if n >= PAGE {
        align_up(n, PAGE)
    } else {
        align_up(n, SMALL_ALIGN)
    }
}

/// The alignment policy: extents of a page or more start on a page.
fn align_for(cap: u64) -> u64 {
    if cap >= PAGE {
        PAGE
    } else {
        SMALL_ALIGN
    }
}

/// How much room an object growing from `old` to `new` bytes asks for.
fn grow_target(old: u64, new: u64) -> u64 {
    if new > old {
        new.max(old.saturating_add((old / 2).min(MAX_SLACK)))
    } else {
        new
    }
}

// ---- the index ---------------------------------------------------------------

/// The key of an array name (gnz-format.md Part 2), if it has one.
fn key_of(name: &str) -> Option<Key<'_>> {
    let key = Key::parse(name.as_bytes()).ok()?;
    let canonical = if name.starts_with('/') {
        key.as_str() == name
    } else {
        key.as_str()[1..] == *name
    };
    (canonical && !key.is_root()).then_some(key)
}

/// What the store takes from a loaded header.
struct Built {
    objects: Index,
    /// The names of the arrays that are not objects (not a valid key, or
    /// clashing with another array's key), and their extents.
    skipped: Vec<String>,
    foreign: Vec<(u64, u64)>,
    /// How many arrays the header lists, and whether one of them is a
    /// dataset marker at the top.
    arrays: usize,
    marked: bool,
    metadata: JsonObject,
    extra: JsonObject,
    generation: u64,
}

/// The objects of a header (in name order, so that of two clashing arrays
/// the same one is always skipped).
fn build(parsed: Parsed<'_>) -> Result<Built> {
    let generation = parsed.generation();
    let arrays = &parsed.arrays;
    let mut order: Vec<usize> = (0..arrays.len()).collect();
    if !parsed.sorted {
        order.sort_by(|&a, &b| arrays[a].name.cmp(&arrays[b].name));
    }
    let mut objects = Index::default();
    let mut skipped = Vec::new();
    let mut foreign = Vec::new();
    let mut marked = false;
    for i in order {
        let a = &arrays[i];
        let key = key_of(&a.name);
        if let Some(k) = &key {
            let top = &k.as_str()[1..];
            marked |= !top.contains('/') && is_dataset_marker(top);
        }
        let Some(key) =
            key.filter(|k| !objects.contains(k.as_str()) && objects.check_leaf(k.as_str()).is_ok())
        else {
            skipped.push(a.name.to_string());
            if a.nbytes > 0 {
                foreign.push((a.offset, a.offset + a.nbytes));
            }
            continue;
        };
        let object = Object {
            offset: if a.nbytes == 0 { 0 } else { a.offset },
            len: a.nbytes,
            cap: a.nbytes,
            committed: a.nbytes,
            born: 0,
            name: (a.name != key.as_str()).then(|| a.name.as_ref().into()),
            layout: (!a.is_plain()).then(|| {
                Box::new(Layout {
                    dtype: a.dtype.as_ref().into(),
                    shape: a.shape.as_slice().to_vec(),
                    order: a.order,
                })
            }),
        };
        objects.insert(key.as_str(), object);
    }
    Ok(Built {
        objects,
        skipped,
        foreign,
        arrays: arrays.len(),
        marked,
        metadata: parsed.metadata,
        extra: parsed.extra,
        generation,
    })
}

/// An object as an array of the header.
fn array_out<'a>(name: &'a str, o: &'a Object) -> ArrayOut<'a> {
    let offset = if o.len == 0 { 0 } else { o.offset };
    match &o.layout {
        Some(l) => ArrayOut {
            name,
            offset,
            dtype: &l.dtype,
            order: l.order,
            shape: &l.shape,
        },
        None => ArrayOut {
            name,
            offset,
            dtype: "|u1",
            order: "C",
            shape: std::slice::from_ref(&o.len),
        },
    }
}

/// The diagnostic of an open that skipped arrays (`Store::warnings`): the
/// library never prints it itself.
fn skipped_warning(path: &Path, skipped: &[String]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let shown: Vec<String> = skipped.iter().take(5).map(|n| format!("{n:?}")).collect();
    let more = if skipped.len() > 5 {
        format!(" and {} more", skipped.len() - 5)
    } else {
        String::new()
    };
    Some(format!(
        "{}: GNZ arrays that are not valid zmap keys were skipped and the file is \
         read-only: {}{more}",
        path.display(),
        shown.join(", ")
    ))
}

// ---- file helpers ------------------------------------------------------------

fn sync_parent_dir(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    Ok(())
}

// ---- the store -----------------------------------------------------------------

/// One open GNZ file.
pub struct GnzStore {
    /// Where the file is, for `close(map, 1)`.
    place: Place,
    state: State,
}

enum State {
    /// Read-only: an immutable index over a memory map of the file.
    Reader(Reader),
    /// Writable: the index, free space and commit machinery, behind a lock.
    Writer(Box<RwLock<Writer>>),
}

struct Reader {
    /// `live_header_end()` when the map opened (see `Reader::overwritten`).
    header_end_at_open: u64,
    objects: Index,
    map: Mmap,
    /// Holds the readers lock for the map's lifetime.
    file: File,
    generation: u64,
    header_len: u64,
    skipped: usize,
    /// What the open would have told a user (`Store::warnings`).
    warning: Option<String>,
}

struct Writer {
    /// The longest header at offset 0 written while readers may have been
    /// open: later headers are padded to it (see `commit`).
    header_high: u64,
    file: File,
    objects: Index,
    /// The header being committed: 8 bytes for its prefix, then its JSON
    /// (kept between commits for its capacity).
    buf: Vec<u8>,
    /// Small writes not in the file yet (DESIGN.md, "Staging").
    stage: Stage,
    space: Space,
    metadata: JsonObject,
    extra: JsonObject,
    /// The generation of the last commit (or of its durable record).
    generation: u64,
    /// 8 + length of the committed header.
    header_len: u64,
    file_len: u64,
    /// Something changed since the last commit.
    dirty: bool,
}

impl GnzStore {
    /// Opens (or creates) the GNZ file at `path`.
    pub fn open(path: PathBuf, options: OpenOptions) -> Result<GnzStore> {
        if options.create {
            return GnzStore::create(path, options.noclobber);
        }
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::Empty),
            Err(e) => return Err(e.into()),
        };
        if meta.is_dir() {
            return Err(Error::Format(format!("{} is a directory", path.display())));
        }
        if !meta.is_file() {
            // A FIFO or a device: not a GNZ file, and opening a FIFO would
            // wait for a writer.
            return Err(Error::Format(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if !options.writable {
            let file = open_file(&path, false)?;
            let place = Place::resolved(&path)?;
            let reader = Reader::open(&path, file)?;
            return Ok(GnzStore {
                place,
                state: State::Reader(reader),
            });
        }
        let file = open_file(&path, true)?;
        let place = Place::resolved(&path)?;
        lock::lock_writer(&file)?;
        let loaded = format::load_with(&file, build)?;
        GnzStore::from_loaded(path, place, file, loaded)
    }

    /// A writer on a loaded file, or a reader when some arrays are not
    /// objects (the file is then read-only).
    fn from_loaded(
        path: PathBuf,
        place: Place,
        file: File,
        loaded: Loaded<Built>,
    ) -> Result<GnzStore> {
        if !loaded.header.skipped.is_empty() {
            lock::unlock_writer(&file)?;
            let reader = Reader::open(&path, file)?;
            return Ok(GnzStore {
                place,
                state: State::Reader(reader),
            });
        }
        let writer = Writer::from_loaded(file, loaded)?;
        Ok(GnzStore {
            place,
            state: State::Writer(Box::new(RwLock::new(writer))),
        })
    }

    fn create(path: PathBuf, noclobber: bool) -> Result<GnzStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        // Something that is not a regular file is not ours: refused,
        // untouched (a FIFO would also block the open).
        match fs::metadata(&path) {
            Ok(m) if !m.is_file() => return Err(Error::Exists),
            _ => {}
        }
        let (file, new) = match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open_file_io(&path, true) {
                Ok(f) => (f, false),
                // Something at the name that leads nowhere: a dangling
                // symbolic link (or a file removed in between). Nothing is
                // created where a link points.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::Exists),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let place = Place::resolved(&path)?;
        lock::lock_writer(&file)?;
        if file.metadata()?.len() == 0 {
            let writer = Writer::fresh(file)?;
            if new {
                sync_parent_dir(&path)?;
            }
            return Ok(GnzStore {
                place,
                state: State::Writer(Box::new(RwLock::new(writer))),
            });
        }
        // What this library cannot fully parse (another format, a GNZ file
        // of a later version or with dtypes it does not know, a damaged
        // one) is not its dataset: refused in either mode, touching nothing.
        // Its own files always parse, crashes included (DESIGN.md).
        let loaded = match format::load_with(&file, build) {
            Ok(loaded) => loaded,
            Err(Error::Format(_)) => return Err(Error::Exists),
            Err(e) => return Err(e),
        };
        if noclobber {
            return GnzStore::from_loaded(path, place, file, loaded);
        }
        if loaded.header.arrays > 0 && !loaded.header.marked {
            return Err(Error::Exists);
        }
        // Empty the dataset: every array goes (those that are not objects
        // too), and with them everything the metadata said. Their bytes stay
        // untouched until the emptied header is committed.
        let mut writer = Writer::from_loaded(file, loaded)?;
        writer.clear();
        writer.commit()?;
        Ok(GnzStore {
            place,
            state: State::Writer(Box::new(RwLock::new(writer))),
        })
    }

    fn writer(&self) -> Result<RwLockWriteGuard<'_, Writer>> {
        match &self.state {
            State::Writer(w) => Ok(w.write().unwrap_or_else(|e| e.into_inner())),
            State::Reader(_) => Err(Error::ReadOnly),
        }
    }

    /// Rewrites the file without holes; its size before and after.
    pub fn compact_file(&self) -> Result<(u64, u64)> {
        self.writer()?.compact()
    }
}

fn open_file(path: &Path, writable: bool) -> Result<File> {
    Ok(open_file_io(path, writable)?)
}

fn open_file_io(path: &Path, writable: bool) -> io::Result<File> {
    fs::OpenOptions::new().read(true).write(writable).open(path)
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Explicitly: the file's description may outlive this map (lock.rs).
        let _ = lock::unpin_generation(&self.file, self.generation);
        let _ = lock::unregister_reader(&self.file);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = lock::unlock_writer(&self.file);
    }
}

impl Reader {
    fn open(path: &Path, file: File) -> Result<Reader> {
        lock::register_reader(&file)?;
        // The header and the mapping are taken under one header lock, so
        // the mapping covers every extent of the header it goes with.
        let (loaded, map) = lock::with_header_lock(&file, false, || {
            let loaded = format::load_with(&file, build)?;
            // Before the header lock goes: a writer lists the readers only
            // after writing a header under it (DESIGN.md, "Reader protocol").
            lock::pin_generation(&file, loaded.header.generation)?;
            // SAFETY: the mapping is only read, and only at extents that the
            // header references. libzmap writers never change those bytes
            // while this reader holds its generation slot (copy-on-write,
            // DESIGN.md "Reader protocol") and never cut the file below them.
            // A process that ignores the protocol and truncates the file
            // could make such a read fault (SIGBUS), as with any memory map.
            let map = unsafe { Mmap::map(&file)? };
            Ok((loaded, map))
        })?;
        let header_len = PREFIX_LEN + loaded.json.len() as u64;
        let built = loaded.header;
        let warning = skipped_warning(path, &built.skipped);
        let objects = built.objects;
        let size = map.len() as u64;
        if objects.values().any(|o| o.offset + o.len > size) {
            return Err(Error::Format("file shrank while being opened".into()));
        }
        let mut reader = Reader {
            generation: built.generation,
            header_len,
            skipped: built.skipped.len(),
            warning,
            objects,
            map,
            file,
            header_end_at_open: 0,
        };
        reader.header_end_at_open = reader.live_header_end();
        Ok(reader)
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let object = self.objects.get(key.as_str()).ok_or(Error::Empty)?;
        let end = start + buf.len() as u64;
        if end > object.len {
            return Err(Error::Edge);
        }
        let from = object.offset + start;
        // A writer never touches what this snapshot references, except when
        // its header outgrows the header region: the new header is written
        // over the place of objects it moved away. Those reads fail instead
        // of returning another header's bytes. The live header's length is
        // read before and after the copy: the header is written in one
        // pwrite, length first, so a torn copy sees the new length after.
        if self.overwritten(from) {
            return Err(Error::Stale);
        }
        let at = from as usize;
        super::copy::copy(buf, &self.map[at..at + buf.len()]);
        if self.overwritten(from) {
            return Err(Error::Stale);
        }
        Ok(())
    }

    /// See `Store::next_data`: from the file's own map of its holes
    /// (`SEEK_DATA`/`SEEK_HOLE`); without one, everything is data.
    fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        use rustix::fs::{seek, SeekFrom};
        let object = self.objects.get(key.as_str()).ok_or(Error::Empty)?;
        let end = end.min(object.len);
        if start >= end {
            return Ok(None);
        }
        let (base, stop) = (object.offset, object.offset + end);
        let data = match seek(&self.file, SeekFrom::Data(base + start)) {
            Ok(at) => at,
            // Nothing but holes from there to the end of the file.
            Err(rustix::io::Errno::NXIO) => return Ok(None),
            Err(_) => return Ok(Some((start, end))),
        };
        if data >= stop {
            return Ok(None);
        }
        let data = data.max(base + start);
        let hole = seek(&self.file, SeekFrom::Hole(data)).unwrap_or(stop);
        Ok(Some((data - base, hole.clamp(data + 1, stop) - base)))
    }

    /// True if a header written since this map opened reaches `offset`.
    /// (A header that was torn at open, or that overlaps objects in a file
    /// of another writer, is what the snapshot was taken with: no change.)
    fn overwritten(&self, offset: u64) -> bool {
        let live = self.live_header_end();
        live != self.header_end_at_open && offset < live
    }

    /// Where the header now at offset 0 ends (`GNZ1`, its length, the JSON).
    fn live_header_end(&self) -> u64 {
        let len = self
            .map
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes);
        PREFIX_LEN + u64::from(len)
    }
}

impl Writer {
    /// A new, empty dataset in an empty file. Nothing was committed before,
    /// so the first header goes straight to offset 0 (one small write in
    /// the first page).
    fn fresh(file: File) -> Result<Writer> {
        let mut writer = Writer {
            header_high: 0,
            file,
            objects: Index::default(),
            buf: Vec::new(),
            stage: Stage::new(PAGE),
            space: Space::new(PAGE, PAGE),
            metadata: JsonObject::new(),
            extra: JsonObject::new(),
            generation: 0,
            header_len: 0,
            file_len: 0,
            dirty: false,
        };
        let generation = 1;
        writer.serialize(generation)?;
        let bytes = std::mem::take(&mut writer.buf);
        lock::with_header_lock(&writer.file, true, || {
            writer.file.write_all_at(&bytes, 0)?;
            writer.file.set_len(PAGE.max(bytes.len() as u64))?;
            Ok(())
        })?;
        writer.file.sync_data()?;
        writer.generation = generation;
        writer.header_len = bytes.len() as u64;
        writer.file_len = PAGE.max(bytes.len() as u64);
        Ok(writer)
    }

    /// A writer over the objects of a loaded header. `foreign` are the
    /// extents of arrays that are not objects: in use until the next commit.
    fn from_loaded(file: File, loaded: Loaded<Built>) -> Result<Writer> {
        // Refused before anything is written (a recovered header included):
        // a writer must be able to commit what it accepts.
        if loaded.header.generation >= MAX_WRITABLE_GENERATION {
            return Err(Error::Format(format!(
                "commit generation {} is too large for another commit",
                loaded.header.generation
            )));
        }
        let Built {
            objects,
            foreign,
            metadata,
            extra,
            generation,
            ..
        } = loaded.header;
        let foreign = &foreign;
        let mut header_len = PREFIX_LEN + loaded.json.len() as u64;
        // The header region: the header, and the rest of its page unless an
        // object starts there.
        let mut extents: Vec<(u64, u64)> = objects
            .values()
            .filter(|o| o.cap > 0)
            .map(|o| (o.offset, o.offset + o.cap))
            .chain(foreign.iter().copied())
            .collect();
        extents.sort_unstable();
        let first = extents.first().map_or(u64::MAX, |e| e.0);
        let floor = header_len.max(align_up(header_len, PAGE)?.min(first));
        let end = extents.iter().map(|e| e.1).max().unwrap_or(0).max(floor);
        // Readers open now may hold an older snapshot: what the header does
        // not reference may still be theirs (as far as this writer knows,
        // referenced by every commit before this one).
        let live = readers::live(&file, generation)?;
        let readers = !live.is_empty();
        // While readers are open the header at 0 must not get shorter (see
        // `commit`), across writer sessions too: start from what is there
        // (the header as loaded, padding included, or a longer torn one).
        let mut header_high = header_len;
        if readers {
            if let Some(at_zero) =
                format::claimed_header_len(&file, loaded.size)?.filter(|&l| l <= floor)
            {
                header_high = header_high.max(at_zero);
            }
        }
        if loaded.recovered {
            // The header at 0 is torn or older than the durable record:
            // finish that commit (padded as a commit would be).
            let mut bytes = format::prefix(loaded.json.len())?.to_vec();
            bytes.extend_from_slice(&loaded.json);
            pad_header(&mut bytes, header_high)?;
            lock::with_header_lock(&file, true, || Ok(file.write_all_at(&bytes, 0)?))?;
            file.sync_data()?;
            header_len = bytes.len() as u64;
        }
        let file_len = loaded.size;
        let mut space = Space::new(floor, if readers { end.max(file_len) } else { end });
        let mut at = floor;
        let mut gaps = Vec::new();
        for (s, e) in extents {
            if s > at {
                gaps.push((at, s));
            }
            at = at.max(e);
        }
        gaps.push((at, space.end()));
        for (s, e) in gaps {
            space.defer(s, e, 0, generation);
        }
        space.release_unseen(|born, died| live.sees(born, died));
        for &(s, e) in foreign {
            space.free_after_commit(s, e, 0);
        }
        Ok(Writer {
            header_high,
            file,
            objects,
            buf: Vec::new(),
            stage: Stage::new(space.end()),
            space,
            generation,
            metadata,
            extra,
            header_len,
            file_len,
            dirty: false,
        })
    }

    /// Writes the header of the current objects, as commit `generation`,
    /// into `self.buf`: 8 bytes for the prefix, then the JSON.
    fn serialize(&mut self, generation: u64) -> Result<()> {
        // libzmap's entry is rewritten at every commit, in place.
        let zmap = self
            .metadata
            .entry("zmap".into())
            .or_insert_with(|| Json::Object(JsonObject::new()));
        if !matches!(zmap, Json::Object(_)) {
            *zmap = Json::Object(JsonObject::new());
        }
        if let Json::Object(zmap) = zmap {
            zmap.insert("generation".into(), Json::from(generation));
            zmap.insert("revision".into(), Json::from(REVISION));
        }
        let arrays = self.objects.by_name();
        self.buf.clear();
        // About what an object's entry takes: no reallocations while the
        // header is written.
        self.buf.reserve(arrays.len().saturating_mul(96));
        self.buf.extend_from_slice(&[0; PREFIX_LEN as usize]);
        format::write_header(
            &mut self.buf,
            &self.metadata,
            &self.extra,
            arrays.iter().map(|&(name, o)| array_out(name, o)),
        )?;
        let prefix = format::prefix(self.buf.len() - PREFIX_LEN as usize)?;
        self.buf[..PREFIX_LEN as usize].copy_from_slice(&prefix);
        Ok(())
    }

    /// Gives an extent back: its committed part once the next commit is
    /// durable, the rest now.
    fn release(space: &mut Space, o: &Object) {
        if o.cap == 0 {
            return;
        }
        let committed = o.committed.min(o.cap);
        space.free_after_commit(o.offset, o.offset + committed, o.born);
        space.free(o.offset + committed, o.offset + o.cap);
    }

    /// Writes `data` at `at`: staged if it is short and may be, else to the
    /// file (after the staged bytes if it covers some of them).
    fn put(&mut self, data: &[u8], at: u64) -> Result<()> {
        if self.stage.put(data, at) {
            return Ok(());
        }
        let end = at + data.len() as u64;
        if !self.stage.is_empty()
            && ((data.len() as u64) < stage::PIECE || self.stage.overlaps(at, end))
        {
            // A short write the stage cannot take (full, or apart from it):
            // a new stage; a direct write over staged bytes: after them.
            self.write_out_stage()?;
            if self.stage.put(data, at) {
                return Ok(());
            }
        }
        self.file.write_all_at(data, at)?;
        self.file_len = self.file_len.max(end);
        self.stage.wrote_directly(end);
        writeback::start(&self.file, at, data.len());
        Ok(())
    }

    /// Writes the staged bytes to the file (one `pwrite`).
    fn write_out_stage(&mut self) -> Result<()> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let (at, bytes) = self.stage.staged();
        self.file.write_all_at(bytes, at)?;
        self.file_len = self.file_len.max(at + bytes.len() as u64);
        writeback::start(&self.file, at, bytes.len());
        self.stage.written_out();
        Ok(())
    }

    /// Reads the file's bytes at `at` as the writer sees them (staged ones
    /// included).
    fn fetch(&self, buf: &mut [u8], at: u64) -> Result<()> {
        for (s, e) in self.stage.read(buf, at) {
            if s < e {
                let part = &mut buf[(s - at) as usize..(e - at) as usize];
                // Large reads by several threads at once (copy.rs).
                super::copy::fill(part, |piece, off| {
                    FileExt::read_exact_at(&self.file, piece, s + off as u64)
                })?;
            }
        }
        Ok(())
    }

    /// Copies `len` bytes from `from` to `to` (non-overlapping).
    fn copy(&mut self, from: u64, to: u64, len: u64) -> Result<()> {
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            self.fetch(&mut buf[..n], from + done)?;
            self.put(&buf[..n], to + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Makes `[at, at + len)` read as zeros: a short range through the
    /// stage; else writes zeros over what the file holds there, and extends
    /// the file (sparsely) over the rest.
    fn zeros(&mut self, at: u64, len: u64) -> Result<()> {
        static ZEROS: [u8; stage::PIECE as usize] = [0; stage::PIECE as usize];
        if len < stage::PIECE {
            return self.put(&ZEROS[..len as usize], at);
        }
        let end = at + len;
        if self.stage.overlaps(at, end) {
            self.write_out_stage()?;
        }
        let written = end.min(self.file_len);
        if at < written {
            let zeros = vec![0u8; (written - at).min(CHUNK) as usize];
            let mut pos = at;
            while pos < written {
                let n = (written - pos).min(CHUNK) as usize;
                self.put(&zeros[..n], pos)?;
                pos += n as u64;
            }
        }
        if end > self.file_len {
            self.file.set_len(end)?;
            self.file_len = end;
        }
        self.stage.wrote_directly(end);
        Ok(())
    }

    /// Fills a new extent at `at` for `update`: the kept bytes of `old`,
    /// zeros, and `data` at `start`.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        old: &Object,
        at: u64,
        lo: u64,
        end: u64,
        zeros: [(u64, u64); 2],
        start: u64,
        data: &[u8],
    ) -> Result<()> {
        if lo > 0 {
            self.copy(old.offset, at, lo)?;
        }
        if end < old.len {
            self.copy(old.offset + end, at + end, old.len - end)?;
        }
        for (s, e) in zeros {
            if s < e {
                self.zeros(at + s, e - s)?;
            }
        }
        if !data.is_empty() {
            self.put(data, at + start)?;
        }
        Ok(())
    }

    /// Removes every object and all metadata (a clobbering create).
    fn clear(&mut self) {
        for o in self.objects.drain() {
            Writer::release(&mut self.space, &o);
        }
        self.metadata.clear();
        self.extra.clear();
        self.dirty = true;
    }

    fn object(&self, key: &Key) -> Result<&Object> {
        self.objects.get(key.as_str()).ok_or(Error::Empty)
    }

    /// An object the caller knows exists.
    fn object_at(&self, key: &str) -> Result<&Object> {
        self.objects
            .get(key)
            .ok_or(Error::Internal("object vanished"))
    }

    fn define(&mut self, key: &Key) -> Result<()> {
        if self.objects.contains(key.as_str()) {
            return Ok(());
        }
        self.objects.check_leaf(key.as_str())?;
        self.objects.insert(key.as_str(), Object::empty());
        self.dirty = true;
        Ok(())
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        let o = self.object(key)?;
        if start + buf.len() as u64 > o.len {
            return Err(Error::Edge);
        }
        self.fetch(buf, o.offset + start)
    }

    /// Sets the object's length to `new_len` and its bytes
    /// `[start, start + data.len())` to `data`; bytes past the old length
    /// that `data` does not cover become zeros. Writes in place when the
    /// bytes touched are not committed and fit (growing the extent into
    /// free space when possible), else moves the object to a new extent.
    fn update(&mut self, slot: u32, start: u64, data: &[u8], new_len: u64) -> Result<()> {
        let old = self
            .objects
            .at(slot)
            .cloned()
            .ok_or(Error::Internal("object vanished"))?;
        let end = start + data.len() as u64;
        let old_len = old.len;
        let lo = start.min(old_len);
        let zeros = [(old_len, start.min(new_len)), (end.max(old_len), new_len)];
        let mut next = old.clone();
        let mut in_place = old.cap > 0 && lo >= old.committed;
        if in_place && new_len > old.cap {
            // Last in the file: grow exactly, and again next time. Else ask
            // for spare room, to move less often.
            let want = if self.space.free_to_end(old.offset + old.cap) {
                capacity(new_len)?
            } else {
                capacity(grow_target(old_len, new_len))?
            };
            in_place = (want < PAGE || old.offset % PAGE == 0)
                && self.space.take(old.offset + old.cap, old.offset + want);
            if in_place {
                next.cap = want;
            }
        }
        if in_place {
            let mut result = Ok(());
            for (s, e) in zeros {
                if s < e && result.is_ok() {
                    result = self.zeros(old.offset + s, e - s);
                }
            }
            if !data.is_empty() && result.is_ok() {
                result = self.put(data, old.offset + start);
            }
            if let Err(e) = result {
                // The object keeps its length; capacity taken for it goes back.
                if next.cap > old.cap {
                    self.space.free(old.offset + old.cap, old.offset + next.cap);
                    self.space.trim();
                }
                return Err(e);
            }
        } else {
            let cap = capacity(grow_target(old_len, new_len))?;
            let at = self.space.alloc(cap, align_for(cap))?;
            if let Err(e) = self.fill(&old, at, lo, end, zeros, start, data) {
                self.space.free(at, at + cap);
                self.space.trim();
                return Err(e);
            }
            Writer::release(&mut self.space, &old);
            next.offset = at;
            next.cap = cap;
            next.committed = 0;
        }
        next.len = new_len;
        if new_len != old_len {
            next.layout = None;
        }
        *self
            .objects
            .at_mut(slot)
            .ok_or(Error::Internal("object vanished"))? = next;
        self.dirty = true;
        Ok(())
    }

    fn write_at(&mut self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        let end = start + data.len() as u64;
        if let Some(slot) = self.objects.slot(key.as_str()) {
            let len = self.objects.at(slot).map_or(0, |o| o.len);
            return self.update(slot, start, data, len.max(end));
        }
        let slot = self.objects.insert_new(key.as_str(), Object::empty())?;
        self.dirty = true;
        let result = self.update(slot, start, data, end);
        if result.is_err() {
            // A write that fails leaves no object behind.
            self.objects.remove(key.as_str());
        }
        result
    }

    fn truncate(&mut self, key: &Key, len: u64) -> Result<()> {
        let o = self.object(key)?.clone();
        if len == o.len {
            return Ok(());
        }
        if len > o.len {
            let slot = self
                .objects
                .slot(key.as_str())
                .ok_or(Error::Internal("object vanished"))?;
            return self.update(slot, o.len, &[], len);
        }
        let mut next = o.clone();
        next.len = len;
        next.layout = None;
        if len == 0 {
            Writer::release(&mut self.space, &o);
            next.offset = 0;
            next.cap = 0;
            next.committed = 0;
        } else {
            // Spare capacity past the committed bytes goes back.
            let keep = capacity(len)?.min(o.cap).max(o.committed.min(o.cap));
            if keep < o.cap {
                self.space.free(o.offset + keep, o.offset + o.cap);
                next.cap = keep;
            }
        }
        *self
            .objects
            .get_mut(key.as_str())
            .ok_or(Error::Internal("object vanished"))? = next;
        self.dirty = true;
        Ok(())
    }

    fn remove(&mut self, key: &Key) -> Result<()> {
        let o = self.objects.remove(key.as_str()).ok_or(Error::Empty)?;
        Writer::release(&mut self.space, &o);
        self.dirty = true;
        Ok(())
    }

    /// Grows the header region to hold `need` bytes, moving the objects
    /// that stand in the way to free space.
    fn grow_header_region(&mut self, need: u64) -> Result<()> {
        let floor = self.space.floor();
        let target = need
            .checked_add(need / 4)
            .ok_or(Error::Invalid("header too large"))?;
        let new_floor = align_up(target, PAGE)?.max(floor.saturating_mul(2));
        self.move_out_of_header_region(new_floor)
    }

    /// Makes `[0, new_floor)` the header region, moving the objects that lie
    /// there to free space. Their old bytes stay intact until the new header
    /// overwrites them, after the commit record that references their new
    /// places is durable.
    fn move_out_of_header_region(&mut self, new_floor: u64) -> Result<()> {
        self.space.raise_floor(new_floor);
        let movers: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, o)| o.cap > 0 && o.offset < new_floor)
            .map(|(k, _)| k.to_string())
            .collect();
        for key in movers {
            let o = self.object_at(&key)?.clone();
            let at = self.space.alloc(o.cap, align_for(o.cap))?;
            if let Err(e) = self.copy(o.offset, at, o.len) {
                self.space.free(at, at + o.cap);
                self.space.trim();
                return Err(e);
            }
            Writer::release(&mut self.space, &o);
            let moved = self
                .objects
                .get_mut(&key)
                .ok_or(Error::Internal("object vanished"))?;
            moved.offset = at;
            moved.committed = 0;
        }
        self.dirty = true;
        Ok(())
    }

    /// The generation of the next commit. Cannot overflow in practice: a
    /// writer starts below `MAX_WRITABLE_GENERATION`.
    fn next_generation(&self) -> Result<u64> {
        self.generation
            .checked_add(1)
            .ok_or(Error::Internal("generation overflow"))
    }

    /// Makes the current state the committed one (DESIGN.md, "Commit").
    fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return self.release_space_of_gone_readers();
        }
        let generation = self.next_generation()?;
        loop {
            self.serialize(generation)?;
            let need = self.buf.len() as u64;
            if need <= self.space.floor() {
                break;
            }
            self.grow_header_region(need)?;
        }
        // Everything written so far goes to the file before the record.
        self.write_out_stage()?;
        fault::point("before-copy");
        // 1. The commit record at the tail, durable with all data written:
        // the JSON and its trailer, written from the header buffer.
        let at = align_up(self.space.end(), 8)?;
        let json_len = self.buf.len() - PREFIX_LEN as usize;
        let trailer = format::trailer(&self.buf[PREFIX_LEN as usize..], generation);
        self.buf.extend_from_slice(&trailer);
        let record = &self.buf[PREFIX_LEN as usize..];
        if fault::armed("mid-copy") {
            self.file.write_all_at(&record[..record.len() / 2], at)?;
            self.file.sync_data()?;
            fault::crash("mid-copy");
        }
        self.file.write_all_at(record, at)?;
        let record_end = at + record.len() as u64;
        self.buf.truncate(PREFIX_LEN as usize + json_len);
        if self.file_len > record_end {
            // Openers read the file's length and tail under the header lock:
            // the file shrinks only while they cannot be reading it.
            lock::with_header_lock(&self.file, true, || Ok(self.file.set_len(record_end)?))?;
        }
        self.file_len = record_end;
        self.file.sync_data()?;
        // From here on a reopen finds this commit.
        self.generation = generation;
        for o in self.objects.values_mut() {
            if o.committed == 0 {
                // First referenced by this commit at this place.
                o.born = generation;
            }
            o.committed = o.committed.max(o.len);
        }
        fault::point("after-copy");
        fault::point("after-header-copy");
        // 2. The header at offset 0. While readers are open it never gets
        // shorter (trailing spaces, valid JSON): a reader refuses extents
        // below the live header's end, which must therefore not fall back
        // after a header grew over its snapshot (Reader::overwritten).
        let readers_now = lock::readers_present(&self.file)?;
        let padded;
        let bytes: &[u8] = if readers_now && (self.buf.len() as u64) < self.header_high {
            let mut grown = self.buf.clone();
            pad_header(&mut grown, self.header_high)?;
            padded = grown;
            &padded
        } else {
            &self.buf
        };
        self.header_high = if readers_now {
            self.header_high.max(bytes.len() as u64)
        } else {
            bytes.len() as u64
        };
        lock::with_header_lock(&self.file, true, || {
            if fault::armed("mid-header") {
                self.file.write_all_at(&bytes[..bytes.len() / 2], 0)?;
                self.file.sync_data()?;
                fault::crash("mid-header");
            }
            Ok(self.file.write_all_at(bytes, 0)?)
        })?;
        self.file.sync_data()?;
        fault::point("after-header");
        self.header_len = bytes.len() as u64;
        self.dirty = false;
        // 3. Space the previous header referenced is free unless a live
        // reader may still see it; the file ends at the page after the last
        // extent.
        let live = readers::live(&self.file, generation)?;
        self.release_unseen(&live, true);
        self.cut_to_end()?;
        // Nothing past the end is referenced by this commit or a reader.
        self.stage.reset(self.space.end());
        Ok(())
    }

    /// After the commit `self.generation` (`committed`: the pending space
    /// was referenced by the commit before it), or later: the space no
    /// reader in `live` sees becomes free (DESIGN.md, "Reader protocol"),
    /// and so do bytes an object lost by truncation.
    fn release_unseen(&mut self, live: &Readers, committed: bool) {
        let generation = self.generation;
        if live.is_empty() {
            for o in self.objects.values_mut() {
                o.committed = o.len;
            }
        } else {
            for o in self.objects.values_mut() {
                if o.committed > o.len && !live.sees(o.born, generation) {
                    o.committed = o.len;
                }
            }
        }
        let seen = |born, died| live.sees(born, died);
        if committed {
            self.space.committed(generation, seen);
        } else {
            self.space.release_unseen(seen);
        }
    }

    /// Cuts the file at the page after the last extent.
    fn cut_to_end(&mut self) -> Result<()> {
        self.space.trim();
        let size = align_up(self.space.end(), PAGE)?;
        if size != self.file_len {
            // Openers read the file's length and tail under the header lock.
            lock::with_header_lock(&self.file, true, || Ok(self.file.set_len(size)?))?;
            self.file_len = size;
        }
        Ok(())
    }

    /// A flush with nothing to commit: space held for readers that have
    /// left since is given back (the file may get shorter).
    fn release_space_of_gone_readers(&mut self) -> Result<()> {
        if !self.space.has_deferred() {
            return Ok(());
        }
        let live = readers::live(&self.file, self.generation)?;
        self.release_unseen(&live, false);
        if self.space.end() < self.file_len {
            self.cut_to_end()?;
        }
        Ok(())
    }

    /// Rewrites the file without holes (DESIGN.md, "Compaction").
    fn compact(&mut self) -> Result<(u64, u64)> {
        self.commit()?;
        let before = self.file.metadata()?.len();
        // What no live reader sees is free; what they see stays as it is
        // (DESIGN.md, "Reader protocol"): the plan works around it.
        let live = readers::live(&self.file, self.generation)?;
        self.release_unseen(&live, false);
        let pinned = !live.is_empty();
        // Spare capacity goes back; empty objects give up their extents (the
        // committed header gives them offset 0 already), bytes a reader may
        // still see once the others' readers are gone.
        for o in self.objects.values_mut() {
            let kept = o.committed.min(o.cap);
            if o.len == 0 {
                self.space
                    .defer(o.offset, o.offset + kept, o.born, self.generation);
                self.space.free(o.offset + kept, o.offset + o.cap);
                o.offset = 0;
                o.cap = 0;
                o.committed = 0;
            } else if o.cap > o.len.max(kept) {
                self.space
                    .free(o.offset + o.len.max(kept), o.offset + o.cap);
                o.cap = o.len.max(kept);
            }
        }
        self.space.trim();
        // The header region must hold every header written while compacting:
        // each offset may take as many digits as the largest one can have.
        self.serialize(self.next_generation()?)?;
        let json_len = self.buf.len() as u64 - PREFIX_LEN;
        let widest = digits(before.saturating_mul(3).saturating_add(CHUNK));
        let widening: u64 = self
            .objects
            .values()
            .filter(|o| o.len > 0)
            .map(|o| widest.saturating_sub(digits(o.offset)))
            .sum();
        let need = PREFIX_LEN + json_len + widening + 24;
        let min_floor = align_up(need, SMALL_ALIGN)?;
        // Room the header region may keep when that spares moving data.
        let max_floor = min_floor + (min_floor / 4).max(PAGE);
        let mut keys: Vec<String> = Vec::new();
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for (k, o) in self.objects.iter() {
            if o.len > 0 {
                keys.push(k.to_string());
                extents.push((o.offset, o.len));
            }
        }
        // Packed already, with a header region at most twice the least it
        // can be: nothing to do (and a second compaction does nothing).
        let floor = self.space.floor();
        if !(floor <= min_floor.saturating_mul(2) && packed(floor, &mut extents.clone())?) {
            let (floor, plan) = if pinned {
                // Offsets only fall: the header keeps fitting its region.
                (
                    floor,
                    compact::fill_from_top(&self.space, &extents, align_for),
                )
            } else {
                if min_floor > floor {
                    // Rare: the header may outgrow its region meanwhile.
                    self.move_out_of_header_region(min_floor)?;
                    self.commit()?;
                    for (i, k) in keys.iter().enumerate() {
                        extents[i].0 = self.object_at(k)?.offset;
                    }
                }
                self.choose_plan(&extents, min_floor, max_floor)?
            };
            // A plan that would not make the file smaller is not worth its
            // copies, and compaction must never make a file larger.
            if plan.rounds.is_empty() || align_up(plan.end, PAGE)? >= before {
                return Ok((before, self.file_len));
            }
            if floor < self.space.floor() {
                self.space.lower_floor(floor);
            } else {
                self.space.raise_floor(floor);
            }
            for (round, moves) in plan.rounds.iter().enumerate() {
                for &(i, to) in moves {
                    let o = self.object_at(&keys[i])?.clone();
                    if !self.space.take(to, to + o.len) {
                        // Only a reader that opened meanwhile and sees the
                        // old places keeps them: stop with everything
                        // committed, partly compacted.
                        self.commit()?;
                        if lock::readers_present(&self.file)? {
                            return Ok((before, self.file_len));
                        }
                        return Err(Error::Internal("compaction plan and free space disagree"));
                    }
                    self.relocate(&keys[i], &o, to)?;
                }
                self.commit()?;
                if round == 0 {
                    fault::point("compact-between");
                }
            }
        }
        self.space.trim();
        let size = align_up(self.space.end(), PAGE)?;
        if size < self.file_len {
            lock::with_header_lock(&self.file, true, || Ok(self.file.set_len(size)?))?;
            self.file_len = size;
        }
        Ok((before, self.file_len))
    }

    /// The cheapest compaction plan with a header region of `min_floor` to
    /// `max_floor` bytes (DESIGN.md, "Compaction"): the region ends where
    /// the objects already start, or where the gap the tightest plan could
    /// not close begins, or as low as it may.
    fn choose_plan(
        &self,
        extents: &[(u64, u64)],
        min_floor: u64,
        max_floor: u64,
    ) -> Result<(u64, compact::Plan)> {
        let commit_cost = self.header_len.saturating_mul(2).saturating_add(CHUNK);
        let plan_at = |floor: u64, order: compact::Order, low: bool, limit: compact::Limit| {
            let mut space = self.space.clone();
            if floor < space.floor() {
                space.lower_floor(floor);
            } else {
                space.raise_floor(floor);
            }
            let how = compact::How {
                order,
                park_low: low,
                commit_cost,
                align: align_for,
                limit,
            };
            compact::plan(&space, extents, floor, &how)
        };
        let orders = [
            compact::Order::Tail,
            compact::Order::Fill,
            compact::Order::Slide,
        ];
        // No object may lie below the header region's end.
        let first = extents.iter().map(|e| e.0).min().unwrap_or(u64::MAX);
        let max_floor = max_floor.min(first);
        // The region may end where the objects start already, or take the
        // gap a first round could not close in front of the first object
        // that stays; or it is as small as it can be.
        let mut floors = Vec::new();
        if (min_floor..=max_floor).contains(&first) && first % SMALL_ALIGN == 0 {
            floors.push(first);
        }
        let probe = compact::Limit {
            rounds: 1,
            cost: u64::MAX,
        };
        for order in orders {
            if let Ok(Some(plan)) = plan_at(min_floor, order, false, probe) {
                let shifted = align_up(min_floor + plan.first_residual, SMALL_ALIGN)?;
                if plan.first_residual > 0 && shifted <= max_floor && !floors.contains(&shifted) {
                    floors.push(shifted);
                }
            }
        }
        if !floors.contains(&min_floor) {
            floors.push(min_floor);
        }
        // The cheapest plan that never takes the data past the file's end;
        // if all do, the cheapest with growth counting four times. The
        // result's size counts too: a byte saved is worth copying
        // SIZE_WEIGHT bytes.
        let data: u64 = extents.iter().map(|e| e.1).sum();
        // Planning effort: this many dry-run rounds in all, the first plan
        // (the likely one) exempt. Every round is O(objects log objects).
        let mut rounds_left = usize::MAX;
        let budget = 64;
        let mut best: Option<((bool, u64), u64, compact::Plan)> = None;
        for &floor in &floors {
            for order in orders {
                for low in [false, true] {
                    if rounds_left == 0 {
                        break;
                    }
                    let limit = compact::Limit {
                        rounds: rounds_left,
                        // Only a plan that does not grow the file can be
                        // beaten by cost alone; this one ends at least as
                        // far as its data reaches.
                        cost: match &best {
                            Some(((false, cost), _, _)) => {
                                let least = align_up(floor + data, PAGE)?;
                                match cost.checked_sub(least.saturating_mul(SIZE_WEIGHT)) {
                                    Some(limit) => limit,
                                    None => continue,
                                }
                            }
                            _ => u64::MAX,
                        },
                    };
                    // A strategy that cannot finish leaves it to the others.
                    let plan = match plan_at(floor, order, low, limit) {
                        Ok(Some(plan)) => plan,
                        // Too dear: parking elsewhere would not make it cheap.
                        Ok(None) => break,
                        Err(Error::Internal(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    rounds_left = rounds_left.saturating_sub(plan.rounds.len());
                    if !plan.complete {
                        break;
                    }
                    let growth = plan.peak.saturating_sub(self.file_len);
                    let size = align_up(plan.end, PAGE)?;
                    let cost = (
                        growth > 0,
                        plan.cost(commit_cost)
                            .saturating_add(growth.saturating_mul(4))
                            .saturating_add(size.saturating_mul(SIZE_WEIGHT)),
                    );
                    let better = match &best {
                        Some(b) => cost < b.0,
                        None => true,
                    };
                    if best.is_none() {
                        rounds_left = budget;
                    }
                    if better {
                        best = Some((cost, floor, plan));
                    }
                    if growth == 0 {
                        // Parking low only helps a plan that grows the file.
                        break;
                    }
                }
            }
        }
        let (_, floor, plan) = best.ok_or(Error::Internal("no compaction plan"))?;
        Ok((floor, plan))
    }

    /// Copies object `key` (currently `o`) to `[at, at + len)`, which the
    /// caller has taken, with a tight capacity.
    fn relocate(&mut self, key: &str, o: &Object, at: u64) -> Result<()> {
        if let Err(e) = self.copy(o.offset, at, o.len) {
            self.space.free(at, at + o.len);
            self.space.trim();
            return Err(e);
        }
        Writer::release(&mut self.space, o);
        let moved = self
            .objects
            .get_mut(key)
            .ok_or(Error::Internal("object vanished"))?;
        moved.offset = at;
        moved.cap = o.len;
        moved.committed = 0;
        self.dirty = true;
        Ok(())
    }

    fn stats(&self) -> Vec<(String, String)> {
        let data: u64 = self.objects.values().map(|o| o.len).sum();
        vec![
            ("gnz generation".into(), self.generation.to_string()),
            ("gnz file bytes".into(), self.file_len.to_string()),
            ("gnz header bytes".into(), self.header_len.to_string()),
            ("gnz header region".into(), self.space.floor().to_string()),
            ("gnz objects".into(), self.objects.len().to_string()),
            ("gnz object bytes".into(), data.to_string()),
            ("gnz free bytes".into(), self.space.free_bytes().to_string()),
            (
                "gnz bytes awaiting commit".into(),
                self.space.waiting_bytes().to_string(),
            ),
            ("gnz uncommitted changes".into(), self.dirty.to_string()),
        ]
    }

    /// Checks the extents against each other, the free list and the file.
    fn verify(&self) -> Result<()> {
        let broken = |why: String| Err(Error::Format(why));
        let mut ranges: Vec<(u64, u64, &str)> = self
            .objects
            .iter()
            .filter(|(_, o)| o.cap > 0)
            .map(|(k, o)| (o.offset, o.offset + o.cap, k))
            .chain(self.space.free_ranges().map(|(s, e)| (s, e, "free space")))
            .collect();
        ranges.sort_unstable();
        let mut prev = (0, self.space.floor(), "the header region");
        for r in ranges {
            if r.0 < prev.1 {
                return broken(format!("{} overlaps {}", r.2, prev.2));
            }
            if r.1 > self.space.end() {
                return broken(format!("{} lies past the managed space", r.2));
            }
            prev = r;
        }
        for (k, o) in self.objects.iter() {
            if o.len > o.cap || o.committed > o.cap {
                return broken(format!("{k}: length or committed bytes exceed capacity"));
            }
        }
        if self.header_len > self.space.floor() {
            return broken("the header overflows its region".into());
        }
        let loaded = format::load(&self.file)?;
        if loaded.header.generation() != self.generation {
            return broken("the file's header is not the last commit".into());
        }
        if !self.dirty {
            let on_disk = format::load_with(&self.file, build)?.header.objects;
            for (k, o) in self.objects.iter() {
                match on_disk.get(k) {
                    Some(c) if c.len == o.len && (o.len == 0 || c.offset == o.offset) => {}
                    _ => return broken(format!("{k}: the header on disk disagrees")),
                }
            }
            if on_disk.len() != self.objects.len() {
                return broken("the header on disk lists other objects".into());
            }
        }
        Ok(())
    }
}

impl Store for GnzStore {
    fn refuses_writes(&self) -> bool {
        matches!(self.state, State::Reader(_))
    }

    fn warnings(&self) -> Vec<String> {
        match &self.state {
            State::Reader(r) => r.warning.iter().cloned().collect(),
            State::Writer(_) => Vec::new(),
        }
    }

    fn len(&self, key: &Key) -> Result<u64> {
        match &self.state {
            State::Reader(r) => r
                .objects
                .get(key.as_str())
                .map(|o| o.len)
                .ok_or(Error::Empty),
            State::Writer(w) => Ok(read(w).object(key)?.len),
        }
    }

    fn define(&self, key: &Key) -> Result<()> {
        self.writer()?.define(key)
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        match &self.state {
            State::Reader(r) => r.read_at(key, start, buf),
            State::Writer(w) => read(w).read_at(key, start, buf),
        }
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        self.writer()?.write_at(key, start, data)
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        Ok(match &self.state {
            State::Reader(r) => r.objects.children(prefix.as_str()),
            State::Writer(w) => read(w).objects.children(prefix.as_str()),
        })
    }

    fn each_child(&self, prefix: &Key, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        // One sorted set per intermediate key (store::tree): no copies.
        match &self.state {
            State::Reader(r) => r.objects.each_child(prefix.as_str(), each),
            State::Writer(w) => read(w).objects.each_child(prefix.as_str(), each),
        }
    }

    fn remove(&self, key: &Key) -> Result<()> {
        self.writer()?.remove(key)
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        self.writer()?.truncate(key, len)
    }

    fn flush(&self) -> Result<()> {
        match &self.state {
            State::Reader(_) => Ok(()),
            State::Writer(_) => self.writer()?.commit(),
        }
    }

    fn compact(&self) -> Result<(u64, u64)> {
        self.compact_file()
    }

    fn stats(&self) -> Vec<(String, String)> {
        match &self.state {
            State::Reader(r) => {
                let data: u64 = r.objects.values().map(|o| o.len).sum();
                let (holes, unreferenced) =
                    snapshot_gaps(&r.objects, r.header_len, r.map.len() as u64);
                vec![
                    ("gnz generation".into(), r.generation.to_string()),
                    ("gnz file bytes".into(), r.map.len().to_string()),
                    ("gnz header bytes".into(), r.header_len.to_string()),
                    ("gnz objects".into(), r.objects.len().to_string()),
                    ("gnz object bytes".into(), data.to_string()),
                    ("gnz holes".into(), holes.to_string()),
                    ("gnz unreferenced bytes".into(), unreferenced.to_string()),
                    ("gnz skipped arrays".into(), r.skipped.to_string()),
                ]
            }
            State::Writer(w) => read(w).stats(),
        }
    }

    fn next_data(&self, key: &Key, start: u64, end: u64) -> Result<Option<(u64, u64)>> {
        match &self.state {
            State::Reader(r) => r.next_data(key, start, end),
            // Staged bytes are not in the file yet: all data.
            State::Writer(w) => {
                let len = read(w).object(key)?.len;
                Ok((start < end.min(len)).then_some((start, end.min(len))))
            }
        }
    }

    fn verify(&self) -> Result<()> {
        match &self.state {
            State::Reader(r) => {
                // The file must still be a valid GNZ file (a writer may have
                // committed since; our snapshot stays readable regardless).
                lock::with_header_lock(&r.file, false, || format::load(&r.file)).map(|_| ())
            }
            State::Writer(w) => read(w).verify(),
        }
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        let GnzStore { place, state } = *self;
        if delete {
            // The file is removed while the map still holds it (and its
            // locks), by identity; uncommitted changes are dropped with it.
            // Renamed away or replaced by another file: nothing is removed,
            // and the dataset is no longer at its path (`Empty`).
            let removed = match &state {
                State::Reader(r) => place.remove(&r.file),
                State::Writer(w) => place.remove(&read(w).file),
            };
            drop(state);
            return match removed? {
                Removal::Removed | Removal::AlreadyGone => Ok(()),
                Removal::NotThere => Err(Error::Empty),
            };
        }
        match state {
            State::Reader(_) => Ok(()),
            State::Writer(w) => (*w)
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .commit(),
        }
    }
}

fn read(w: &RwLock<Writer>) -> RwLockReadGuard<'_, Writer> {
    w.read().unwrap_or_else(|e| e.into_inner())
}

/// Pads a header (`GNZ1`, length, JSON) with trailing spaces (still valid
/// JSON) to `len` bytes, fixing its length field; no-op if it is as long.
fn pad_header(header: &mut Vec<u8>, len: u64) -> Result<()> {
    if (header.len() as u64) >= len {
        return Ok(());
    }
    header.resize(len as usize, b' ');
    let prefix = format::prefix((len - PREFIX_LEN) as usize)?;
    header[..PREFIX_LEN as usize].copy_from_slice(&prefix);
    Ok(())
}
