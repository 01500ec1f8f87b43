//! Running a compaction (DESIGN.md, "Compaction"): choosing among the plans
//! `compact.rs` makes, and carrying one out, a commit per round.

use super::compact;
use super::format::PREFIX_LEN;
use super::index::{Index, Object};
use super::lock;
use super::readers;
use super::space::align_up;
use super::storage::Storage;
use super::store::{CHUNK, PAGE, SIZE_WEIGHT, SMALL_ALIGN};
use super::writer::{align_for, Writer};
use crate::error::{Error, Result};

impl<S: Storage> Writer<S> {
    /// Rewrites the file without holes (DESIGN.md, "Compaction").
    pub(super) fn compact(&mut self) -> Result<(u64, u64)> {
        self.commit()?;
        let before = self.file.settled_file()?.metadata()?.len();
        // What no live reader sees is free; what they see stays as it is
        // (DESIGN.md, "Reader protocol"): the plan works around it.
        let live = readers::live(self.file.as_file(), self.generation)?;
        self.release_unseen(&live, false);
        let pinned = !live.is_empty();
        // Spare capacity goes back; empty objects give up their extents (the
        // committed header gives them offset 0 already), bytes a reader may
        // still see once the others' readers are gone.
        for o in self.objects.values_mut() {
            let kept = o.committed.min(o.cap);
            if o.len == 0 {
                self.space
                    .defer(o.offset, o.offset + kept, o.born, self.generation);
                self.space.free(o.offset + kept, o.offset + o.cap);
                o.offset = 0;
                o.cap = 0;
                o.committed = 0;
            } else if o.cap > o.len.max(kept) {
                self.space
                    .free(o.offset + o.len.max(kept), o.offset + o.cap);
                o.cap = o.len.max(kept);
            }
        }
        self.space.trim();
        // The header region must hold every header written while compacting:
        // each offset may take as many digits as the largest one can have.
        self.serialize(self.next_generation()?)?;
        let json_len = self.buf.len() as u64 - PREFIX_LEN;
        let widest = digits(before.saturating_mul(3).saturating_add(CHUNK));
        let widening: u64 = self
            .objects
            .values()
            .filter(|o| o.len > 0)
            .map(|o| widest.saturating_sub(digits(o.offset)))
            .sum();
        // And the header at 0 now, which readers may have left padded
        // (`Writer::header_high`): it is the committed one until the first
        // round's record is durable, so no object may move over it before.
        let need = (PREFIX_LEN + json_len + widening + 24).max(self.header_len);
        let min_floor = align_up(need, SMALL_ALIGN)?;
        // Room the header region may keep when that spares moving data.
        let max_floor = min_floor + (min_floor / 4).max(PAGE);
        let mut keys: Vec<String> = Vec::new();
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for (k, o) in self.objects.iter() {
            if o.len > 0 {
                keys.push(k.to_string());
                extents.push((o.offset, o.len));
            }
        }
        // Packed already, with a header region at most twice the least it
        // can be: nothing to do (and a second compaction does nothing).
        let floor = self.space.floor();
        if !(floor <= min_floor.saturating_mul(2) && packed(floor, &mut extents.clone())?) {
            let (floor, plan) = if pinned {
                // Offsets only fall: the header keeps fitting its region.
                (
                    floor,
                    compact::fill_from_top(&self.space, &extents, align_for),
                )
            } else {
                if min_floor > floor {
                    // Rare: the header may outgrow its region meanwhile.
                    self.move_out_of_header_region(min_floor)?;
                    self.commit()?;
                    for (i, k) in keys.iter().enumerate() {
                        extents[i].0 = self.object_at(k)?.offset;
                    }
                }
                self.choose_plan(&extents, min_floor, max_floor)?
            };
            // A plan that would not make the file smaller is not worth its
            // copies, and compaction must never make a file larger.
            if plan.rounds.is_empty() || align_up(plan.end, PAGE)? >= before {
                return Ok((before, self.file_len));
            }
            if floor < self.space.floor() {
                self.space.lower_floor(floor);
            } else {
                self.space.raise_floor(floor);
            }
            for moves in &plan.rounds {
                for &(i, to) in moves {
                    let o = self.object_at(&keys[i])?.clone();
                    if !self.space.take(to, to + o.len) {
                        // Only a reader that opened meanwhile and sees the
                        // old places keeps them: stop with everything
                        // committed, partly compacted.
                        self.commit()?;
                        if lock::readers_present(self.file.as_file())? {
                            return Ok((before, self.file_len));
                        }
                        return Err(Error::Internal("compaction plan and free space disagree"));
                    }
                    self.relocate(&keys[i], &o, to)?;
                }
                self.commit()?;
            }
        }
        self.space.trim();
        let size = align_up(self.space.end(), PAGE)?;
        if size < self.file_len {
            lock::with_header_lock(self.file.as_file(), true, || Ok(self.file.set_len(size)?))?;
            self.file_len = size;
        }
        Ok((before, self.file_len))
    }

    /// The cheapest compaction plan with a header region of `min_floor` to
    /// `max_floor` bytes (DESIGN.md, "Compaction"): the region ends where
    /// the objects already start, or where the gap the tightest plan could
    /// not close begins, or as low as it may.
    pub(super) fn choose_plan(
        &self,
        extents: &[(u64, u64)],
        min_floor: u64,
        max_floor: u64,
    ) -> Result<(u64, compact::Plan)> {
        let commit_cost = self.header_len.saturating_mul(2).saturating_add(CHUNK);
        let plan_at = |floor: u64, order: compact::Order, low: bool, limit: compact::Limit| {
            let mut space = self.space.clone();
            if floor < space.floor() {
                space.lower_floor(floor);
            } else {
                space.raise_floor(floor);
            }
            let how = compact::How {
                order,
                park_low: low,
                commit_cost,
                align: align_for,
                limit,
            };
            compact::plan(&space, extents, floor, &how)
        };
        let orders = [
            compact::Order::Tail,
            compact::Order::Fill,
            compact::Order::Slide,
        ];
        // No object may lie below the header region's end.
        let first = extents.iter().map(|e| e.0).min().unwrap_or(u64::MAX);
        let max_floor = max_floor.min(first);
        // The region may end where the objects start already, or take the
        // gap a first round could not close in front of the first object
        // that stays; or it is as small as it can be.
        let mut floors = Vec::new();
        if (min_floor..=max_floor).contains(&first) && first % SMALL_ALIGN == 0 {
            floors.push(first);
        }
        let probe = compact::Limit {
            rounds: 1,
            cost: u64::MAX,
        };
        for order in orders {
            if let Ok(Some(plan)) = plan_at(min_floor, order, false, probe) {
                let shifted = align_up(min_floor + plan.first_residual, SMALL_ALIGN)?;
                if plan.first_residual > 0 && shifted <= max_floor && !floors.contains(&shifted) {
                    floors.push(shifted);
                }
            }
        }
        if !floors.contains(&min_floor) {
            floors.push(min_floor);
        }
        // The cheapest plan that never takes the data past the file's end;
        // if all do, the cheapest with growth counting four times. The
        // result's size counts too: a byte saved is worth copying
        // SIZE_WEIGHT bytes.
        let data: u64 = extents.iter().map(|e| e.1).sum();
        // Planning effort: this many dry-run rounds in all, the first plan
        // (the likely one) exempt. Every round is O(objects log objects).
        let mut rounds_left = usize::MAX;
        let budget = 64;
        let mut best: Option<((bool, u64), u64, compact::Plan)> = None;
        for &floor in &floors {
            for order in orders {
                for low in [false, true] {
                    if rounds_left == 0 {
                        break;
                    }
                    let limit = compact::Limit {
                        rounds: rounds_left,
                        // Only a plan that does not grow the file can be
                        // beaten by cost alone; this one ends at least as
                        // far as its data reaches.
                        cost: match &best {
                            Some(((false, cost), _, _)) => {
                                let least = align_up(floor + data, PAGE)?;
                                match cost.checked_sub(least.saturating_mul(SIZE_WEIGHT)) {
                                    Some(limit) => limit,
                                    None => continue,
                                }
                            }
                            _ => u64::MAX,
                        },
                    };
                    // A strategy that cannot finish leaves it to the others.
                    let plan = match plan_at(floor, order, low, limit) {
                        Ok(Some(plan)) => plan,
                        // Too dear: parking elsewhere would not make it cheap.
                        Ok(None) => break,
                        Err(Error::Internal(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    rounds_left = rounds_left.saturating_sub(plan.rounds.len());
                    if !plan.complete {
                        break;
                    }
                    let growth = plan.peak.saturating_sub(self.file_len);
                    let size = align_up(plan.end, PAGE)?;
                    let cost = (
                        growth > 0,
                        plan.cost(commit_cost)
                            .saturating_add(growth.saturating_mul(4))
                            .saturating_add(size.saturating_mul(SIZE_WEIGHT)),
                    );
                    let better = match &best {
                        Some(b) => cost < b.0,
                        None => true,
                    };
                    if best.is_none() {
                        rounds_left = budget;
                    }
                    if better {
                        best = Some((cost, floor, plan));
                    }
                    if growth == 0 {
                        // Parking low only helps a plan that grows the file.
                        break;
                    }
                }
            }
        }
        let (_, floor, plan) = best.ok_or(Error::Internal("no compaction plan"))?;
        Ok((floor, plan))
    }

    /// Copies object `key` (currently `o`) to `[at, at + len)`, which the
    /// caller has taken, with a tight capacity.
    pub(super) fn relocate(&mut self, key: &str, o: &Object, at: u64) -> Result<()> {
        if let Err(e) = self.copy(o.offset, at, o.len) {
            self.space.free(at, at + o.len);
            self.space.trim();
            return Err(e);
        }
        Self::release(&mut self.space, o);
        let moved = self
            .objects
            .get_mut(key)
            .ok_or(Error::Internal("object vanished"))?;
        moved.offset = at;
        moved.cap = o.len;
        moved.committed = 0;
        self.dirty = true;
        Ok(())
    }
}

/// Decimal digits of `n`.
pub(super) fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

/// True if the extents (offset, length) are packed from `floor` by the
/// alignment policy, with nothing between them but alignment padding.
pub(super) fn packed(floor: u64, extents: &mut [(u64, u64)]) -> Result<bool> {
    extents.sort_unstable();
    let mut p = floor;
    for &(offset, len) in extents.iter() {
        if align_up(p, align_for(len))? != offset {
            return Ok(false);
        }
        p = offset + len;
    }
    Ok(true)
}

/// The gaps a committed header leaves: how many runs of bytes between the
/// header and the end of the file no object references (alignment padding
/// included), and how many bytes they hold. What compaction can give back.
pub(super) fn snapshot_gaps(objects: &Index, header_len: u64, file_len: u64) -> (u64, u64) {
    let mut extents: Vec<(u64, u64)> = objects
        .values()
        .filter(|o| o.len > 0)
        .map(|o| (o.offset, o.offset + o.len))
        .collect();
    extents.sort_unstable();
    let (mut holes, mut bytes, mut covered) = (0, 0, header_len);
    for (start, end) in extents.into_iter().chain([(file_len, file_len)]) {
        if start > covered {
            holes += 1;
            bytes += start - covered;
        }
        covered = covered.max(end);
    }
    (holes, bytes)
}
