//! Arrow → PostgreSQL: the type (OID) of each Arrow type, and each value in
//! text or binary format through pgwire's encoders.

use std::sync::Arc;

use std::fmt::Write as _;

use bytes::BytesMut;
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, TimeUnit};
use datafusion::arrow::datatypes::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType, UInt32Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{to_sql_checked, IsNull, ToSql};
use rust_decimal::Decimal;

/// The PostgreSQL type a column of `dt` is sent as.
pub fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::Struct(_) | DataType::Map(_, _) => Type::JSONB,
        // oid[]: how the catalog rewrite types `$1::oid[]` (asyncpg's type
        // introspection binds one, and knows oid[] without asking).
        DataType::List(f) if f.data_type() == &DataType::UInt32 => Type::OID_ARRAY,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match pg_type(f.data_type()) {
                Type::BOOL => Type::BOOL_ARRAY,
                Type::INT2 => Type::INT2_ARRAY,
                Type::INT4 => Type::INT4_ARRAY,
                Type::INT8 => Type::INT8_ARRAY,
                Type::FLOAT4 => Type::FLOAT4_ARRAY,
                Type::FLOAT8 => Type::FLOAT8_ARRAY,
                Type::NUMERIC => Type::NUMERIC_ARRAY,
                Type::DATE => Type::DATE_ARRAY,
                Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
                Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
                _ => Type::TEXT_ARRAY,
            }
        }
        _ => Type::TEXT,
    }
}

/// The row description of `schema` in `format`.
pub fn fields(schema: &Schema, format: &pgwire::api::portal::Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field(f, format.format_for(i)))
        .collect()
}

fn field(f: &Field, format: FieldFormat) -> FieldInfo {
    FieldInfo::new(f.name().clone(), None, None, field_pg_type(f), format)
}

/// The PostgreSQL type of a column: its Arrow type's, or the one its
/// metadata marks text as (`jsonb`, `json`, `"char"`).
pub fn field_pg_type(f: &Field) -> Type {
    match TextKind::of(f) {
        TextKind::Char => Type::CHAR,
        TextKind::Jsonb => Type::JSONB,
        TextKind::Json => Type::JSON,
        TextKind::Plain => pg_type(f.data_type()),
    }
}

/// `field` (text) sent as PostgreSQL's `"char"`.
pub fn as_pg_char(field: Field) -> Field {
    crate::sql::types::with_pg_type(field, "char")
}

/// What PostgreSQL type a text column is sent as (its field metadata, see
/// [`crate::sql::types::PG_TYPE_KEY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Plain,
    /// The one-byte `"char"`.
    Char,
    Jsonb,
    Json,
}

impl TextKind {
    fn of(f: &Field) -> TextKind {
        if !matches!(
            f.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return TextKind::Plain;
        }
        match crate::sql::types::pg_type_of(f) {
            Some("char") => TextKind::Char,
            Some("jsonb") => TextKind::Jsonb,
            Some("json") => TextKind::Json,
            _ => TextKind::Plain,
        }
    }
}

/// Encodes every row of `batch` as a DataRow, `timestamptz` values shown
/// in `zone` (the session's TimeZone).
pub fn rows(
    batch: &RecordBatch,
    schema: Arc<Vec<FieldInfo>>,
    zone: Tz,
) -> PgWireResult<Vec<DataRow>> {
    let columns: Vec<Column> = batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(c, f)| Column::new(c, zone).map(|c| c.with_text_kind(TextKind::of(f))))
        .collect::<PgWireResult<_>>()?;
    let mut encoder = DataRowEncoder::new(schema);
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for c in &columns {
            c.encode(row, &mut encoder)?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

/// Something pgwire can put into a row: a data row or a COPY line.
pub trait FieldSink {
    fn put<T: ToSql + ToSqlText + Sized>(&mut self, value: &T) -> PgWireResult<()>;
}

impl FieldSink for DataRowEncoder {
    fn put<T: ToSql + ToSqlText + Sized>(&mut self, value: &T) -> PgWireResult<()> {
        self.encode_field(value)
    }
}

impl FieldSink for pgwire::api::results::CopyEncoder {
    fn put<T: ToSql + ToSqlText + Sized>(&mut self, value: &T) -> PgWireResult<()> {
        self.encode_field(value)
    }
}

/// A column, cast once to the array type its values are encoded from.
pub struct Column {
    array: ArrayRef,
    /// Where `timestamptz` values are shown (PostgreSQL's TimeZone).
    zone: Tz,
    /// The PostgreSQL type text is sent as.
    text: TextKind,
}

/// UTC, the zone sessions start in.
pub fn utc() -> Tz {
    "+00:00"
        .parse()
        .unwrap_or_else(|_| unreachable!("+00:00 is a zone"))
}

fn out_of_range(dt: &DataType) -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "ERROR".into(),
        "22008".into(),
        format!(
            "{} out of range",
            crate::sql::types::arrow_to_sql(dt).to_lowercase()
        ),
    )))
}

impl Column {
    pub fn new(array: &ArrayRef, zone: Tz) -> PgWireResult<Column> {
        Ok(Column {
            array: widen(array)?,
            zone,
            text: TextKind::Plain,
        })
    }

    fn with_text_kind(mut self, text: TextKind) -> Column {
        self.text = text;
        self
    }

    pub fn encode(&self, row: usize, out: &mut impl FieldSink) -> PgWireResult<()> {
        let a = &self.array;
        if a.is_null(row) {
            return out.put(&None::<i32>);
        }
        // A date or time chrono cannot hold (`CAST(2147483647 AS date)`):
        // PostgreSQL's "out of range", not our bug.
        let invalid = || out_of_range(a.data_type());
        match a.data_type() {
            DataType::Boolean => out.put(&a.as_boolean().value(row)),
            DataType::Int16 => out.put(&a.as_primitive::<Int16Type>().value(row)),
            DataType::Int32 => out.put(&a.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => out.put(&a.as_primitive::<Int64Type>().value(row)),
            DataType::Float32 => out.put(&a.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => out.put(&a.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 if self.text == TextKind::Char => {
                out.put(&PgChar(a.as_string::<i32>().value(row).bytes().next()))
            }
            DataType::Utf8 if self.text == TextKind::Jsonb => {
                out.put(&Jsonb(a.as_string::<i32>().value(row)))
            }
            DataType::Utf8 => out.put(&a.as_string::<i32>().value(row)),
            DataType::Binary => out.put(&a.as_binary::<i32>().value(row)),
            DataType::LargeBinary => out.put(&a.as_binary::<i64>().value(row)),
            DataType::Date32 => out.put(
                &a.as_primitive::<Date32Type>()
                    .value_as_date(row)
                    .ok_or_else(invalid)?,
            ),
            DataType::Time64(_) => out.put(
                &a.as_primitive::<Time64MicrosecondType>()
                    .value_as_time(row)
                    .ok_or_else(invalid)?,
            ),
            DataType::Timestamp(_, None) => out.put(&Stamp(
                a.as_primitive::<TimestampMicrosecondType>()
                    .value_as_datetime(row)
                    .ok_or_else(invalid)?,
            )),
            DataType::Timestamp(_, Some(_)) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                let at = DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(invalid)?;
                out.put(&StampTz(at.with_timezone(&self.zone).fixed_offset()))
            }
            DataType::Decimal128(_, scale) => {
                let v = a.as_primitive::<Decimal128Type>().value(row);
                let d = Decimal::try_from_i128_with_scale(v, (*scale).max(0) as u32)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                out.put(&d)
            }
            DataType::Interval(_) => {
                let v = a.as_primitive::<IntervalMonthDayNanoType>().value(row);
                out.put(&pg_interval::Interval::new(
                    v.months,
                    v.days,
                    v.nanoseconds / 1000,
                ))
            }
            DataType::Struct(_) | DataType::Map(_, _) => out.put(&json_value(a, row)?),
            DataType::List(_) => encode_list(&a.as_list::<i32>().value(row), out),
            DataType::LargeList(_) => encode_list(&a.as_list::<i64>().value(row), out),
            DataType::FixedSizeList(_, _) => encode_list(&a.as_fixed_size_list().value(row), out),
            _ => {
                // Anything else is sent as its text form.
                let s = cast(&a.slice(row, 1), &DataType::Utf8)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                out.put(&s.as_string::<i32>().value(0))
            }
        }
    }
}

/// PostgreSQL's `"char"`: one byte (none for an empty string).
#[derive(Debug)]
struct PgChar(Option<u8>);

impl ToSqlText for PgChar {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend(self.0);
        Ok(IsNull::No)
    }
}

impl ToSql for PgChar {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::CHAR
    }

    to_sql_checked!();
}

/// A `jsonb` value: its text, after the version byte in binary format.
#[derive(Debug)]
struct Jsonb<'a>(&'a str);

impl ToSqlText for Jsonb<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// A `timestamp` as PostgreSQL writes it: fractional seconds only when
/// there are some, without trailing zeros (`2026-07-01 12:00:00.25`).
#[derive(Debug)]
struct Stamp(NaiveDateTime);

/// A `timestamptz` in the session's zone, with the offset as PostgreSQL
/// writes it (`+02`, `+05:30`).
#[derive(Debug)]
struct StampTz(DateTime<FixedOffset>);

fn write_stamp(at: &NaiveDateTime, out: &mut BytesMut) -> std::fmt::Result {
    write!(out, "{}", at.format("%Y-%m-%d %H:%M:%S"))?;
    let micros = at.and_utc().timestamp_subsec_micros();
    if micros != 0 {
        let fraction = format!("{micros:06}");
        write!(out, ".{}", fraction.trim_end_matches('0'))?;
    }
    Ok(())
}

impl ToSqlText for Stamp {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        write_stamp(&self.0, out)?;
        Ok(IsNull::No)
    }
}

impl ToSqlText for StampTz {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        write_stamp(&self.0.naive_local(), out)?;
        let offset = self.0.offset().local_minus_utc();
        let (sign, offset) = if offset < 0 {
            ('-', -offset)
        } else {
            ('+', offset)
        };
        write!(out, "{sign}{:02}", offset / 3600)?;
        if offset % 3600 != 0 {
            write!(out, ":{:02}", offset % 3600 / 60)?;
        }
        if offset % 60 != 0 {
            write!(out, ":{:02}", offset % 60)?;
        }
        Ok(IsNull::No)
    }
}

impl ToSql for Stamp {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <NaiveDateTime as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl ToSql for StampTz {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <DateTime<FixedOffset> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// `array` cast to the Arrow type its Postgres type is encoded from (the
/// types `pg_type` maps to a wider or other Postgres type).
fn widen(array: &ArrayRef) -> PgWireResult<ArrayRef> {
    let to = match array.data_type() {
        DataType::Int8 | DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Time32(_) | DataType::Time64(TimeUnit::Nanosecond) => {
            DataType::Time64(TimeUnit::Microsecond)
        }
        DataType::Timestamp(u, tz) if *u != TimeUnit::Microsecond => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
        }
        DataType::Duration(_) => DataType::Interval(IntervalUnit::MonthDayNano),
        DataType::Interval(u) if *u != IntervalUnit::MonthDayNano => {
            DataType::Interval(IntervalUnit::MonthDayNano)
        }
        DataType::Decimal256(p, s) => DataType::Decimal128((*p).min(38), *s),
        // A NULL literal's column: text NULLs (a NullArray has no null mask).
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
        _ => return Ok(Arc::clone(array)),
    };
    cast(array, &to).map_err(|e| PgWireError::ApiError(Box::new(e)))
}

fn encode_list(item: &ArrayRef, out: &mut impl FieldSink) -> PgWireResult<()> {
    if item.data_type() == &DataType::UInt32 {
        // oid[] (see pg_type): OIDs are u32.
        let a = item.as_primitive::<UInt32Type>();
        let v: Vec<Option<u32>> = (0..item.len())
            .map(|i| (!item.is_null(i)).then(|| a.value(i)))
            .collect();
        return out.put(&v);
    }
    let item = widen(item)?;
    let n = item.len();
    macro_rules! vec_of {
        ($values:expr) => {{
            let v: Vec<Option<_>> = (0..n)
                .map(|i| (!item.is_null(i)).then(|| $values(i)).flatten())
                .collect();
            out.put(&v)
        }};
    }
    macro_rules! prim {
        ($t:ty) => {{
            let a = item.as_primitive::<$t>();
            vec_of!(|i| Some(a.value(i)))
        }};
    }
    match item.data_type() {
        DataType::Boolean => {
            let a = item.as_boolean();
            vec_of!(|i| Some(a.value(i)))
        }
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Date32 => {
            let a = item.as_primitive::<Date32Type>();
            vec_of!(|i| a.value_as_date(i))
        }
        DataType::Timestamp(_, None) => {
            let a = item.as_primitive::<TimestampMicrosecondType>();
            vec_of!(|i| a.value_as_datetime(i))
        }
        DataType::Timestamp(_, Some(_)) => {
            let a = item.as_primitive::<TimestampMicrosecondType>();
            vec_of!(|i| DateTime::<Utc>::from_timestamp_micros(a.value(i)))
        }
        DataType::Decimal128(_, scale) => {
            let (a, scale) = (
                item.as_primitive::<Decimal128Type>(),
                (*scale).max(0) as u32,
            );
            vec_of!(|i| Decimal::try_from_i128_with_scale(a.value(i), scale).ok())
        }
        _ => {
            // Text, and anything else as its text form.
            let text =
                cast(&item, &DataType::Utf8).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let a = text.as_string::<i32>();
            vec_of!(|i| Some(a.value(i)))
        }
    }
}

/// A struct or map value as JSON (through arrow-json, one row).
fn json_value(a: &ArrayRef, row: usize) -> PgWireResult<serde_json::Value> {
    let field = Field::new("v", a.data_type().clone(), true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![a.slice(row, 1)])
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer
        .write(&batch)
        .and_then(|_| writer.finish())
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&writer.into_inner())
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|mut r| r.get_mut("v").map(serde_json::Value::take))
        .unwrap_or(serde_json::Value::Null))
}
