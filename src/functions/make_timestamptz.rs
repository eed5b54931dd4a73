//! PostgreSQL's `make_timestamptz(year, month, day, hour, min, sec [,
//! timezone])`: a wall-clock time read in `timezone`, else in the session
//! time zone, as an instant.
//!
//! The result is `Timestamp(Nanosecond, zone)`, the type of `now()`: the
//! session zone, or `+00:00` (Sluice's `timestamptz`) when the session has
//! none. As in PostgreSQL: a negative year is BC (-44 is 44 BC) and year 0
//! is refused; `sec` is rounded to microseconds; 24:00:00 and a 60th second
//! roll over into the next day or minute; a wall-clock time repeated when
//! clocks go back is the later instant and one skipped when they go
//! forward takes the offset from before the change.
//!
//! Where we differ: results must fit Arrow nanoseconds (years 1677 to
//! 2262); `timezone` is an IANA name or an ISO offset (`+05:30`), not a
//! POSIX spec (`UTC+3`, which PostgreSQL reads as three hours west) nor an
//! abbreviation PostgreSQL alone knows.

use crate::functions::error::FunctionError;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{ArrayRef, TimestampNanosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{internal_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{finish, shape, type_list, NumArg, TextArg};
use super::is_text;
use super::zone::{session_zone, Zone, DEFAULT_ZONE};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MakeTimestamptz {
    signature: Signature,
    /// The zone of the result type: the session's when the function was
    /// configured, else Sluice's `timestamptz` zone.
    zone: Arc<str>,
}

impl MakeTimestamptz {
    pub fn new(config: &ConfigOptions) -> Self {
        Self {
            // Stable: without a zone argument the session zone reads it.
            signature: Signature::user_defined(Volatility::Stable),
            zone: Arc::from(session_zone(config).unwrap_or(DEFAULT_ZONE)),
        }
    }
}

impl ScalarUDFImpl for MakeTimestamptz {
    fn name(&self) -> &str {
        "make_timestamptz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some(Arc::clone(&self.zone)),
        ))
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        Some(ScalarUDF::new_from_impl(Self::new(config)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let integer = |t: &DataType| t.is_integer() || t.is_null();
        let fits = (6..=7).contains(&arg_types.len())
            && arg_types[..5].iter().all(integer)
            && (arg_types[5].is_numeric() || arg_types[5].is_null())
            && arg_types.get(6).is_none_or(is_text);
        if !fits {
            return plan_err!(
                "function make_timestamptz({}) does not exist; it takes (year int, month int, \
                 day int, hour int, min int, sec double precision [, timezone text])",
                type_list(arg_types)
            );
        }
        let mut types = vec![DataType::Int64; 5];
        types.push(DataType::Float64);
        if arg_types.len() == 7 {
            types.push(DataType::Utf8);
        }
        Ok(types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let (fields, seconds, zone_arg) = match args.args.as_slice() {
            [fields @ .., seconds] if fields.len() == 5 => (fields, seconds, None),
            [fields @ .., seconds, zone] if fields.len() == 5 => {
                (fields, seconds, Some(TextArg::new(zone)?))
            }
            other => return internal_err!("make_timestamptz got {} arguments", other.len()),
        };
        let fields = fields
            .iter()
            .map(NumArg::<Int64Type>::new)
            .collect::<Result<Vec<_>>>()?;
        let seconds = NumArg::<Float64Type>::new(seconds)?;
        let session = Zone::parse(session_zone(&args.config_options).unwrap_or(DEFAULT_ZONE))?;
        // A zone column is parsed again only where its value changes.
        let mut named: Option<(String, Zone)> = None;
        let mut out = TimestampNanosecondBuilder::with_capacity(rows);
        for row in 0..rows {
            let [Some(year), Some(month), Some(day), Some(hour), Some(minute)] =
                [0, 1, 2, 3, 4].map(|i| fields[i].get(row))
            else {
                out.append_null();
                continue;
            };
            let Some(second) = seconds.get(row) else {
                out.append_null();
                continue;
            };
            let zone = match &zone_arg {
                None => &session,
                Some(arg) => match arg.get(row) {
                    None => {
                        out.append_null();
                        continue;
                    }
                    Some(name) => {
                        if named.as_ref().is_none_or(|(n, _)| n != name) {
                            named = Some((name.to_string(), parse_zone(name)?));
                        }
                        match &named {
                            Some((_, zone)) => zone,
                            None => return internal_err!("zone cache is empty"),
                        }
                    }
                },
            };
            let local = local_micros(year, month, day, hour, minute, second)?;
            out.append_value(instant_nanos(local, zone)?);
        }
        let out = out.finish().with_timezone(Arc::clone(&self.zone));
        finish(Arc::new(out) as ArrayRef, scalar)
    }
}

fn parse_zone(name: &str) -> Result<Zone> {
    Zone::parse(name).map_err(|_| {
        FunctionError::invalid_parameter(format!("time zone \"{name}\" not recognized")).into()
    })
}

/// Microseconds since 1970-01-01 00:00 of the wall-clock time, checked as
/// PostgreSQL's `make_timestamp_internal` checks it (and worded the same).
fn local_micros(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: f64,
) -> Result<i64> {
    let date_error = || -> DataFusionError {
        FunctionError::datetime_overflow(format!(
            "date field value out of range: {year}-{month:02}-{day:02}"
        ))
        .into()
    };
    // PostgreSQL counts 1 BC as -1; the proleptic calendar as 0.
    let astronomical = match year {
        0 => return Err(date_error()),
        y if y < 0 => y + 1,
        y => y,
    };
    let date = match (
        i32::try_from(astronomical),
        u32::try_from(month),
        u32::try_from(day),
    ) {
        (Ok(y), Ok(m), Ok(d)) => NaiveDate::from_ymd_opt(y, m, d).ok_or_else(date_error)?,
        _ => return Err(date_error()),
    };
    let days = date
        .signed_duration_since(DateTime::UNIX_EPOCH.date_naive())
        .num_days();
    // `float_time_overflows`: the second is rounded (half to even, as C's
    // rint) before the range checks; up to 24:00:00 is allowed.
    let micros = (second * MICROS_PER_SECOND as f64).round_ties_even();
    let time = if (0..=24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..=60.0 * MICROS_PER_SECOND as f64).contains(&micros)
    {
        Some((hour * 60 + minute) * 60 * MICROS_PER_SECOND + micros as i64)
    } else {
        None
    };
    let Some(time) = time.filter(|t| *t <= MICROS_PER_DAY) else {
        return Err(FunctionError::datetime_overflow(format!(
            "time field value out of range: {hour}:{minute:02}:{:02}",
            second as i64
        ))
        .into());
    };
    days.checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .ok_or_else(|| FunctionError::datetime_overflow("timestamp out of range").into())
}

/// The instant (nanoseconds since 1970 UTC) of local time `local` in `zone`.
fn instant_nanos(local: i64, zone: &Zone) -> Result<i64> {
    let offset = zone.offset_for_local(local.div_euclid(MICROS_PER_SECOND))?;
    offset
        .checked_mul(MICROS_PER_SECOND)
        .and_then(|o| local.checked_sub(o))
        .and_then(|utc| utc.checked_mul(1000))
        .ok_or_else(|| FunctionError::datetime_overflow("timestamp out of range").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &str, fields: (i64, i64, i64, i64, i64, f64)) -> Result<i64> {
        let (y, mo, d, h, mi, s) = fields;
        instant_nanos(local_micros(y, mo, d, h, mi, s)?, &Zone::parse(zone)?)
    }

    fn message(result: Result<i64>) -> String {
        match result {
            Ok(v) => format!("no error: {v}"),
            Err(e) => e.to_string(),
        }
    }

    /// PostgreSQL 15's answers, as nanoseconds since 1970.
    #[test]
    fn instants_as_postgres() -> Result<()> {
        // 2026-03-05 14:07:09.5+00
        let base = 1_772_719_629_500_000_000;
        assert_eq!(at("+00:00", (2026, 3, 5, 14, 7, 9.5))?, base);
        // … in America/New_York: 19:07:09.5 UTC; at +05:30: 08:37:09.5.
        let hour = 3_600_000_000_000;
        assert_eq!(
            at("America/New_York", (2026, 3, 5, 14, 7, 9.5))?,
            base + 5 * hour
        );
        assert_eq!(
            at("+05:30", (2026, 3, 5, 14, 7, 9.5))?,
            base - 11 * hour / 2
        );
        // 24:00:00, a 60th second and 59.9999999 all roll into the next day.
        let next_day = at("+00:00", (2026, 2, 4, 0, 0, 0.0))?;
        assert_eq!(at("+00:00", (2026, 2, 3, 24, 0, 0.0))?, next_day);
        assert_eq!(at("+00:00", (2026, 2, 3, 23, 59, 60.0))?, next_day);
        assert_eq!(at("+00:00", (2026, 2, 3, 23, 59, 59.999_999_9))?, next_day);
        // A skipped time takes the offset from before the change (03:30
        // EDT); a repeated one is the later instant (01:30 EST).
        let ny = |h| at("America/New_York", (2026, 3, 8, h, 30, 0.0));
        assert_eq!(ny(2)?, ny(3)?);
        let repeated = at("America/New_York", (2026, 11, 1, 1, 30, 0.0))?;
        assert_eq!(repeated, at("+00:00", (2026, 11, 1, 6, 30, 0.0))?);
        Ok(())
    }

    #[test]
    fn errors_as_postgres() {
        let msg = |f| message(at("+00:00", f));
        assert_eq!(
            msg((2026, 13, 5, 14, 7, 9.5)),
            "External error: date field value out of range: 2026-13-05"
        );
        assert_eq!(
            msg((2026, 2, 30, 14, 7, 9.5)),
            "External error: date field value out of range: 2026-02-30"
        );
        assert_eq!(
            msg((0, 3, 15, 12, 0, 0.0)),
            "External error: date field value out of range: 0-03-15"
        );
        assert_eq!(
            msg((2026, 3, 5, 14, 7, -1.0)),
            "External error: time field value out of range: 14:07:-1"
        );
        assert!(msg((2026, 3, 5, 24, 0, 0.5)).contains("time field value out of range"));
        assert!(msg((2026, 3, 5, 12, 0, f64::NAN)).contains("time field value out of range"));
        // Outside Arrow's nanoseconds.
        assert!(msg((1500, 1, 1, 0, 0, 0.0)).contains("timestamp out of range"));
        assert!(message(parse_zone("Nowhere/City").map(|_| 0))
            .contains("time zone \"Nowhere/City\" not recognized"));
    }
}
