//! The bytes of one buffered S3 object, in pieces of `PIECE` bytes.
//!
//! A contiguous `Vec` that grows by appends copies everything it holds at
//! each doubling, into fresh pages that must be faulted in: writing 16 MiB
//! in 1 MiB pieces moved 31 MiB and cost ~15 ms more than the upload of a
//! ready buffer. In pieces, an append copies the caller's bytes once, and
//! an upload sends the pieces as they are (`PutPayload` is a list of
//! `Bytes`; multipart parts are whole numbers of pieces).
//!
//! Invariant: every piece but the last holds exactly `PIECE` bytes; the
//! last holds 1 to `PIECE` (no pieces when empty).

#[cfg(feature = "s3")]
use bytes::Bytes;

use crate::error::{Error, Result};

/// Bytes per piece. Multipart part sizes are multiples of it.
pub const PIECE: usize = 1 << 20;

#[derive(Default, Debug)]
pub struct Content {
    pieces: Vec<Vec<u8>>,
    len: usize,
    /// Empty pieces `reserve_to` allocated for the next appends, the next
    /// one last.
    spare: Vec<Vec<u8>>,
}

impl Content {
    /// The bytes of `data` (one piece when short, else split: one copy).
    pub fn from_vec(data: Vec<u8>) -> Content {
        let len = data.len();
        if len == 0 {
            return Content::default();
        }
        if len <= PIECE {
            return Content {
                pieces: vec![data],
                len,
                spare: Vec::new(),
            };
        }
        Content {
            pieces: data.chunks(PIECE).map(<[u8]>::to_vec).collect(),
            len,
            spare: Vec::new(),
        }
    }

    /// Pieces handed back after a failed upload.
    #[cfg(feature = "s3")]
    pub fn from_pieces(pieces: Vec<Bytes>) -> Content {
        let pieces: Vec<Vec<u8>> = pieces.into_iter().map(Vec::from).collect();
        let len = pieces.iter().map(Vec::len).sum();
        Content {
            pieces,
            len,
            spare: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies bytes `[start, start + buf.len())` into `buf`; `false` (and
    /// nothing copied) if they pass the end.
    pub fn read(&self, start: usize, buf: &mut [u8]) -> bool {
        if start
            .checked_add(buf.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        let mut done = 0;
        while done < buf.len() {
            let at = start + done;
            let piece = &self.pieces[at / PIECE][at % PIECE..];
            let n = piece.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&piece[..n]);
            done += n;
        }
        true
    }

    /// Writes `data` at `start`, zero-filling any gap past the end.
    /// `Err(NoMem)` (nothing changed) if the memory cannot be had.
    pub fn write(&mut self, start: usize, data: &[u8]) -> Result<()> {
        let end = start.checked_add(data.len()).ok_or(Error::NoMem)?;
        // What lies past the end is appended straight from `data` (no
        // zeros written first); memory for all of it is had before anything
        // changes.
        let inside = self.len.saturating_sub(start).min(data.len());
        if end > self.len {
            self.reserve_to(end)?;
            self.zero_fill_to(start);
            self.append(&data[inside..]);
        }
        let mut done = 0;
        while done < inside {
            let at = start + done;
            let piece = &mut self.pieces[at / PIECE][at % PIECE..];
            let n = piece.len().min(inside - done);
            piece[..n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Appends `data`, for which `reserve_to` made room.
    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.pieces.last().is_none_or(|p| p.len() == PIECE) {
                self.pieces.push(self.spare.pop().unwrap_or_default());
            }
            let last = self.pieces.last_mut().expect("a piece was just ensured");
            let n = (PIECE - last.len()).min(data.len());
            last.extend_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
    }

    /// Cuts or zero-extends to `len`.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return self.grow_to(len);
        }
        let pieces = len.div_ceil(PIECE);
        self.spare.clear();
        self.pieces.truncate(pieces);
        if let Some(last) = self.pieces.last_mut() {
            last.truncate(len - (pieces - 1) * PIECE);
            last.shrink_to_fit();
        }
        self.len = len;
        Ok(())
    }

    /// Gives the whole pieces of an upload that finished back for reuse
    /// (those nothing else holds any more).
    #[cfg(feature = "s3")]
    pub fn recycle(pieces: Vec<Bytes>) {
        for piece in pieces {
            if piece.len() == PIECE && piece.is_unique() {
                pool::give(Vec::from(piece));
            }
        }
    }

    /// The pieces, for an upload.
    #[cfg(feature = "s3")]
    pub fn into_pieces(self) -> Vec<Bytes> {
        self.pieces.into_iter().map(Bytes::from).collect()
    }

    /// Makes room for `end` bytes: capacity in the last piece (at most
    /// `PIECE`) and new pieces of the sizes they will have, so that growing
    /// to `end` then cannot fail.
    fn reserve_to(&mut self, end: usize) -> Result<()> {
        if end <= self.len {
            return Ok(());
        }
        let pieces_now = self.pieces.len();
        let pieces_then = end.div_ceil(PIECE);
        self.pieces
            .try_reserve(pieces_then - pieces_now)
            .map_err(|_| Error::NoMem)?;
        if let Some(last) = self.pieces.last_mut() {
            let want = (end - (pieces_now - 1) * PIECE).min(PIECE);
            if want > last.capacity() {
                let cap = (last.capacity() * 2).clamp(want, PIECE);
                last.try_reserve_exact(cap - last.len())
                    .map_err(|_| Error::NoMem)?;
            }
        }
        self.spare.clear();
        for i in (pieces_now..pieces_then).rev() {
            let size = (end - i * PIECE).min(PIECE);
            let piece = match pool::take().filter(|_| size == PIECE) {
                Some(piece) => piece,
                None => {
                    let mut piece = Vec::new();
                    piece.try_reserve_exact(size).map_err(|_| Error::NoMem)?;
                    piece
                }
            };
            self.spare.push(piece);
        }
        Ok(())
    }

    /// Extends to `end` bytes of zeros; `Err(NoMem)` (nothing changed) if
    /// the memory cannot be had.
    fn grow_to(&mut self, end: usize) -> Result<()> {
        if end <= self.len {
            return Ok(());
        }
        self.reserve_to(end)?;
        self.zero_fill_to(end);
        Ok(())
    }

    /// Appends zeros up to `end` (room made by `reserve_to`).
    fn zero_fill_to(&mut self, end: usize) {
        let zeros = [0u8; 4096];
        while self.len < end {
            let n = (end - self.len).min(zeros.len());
            self.append(&zeros[..n]);
        }
    }
}

/// Whole pieces kept for reuse, process-wide: fresh memory costs a page
/// fault per 4 KiB on first touch (a 1 MiB copy into a fresh piece runs at
/// ~2 GB/s here), so the pieces of an upload that finished are kept for the
/// next objects, up to `KEEP` (16 MiB). Never waits: a busy pool (or one
/// whose lock a thread of the parent held at `fork`) is passed by.
mod pool {
    use super::PIECE;
    use std::sync::Mutex;

    const KEEP: usize = 16;

    static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    pub fn take() -> Option<Vec<u8>> {
        FREE.try_lock().ok()?.pop()
    }

    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn give(mut piece: Vec<u8>) {
        if piece.capacity() != PIECE {
            return;
        }
        piece.clear();
        if let Ok(mut free) = FREE.try_lock() {
            if free.len() < KEEP {
                free.push(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same operations on a plain Vec.
    fn model_write(m: &mut Vec<u8>, start: usize, data: &[u8]) {
        if m.len() < start + data.len() {
            m.resize(start + data.len(), 0);
        }
        m[start..start + data.len()].copy_from_slice(data);
    }

    fn all(c: &Content) -> Vec<u8> {
        let mut out = vec![0; c.len()];
        assert!(c.read(0, &mut out));
        out
    }

    #[test]
    fn matches_a_vec_across_piece_boundaries() {
        let mut c = Content::default();
        let mut m = Vec::new();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        for round in 0..300 {
            let start = next(3 * PIECE as u64 + 10);
            let len = [0, 1, 100, PIECE - 1, PIECE, PIECE + 1][next(6)];
            let data: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            if round % 17 == 0 {
                let to = next(4 * PIECE as u64);
                c.truncate(to).unwrap();
                m.resize(to, 0);
            } else {
                c.write(start, &data).unwrap();
                model_write(&mut m, start, &data);
            }
            assert_eq!(c.len(), m.len());
            for (i, p) in c.pieces.iter().enumerate() {
                let last = i + 1 == c.pieces.len();
                assert!(p.len() == PIECE || (last && !p.is_empty()), "piece {i}");
                assert!(p.capacity() <= PIECE);
            }
        }
        assert!(all(&c) == m);
        let mut probe = [0u8; 3];
        assert!(!c.read(c.len() - 2, &mut probe));
        assert!(c.read(c.len() - 3, &mut probe));
        assert_eq!(probe, m[m.len() - 3..]);
    }

    #[cfg(feature = "s3")]
    #[test]
    fn pieces_round_trip_and_split_large_vectors() {
        let data: Vec<u8> = (0..(2 * PIECE + 5)).map(|i| (i % 253) as u8).collect();
        let c = Content::from_vec(data.clone());
        assert_eq!(c.pieces.len(), 3);
        let back = Content::from_pieces(c.into_pieces());
        assert!(all(&back) == data);
        assert_eq!(Content::from_vec(Vec::new()).len(), 0);
    }
}
