//! CSV ⇄ Arrow, through arrow-csv.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Result, SluiceError};

pub fn decode(schema: &SchemaRef, bytes: &[u8], rows: usize, delimiter: u8) -> Result<RecordBatch> {
    let mut decoder = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_delimiter(delimiter)
        .with_batch_size(rows.max(1))
        .build_decoder();
    let mut offset = 0;
    while offset < bytes.len() {
        let n = decoder.decode(&bytes[offset..])?;
        if n == 0 {
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

pub fn encode(batch: &RecordBatch, out: &mut Vec<u8>, delimiter: u8, header: bool) -> Result<()> {
    let mut writer = arrow_csv::WriterBuilder::new()
        .with_header(header)
        .with_delimiter(delimiter)
        .build(out);
    writer.write(batch)?;
    Ok(())
}
