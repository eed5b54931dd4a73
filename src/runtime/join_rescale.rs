//! Re-splitting a join's checkpointed state for another parallelism: each
//! side's kept rows (with their match counts) go to the instance the
//! exchange sends their key to now. Every instance sees every watermark,
//! so an interval or temporal join's instances agree on theirs; when they
//! do not, the state is not re-split.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt32Array};
use datafusion::arrow::compute::{concat, concat_batches, take, take_record_batch};
use datafusion::arrow::record_batch::RecordBatch;

use super::{JoinMeta, JoinOperator};
use crate::error::Result;
use crate::runtime::rescale::{agreed, Router};
use crate::runtime::state::{damaged, to_meta, StateSnapshot};

/// One side's rows of every instance, with their match counts (none
/// when the side is not counted).
struct SideRows {
    rows: RecordBatch,
    counts: ArrayRef,
}

impl JoinOperator {
    /// `states` (one per instance, as `snapshot` gave them) re-split into
    /// `router.parts()` states.
    pub(super) fn resplit(
        &self,
        states: Vec<StateSnapshot>,
        router: &Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        let mut metas = Vec::new();
        let mut sides: [Vec<(RecordBatch, ArrayRef)>; 2] = [Vec::new(), Vec::new()];
        for state in states {
            let meta: JoinMeta = state.meta_as()?;
            let mut batches = state.into_batches();
            let left = batches.next("the join's left rows")?;
            let right = batches.next("the join's right rows")?;
            let left_counts = batches.next("the join's match counts")?.column(0).clone();
            let right_counts = batches.next("the join's match counts")?.column(0).clone();
            sides[0].push((left, left_counts));
            sides[1].push((right, right_counts));
            metas.push(meta);
        }
        let Some(watermark) = agreed(metas.iter().map(|m| m.watermark)) else {
            return Ok(None);
        };
        let counted = metas.first().is_some_and(|m| m.counted);
        let mut all = Vec::new();
        for (side, parts) in sides.into_iter().enumerate() {
            let schema = Arc::clone(&self.sides[side].schema);
            let rows = concat_batches(&schema, parts.iter().map(|(r, _)| r))?;
            let counts: Vec<&dyn Array> = parts.iter().map(|(_, c)| c.as_ref()).collect();
            let counts = concat(&counts)?;
            // A side that is not counted (of an outer join, the side it
            // does not preserve) keeps none.
            if !counts.is_empty() && counts.len() != rows.num_rows() {
                return Err(damaged("join match counts"));
            }
            all.push(SideRows { rows, counts });
        }
        let mut split = Vec::new();
        for (side, s) in all.iter().enumerate() {
            let keys = self.sides[side]
                .keys
                .iter()
                .map(|k| k.evaluate(&s.rows)?.into_array(s.rows.num_rows()))
                .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
            split.push(if s.rows.num_rows() == 0 {
                vec![Vec::new(); router.parts()]
            } else {
                router.split(&keys)?
            });
        }
        (0..router.parts())
            .map(|part| {
                let mut batches = Vec::new();
                let mut kept = [0, 0];
                for (side, s) in all.iter().enumerate() {
                    let idx = UInt32Array::from(split[side][part].clone());
                    kept[side] = idx.len();
                    batches.push(take_record_batch(&s.rows, &idx)?);
                }
                for (side, s) in all.iter().enumerate() {
                    let counts = if !s.counts.is_empty() {
                        let idx = UInt32Array::from(split[side][part].clone());
                        take(s.counts.as_ref(), &idx, None)?
                    } else {
                        Arc::new(UInt32Array::from(Vec::<u32>::new())) as ArrayRef
                    };
                    batches.push(RecordBatch::try_from_iter([("matches", counts)])?);
                }
                let meta = to_meta(&JoinMeta {
                    left: kept[0],
                    right: kept[1],
                    counted,
                    watermark,
                })?;
                Ok(StateSnapshot::new(meta, batches))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
