//! An operator's (or a view's) state at a checkpoint: a little metadata as
//! JSON and the state itself as Arrow record batches, encoded as Arrow IPC
//! streams in one self-describing blob.
//!
//! Layout: `SLST1`, then the JSON metadata and each batch, each preceded by
//! its length (u64, little-endian). Every batch is its own IPC stream, so
//! batches of different schemas (group keys, accumulator states, emitted
//! rows) sit side by side.

use std::io::Cursor;

use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

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
        let bad = |what: &str| SluiceError::Connector(format!("checkpoint state is damaged: {what}"));
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("not a Sluice state blob"))?;
        let meta = take(&mut rest).ok_or_else(|| bad("truncated metadata"))?;
        let meta: serde_json::Value =
            serde_json::from_slice(meta).map_err(|e| bad(&format!("metadata: {e}")))?;
        let count = take_u64(&mut rest).ok_or_else(|| bad("truncated batch count"))?;
        let mut batches = Vec::with_capacity(count.min(1 << 20) as usize);
        for i in 0..count {
            let ipc = take(&mut rest).ok_or_else(|| bad(&format!("batch {i} truncated")))?;
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
            return Err(bad("trailing bytes"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn round_trips_batches_of_different_schemas_and_names_damage() {
        let a = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("x"), None]))],
        )
        .unwrap();
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let s = StateSnapshot::new(serde_json::json!({"watermark": 5}), vec![a.clone(), b.clone()]);
        let bytes = s.encode().unwrap();
        let back = StateSnapshot::decode(&bytes).unwrap();
        assert_eq!(back.meta["watermark"], 5);
        assert_eq!(back.batches, vec![a, b]);
        let err = StateSnapshot::decode(&bytes[..bytes.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
