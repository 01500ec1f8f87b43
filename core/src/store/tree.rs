//! The key tree of a dataset held in memory: objects by full key, and for
//! every intermediate key (the root `/` included) the sorted names of its
//! children.
//!
//! With it a read is one hash lookup, a one-level search iterates one sorted
//! set, and the leaf rules (no object at an intermediate key, none below an
//! object) cost a few lookups whatever the dataset's size.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// foldhash: several times cheaper than the default SipHash on short keys
/// (three hashes per new object were the largest cost of a MEM create),
/// still seeded at random per process against collision flooding.
type Hasher = foldhash::fast::RandomState;

use crate::error::{Error, Result};

/// The name of a child in its parent's sorted set, without an allocation
/// when it is 16 bytes or shorter (nearly every name: `c.1234`, `.zarray`).
///
/// Ordered bytewise, mostly by one integer comparison: `head` is the first
/// 16 bytes as a big-endian number, zero-padded. Names hold no NUL byte
/// (keys have no control character), so a shorter name's padding orders it
/// before any longer name it is a prefix of, as bytewise order does, and
/// two names of at most 16 bytes are equal exactly when their heads are.
#[derive(PartialEq, Eq)]
struct Name {
    head: u128,
    /// The whole name, when it is longer than 16 bytes.
    long: Option<Box<str>>,
}

impl Name {
    fn new(name: &str) -> Name {
        let bytes = name.as_bytes();
        let mut head = [0u8; 16];
        let n = bytes.len().min(16);
        head[..n].copy_from_slice(&bytes[..n]);
        Name {
            head: u128::from_be_bytes(head),
            long: (bytes.len() > 16).then(|| name.into()),
        }
    }

    /// Calls `f` with the name's text.
    #[inline(always)]
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.long {
            Some(long) => f(long),
            None => {
                let bytes = self.head.to_be_bytes();
                let len = 16 - (self.head.trailing_zeros() / 8) as usize;
                // SAFETY: a name of at most 16 bytes is all in `head`, and
                // `new` took those bytes from a whole `&str`: the first
                // `len` bytes (the rest is padding, names hold no NUL) are
                // that `str`'s bytes, valid UTF-8. (Checking them again
                // cost every listed name of a search ~100 instructions.)
                f(unsafe { std::str::from_utf8_unchecked(&bytes[..len]) })
            }
        }
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.head.cmp(&other.head).then_with(|| {
            // Equal first 16 bytes: the longer name is the greater, two
            // long names compare by their whole text.
            match (&self.long, &other.long) {
                (Some(a), Some(b)) => a.cmp(b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            }
        })
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub struct Tree<V> {
    objects: HashMap<Box<str>, V, Hasher>,
    /// Intermediate key -> names of its children. A key is never both an
    /// object and an intermediate key.
    dirs: HashMap<Box<str>, BTreeSet<Name>, Hasher>,
}

impl<V> Default for Tree<V> {
    fn default() -> Self {
        Tree {
            objects: HashMap::default(),
            dirs: HashMap::default(),
        }
    }
}

/// `/a/b/c` -> (`/a/b`, `c`); `/a` -> (`/`, `a`).
fn split_parent(key: &str) -> (&str, &str) {
    // A plain loop: names are short, and `rfind`'s memrchr cost ~80
    // instructions a call (two calls per new object).
    match key.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(0) | None => ("/", &key[1..]),
        Some(i) => (&key[..i], &key[i + 1..]),
    }
}

impl<V> Tree<V> {
    pub fn clear(&mut self) {
        self.objects.clear();
        self.dirs.clear();
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.objects.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.objects.get_mut(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// Every object, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.objects.iter().map(|(k, v)| (&**k, v))
    }

    /// Refuses a new object at `key` if `key` is an intermediate key or
    /// lies below an object.
    pub fn check_leaf(&self, key: &str) -> Result<()> {
        if self.dirs.contains_key(key) {
            return Err(Error::Invalid("key is a prefix of existing objects"));
        }
        // Up from the parent until an intermediate key: everything above
        // one is an intermediate key too, so no object.
        let mut at = key;
        loop {
            let (parent, _) = split_parent(at);
            if parent == "/" || self.dirs.contains_key(parent) {
                return Ok(());
            }
            if self.objects.contains_key(parent) {
                return Err(Error::Invalid("key lies below an existing object"));
            }
            at = parent;
        }
    }

    /// Adds a new object at `key` (not present) if the leaf rules allow it
    /// (`check_leaf`), else gives their error and changes nothing. One
    /// lookup of the parent when it is already an intermediate key (the
    /// usual case) instead of `check_leaf`'s and `insert`'s two.
    pub fn insert_new(&mut self, key: &str, value: V) -> Result<()> {
        if self.dirs.contains_key(key) {
            return Err(Error::Invalid("key is a prefix of existing objects"));
        }
        let (parent, name) = split_parent(key);
        if let Some(children) = self.dirs.get_mut(parent) {
            children.insert(Name::new(name));
            self.objects.insert(key.into(), value);
            return Ok(());
        }
        self.check_leaf(key)?;
        self.insert(key, value);
        Ok(())
    }

    /// Adds a new object (checked with `check_leaf`, not present) and links
    /// it into the tree, making the intermediate keys it is the first object
    /// below.
    pub fn insert(&mut self, key: &str, value: V) {
        self.objects.insert(key.into(), value);
        let mut at = key;
        loop {
            let (parent, name) = split_parent(at);
            if let Some(children) = self.dirs.get_mut(parent) {
                children.insert(Name::new(name));
                return;
            }
            self.dirs
                .insert(parent.into(), BTreeSet::from([Name::new(name)]));
            if parent == "/" {
                return;
            }
            at = parent;
        }
    }

    /// Removes an object, dropping the intermediate keys left empty.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let value = self.objects.remove(key)?;
        let mut at = key;
        loop {
            let (parent, name) = split_parent(at);
            let Some(children) = self.dirs.get_mut(parent) else {
                break;
            };
            children.remove(&Name::new(name));
            if !children.is_empty() || parent == "/" {
                break;
            }
            self.dirs.remove(parent);
            at = parent;
        }
        Some(value)
    }

    /// The names of the next level below `prefix` (`/` for the root), sorted.
    pub fn children(&self, prefix: &str) -> Vec<String> {
        self.dirs
            .get(prefix)
            .map(|names| names.iter().map(|n| n.with_str(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// Calls `each` with the names of `children`, in order, without copying
    /// them; stops at the first error.
    pub fn each_child<E>(
        &self,
        prefix: &str,
        each: &mut dyn FnMut(&str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if let Some(names) = self.dirs.get(prefix) {
            for name in names {
                name.with_str(&mut *each)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(keys: &[&str]) -> Tree<u32> {
        let mut t = Tree::default();
        for (i, k) in keys.iter().enumerate() {
            t.check_leaf(k).unwrap();
            t.insert(k, i as u32);
        }
        t
    }

    #[test]
    fn children_are_sorted_one_level() {
        let t = tree(&["/b/x", "/a.1", "/a/c/d", "/a/b", "/.z"]);
        assert_eq!(t.children("/"), [".z", "a", "a.1", "b"]);
        assert_eq!(t.children("/a"), ["b", "c"]);
        assert_eq!(t.children("/a/c"), ["d"]);
        assert!(t.children("/a/b").is_empty());
        assert!(t.children("/nope").is_empty());
    }

    #[test]
    fn names_sort_bytewise_across_the_16_byte_head() {
        let names = [
            "a",
            "ab",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopqr",
            "abcdefghijklmnopr",
            "abcdefghijklmnoq",
            "b",
            "données",
            "z\u{10ffff}0123456789abcdef",
            "z\u{10ffff}0123456789abcdeg",
        ];
        let keys: Vec<String> = names.iter().rev().map(|n| format!("/d/{n}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut t = tree(&refs);
        assert_eq!(t.children("/d"), names);
        let mut seen = Vec::new();
        t.each_child("/d", &mut |n| {
            seen.push(n.to_string());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, names);
        // Removal finds short and long names alike.
        for k in &keys {
            assert!(t.remove(k).is_some());
        }
        assert!(t.is_empty());
        assert!(t.children("/").is_empty());
    }

    #[test]
    fn insert_new_applies_the_leaf_rules() {
        let mut t = tree(&["/a/b", "/c"]);
        assert!(t.insert_new("/a", 9).is_err());
        assert!(t.insert_new("/a/b/c", 9).is_err());
        assert!(t.insert_new("/c/d/e", 9).is_err());
        assert_eq!(t.len(), 2);
        t.insert_new("/a/x", 9).unwrap();
        t.insert_new("/d/e/f", 9).unwrap();
        assert_eq!(t.children("/a"), ["b", "x"]);
        assert_eq!(t.children("/"), ["a", "c", "d"]);
        assert_eq!(t.children("/d/e"), ["f"]);
        assert_eq!(t.get("/d/e/f"), Some(&9));
    }

    #[test]
    fn leaf_rules() {
        let t = tree(&["/a/b", "/c"]);
        assert!(t.check_leaf("/a").is_err());
        assert!(t.check_leaf("/a/b/c").is_err());
        assert!(t.check_leaf("/c/d/e").is_err());
        assert!(t.check_leaf("/a/x").is_ok());
        assert!(t.check_leaf("/d/e/f").is_ok());
    }

    #[test]
    fn remove_prunes_empty_levels() {
        let mut t = tree(&["/a/b/c", "/a/d"]);
        assert_eq!(t.remove("/a/b/c"), Some(0));
        assert_eq!(t.children("/a"), ["d"]);
        assert!(t.check_leaf("/a/b").is_ok());
        assert_eq!(t.remove("/a/d"), Some(1));
        assert!(t.children("/").is_empty());
        assert!(t.is_empty());
        assert_eq!(t.remove("/a/d"), None);
    }
}
