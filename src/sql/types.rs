//! SQL type names → Arrow types (PostgreSQL spelling first).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
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
        other => other.to_string(),
    }
}

fn bad_type(ty: &ast::DataType) -> SluiceError {
    SluiceError::NotSupported(format!(
        "column type {ty}; supported types are SMALLINT, INT, BIGINT, REAL, \
         DOUBLE PRECISION, DECIMAL(p,s), BOOLEAN, TEXT/VARCHAR, BYTEA, DATE, \
         TIMESTAMP, TIMESTAMPTZ and arrays of them"
    ))
}
