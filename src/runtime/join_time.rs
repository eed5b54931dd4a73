//! What a join bounded by event time (an interval, window or temporal
//! join) does with its rows' times: which rows arrive late, when kept rows
//! are freed (in buckets of their expiry), and which candidate pairs an
//! interval join's bounds rule out before any pair is gathered.

use std::cmp::Reverse;

use datafusion::arrow::array::{AsArray, BooleanArray, Int64Array, UInt8Array};
use datafusion::arrow::compute::{filter, filter_record_batch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;

use super::JoinOperator;
use crate::error::Result;
use crate::metrics::PipelineMetrics;
use crate::plan::Interval;
use crate::runtime::join_output::{Candidates, Piece};
use crate::runtime::window_assign::millis;
use crate::stream::{Op, StreamBatch};

/// An interval join files its kept rows by when they are freed in buckets
/// this wide (ms): one map operation per bucket a batch's rows fall in,
/// where a heap took one operation per row (a quarter of an interval
/// join's time).
const BUCKET_MS: i64 = 100;

impl JoinOperator {
    /// An interval or temporal join's event times of `batch`'s rows at
    /// `side`, in ms.
    pub(super) fn times(&self, side: usize, batch: &RecordBatch) -> Result<Option<Int64Array>> {
        let (column, shift) = match (self.interval, self.temporal) {
            (Some(i), _) if side == 0 => (i.left_time, i.left_shift),
            (Some(i), _) => (i.right_time, i.right_shift),
            (None, Some(t)) => t.time_of(side),
            (None, None) => return Ok(None),
        };
        let ms = millis(batch.column(column))?;
        let ms = ms.as_primitive::<Int64Type>();
        Ok(Some(if shift == 0 {
            ms.clone()
        } else {
            ms.unary(|t| t.saturating_add(shift))
        }))
    }

    /// An interval or temporal join's rows of `batch` at `side` that are
    /// not behind the watermark (counted as late), with their ops.
    pub(super) fn on_time(
        &self,
        side: usize,
        batch: RecordBatch,
        ops: Option<UInt8Array>,
    ) -> Result<(RecordBatch, Option<UInt8Array>)> {
        let (Some(times), Some(w)) = (self.times(side, &batch)?, self.watermark) else {
            return Ok((batch, ops));
        };
        let keep: BooleanArray = times
            .iter()
            .map(|t| Some(t.is_none_or(|t| t >= w)))
            .collect();
        let late = keep.false_count();
        if late == 0 {
            return Ok((batch, ops));
        }
        PipelineMetrics::add(&self.metrics.late, late as u64);
        let ops = ops
            .map(|o| filter(&o, &keep))
            .transpose()?
            .map(|o| UInt8Array::from(o.to_data()));
        Ok((filter_record_batch(&batch, &keep)?, ops))
    }

    /// An interval join's kept rows `base..` of `side` (times `times`,
    /// key numbers `self.groups`) wait to be freed; a temporal join's wait
    /// for the watermark to pass their time.
    pub(super) fn schedule(&mut self, side: usize, base: usize, times: &Int64Array) {
        let Some(interval) = self.interval else {
            for (r, (t, g)) in times.values().iter().zip(&self.groups).enumerate() {
                self.expiry[side].push(Reverse((*t, base + r, *g)));
            }
            return;
        };
        if interval.checked {
            let kept = &mut self.kept_times[side];
            kept.resize(base, 0);
            kept.extend_from_slice(times.values());
        }
        // The batch's rows by bucket (a batch spans a few buckets, its
        // disorder's worth): one map operation per bucket.
        let mut rows: Vec<(i64, i64, usize)> = times
            .values()
            .iter()
            .enumerate()
            .map(|(r, t)| {
                let at = interval.expiry(side, *t);
                (at.div_euclid(BUCKET_MS), at, base + r)
            })
            .collect();
        rows.sort_unstable_by_key(|&(bucket, _, _)| bucket);
        let buckets = &mut self.buckets[side];
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            buckets
                .entry(run[0].0)
                .or_default()
                .extend(run.iter().map(|&(_, at, id)| (at, id)));
        }
    }

    /// An interval join's kept rows of `side` the watermark `w` has passed
    /// (taken out of their buckets).
    pub(super) fn due(&mut self, side: usize, w: i64) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(mut bucket) = self.buckets[side].first_entry() {
            let b = *bucket.key();
            if b.saturating_mul(BUCKET_MS) >= w {
                break;
            }
            if (b + 1).saturating_mul(BUCKET_MS) <= w {
                due.extend(bucket.remove().into_iter().map(|(_, id)| id));
                continue;
            }
            // The bucket `w` falls in: only its rows before `w`.
            let rows = bucket.get_mut();
            rows.retain(|&(at, id)| {
                if at < w {
                    due.push(id);
                }
                at >= w
            });
            if rows.is_empty() {
                bucket.remove();
            }
            break;
        }
        due
    }

    /// Frees the rows the watermark `w` has passed; an outer join emits
    /// those of a side it preserves that never matched, padded.
    pub(super) fn expire(&mut self, w: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        let mut freed = 0u64;
        for side in 0..2 {
            let mut padded = Vec::new();
            for id in self.due(side, w) {
                if self.sides[side].is_dead(id) {
                    continue;
                }
                if self.emits_unmatched(side) && self.sides[side].matches[id] == 0 {
                    padded.push((Piece::Kept(id), Op::Insert));
                }
                self.sides[side].kill(id);
                freed += 1;
            }
            self.emit_kept(side, &padded, out)?;
        }
        PipelineMetrics::add(&self.metrics.evicted, freed);
        self.compact()
    }

    /// The candidate pairs of rows arrived at `side` (times `times`) whose
    /// right time minus left time lies in interval `i`.
    pub(super) fn within(
        &self,
        side: usize,
        i: Interval,
        times: &Int64Array,
        candidates: Candidates,
    ) -> Candidates {
        let kept = &self.kept_times[1 - side];
        let mut out = Candidates::default();
        for (&p, &m) in candidates.probe.iter().zip(&candidates.matched) {
            let (arrived, other) = (times.value(p as usize), kept[m]);
            let d = if side == 0 {
                other.saturating_sub(arrived)
            } else {
                arrived.saturating_sub(other)
            };
            if i.lo <= d && d <= i.hi {
                out.probe.push(p);
                out.matched.push(m);
            }
        }
        out
    }
}
