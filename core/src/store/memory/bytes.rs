//! One MEM object's bytes: up to `arena::SMALL_MAX` in the dataset's arena,
//! longer ones in an allocation of their own.
//!
//! Every change has its memory before it touches the object, so a write
//! that fails (`NC_ENOMEM`) leaves the object as it was.

use super::arena::{Arena, Extent, SMALL_MAX};
use super::{grow, put};
use crate::error::{Error, Result};

pub enum Bytes {
    Small(Extent),
    Large(Vec<u8>),
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::NoMem)
}

impl Bytes {
    pub fn empty() -> Bytes {
        Bytes::Small(Extent::default())
    }

    #[inline]
    pub fn len(&self) -> u64 {
        match self {
            Bytes::Small(e) => u64::from(e.len),
            Bytes::Large(v) => v.len() as u64,
        }
    }

    #[inline]
    pub fn as_slice<'a>(&'a self, arena: &'a Arena) -> &'a [u8] {
        match self {
            Bytes::Small(e) => arena.bytes(e),
            Bytes::Large(v) => v,
        }
    }

    /// Makes room for `len` bytes, keeping the content: a small object
    /// moves to a larger extent (doubling, so an object written piece by
    /// piece moves O(log n) times) or, past `SMALL_MAX`, to its own
    /// allocation.
    fn reserve(&mut self, arena: &mut Arena, len: usize) -> Result<()> {
        let Bytes::Small(e) = self else {
            return Ok(());
        };
        if len <= e.cap() {
            return Ok(());
        }
        if len > SMALL_MAX {
            let mut own = Vec::new();
            own.try_reserve_exact(len).map_err(|_| Error::NoMem)?;
            own.extend_from_slice(arena.bytes(e));
            arena.free(*e);
            *self = Bytes::Large(own);
        } else {
            // A fresh object gets exactly its length (the usual whole-chunk
            // write wastes nothing).
            let cap = if e.len == 0 {
                len
            } else {
                len.max(e.cap() * 2).min(SMALL_MAX)
            };
            *e = arena.relocate(*e, cap)?;
        }
        Ok(())
    }

    /// Writes `data` at `start`, zero-filling a gap past the end.
    pub fn write(&mut self, arena: &mut Arena, start: u64, data: &[u8]) -> Result<()> {
        let start = to_usize(start)?;
        let end = start.checked_add(data.len()).ok_or(Error::NoMem)?;
        let len = to_usize(self.len())?;
        self.reserve(arena, len.max(end))?;
        match self {
            Bytes::Large(own) => put(own, start as u64, data),
            Bytes::Small(e) => {
                let space = arena.space_mut(e);
                if start > len {
                    space[len..start].fill(0);
                }
                space[start..end].copy_from_slice(data);
                e.len = len.max(end) as u32;
                Ok(())
            }
        }
    }

    /// Sets the length: cut, or zero-extended. A small object cut to less
    /// than half its space moves to an extent of its size.
    pub fn resize(&mut self, arena: &mut Arena, new_len: u64) -> Result<()> {
        let len = to_usize(self.len())?;
        let new_len = to_usize(new_len)?;
        if new_len > len {
            self.reserve(arena, new_len)?;
        }
        match self {
            Bytes::Large(own) => {
                if new_len < own.len() {
                    own.truncate(new_len);
                    own.shrink_to_fit();
                    Ok(())
                } else {
                    grow(own, new_len as u64)
                }
            }
            Bytes::Small(e) => {
                if new_len > len {
                    arena.space_mut(e)[len..new_len].fill(0);
                    e.len = new_len as u32;
                } else if new_len == 0 {
                    arena.free(*e);
                    *e = Extent::default();
                } else {
                    // Moved before the length changes: if the move fails,
                    // the object is as it was.
                    if new_len < e.cap() / 2 {
                        *e = arena.relocate(*e, new_len)?;
                    }
                    e.len = new_len as u32;
                }
                Ok(())
            }
        }
    }

    /// Gives the object's space back.
    pub fn release(self, arena: &mut Arena) {
        if let Bytes::Small(e) = self {
            arena.free(e);
        }
    }
}
