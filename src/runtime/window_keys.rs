//! Group keys shared by overlapping windows.
//!
//! A HOP window of size `n × slide` holds each key in up to `n` open windows
//! at once. Giving every window its own DataFusion `GroupValues` stores the
//! key and a hash slot `n` times over, which made a window group cost 2.7×
//! its raw aggregate state. Instead the operator keeps one [`SharedKeys`]
//! table (key → id, any key types) and each window a [`SlotMap`]: a dense
//! array over a range of shared ids giving the window's own group number,
//! which indexes its `GroupsAccumulator`s. A key is hashed once per row,
//! stored once, and a window's group costs its accumulator state plus four
//! bytes.
//!
//! `GroupValues` can hand its keys out only by draining, so closing windows
//! drains the table ([`SharedKeys::drain`]) and refills it with the keys
//! that open windows still hold ([`SharedKeys::refill`]): ids stay dense
//! and in order, and windows renumber through [`SlotMap::remap`]. Keys are
//! freed with the last window that holds them.

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::key_table::key_table;
use super::state::keep_group_keys;
use crate::error::Result;

/// No group of this window has the key.
const NONE: u32 = u32::MAX;

/// One key table for every open window of an operator.
pub(crate) struct SharedKeys {
    schema: SchemaRef,
    table: Box<dyn GroupValues>,
}

impl SharedKeys {
    pub(crate) fn new(schema: SchemaRef) -> Result<SharedKeys> {
        Ok(SharedKeys {
            table: key_table(&schema, 0)?,
            schema,
        })
    }

    /// The id of every row's key into `ids` (new keys get the next ids,
    /// in order).
    pub(crate) fn intern(&mut self, keys: &[ArrayRef], ids: &mut Vec<usize>) -> Result<()> {
        ids.clear();
        Ok(self.table.intern(keys, ids)?)
    }

    pub(crate) fn size(&self) -> usize {
        self.table.size()
    }

    /// Every key, by id, leaving the table as it was.
    pub(crate) fn keys(&mut self) -> Result<Vec<ArrayRef>> {
        keep_group_keys(self.table.as_mut())
    }

    /// Every key, by id, leaving the table empty: [`refill`](Self::refill)
    /// it next.
    pub(crate) fn drain(&mut self) -> Result<Vec<ArrayRef>> {
        let keys = self.table.emit(EmitTo::All)?;
        // Emitting may leave a table its old capacity: start anew.
        self.table = key_table(&self.schema, 0)?;
        Ok(keys)
    }

    /// Refills a drained table with the keys (by old id) that `live` says
    /// are still held, and returns each old id's new one (`u32::MAX` for a
    /// dropped key). New ids keep the old order.
    pub(crate) fn refill(&mut self, all: &[ArrayRef], live: &[bool]) -> Result<Vec<u32>> {
        let mut new_of_old = Vec::with_capacity(live.len());
        let mut kept = Vec::new();
        for (old, &l) in live.iter().enumerate() {
            if l {
                new_of_old.push(kept.len() as u32);
                kept.push(old as u32);
            } else {
                new_of_old.push(NONE);
            }
        }
        if !kept.is_empty() {
            // Sized for the keys kept, not grown to them by doubling.
            self.table = key_table(&self.schema, kept.len())?;
            let kept = UInt32Array::from(kept);
            let keys = all
                .iter()
                .map(|k| Ok(take(k, &kept, None)?))
                .collect::<Result<Vec<_>>>()?;
            self.table
                .intern(&keys, &mut Vec::with_capacity(kept.len()))?;
        }
        Ok(new_of_old)
    }
}

/// A window's groups: its group number for a range of shared key ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotMap {
    /// The shared id of `slots[0]`.
    lo: usize,
    slots: Vec<u32>,
    groups: usize,
}

impl SlotMap {
    /// The window's groups.
    pub(crate) fn len(&self) -> usize {
        self.groups
    }

    pub(crate) fn size(&self) -> usize {
        self.slots.capacity() * size_of::<u32>()
    }

    /// The group of each shared id in `ids` (a new group for an id the
    /// window has not had), into `out`.
    pub(crate) fn map(&mut self, ids: impl Iterator<Item = usize> + Clone, out: &mut Vec<usize>) {
        out.clear();
        let (Some(min), Some(max)) = (ids.clone().min(), ids.clone().max()) else {
            return;
        };
        self.cover(min, max);
        for id in ids {
            let slot = &mut self.slots[id - self.lo];
            if *slot == NONE {
                *slot = self.groups as u32;
                self.groups += 1;
            }
            out.push(*slot as usize);
        }
    }

    /// Widens the range to hold ids `min..=max`.
    fn cover(&mut self, min: usize, max: usize) {
        if self.slots.is_empty() {
            self.lo = min;
            self.slots = vec![NONE; max - min + 1];
            return;
        }
        if min < self.lo {
            let mut slots = Vec::with_capacity(self.slots.len() + (self.lo - min));
            slots.resize(self.lo - min, NONE);
            slots.extend_from_slice(&self.slots);
            self.slots = slots;
            self.lo = min;
        }
        if max >= self.lo + self.slots.len() {
            self.slots.resize(max - self.lo + 1, NONE);
        }
    }

    /// The shared id of each group, in group order.
    pub(crate) fn ids(&self) -> UInt32Array {
        let mut ids = vec![0u32; self.groups];
        for (i, &slot) in self.slots.iter().enumerate() {
            if slot != NONE {
                ids[slot as usize] = (self.lo + i) as u32;
            }
        }
        UInt32Array::from(ids)
    }

    /// Marks the shared ids this window holds.
    pub(crate) fn mark(&self, live: &mut [bool]) {
        for (i, &slot) in self.slots.iter().enumerate() {
            if slot != NONE {
                live[self.lo + i] = true;
            }
        }
    }

    /// Renumbers shared ids after [`SharedKeys::refill`]; every id this
    /// window holds must have been kept.
    pub(crate) fn remap(&mut self, new_of_old: &[u32]) {
        let held = |&(_, &s): &(usize, &u32)| s != NONE;
        let first = self.slots.iter().enumerate().find(held);
        let last = self.slots.iter().enumerate().rfind(held);
        let (Some((first, _)), Some((last, _))) = (first, last) else {
            self.slots = Vec::new();
            return;
        };
        let lo = new_of_old[self.lo + first] as usize;
        let hi = new_of_old[self.lo + last] as usize;
        let mut slots = vec![NONE; hi - lo + 1];
        for (i, &slot) in self.slots.iter().enumerate() {
            if slot != NONE {
                slots[new_of_old[self.lo + i] as usize - lo] = slot;
            }
        }
        self.lo = lo;
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn keys(values: &[i64]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(values.to_vec()))]
    }

    fn values(keys: &[ArrayRef]) -> Vec<i64> {
        keys[0].as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn windows_number_their_groups_over_shared_ids() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let mut shared = SharedKeys::new(schema).unwrap();
        let (mut a, mut b) = (SlotMap::default(), SlotMap::default());
        let mut out = Vec::new();

        let mut ids = Vec::new();
        shared.intern(&keys(&[10, 20, 10, 30]), &mut ids).unwrap();
        assert_eq!(ids, [0, 1, 0, 2]);
        a.map(ids[..3].iter().copied(), &mut out);
        assert_eq!(out, [0, 1, 0]);
        b.map([1, 2, 2].into_iter(), &mut out);
        assert_eq!(out, [0, 1, 1]);
        // A lower id than the window has seen widens its range downwards.
        b.map([0, 2].into_iter(), &mut out);
        assert_eq!(out, [2, 1]);
        assert_eq!((a.len(), b.len()), (2, 3));
        assert_eq!(b.ids().values().to_vec(), [1, 2, 0]);

        // Window `b` closes: only `a`'s keys stay, in their order.
        let all = shared.drain().unwrap();
        assert_eq!(values(&all), [10, 20, 30]);
        let mut live = vec![false; all[0].len()];
        a.mark(&mut live);
        assert_eq!(live, [true, true, false]);
        let new_of_old = shared.refill(&all, &live).unwrap();
        assert_eq!(new_of_old, [0, 1, NONE]);
        a.remap(&new_of_old);
        assert_eq!(values(&shared.keys().unwrap()), [10, 20]);
        assert_eq!(a.ids().values().to_vec(), [0, 1]);
    }

    #[test]
    fn remapping_keeps_a_windows_groups() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let mut shared = SharedKeys::new(schema).unwrap();
        let (mut old, mut young) = (SlotMap::default(), SlotMap::default());
        let mut out = Vec::new();
        let mut ids = Vec::new();
        shared.intern(&keys(&[1, 2, 3, 4, 5]), &mut ids).unwrap();
        old.map(ids[..3].iter().copied(), &mut out);
        young.map([4, 2].into_iter(), &mut out);
        assert_eq!(out, [0, 1]);

        let all = shared.drain().unwrap();
        let mut live = vec![false; all[0].len()];
        young.mark(&mut live);
        let new_of_old = shared.refill(&all, &live).unwrap();
        young.remap(&new_of_old);
        // Keys 3 and 5 keep their groups 1 and 0, under ids 0 and 1.
        assert_eq!(values(&shared.keys().unwrap()), [3, 5]);
        assert_eq!(young.ids().values().to_vec(), [1, 0]);
        young.map([0, 1, 1].into_iter(), &mut out);
        assert_eq!(out, [1, 0, 0]);
        assert_eq!(young.len(), 2);
    }
}
