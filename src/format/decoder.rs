//! Raw records into batches of a source's declared schema: one pass over a
//! whole batch, the bad records isolated (counted and dead-lettered by the
//! pipeline) with a reason in the user's terms, and the columns a decoder
//! cannot fill computed after it ([`super::derived`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, StringArray, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::derived::{self, Derivation};
use super::json_integers::IntegerFields;
use super::json_structure::{json_structure, structure_suspects, Structure, MAX_JSON_DEPTH};
use super::{csv, json, Format, FormatKind, MetaKey, RawBatch, PROCTIME};
use crate::error::{Result, SluiceError};
use crate::sql::SourceColumn;

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
    /// Where each output column comes from.
    layout: Vec<Slot>,
    max_record_bytes: usize,
    /// JSON: the integer columns, checked in the raw records (see
    /// [`json_integers`]).
    integers: Option<IntegerFields>,
    /// JSON: the payload's floating-point columns, where a number too large
    /// for the type (`1e400`) decodes as infinity, and timestamp columns,
    /// where one (`1e20` ms) is clamped to the largest integer.
    floats: Vec<usize>,
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
            if c.metadata.as_deref() == Some(PROCTIME) {
                layout.push(Slot::ProcTime);
                continue;
            }
            if let Some(key) = &c.metadata {
                layout.push(Slot::Meta(MetaKey::parse(key).ok_or_else(|| {
                    SluiceError::Internal(format!("unchecked metadata key {key}"))
                })?));
                continue;
            }
            let json = matches!(c.pg_type, Some("jsonb" | "json"));
            let derivation = match (&c.data_type, format.kind) {
                _ if json && format.kind == FormatKind::Json => {
                    layout.push(Slot::Derived(Derivation::JsonField {
                        name: c.name.clone(),
                        nullable: c.nullable,
                    }));
                    continue;
                }
                _ if json => Some(Derivation::JsonText),
                (DataType::Interval(_), _) => Some(Derivation::Cast {
                    to: c.data_type.clone(),
                }),
                (DataType::Struct(_), FormatKind::Csv) => {
                    return Err(SluiceError::NotSupported(format!(
                        "column '{}' is a STRUCT, which a CSV record cannot hold; \
                         use format = 'json'",
                        c.name
                    )))
                }
                _ => None,
            };
            let payload = payload_fields.len();
            match derivation {
                Some(d) => {
                    payload_fields.push(Field::new(&c.name, DataType::Utf8, c.nullable));
                    layout.push(Slot::Converted(payload, d));
                }
                None => {
                    payload_fields.push(Field::new(&c.name, c.data_type.clone(), c.nullable));
                    layout.push(Slot::Payload(payload));
                }
            }
        }
        let payload_schema = Arc::new(Schema::new(payload_fields));
        let integers = match format.kind {
            FormatKind::Json => IntegerFields::of(&payload_schema),
            FormatKind::Csv => None,
        };
        let floats = match format.kind {
            FormatKind::Json => payload_schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    f.data_type().is_floating()
                        || matches!(f.data_type(), DataType::Timestamp(_, _))
                })
                .map(|(i, _)| i)
                .collect(),
            FormatKind::Csv => Vec::new(),
        };
        Ok(RecordDecoder {
            format,
            payload_schema,
            output_schema,
            layout,
            max_record_bytes,
            integers,
            floats,
        })
    }

    /// Decodes every record of `raw`: the good ones into one batch, the bad
    /// ones reported by index, in order.
    pub fn decode(&self, raw: &RawBatch) -> Result<Decoded> {
        let mut refused = self.screen(raw, false);
        if refused.is_empty() {
            // Fast path: the whole batch in one pass.
            match self.decode_bytes(raw.bytes(), raw.len()) {
                Ok(batch) if batch.num_rows() == raw.len() => {
                    if !self.may_have_clamped(&batch) {
                        return self.decoded(batch, raw, None, Vec::new());
                    }
                    refused = self.screen(raw, true);
                    if refused.is_empty() {
                        return self.decoded(batch, raw, None, Vec::new());
                    }
                }
                _ => return self.decode_one_by_one(raw, Vec::new()),
            }
        }
        // The records not refused, still in one pass.
        let mut keep = Vec::with_capacity(raw.len() - refused.len());
        let mut bytes = Vec::with_capacity(raw.byte_len());
        let mut refused_at = refused.iter().map(|b| b.index).peekable();
        for i in 0..raw.len() {
            if refused_at.next_if_eq(&i).is_some() {
                continue;
            }
            keep.push(i as u32);
            bytes.extend_from_slice(raw.record(i));
            bytes.push(b'\n');
        }
        match self.decode_bytes(&bytes, keep.len()) {
            Ok(batch) if batch.num_rows() == keep.len() && !self.may_have_clamped(&batch) => {
                self.decoded(batch, raw, Some(UInt32Array::from(keep)), refused)
            }
            _ => self.decode_one_by_one(raw, refused),
        }
    }

    /// Records refused before decoding, in order: too large, or (JSON) with
    /// an integer field arrow-json would truncate (`7.25`). `thorough`
    /// checks every record's integer fields, not only the suspects.
    fn screen(&self, raw: &RawBatch, thorough: bool) -> Vec<BadRecord> {
        let mut bad: Vec<BadRecord> = (0..raw.len())
            .filter_map(|index| {
                let len = raw.record(index).len();
                (len > self.max_record_bytes).then(|| BadRecord {
                    index,
                    reason: format!(
                        "record of {len} bytes exceeds max_record_bytes ({})",
                        self.max_record_bytes
                    ),
                })
            })
            .collect();
        if self.format.kind == FormatKind::Json {
            // Deep nesting makes decoders recurse (arrow-json quoting the
            // value in its error, serde_json): refused before they see it.
            // So do raw control characters, which JSON allows only
            // escaped (arrow-json would take them into the text).
            for index in structure_suspects(raw) {
                let reason = match json_structure(raw.record(index)) {
                    Structure::Fine => continue,
                    Structure::TooDeep(depth) => format!(
                        "record nests arrays and objects {depth} levels deep; \
                         the limit is {MAX_JSON_DEPTH}"
                    ),
                    Structure::ControlCharacter { byte, at } => format!(
                        "raw control character 0x{byte:02x} at byte {at}: JSON needs it escaped \
                         (\\u{byte:04x})"
                    ),
                };
                if !bad.iter().any(|b| b.index == index) {
                    bad.push(BadRecord { index, reason });
                }
            }
            bad.sort_by_key(|b| b.index);
        }
        let Some(integers) = &self.integers else {
            return bad;
        };
        let mut suspects: Vec<usize> = Vec::new();
        if thorough {
            suspects.extend(0..raw.len());
        } else {
            suspects.extend(
                integers
                    .suspects(raw.bytes())
                    .map(|at| raw.starts.partition_point(|&s| s <= at).saturating_sub(1)),
            );
            suspects.sort_unstable();
            suspects.dedup();
        }
        let oversized = bad.len();
        for index in suspects {
            if bad[..oversized].iter().any(|b| b.index == index) {
                continue;
            }
            if let Some(reason) = integers.check(raw.record(index)) {
                bad.push(BadRecord { index, reason });
            }
        }
        bad.sort_by_key(|b| b.index);
        bad
    }

    /// Rows whose floating-point fields overflowed their type (JSON has no
    /// infinity, so an infinite value was a number too large).
    fn out_of_range_floats(&self, payload: &RecordBatch) -> Result<Vec<(usize, String)>> {
        let mut out = Vec::new();
        for &i in &self.floats {
            let column = payload.column(i);
            let infinite = out_of_range(column)?;
            if infinite.true_count() == 0 {
                continue;
            }
            let field = self.payload_schema.field(i);
            for row in (0..infinite.len()).filter(|&r| infinite.value(r)) {
                out.push((
                    row,
                    format!(
                        "field \"{}\": value out of range for a column of type {}",
                        field.name(),
                        crate::sql::types::arrow_to_sql(field.data_type())
                    ),
                ));
            }
        }
        Ok(out)
    }

    fn may_have_clamped(&self, batch: &RecordBatch) -> bool {
        self.integers
            .as_ref()
            .is_some_and(|i| i.may_have_clamped(batch))
    }

    /// The slow path, once a batch does not decode whole: one record at a
    /// time, to find the bad ones. `refused` are known bad already.
    fn decode_one_by_one(&self, raw: &RawBatch, refused: Vec<BadRecord>) -> Result<Decoded> {
        let mut bad = Vec::with_capacity(refused.len());
        let mut refused = refused.into_iter().peekable();
        let mut batches = Vec::new();
        let mut good = Vec::new();
        let mut line = Vec::new();
        for i in 0..raw.len() {
            if let Some(r) = refused.next_if(|r| r.index == i) {
                bad.push(r);
                continue;
            }
            let record = raw.record(i);
            line.clear();
            line.extend_from_slice(record);
            line.push(b'\n');
            let reason = match self.decode_bytes(&line, 1) {
                Ok(b) if b.num_rows() == 1 => {
                    // i64::MIN may be a smaller number arrow-json clamped.
                    let clamped = match &self.integers {
                        Some(integers) if integers.may_have_clamped(&b) => integers.check(record),
                        _ => None,
                    };
                    match clamped {
                        Some(reason) => reason,
                        None => {
                            batches.push(b);
                            good.push(i as u32);
                            continue;
                        }
                    }
                }
                Ok(b) => format!("expected one record, found {}", b.num_rows()),
                Err(e) => self.explain(record, e),
            };
            bad.push(BadRecord { index: i, reason });
        }
        let batch = concat_batches(&self.payload_schema, &batches)?;
        self.decoded(batch, raw, Some(UInt32Array::from(good)), bad)
    }

    /// The decoded batch with its metadata and derived columns; `good`
    /// says which records of `raw` its rows are when not all of them.
    fn decoded(
        &self,
        payload: RecordBatch,
        raw: &RawBatch,
        good: Option<UInt32Array>,
        mut bad: Vec<BadRecord>,
    ) -> Result<Decoded> {
        if payload.num_rows() == 0 {
            return Ok(Decoded { batch: None, bad });
        }
        let (batch, errors) = self.attach_metadata(payload, raw, good.as_ref())?;
        // Rows whose derived columns did not convert are bad records too.
        for (row, reason) in errors {
            let index = good.as_ref().map_or(row, |g| g.value(row) as usize);
            bad.push(BadRecord { index, reason });
        }
        bad.sort_by_key(|b| b.index);
        Ok(Decoded {
            batch: (batch.num_rows() > 0).then_some(batch),
            bad,
        })
    }

    /// Why one record did not decode, in the user's terms where arrow-json's
    /// are its own: a missing NOT NULL field is "unmasked nulls in
    /// non-nullable StructArray child" to it.
    fn explain(&self, record: &[u8], error: SluiceError) -> String {
        if self.format.kind == FormatKind::Json {
            // arrow-json's own range errors ("failed to parse 70000 as
            // Int16") are worded like the ones found before decoding.
            let integers = self.integers.as_ref().and_then(|i| i.check(record));
            if let Some(reason) = integers.or_else(|| self.null_in_not_null(record)) {
                return reason;
            }
        }
        clip(error.to_string())
    }

    /// The first NOT NULL field a JSON record leaves out or sets to null.
    fn null_in_not_null(&self, record: &[u8]) -> Option<String> {
        let mut required = self
            .payload_schema
            .fields()
            .iter()
            .filter(|f| !f.is_nullable())
            .peekable();
        required.peek()?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(record).ok()?;
        required.find_map(|f| {
            let state = match object.get(f.name()) {
                None => "missing",
                Some(serde_json::Value::Null) => "null",
                Some(_) => return None,
            };
            Some(format!(
                "field \"{}\" is {state} but the column is NOT NULL",
                f.name()
            ))
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

    /// The output batch: payload columns, metadata and derived columns in
    /// declared order; and the rows whose derived columns did not convert,
    /// with why.
    fn attach_metadata(
        &self,
        payload: RecordBatch,
        raw: &RawBatch,
        good: Option<&UInt32Array>,
    ) -> Result<(RecordBatch, Vec<(usize, String)>)> {
        let rows = payload.num_rows();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let out_of_range = self.out_of_range_floats(&payload)?;
        if out_of_range.is_empty() && self.layout.iter().all(|l| matches!(l, Slot::Payload(_))) {
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(&self.output_schema),
                payload.columns().to_vec(),
                &options,
            )?;
            return Ok((batch, Vec::new()));
        }
        let mut errors = out_of_range;
        let mut columns = Vec::with_capacity(self.layout.len());
        for (i, l) in self.layout.iter().enumerate() {
            match l {
                Slot::Payload(p) => columns.push(Arc::clone(payload.column(*p))),
                Slot::Converted(p, derivation) => {
                    let name = self.output_schema.field(i).name();
                    let d = derived::convert(payload.column(*p), derivation, name);
                    errors.extend(d.errors);
                    columns.push(d.array);
                }
                Slot::Derived(Derivation::JsonField { name, nullable }) => {
                    let records = (0..rows)
                        .map(|row| raw.record(good.map_or(row, |g| g.value(row) as usize)));
                    let d = derived::json_fields(records, name, *nullable);
                    errors.extend(d.errors);
                    columns.push(d.array);
                }
                Slot::Derived(other) => {
                    return Err(SluiceError::Internal(format!(
                        "{other:?} is derived from a decoded column"
                    )))
                }
                Slot::ProcTime => {
                    let now = chrono::Utc::now().timestamp_millis();
                    let array = TimestampMillisecondArray::from_value(now, rows);
                    let target = self.output_schema.field(i).data_type();
                    columns.push(cast(&(Arc::new(array) as ArrayRef), target)?);
                }
                Slot::Meta(key) => {
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
        if errors.is_empty() {
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(&self.output_schema),
                columns,
                &options,
            )?;
            return Ok((batch, errors));
        }
        // Leave out the rows that did not convert (first reason each, in
        // row order), before a NOT NULL column sees their NULLs.
        errors.sort_by_key(|(row, _)| *row);
        let mut failed = vec![false; rows];
        errors.retain(|(row, _)| !std::mem::replace(&mut failed[*row], true));
        let keep: BooleanArray = failed.iter().map(|f| Some(!f)).collect();
        let columns = columns
            .iter()
            .map(|c| filter(c, &keep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows - errors.len()));
        let batch =
            RecordBatch::try_new_with_options(Arc::clone(&self.output_schema), columns, &options)?;
        Ok((batch, errors))
    }
}

/// Where one output column of a [`RecordDecoder`] comes from.
enum Slot {
    /// Payload column i as decoded.
    Payload(usize),
    /// Payload column i (text), converted.
    Converted(usize, Derivation),
    /// Computed from the raw record.
    Derived(Derivation),
    /// Filled by the connector.
    Meta(MetaKey),
    /// The time the batch is decoded (`PROCTIME()`).
    ProcTime,
}

/// The longest reason a bad record is given: decoders quote the value they
/// choke on, which may be most of a megabyte-long record.
const MAX_REASON_CHARS: usize = 300;

pub(crate) fn clip(reason: String) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        None => reason,
        Some((at, _)) => format!("{}… ({} bytes in all)", &reason[..at], reason.len()),
    }
}

/// Timestamps below this magnitude need no row-by-row check: in
/// milliseconds (Sluice's TIMESTAMP unit) it is the year 2223, and in
/// seconds still inside the calendar; beyond it (or in finer units) each
/// row is checked.
const CALENDAR_EDGE: i64 = 8_000_000_000_000;

/// Which values of a decoded column overflowed their type: infinite
/// floats, and timestamps arrow-json clamped or no calendar holds (NULL:
/// false).
fn out_of_range(column: &ArrayRef) -> Result<BooleanArray> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float32Type, Float64Type};
    if let DataType::Timestamp(_, _) = column.data_type() {
        let as_i64 = cast(column, &DataType::Int64)?;
        let values = as_i64.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        // The common case, every value well inside the calendar, costs two
        // vectorised passes (min and max).
        let (lo, hi) = (
            datafusion::arrow::compute::min(values),
            datafusion::arrow::compute::max(values),
        );
        if lo.is_none_or(|v| v > -CALENDAR_EDGE) && hi.is_none_or(|v| v < CALENDAR_EDGE) {
            return Ok(BooleanArray::from(vec![false; values.len()]));
        }
        let millis = cast(
            column,
            &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
        )?;
        let millis =
            millis.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        return Ok((0..values.len())
            .map(|r| {
                Some(
                    values.is_valid(r)
                        && (values.value(r) == i64::MAX
                            || values.value(r) == i64::MIN
                            || millis.value_as_datetime(r).is_none()),
                )
            })
            .collect());
    }
    Ok(match column.data_type() {
        DataType::Float64 => column
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| Some(v.is_some_and(f64::is_infinite)))
            .collect(),
        DataType::Float32 => column
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| Some(v.is_some_and(f32::is_infinite)))
            .collect(),
        other => {
            return Err(SluiceError::Internal(format!(
                "{other} is not a floating-point column"
            )))
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DEFAULT_MAX_RECORD_BYTES;
    use crate::sql::Options;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    fn column(name: &str, data_type: DataType, nullable: bool) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            data_type,
            nullable,
            metadata: None,
            pg_type: None,
        }
    }

    /// A JSON decoder for `(id BIGINT NOT NULL, v INT, s SMALLINT)`.
    fn decoder() -> RecordDecoder {
        let columns = [
            column("id", DataType::Int64, false),
            column("v", DataType::Int32, true),
            column("s", DataType::Int16, true),
        ];
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| c.field()).collect::<Vec<_>>(),
        ));
        let format = Format {
            kind: FormatKind::Json,
            csv_header: false,
            csv_delimiter: b',',
        };
        RecordDecoder::new(format, &columns, schema, DEFAULT_MAX_RECORD_BYTES).expect("decoder")
    }

    fn decode(records: &[&str]) -> (Vec<i64>, Vec<(usize, String)>) {
        let mut raw = RawBatch::default();
        for (i, r) in records.iter().enumerate() {
            raw.push(r.as_bytes(), i as u64 + 1);
        }
        let decoded = decoder().decode(&raw).expect("decode");
        let ids = decoded
            .batch
            .map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .unwrap_or_default();
        let bad = decoded
            .bad
            .into_iter()
            .map(|b| (b.index, b.reason))
            .collect();
        (ids, bad)
    }

    #[test]
    fn fractions_and_out_of_range_numbers_are_bad_records() {
        let (ids, bad) = decode(&[
            r#"{"id": 1, "v": 7}"#,
            r#"{"id": 2, "v": 7.25}"#,
            r#"{"id": 3, "s": 70000}"#,
            r#"{"id": 4.5}"#,
            r#"{"id": 1e400}"#,
            r#"{"id": 6, "v": 7.0, "s": 1e2}"#,
            r#"{"id": -9223372036854775809}"#,
            r#"{"id": -9223372036854775808}"#,
            r#"{"id": 9, "v": -.5}"#,
        ]);
        assert_eq!(ids, vec![1, 6, i64::MIN], "the good records, in order");
        assert_eq!(
            bad,
            vec![
                (1, r#"field "v": 7.25 is not an integer for a column of type INT"#.into()),
                (2, r#"field "s": 70000 is out of range for a column of type SMALLINT"#.into()),
                (3, r#"field "id": 4.5 is not an integer for a column of type BIGINT"#.into()),
                (4, r#"field "id": 1e400 is out of range for a column of type BIGINT"#.into()),
                (
                    6,
                    r#"field "id": -9223372036854775809 is out of range for a column of type BIGINT"#
                        .into()
                ),
                (8, r#"field "v": -.5 is not a number for a column of type INT"#.into()),
            ]
        );
    }

    #[test]
    fn a_missing_not_null_field_is_named() {
        let (ids, bad) = decode(&[
            r#"{"id": 1}"#,
            r#"{"v": 2}"#,
            r#"{"id": null, "v": 3}"#,
            r#"{"id": "seven"}"#,
        ]);
        assert_eq!(ids, vec![1]);
        assert_eq!(
            bad[0],
            (
                1,
                r#"field "id" is missing but the column is NOT NULL"#.into()
            )
        );
        assert_eq!(
            bad[1],
            (2, r#"field "id" is null but the column is NOT NULL"#.into())
        );
        assert_eq!(bad[2].0, 3);
        assert!(bad[2].1.contains("seven"), "{}", bad[2].1);
    }

    /// `1e400` into a DOUBLE (infinity after decoding) is a bad record, and
    /// a byte order mark before a record is not part of it (#22).
    #[test]
    fn out_of_range_doubles_are_bad_records_and_boms_are_skipped() {
        let columns = [
            column("id", DataType::Int64, true),
            column("x", DataType::Float64, true),
        ];
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| c.field()).collect::<Vec<_>>(),
        ));
        let decoder = RecordDecoder::new(
            Format::take(&mut Options::new()).expect("format"),
            &columns,
            schema,
            DEFAULT_MAX_RECORD_BYTES,
        )
        .expect("decoder");
        let mut raw = RawBatch::with_capacity(3, 64);
        raw.push(b"\xEF\xBB\xBF{\"id\": 1, \"x\": 1.5}", 1);
        raw.push(br#"{"id": 2, "x": 1e400}"#, 2);
        raw.push(br#"{"id": 3, "x": -2e308}"#, 3);
        let decoded = decoder.decode(&raw).expect("decode");
        let batch = decoded.batch.expect("rows");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            decoded
                .bad
                .iter()
                .map(|b| (b.index, b.reason.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (
                    1,
                    "field \"x\": value out of range for a column of type DOUBLE PRECISION"
                ),
                (
                    2,
                    "field \"x\": value out of range for a column of type DOUBLE PRECISION"
                ),
            ]
        );
    }

    /// 30,000 nested arrays (60 KB, under the record size limit): a bad
    /// record with a short reason, not a stack overflow, and the records
    /// around it come out (#22).
    #[test]
    fn deeply_nested_records_are_bad_records() {
        let deep = format!("{{\"id\": {}{}}}", "[".repeat(30_000), "]".repeat(30_000));
        let (ids, bad) = decode(&[r#"{"id": 1}"#, &deep, r#"{"id": 3}"#]);
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 1);
        assert_eq!(
            bad[0].1,
            "record nests arrays and objects 30001 levels deep; the limit is 100"
        );
        // Strings holding brackets do not count.
        let text = format!("{{\"id\": 5, \"s\": \"{}\"}}", "[".repeat(500));
        assert_eq!(json_structure(text.as_bytes()), Structure::Fine);
        let clipped = clip("x".repeat(1000));
        assert!(clipped.ends_with("… (1000 bytes in all)"), "{clipped}");
    }

    /// JSON allows control characters only escaped (#22 item 8): raw
    /// ones in a string or between tokens make a bad record; tabs and
    /// carriage returns between tokens are whitespace.
    #[test]
    fn raw_control_characters_are_bad_records() {
        let (ids, bad) = decode(&[
            "{\"id\": 1, \"note\": \"a\\u0001b\\tc\"}",
            "{\"id\": 2, \"note\": \"a\u{1}b\"}",
            "{\"id\":\t3,\r \"note\": \"x\"}",
            "{\"id\": 4, \"note\": \"tab\there\"}",
            "{\"id\": 5}\u{2}",
        ]);
        assert_eq!(ids, vec![1, 3]);
        let reasons: Vec<(usize, &str)> = bad.iter().map(|(i, r)| (*i, r.as_str())).collect();
        assert_eq!(
            reasons,
            vec![
                (
                    1,
                    "raw control character 0x01 at byte 21: JSON needs it escaped (\\u0001)"
                ),
                (
                    3,
                    "raw control character 0x09 at byte 23: JSON needs it escaped (\\u0009)"
                ),
                (
                    4,
                    "raw control character 0x02 at byte 10: JSON needs it escaped (\\u0002)"
                ),
            ]
        );
    }

    #[test]
    fn refused_and_undecodable_records_mix_in_order() {
        let (ids, bad) = decode(&[
            r#"{"id": 1.5}"#,
            r#"{"id": 2}"#,
            r#"{"id": "#,
            r#"{"id": 4}"#,
        ]);
        assert_eq!(ids, vec![2, 4]);
        let at: Vec<usize> = bad.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, vec![0, 2]);
    }
}
