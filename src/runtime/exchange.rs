//! The hash exchange: splits an operator task's output across the
//! instances of the plan's keyed part (`plan/exchange.rs`); every other
//! message goes to all of them ([`super::output::Output::Exchange`]).
//!
//! Rows are split with Arrow's hash kernels over the exchange's key columns
//! and `take`, a whole batch at a time. The hash is DataFusion's fixed
//! one, the same in every process, so the rows of a group go to the same
//! instance on every run and a checkpoint's per-instance state stays right.
//!
//! Control messages reach every instance: watermarks, caught-up marks and
//! ends of input as they are; a barrier with the operator states gathered
//! so far to the first instance only (the merge concatenates what the
//! instances add); a source's commit to the first instance, the others
//! getting one that does nothing, so the merge can wait for all of them
//! before the real one runs.

use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt32Array};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::common::hash_utils::{create_hashes, RandomState};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{Result, SluiceError};
use crate::stream::StreamBatch;

/// Splits batches by the hash of their key columns.
pub struct Partitioner {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    parts: usize,
    hashes: Vec<u64>,
}

impl Partitioner {
    pub fn new(keys: Vec<Arc<dyn PhysicalExpr>>, parts: usize) -> Self {
        Partitioner {
            keys,
            parts: parts.max(1),
            hashes: Vec::new(),
        }
    }

    /// The batch's rows for each partition (partitions without rows left
    /// out), each keeping the rows' order.
    pub fn split(&mut self, batch: StreamBatch) -> Result<Vec<(usize, StreamBatch)>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let columns = self
            .keys
            .iter()
            .map(|k| k.evaluate(&batch.data)?.into_array(rows))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let indices = rows_by_part(&columns, self.parts, &mut self.hashes)?;
        if let Some(only) = indices.iter().position(|i| i.len() == rows) {
            return Ok(vec![(only, batch)]);
        }
        let mut out = Vec::new();
        for (part, rows) in indices.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let rows = UInt32Array::from(rows);
            let data = take_record_batch(&batch.data, &rows)?;
            let ops = match &batch.ops {
                Some(ops) => Some(
                    take(ops, &rows, None)?
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::UInt8Array>()
                        .cloned()
                        .ok_or_else(|| SluiceError::Internal("ops are not UInt8".into()))?,
                ),
                None => None,
            };
            out.push((
                part,
                StreamBatch {
                    data,
                    ops,
                    born: batch.born,
                    port: 0,
                },
            ));
        }
        Ok(out)
    }
}

/// Which part each row of `keys` (the exchange's key values) belongs to:
/// its rows' indices per part, in order. The one place rows are assigned
/// to instances, for batches and for checkpointed state alike
/// (`rescale.rs`).
pub fn rows_by_part(
    keys: &[datafusion::arrow::array::ArrayRef],
    parts: usize,
    hashes: &mut Vec<u64>,
) -> Result<Vec<Vec<u32>>> {
    let rows = keys.first().map_or(0, |k| k.len());
    hashes.clear();
    hashes.resize(rows, 0);
    create_hashes(keys, &RandomState::with_seed(0), hashes)?;
    let mut indices: Vec<Vec<u32>> = vec![Vec::new(); parts.max(1)];
    for (row, h) in hashes.iter().enumerate() {
        indices[(*h % parts.max(1) as u64) as usize].push(row as u32);
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::physical_expr::expressions::Column;

    use super::*;

    #[test]
    fn rows_of_a_key_go_to_one_partition_in_order() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let keys: Vec<Option<&str>> = (0..1000)
            .map(|i| (i % 7 != 0).then_some(["a", "b", "c", "d", "e"][i % 5]))
            .collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.clone())),
                Arc::new(Int64Array::from_iter_values(0..1000)),
            ],
        )
        .expect("batch");
        let mut p = Partitioner::new(vec![Arc::new(Column::new("k", 0))], 3);
        let parts = p.split(StreamBatch::append(batch.clone())).expect("split");
        assert!(parts.len() > 1, "five keys over three partitions");
        let mut seen = 0;
        let mut owner: std::collections::HashMap<Option<String>, usize> = Default::default();
        for (part, b) in &parts {
            let k = b
                .data
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let v = b
                .data
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert!(v.values().windows(2).all(|w| w[0] < w[1]), "order kept");
            for i in 0..b.num_rows() {
                let key = k.is_valid(i).then(|| k.value(i).to_string());
                assert_eq!(*owner.entry(key).or_insert(*part), *part);
            }
            seen += b.num_rows();
        }
        assert_eq!(seen, 1000);
        // The same split on every run (and in every process).
        let again = p.split(StreamBatch::append(batch)).expect("split");
        assert_eq!(
            again
                .iter()
                .map(|(i, b)| (*i, b.num_rows()))
                .collect::<Vec<_>>(),
            parts
                .iter()
                .map(|(i, b)| (*i, b.num_rows()))
                .collect::<Vec<_>>()
        );
    }
}
