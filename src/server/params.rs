//! Parameters of the extended protocol. A parameter's type is the one the
//! client declared at Parse, else the one its use implies (DataFusion's
//! placeholder inference at Parse: `col = $1`, `$1::bigint`,
//! `col = ANY($1)`), else text, as PostgreSQL answers Describe. A query's
//! parameters are bound as typed DataFusion values into its plan; other
//! statements (SET, DDL) get them as SQL literals in their text.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use pgwire::api::portal::Portal;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};

use super::Prepared;

/// Each parameter's type: declared by the client, else implied by its use,
/// else text.
pub fn types(statement: &StoredStatement<Prepared>) -> Vec<Type> {
    (0..statement.statement.params)
        .map(|i| {
            statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .filter(|t| *t != Type::UNKNOWN)
                .or_else(|| statement.statement.inferred.get(i).cloned().flatten())
                .unwrap_or(Type::TEXT)
        })
        .collect()
}

fn bad_parameter(i: usize, e: PgWireError) -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "ERROR".into(),
        "22P02".into(),
        format!("invalid input for parameter ${}: {e}", i + 1),
    )))
}

/// The portal's parameters as DataFusion values of their types.
pub fn values(portal: &Portal<Prepared>) -> PgWireResult<Vec<ScalarValue>> {
    let types = types(&portal.statement);
    (0..portal.parameters.len())
        .map(|i| {
            let ty = types.get(i).cloned().unwrap_or(Type::TEXT);
            value(portal, i, &ty).map_err(|e| bad_parameter(i, e))
        })
        .collect()
}

fn value(portal: &Portal<Prepared>, i: usize, ty: &Type) -> PgWireResult<ScalarValue> {
    macro_rules! get {
        ($t:ty) => {
            portal.parameter::<$t>(i, ty)?
        };
    }
    macro_rules! list {
        ($t:ty, $dt:expr, $scalar:expr) => {{
            let items: Option<Vec<Option<$t>>> = get!(Vec<Option<$t>>);
            match items {
                None => ScalarValue::try_from(&DataType::new_list($dt, true))
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?,
                Some(items) => {
                    let scalars: Vec<ScalarValue> = items.into_iter().map($scalar).collect();
                    ScalarValue::List(ScalarValue::new_list_nullable(&scalars, &$dt))
                }
            }
        }};
    }
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(get!(bool)),
        Type::INT2 => ScalarValue::Int16(get!(i16)),
        Type::INT4 => ScalarValue::Int32(get!(i32)),
        Type::INT8 => ScalarValue::Int64(get!(i64)),
        Type::FLOAT4 => ScalarValue::Float32(get!(f32)),
        Type::FLOAT8 => ScalarValue::Float64(get!(f64)),
        Type::NUMERIC => match get!(rust_decimal::Decimal) {
            None => ScalarValue::Decimal128(None, 38, 10),
            Some(d) => ScalarValue::Decimal128(Some(d.mantissa()), 38, d.scale() as i8),
        },
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            get!(NaiveDateTime).map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            get!(DateTime<FixedOffset>).map(|t| t.timestamp_micros()),
            Some("+00:00".into()),
        ),
        Type::DATE => ScalarValue::Date32(get!(NaiveDate).map(|d| {
            (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
        })),
        Type::INT8_ARRAY => list!(i64, DataType::Int64, ScalarValue::Int64),
        Type::INT4_ARRAY => list!(i32, DataType::Int64, |v: Option<i32>| {
            ScalarValue::Int64(v.map(i64::from))
        }),
        Type::INT2_ARRAY => list!(i16, DataType::Int64, |v: Option<i16>| {
            ScalarValue::Int64(v.map(i64::from))
        }),
        // OIDs are BIGINT in the emulated catalog.
        Type::OID_ARRAY => list!(u32, DataType::Int64, |v: Option<u32>| {
            ScalarValue::Int64(v.map(i64::from))
        }),
        Type::OID => ScalarValue::Int64(get!(u32).map(i64::from)),
        Type::FLOAT8_ARRAY | Type::FLOAT4_ARRAY => {
            list!(f64, DataType::Float64, ScalarValue::Float64)
        }
        Type::BOOL_ARRAY => list!(bool, DataType::Boolean, ScalarValue::Boolean),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::CHAR_ARRAY => {
            list!(String, DataType::Utf8, ScalarValue::Utf8)
        }
        // Text, and any type we take as its text form.
        _ => ScalarValue::Utf8(text(portal, i)?),
    })
}

/// A parameter's bytes as text, whatever its declared type.
fn text(portal: &Portal<Prepared>, i: usize) -> PgWireResult<Option<String>> {
    match portal.parameters.get(i).cloned().flatten() {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| PgWireError::InvalidRustTypeForParameter("text (not UTF-8)".into())),
    }
}

/// Positions of `$n` placeholders outside quotes: (byte range, n).
fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'$' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j > i + 1 {
                    if let Ok(n) = sql[i + 1..j].parse::<usize>() {
                        out.push((i..j, n));
                    }
                    i = j;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// The most parameters a statement may have (PostgreSQL's limit: the
/// protocol counts them in 16 bits).
pub const MAX_PARAMETERS: usize = 65_535;

/// How many parameters `sql` takes (its highest `$n`); `Err(n)` for a
/// placeholder no statement can have (`$0`, or past [`MAX_PARAMETERS`]).
pub fn count_parameters(sql: &str) -> std::result::Result<usize, usize> {
    let mut most = 0;
    for (_, n) in placeholders(sql) {
        if n == 0 || n > MAX_PARAMETERS {
            return Err(n);
        }
        most = most.max(n);
    }
    Ok(most)
}

/// `sql` with `$n` replaced by the n-th literal (`None`: NULL).
pub fn substitute(sql: &str, literals: &[Option<String>]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (range, n) in placeholders(sql) {
        out.push_str(&sql[last..range.start]);
        match literals.get(n.wrapping_sub(1)).cloned().flatten() {
            Some(l) => out.push_str(&l),
            None => out.push_str("NULL"),
        }
        last = range.end;
    }
    out.push_str(&sql[last..]);
    out
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The portal's statement with its parameters as SQL literals (for
/// statements other than queries, which take typed values instead).
pub fn bind(sql: &str, portal: &Portal<Prepared>) -> PgWireResult<String> {
    let types = types(&portal.statement);
    let mut literals = Vec::with_capacity(portal.parameters.len());
    for i in 0..portal.parameters.len() {
        let ty = types.get(i).cloned().unwrap_or(Type::UNKNOWN);
        let bad = |e: PgWireError| bad_parameter(i, e);
        let literal = match ty {
            Type::INT2 => portal
                .parameter::<i16>(i, &ty)
                .map_err(bad)?
                .map(|v| v.to_string()),
            Type::INT4 => portal
                .parameter::<i32>(i, &ty)
                .map_err(bad)?
                .map(|v| v.to_string()),
            Type::INT8 => portal
                .parameter::<i64>(i, &ty)
                .map_err(bad)?
                .map(|v| v.to_string()),
            Type::FLOAT4 => portal
                .parameter::<f32>(i, &ty)
                .map_err(bad)?
                .map(|v| format!("CAST({v} AS REAL)")),
            Type::FLOAT8 => portal
                .parameter::<f64>(i, &ty)
                .map_err(bad)?
                .map(|v| format!("CAST({v} AS DOUBLE)")),
            Type::NUMERIC => portal
                .parameter::<rust_decimal::Decimal>(i, &ty)
                .map_err(bad)?
                .map(|v| v.to_string()),
            Type::BOOL => portal.parameter::<bool>(i, &ty).map_err(bad)?.map(|v| {
                if v {
                    "TRUE".into()
                } else {
                    "FALSE".into()
                }
            }),
            Type::TIMESTAMP => portal
                .parameter::<chrono::NaiveDateTime>(i, &ty)
                .map_err(bad)?
                .map(|v| format!("CAST('{v}' AS TIMESTAMP)")),
            Type::DATE => portal
                .parameter::<chrono::NaiveDate>(i, &ty)
                .map_err(bad)?
                .map(|v| format!("CAST('{v}' AS DATE)")),
            _ => {
                // Text (or a type the client left open): a string literal,
                // which DataFusion coerces where a number is compared.
                match portal.parameters.get(i).cloned().flatten() {
                    None => None,
                    Some(bytes) => {
                        let s = String::from_utf8(bytes.to_vec()).map_err(|_| {
                            bad(PgWireError::InvalidRustTypeForParameter(
                                "text (not UTF-8)".into(),
                            ))
                        })?;
                        Some(quote_literal(&s))
                    }
                }
            }
        };
        literals.push(literal);
    }
    Ok(substitute(sql, &literals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_substituted_outside_quotes() {
        let sql = "SELECT * FROM v WHERE a = $1 AND b = '$2' AND c = $2";
        assert_eq!(count_parameters(sql), Ok(2));
        assert_eq!(count_parameters("SELECT $99999999999"), Err(99999999999));
        assert_eq!(count_parameters("SELECT $0"), Err(0));
        assert_eq!(
            substitute(sql, &[Some("1".into()), Some("'x'".into())]),
            "SELECT * FROM v WHERE a = 1 AND b = '$2' AND c = 'x'"
        );
    }
}
