//! Where a MEM dataset keeps the bytes of its small objects: a few large
//! blocks that objects are carved from, instead of one `malloc` each.
//!
//! Why: with one allocation per 1 KiB object, a create costs a `malloc` and,
//! in memory the process has not touched before, a 4 KiB page fault every
//! four objects (about 2 µs each on a virtual machine: more than the rest of
//! the write). Blocks past the first are 2 MiB mappings in huge pages
//! (`store::pages`): a fault per 2 MiB, none for a block a closed dataset
//! gave back. The first block is small, so a dataset of a few metadata
//! objects stays small.
//!
//! Space is accounted: a block whose objects are all gone is unmapped at
//! once, and when the mapped bytes exceed twice the live ones (plus two
//! blocks) the owner is told to compact (`Arena::wants_compaction`), which
//! copies the live objects into fresh blocks. Memory therefore stays within
//! about twice what the objects hold, and compaction's copying is paid for by
//! at least as many bytes given up since the last one.

use crate::error::{Error, Result};
use crate::store::pages::{Mapping, HUGE_PAGE};

/// Objects up to this length live in blocks; longer ones have their own
/// allocation (a `malloc` is nothing next to copying them).
pub const SMALL_MAX: usize = 64 * 1024;
const FIRST_BLOCK: usize = 64 * 1024;
const BLOCK: usize = HUGE_PAGE;

/// Where an object's bytes are: `len` bytes at `offset` in a block, with
/// `cap` reserved. An extent with `cap == 0` has no block.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extent {
    block: u32,
    offset: u32,
    pub len: u32,
    cap: u32,
}

impl Extent {
    pub fn cap(&self) -> usize {
        self.cap as usize
    }
}

struct Block {
    map: Mapping,
    /// Bytes handed out from the start (the rest is free).
    used: usize,
    /// Bytes reserved by live extents.
    live: usize,
}

#[derive(Default)]
pub struct Arena {
    blocks: Vec<Option<Block>>,
    /// Indices of unmapped blocks, for reuse.
    vacant: Vec<u32>,
    /// The block new extents are carved from.
    current: Option<u32>,
    mapped: usize,
    live: usize,
}

impl Arena {
    /// An extent of `cap` bytes (`1..=SMALL_MAX`), its contents undefined
    /// until written; `len` 0.
    pub fn alloc(&mut self, cap: usize) -> Result<Extent> {
        debug_assert!(cap > 0 && cap <= SMALL_MAX);
        let block = match self.current {
            Some(b) if self.room(b) >= cap => b,
            _ => self.new_block(cap)?,
        };
        let b = self.blocks[block as usize]
            .as_mut()
            .ok_or(Error::Internal("arena block missing"))?;
        let offset = b.used;
        b.used += cap;
        b.live += cap;
        self.live += cap;
        Ok(Extent {
            block,
            offset: offset as u32,
            len: 0,
            cap: cap as u32,
        })
    }

    fn room(&self, block: u32) -> usize {
        self.blocks[block as usize]
            .as_ref()
            .map_or(0, |b| b.map.len() - b.used)
    }

    fn new_block(&mut self, cap: usize) -> Result<u32> {
        let size = if self.mapped == 0 { FIRST_BLOCK } else { BLOCK }.max(cap);
        let map = Mapping::new(size).map_err(|_| Error::NoMem)?;
        let block = Block {
            map,
            used: 0,
            live: 0,
        };
        self.mapped += size;
        let id = match self.vacant.pop() {
            Some(id) => {
                self.blocks[id as usize] = Some(block);
                id
            }
            None => {
                self.blocks.push(Some(block));
                (self.blocks.len() - 1) as u32
            }
        };
        // The old current block keeps its free tail until its objects go.
        if let Some(old) = self.current.replace(id) {
            self.unmap_if_empty(old);
        }
        Ok(id)
    }

    /// Gives up `extent`'s space; unmaps its block if nothing else lives
    /// there (the current block is rewound instead).
    pub fn free(&mut self, extent: Extent) {
        if extent.cap == 0 {
            return;
        }
        let cap = extent.cap as usize;
        if let Some(b) = self.blocks[extent.block as usize].as_mut() {
            b.live -= cap;
            self.live -= cap;
        }
        self.unmap_if_empty(extent.block);
    }

    fn unmap_if_empty(&mut self, id: u32) {
        let Some(b) = self.blocks[id as usize].as_mut() else {
            return;
        };
        if b.live > 0 {
            return;
        }
        if self.current == Some(id) {
            b.used = 0;
            return;
        }
        self.mapped -= b.map.len();
        self.blocks[id as usize] = None;
        self.vacant.push(id);
    }

    /// Moves `extent` to a new extent of `cap` bytes (`1..=SMALL_MAX`),
    /// keeping as much of its content as fits, and frees the old one. On
    /// failure nothing has changed.
    pub fn relocate(&mut self, extent: Extent, cap: usize) -> Result<Extent> {
        let mut moved = self.alloc(cap)?;
        let n = (extent.len as usize).min(cap);
        moved.len = n as u32;
        if n > 0 {
            let (from, to) = (extent.block as usize, moved.block as usize);
            let (src, dst) = (extent.offset as usize, moved.offset as usize);
            if from == to {
                if let Some(b) = self.blocks[from].as_mut() {
                    b.map.copy_within(src..src + n, dst);
                }
            } else {
                let (low, high) = self.blocks.split_at_mut(from.max(to));
                let (a, b) = (&mut low[from.min(to)], &mut high[0]);
                let (source, target) = if from < to { (a, b) } else { (b, a) };
                if let (Some(s), Some(t)) = (source.as_ref(), target.as_mut()) {
                    t.map[dst..dst + n].copy_from_slice(&s.map[src..src + n]);
                }
            }
        }
        self.free(extent);
        Ok(moved)
    }

    /// A new extent holding exactly `data` (`1..=SMALL_MAX` bytes).
    pub fn copy_in(&mut self, data: &[u8]) -> Result<Extent> {
        let mut extent = self.alloc(data.len())?;
        extent.len = data.len() as u32;
        self.space_mut(&extent).copy_from_slice(data);
        Ok(extent)
    }

    /// The extent's `len` bytes.
    #[inline]
    pub fn bytes(&self, extent: &Extent) -> &[u8] {
        if extent.cap == 0 {
            return &[];
        }
        match &self.blocks[extent.block as usize] {
            Some(b) => {
                let start = extent.offset as usize;
                &b.map[start..start + extent.len as usize]
            }
            None => &[],
        }
    }

    /// The extent's whole reserved space (`cap` bytes), to write into.
    #[inline]
    pub fn space_mut(&mut self, extent: &Extent) -> &mut [u8] {
        if extent.cap == 0 {
            return &mut [];
        }
        match &mut self.blocks[extent.block as usize] {
            Some(b) => {
                let start = extent.offset as usize;
                &mut b.map[start..start + extent.cap as usize]
            }
            None => &mut [],
        }
    }

    /// Whether the mapped blocks hold so much dead space that the owner
    /// should copy the live extents into a fresh arena.
    pub fn wants_compaction(&self) -> bool {
        self.mapped > 2 * self.live + 2 * BLOCK
    }

    /// Bytes mapped for blocks (the memory this arena holds).
    #[cfg(test)]
    pub fn mapped(&self) -> usize {
        self.mapped
    }

    /// Bytes reserved by live extents.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_do_not_overlap_and_keep_their_bytes() {
        let mut a = Arena::default();
        let mut extents = Vec::new();
        for i in 0..5000usize {
            let cap = 1 + i % 3000;
            let mut e = a.alloc(cap).unwrap();
            e.len = cap as u32;
            a.space_mut(&e).fill((i % 251) as u8);
            extents.push((e, (i % 251) as u8));
        }
        for (e, fill) in &extents {
            assert!(a.bytes(e).iter().all(|b| b == fill));
        }
        assert!(a.mapped() >= a.live());
    }

    #[test]
    fn emptied_blocks_are_unmapped_and_the_current_one_rewound() {
        let mut a = Arena::default();
        let extents: Vec<Extent> = (0..3000).map(|_| a.alloc(1024).unwrap()).collect();
        let peak = a.mapped();
        assert!(peak >= 3000 * 1024);
        for e in extents {
            a.free(e);
        }
        assert_eq!(a.live(), 0);
        // Only the current block stays, rewound.
        assert!(a.mapped() <= BLOCK, "{} bytes still mapped", a.mapped());
        let e = a.alloc(10).unwrap();
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn dead_space_asks_for_compaction() {
        let mut a = Arena::default();
        let mut keep = Vec::new();
        for i in 0..20_000 {
            let e = a.alloc(1000).unwrap();
            if i % 50 == 0 {
                keep.push(e);
            } else {
                a.free(e);
                // Freed extents of the current block are not reused
                // (bump allocation), so dead space piles up.
            }
        }
        assert_eq!(keep.len(), 400);
        assert!(a.wants_compaction());
        for e in keep {
            a.free(e);
        }
        assert!(!a.wants_compaction());
    }
}
