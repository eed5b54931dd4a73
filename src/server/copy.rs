//! `COPY (SELECT …) TO STDOUT` and `COPY view TO STDOUT`: a query's rows
//! in PostgreSQL's COPY formats (text, CSV with an optional header, binary),
//! as psql's `\copy` and drivers' bulk reads ask for them. (The streaming
//! `COPY (SUBSCRIBE …)` is in `subscribe`.)

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::record_batch::RecordBatch;
use futures::stream;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, Response};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;

use super::encode::{self, Column};
use super::statements::{CopyFormat, CopySpec};

/// The COPY OUT answer carrying `batch`.
pub fn response(batch: &RecordBatch, spec: &CopySpec, zone: Tz) -> PgWireResult<Response> {
    let format = match spec.format {
        CopyFormat::Binary => Format::UnifiedBinary,
        _ => Format::UnifiedText,
    };
    let fields = Arc::new(encode::fields(&batch.schema(), &format));
    let delimiter = spec.delimiter.clone().unwrap_or_else(|| match spec.format {
        CopyFormat::Csv => ",".into(),
        _ => "\t".into(),
    });
    let mut encoder = match spec.format {
        CopyFormat::Binary => CopyEncoder::new_binary(Arc::clone(&fields)),
        CopyFormat::Text => CopyEncoder::new_text(
            Arc::clone(&fields),
            CopyTextOptions {
                delimiter: delimiter.as_str().into(),
                null_string: spec.null.as_deref().unwrap_or("\\N").into(),
            },
        ),
        CopyFormat::Csv => CopyEncoder::new_csv(
            Arc::clone(&fields),
            CopyCsvOptions {
                delimiter: delimiter.as_str().into(),
                null_string: spec.null.as_deref().unwrap_or("").into(),
                ..CopyCsvOptions::default()
            },
        ),
    };
    let mut out = Vec::with_capacity(batch.num_rows() + 1);
    if spec.header && spec.format == CopyFormat::Csv {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| csv_field(f.name(), &delimiter))
            .collect();
        out.push(CopyData::new(
            format!("{}\n", names.join(&delimiter)).into_bytes().into(),
        ));
    }
    let columns: Vec<Column> = batch
        .columns()
        .iter()
        .map(|c| Column::new(c, zone))
        .collect::<PgWireResult<_>>()?;
    for row in 0..batch.num_rows() {
        for c in &columns {
            c.encode(row, &mut encoder)?;
        }
        out.push(encoder.take_copy());
    }
    if spec.format == CopyFormat::Binary && batch.num_rows() == 0 {
        // The binary header travels with the first row; with none it is
        // sent on its own.
        out.push(CopyData::new(binary_header().into()));
    }
    let code = match spec.format {
        CopyFormat::Binary => 1,
        _ => 0,
    };
    Ok(Response::CopyOut(CopyResponse::new(
        code,
        fields.len(),
        stream::iter(out.into_iter().map(Ok)),
    )))
}

/// A header name as a CSV field: quoted when it holds the delimiter, a
/// quote or a line break.
fn csv_field(name: &str, delimiter: &str) -> String {
    if name.contains(delimiter) || name.contains('"') || name.contains('\n') {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// PGCOPY's signature, flags and header extension length.
fn binary_header() -> Vec<u8> {
    let mut h = b"PGCOPY\n\xff\r\n\0".to_vec();
    h.extend_from_slice(&0i32.to_be_bytes());
    h.extend_from_slice(&0i32.to_be_bytes());
    h
}
