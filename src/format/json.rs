//! JSON lines ⇄ Arrow, through arrow-json's tape decoder and writer.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Result, SluiceError};

/// Decodes newline-separated JSON objects; unknown fields are ignored, a
/// missing NOT NULL field or a wrong type is an error.
pub fn decode(schema: &SchemaRef, bytes: &[u8], rows: usize) -> Result<RecordBatch> {
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .build_decoder()?;
    let mut offset = 0;
    while offset < bytes.len() {
        let n = decoder.decode(&bytes[offset..])?;
        if n == 0 {
            // The decoder is full: more records than expected.
            return Err(SluiceError::Plan(format!(
                "more than {rows} records in batch"
            )));
        }
        offset += n;
    }
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

/// Writes one JSON object per row, nulls written explicitly.
pub fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(out);
    writer.write(batch)?;
    writer.finish()?;
    Ok(())
}
