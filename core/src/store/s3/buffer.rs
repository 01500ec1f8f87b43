//! The write-back buffer of one S3 map: whole copies of the objects this map
//! has changed and not uploaded yet (each a `Content`, in 1 MiB pieces).
//!
//! S3 objects are immutable, so a partial write is a read-modify-write of the
//! whole object. Buffering makes a run of partial writes to one object cost
//! one upload (at flush, close, or when the buffer is full), instead of one
//! download + upload per write. Memory is bounded: after each change the
//! owner uploads the oldest entries while `over_limit()`.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::content::Content;
use crate::error::{Error, Result};

struct Entry {
    data: Content,
    /// Order of first buffering: the oldest entry is uploaded first.
    seq: u64,
}

/// An entry taken out for uploading; `Buffer::restore` puts it back in its
/// place if the upload fails.
pub struct Taken {
    pub key: String,
    pub data: Content,
    pub seq: u64,
}

pub struct Buffer {
    entries: BTreeMap<String, Entry>,
    order: BTreeMap<u64, String>,
    bytes: usize,
    limit: usize,
    next_seq: u64,
}

impl Buffer {
    pub fn new(limit: usize) -> Buffer {
        Buffer {
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            limit,
            next_seq: 0,
        }
    }

    /// Bytes held (sum of object lengths).
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn over_limit(&self) -> bool {
        self.bytes > self.limit
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&Content> {
        self.entries.get(key).map(|e| &e.data)
    }

    /// Buffers `data` as the whole content of `key` (replacing any entry).
    pub fn insert(&mut self, key: &str, data: Vec<u8>) {
        let data = Content::from_vec(data);
        self.remove(key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += data.len();
        self.order.insert(seq, key.to_string());
        self.entries.insert(key.to_string(), Entry { data, seq });
    }

    /// Writes `data` at `start` into the buffered object `key`, zero-filling
    /// a gap. `Err(Internal)` if `key` is not buffered.
    pub fn write(&mut self, key: &str, start: u64, data: &[u8]) -> Result<()> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(Error::Internal("write to an object not in the S3 buffer"))?;
        let start = usize::try_from(start).map_err(|_| Error::NoMem)?;
        let before = entry.data.len();
        entry.data.write(start, data)?;
        self.bytes += entry.data.len() - before;
        Ok(())
    }

    /// Cuts or zero-extends the buffered object `key` to `len`.
    pub fn truncate(&mut self, key: &str, len: u64) -> Result<()> {
        let entry = self.entries.get_mut(key).ok_or(Error::Internal(
            "truncate of an object not in the S3 buffer",
        ))?;
        let len = usize::try_from(len).map_err(|_| Error::NoMem)?;
        let before = entry.data.len();
        entry.data.truncate(len)?;
        self.bytes = self.bytes - before + len;
        Ok(())
    }

    /// Drops the entry for `key`; true if there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                self.order.remove(&entry.seq);
                self.bytes -= entry.data.len();
                true
            }
            None => false,
        }
    }

    /// Takes out the entry buffered first.
    pub fn take_oldest(&mut self) -> Option<Taken> {
        let key = self.order.values().next()?.clone();
        self.take(&key)
    }

    /// Takes out the entry for `key`.
    pub fn take(&mut self, key: &str) -> Option<Taken> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.seq);
        self.bytes -= entry.data.len();
        Some(Taken {
            key: key.to_string(),
            data: entry.data,
            seq: entry.seq,
        })
    }

    /// Takes out every entry, oldest first.
    pub fn take_all(&mut self) -> Vec<Taken> {
        let keys: Vec<String> = self.order.values().cloned().collect();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }

    /// Puts back an entry whose upload failed (unless `key` was buffered
    /// again meanwhile, which then wins).
    pub fn restore(&mut self, taken: Taken) {
        if self.entries.contains_key(&taken.key) {
            return;
        }
        self.bytes += taken.data.len();
        self.order.insert(taken.seq, taken.key.clone());
        self.entries.insert(
            taken.key,
            Entry {
                data: taken.data,
                seq: taken.seq,
            },
        );
    }

    /// True if some buffered key lies below `key` (`key/...`).
    pub fn has_below(&self, key: &str) -> bool {
        let below = format!("{key}/");
        self.entries
            .range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&below))
    }

    /// Names of the next level below `prefix` among buffered keys (`prefix`
    /// is canonical: `/` or `/a/b`).
    pub fn children(&self, prefix: &str) -> Vec<String> {
        let base = if prefix == "/" {
            "/".to_string()
        } else {
            format!("{prefix}/")
        };
        let mut names: Vec<String> = Vec::new();
        for (key, _) in self
            .entries
            .range::<str, _>((Bound::Included(base.as_str()), Bound::Unbounded))
        {
            let Some(rest) = key.strip_prefix(&base) else {
                break;
            };
            let name = rest.split('/').next().unwrap_or(rest);
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_string());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(c: &Content) -> Vec<u8> {
        let mut out = vec![0; c.len()];
        assert!(c.read(0, &mut out));
        out
    }

    #[test]
    fn writes_extend_and_zero_fill() {
        let mut b = Buffer::new(100);
        b.insert("/a", Vec::new());
        b.write("/a", 4, b"xy").unwrap();
        assert_eq!(bytes_of(b.get("/a").unwrap()), b"\0\0\0\0xy");
        b.write("/a", 0, b"ab").unwrap();
        assert_eq!(bytes_of(b.get("/a").unwrap()), b"ab\0\0xy");
        assert_eq!(b.bytes(), 6);
        b.truncate("/a", 3).unwrap();
        assert_eq!(bytes_of(b.get("/a").unwrap()), b"ab\0");
        b.truncate("/a", 5).unwrap();
        assert_eq!(bytes_of(b.get("/a").unwrap()), b"ab\0\0\0");
        assert_eq!(b.bytes(), 5);
        assert!(b.write("/missing", 0, b"x").is_err());
    }

    #[test]
    fn oldest_first_and_bounded() {
        let mut b = Buffer::new(10);
        b.insert("/x", vec![1; 4]);
        b.insert("/y", vec![2; 4]);
        assert!(!b.over_limit());
        b.write("/x", 4, &[1; 4]).unwrap();
        assert!(b.over_limit());
        let t = b.take_oldest().unwrap();
        assert_eq!(t.key, "/x");
        assert_eq!(b.bytes(), 4);
        assert!(!b.over_limit());
        b.insert("/z", vec![3]);
        b.restore(t);
        let order: Vec<String> = b.take_all().into_iter().map(|t| t.key).collect();
        assert_eq!(order, ["/x", "/y", "/z"]);
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn restore_does_not_clobber_newer_content() {
        let mut b = Buffer::new(10);
        b.insert("/k", vec![1]);
        let t = b.take("/k").unwrap();
        b.insert("/k", vec![2, 2]);
        b.restore(t);
        assert_eq!(bytes_of(b.get("/k").unwrap()), &[2, 2]);
        assert_eq!(b.bytes(), 2);
    }

    #[test]
    fn children_and_prefixes_are_segment_aware() {
        let mut b = Buffer::new(1000);
        for k in [
            "/data1/0",
            "/data1/1",
            "/data10/0",
            "/meta/.zarray",
            "/.nczarr",
        ] {
            b.insert(k, Vec::new());
        }
        assert_eq!(b.children("/"), [".nczarr", "data1", "data10", "meta"]);
        assert_eq!(b.children("/data1"), ["0", "1"]);
        assert!(b.children("/data").is_empty());
        assert!(b.has_below("/data1"));
        assert!(!b.has_below("/data"));
        assert!(!b.has_below("/data1/0"));
        assert!(b.remove("/data1/0"));
        assert!(!b.remove("/data1/0"));
    }
}
