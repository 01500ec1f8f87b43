//! The objects of an open GNZ file: `store::tree`'s key tree (one lookup per
//! read or write, the leaf rules in a few lookups, one sorted set per search)
//! over a slab of objects that commits and compaction walk without lookups.

use crate::error::Result;
use crate::store::pages::{HugePages, PageVec};
use crate::store::tree::{head, Slot as TreeSlot, Tree};

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
    /// The first commit whose header references the extent at `offset` (0
    /// when unknown: an object loaded from the file). Readers of a commit
    /// from `born` on may see its committed bytes (DESIGN.md, "Reader
    /// protocol").
    pub born: u64,
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
            born: 0,
            name: None,
            layout: None,
        }
    }
}

pub struct Index {
    /// Key -> slot.
    tree: Tree<u32>,
    /// In memory from `store::pages` (huge pages, reused) once large, as
    /// the tree's table: no page fault per 4 KiB as it grows.
    slots: PageVec<Option<Object>>,
    /// Empty slots.
    free: Vec<u32>,
    /// The bytes of all keys (for estimating a header's length).
    key_bytes: u64,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            tree: Tree::default(),
            slots: PageVec::new_in(HugePages),
            free: Vec::new(),
            key_bytes: 0,
        }
    }
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

    /// The slot of the object at `key`: for `at` and `at_mut`, until the
    /// next `remove`.
    pub fn slot(&self, key: &str) -> Option<u32> {
        self.tree.get(key).copied()
    }

    /// The object in a slot `slot` or `insert` gave.
    pub fn at(&self, slot: u32) -> Option<&Object> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn at_mut(&mut self, slot: u32) -> Option<&mut Object> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Adds a new object at `key` (not present, `check_leaf` passed); its
    /// slot.
    pub fn insert(&mut self, key: &str, object: Object) -> u32 {
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
        self.key_bytes += key.len() as u64;
        slot
    }

    /// The slot of the object at `key` (`false`), or of a new empty object
    /// made there if the leaf rules allow it (`true`): one lookup either
    /// way. Nothing changes on an error.
    pub fn slot_or_insert_new(&mut self, key: &str) -> Result<(u32, bool)> {
        let next = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.slots.len())
                .map_err(|_| crate::error::Error::Invalid("too many objects"))?,
        };
        match self.tree.entry(key) {
            TreeSlot::Object(&mut slot) => return Ok((slot, false)),
            TreeSlot::Dir => return Err(crate::error::Error::PREFIX_OF_OBJECTS),
            TreeSlot::Vacant(vacant) => {
                vacant.insert(next)?;
            }
        }
        self.key_bytes += key.len() as u64;
        if self.free.pop().is_some() {
            self.slots[next as usize] = Some(Object::empty());
        } else {
            self.slots.push(Some(Object::empty()));
        }
        Ok((next, true))
    }

    pub fn remove(&mut self, key: &str) -> Option<Object> {
        let slot = self.tree.remove(key)?;
        self.key_bytes -= key.len() as u64;
        self.free.push(slot);
        self.slots.get_mut(slot as usize)?.take()
    }

    /// Every object, and empties the index.
    pub fn drain(&mut self) -> Vec<Object> {
        self.tree.clear();
        self.free.clear();
        self.key_bytes = 0;
        std::mem::replace(&mut self.slots, PageVec::new_in(HugePages))
            .into_iter()
            .flatten()
            .collect()
    }

    /// The names below `prefix` (`/` for the root), sorted.
    pub fn children(&self, prefix: &str) -> Vec<String> {
        self.tree.children(prefix)
    }

    pub fn each_child(&self, prefix: &str, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        self.tree.each_child(prefix, each)
    }

    /// The bytes of all keys together.
    pub fn key_bytes(&self) -> u64 {
        self.key_bytes
    }

    /// Every object, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Object> {
        self.slots.iter().flatten()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Object> {
        self.slots.iter_mut().flatten()
    }

    /// Every object with its slot, in no particular order.
    pub fn slotted(&self) -> impl Iterator<Item = (u32, &Object)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| Some((i as u32, o.as_ref()?)))
    }

    /// Every object with its key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Object)> {
        self.tree
            .iter()
            .filter_map(|(k, &slot)| Some((k, self.slots.get(slot as usize)?.as_ref()?)))
    }

    /// Every object with the name of its array, sorted by name (the order
    /// of a header's `arrays`).
    ///
    /// The vectors are `PageVec`s: those of 256 KiB or more (for 10,000
    /// objects, the radix sort's two arrays of keys) are kept mappings, not
    /// fresh memory (a page fault every 4 KiB) at every dataset's first
    /// commit; smaller ones come from the global allocator as before.
    pub fn by_name(&self) -> PageVec<(&str, &Object)> {
        // Sorted on the first 16 bytes as a number (names hold no NUL, so
        // zero padding sorts a shorter name first), keyed by position: plain
        // integer pairs sort several times faster than (name, object)
        // tuples compared through `str`. Runs that tie on those bytes are
        // then sorted on the rest of the name. One pass reads each name
        // once, while it is in the cache.
        let n = self.len();
        let mut all: PageVec<(&str, &Object)> = PageVec::with_capacity_in(n, HugePages);
        let mut order: PageVec<(u128, u32)> = PageVec::with_capacity_in(n, HugePages);
        for (k, o) in self.iter() {
            let name = o.name.as_deref().unwrap_or(k);
            order.push((head(name), all.len() as u32));
            all.push((name, o));
        }
        sort_by_head(&mut order);
        let tail = |&(_, i): &(u128, u32)| {
            let name = all[i as usize].0;
            &name[16.min(name.len())..]
        };
        for run in order.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| tail(a).cmp(tail(b)));
            }
        }
        let mut sorted = PageVec::with_capacity_in(n, HugePages);
        sorted.extend(order.iter().map(|&(_, i)| all[i as usize]));
        sorted
    }
}

/// Sorts `(head, position)` pairs by head, least significant byte first
/// (a radix sort: about a tenth of a comparison sort's instructions on a
/// commit's names, which share most of their bytes); bytes every head has
/// alike cost one counting pass and no move. Equal heads keep their order.
fn sort_by_head(order: &mut PageVec<(u128, u32)>) {
    if order.len() < 64 {
        order.sort_by_key(|&(head, _)| head);
        return;
    }
    // How many heads have each value of each byte, all 16 bytes in one pass.
    let mut counts = vec![[0usize; 256]; 16];
    for &(head, _) in order.iter() {
        // Bytes, not shifts: a variable shift of a u128 costs a dozen
        // instructions.
        let bytes = head.to_le_bytes();
        for (count, &value) in counts.iter_mut().zip(bytes.iter()) {
            count[value as usize] += 1;
        }
    }
    let n = order.len();
    let mut from = std::mem::replace(order, PageVec::new_in(HugePages));
    let mut to = PageVec::with_capacity_in(n, HugePages);
    to.resize(n, (0u128, 0u32));
    for (byte, count) in counts.iter().enumerate() {
        if count.contains(&n) {
            continue; // the same in every head
        }
        let mut next = [0usize; 256];
        let mut at = 0;
        for (slot, &c) in next.iter_mut().zip(count.iter()) {
            *slot = at;
            at += c;
        }
        for &entry in from.iter() {
            let value = entry.0.to_le_bytes()[byte] as usize;
            to[next[value]] = entry;
            next[value] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    *order = from;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_follow_inserts_and_removes() {
        let mut index = Index::default();
        let sum = |i: &Index| i.iter().map(|(k, _)| k.len() as u64).sum::<u64>();
        index.insert("/a/b", Object::empty());
        assert!(index.slot_or_insert_new("/a/cc").unwrap().1);
        assert!(!index.slot_or_insert_new("/a/cc").unwrap().1);
        assert!(index.slot_or_insert_new("/a").is_err());
        index.slot_or_insert_new("/d").unwrap();
        assert_eq!(index.key_bytes(), sum(&index));
        assert!(index.remove("/nothing").is_none());
        index.remove("/a/b").unwrap();
        assert_eq!(index.key_bytes(), sum(&index));
        index.drain();
        assert_eq!(index.key_bytes(), 0);
    }

    #[test]
    fn sort_by_head_matches_a_comparison_sort() {
        // Heads that share bytes, differ in one byte only, or tie; short
        // and long inputs (both paths).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in [0usize, 1, 63, 64, 65, 1000, 5000] {
            let order: Vec<(u128, u32)> = (0..len as u32)
                .map(|i| {
                    let r = next();
                    let head = match r % 4 {
                        0 => u128::from(r),
                        1 => (0x2f67_302f_7600u128 << 80) | u128::from(r % 1000),
                        2 => u128::from(r) << 64,
                        _ => 7,
                    };
                    (head, i)
                })
                .collect();
            let mut want = order.clone();
            want.sort_by_key(|&(head, _)| head); // stable, as the radix sort
            let mut sorted = PageVec::new_in(HugePages);
            sorted.extend(order);
            sort_by_head(&mut sorted);
            assert_eq!(&sorted[..], &want[..], "{len} entries");
        }
    }

    #[test]
    fn by_name_is_bytewise_sorted() {
        // Names that tie on their first 16 bytes, are exactly 16 bytes
        // long, shorter, or renamed (arrays of other writers).
        let mut keys: Vec<String> = Vec::new();
        for i in 0..300u32 {
            let width = (i * 7 % 23) as usize;
            keys.push(format!("/{}/{i:0width$}", "g".repeat((i % 20) as usize)));
            keys.push(format!("/0123456789abcd/{i}"));
            keys.push(format!("/0123456789abcde{}", i % 97));
        }
        keys.sort();
        keys.dedup();
        let mut index = Index::default();
        for (i, k) in keys.iter().enumerate().rev() {
            let mut o = Object::empty();
            if i % 5 == 0 {
                o.name = Some(k.trim_start_matches('/').into());
            }
            index.insert(k, o);
        }
        let got: Vec<&str> = index.by_name().into_iter().map(|(n, _)| n).collect();
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got.len(), keys.len());
    }
}
