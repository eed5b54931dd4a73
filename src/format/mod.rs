//! Record formats ⇄ Arrow. Sources collect raw records into a [`RawBatch`];
//! a [`RecordDecoder`] turns it into one `RecordBatch` in a single pass over
//! the whole batch, and isolates the records that do not decode so the
//! pipeline can count and dead-letter them. Sinks encode whole batches.

pub mod csv;
pub mod json;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryArray, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{Result, SluiceError};
use crate::sql::{Options, SourceColumn};

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

    pub fn push(&mut self, record: &[u8], seq: u64) {
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

/// A record that did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub index: usize,
    pub reason: String,
}

pub struct Decoded {
    pub batch: Option<RecordBatch>,
    pub bad: Vec<BadRecord>,
}

/// Decodes raw records into batches of a source's declared schema.
pub struct RecordDecoder {
    format: Format,
    /// The columns decoded from the payload.
    payload_schema: SchemaRef,
    /// All declared columns, in declared order.
    output_schema: SchemaRef,
    /// For each output column: `Ok(i)` = payload column i, `Err(k)` = metadata.
    layout: Vec<std::result::Result<usize, MetaKey>>,
    max_record_bytes: usize,
}

impl RecordDecoder {
    pub fn new(
        format: Format,
        columns: &[SourceColumn],
        output_schema: SchemaRef,
        max_record_bytes: usize,
    ) -> Result<Self> {
        let mut payload_fields = Vec::new();
        let mut layout = Vec::new();
        for c in columns {
            match &c.metadata {
                Some(key) => layout.push(Err(MetaKey::parse(key).ok_or_else(|| {
                    SluiceError::Internal(format!("unchecked metadata key {key}"))
                })?)),
                None => {
                    layout.push(Ok(payload_fields.len()));
                    payload_fields.push(Field::new(&c.name, c.data_type.clone(), c.nullable));
                }
            }
        }
        Ok(RecordDecoder {
            format,
            payload_schema: Arc::new(Schema::new(payload_fields)),
            output_schema,
            layout,
            max_record_bytes,
        })
    }

    /// Decodes every record of `raw`: the good ones into one batch, the bad
    /// ones reported by index.
    pub fn decode(&self, raw: &RawBatch) -> Result<Decoded> {
        let mut bad = Vec::new();
        let oversized: Vec<usize> = (0..raw.len())
            .filter(|&i| raw.record(i).len() > self.max_record_bytes)
            .collect();
        let payload = if oversized.is_empty() {
            // Fast path: the whole batch in one pass.
            match self.decode_bytes(raw.bytes(), raw.len()) {
                Ok(batch) if batch.num_rows() == raw.len() => Some(batch),
                _ => None,
            }
        } else {
            None
        };
        let (payload, good) = match payload {
            Some(b) => (b, None),
            None => {
                // Slow path: one record at a time, to find the bad ones.
                let mut batches = Vec::new();
                let mut good = Vec::new();
                for i in 0..raw.len() {
                    let record = raw.record(i);
                    if record.len() > self.max_record_bytes {
                        bad.push(BadRecord {
                            index: i,
                            reason: format!(
                                "record of {} bytes exceeds max_record_bytes ({})",
                                record.len(),
                                self.max_record_bytes
                            ),
                        });
                        continue;
                    }
                    let mut line = Vec::with_capacity(record.len() + 1);
                    line.extend_from_slice(record);
                    line.push(b'\n');
                    match self.decode_bytes(&line, 1) {
                        Ok(b) if b.num_rows() == 1 => {
                            batches.push(b);
                            good.push(i as u32);
                        }
                        Ok(b) => bad.push(BadRecord {
                            index: i,
                            reason: format!("expected one record, found {}", b.num_rows()),
                        }),
                        Err(e) => bad.push(BadRecord {
                            index: i,
                            reason: e.to_string(),
                        }),
                    }
                }
                let batch = concat_batches(&self.payload_schema, &batches)?;
                (batch, Some(UInt32Array::from(good)))
            }
        };
        if payload.num_rows() == 0 {
            return Ok(Decoded { batch: None, bad });
        }
        let batch = self.attach_metadata(payload, raw, good.as_ref())?;
        Ok(Decoded {
            batch: Some(batch),
            bad,
        })
    }

    fn decode_bytes(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch> {
        match self.format.kind {
            FormatKind::Json => json::decode(&self.payload_schema, bytes, rows),
            FormatKind::Csv => {
                csv::decode(&self.payload_schema, bytes, rows, self.format.csv_delimiter)
            }
        }
    }

    fn attach_metadata(
        &self,
        payload: RecordBatch,
        raw: &RawBatch,
        good: Option<&UInt32Array>,
    ) -> Result<RecordBatch> {
        if self.layout.iter().all(|l| l.is_ok()) {
            return Ok(RecordBatch::try_new_with_options(
                Arc::clone(&self.output_schema),
                payload.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(payload.num_rows())),
            )?);
        }
        let mut columns = Vec::with_capacity(self.layout.len());
        for (i, l) in self.layout.iter().enumerate() {
            match l {
                Ok(p) => columns.push(Arc::clone(payload.column(*p))),
                Err(key) => {
                    let target = self.output_schema.field(i).data_type();
                    let array = raw
                        .meta
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, a)| Arc::clone(a))
                        .ok_or_else(|| {
                            SluiceError::Internal(format!("connector gave no {key:?} metadata"))
                        })?;
                    let array = match good {
                        Some(idx) => take(&array, idx, None)?,
                        None => array,
                    };
                    columns.push(cast_metadata(&array, target)?);
                }
            }
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.output_schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(payload.num_rows())),
        )?)
    }
}

/// Binary keys become text lossily (a key is an identifier, not data to
/// reject); everything else is an Arrow cast.
fn cast_metadata(array: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    if let (DataType::Binary, DataType::Utf8) = (array.data_type(), target) {
        let bin = array
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| SluiceError::Internal("binary metadata".into()))?;
        let s: StringArray = bin
            .iter()
            .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        return Ok(Arc::new(s));
    }
    Ok(cast(array, target)?)
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
