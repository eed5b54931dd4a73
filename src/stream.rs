//! What flows between sources, operators and sinks: Arrow record batches,
//! optionally carrying a changelog operation per row.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, UInt8Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;

/// A changelog operation. Append-only streams carry none (all inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Insert = 0,
    Update = 1,
    Delete = 2,
    /// The old row of an update, sent just before the `Update` that replaces
    /// it. Only a view's subscribers see these (a downstream aggregate
    /// retracts the old row); sinks see upserts.
    UpdateBefore = 3,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::UpdateBefore => "update_before",
        }
    }

    pub fn from_u8(v: u8) -> Op {
        match v {
            1 => Op::Update,
            2 => Op::Delete,
            3 => Op::UpdateBefore,
            _ => Op::Insert,
        }
    }
}

/// The name of the changelog column added for sinks and clients.
pub const OP_COLUMN: &str = "op";

/// A batch of rows; `ops` is `Some` on changelog streams (one op per row).
#[derive(Debug, Clone)]
pub struct StreamBatch {
    pub data: RecordBatch,
    pub ops: Option<UInt8Array>,
    /// When the source read the records this batch came from (for the
    /// end-to-end latency); kept through operators and views.
    pub born: Option<std::time::Instant>,
    /// Which output of an operator graph it left by: 0, except before a
    /// join split across cores, where it is the join input it goes to.
    pub port: usize,
}

impl StreamBatch {
    /// Whether the row adds to the result (insert, update) rather than
    /// taking a row away (delete, the old row of an update).
    pub fn is_addition(&self, row: usize) -> bool {
        matches!(self.op(row), Op::Insert | Op::Update)
    }

    pub fn append(data: RecordBatch) -> Self {
        StreamBatch {
            data,
            ops: None,
            born: None,
            port: 0,
        }
    }

    pub fn changelog(data: RecordBatch, ops: UInt8Array) -> Self {
        StreamBatch {
            data,
            ops: Some(ops),
            born: None,
            port: 0,
        }
    }

    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    pub fn op(&self, row: usize) -> Op {
        self.ops
            .as_ref()
            .map(|o| Op::from_u8(o.value(row)))
            .unwrap_or(Op::Insert)
    }

    /// The rows with an `op` text column appended (for changelog streams).
    pub fn with_op_column(&self) -> Result<RecordBatch> {
        if self.ops.is_none() {
            return Ok(self.data.clone());
        }
        let texts = self.op_names();
        let mut fields: Vec<Arc<Field>> = self.data.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(OP_COLUMN, DataType::Utf8, false)));
        let mut columns: Vec<ArrayRef> = self.data.columns().to_vec();
        columns.push(texts);
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// Each row's op as text (`insert` for an append-only batch).
    pub fn op_names(&self) -> ArrayRef {
        let texts: StringArray = match &self.ops {
            Some(ops) => ops
                .values()
                .iter()
                .map(|v| Some(Op::from_u8(*v).as_str()))
                .collect(),
            None => std::iter::repeat_n(Some(Op::Insert.as_str()), self.num_rows()).collect(),
        };
        Arc::new(texts)
    }

    /// Keeps the rows where `mask` is true.
    pub fn filter(&self, mask: &datafusion::arrow::array::BooleanArray) -> Result<StreamBatch> {
        let data = filter_record_batch(&self.data, mask)?;
        let ops = match &self.ops {
            None => None,
            Some(o) => {
                let f = datafusion::arrow::compute::filter(o, mask)?;
                Some(
                    f.as_any()
                        .downcast_ref::<UInt8Array>()
                        .cloned()
                        .ok_or_else(|| {
                            crate::error::SluiceError::Internal("op column type".into())
                        })?,
                )
            }
        };
        Ok(StreamBatch {
            data,
            ops,
            born: self.born,
            port: self.port,
        })
    }
}

/// One message on a pipeline's channels.
#[derive(Debug)]
pub enum Message {
    Batch(StreamBatch),
    /// Event time (epoch milliseconds) up to which the input is complete:
    /// later rows with an earlier time are late.
    Watermark(i64),
    /// Everything before this message has reached the sink: run `Commit`
    /// (a source acknowledging its position, e.g. a Kafka offset).
    Commit(Commit),
    /// The pipeline re-read its input up to where an earlier run's output
    /// stopped: what follows is new. Until this message a restored sink
    /// writes nothing (its earlier run wrote it), so a stateful pipeline
    /// rebuilds its state from the start without repeating its output.
    CaughtUp,
    /// A checkpoint barrier: everything before it belongs to epoch
    /// `epoch`, everything after to the next. Operators snapshot their state
    /// as it passes and attach it; the sink writes the pipeline's state.
    Barrier(Barrier),
    /// A bounded input ended (with checkpoints on): operators emit what they
    /// hold now, so the last barrier after it covers the final output.
    EndOfInput,
}

/// A checkpoint barrier and the state gathered on its way to the sink.
#[derive(Debug, Clone, Default)]
pub struct Barrier {
    pub epoch: u64,
    /// The source's positions and watermark state at the barrier.
    pub source: serde_json::Value,
    /// Each operator's encoded snapshot by its node's key (`None`: it
    /// keeps no state).
    pub operators: Vec<(String, Option<Vec<u8>>)>,
    /// When the source injected it (the checkpoint's duration is measured
    /// from here).
    pub injected: Option<std::time::Instant>,
}

/// An acknowledgement a source asks for; run once every earlier row is
/// durable (`SinkWriter::acknowledge`).
pub struct Commit(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commit")
    }
}
