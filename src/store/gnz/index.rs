//! The objects of an open GNZ file: `store::tree`'s key tree (one lookup per
//! read or write, the leaf rules in a few lookups, one sorted set per search)
//! over a slab of objects that commits and compaction walk without lookups.

use crate::error::Result;
use crate::store::tree::Tree;

/// The array description of an object written by another GNZ writer, kept
/// while the object's length is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub dtype: Box<str>,
    pub shape: Vec<u64>,
    pub order: &'static str,
}

/// Where an object's bytes are.
#[derive(Clone, Debug)]
pub struct Object {
    /// Start of the extent (0 for an object without one).
    pub offset: u64,
    pub len: u64,
    /// Bytes reserved at `offset`; `len <= cap`. Bytes past `len` are
    /// undefined until written.
    pub cap: u64,
    /// Bytes `[offset, offset + committed)` may be referenced by the
    /// committed header or by an open reader's snapshot: never written.
    pub committed: u64,
    /// The array's name in the file when it is not the key itself.
    pub name: Option<Box<str>>,
    pub layout: Option<Box<Layout>>,
}

impl Object {
    pub fn empty() -> Object {
        Object {
            offset: 0,
            len: 0,
            cap: 0,
            committed: 0,
            name: None,
            layout: None,
        }
    }
}

#[derive(Default)]
pub struct Index {
    /// Key -> slot.
    tree: Tree<u32>,
    slots: Vec<Option<Object>>,
    /// Empty slots.
    free: Vec<u32>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn get(&self, key: &str) -> Option<&Object> {
        let &slot = self.tree.get(key)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Object> {
        let &slot = self.tree.get(key)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tree.contains(key)
    }

    /// Refuses a new object at `key` if `key` is an intermediate key or
    /// lies below an object.
    pub fn check_leaf(&self, key: &str) -> Result<()> {
        self.tree.check_leaf(key)
    }

    /// Adds a new object at `key` (not present, `check_leaf` passed).
    pub fn insert(&mut self, key: &str, object: Object) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(object);
                slot
            }
            None => {
                self.slots.push(Some(object));
                (self.slots.len() - 1) as u32
            }
        };
        self.tree.insert(key, slot);
    }

    pub fn remove(&mut self, key: &str) -> Option<Object> {
        let slot = self.tree.remove(key)?;
        self.free.push(slot);
        self.slots.get_mut(slot as usize)?.take()
    }

    /// Every object, and empties the index.
    pub fn drain(&mut self) -> Vec<Object> {
        self.tree.clear();
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The names below `prefix` (`/` for the root), sorted.
    pub fn children(&self, prefix: &str) -> Vec<String> {
        self.tree.children(prefix)
    }

    /// Every object, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Object> {
        self.slots.iter().flatten()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Object> {
        self.slots.iter_mut().flatten()
    }

    /// Every object with its key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Object)> {
        self.tree
            .iter()
            .filter_map(|(k, &slot)| Some((k, self.slots.get(slot as usize)?.as_ref()?)))
    }

    /// Every object with the name of its array, sorted by name (the order
    /// of a header's `arrays`).
    pub fn by_name(&self) -> Vec<(&str, &Object)> {
        let mut all: Vec<(&str, &Object)> = self
            .iter()
            .map(|(k, o)| (o.name.as_deref().unwrap_or(k), o))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }
}
