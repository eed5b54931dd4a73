//! SQL type names → Arrow types (PostgreSQL spelling first).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, ExactNumberInfo};

use crate::error::{Result, SluiceError};

/// The unit Sluice stores TIMESTAMP columns in: milliseconds, the precision
/// of Kafka timestamps and of epoch-millisecond event fields.
pub const TIMESTAMP_UNIT: TimeUnit = TimeUnit::Millisecond;

pub fn sql_to_arrow(ty: &ast::DataType) -> Result<DataType> {
    use ast::DataType as S;
    Ok(match ty {
        S::TinyInt(_) => DataType::Int8,
        S::SmallInt(_) | S::Int2(_) => DataType::Int16,
        S::Int(_) | S::Integer(_) | S::Int4(_) | S::MediumInt(_) => DataType::Int32,
        S::BigInt(_) | S::Int8(_) | S::Int64 => DataType::Int64,
        S::Real | S::Float4 | S::Float32 => DataType::Float32,
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 | S::Float(_) => {
            DataType::Float64
        }
        S::Boolean | S::Bool => DataType::Boolean,
        S::Text
        | S::String(_)
        | S::Varchar(_)
        | S::CharVarying(_)
        | S::Char(_)
        | S::Character(_)
        | S::CharacterVarying(_) => DataType::Utf8,
        S::Bytea | S::Blob(_) | S::Binary(_) | S::Varbinary(_) => DataType::Binary,
        // Text marked as JSON by `sql_pg_type`.
        S::JSON | S::JSONB => DataType::Utf8,
        S::Time(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
            DataType::Time64(TimeUnit::Microsecond)
        }
        S::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        S::Struct(fields, _) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    let name = f.field_name.as_ref().ok_or_else(|| {
                        SluiceError::NotSupported(format!(
                            "a STRUCT field without a name in {ty}; write STRUCT<name TYPE, …>"
                        ))
                    })?;
                    Ok(Field::new(
                        name.value.clone(),
                        sql_to_arrow(&f.field_type)?,
                        true,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        S::Date => DataType::Date32,
        S::Timestamp(_, tz) => match tz {
            ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => {
                DataType::Timestamp(TIMESTAMP_UNIT, Some("+00:00".into()))
            }
            _ => DataType::Timestamp(TIMESTAMP_UNIT, None),
        },
        S::TimestampNtz(_) | S::Datetime(_) => DataType::Timestamp(TIMESTAMP_UNIT, None),
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => match info {
            ExactNumberInfo::PrecisionAndScale(p, s) => DataType::Decimal128(
                u8::try_from(*p).map_err(|_| bad_type(ty))?,
                i8::try_from(*s).map_err(|_| bad_type(ty))?,
            ),
            ExactNumberInfo::Precision(p) => {
                DataType::Decimal128(u8::try_from(*p).map_err(|_| bad_type(ty))?, 0)
            }
            ExactNumberInfo::None => DataType::Decimal128(38, 10),
        },
        S::Array(def) => match def {
            ast::ArrayElemTypeDef::SquareBracket(inner, _)
            | ast::ArrayElemTypeDef::AngleBracket(inner)
            | ast::ArrayElemTypeDef::Parenthesis(inner) => {
                DataType::List(Arc::new(Field::new("item", sql_to_arrow(inner)?, true)))
            }
            ast::ArrayElemTypeDef::None => return Err(bad_type(ty)),
        },
        _ => return Err(bad_type(ty)),
    })
}

/// The SQL spelling of an Arrow type, for DESCRIBE.
pub fn arrow_to_sql(ty: &DataType) -> String {
    match ty {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "NUMERIC(20,0)".into(),
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) => format!("{}[]", arrow_to_sql(f.data_type())),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Struct(fields) => format!(
            "STRUCT<{}>",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), field_to_sql(f)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn bad_type(ty: &ast::DataType) -> SluiceError {
    SluiceError::NotSupported(format!(
        "column type {ty}; supported types are SMALLINT, INT, BIGINT, REAL, \
         DOUBLE PRECISION, DECIMAL(p,s), BOOLEAN, TEXT/VARCHAR, BYTEA, DATE, \
         TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, JSONB/JSON, STRUCT<name TYPE, …> \
         and arrays of them"
    ))
}

/// Field metadata naming the PostgreSQL type a column is shown as when its
/// Arrow type alone does not say: `jsonb` and `json` are text, `"char"` a
/// one-byte text.
pub const PG_TYPE_KEY: &str = "sluice.pg_type";

/// `field` marked as PostgreSQL's `pg_type` (`"jsonb"`, `"json"`, `"char"`).
pub fn with_pg_type(field: Field, pg_type: &str) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(PG_TYPE_KEY.to_string(), pg_type.to_string());
    field.with_metadata(metadata)
}

/// The static name of a PostgreSQL type Sluice marks fields with.
pub fn known_pg_type(name: &str) -> Option<&'static str> {
    ["jsonb", "json", "char"].into_iter().find(|k| *k == name)
}

/// The PostgreSQL type a column declared as `ty` is marked as (see
/// [`PG_TYPE_KEY`]).
pub fn sql_pg_type(ty: &ast::DataType) -> Option<&'static str> {
    match ty {
        ast::DataType::JSONB => Some("jsonb"),
        ast::DataType::JSON => Some("json"),
        _ => None,
    }
}

/// The SQL spelling of a field's type, for DESCRIBE: `jsonb` where the
/// field is marked so, else [`arrow_to_sql`].
pub fn field_to_sql(field: &Field) -> String {
    match pg_type_of(field) {
        Some("jsonb") => "JSONB".into(),
        Some("json") => "JSON".into(),
        _ => arrow_to_sql(field.data_type()),
    }
}

/// The PostgreSQL type `field` is marked as, if any.
pub fn pg_type_of(field: &Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_KEY).map(String::as_str)
}
