//! One input's kept rows in a join: the batches they came in, a chain per
//! key number through them (each row points at the row kept before it with
//! the same key), which rows were taken back, and — for a side an outer
//! join preserves — how many rows of the other side each one matches.
//!
//! Kept batches that are next to each other are merged as they grow (as a
//! binary counter, up to 64 Ki rows: a row is copied a few times at most,
//! and row ids, which count rows over all batches, never change), so a
//! side holds few batches whatever its input's batch sizes. Rows taken back stay as dead rows
//! until the join rebuilds the side from its live rows.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{make_comparator, BooleanArray, DynComparator, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, SortOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::Result;

/// No row.
pub(super) const NONE: usize = usize::MAX;

/// Kept batches grow by merging up to this many rows.
const MERGED_ROWS: usize = 64 * 1024;

pub(super) struct Side {
    pub(super) schema: SchemaRef,
    /// Its join keys, over its rows.
    pub(super) keys: Vec<Arc<dyn PhysicalExpr>>,
    pub(super) batches: Vec<RecordBatch>,
    /// The id of each batch's first row.
    starts: Vec<usize>,
    /// Per row: the row kept before it with the same key, or `NONE`.
    next: Vec<usize>,
    /// Per row: taken back (or never live: a taking-back row itself).
    dead: Vec<bool>,
    /// Per key number: its last kept row, or `NONE`.
    pub(super) head: Vec<usize>,
    pub(super) live: usize,
    /// Per row, when the side is counted (an outer join preserves it): how
    /// many live rows of the other side it matches.
    pub(super) matches: Vec<u32>,
    counted: bool,
}

impl Side {
    pub(super) fn new(schema: SchemaRef, keys: Vec<Arc<dyn PhysicalExpr>>, counted: bool) -> Side {
        Side {
            schema,
            keys,
            batches: Vec::new(),
            starts: Vec::new(),
            next: Vec::new(),
            dead: Vec::new(),
            head: Vec::new(),
            live: 0,
            matches: Vec::new(),
            counted,
        }
    }

    pub(super) fn counted(&self) -> bool {
        self.counted
    }

    /// Rows kept, dead ones included.
    pub(super) fn rows(&self) -> usize {
        self.next.len()
    }

    /// Row `id` as (batch, row in it).
    pub(super) fn locate(&self, id: usize) -> (usize, usize) {
        let b = self.starts.partition_point(|&s| s <= id) - 1;
        (b, id - self.starts[b])
    }

    /// Keeps `batch`; its rows start dead (`link` makes them live).
    /// Returns the id of its first row.
    pub(super) fn keep(&mut self, batch: RecordBatch) -> usize {
        let base = self.rows();
        let n = batch.num_rows();
        self.starts.push(base);
        self.batches.push(batch);
        self.next.resize(base + n, NONE);
        self.dead.resize(base + n, true);
        if self.counted {
            self.matches.resize(base + n, 0);
        }
        base
    }

    /// Keeps `batch` with every row live, row `i` under key number
    /// `groups[i]`. Returns the id of its first row.
    pub(super) fn keep_live(&mut self, batch: RecordBatch, groups: &[usize]) -> usize {
        let base = self.keep(batch);
        for (i, &g) in groups.iter().enumerate() {
            self.link(base + i, g);
        }
        base
    }

    /// Row `id` is live, under key number `group`.
    pub(super) fn link(&mut self, id: usize, group: usize) {
        self.next[id] = self.head[group];
        self.dead[id] = false;
        self.head[group] = id;
        self.live += 1;
    }

    pub(super) fn is_dead(&self, id: usize) -> bool {
        self.dead[id]
    }

    /// Row `id` is gone (an interval join freed it).
    pub(super) fn kill(&mut self, id: usize) {
        if !std::mem::replace(&mut self.dead[id], true) {
            self.live -= 1;
        }
    }

    /// The live rows of key number `group`, newest first.
    pub(super) fn live_of(&self, group: usize) -> impl Iterator<Item = usize> + '_ {
        let mut r = self.head.get(group).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            while r != NONE {
                let id = r;
                r = self.next[r];
                if !self.dead[id] {
                    return Some(id);
                }
            }
            None
        })
    }

    /// Takes back the newest live row of key number `group` equal (every
    /// column) to row `row` of `batch`; returns its id, `None` when there
    /// is none. `cmp` caches comparators per kept batch.
    pub(super) fn take_back(
        &mut self,
        group: usize,
        batch: &RecordBatch,
        row: usize,
        cmp: &mut HashMap<usize, Vec<DynComparator>>,
    ) -> Result<Option<usize>> {
        let candidates: Vec<usize> = self.live_of(group).collect();
        for id in candidates {
            let (b, r) = self.locate(id);
            if let std::collections::hash_map::Entry::Vacant(slot) = cmp.entry(b) {
                let kept = &self.batches[b];
                let made = batch
                    .columns()
                    .iter()
                    .zip(kept.columns())
                    .map(|(a, k)| make_comparator(a.as_ref(), k.as_ref(), SortOptions::default()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                slot.insert(made);
            }
            if cmp[&b].iter().all(|c| c(row, r).is_eq()) {
                self.dead[id] = true;
                self.live -= 1;
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Merges the last kept batches while the last is as long as the one
    /// before it, up to `MERGED_ROWS` rows: past that a row would be copied
    /// again and again for little (a probe finds its batch by binary search
    /// either way).
    pub(super) fn merge_tail(&mut self) -> Result<()> {
        while let [.., a, b] = self.batches.as_slice() {
            if b.num_rows() < a.num_rows() || a.num_rows() + b.num_rows() > MERGED_ROWS {
                break;
            }
            let merged = concat_batches(&self.schema, [a, b])?;
            self.batches.truncate(self.batches.len() - 2);
            self.starts.pop();
            self.batches.push(merged);
        }
        Ok(())
    }

    /// Its live rows, in one batch, with their match counts when counted.
    pub(super) fn live_rows(&self) -> Result<(RecordBatch, Option<UInt32Array>)> {
        let mut parts = Vec::with_capacity(self.batches.len());
        for (b, batch) in self.batches.iter().enumerate() {
            let start = self.starts[b];
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|r| Some(!self.dead[start + r]))
                .collect();
            parts.push(filter_record_batch(batch, &keep)?);
        }
        let counts = self.counted.then(|| {
            (0..self.rows())
                .filter(|&id| !self.dead[id])
                .map(|id| self.matches[id])
                .collect::<UInt32Array>()
        });
        Ok((concat_batches(&self.schema, &parts)?, counts))
    }

    /// Forgets every row (its key numbers stay).
    pub(super) fn clear(&mut self) {
        self.batches.clear();
        self.starts.clear();
        self.next.clear();
        self.dead.clear();
        self.matches.clear();
        self.head.iter_mut().for_each(|h| *h = NONE);
        self.live = 0;
    }

    pub(super) fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self.next.len() * (std::mem::size_of::<usize>() + 1)
            + self.matches.len() * 4
            + self.head.len() * std::mem::size_of::<usize>()
    }
}
