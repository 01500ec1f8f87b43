//! The S3 `Store`: objects `root/a/b` for keys `/a/b` of a dataset at
//! `s3://bucket/root`, with a write-back buffer (see `buffer.rs`) and cheap
//! prefix/leaf checks (see `Known`).
//!
//! Requests per operation (N = number of pages of 1000 keys):
//!
//! | operation | requests |
//! |---|---|
//! | open | 1 LIST (max 4 keys): `NC_EEMPTY` when nothing is below `root/`; the sizes of the objects listed are kept |
//! | create, NOCLOBBER | 1 LIST (max 2 keys) |
//! | create, default | 1 LIST (one level, N); over a dataset also what close(delete) costs; over a prefix without a dataset marker at its top: `NC_EEXIST`, nothing deleted |
//! | len, exists | 1 HEAD; none for an object in the buffer, or whose size this map saw less than `SIZE_TTL` (100 ms) ago |
//! | read | 1 ranged GET, its body copied straight into the caller's buffer (+1 HEAD only when the GET fails, to tell `NC_EEDGE` from an error); none when buffered, or past the end of a size seen less than `SIZE_TTL` ago |
//! | search | 1 LIST with delimiter (N); the sizes of the objects listed are kept |
//! | write, define, truncate | none when buffered; else see `locate` below (no HEAD of a key whose size this map knows), and a GET of the old content when a partial write needs it |
//! | flush, close | 1 PUT per buffered object, or a multipart upload (start + 1 per 8 MiB part + complete) above 8 MiB |
//! | remove | 1 HEAD (unless buffered or its size known) + 1 DELETE, then 1 LIST (max 2 keys) per ancestor level, stopping at the first that still holds something, and 1 DELETE per emptied level (see `delete_dirs`); nothing for an object only ever buffered in a fresh prefix |
//! | close(delete) | 1 LIST (all keys, N) + 1 DeleteObjects per 1000 keys, + 1 DeleteObjects per depth of emptied directory keys |
//!
//! Servers built on a file tree (SeaweedFS) keep a directory after its last
//! object is deleted, and list it as a common prefix for minutes: this map
//! deletes the directories it empties (a no-op on S3 proper), and a probe
//! LIST ignores the marker such a server returns for an empty directory.
//! Empty directories left by other clients can still show up in a search.
//!
//! `locate` (a key not in the buffer, before it is written or defined):
//! - In a *fresh* prefix — one this map created, or found empty on the
//!   server, or that a search of its parent did not show, so that
//!   everything below it is what this map wrote (all of which it
//!   remembers) — no request at all, except a HEAD when the key is an
//!   object this map uploaded earlier (none when it knows its size). Nor for
//!   a key a search of its parent did not show.
//! - Elsewhere: 1 HEAD on the key; if it is new, for every ancestor not yet
//!   known to be an intermediate key, 1 HEAD (is it an object? then
//!   `NC_EINVAL`) and 1 LIST (max 2 keys) below it (anything there? if not,
//!   the ancestor becomes fresh), each once per map; then 1 LIST (max 2 keys)
//!   below the key itself (anything there → `NC_EINVAL`), skipped when an
//!   ancestor is fresh.
//!
//! So writing a new dataset costs no checks at all (create leaves the root
//! fresh), and adding `/var/0`, `/var/1`, ... to an existing dataset costs
//! 1 HEAD + 1 LIST for `/var` once, then 1 HEAD per new chunk (which must
//! be asked anyway: it may exist). The knowledge is bounded
//! (`KNOWN_LIMIT` keys): past it, it is dropped and checks ask the server
//! again. It assumes no other writer changes the dataset while this map is
//! open (which S3 could not make safe anyway).
//!
//! What a map remembers (and so how stale it may be). Another process may
//! change the dataset while a map is open; S3 gives no way to lock it, and
//! the other backends make no cross-process promises inside an open map
//! either. The rules:
//! - The map's own changes are always seen by it at once: its buffer comes
//!   first, and every upload, delete and truncate updates what it knows.
//! - Sizes (from HEAD, GET and LIST answers, and its own uploads) answer
//!   `len`, `exists` and reads past the end for `SIZE_TTL` (100 ms) after
//!   they were seen, like a file system's attribute cache: `exists` then
//!   `len` of one key is one HEAD, and the sizes the open's LIST found
//!   answer the first questions about the root metadata. After that the
//!   server is asked again. A key found missing is always asked again.
//! - The prefix/leaf knowledge (`Known`) and the sizes, for writes, stay
//!   for the map's lifetime: a write trusts them (see above).
//! - Searches always ask the server (plus the map's pending keys); what a
//!   search listed stays known to later writes (a name it did not show
//!   needs no HEAD or LIST, see `locate`).
//!
//! A size learned by a request sent without the map's lock is dropped if
//! the map changed the server meanwhile (`State::epoch`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload};

use super::buffer::{Buffer, Taken};
use super::client::{s3_error, Counters, Driver};
use super::content::{Content, PIECE};
use super::known::Known;
use super::url::S3Location;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{is_dataset_marker, OpenOptions, Store};

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 8 << 20;
/// Size of each part but the last (S3 wants at least 5 MiB).
const PART_SIZE: usize = 8 << 20;
const _: () = assert!(PART_SIZE.is_multiple_of(PIECE), "parts are whole pieces");
/// Objects uploaded at once by a flush.
const UPLOAD_CONCURRENCY: usize = 8;
/// Parts of one object uploaded at once.
const PART_CONCURRENCY: usize = 4;
/// S3's limit on object names (root and key together), in bytes.
const MAX_OBJECT_NAME: usize = 1024;
/// Keys asked for by the LIST that checks, at open, that the dataset is not
/// empty: the first keys of a dataset are usually its root metadata
/// (`.zattrs`, `.zgroup`, ...), whose sizes are then known.
const OPEN_PROBE_KEYS: usize = 4;

struct State {
    buffer: Buffer,
    known: Known,
    /// Counts this map's changes to the server (uploads, deletes): what a
    /// request made without the lock learned is kept only if none happened
    /// meanwhile.
    epoch: u64,
}

impl State {
    /// The length of `key` as this map knows it: pending in its buffer, or
    /// last seen on the server.
    fn known_len(&self, key: &str) -> Option<u64> {
        match self.buffer.get(key) {
            Some(content) => Some(content.len() as u64),
            None => self.known.recent_size(key),
        }
    }
}

/// Where a key not in the buffer stands, before a write.
enum Found {
    /// An object on the server, of this size.
    Object(u64),
    /// Not an object; it may become one (no prefix/leaf conflict).
    New,
}

pub struct S3Store {
    location: S3Location,
    driver: Driver,
    counters: Arc<Counters>,
    writable: bool,
    state: Mutex<State>,
}

impl S3Store {
    pub fn open(
        location: S3Location,
        counters: Arc<Counters>,
        options: OpenOptions,
        buffer_bytes: usize,
    ) -> Result<S3Store> {
        let driver = Driver::new(location.clone(), counters.clone())?;
        let store = S3Store {
            location,
            driver,
            counters,
            writable: options.writable,
            state: Mutex::new(State {
                buffer: Buffer::new(buffer_bytes),
                known: Known::default(),
                epoch: 0,
            }),
        };
        if options.create && !options.noclobber {
            store.clobber()?;
        } else {
            let (any, seen) = store.probe(&Key::root(), OPEN_PROBE_KEYS)?;
            let mut st = store.lock();
            for (key, size) in seen {
                st.known.note_size(&key, size);
            }
            drop(st);
            if !any {
                if !options.create {
                    return Err(Error::Empty);
                }
                store.lock().known.fresh.insert("/".to_string());
            }
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object name of `key` (`root/a/b`; the root key gives `root`).
    /// S3 limits whole object names to 1024 bytes, so on S3 a key may be at
    /// most 1024 bytes minus the root's length: a longer one is
    /// `Err(Invalid)` (before anything is sent).
    fn path(&self, key: &Key) -> Result<Path> {
        if !self.fits(key) {
            return Err(Error::Invalid(
                "key too long for S3: root + key exceed 1024 bytes",
            ));
        }
        Path::parse(format!("{}{}", self.location.root, key.as_str()))
            .map_err(|_| Error::Internal("a valid key made an invalid S3 path"))
    }

    /// True if `key`'s object name fits S3's 1024-byte limit.
    fn fits(&self, key: &Key) -> bool {
        self.location.root.len() + key.as_str().len() <= MAX_OBJECT_NAME
    }

    /// Runs one `object_store` call on this map's runtime.
    fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce(Arc<AmazonS3>) -> Fut,
        Fut: Future<Output = object_store::Result<T>> + Send,
    {
        let (result, denied) = self.driver.run(f)?;
        result.map_err(|e| if denied { Error::Auth } else { s3_error(e) })
    }

    fn head(&self, key: &Key) -> Result<u64> {
        let path = self.path(key)?;
        let meta = self.call(|s3| async move { s3.head(&path).await })?;
        Ok(meta.size)
    }

    /// Keeps the size of `key` seen by a request sent without the lock,
    /// unless this map changed the server since (`epoch`) or has `key` in
    /// its buffer.
    fn learned(&self, epoch: u64, key: &str, size: u64) {
        let mut st = self.lock();
        if st.epoch == epoch && !st.buffer.contains(key) {
            st.known.note_size(key, size);
        }
    }

    /// GETs `buf.len()` bytes of `key` at `start` straight into `buf`; the
    /// object's size. When the object ends before `start + buf.len()`, `buf`
    /// is left untouched (the caller tells `NC_EEDGE` by the size).
    fn fetch_into(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<u64> {
        let path = self.path(key)?;
        let end = start + buf.len() as u64;
        let outcome = self.call(|s3| async move {
            let options = GetOptions::new().with_range(Some(start..end));
            let result = s3.get_opts(&path, options).await?;
            let size = result.meta.size;
            if result.range != (start..end.min(size)) || end > size {
                return Ok((size, false, 0));
            }
            let mut filled = 0;
            let mut body = result.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                let Some(to) = buf.get_mut(filled..filled + chunk.len()) else {
                    return Ok((size, false, filled + chunk.len()));
                };
                to.copy_from_slice(&chunk);
                filled += chunk.len();
            }
            Ok((size, filled == buf.len(), filled))
        })?;
        match outcome {
            (size, _, _) if end > size => Ok(size),
            (size, true, _) => Ok(size),
            (size, false, got) => Err(Error::S3(format!(
                "short or mismatched response for {key}: asked bytes {:?} of {size}, got {got} bytes",
                start..end
            ))),
        }
    }

    /// True if some object lies below `key/` (one LIST of at most two keys).
    /// A server that keeps directories (SeaweedFS) answers this probe of an
    /// empty one with a marker object for `key/` itself, and on S3 a "folder"
    /// made by a console is such an object: it is not below, and it sorts
    /// first, hence the second key.
    fn any_below(&self, key: &Key) -> Result<bool> {
        Ok(self.probe(key, 2)?.0)
    }

    /// `any_below` with a page of up to `max_keys` keys (at least 2), and
    /// the keys and sizes of the objects on it.
    fn probe(&self, key: &Key, max_keys: usize) -> Result<(bool, Vec<(String, u64)>)> {
        let prefix = format!("{}/", self.path(key)?.as_ref());
        let asked = prefix.clone();
        let page = self.call(|s3| async move {
            let options = PaginatedListOptions {
                max_keys: Some(max_keys),
                ..Default::default()
            };
            s3.list_paginated(Some(&asked), options).await
        })?;
        let below = |p: &Path| p.as_ref().starts_with(&prefix) && p.as_ref().len() > prefix.len();
        let mut seen = Vec::new();
        for o in &page.result.objects {
            if below(&o.location) {
                let rel = &o.location.as_ref()[prefix.len() - 1..];
                let rel = if key.is_root() {
                    rel.to_string()
                } else {
                    format!("{}{rel}", key.as_str())
                };
                seen.push((rel, o.size));
            }
        }
        let any = !seen.is_empty() || page.result.common_prefixes.iter().any(below);
        Ok((any, seen))
    }

    /// GETs `range` of `key` (all of it for `None`): the object's size and
    /// the bytes, checked to be exactly what was asked for (clipped to the
    /// object's end).
    fn fetch(&self, key: &Key, range: Option<Range<u64>>) -> Result<(u64, Vec<u8>)> {
        let path = self.path(key)?;
        let asked = range.clone();
        let (size, got, bytes) = self.call(|s3| async move {
            let options = GetOptions::new().with_range(asked);
            let result = s3.get_opts(&path, options).await?;
            let size = result.meta.size;
            let got = result.range.clone();
            Ok((size, got, result.bytes().await?))
        })?;
        let expected = match range {
            Some(r) => r.start..r.end.min(size),
            None => 0..size,
        };
        if got != expected || bytes.len() as u64 != expected.end - expected.start {
            return Err(Error::S3(format!(
                "short or mismatched response for {}: asked bytes {:?} of {size}, got {} bytes",
                key,
                expected,
                bytes.len()
            )));
        }
        Ok((size, Vec::from(bytes)))
    }

    /// Create in default mode: an existing dataset is emptied; a prefix that
    /// holds objects but no dataset marker at its top is left alone
    /// (`NC_EEXIST`, as for a directory).
    fn clobber(&self) -> Result<()> {
        let path = self.path(&Key::root())?;
        let listing = self.call(|s3| async move { s3.list_with_delimiter(Some(&path)).await })?;
        let base = format!("{}/", self.location.root);
        let top: Vec<&str> = listing
            .objects
            .iter()
            .filter_map(|o| o.location.as_ref().strip_prefix(&base))
            .collect();
        if top.iter().any(|name| is_dataset_marker(name)) {
            self.delete_all()?;
        } else if !top.is_empty() {
            return Err(Error::Exists);
        } else if !listing.common_prefixes.is_empty() {
            if self.any_below(&Key::root())? {
                return Err(Error::Exists);
            }
            // Only empty directories, which some servers keep after their
            // objects are deleted: remove them so searches do not show them.
            self.prune_empty_tree()?;
        }
        let mut st = self.lock();
        st.known.forget();
        st.known.fresh.insert("/".to_string());
        Ok(())
    }

    /// Deletes every object below `root/` (and nothing else), a page of up
    /// to 1000 keys at a time, then the directories that held them (see
    /// `delete_dirs`).
    fn delete_all(&self) -> Result<()> {
        let prefix = format!("{}/", self.path(&Key::root())?.as_ref());
        let mut dirs = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let asked = prefix.clone();
            let page_token = token.clone();
            let page = self.call(|s3| async move {
                let options = PaginatedListOptions {
                    page_token,
                    ..Default::default()
                };
                s3.list_paginated(Some(&asked), options).await
            })?;
            let paths: Vec<Path> = page
                .result
                .objects
                .into_iter()
                .map(|o| o.location)
                .filter(|p| p.as_ref().starts_with(&prefix))
                .collect();
            for p in &paths {
                let rel = &p.as_ref()[prefix.len()..];
                for (i, _) in rel.match_indices('/') {
                    dirs.insert(format!("{prefix}{}", &rel[..i]));
                }
            }
            self.delete_paths(paths)?;
            match page.page_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                Some(_) => return Err(Error::S3("the server repeated a page token".into())),
                None => break,
            }
        }
        self.delete_dirs(dirs)
    }

    /// Bulk-deletes `paths` (missing ones are fine).
    fn delete_paths(&self, paths: Vec<Path>) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.call(|s3| async move {
            let stream = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
            let mut deleted = s3.delete_stream(stream);
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    /// Deletes the keys of emptied intermediate directories, deepest first.
    /// On S3 proper no such keys exist (a no-op); servers built on a file
    /// tree (SeaweedFS) otherwise keep the empty directories for minutes and
    /// list them as common prefixes. Such a server leaves a directory that is
    /// not empty alone.
    fn delete_dirs(&self, dirs: BTreeSet<String>) -> Result<()> {
        let mut by_depth: Vec<Vec<Path>> = Vec::new();
        for dir in dirs {
            let depth = dir.matches('/').count();
            if by_depth.len() <= depth {
                by_depth.resize_with(depth + 1, Vec::new);
            }
            let path =
                Path::parse(&dir).map_err(|_| Error::Internal("an invalid S3 directory path"))?;
            by_depth[depth].push(path);
        }
        for level in by_depth.into_iter().rev() {
            self.delete_paths(level)?;
        }
        Ok(())
    }

    /// Deletes the empty directories below `root/` of a server that keeps
    /// them (found level by level with delimiter listings). Only called when
    /// no object lies below `root/`.
    fn prune_empty_tree(&self) -> Result<()> {
        let mut dirs = BTreeSet::new();
        let mut pending = vec![self.path(&Key::root())?];
        while let Some(dir) = pending.pop() {
            let listing =
                self.call(|s3| async move { s3.list_with_delimiter(Some(&dir)).await })?;
            for p in listing.common_prefixes {
                if dirs.insert(p.as_ref().to_string()) {
                    pending.push(p);
                }
            }
        }
        self.delete_dirs(dirs)
    }

    /// After deleting `key`: deletes the directory key of each ancestor left
    /// with nothing below it, deepest first (see `delete_dirs`): 1 LIST per
    /// level, and 1 DELETE per emptied level.
    fn prune_ancestors(&self, st: &State, key: &Key) -> Result<()> {
        let ancestors: Vec<&str> = key.ancestors().collect();
        for a in ancestors.into_iter().rev() {
            if st.buffer.has_below(a) || !st.known.dirs.contains(a) {
                break;
            }
            let ancestor = Key::parse(a.as_bytes())?;
            if self.any_below(&ancestor)? {
                break;
            }
            let mut one = BTreeSet::new();
            one.insert(self.path(&ancestor)?.as_ref().to_string());
            self.delete_dirs(one)?;
        }
        Ok(())
    }

    /// Where `key` (not in the buffer) stands: an object, or a key that may
    /// become one. Prefix/leaf conflicts are `Err(Invalid)`.
    fn locate(&self, st: &mut State, key: &Key) -> Result<Found> {
        let k = key.as_str();
        if let Some(size) = st.known.size(k) {
            st.known.note_object(key);
            return Ok(Found::Object(size));
        }
        if !st.known.unseen(key) || st.known.objects.contains(k) {
            match self.head(key) {
                Ok(size) => {
                    st.known.note_object(key);
                    st.known.note_size(k, size);
                    return Ok(Found::Object(size));
                }
                Err(Error::Empty) => {
                    st.known.objects.remove(k);
                }
                Err(e) => return Err(e),
            }
        }
        self.check_ancestors(st, key)?;
        self.check_descendants(st, key)?;
        Ok(Found::New)
    }

    /// No proper ancestor of `key` may be an object.
    fn check_ancestors(&self, st: &mut State, key: &Key) -> Result<()> {
        for a in key.ancestors() {
            if st.buffer.contains(a) || st.known.objects.contains(a) {
                return Err(Error::BELOW_AN_OBJECT);
            }
            if st.known.dirs.contains(a) {
                continue;
            }
            let ancestor = Key::parse(a.as_bytes())?;
            if st.known.under_fresh(&ancestor) {
                // Only this map wrote there, and `a` is none of its objects.
                continue;
            }
            match st.known.listed(a) {
                Some(None) => {
                    // Listed as missing, and not written by this map since.
                    st.known.fresh.insert(a.to_string());
                    st.known.dirs.insert(a.to_string());
                    continue;
                }
                Some(Some(false)) => {
                    // Listed as a prefix only.
                    st.known.dirs.insert(a.to_string());
                    continue;
                }
                _ => {}
            }
            match self.head(&ancestor) {
                Ok(_) => {
                    st.known.note_object(&ancestor);
                    return Err(Error::BELOW_AN_OBJECT);
                }
                Err(Error::Empty) => {}
                Err(e) => return Err(e),
            }
            if !self.any_below(&ancestor)? {
                st.known.fresh.insert(a.to_string());
            }
            st.known.dirs.insert(a.to_string());
        }
        Ok(())
    }

    /// No object may lie below `key`.
    fn check_descendants(&self, st: &mut State, key: &Key) -> Result<()> {
        let k = key.as_str();
        if st.buffer.has_below(k) || st.known.has_object_below(k) {
            return Err(Error::PREFIX_OF_OBJECTS);
        }
        if st.known.unseen(key) || st.known.fresh.contains(k) {
            return Ok(());
        }
        if self.any_below(key)? {
            return Err(Error::PREFIX_OF_OBJECTS);
        }
        Ok(())
    }

    /// Puts `key` in the buffer (with its current content, unless the write
    /// `overwrite` = (start, len) replaces all of it) if it is not there.
    fn load(&self, st: &mut State, key: &Key, overwrite: Option<(u64, usize)>) -> Result<()> {
        if st.buffer.contains(key.as_str()) {
            return Ok(());
        }
        let content = match self.locate(st, key)? {
            Found::Object(size) => {
                let replaced =
                    overwrite.is_some_and(|(start, len)| start == 0 && len as u64 >= size);
                if size == 0 || replaced {
                    Vec::new()
                } else {
                    self.fetch(key, None)?.1
                }
            }
            Found::New => {
                st.known.note_ancestors(key);
                Vec::new()
            }
        };
        st.buffer.insert(key.as_str(), content);
        Ok(())
    }

    /// Uploads the oldest buffered objects while the buffer is over its bound.
    fn evict(&self, st: &mut State) -> Result<()> {
        while st.buffer.over_limit() {
            let Some(oldest) = st.buffer.take_oldest() else {
                break;
            };
            self.upload(st, vec![oldest])?;
        }
        Ok(())
    }

    /// Uploads `items` (at most `UPLOAD_CONCURRENCY` at once). Uploaded ones
    /// become known objects; failed ones go back into the buffer, and the
    /// first failure is returned.
    fn upload(&self, st: &mut State, items: Vec<Taken>) -> Result<()> {
        let mut jobs = Vec::with_capacity(items.len());
        for taken in items {
            let path = self.path(&Key::parse(taken.key.as_bytes())?)?;
            jobs.push((taken.key, taken.seq, path, taken.data.into_pieces()));
        }
        let (results, denied) = self.driver.run(|s3| async move {
            futures_util::stream::iter(jobs.into_iter().map(|(key, seq, path, data)| {
                let s3 = s3.clone();
                async move {
                    let result = put_object(&s3, &path, &data).await;
                    (key, seq, data, result)
                }
            }))
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
        })?;
        st.epoch += 1;
        let mut first_error = None;
        for (key, seq, data, result) in results {
            match result {
                Ok(()) => {
                    st.known.note_object(&Key::parse(key.as_bytes())?);
                    let size = data.iter().map(Bytes::len).sum::<usize>();
                    st.known.note_size(&key, size as u64);
                    Content::recycle(data);
                }
                Err(e) => {
                    // The server may hold the old object or the new one.
                    st.known.sizes.remove(&key);
                    st.buffer.restore(Taken {
                        key,
                        seq,
                        data: Content::from_pieces(data),
                    });
                    first_error.get_or_insert(if denied { Error::Auth } else { s3_error(e) });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One object, in one PUT or, above `MULTIPART_THRESHOLD`, a multipart
/// upload (aborted if a part fails).
async fn put_object(s3: &AmazonS3, path: &Path, pieces: &[Bytes]) -> object_store::Result<()> {
    let len: usize = pieces.iter().map(Bytes::len).sum();
    if len <= MULTIPART_THRESHOLD {
        s3.put(path, pieces.iter().cloned().collect::<PutPayload>())
            .await?;
        return Ok(());
    }
    let mut upload = s3.put_multipart(path).await?;
    // Whole pieces per part (PART_SIZE is a multiple of PIECE): no copies.
    let parts: Vec<_> = pieces
        .chunks(PART_SIZE / PIECE)
        .map(|part| upload.put_part(part.iter().cloned().collect::<PutPayload>()))
        .collect();
    let sent = futures_util::stream::iter(parts)
        .buffer_unordered(PART_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await;
    match sent {
        Ok(_) => upload.complete().await.map(|_| ()),
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

impl Store for S3Store {
    /// The map's requests so far (`zmap info`; the library never prints).
    fn stats(&self) -> Vec<(String, String)> {
        vec![("s3 requests".into(), self.counters.snapshot().to_string())]
    }

    fn len(&self, key: &Key) -> Result<u64> {
        if !self.fits(key) {
            return Err(Error::Empty);
        }
        let epoch = {
            let st = self.lock();
            if let Some(len) = st.known_len(key.as_str()) {
                return Ok(len);
            }
            st.epoch
        };
        let size = self.head(key)?;
        self.learned(epoch, key.as_str(), size);
        Ok(size)
    }

    fn define(&self, key: &Key) -> Result<()> {
        self.path(key)?;
        let mut st = self.lock();
        if st.buffer.contains(key.as_str()) {
            return Ok(());
        }
        if let Found::New = self.locate(&mut st, key)? {
            st.known.note_ancestors(key);
            st.buffer.insert(key.as_str(), Vec::new());
            self.evict(&mut st)?;
        }
        Ok(())
    }

    fn read_at(&self, key: &Key, start: u64, buf: &mut [u8]) -> Result<()> {
        if !self.fits(key) {
            return Err(Error::Empty);
        }
        let end = start + buf.len() as u64;
        let epoch = {
            let st = self.lock();
            if let Some(content) = st.buffer.get(key.as_str()) {
                let start = usize::try_from(start).map_err(|_| Error::Edge)?;
                if !content.read(start, buf) {
                    return Err(Error::Edge);
                }
                return Ok(());
            }
            if st
                .known
                .recent_size(key.as_str())
                .is_some_and(|size| end > size)
            {
                return Err(Error::Edge);
            }
            st.epoch
        };
        match self.fetch_into(key, start, buf) {
            Ok(size) => {
                self.learned(epoch, key.as_str(), size);
                if end > size {
                    Err(Error::Edge)
                } else {
                    Ok(())
                }
            }
            Err(Error::S3(why)) => {
                // A range the object does not have (416), or a server that
                // answered it oddly: past the end is NC_EEDGE.
                match self.head(key) {
                    Ok(size) if end > size => Err(Error::Edge),
                    Ok(_) => Err(Error::S3(why)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn write_at(&self, key: &Key, start: u64, data: &[u8]) -> Result<()> {
        self.path(key)?;
        let mut st = self.lock();
        let was_buffered = st.buffer.contains(key.as_str());
        self.load(&mut st, key, Some((start, data.len())))?;
        if let Err(e) = st.buffer.write(key.as_str(), start, data) {
            if !was_buffered {
                // Loaded for this write only: the server copy is unchanged.
                st.buffer.remove(key.as_str());
            }
            return Err(e);
        }
        self.evict(&mut st)
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        if !self.fits(prefix) {
            return Ok(Vec::new());
        }
        // The buffer first: an object uploaded meanwhile is then on the server.
        let (mut names, epoch) = {
            let st = self.lock();
            (st.buffer.children(prefix.as_str()), st.epoch)
        };
        let path = self.path(prefix)?;
        let base = format!("{}/", path.as_ref());
        let listing = self.call(|s3| async move { s3.list_with_delimiter(Some(&path)).await })?;
        {
            // What the listing shows: the names below `prefix`, and the
            // sizes of the objects among them.
            let mut st = self.lock();
            if st.epoch == epoch {
                let parent = if prefix.is_root() {
                    ""
                } else {
                    prefix.as_str()
                };
                let mut seen = HashMap::new();
                for p in &listing.common_prefixes {
                    if let Some(name) = p.as_ref().strip_prefix(&base) {
                        seen.insert(name.to_string(), false);
                    }
                }
                for o in &listing.objects {
                    if let Some(name) = o.location.as_ref().strip_prefix(&base) {
                        let key = format!("{parent}/{name}");
                        if !name.is_empty() && !name.contains('/') && !st.buffer.contains(&key) {
                            st.known.note_size(&key, o.size);
                        }
                        seen.insert(name.to_string(), true);
                    }
                }
                st.known.note_listing(prefix.as_str(), seen);
            }
        }
        let found = listing
            .common_prefixes
            .iter()
            .chain(listing.objects.iter().map(|o| &o.location))
            .filter_map(|p| p.as_ref().strip_prefix(&base))
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(str::to_string);
        names.extend(found);
        Ok(names)
    }

    fn remove(&self, key: &Key) -> Result<()> {
        if !self.fits(key) {
            return Err(Error::Empty);
        }
        let mut st = self.lock();
        let k = key.as_str();
        let buffered = st.buffer.remove(k);
        let maybe_uploaded =
            !st.known.unseen(key) || st.known.objects.contains(k) || st.known.sizes.contains_key(k);
        if maybe_uploaded {
            if !buffered && st.known.size(k).is_none() {
                self.head(key)?;
            }
            st.known.note_object(key);
            st.epoch += 1;
            st.known.sizes.remove(k);
            let path = self.path(key)?;
            match self.call(|s3| async move { s3.delete(&path).await }) {
                Ok(()) | Err(Error::Empty) => {}
                Err(e) => return Err(e),
            }
            st.known.objects.remove(k);
            self.prune_ancestors(&st, key)?;
        } else if !buffered {
            return Err(Error::Empty);
        }
        st.known.objects.remove(k);
        Ok(())
    }

    fn truncate(&self, key: &Key, len: u64) -> Result<()> {
        if !self.fits(key) {
            return Err(Error::Empty);
        }
        let mut st = self.lock();
        let k = key.as_str();
        if !st.buffer.contains(k) {
            let size = match st.known.size(k) {
                Some(size) => size,
                None => {
                    let size = self.head(key)?;
                    st.known.note_size(k, size);
                    size
                }
            };
            st.known.note_object(key);
            if len == size {
                return Ok(());
            }
            let keep = len.min(size);
            let content = if keep == 0 {
                Vec::new()
            } else {
                self.fetch(key, Some(0..keep))?.1
            };
            st.buffer.insert(k, content);
            if let Err(e) = st.buffer.truncate(k, len) {
                st.buffer.remove(k);
                return Err(e);
            }
        } else {
            st.buffer.truncate(k, len)?;
        }
        self.evict(&mut st)
    }

    fn flush(&self) -> Result<()> {
        let mut st = self.lock();
        let items = st.buffer.take_all();
        if items.is_empty() {
            return Ok(());
        }
        self.upload(&mut st, items)
    }

    fn close(self: Box<Self>, delete: bool) -> Result<()> {
        let result = if delete {
            self.lock().buffer.take_all();
            self.delete_all()
        } else if self.writable {
            self.flush()
        } else {
            Ok(())
        };
        // What could not be uploaded is reported, not retried by Drop.
        self.lock().buffer.take_all();
        result
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // A store dropped without close (Rust callers): upload what is left,
        // best effort.
        if self.writable && !self.lock().buffer.is_empty() {
            let _ = self.flush();
        }
    }
}
