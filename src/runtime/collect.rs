//! An in-memory sink that applies a pipeline's changelog and keeps the
//! result: all rows of an append-only stream, the latest row per key of a
//! keyed changelog, the one row of a global aggregate, and the rows a
//! changelog of whole rows leaves standing. Used to answer a SELECT over
//! bounded sources.

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
    /// The query is a global aggregate: its changelog updates one row,
    /// which its (empty) key does not tell.
    pub one_row: bool,
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
        // Keyed by the key; a changelog of whole rows by the whole row (and
        // counted); one row by nothing at all.
        let one_row = self.one_row && schema.changelog;
        let key_columns = match (one_row, schema.key_columns.is_empty()) {
            (true, _) => vec![],
            (false, true) => all,
            (false, false) => schema.key_columns.clone(),
        };
        let whole_rows = schema.changelog && !self.one_row && schema.key_columns.is_empty();
        Ok(Box::new(CollectWriter {
            schema: schema.schema.clone(),
            changelog: schema.changelog,
            key_converter: RowConverter::new(fields(&key_columns))?,
            key_columns,
            whole_rows,
            rows: Vec::new(),
            by_key: HashMap::new(),
            counts: HashMap::new(),
            one: None,
            result: self.result.clone(),
        }))
    }
}

struct CollectWriter {
    schema: SchemaRef,
    changelog: bool,
    key_columns: Vec<usize>,
    key_converter: RowConverter,
    /// A changelog of whole rows: rows are counted in and out.
    whole_rows: bool,
    /// Append-only: every batch. Changelog: one-row batches, by key.
    rows: Vec<RecordBatch>,
    by_key: HashMap<OwnedRow, RecordBatch>,
    /// How many of each whole row stand (`whole_rows`).
    counts: HashMap<OwnedRow, i64>,
    /// The one row of a global aggregate.
    one: Option<RecordBatch>,
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
        if self.key_columns.is_empty() {
            // One row: the last one added, unless deleted after it.
            for i in 0..batch.num_rows() {
                match batch.op(i) {
                    Op::UpdateBefore => {}
                    Op::Delete => self.one = None,
                    Op::Insert | Op::Update => self.one = Some(batch.data.slice(i, 1)),
                }
            }
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
            if self.whole_rows {
                let n = self.counts.entry(key.clone()).or_default();
                *n += if batch.is_addition(i) { 1 } else { -1 };
                if *n > 0 {
                    self.by_key.insert(key, batch.data.slice(i, 1));
                } else {
                    self.counts.remove(&key);
                    self.by_key.remove(&key);
                }
                continue;
            }
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
        let batches: Vec<RecordBatch> = if self.changelog && self.key_columns.is_empty() {
            self.one.iter().cloned().collect()
        } else if self.whole_rows {
            // Each standing row as often as it stands.
            self.by_key
                .iter()
                .flat_map(|(key, row)| {
                    let n = self.counts.get(key).copied().unwrap_or(0).max(0) as usize;
                    std::iter::repeat_n(row.clone(), n)
                })
                .collect()
        } else if self.changelog {
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
