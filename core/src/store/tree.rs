//! The key tree of a dataset held in memory: objects by full key, and for
//! every intermediate key (the root `/` included) the sorted names of its
//! children.
//!
//! With it a read is one hash lookup, a one-level search iterates one sorted
//! set, and the leaf rules (no object at an intermediate key, none below an
//! object) cost a few lookups whatever the dataset's size.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::pages::HugePages;

/// foldhash: several times cheaper than the default SipHash on short keys
/// (three hashes per new object were the largest cost of a MEM create),
/// still seeded at random per process against collision flooding.
type Hasher = foldhash::fast::RandomState;

use crate::error::{Error, Result};

/// The first 16 bytes of a name as a big-endian number, zero-padded.
///
/// Names hold no NUL byte (keys have no control character), so ordering
/// heads orders names bytewise as far as their first 16 bytes go: a
/// shorter name's padding puts it before any longer name it is a prefix
/// of, and two names of at most 16 bytes are equal exactly when their
/// heads are.
pub(crate) fn head(name: &str) -> u128 {
    let bytes = name.as_bytes();
    let mut head = [0u8; 16];
    let n = bytes.len().min(16);
    head[..n].copy_from_slice(&bytes[..n]);
    u128::from_be_bytes(head)
}

/// The names of an intermediate key's children, sorted bytewise.
///
/// Names of at most 16 bytes (nearly every one: `c.1234`, `.zarray`) are
/// kept as their heads, without an allocation, in a set ordered by plain
/// integer comparisons (the B-tree search of a new name was the largest
/// cost of a MEM create with `(head, Option<Box<str>>)` names); longer
/// names are kept whole in a second set, and listing merges the two.
#[derive(Default)]
struct Children {
    short: BTreeSet<u128>,
    long: BTreeSet<Box<str>>,
}

impl Children {
    fn one(name: &str) -> Children {
        let mut children = Children::default();
        children.insert(name);
        children
    }

    fn insert(&mut self, name: &str) {
        if name.len() <= 16 {
            self.short.insert(head(name));
        } else {
            self.long.insert(name.into());
        }
    }

    fn remove(&mut self, name: &str) {
        if name.len() <= 16 {
            self.short.remove(&head(name));
        } else {
            self.long.remove(name);
        }
    }

    fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    /// Calls `f` with every name, in bytewise order; stops at the first
    /// error.
    fn each<E>(
        &self,
        mut f: impl FnMut(&str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if self.long.is_empty() {
            // The usual case: no merge.
            return self.short.iter().try_for_each(|&h| short_name(h, &mut f));
        }
        let mut long = self.long.iter().peekable();
        for &h in &self.short {
            // Long names before this one: a smaller head (a long name
            // whose head equals `h` has `h`'s name as its prefix: after).
            while let Some(l) = long.next_if(|l| head(l) < h) {
                f(l)?;
            }
            short_name(h, &mut f)?;
        }
        long.try_for_each(|l| f(l))
    }
}

/// Calls `f` with the name whose head is `h` (a name of at most 16 bytes).
#[inline(always)]
fn short_name<R>(h: u128, f: impl FnOnce(&str) -> R) -> R {
    let bytes = h.to_be_bytes();
    let len = 16 - (h.trailing_zeros() / 8) as usize;
    // SAFETY: a name of at most 16 bytes is all in its head, and
    // `Children::insert` took those bytes from a whole `&str`: the first
    // `len` bytes (the rest is padding, names hold no NUL) are that
    // `str`'s bytes, valid UTF-8. (Checking them again cost every listed
    // name of a search ~100 instructions.)
    f(unsafe { std::str::from_utf8_unchecked(&bytes[..len]) })
}

/// A key as the table keeps it: up to 30 bytes in place (nearly every key:
/// `/g0/v12/c.1234`, `/var/.zarray`), longer ones boxed. A new object then
/// costs no allocation for its key.
enum Text {
    Short { len: u8, bytes: [u8; 30] },
    Long(Box<str>),
}

impl Text {
    fn new(key: &str) -> Text {
        let b = key.as_bytes();
        if b.len() <= 30 {
            let mut bytes = [0u8; 30];
            bytes[..b.len()].copy_from_slice(b);
            Text::Short {
                len: b.len() as u8,
                bytes,
            }
        } else {
            Text::Long(key.into())
        }
    }

    #[inline(always)]
    fn as_str(&self) -> &str {
        match self {
            // SAFETY: `new` copied the first `len` bytes from a whole
            // `&str`: valid UTF-8.
            Text::Short { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..*len as usize])
            },
            Text::Long(s) => s,
        }
    }
}

/// What is at a key: an object, or an intermediate key with its children.
/// The children are boxed: intermediate keys are few, and a smaller entry
/// makes the whole table smaller (88 -> 48 bytes an entry for a GNZ index).
enum Node<V> {
    Object(V),
    Dir(Box<Children>),
}

struct Entry<V> {
    key: Text,
    node: Node<V>,
}

/// Objects and intermediate keys in one hash table (a key is never both):
/// a new object is one hash of its key and one lookup of its parent.
pub struct Tree<V> {
    table: HashTable<Entry<V>, HugePages>,
    hasher: Hasher,
    /// How many entries are objects.
    objects: usize,
}

impl<V> Default for Tree<V> {
    fn default() -> Self {
        Tree {
            table: HashTable::new_in(HugePages),
            hasher: Hasher::default(),
            objects: 0,
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

/// A key `Tree::entry` did not find: `insert` adds it under the leaf rules
/// without hashing it again.
pub struct Vacant<'t, 'k, V> {
    tree: &'t mut Tree<V>,
    key: &'k str,
    hash: u64,
}

impl<'t, V> Vacant<'t, '_, V> {
    /// Adds the object if the leaf rules allow it (`Tree::insert_new`);
    /// gives the value's place in the tree.
    pub fn insert(self, value: V) -> Result<&'t mut V> {
        let (parent, name) = split_parent(self.key);
        let tree = self.tree;
        let ph = tree.hash(parent);
        match tree.table.find_mut(ph, |e| e.key.as_str() == parent) {
            Some(Entry {
                node: Node::Dir(children),
                ..
            }) => {
                children.insert(name);
            }
            // The parent is an object (refused), or missing: the slow path.
            _ => {
                tree.check_leaf_above(self.key)?;
                tree.link(self.key);
            }
        }
        Ok(tree.add_object(self.hash, self.key, value))
    }
}

/// What `Tree::entry` found at a key.
pub enum Slot<'t, 'k, V> {
    Object(&'t mut V),
    /// An intermediate key: no object may be made there.
    Dir,
    Vacant(Vacant<'t, 'k, V>),
}

impl<V> Tree<V> {
    #[inline(always)]
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline(always)]
    fn find(&self, key: &str) -> Option<&Node<V>> {
        self.table
            .find(self.hash(key), |e| e.key.as_str() == key)
            .map(|e| &e.node)
    }

    fn is_dir(&self, key: &str) -> bool {
        matches!(self.find(key), Some(Node::Dir(_)))
    }

    /// Adds an object entry whose hash is `hash` (the key is not present).
    fn add_object(&mut self, hash: u64, key: &str, value: V) -> &mut V {
        self.objects += 1;
        let hasher = &self.hasher;
        let entry = self
            .table
            .insert_unique(
                hash,
                Entry {
                    key: Text::new(key),
                    node: Node::Object(value),
                },
                |e| hasher.hash_one(e.key.as_str()),
            )
            .into_mut();
        match &mut entry.node {
            Node::Object(v) => v,
            Node::Dir(_) => unreachable!("an object entry was just made"),
        }
    }

    pub fn clear(&mut self) {
        self.table.clear();
        self.objects = 0;
    }

    pub fn len(&self) -> usize {
        self.objects
    }

    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    #[inline]
    pub fn get(&self, key: &str) -> Option<&V> {
        match self.find(key)? {
            Node::Object(v) => Some(v),
            Node::Dir(_) => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let hash = self.hash(key);
        match &mut self.table.find_mut(hash, |e| e.key.as_str() == key)?.node {
            Node::Object(v) => Some(v),
            Node::Dir(_) => None,
        }
    }

    /// The object at `key`, or what stands there instead, with one hash of
    /// the key (a write that creates the object does not hash it again).
    pub fn entry<'t, 'k>(&'t mut self, key: &'k str) -> Slot<'t, 'k, V> {
        let hash = self.hash(key);
        match self
            .table
            .find_bucket_index(hash, |e| e.key.as_str() == key)
        {
            Some(index) => match self.table.get_bucket_mut(index).map(|e| &mut e.node) {
                Some(Node::Object(v)) => Slot::Object(v),
                _ => Slot::Dir,
            },
            None => Slot::Vacant(Vacant {
                tree: self,
                key,
                hash,
            }),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        matches!(self.find(key), Some(Node::Object(_)))
    }

    /// Every object, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.table.iter().filter_map(|e| match &e.node {
            Node::Object(v) => Some((e.key.as_str(), v)),
            Node::Dir(_) => None,
        })
    }

    /// Every object's value, in no particular order (the same order each
    /// time while the tree is unchanged).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.table.iter_mut().filter_map(|e| match &mut e.node {
            Node::Object(v) => Some(v),
            Node::Dir(_) => None,
        })
    }

    /// Refuses a new object at `key` if `key` is an intermediate key or
    /// lies below an object.
    pub fn check_leaf(&self, key: &str) -> Result<()> {
        if self.is_dir(key) {
            return Err(Error::PREFIX_OF_OBJECTS);
        }
        self.check_leaf_above(key)
    }

    /// `check_leaf`'s rule for the keys above `key`: none is an object.
    fn check_leaf_above(&self, key: &str) -> Result<()> {
        // Up from the parent until an intermediate key: everything above
        // one is an intermediate key too, so no object.
        let mut at = key;
        loop {
            let (parent, _) = split_parent(at);
            if parent == "/" {
                return Ok(());
            }
            match self.find(parent) {
                Some(Node::Dir(_)) => return Ok(()),
                Some(Node::Object(_)) => return Err(Error::BELOW_AN_OBJECT),
                None => at = parent,
            }
        }
    }

    /// Adds a new object at `key` (not present) if the leaf rules allow it
    /// (`check_leaf`), else gives their error and changes nothing. One
    /// lookup of the parent when it is already an intermediate key (the
    /// usual case).
    pub fn insert_new(&mut self, key: &str, value: V) -> Result<()> {
        match self.entry(key) {
            Slot::Vacant(vacant) => vacant.insert(value).map(|_| ()),
            Slot::Dir => Err(Error::PREFIX_OF_OBJECTS),
            Slot::Object(_) => Err(Error::Internal("object already present")),
        }
    }

    /// Adds a new object (checked with `check_leaf`, not present) and links
    /// it into the tree, making the intermediate keys it is the first object
    /// below.
    pub fn insert(&mut self, key: &str, value: V) {
        self.link(key);
        let hash = self.hash(key);
        self.add_object(hash, key, value);
    }

    /// Enters `key`'s name in its parent's children, making the
    /// intermediate keys that are missing, up to one that exists.
    fn link(&mut self, key: &str) {
        let mut at = key;
        loop {
            let (parent, name) = split_parent(at);
            let hash = self.hash(parent);
            if let Some(e) = self.table.find_mut(hash, |e| e.key.as_str() == parent) {
                if let Node::Dir(children) = &mut e.node {
                    children.insert(name);
                }
                return;
            }
            let hasher = &self.hasher;
            self.table.insert_unique(
                hash,
                Entry {
                    key: Text::new(parent),
                    node: Node::Dir(Box::new(Children::one(name))),
                },
                |e| hasher.hash_one(e.key.as_str()),
            );
            if parent == "/" {
                return;
            }
            at = parent;
        }
    }

    /// Removes an object, dropping the intermediate keys left empty.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let hash = self.hash(key);
        let entry = self
            .table
            .find_entry(hash, |e| e.key.as_str() == key)
            .ok()?;
        if !matches!(entry.get().node, Node::Object(_)) {
            return None;
        }
        let Node::Object(value) = entry.remove().0.node else {
            return None;
        };
        self.objects -= 1;
        let mut at = key;
        loop {
            let (parent, name) = split_parent(at);
            let hash = self.hash(parent);
            let Ok(mut entry) = self.table.find_entry(hash, |e| e.key.as_str() == parent) else {
                break;
            };
            let Node::Dir(children) = &mut entry.get_mut().node else {
                break;
            };
            children.remove(name);
            if !children.is_empty() || parent == "/" {
                break;
            }
            entry.remove();
            at = parent;
        }
        Some(value)
    }

    fn dir(&self, prefix: &str) -> Option<&Children> {
        match self.find(prefix)? {
            Node::Dir(names) => Some(names),
            Node::Object(_) => None,
        }
    }

    /// The names of the next level below `prefix` (`/` for the root), sorted.
    pub fn children(&self, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(children) = self.dir(prefix) {
            let _ = children.each(|n| {
                names.push(n.to_string());
                Ok::<(), ()>(())
            });
        }
        names
    }

    /// Calls `each` with the names of `children`, in order, without copying
    /// them; stops at the first error.
    pub fn each_child<E>(
        &self,
        prefix: &str,
        each: &mut dyn FnMut(&str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self.dir(prefix) {
            Some(children) => children.each(each),
            None => Ok(()),
        }
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
    fn keys_longer_than_the_inline_text() {
        let long = format!("/{}/{}", "a".repeat(40), "b".repeat(20));
        let mut t = tree(&["/x", &long]);
        assert_eq!(t.get(&long), Some(&1));
        assert_eq!(
            t.children(&format!("/{}", "a".repeat(40))),
            ["b".repeat(20)]
        );
        assert!(matches!(t.entry(&long), Slot::Object(_)));
        assert!(matches!(
            t.entry(&format!("/{}", "a".repeat(40))),
            Slot::Dir
        ));
        assert_eq!(t.remove(&long), Some(1));
        assert_eq!(t.children("/"), ["x"]);
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
