//! Compaction planning (DESIGN.md, "Compaction").
//!
//! A plan is a list of rounds; each round is a list of moves (object, new
//! offset) followed by a commit. A move may only target bytes that are free
//! *now*: the old place of an object moved in a round is referenced by the
//! committed header until the round's commit, so it becomes usable only in
//! the next round. Planning is a dry run on a copy of the free-space map, so
//! the writer replays exactly the `Space` calls the plan made, and several
//! plans can be compared before any byte is copied.
//!
//! Each round works at the *frontier*: objects packed from the header
//! region's end (each at the first offset its alignment allows after the
//! previous one) are final; the first object that is not is at `q`, and
//! `[p, q)` is a gap (free). The round fills the gap with objects that fit
//! entirely in it — the next objects in offset order (sliding) and objects
//! from the top of the file (filling) — and, when the gap cannot close this
//! round and is small for the bytes still to move, *parks* the objects that
//! stand just above it in free space past everything that will remain (or
//! past the end), so that after the commit the gap is wide: an object that
//! must move by less than its own length cannot be copied onto itself.

use std::collections::BTreeMap;

use super::space::{align_up, Space};
use crate::error::{Error, Result};

/// The order in which a round fills a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The objects right after the gap first (keeps the file's order).
    Slide,
    /// The longest objects that fit first, from anywhere above the gap.
    Fill,
    /// Like `Fill`, but only with objects above the last one that is
    /// expensive to move (longer than a round costs): taking an object from
    /// below such an object leaves a hole only moving it can close.
    Tail,
}

/// How to plan.
#[derive(Clone, Copy, Debug)]
pub struct How {
    pub order: Order,
    /// Park in any free space above an object before growing the file.
    pub park_low: bool,
    /// What a round costs, in copied-byte equivalents.
    pub commit_cost: u64,
    /// An extent's alignment, by its length.
    pub align: fn(u64) -> u64,
    pub limit: Limit,
}

/// When a dry run stops early.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Plan at most this many rounds (the plan is then incomplete).
    pub rounds: usize,
    /// Give up (`None`) once the plan costs more than this.
    pub cost: u64,
}

/// A dry-run result.
#[derive(Debug, Default)]
pub struct Plan {
    /// Per round, the moves: (index into the planned extents, new offset).
    pub rounds: Vec<Vec<(usize, u64)>>,
    /// Bytes copied in all.
    pub copied: u64,
    /// The highest byte the managed space reaches during the plan.
    pub peak: u64,
    /// Where the managed space ends after it.
    pub end: u64,
    /// False if it stopped at `Limit::rounds` before packing everything.
    pub complete: bool,
    /// When the first gap starts at the floor and does not close in the
    /// first round: the room left in front of the first object that stays.
    pub first_residual: u64,
}

impl Plan {
    /// Bytes copied plus `commit_cost` for each round.
    pub fn cost(&self, commit_cost: u64) -> u64 {
        self.copied
            .saturating_add(commit_cost.saturating_mul(self.rounds.len() as u64))
    }
}

/// The dry run's state.
struct Dry {
    space: Space,
    len: Vec<u64>,
    at: Vec<u64>,
    /// The committed header references the extent (all at first; one moved
    /// in this round is not referenced until the commit).
    committed: Vec<bool>,
    by_offset: BTreeMap<u64, usize>,
    /// Candidates for filling a gap: (length, offset) -> extent, the objects
    /// above the frontier that have not moved in this round.
    by_size: BTreeMap<(u64, u64), usize>,
    /// The round in which each extent last moved.
    moved_in: Vec<usize>,
    align: fn(u64) -> u64,
    round: usize,
    moves: Vec<(usize, u64)>,
}

impl Dry {
    /// Moves extent `i` to `to` (already taken). Its old place is released
    /// as the writer releases it: free after the commit when committed.
    fn relocate(&mut self, i: usize, to: u64) {
        let from = self.at[i];
        self.by_offset.remove(&from);
        self.by_size.remove(&(self.len[i], from));
        if self.committed[i] {
            self.space.free_after_commit(from, from + self.len[i], 0);
        } else {
            self.space.free(from, from + self.len[i]);
        }
        self.at[i] = to;
        self.committed[i] = false;
        self.by_offset.insert(to, i);
        self.moved_in[i] = self.round;
        self.moves.push((i, to));
    }

    /// Moves extent `i` into the gap at `cursor` if it fits before `q`.
    fn place(&mut self, i: usize, cursor: &mut u64, q: u64) -> Result<bool> {
        let len = self.len[i];
        let t = align_up(*cursor, (self.align)(len))?;
        if t + len > q || !self.space.take(t, t + len) {
            return Ok(false);
        }
        self.relocate(i, t);
        *cursor = t + len;
        Ok(true)
    }

    /// The objects from `q` on, in offset order, while each fits.
    fn slide(&mut self, cursor: &mut u64, q: u64) -> Result<()> {
        let mut from = q;
        while let Some((&o, &i)) = self.by_offset.range(from..).next() {
            if !self.place(i, cursor, q)? {
                break;
            }
            from = o + 1;
        }
        Ok(())
    }

    /// Best fit: the longest objects that fit the room left, the highest
    /// first among equals, until nothing fits.
    fn fill(&mut self, cursor: &mut u64, q: u64) -> Result<()> {
        let mut limit = q - *cursor;
        while limit > 0 {
            let Some((&(len, _), &i)) = self.by_size.range(..=(limit, u64::MAX)).next_back() else {
                break;
            };
            if self.place(i, cursor, q)? {
                limit = q - *cursor;
            } else {
                // Its alignment does not fit: only shorter objects may.
                let room = q.saturating_sub(align_up(*cursor, (self.align)(len))?);
                limit = room.min(len - 1);
            }
        }
        Ok(())
    }

    /// Advances `p` over the objects packed from it; the offset of the
    /// first one that is not (`None`: every object is packed).
    fn frontier(&mut self, p: &mut u64) -> Result<Option<u64>> {
        while let Some((&o, &i)) = self.by_offset.range(*p..).next() {
            let len = self.len[i];
            if align_up(*p, (self.align)(len))? != o {
                return Ok(Some(o));
            }
            self.by_size.remove(&(len, o));
            *p = o + len;
        }
        Ok(None)
    }

    /// The first object at or above `from` that did not move this round.
    fn staying(&self, from: u64) -> Option<(u64, usize)> {
        self.by_offset
            .range(from..)
            .find(|(_, &i)| self.moved_in[i] != self.round)
            .map(|(&o, &i)| (o, i))
    }
}

/// Plans the compaction of `extents` (offset, length; lengths > 0, all
/// committed, disjoint, at or above `floor`) over `space` (whose floor is
/// `floor`), packing from `floor`. Objects are parked past everything that
/// stays, or (`park_low`) in any free space above them (they move again
/// later, but the file does not grow), else past the end. `None` when the
/// plan would cost more than `how.limit.cost`.
pub fn plan(space: &Space, extents: &[(u64, u64)], floor: u64, how: &How) -> Result<Option<Plan>> {
    let How {
        order,
        park_low,
        commit_cost,
        align,
        limit,
    } = *how;
    let n = extents.len();
    let mut dry = Dry {
        space: space.clone(),
        len: extents.iter().map(|e| e.1).collect(),
        at: extents.iter().map(|e| e.0).collect(),
        committed: vec![true; n],
        by_offset: extents.iter().map(|e| e.0).zip(0..n).collect(),
        by_size: BTreeMap::new(),
        moved_in: vec![usize::MAX; n],
        align,
        round: 0,
        moves: Vec::new(),
    };
    if dry.by_offset.len() != n {
        return Err(Error::Internal("compaction: extents share an offset"));
    }
    // Nothing that stays ends past this, whatever the order: parking there
    // never takes a place a gap needs.
    let mut bound = floor;
    for &l in &dry.len {
        bound = bound
            .checked_add(align_up(l, 16)? + align(l) - 1)
            .ok_or(Error::Invalid("file offset overflows"))?;
    }
    let mut result = Plan {
        peak: dry.space.end(),
        ..Plan::default()
    };
    // Each round advances the frontier past an object, or parks one so
    // that the next round can.
    let max_rounds = 2 * n + 4;
    // Objects below this are packed for good: a round starts from it.
    let mut packed_to = floor;
    loop {
        dry.round = result.rounds.len();
        let tail = match order {
            Order::Tail => dry
                .by_offset
                .iter()
                .rev()
                .find(|(_, &i)| dry.len[i] > commit_cost)
                .map_or(0, |(&o, _)| o + 1),
            _ => 0,
        };
        dry.by_size = dry
            .by_offset
            .range(tail.max(packed_to)..)
            .map(|(&o, &i)| ((dry.len[i], o), i))
            .collect();
        let mut p = packed_to;
        let mut gaps = 0;
        // Gap after gap, as long as each one closes.
        while let Some(q) = dry.frontier(&mut p)? {
            // The first gap starts at the floor: the header region could
            // take what this gap cannot close.
            let first_gap = gaps == 0 && p == floor;
            gaps += 1;
            if dry.round >= max_rounds {
                return Err(Error::Internal("compaction does not converge"));
            }
            let mut cursor = p;
            match order {
                Order::Slide => {
                    dry.slide(&mut cursor, q)?;
                    dry.fill(&mut cursor, q)?;
                }
                Order::Fill | Order::Tail => {
                    dry.fill(&mut cursor, q)?;
                    dry.slide(&mut cursor, q)?;
                }
            }
            // Does the gap close (is the next object that stays packed)?
            let Some((ou, u)) = dry.staying(q) else {
                break;
            };
            let residual = ou - cursor;
            if align_up(cursor, align(dry.len[u]))? == ou {
                p = cursor;
                continue;
            }
            packed_to = p;
            if dry.round == 0 && first_gap {
                result.first_residual = residual;
            }
            // Widen the gap: park what stands above it until the gap is
            // worth a round (sqrt(bytes left x commit cost) balances the
            // copies against the rounds), at least one object if nothing
            // moved.
            let left: u64 = dry.by_offset.range(ou..).map(|(_, &i)| dry.len[i]).sum();
            let want = isqrt(left.saturating_mul(commit_cost)).min(left);
            let mut gap = residual;
            let mut from = ou;
            while gap < want || dry.moves.is_empty() {
                // Past `bound` an object is out of the way, unless nothing
                // else can move.
                let Some((o, i)) = dry
                    .staying(from)
                    .filter(|&(o, _)| o < bound || dry.moves.is_empty())
                else {
                    break;
                };
                let (len, a) = (dry.len[i], align(dry.len[i]));
                let dest = match dry.space.park(len, a, bound) {
                    Some(d) => d,
                    None => match park_low.then(|| dry.space.park(len, a, o + len)).flatten() {
                        Some(d) => d,
                        None => dry.space.alloc_past_end(len, a)?,
                    },
                };
                dry.relocate(i, dest);
                from = o + 1;
                // The gap now reaches the next object that stays.
                gap = dry.staying(from).map_or(u64::MAX, |(o2, _)| o2 - cursor);
            }
            break;
        }
        if dry.moves.is_empty() {
            if dry.frontier(&mut floor.clone())?.is_none() {
                break;
            }
            return Err(Error::Internal("compaction made no progress"));
        }
        let moves = std::mem::take(&mut dry.moves);
        if moves.is_empty() {
            return Err(Error::Internal("compaction made no progress"));
        }
        result.peak = result.peak.max(dry.space.end());
        result.copied += moves.iter().map(|&(i, _)| dry.len[i]).sum::<u64>();
        // The round's commit: what it released becomes free.
        dry.space.release_all();
        dry.committed.iter_mut().for_each(|c| *c = true);
        dry.space.trim();
        result.rounds.push(moves);
        if result.cost(commit_cost) > limit.cost {
            return Ok(None);
        }
        if result.rounds.len() >= limit.rounds {
            break;
        }
    }
    result.end = dry.space.end();
    result.complete = dry.frontier(&mut packed_to)?.is_none();
    Ok(Some(result))
}

/// The plan while readers are open (DESIGN.md, "Reader protocol"): the old
/// place of every object moved stays in their snapshots until they leave,
/// so no gap it leaves can be closed now and the packed layout is out of
/// reach. One round moves the highest objects, each into the lowest free
/// space below it that holds it; once the readers are gone, what lies above
/// is free and the file shorter. `end` is where the file ends then.
pub fn fill_from_top(space: &Space, extents: &[(u64, u64)], align: fn(u64) -> u64) -> Plan {
    let mut space = space.clone();
    let mut order: Vec<usize> = (0..extents.len()).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(extents[i].0));
    let mut moves = Vec::new();
    let mut copied = 0;
    for i in order {
        let (offset, len) = extents[i];
        if let Some(to) = space.lowest_fit(len, align(len), offset) {
            space.free_after_commit(offset, offset + len, 0);
            moves.push((i, to));
            copied += len;
        }
    }
    let peak = space.end();
    space.release_all();
    space.trim();
    Plan {
        complete: true,
        end: space.end(),
        peak,
        copied,
        first_residual: 0,
        rounds: if moves.is_empty() {
            Vec::new()
        } else {
            vec![moves]
        },
    }
}

fn isqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r.saturating_mul(r) > x {
        r -= 1;
    }
    while (r + 1).saturating_mul(r + 1) <= x {
        r += 1;
    }
    r
}
