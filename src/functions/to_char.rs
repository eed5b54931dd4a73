//! `to_char(value, template)`: PostgreSQL's date/time formatting over Arrow
//! arrays of timestamps, dates, times, intervals and durations.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int32Type, Int64Type, IntervalDayTimeType,
    IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, TimeUnit,
};
use datafusion::common::{exec_err, not_impl_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_datetime::format::{format, FmtTm};
use super::pg_datetime::DateTimeError;
use super::zone::{session_zone, Zone, DEFAULT_ZONE};
use super::{is_text, with_template, TemplateArg};

const MICROS_PER_DAY: i64 = 86_400_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToChar {
    signature: Signature,
}

impl ToChar {
    pub fn new() -> Self {
        Self {
            // Stable, not immutable: a timestamptz is shown in the session
            // time zone.
            signature: Signature::user_defined(Volatility::Stable),
        }
    }
}

impl Default for ToChar {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [value, template] = arg_types else {
            return plan_err!(
                "function to_char takes a date/time value and a template, got {} arguments",
                arg_types.len()
            );
        };
        if value.is_numeric() {
            return not_impl_err!(
                "to_char({value}, text) is not supported: Sluice formats timestamps, dates, \
                 times and intervals, not numbers"
            );
        }
        let formattable = matches!(
            value,
            DataType::Null
                | DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Interval(_)
                | DataType::Duration(_)
        );
        if !formattable || !is_text(template) {
            return plan_err!(
                "function to_char({value}, {template}) does not exist; \
                 it takes a timestamp, date, time or interval and a text template"
            );
        }
        Ok(vec![value.clone(), DataType::Utf8])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let session = session_zone(&args.config_options);
        with_template(&args.args, args.number_rows, |values, templates| {
            format_array(values, templates, session)
        })
    }
}

/// Formats every row of `values`; NULL value or template gives NULL, and
/// so does an empty template, as in PostgreSQL.
fn format_array(
    values: &ArrayRef,
    templates: &mut TemplateArg,
    session: Option<&str>,
) -> Result<ArrayRef> {
    match values.data_type() {
        DataType::Null => {
            let mut out = StringBuilder::new();
            for _ in 0..values.len() {
                out.append_null();
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::Timestamp(unit, own_zone) => {
            let raw = raw_values::<Int64Type>(values)?;
            let unit = *unit;
            match own_zone {
                // A timestamp without time zone is shown as it is, and
                // `TZ` prints nothing.
                None => format_rows(&raw, templates, None, |v| {
                    let (seconds, micros) = split_seconds(v, unit);
                    FmtTm::from_local(seconds, micros, 0)
                }),
                Some(own) => {
                    let zone = Zone::parse(session.unwrap_or(own))?;
                    format_rows(&raw, templates, Some(&zone), |v| {
                        let (seconds, micros) = split_seconds(v, unit);
                        let offset = zone.offset_at(seconds)?;
                        let local = seconds
                            .checked_add(offset)
                            .ok_or(DateTimeError::TimestampOutOfRange)?;
                        FmtTm::from_local(local, micros, offset)
                    })
                }
            }
        }
        // PostgreSQL formats a date as a timestamptz: midnight in the
        // session time zone.
        DataType::Date32 => {
            let zone = Zone::parse(session.unwrap_or(DEFAULT_ZONE))?;
            let raw = raw_values::<Int32Type>(values)?;
            format_rows(&raw, templates, Some(&zone), |days| {
                midnight(i64::from(days), &zone)
            })
        }
        DataType::Date64 => {
            let zone = Zone::parse(session.unwrap_or(DEFAULT_ZONE))?;
            let raw = raw_values::<Int64Type>(values)?;
            format_rows(&raw, templates, Some(&zone), |millis| {
                midnight(millis.div_euclid(86_400_000), &zone)
            })
        }
        // A time of day is formatted as an interval, as in PostgreSQL.
        DataType::Time32(unit) => {
            let unit = *unit;
            let raw = raw_values::<Int32Type>(values)?;
            format_rows(&raw, templates, None, |v| {
                Ok(FmtTm::from_interval(0, 0, to_micros(i64::from(v), unit)?))
            })
        }
        DataType::Time64(unit) => {
            let unit = *unit;
            let raw = raw_values::<Int64Type>(values)?;
            format_rows(&raw, templates, None, |v| {
                Ok(FmtTm::from_interval(0, 0, to_micros(v, unit)?))
            })
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let raw = values.as_primitive::<IntervalYearMonthType>();
            format_rows(raw, templates, None, |months| {
                Ok(FmtTm::from_interval(i64::from(months), 0, 0))
            })
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let raw = values.as_primitive::<IntervalDayTimeType>();
            format_rows(raw, templates, None, |v| {
                let micros = i64::from(v.milliseconds) * 1000;
                Ok(FmtTm::from_interval(0, i64::from(v.days), micros))
            })
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let raw = values.as_primitive::<IntervalMonthDayNanoType>();
            format_rows(raw, templates, None, |v| {
                Ok(FmtTm::from_interval(
                    i64::from(v.months),
                    i64::from(v.days),
                    v.nanoseconds / 1000,
                ))
            })
        }
        // A duration is what DataFusion makes of `timestamp - timestamp`,
        // which PostgreSQL gives as days and time.
        DataType::Duration(unit) => {
            let unit = *unit;
            let raw = raw_values::<Int64Type>(values)?;
            format_rows(&raw, templates, None, |v| {
                let micros = to_micros(v, unit)?;
                Ok(FmtTm::from_interval(
                    0,
                    micros / MICROS_PER_DAY,
                    micros % MICROS_PER_DAY,
                ))
            })
        }
        other => exec_err!("to_char cannot format a value of type {other}"),
    }
}

/// The values of a temporal array as plain integers.
fn raw_values<T: ArrowPrimitiveType>(values: &ArrayRef) -> Result<PrimitiveArray<T>> {
    Ok(cast(values, &T::DATA_TYPE)?.as_primitive::<T>().clone())
}

fn format_rows<T: ArrowPrimitiveType>(
    values: &PrimitiveArray<T>,
    templates: &mut TemplateArg,
    zone: Option<&Zone>,
    mut fields: impl FnMut(T::Native) -> Result<FmtTm, DateTimeError>,
) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 16);
    let mut text = String::new();
    // Rows mostly share a UTC offset: name it once.
    let mut zone_name = String::new();
    let mut named_offset = None;
    for row in 0..values.len() {
        let template = match templates.get(row) {
            Some(t) if values.is_valid(row) && !t.is_empty() => t,
            _ => {
                out.append_null();
                continue;
            }
        };
        let tm = fields(values.value(row))?;
        let abbrev = match zone {
            Some(zone) if template.prints_zone_name() => {
                if named_offset != Some(tm.utc_offset) {
                    zone_name.clear();
                    zone.abbrev(tm.utc_offset, &mut zone_name);
                    named_offset = Some(tm.utc_offset);
                }
                Some(zone_name.as_str())
            }
            _ => None,
        };
        text.clear();
        format(template, &tm, abbrev, &mut text)?;
        out.append_value(&text);
    }
    Ok(Arc::new(out.finish()))
}

/// Whole seconds and microseconds of a timestamp (floored, so a time
/// before 1970 still has a non-negative fraction).
fn split_seconds(value: i64, unit: TimeUnit) -> (i64, i64) {
    match unit {
        TimeUnit::Second => (value, 0),
        TimeUnit::Millisecond => (value.div_euclid(1000), value.rem_euclid(1000) * 1000),
        TimeUnit::Microsecond => (value.div_euclid(1_000_000), value.rem_euclid(1_000_000)),
        TimeUnit::Nanosecond => (
            value.div_euclid(1_000_000_000),
            value.rem_euclid(1_000_000_000) / 1000,
        ),
    }
}

/// A span in `unit` as microseconds (truncating nanoseconds, as
/// PostgreSQL's intervals have microseconds).
fn to_micros(value: i64, unit: TimeUnit) -> Result<i64, DateTimeError> {
    match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1000),
        TimeUnit::Microsecond => Some(value),
        TimeUnit::Nanosecond => Some(value / 1000),
    }
    .ok_or(DateTimeError::IntervalOutOfRange)
}

fn midnight(days: i64, zone: &Zone) -> Result<FmtTm, DateTimeError> {
    let local = days * 86_400;
    let offset = zone.offset_for_local(local)?;
    FmtTm::from_local(local, 0, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Date32Array, DurationSecondArray, StringArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    fn invoke(
        value: ColumnarValue,
        template: ColumnarValue,
        rows: usize,
        zone: Option<&str>,
    ) -> Result<ColumnarValue> {
        let mut config = ConfigOptions::default();
        config.execution.time_zone = zone.map(str::to_string);
        let arg_fields = vec![
            Arc::new(Field::new("v", value.data_type(), true)),
            Arc::new(Field::new("f", DataType::Utf8, true)),
        ];
        ToChar::new().invoke_with_args(ScalarFunctionArgs {
            args: vec![value, template],
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("to_char", DataType::Utf8, true)),
            config_options: Arc::new(config),
        })
    }

    fn strings(result: Result<ColumnarValue>) -> Vec<Option<String>> {
        match result {
            Ok(ColumnarValue::Array(a)) => a
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect(),
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => vec![s],
            Ok(other) => panic!("unexpected result {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_string())))
    }

    /// 2026-03-05 14:07:09.123456 UTC in nanoseconds.
    const SAMPLE_NANOS: i64 = 1_772_719_629_123_456_000;

    #[test]
    fn constant_template_over_a_column_with_nulls() {
        let values = TimestampNanosecondArray::from(vec![Some(SAMPLE_NANOS), None, Some(0)]);
        let got = strings(invoke(
            ColumnarValue::Array(Arc::new(values)),
            text("YYYY-MM-DD HH24:MI:SS.US"),
            3,
            None,
        ));
        assert_eq!(
            got,
            vec![
                Some("2026-03-05 14:07:09.123456".to_string()),
                None,
                Some("1970-01-01 00:00:00.000000".to_string()),
            ]
        );
    }

    #[test]
    fn template_column() {
        let values = TimestampMillisecondArray::from(vec![SAMPLE_NANOS / 1_000_000; 4]);
        let templates = StringArray::from(vec![Some("YYYY"), Some("YYYY"), None, Some("")]);
        let got = strings(invoke(
            ColumnarValue::Array(Arc::new(values)),
            ColumnarValue::Array(Arc::new(templates)),
            4,
            None,
        ));
        assert_eq!(
            got,
            vec![
                Some("2026".to_string()),
                Some("2026".to_string()),
                None,
                None
            ]
        );
    }

    #[test]
    fn timestamptz_uses_session_zone_then_own_zone() {
        let values = TimestampNanosecondArray::from(vec![SAMPLE_NANOS]).with_timezone("+00:00");
        let value = ColumnarValue::Array(Arc::new(values));
        let pattern = "YYYY-MM-DD HH24:MI TZ OF";
        assert_eq!(
            strings(invoke(value.clone(), text(pattern), 1, None)),
            vec![Some("2026-03-05 14:07 UTC +00".to_string())]
        );
        assert_eq!(
            strings(invoke(
                value.clone(),
                text(pattern),
                1,
                Some("America/New_York")
            )),
            vec![Some("2026-03-05 09:07 -05 -05".to_string())]
        );
        assert_eq!(
            strings(invoke(value, text(pattern), 1, Some("+05:30"))),
            vec![Some("2026-03-05 19:37 +0530 +05:30".to_string())]
        );
    }

    #[test]
    fn scalar_in_scalar_out() {
        let value = ColumnarValue::Scalar(ScalarValue::Date32(Some(20_517)));
        match invoke(value, text("FMDay DD Mon YYYY"), 1, None) {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => {
                assert_eq!(s.as_deref(), Some("Thursday 05 Mar 2026"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let null = ColumnarValue::Scalar(ScalarValue::Utf8(None));
        let value = ColumnarValue::Scalar(ScalarValue::Date32(Some(20_517)));
        assert_eq!(strings(invoke(value, null, 1, None)), vec![None]);
    }

    #[test]
    fn durations_and_dates() {
        let durations = DurationSecondArray::from(vec![93_784, -3600]);
        assert_eq!(
            strings(invoke(
                ColumnarValue::Array(Arc::new(durations)),
                text("DD HH24:MI:SS"),
                2,
                None,
            )),
            vec![
                Some("01 02:03:04".to_string()),
                Some("00 -01:00:00".to_string())
            ]
        );
        let dates = Date32Array::from(vec![20_517]);
        assert_eq!(
            strings(invoke(
                ColumnarValue::Array(Arc::new(dates)),
                text("YYYY-MM-DD HH24:MI TZ OF"),
                1,
                Some("America/New_York"),
            )),
            vec![Some("2026-03-05 00:00 -05 -05".to_string())]
        );
    }

    #[test]
    fn errors_fail_the_batch() {
        let values = Date32Array::from(vec![20_517]);
        let interval = ColumnarValue::Scalar(ScalarValue::new_interval_mdn(1, 0, 0));
        match invoke(interval, text("Month"), 1, None) {
            Err(e) => assert!(
                e.to_string()
                    .contains("invalid format specification for an interval value"),
                "{e}"
            ),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
        assert!(invoke(
            ColumnarValue::Array(Arc::new(values)),
            text("YYYY"),
            1,
            Some("No/Such_Zone")
        )
        .is_err());
    }

    #[test]
    fn numeric_values_are_refused_at_planning() {
        let to_char = ToChar::new();
        assert!(to_char
            .coerce_types(&[DataType::Decimal128(5, 2), DataType::Utf8])
            .is_err_and(|e| matches!(e, datafusion::error::DataFusionError::NotImplemented(_))));
        assert_eq!(
            to_char
                .coerce_types(&[DataType::Date32, DataType::Utf8View])
                .ok(),
            Some(vec![DataType::Date32, DataType::Utf8])
        );
        assert!(to_char
            .coerce_types(&[DataType::Utf8, DataType::Utf8])
            .is_err());
    }
}
