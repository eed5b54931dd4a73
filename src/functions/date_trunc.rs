//! `date_trunc(unit, value)` with every unit PostgreSQL accepts.
//!
//! DataFusion's `date_trunc` knows `microsecond` to `year`, singular only.
//! This wraps it, keeping its signature and result types: the unit is read
//! as PostgreSQL reads it (any case, plurals and abbreviations such as
//! `usecs`, `mins`, `hrs`, `mon`, `qtr`, `yrs`, only the first 10
//! characters compared) and handed to DataFusion's function by its own
//! name, except `decade`, `century` and `millennium`, which DataFusion does
//! not have and are computed here with PostgreSQL's arithmetic (the
//! century starting in 2001 holds 2026; `date_trunc('decade', …)` of year
//! 5 is 1 BC, as in PostgreSQL).
//!
//! A timestamp with a time zone is truncated in its own zone, as
//! DataFusion does for the other units; Sluice's `timestamptz` is UTC, as
//! is PostgreSQL's session default. PostgreSQL's third argument (the zone
//! to truncate in) is not supported.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, TimeUnit};
use datafusion::common::{exec_err, internal_err, ScalarValue};
use datafusion::error::Result;
use datafusion::functions::datetime::date_trunc::DateTruncFunc;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::pg_datetime::DateTimeError;
use super::scalar_str;
use super::zone::Zone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A unit DataFusion's `date_trunc` has, by its name there.
    DataFusion(&'static str),
    Decade,
    Century,
    Millennium,
    /// A unit PostgreSQL knows but cannot truncate to (`timezone`).
    NotSupported,
}

impl Unit {
    /// PostgreSQL's reading of `text` (`DecodeUnits` over its `deltatktbl`:
    /// lower-cased, compared on at most 10 characters).
    fn parse(text: &str) -> Option<Unit> {
        let lower = text.to_lowercase();
        let key: String = lower.chars().take(10).collect();
        Some(match key.as_str() {
            "microsecon" | "us" | "usec" | "usecond" | "useconds" | "usecs" => {
                Unit::DataFusion("microsecond")
            }
            "millisecon" | "ms" | "msec" | "msecond" | "mseconds" | "msecs" => {
                Unit::DataFusion("millisecond")
            }
            "s" | "sec" | "second" | "seconds" | "secs" => Unit::DataFusion("second"),
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::DataFusion("minute"),
            "h" | "hour" | "hours" | "hr" | "hrs" => Unit::DataFusion("hour"),
            "d" | "day" | "days" => Unit::DataFusion("day"),
            "w" | "week" | "weeks" => Unit::DataFusion("week"),
            "mon" | "mons" | "month" | "months" => Unit::DataFusion("month"),
            "qtr" | "quarter" => Unit::DataFusion("quarter"),
            "y" | "year" | "years" | "yr" | "yrs" => Unit::DataFusion("year"),
            "dec" | "decade" | "decades" | "decs" => Unit::Decade,
            "c" | "cent" | "centuries" | "century" => Unit::Century,
            "mil" | "millennia" | "millennium" | "mils" => Unit::Millennium,
            "timezone" | "timezone_h" | "timezone_m" => Unit::NotSupported,
            _ => return None,
        })
    }

    /// The first year of the decade, century or millennium holding `year`
    /// (astronomical: 0 is 1 BC), as PostgreSQL's `timestamp_trunc`
    /// computes it (C division truncates toward zero, as Rust's does).
    fn first_year(self, year: i32) -> i32 {
        let mut year = year;
        if self == Unit::Millennium {
            year = if year > 0 {
                ((year + 999) / 1000) * 1000 - 999
            } else {
                -((999 - (year - 1)) / 1000) * 1000 + 1
            };
        }
        if matches!(self, Unit::Millennium | Unit::Century) {
            year = if year > 0 {
                ((year + 99) / 100) * 100 - 99
            } else {
                -((99 - (year - 1)) / 100) * 100 + 1
            };
        }
        if self == Unit::Decade {
            year = if year > 0 {
                (year / 10) * 10
            } else {
                -((8 - (year - 1)) / 10) * 10
            };
        }
        year
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateTrunc {
    datafusion: DateTruncFunc,
    aliases: Vec<String>,
}

impl DateTrunc {
    pub fn new() -> Self {
        Self {
            datafusion: DateTruncFunc::new(),
            aliases: vec!["datetrunc".to_string()],
        }
    }
}

impl Default for DateTrunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        "date_trunc"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        self.datafusion.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.datafusion.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.datafusion.return_field_from_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.datafusion.output_ordering(input)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [unit, value] = args.args.as_slice() else {
            return internal_err!("date_trunc takes 2 arguments, got {}", args.args.len());
        };
        let ColumnarValue::Scalar(unit) = unit else {
            return exec_err!("the unit of date_trunc must be a constant");
        };
        // PostgreSQL's function is strict: a NULL unit gives NULL.
        let Some(text) = scalar_str(unit)? else {
            // Of the type DataFusion's function returns for the value.
            let null = match value.data_type() {
                DataType::Null => ScalarValue::TimestampNanosecond(None, None),
                t => ScalarValue::try_from(&t)?,
            };
            return Ok(match value {
                ColumnarValue::Scalar(_) => ColumnarValue::Scalar(null),
                ColumnarValue::Array(a) => ColumnarValue::Array(null.to_array_of_size(a.len())?),
            });
        };
        match Unit::parse(text) {
            Some(Unit::DataFusion(name)) => {
                args.args[0] = ColumnarValue::Scalar(ScalarValue::Utf8(Some(name.to_string())));
                self.datafusion.invoke_with_args(args)
            }
            Some(unit @ (Unit::Decade | Unit::Century | Unit::Millennium)) => {
                truncate_years(unit, text, value)
            }
            Some(Unit::NotSupported) => exec_err!(
                "unit \"{text}\" not supported for type {}",
                postgres_type(&value.data_type())
            ),
            None => exec_err!(
                "unit \"{text}\" not recognized for type {}",
                postgres_type(&value.data_type())
            ),
        }
    }
}

/// PostgreSQL's name for the type of the value argument, for messages.
fn postgres_type(t: &DataType) -> String {
    match t {
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        other => other.to_string(),
    }
}

/// Truncates every timestamp to the first instant of its decade, century
/// or millennium (January 1, midnight, in the value's zone).
fn truncate_years(unit: Unit, text: &str, value: &ColumnarValue) -> Result<ColumnarValue> {
    let (array, scalar) = match value {
        ColumnarValue::Scalar(ScalarValue::Null) => {
            return Ok(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
                None, None,
            )))
        }
        ColumnarValue::Scalar(v) => (v.to_array()?, true),
        ColumnarValue::Array(a) => (Arc::clone(a), false),
    };
    let DataType::Timestamp(time_unit, zone_name) = array.data_type().clone() else {
        return exec_err!(
            "date_trunc cannot truncate a value of type {} to '{text}'",
            array.data_type()
        );
    };
    let zone = zone_name.as_deref().map(Zone::parse).transpose()?;
    let per_second: i64 = match time_unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    // A timestamp array is its i64 values; the casts reinterpret them.
    let raw = cast(&array, &DataType::Int64)?;
    let truncated = raw
        .as_primitive::<Int64Type>()
        .try_unary::<_, Int64Type, DateTimeError>(|v| {
            let utc = first_instant(unit, v.div_euclid(per_second), zone.as_ref())?;
            utc.checked_mul(per_second)
                .ok_or(DateTimeError::TimestampOutOfRange)
        })?;
    let out = cast(&truncated, array.data_type())?;
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// The first second (UTC, since 1970) of the period holding the instant
/// `utc` (seconds since 1970), in `zone` (none: UTC).
fn first_instant(unit: Unit, utc: i64, zone: Option<&Zone>) -> Result<i64, DateTimeError> {
    let offset = match zone {
        Some(zone) => zone.offset_at(utc)?,
        None => 0,
    };
    let local = utc
        .checked_add(offset)
        .ok_or(DateTimeError::TimestampOutOfRange)?;
    let year = DateTime::from_timestamp(local, 0)
        .ok_or(DateTimeError::TimestampOutOfRange)?
        .year();
    let start = NaiveDate::from_ymd_opt(unit.first_year(year), 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or(DateTimeError::TimestampOutOfRange)?
        .and_utc()
        .timestamp();
    let offset = match zone {
        Some(zone) => zone.offset_for_local(start)?,
        None => 0,
    };
    start
        .checked_sub(offset)
        .ok_or(DateTimeError::TimestampOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL 15's answers (astronomical years: 0 is 1 BC, -4 is 5 BC).
    #[test]
    fn first_years_as_postgres() {
        for (unit, year, first) in [
            (Unit::Decade, 2026, 2020),
            (Unit::Century, 2026, 2001),
            (Unit::Millennium, 2026, 2001),
            (Unit::Century, 2000, 1901),
            (Unit::Century, 2001, 2001),
            (Unit::Millennium, 2000, 1001),
            (Unit::Decade, 1999, 1990),
            (Unit::Decade, 5, 0),
            (Unit::Century, 5, 1),
            (Unit::Millennium, 5, 1),
            (Unit::Decade, -4, -10),
            (Unit::Century, -4, -99),
            (Unit::Millennium, -4, -999),
            (Unit::Decade, -9, -10),
            (Unit::Century, -99, -99),
            (Unit::Century, -100, -199),
        ] {
            assert_eq!(unit.first_year(year), first, "{unit:?} of {year}");
        }
    }

    #[test]
    fn units_read_as_postgres() {
        for (text, unit) in [
            ("microseconds", Some(Unit::DataFusion("microsecond"))),
            ("MilliSeconds", Some(Unit::DataFusion("millisecond"))),
            ("microsecondsXYZ", Some(Unit::DataFusion("microsecond"))),
            ("usecond", Some(Unit::DataFusion("microsecond"))),
            ("secs", Some(Unit::DataFusion("second"))),
            ("m", Some(Unit::DataFusion("minute"))),
            ("hrs", Some(Unit::DataFusion("hour"))),
            ("w", Some(Unit::DataFusion("week"))),
            ("mons", Some(Unit::DataFusion("month"))),
            ("qtr", Some(Unit::DataFusion("quarter"))),
            ("Year", Some(Unit::DataFusion("year"))),
            ("decs", Some(Unit::Decade)),
            ("c", Some(Unit::Century)),
            ("millennia", Some(Unit::Millennium)),
            ("timezone", Some(Unit::NotSupported)),
            ("quarters", None),
            ("centuryx", None),
            (" day", None),
            ("julian", None),
        ] {
            assert_eq!(Unit::parse(text), unit, "{text}");
        }
    }

    #[test]
    fn first_instant_in_a_zone() -> Result<()> {
        // 2026-03-05 14:07:09 UTC in New York: the century starts at
        // 2001-01-01 00:00 -05, which is 05:00 UTC (PostgreSQL 15 with
        // timezone = 'America/New_York').
        let ny = Zone::parse("America/New_York")?;
        let got = first_instant(Unit::Century, 1_772_719_629, Some(&ny))?;
        assert_eq!(got, 978_307_200 + 5 * 3600);
        Ok(())
    }
}
