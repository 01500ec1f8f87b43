//! Which commits live readers see (DESIGN.md, "Reader protocol").
//!
//! Every read-only map holds a shared lock on the generation slot of the
//! commit its snapshot is (`lock::pin_generation`). The writer lists the
//! locked slots after each commit and keeps every freed extent that some
//! live reader may still see: an extent first referenced by commit `born`
//! and last by commit `died - 1` is seen by readers of generations in
//! `[born, died)`. A reader that dies loses its locks with its process, so
//! it pins nothing past the writer's next look.

use std::fs::File;

use super::lock;
use crate::error::Result;

/// The generations of the live readers, as the writer last listed them.
#[derive(Clone, Debug, Default)]
pub struct Readers {
    /// Sorted, without duplicates.
    generations: Vec<u64>,
    /// A reader whose generation could not be placed: it may see anything.
    unknown: bool,
}

impl Readers {
    /// No reader at all.
    pub fn none() -> Readers {
        Readers::default()
    }

    pub fn is_empty(&self) -> bool {
        !self.unknown && self.generations.is_empty()
    }

    /// True if a live reader may see an extent referenced by the commits
    /// `born .. died` (`died` excluded).
    pub fn sees(&self, born: u64, died: u64) -> bool {
        if self.unknown {
            return true;
        }
        let first = self.generations.partition_point(|&g| g < born);
        self.generations.get(first).is_some_and(|&g| g < died)
    }

    /// The readers from the slots locked, with `current` the newest commit
    /// (no reader sees a later one): a slot names the latest generation at
    /// or before `current` that falls in it.
    fn from_slots(slots: Vec<u64>, unknown: bool, current: u64) -> Readers {
        let mut generations = Vec::with_capacity(slots.len());
        let mut unknown = unknown;
        for slot in slots {
            let back = current.wrapping_sub(slot) % lock::SLOTS;
            match current.checked_sub(back) {
                Some(g) if g % lock::SLOTS == slot => generations.push(g),
                _ => unknown = true,
            }
        }
        generations.sort_unstable();
        generations.dedup();
        Readers {
            generations,
            unknown,
        }
    }
}

/// The live readers of `file`, whose newest commit is `current`. One lock
/// test when there are none (the common case); else about two per
/// generation seen.
///
/// Listing is not atomic, and need not be: a reader that registers while
/// the writer lists reads the header at offset 0 — `current` or later —
/// and sees nothing the writer frees now; a reader that leaves meanwhile
/// is counted or not, either way safe.
pub fn live(file: &File, current: u64) -> Result<Readers> {
    if !lock::readers_present(file)? {
        return Ok(Readers::none());
    }
    let (slots, unknown) = lock::pinned_slots(file)?;
    // The readers byte held and no slot: a reader of an earlier libzmap
    // (or one between its two locks): it may see anything.
    let unknown = unknown || slots.is_empty();
    Ok(Readers::from_slots(slots, unknown, current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_the_intervals_of_live_generations() {
        let r = Readers::from_slots(vec![7, 3, 7], false, 10);
        assert!(!r.is_empty());
        assert!(r.sees(0, 4));
        assert!(!r.sees(4, 7));
        assert!(r.sees(4, 8));
        assert!(!r.sees(8, 11));
        assert!(!r.sees(0, 3));
        assert!(Readers::from_slots(vec![], true, 9).sees(5, 6));
        assert!(!Readers::none().sees(0, u64::MAX));
        assert!(Readers::none().is_empty());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn lists_the_generations_other_opens_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let open = || File::open(&path).unwrap();
        let writer = open();
        assert!(live(&writer, 2000).unwrap().is_empty());
        let readers: Vec<File> = [5, 9, 9, 1000]
            .into_iter()
            .map(|g| {
                let f = open();
                lock::register_reader(&f).unwrap();
                lock::pin_generation(&f, g).unwrap();
                f
            })
            .collect();
        let r = live(&writer, 2000).unwrap();
        assert_eq!(r.generations, vec![5, 9, 1000]);
        assert!(!r.unknown);
        // A reader gone (its description closed) is gone from the list.
        drop(readers);
        assert!(live(&writer, 2000).unwrap().is_empty());
        // The readers byte without a slot: a reader that cannot be placed.
        let old = open();
        lock::register_reader(&old).unwrap();
        assert!(live(&writer, 2000).unwrap().sees(0, 1));
    }

    #[test]
    fn slots_past_the_current_commit_pin_everything() {
        let r = Readers::from_slots(vec![12], false, 10);
        assert!(r.sees(100, 101));
        // A slot wraps: the latest generation in it at or before current.
        let current = lock::SLOTS + 5;
        let r = Readers::from_slots(vec![3], false, current);
        assert!(r.sees(lock::SLOTS + 3, lock::SLOTS + 4));
        assert!(!r.sees(0, 4));
    }
}
