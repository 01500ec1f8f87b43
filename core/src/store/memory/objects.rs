//! A MEM dataset's objects: the key tree (`store::tree`) and the arena
//! their bytes live in, kept together so that every change of an object's
//! space is accounted, and dead space is given back (`compact`).

use super::arena::Arena;
use super::bytes::Bytes;
use crate::error::{Error, Result};
use crate::store::tree::{Slot, Tree};

#[derive(Default)]
pub struct Objects {
    tree: Tree<Bytes>,
    arena: Arena,
}

impl Objects {
    pub fn clear(&mut self) {
        self.tree.clear();
        self.arena = Arena::default();
    }

    pub fn len(&self, key: &str) -> Result<u64> {
        Ok(self.tree.get(key).ok_or(Error::Empty)?.len())
    }

    pub fn define(&mut self, key: &str) -> Result<()> {
        if self.tree.contains(key) {
            return Ok(());
        }
        self.tree.insert_new(key, Bytes::empty())
    }

    pub fn read_at(&self, key: &str, start: u64, buf: &mut [u8]) -> Result<()> {
        let object = self.tree.get(key).ok_or(Error::Empty)?;
        let bytes = object.as_slice(&self.arena);
        let end = start
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= bytes.len() as u64)
            .ok_or(Error::Edge)?;
        buf.copy_from_slice(&bytes[start as usize..end as usize]);
        Ok(())
    }

    pub fn write_at(&mut self, key: &str, start: u64, data: &[u8]) -> Result<()> {
        let arena = &mut self.arena;
        match self.tree.entry(key) {
            Slot::Object(object) => object.write(arena, start, data)?,
            Slot::Dir => return Err(Error::PREFIX_OF_OBJECTS),
            Slot::Vacant(vacant) => {
                // A failed write leaves no object: the object is linked
                // empty, written, and unlinked again if the write fails.
                let object = vacant.insert(Bytes::empty())?;
                if let Err(e) = object.write(arena, start, data) {
                    self.tree.remove(key);
                    return Err(e);
                }
            }
        }
        self.compact_if_wasteful();
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Result<()> {
        let object = self.tree.remove(key).ok_or(Error::Empty)?;
        object.release(&mut self.arena);
        self.compact_if_wasteful();
        Ok(())
    }

    pub fn truncate(&mut self, key: &str, len: u64) -> Result<()> {
        let object = self.tree.get_mut(key).ok_or(Error::Empty)?;
        object.resize(&mut self.arena, len)?;
        self.compact_if_wasteful();
        Ok(())
    }

    pub fn children(&self, prefix: &str) -> Vec<String> {
        self.tree.children(prefix)
    }

    pub fn each_child(&self, prefix: &str, each: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        self.tree.each_child(prefix, each)
    }

    fn compact_if_wasteful(&mut self) {
        if self.arena.wants_compaction() {
            self.compact();
        }
    }

    /// Copies every small object into a fresh arena and drops the old one.
    /// Compaction is optional: if memory runs out half-way, the objects
    /// already copied are pointed back at their old extents and the old
    /// arena stays.
    fn compact(&mut self) {
        let small = self
            .tree
            .values_mut()
            .filter(|b| matches!(b, Bytes::Small(e) if e.len > 0))
            .count();
        let mut old = Vec::new();
        if old.try_reserve_exact(small).is_err() {
            return;
        }
        let mut fresh = Arena::default();
        let mut failed = false;
        for object in self.tree.values_mut() {
            let Bytes::Small(e) = object else { continue };
            if e.len == 0 {
                continue;
            }
            match fresh.copy_in(self.arena.bytes(e)) {
                Ok(moved) => {
                    old.push(*e);
                    *e = moved;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            // The table is unchanged since the pass above: the same order.
            let mut old = old.into_iter();
            for object in self.tree.values_mut() {
                let Bytes::Small(e) = object else { continue };
                if e.len == 0 {
                    continue;
                }
                match old.next() {
                    Some(previous) => *e = previous,
                    None => break,
                }
            }
            return;
        }
        // Empty small objects hold no space in either arena.
        self.arena = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::arena::SMALL_MAX;

    fn content(objects: &Objects, key: &str) -> Vec<u8> {
        let mut buf = vec![0; objects.len(key).unwrap() as usize];
        objects.read_at(key, 0, &mut buf).unwrap();
        buf
    }

    #[test]
    fn pieces_gaps_and_growth_past_the_arena() {
        let mut o = Objects::default();
        let mut expect = Vec::new();
        // Written in 1000-byte pieces with a gap each time: the object
        // moves through several extents, then to its own allocation.
        let mut at = 0usize;
        while at < 3 * SMALL_MAX {
            let piece: Vec<u8> = (0..1000).map(|i| (at + i) as u8 | 1).collect();
            o.write_at("/a/x", at as u64, &piece).unwrap();
            expect.resize(at, 0);
            expect.extend_from_slice(&piece);
            assert_eq!(content(&o, "/a/x"), expect, "at {at}");
            at += 1000 + 37;
        }
        // Overwrite inside, then cut and extend.
        o.write_at("/a/x", 5, b"hello").unwrap();
        expect[5..10].copy_from_slice(b"hello");
        assert_eq!(content(&o, "/a/x"), expect);
        for len in [SMALL_MAX as u64 + 1, 300, 20, 0, 50] {
            o.truncate("/a/x", len).unwrap();
            expect.resize(len as usize, 0);
            assert_eq!(content(&o, "/a/x"), expect, "len {len}");
        }
        let mut buf = [0u8; 10];
        assert!(matches!(o.read_at("/a/x", 45, &mut buf), Err(Error::Edge)));
        assert!(matches!(
            o.read_at("/a/x", u64::MAX, &mut buf),
            Err(Error::Edge)
        ));
    }

    #[test]
    fn a_refused_write_leaves_no_object_and_no_space() {
        let mut o = Objects::default();
        o.write_at("/a/b", 0, &[1; 100]).unwrap();
        let live = o.arena.live();
        assert!(o.write_at("/a/b/c", 0, &[2; 100]).is_err());
        assert!(o.write_at("/a", 0, &[2; 100]).is_err());
        assert_eq!(o.arena.live(), live);
        assert_eq!(o.children("/a"), ["b"]);
    }

    #[test]
    fn blocks_pinned_by_a_few_objects_are_compacted() {
        let mut o = Objects::default();
        let key = |i: usize| format!("/v{}/c.{i}", i % 7);
        for i in 0..20_000 {
            o.write_at(&key(i), 0, &[(i % 251) as u8; 1000]).unwrap();
        }
        // One object in 50 stays: without compaction every block would.
        for i in (0..20_000).filter(|i| i % 50 != 0) {
            o.remove(&key(i)).unwrap();
        }
        assert_eq!(o.arena.live(), 400 * 1000);
        assert!(
            o.arena.mapped() <= 2 * 400 * 1000 + 2 * 2 * 1024 * 1024,
            "{}",
            o.arena.mapped()
        );
        for i in (0..20_000).step_by(50) {
            assert_eq!(content(&o, &key(i)), [(i % 251) as u8; 1000]);
        }
    }

    #[test]
    fn churn_keeps_memory_within_twice_the_live_bytes() {
        let mut o = Objects::default();
        let keys: Vec<String> = (0..2000).map(|i| format!("/g/c.{i}")).collect();
        let mut lens = vec![0usize; keys.len()];
        for round in 0..40usize {
            for (i, k) in keys.iter().enumerate() {
                match (i + round) % 5 {
                    0 => {
                        let _ = o.remove(k);
                        lens[i] = 0;
                    }
                    1 => {
                        let len = 1 + (i * 7 + round * 13) % 4000;
                        o.truncate(k, len as u64).ok();
                        if o.len(k).is_ok() {
                            lens[i] = len;
                        }
                    }
                    _ => {
                        let data = vec![(i + round) as u8; 1 + (i + round * 31) % 3000];
                        o.write_at(k, (round % 3) as u64 * 100, &data).unwrap();
                        lens[i] = lens[i].max((round % 3) * 100 + data.len());
                    }
                }
            }
            let live: usize = lens.iter().sum();
            assert!(
                o.arena.mapped() <= 2 * 2 * live + 4 * 2 * 1024 * 1024,
                "round {round}: {} mapped for {live} live",
                o.arena.mapped()
            );
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(o.len(k).unwrap_or(0) as usize, lens[i], "{k}");
        }
        for k in &keys {
            let _ = o.remove(k);
        }
        assert_eq!(o.arena.live(), 0);
        assert!(o.arena.mapped() <= 2 * 1024 * 1024);
    }
}
