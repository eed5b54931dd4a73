//! An in-memory sink that applies a pipeline's changelog and keeps the
//! result: all rows of an append-only stream, the latest row per key of a
//! changelog. Used to answer a SELECT over bounded sources.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};

use crate::connectors::{SinkConnector, SinkSchema, SinkWriter};
use crate::error::Result;
use crate::stream::{Op, StreamBatch};

/// The collected result, shared with whoever waits for it.
#[derive(Debug, Default, Clone)]
pub struct Collected {
    inner: Arc<Mutex<Vec<RecordBatch>>>,
}

impl Collected {
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.inner.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub struct CollectSink {
    pub result: Collected,
}

#[async_trait]
impl SinkConnector for CollectSink {
    fn kind(&self) -> &'static str {
        "result"
    }

    async fn open(&self, schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        let fields = |idx: &[usize]| -> Vec<SortField> {
            idx.iter()
                .map(|&i| SortField::new(schema.schema.field(i).data_type().clone()))
                .collect()
        };
        let all: Vec<usize> = (0..schema.schema.fields().len()).collect();
        let key_columns = if schema.key_columns.is_empty() {
            all
        } else {
            schema.key_columns.clone()
        };
        Ok(Box::new(CollectWriter {
            schema: schema.schema.clone(),
            changelog: schema.changelog,
            key_converter: RowConverter::new(fields(&key_columns))?,
            key_columns,
            rows: Vec::new(),
            by_key: HashMap::new(),
            result: self.result.clone(),
        }))
    }
}

struct CollectWriter {
    schema: SchemaRef,
    changelog: bool,
    key_columns: Vec<usize>,
    key_converter: RowConverter,
    /// Append-only: every batch. Changelog: one-row batches, by key.
    rows: Vec<RecordBatch>,
    by_key: HashMap<OwnedRow, RecordBatch>,
    result: Collected,
}

#[async_trait]
impl SinkWriter for CollectWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        let bytes = batch.data.get_array_memory_size() as u64;
        if !self.changelog {
            self.rows.push(batch.data.clone());
            return Ok(bytes);
        }
        let keys: Vec<_> = self
            .key_columns
            .iter()
            .map(|&i| batch.data.column(i).clone())
            .collect();
        let keys = self.key_converter.convert_columns(&keys)?;
        for i in 0..batch.num_rows() {
            let key = keys.row(i).owned();
            match batch.op(i) {
                Op::UpdateBefore => {}
                Op::Delete => {
                    self.by_key.remove(&key);
                }
                Op::Insert | Op::Update => {
                    self.by_key.insert(key, batch.data.slice(i, 1));
                }
            }
        }
        Ok(bytes)
    }

    async fn flush(&mut self) -> Result<()> {
        let batches: Vec<RecordBatch> = if self.changelog {
            self.by_key.values().cloned().collect()
        } else {
            self.rows.clone()
        };
        let all = concat_batches(&self.schema, &batches)?;
        if let Ok(mut r) = self.result.inner.lock() {
            *r = vec![all];
        }
        Ok(())
    }
}
