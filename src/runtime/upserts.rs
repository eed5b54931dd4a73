//! What a sink writes of a changelog: the old-row / new-row pairs views
//! pass to their subscribers, turned back into upserts by key.

use datafusion::arrow::array::{UInt32Array, UInt8Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::plan::StreamPlan;
use crate::stream::{Op, StreamBatch};

/// Turns the old-row / new-row pairs of updates (which views pass to their
/// subscribers) back into what sinks write: upserts by key, or inserts and
/// deletes of whole rows when the output has no key.
pub(super) struct Upserts {
    keys: Option<(Vec<usize>, RowConverter)>,
}

impl Upserts {
    pub(super) fn new(plan: &StreamPlan) -> Result<Upserts> {
        let keys = if plan.key_columns.is_empty() {
            None
        } else {
            let fields = plan
                .key_columns
                .iter()
                .map(|&i| SortField::new(plan.output_schema.field(i).data_type().clone()))
                .collect();
            Some((plan.key_columns.clone(), RowConverter::new(fields)?))
        };
        Ok(Upserts { keys })
    }

    pub(super) fn normalize(&mut self, batch: StreamBatch) -> Result<StreamBatch> {
        let Some(ops) = &batch.ops else {
            return Ok(batch);
        };
        if !ops.values().contains(&(Op::UpdateBefore as u8)) {
            return Ok(batch);
        }
        let n = batch.num_rows();
        let mut keep = Vec::with_capacity(n);
        let mut new_ops = Vec::with_capacity(n);
        match &self.keys {
            None => {
                for i in 0..n {
                    keep.push(i as u32);
                    new_ops.push(if batch.is_addition(i) {
                        Op::Insert
                    } else {
                        Op::Delete
                    } as u8);
                }
            }
            Some((columns, converter)) => {
                let cols: Vec<_> = columns
                    .iter()
                    .map(|&c| batch.data.column(c).clone())
                    .collect();
                let rows = converter.convert_columns(&cols)?;
                // An old row whose key comes back later in the batch is
                // replaced by that upsert; otherwise its key is gone.
                let mut later = std::collections::HashSet::new();
                let mut dropped = vec![false; n];
                let mut op_of = vec![0u8; n];
                for i in (0..n).rev() {
                    let op = batch.op(i);
                    if op == Op::UpdateBefore {
                        if later.contains(&rows.row(i)) {
                            dropped[i] = true;
                        } else {
                            op_of[i] = Op::Delete as u8;
                        }
                    } else {
                        op_of[i] = op as u8;
                        if batch.is_addition(i) {
                            later.insert(rows.row(i));
                        }
                    }
                }
                for i in 0..n {
                    if !dropped[i] {
                        keep.push(i as u32);
                        new_ops.push(op_of[i]);
                    }
                }
            }
        }
        let data = take_record_batch(&batch.data, &UInt32Array::from(keep))?;
        Ok(StreamBatch::changelog(data, UInt8Array::from(new_ops)))
    }
}
