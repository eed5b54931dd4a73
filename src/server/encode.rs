//! Arrow → PostgreSQL: the type (OID) of each Arrow type, and each value in
//! text or binary format through pgwire's encoders.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
    LargeStringArray, StringArray, StringViewArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::ToSql;
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
        DataType::Null => Type::TEXT,
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
    FieldInfo::new(f.name().clone(), None, None, pg_type(f.data_type()), format)
}

/// Encodes every row of `batch` as a DataRow.
pub fn rows(batch: &RecordBatch, schema: Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let columns: Vec<Column> = batch
        .columns()
        .iter()
        .map(Column::new)
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
}

fn unsupported(dt: &DataType) -> PgWireError {
    PgWireError::ApiError(format!("cannot send values of type {dt}").into())
}

impl Column {
    pub fn new(array: &ArrayRef) -> PgWireResult<Column> {
        let cast_to = match array.data_type() {
            DataType::Int8 | DataType::UInt8 => Some(DataType::Int16),
            DataType::UInt16 => Some(DataType::Int32),
            DataType::UInt32 => Some(DataType::Int64),
            DataType::UInt64 => Some(DataType::Decimal128(20, 0)),
            DataType::Float16 => Some(DataType::Float32),
            DataType::Date64 => Some(DataType::Date32),
            DataType::Time32(_) => Some(DataType::Time64(TimeUnit::Microsecond)),
            DataType::Timestamp(u, tz) if *u != TimeUnit::Microsecond => {
                Some(DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))
            }
            DataType::Time64(TimeUnit::Nanosecond) => Some(DataType::Time64(TimeUnit::Microsecond)),
            DataType::Duration(_) => Some(DataType::Interval(IntervalUnit::MonthDayNano)),
            DataType::Interval(u) if *u != IntervalUnit::MonthDayNano => {
                Some(DataType::Interval(IntervalUnit::MonthDayNano))
            }
            DataType::Decimal256(p, s) => Some(DataType::Decimal128((*p).min(38), *s)),
            _ => None,
        };
        let array = match cast_to {
            Some(t) => cast(array, &t).map_err(|e| PgWireError::ApiError(Box::new(e)))?,
            None => Arc::clone(array),
        };
        Ok(Column { array })
    }

    pub fn encode(&self, row: usize, out: &mut impl FieldSink) -> PgWireResult<()> {
        let a = &self.array;
        if a.is_null(row) {
            return out.put(&None::<i32>);
        }
        macro_rules! prim {
            ($t:ty) => {
                out.put(
                    &a.as_any()
                        .downcast_ref::<$t>()
                        .ok_or_else(|| unsupported(a.data_type()))?
                        .value(row),
                )
            };
        }
        match a.data_type() {
            DataType::Boolean => prim!(BooleanArray),
            DataType::Int16 => prim!(Int16Array),
            DataType::Int32 => prim!(Int32Array),
            DataType::Int64 => prim!(Int64Array),
            DataType::Float32 => prim!(Float32Array),
            DataType::Float64 => prim!(Float64Array),
            DataType::Utf8 => out.put(&a.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => out.put(&a.as_string::<i64>().value(row)),
            DataType::Utf8View => out.put(&a.as_string_view().value(row)),
            DataType::Binary => out.put(&a.as_binary::<i32>().value(row)),
            DataType::LargeBinary => out.put(&a.as_binary::<i64>().value(row)),
            DataType::Date32 => {
                let days = a
                    .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                    .value(row);
                let date = NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                    .ok_or_else(|| unsupported(a.data_type()))?;
                out.put(&date)
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                let us = a
                    .as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>()
                    .value(row);
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    (us / 1_000_000) as u32,
                    ((us % 1_000_000) * 1000) as u32,
                )
                .ok_or_else(|| unsupported(a.data_type()))?;
                out.put(&t)
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                let us = a
                    .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                    .value(row);
                let dt: DateTime<Utc> = DateTime::from_timestamp_micros(us)
                    .ok_or_else(|| unsupported(a.data_type()))?;
                match tz {
                    None => out.put(&dt.naive_utc()),
                    Some(_) => out.put(&dt),
                }
            }
            DataType::Decimal128(_, scale) => {
                let v = a
                    .as_any()
                    .downcast_ref::<Decimal128Array>()
                    .ok_or_else(|| unsupported(a.data_type()))?
                    .value(row);
                let d = Decimal::try_from_i128_with_scale(v, (*scale).max(0) as u32)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                out.put(&d)
            }
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                let v = a
                    .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                    .value(row);
                let i = pg_interval::Interval::new(v.months, v.days, v.nanoseconds / 1000);
                out.put(&i)
            }
            DataType::Struct(_) | DataType::Map(_, _) => out.put(&json_value(a, row)?),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
                let item = match a.data_type() {
                    DataType::List(_) => a.as_list::<i32>().value(row),
                    DataType::LargeList(_) => a.as_list::<i64>().value(row),
                    _ => a.as_fixed_size_list().value(row),
                };
                encode_list(&item, out)
            }
            _ => {
                // Anything else is sent as its text form.
                let s = cast(&a.slice(row, 1), &DataType::Utf8)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                out.put(&s.as_string::<i32>().value(0))
            }
        }
    }
}

fn encode_list(item: &ArrayRef, out: &mut impl FieldSink) -> PgWireResult<()> {
    let n = item.len();
    macro_rules! vec_of {
        ($t:ty) => {{
            let a = item
                .as_any()
                .downcast_ref::<$t>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<_>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect();
            out.put(&v)
        }};
    }
    match item.data_type() {
        DataType::Boolean => vec_of!(BooleanArray),
        DataType::Int8 => {
            let a = item
                .as_any()
                .downcast_ref::<Int8Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<i16>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i) as i16))
                .collect();
            out.put(&v)
        }
        DataType::UInt8 => {
            let a = item
                .as_any()
                .downcast_ref::<UInt8Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<i16>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i) as i16))
                .collect();
            out.put(&v)
        }
        DataType::Int16 => vec_of!(Int16Array),
        DataType::UInt16 => {
            let a = item
                .as_any()
                .downcast_ref::<UInt16Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<i32>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i) as i32))
                .collect();
            out.put(&v)
        }
        DataType::Int32 => vec_of!(Int32Array),
        DataType::UInt32 => {
            let a = item
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<i64>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i) as i64))
                .collect();
            out.put(&v)
        }
        DataType::Int64 => vec_of!(Int64Array),
        DataType::UInt64 => {
            let a = item
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<Decimal>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| Decimal::from(a.value(i))))
                .collect();
            out.put(&v)
        }
        DataType::Float32 => vec_of!(Float32Array),
        DataType::Float64 => vec_of!(Float64Array),
        DataType::Utf8 => vec_of!(StringArray),
        DataType::LargeUtf8 => vec_of!(LargeStringArray),
        DataType::Utf8View => vec_of!(StringViewArray),
        DataType::Binary | DataType::LargeBinary => {
            let text =
                cast(item, &DataType::Utf8).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            encode_list(&text, out)
        }
        DataType::Date32 => {
            let a = item
                .as_any()
                .downcast_ref::<Date32Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let v: Vec<Option<NaiveDate>> = (0..n)
                .map(|i| {
                    (!a.is_null(i))
                        .then(|| NaiveDate::from_num_days_from_ce_opt(a.value(i) + 719_163))
                        .flatten()
                })
                .collect();
            out.put(&v)
        }
        DataType::Timestamp(_, tz) => {
            let us = cast(item, &DataType::Timestamp(TimeUnit::Microsecond, None))
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let a = us.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            let v: Vec<Option<DateTime<Utc>>> = (0..n)
                .map(|i| {
                    (!a.is_null(i))
                        .then(|| DateTime::from_timestamp_micros(a.value(i)))
                        .flatten()
                })
                .collect();
            match tz {
                None => {
                    let v: Vec<Option<NaiveDateTime>> =
                        v.into_iter().map(|d| d.map(|d| d.naive_utc())).collect();
                    out.put(&v)
                }
                Some(_) => out.put(&v),
            }
        }
        DataType::Decimal128(_, _) => {
            let a = item
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .ok_or_else(|| unsupported(item.data_type()))?;
            let scale = a.scale().max(0) as u32;
            let v: Vec<Option<Decimal>> = (0..n)
                .map(|i| {
                    (!a.is_null(i))
                        .then(|| Decimal::try_from_i128_with_scale(a.value(i), scale).ok())
                        .flatten()
                })
                .collect();
            out.put(&v)
        }
        _ => {
            let text =
                cast(item, &DataType::Utf8).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let a = text.as_string::<i32>();
            let v: Vec<Option<&str>> = (0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect();
            out.put(&v)
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

#[allow(unused)]
fn _assert_used(_: BinaryArray, _: LargeBinaryArray, _: UInt64Array) {}
