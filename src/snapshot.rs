//! State at a checkpoint, as one self-describing blob: a little metadata
//! as JSON and the state itself as Arrow record batches, encoded as Arrow
//! IPC streams. Operators, views and sinks write their part of a checkpoint
//! in it; it sits below the runtime and the connectors, which both use it.
//!
//! Layout: `SLST1`, then the JSON metadata and each batch, each preceded by
//! its length (u64, little-endian). Every batch is its own IPC stream, so
//! batches of different schemas (group keys, accumulator states, emitted
//! rows) sit side by side.

use std::io::Cursor;

use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, SluiceError};

const MAGIC: &[u8] = b"SLST1";

/// State at a checkpoint. `meta` holds small values (watermarks, counters);
/// `batches` the bulk, as Arrow data.
#[derive(Debug, Clone, Default)]
pub struct StateSnapshot {
    pub meta: serde_json::Value,
    pub batches: Vec<RecordBatch>,
}

impl StateSnapshot {
    pub fn new(meta: serde_json::Value, batches: Vec<RecordBatch>) -> Self {
        StateSnapshot { meta, batches }
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(
            64 + self
                .batches
                .iter()
                .map(|b| b.get_array_memory_size())
                .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        let meta = serde_json::to_vec(&self.meta)
            .map_err(|e| SluiceError::Internal(format!("encoding state metadata: {e}")))?;
        put(&mut out, &meta);
        out.extend_from_slice(&(self.batches.len() as u64).to_le_bytes());
        for batch in &self.batches {
            let mut ipc = Vec::new();
            {
                let mut w = StreamWriter::try_new(&mut ipc, &batch.schema())?;
                w.write(batch)?;
                w.finish()?;
            }
            put(&mut out, &ipc);
        }
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<StateSnapshot> {
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| damaged("not a Sluice state blob"))?;
        let meta = take(&mut rest).ok_or_else(|| damaged("truncated metadata"))?;
        let meta: serde_json::Value =
            serde_json::from_slice(meta).map_err(|e| damaged(&format!("metadata: {e}")))?;
        let count = take_u64(&mut rest).ok_or_else(|| damaged("truncated batch count"))?;
        let mut batches = Vec::with_capacity(count.min(1 << 20) as usize);
        for i in 0..count {
            let ipc = take(&mut rest).ok_or_else(|| damaged(&format!("batch {i} truncated")))?;
            let reader = StreamReader::try_new(Cursor::new(ipc), None)?;
            let schema = reader.schema();
            let mut parts = Vec::new();
            for b in reader {
                parts.push(b?);
            }
            batches.push(match parts.len() {
                0 => RecordBatch::new_empty(schema),
                1 => parts.remove(0),
                _ => datafusion::arrow::compute::concat_batches(&schema, &parts)?,
            });
        }
        if !rest.is_empty() {
            return Err(damaged("trailing bytes"));
        }
        Ok(StateSnapshot { meta, batches })
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    let (head, tail) = rest.split_at_checked(8)?;
    *rest = tail;
    Some(u64::from_le_bytes(head.try_into().ok()?))
}

fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u64(rest)?).ok()?;
    let (head, tail) = rest.split_at_checked(len)?;
    *rest = tail;
    Some(head)
}

/// A damaged or mismatched checkpoint: the state store's fault, not ours.
pub fn damaged(what: &str) -> SluiceError {
    SluiceError::Connector(format!("checkpoint state is damaged: {what}"))
}

impl StateSnapshot {
    /// Metadata written by [`to_meta`].
    pub fn meta_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.meta.clone()).map_err(|e| damaged(&format!("metadata: {e}")))
    }

    /// The batches, to be taken in the order they were written.
    pub fn into_batches(self) -> Batches {
        Batches(self.batches.into_iter())
    }
}

/// Metadata for a [`StateSnapshot`].
pub fn to_meta<T: Serialize>(meta: &T) -> Result<serde_json::Value> {
    serde_json::to_value(meta)
        .map_err(|e| SluiceError::Internal(format!("encoding state metadata: {e}")))
}

/// A snapshot's batches, read back in order; a missing one is damage.
pub struct Batches(std::vec::IntoIter<RecordBatch>);

impl Batches {
    pub fn next(&mut self, what: &str) -> Result<RecordBatch> {
        self.0
            .next()
            .ok_or_else(|| damaged(&format!("{what} missing")))
    }
}
