//! The key tree of a dataset held in memory: objects by full key, and for
//! every intermediate key (the root `/` included) the sorted names of its
//! children.
//!
//! With it a read is one hash lookup, a one-level search iterates one sorted
//! set, and the leaf rules (no object at an intermediate key, none below an
//! object) cost a few lookups whatever the dataset's size.

use std::collections::{BTreeSet, HashMap};

/// foldhash: several times cheaper than the default SipHash on short keys
/// (three hashes per new object were the largest cost of a MEM create),
/// still seeded at random per process against collision flooding.
type Hasher = foldhash::fast::RandomState;

use crate::error::{Error, Result};

pub struct Tree<V> {
    objects: HashMap<Box<str>, V, Hasher>,
    /// Intermediate key -> names of its children. A key is never both an
    /// object and an intermediate key.
    dirs: HashMap<Box<str>, BTreeSet<Box<str>>, Hasher>,
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
    match key.rfind('/') {
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

    /// Adds a new object (checked with `check_leaf`, not present) and links
    /// it into the tree, making the intermediate keys it is the first object
    /// below.
    pub fn insert(&mut self, key: &str, value: V) {
        self.objects.insert(key.into(), value);
        let mut at = key;
        loop {
            let (parent, name) = split_parent(at);
            if let Some(children) = self.dirs.get_mut(parent) {
                children.insert(name.into());
                return;
            }
            self.dirs
                .insert(parent.into(), BTreeSet::from([name.into()]));
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
            children.remove(name);
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
            .map(|names| names.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }

    /// Calls `each` with the names of `children`, in order, without copying
    /// them; stops at the first error.
    pub fn each_child<E>(
        &self,
        prefix: &str,
        each: &mut dyn FnMut(&str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.dirs
            .get(prefix)
            .map_or(Ok(()), |names| names.iter().try_for_each(|n| each(n)))
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
