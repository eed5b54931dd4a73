//! Record formats ⇄ Arrow. Sources collect raw records into a [`RawBatch`];
//! a [`RecordDecoder`] turns it into one `RecordBatch` in a single pass over
//! the whole batch, and isolates the records that do not decode so the
//! pipeline can count and dead-letter them. Sinks encode whole batches.

pub mod csv;
mod decoder;
mod derived;
pub mod json;
pub mod json_integers;
mod json_structure;

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Result, SluiceError};
use crate::sql::Options;
pub use decoder::{BadRecord, Decoded, RecordDecoder};

/// Default cap on one record's size; larger records are dead-lettered.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    Json,
    Csv,
}

/// A record format with its options (`format`, `header`, `delimiter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub kind: FormatKind,
    pub csv_header: bool,
    pub csv_delimiter: u8,
}

impl Format {
    pub const OPTIONS: &'static [&'static str] = &["format", "header", "delimiter"];

    /// Reads the format options out of `options` (default: JSON).
    pub fn take(options: &mut Options) -> Result<Format> {
        let kind = match options.take_choice("format", &["json", "csv"])?.as_deref() {
            Some("csv") => FormatKind::Csv,
            _ => FormatKind::Json,
        };
        let csv_header = options.take_bool("header")?;
        let delimiter = options.take("delimiter");
        if kind == FormatKind::Json && (csv_header.is_some() || delimiter.is_some()) {
            return Err(SluiceError::Options(
                "options 'header' and 'delimiter' only apply to format = 'csv'".into(),
            ));
        }
        let csv_delimiter = match delimiter {
            None => b',',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some(d) => {
                return Err(SluiceError::Options(format!(
                    "option 'delimiter' must be a single ASCII character, got '{d}'"
                )))
            }
        };
        Ok(Format {
            kind,
            csv_header: csv_header.unwrap_or(false),
            csv_delimiter,
        })
    }
}

/// The metadata key of a `PROCTIME()` column: not a connector's, filled by
/// the decoder with the time it reads the record.
pub const PROCTIME: &str = "proctime";

/// Metadata a connector can attach to each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    Key,
    Timestamp,
    Partition,
    Offset,
    Topic,
}

impl MetaKey {
    pub fn parse(name: &str) -> Option<MetaKey> {
        Some(match name {
            "key" => MetaKey::Key,
            "timestamp" => MetaKey::Timestamp,
            "partition" => MetaKey::Partition,
            "offset" => MetaKey::Offset,
            "topic" => MetaKey::Topic,
            _ => return None,
        })
    }
}

/// Raw records, back to back in one buffer, each followed by `\n`.
#[derive(Debug, Default)]
pub struct RawBatch {
    buf: Vec<u8>,
    /// Start of each record in `buf`; the record ends one byte before the next
    /// start (the `\n`).
    starts: Vec<usize>,
    /// Where each record came from: a line number or a Kafka offset.
    pub seq: Vec<u64>,
    /// Metadata arrays, one entry per record, when the connector has them.
    pub meta: Vec<(MetaKey, ArrayRef)>,
}

impl RawBatch {
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        RawBatch {
            buf: Vec::with_capacity(bytes),
            starts: Vec::with_capacity(records),
            seq: Vec::with_capacity(records),
            meta: Vec::new(),
        }
    }

    /// Adds one record. A UTF-8 byte order mark in front (what Windows
    /// tools write at the start of a file or message) is not part of it.
    pub fn push(&mut self, record: &[u8], seq: u64) {
        let record = record.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(record);
        self.starts.push(self.buf.len());
        self.buf.extend_from_slice(record);
        self.buf.push(b'\n');
        self.seq.push(seq);
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    pub fn record(&self, i: usize) -> &[u8] {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).copied().unwrap_or(self.buf.len()) - 1;
        &self.buf[start..end]
    }

    /// Splits off the records from `at` on (with their metadata).
    pub fn split_off(&mut self, at: usize) -> RawBatch {
        let byte = self.starts.get(at).copied().unwrap_or(self.buf.len());
        let buf = self.buf.split_off(byte);
        let starts = self
            .starts
            .split_off(at)
            .into_iter()
            .map(|s| s - byte)
            .collect();
        let seq = self.seq.split_off(at);
        let meta = self
            .meta
            .iter_mut()
            .map(|(key, array)| {
                let tail = array.slice(at, array.len() - at);
                *array = array.slice(0, at);
                (*key, tail)
            })
            .collect();
        RawBatch {
            buf,
            starts,
            seq,
            meta,
        }
    }

    /// All records with their trailing newlines, as one slice.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Encodes batches for sinks.
#[derive(Debug, Clone)]
pub struct RecordEncoder {
    format: Format,
}

impl RecordEncoder {
    pub fn new(format: Format) -> Self {
        RecordEncoder { format }
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Appends every row of `batch` to `out`, one line per row.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        match self.format.kind {
            FormatKind::Json => json::encode(batch, out),
            FormatKind::Csv => csv::encode(batch, out, self.format.csv_delimiter, false),
        }
    }

    /// The CSV header line, when the format writes one.
    pub fn header(&self, schema: &Schema) -> Result<Option<Vec<u8>>> {
        if self.format.kind == FormatKind::Csv && self.format.csv_header {
            let empty = RecordBatch::new_empty(Arc::new(schema.clone()));
            let mut out = Vec::new();
            csv::encode(&empty, &mut out, self.format.csv_delimiter, true)?;
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// Encodes each row on its own (for message-per-row sinks), all of
    /// them into one buffer.
    pub fn encode_rows(&self, batch: &RecordBatch) -> Result<EncodedRows> {
        let rows = batch.num_rows();
        let mut out = EncodedRows::with_capacity(rows);
        match self.format.kind {
            FormatKind::Json => return EncodedRows::json(batch),
            FormatKind::Csv => {
                for i in 0..rows {
                    csv::encode(
                        &batch.slice(i, 1),
                        &mut out.bytes,
                        self.format.csv_delimiter,
                        false,
                    )?;
                    if out.bytes.last() == Some(&b'\n') {
                        out.bytes.pop();
                    }
                    out.ends.push(out.bytes.len());
                    // A separator byte, skipped like JSON's newline.
                    out.bytes.push(b'\n');
                }
            }
        }
        if out.ends.len() != rows {
            return Err(SluiceError::Internal(format!(
                "encoded {} of {rows} rows",
                out.ends.len()
            )));
        }
        Ok(out)
    }
}

/// Rows encoded one after another in one buffer, each followed by one
/// separator byte: no allocation per row.
#[derive(Debug, Default)]
pub struct EncodedRows {
    bytes: Vec<u8>,
    /// Where each row ends (its separator).
    ends: Vec<usize>,
}

impl EncodedRows {
    fn with_capacity(rows: usize) -> EncodedRows {
        EncodedRows {
            bytes: Vec::with_capacity(rows * 64),
            ends: Vec::with_capacity(rows),
        }
    }

    /// Each row of `batch` as a JSON object.
    pub fn json(batch: &RecordBatch) -> Result<EncodedRows> {
        let rows = batch.num_rows();
        let mut out = EncodedRows::with_capacity(rows);
        json::encode(batch, &mut out.bytes)?;
        // JSON escapes newlines inside values, so lines are rows.
        out.ends
            .extend(memchr::memchr_iter(b'\n', &out.bytes).take(rows));
        if out.ends.len() != rows {
            return Err(SluiceError::Internal(format!(
                "encoded {} of {rows} rows",
                out.ends.len()
            )));
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i`'s bytes, without the separator.
    pub fn row(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.bytes[start..self.ends[i]]
    }
}
