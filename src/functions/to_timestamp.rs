//! `to_timestamp(text, template)` and `to_date(text, template)` with
//! PostgreSQL's templates; every other form of the two functions is
//! handed to DataFusion's own implementation.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Date32Builder, TimestampNanosecondBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::functions::datetime::to_date::ToDateFunc;
use datafusion::functions::datetime::to_timestamp::ToTimestampFunc;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_datetime::calendar::{POSTGRES_EPOCH_JDATE, UNIX_EPOCH_JDATE};
use super::pg_datetime::parse::{parse, ParsedDateTime};
use super::pg_datetime::DateTimeError;
use super::zone::{session_zone, Zone, DEFAULT_ZONE};
use super::{is_text, string_array, with_template, TemplateArg};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestamp {
    signature: Signature,
    /// The zone of the result type: the session's when the function was
    /// configured, else Sluice's `timestamptz` zone.
    zone: Arc<str>,
    /// DataFusion's `to_timestamp`, for the other forms; configured with
    /// the same zone so both give the same result type.
    datafusion: ToTimestampFunc,
}

impl ToTimestamp {
    pub fn new(config: &ConfigOptions) -> Self {
        let zone = session_zone(config).unwrap_or(DEFAULT_ZONE);
        let mut datafusion_config = config.clone();
        datafusion_config.execution.time_zone = Some(zone.to_string());
        Self {
            signature: Signature::user_defined(Volatility::Stable),
            zone: Arc::from(zone),
            datafusion: ToTimestampFunc::new_with_config(&datafusion_config),
        }
    }
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        "to_timestamp"
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
        coerce_template_form("to_timestamp", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !is_template_form(&args.args) {
            return self.datafusion.invoke_with_args(args);
        }
        let zone = Zone::parse(session_zone(&args.config_options).unwrap_or(DEFAULT_ZONE))?;
        with_template(&args.args, args.number_rows, |texts, templates| {
            let mut out = TimestampNanosecondBuilder::with_capacity(texts.len());
            parse_rows(texts, templates, |parsed, _| {
                out.append_option(parsed.map(|p| instant_nanos(&p, &zone)).transpose()?);
                Ok(())
            })?;
            Ok(Arc::new(out.finish().with_timezone(Arc::clone(&self.zone))) as ArrayRef)
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToDate {
    signature: Signature,
    /// DataFusion's `to_date`, for the other forms.
    datafusion: ToDateFunc,
}

impl ToDate {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Stable),
            datafusion: ToDateFunc::new(),
        }
    }
}

impl Default for ToDate {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ToDate {
    fn name(&self) -> &str {
        "to_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_template_form("to_date", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !is_template_form(&args.args) {
            return self.datafusion.invoke_with_args(args);
        }
        with_template(&args.args, args.number_rows, |texts, templates| {
            let mut out = Date32Builder::with_capacity(texts.len());
            parse_rows(texts, templates, |parsed, text| {
                out.append_option(parsed.map(|p| p.date32(text)).transpose()?);
                Ok(())
            })?;
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `(text, text)` calls are ours, cast to `Utf8`; any other call is
/// DataFusion's and keeps its types (its functions take any arguments).
fn coerce_template_form(name: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    match arg_types {
        [] => plan_err!("function {name} takes 1 or 2 arguments, got none"),
        [text, template] if is_text(text) && is_text(template) => {
            Ok(vec![DataType::Utf8, DataType::Utf8])
        }
        _ => Ok(arg_types.to_vec()),
    }
}

fn is_template_form(args: &[ColumnarValue]) -> bool {
    matches!(args, [text, template]
        if is_text(&text.data_type()) && is_text(&template.data_type()))
}

/// Parses every row; `emit` gets `None` for a NULL text or template.
fn parse_rows(
    texts: &ArrayRef,
    templates: &mut TemplateArg,
    mut emit: impl FnMut(Option<ParsedDateTime>, &str) -> Result<()>,
) -> Result<()> {
    let texts = string_array(texts)?;
    for row in 0..texts.len() {
        match templates.get(row) {
            Some(template) if texts.is_valid(row) => {
                let text = texts.value(row);
                emit(Some(parse(template, text)?), text)?;
            }
            _ => emit(None, "")?,
        }
    }
    Ok(())
}

/// The instant (nanoseconds since 1970 UTC) of a parsed local time: at the
/// offset the text gave, else in `zone`.
fn instant_nanos(parsed: &ParsedDateTime, zone: &Zone) -> Result<i64, DateTimeError> {
    let local = parsed
        .local_seconds()
        .ok_or(DateTimeError::TimestampOutOfRange)?;
    let offset = match parsed.utc_offset {
        Some(offset) => offset,
        None => zone.offset_for_local(local)?,
    };
    let micros = local
        .checked_sub(offset)
        .and_then(|s| s.checked_mul(1_000_000))
        .and_then(|us| us.checked_add(parsed.microsecond))
        .ok_or(DateTimeError::TimestampOutOfRange)?;
    round_fraction(micros, parsed.fraction_digits)
        .and_then(|us| us.checked_mul(1000))
        .ok_or(DateTimeError::TimestampOutOfRange)
}

/// Rounds to `digits` fractional digits as PostgreSQL's
/// `AdjustTimestampForTypmod` (`FF1` … `FF5`): half away from zero,
/// measured from PostgreSQL's epoch, 2000-01-01.
fn round_fraction(unix_micros: i64, digits: u8) -> Option<i64> {
    if digits == 0 || digits >= 6 {
        return Some(unix_micros);
    }
    let epoch = i128::from(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * 86_400_000_000;
    let t = i128::from(unix_micros) - epoch;
    let scale = 10_i128.pow(6 - u32::from(digits));
    let rounded = if t >= 0 {
        (t + scale / 2) / scale * scale
    } else {
        -((-t + scale / 2) / scale * scale)
    };
    i64::try_from(rounded + epoch).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, StringArray};
    use datafusion::arrow::datatypes::{Field, TimestampNanosecondType};
    use datafusion::common::ScalarValue;

    fn config(zone: Option<&str>) -> ConfigOptions {
        let mut config = ConfigOptions::default();
        config.execution.time_zone = zone.map(str::to_string);
        config
    }

    fn call(
        udf: &dyn ScalarUDFImpl,
        args: Vec<ColumnarValue>,
        rows: usize,
        zone: Option<&str>,
    ) -> Result<ColumnarValue> {
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        let types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
        let return_type = udf.return_type(&types)?;
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(config(zone)),
        })
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_string())))
    }

    fn nanos(result: Result<ColumnarValue>) -> Vec<Option<i64>> {
        match result {
            Ok(ColumnarValue::Array(a)) => {
                a.as_primitive::<TimestampNanosecondType>().iter().collect()
            }
            Ok(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(v, _))) => vec![v],
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// 2026-03-05 00:00:00 UTC in nanoseconds.
    const MARCH_5: i64 = 1_772_668_800_000_000_000;
    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn parses_in_the_session_zone() {
        let udf = ToTimestamp::new(&config(None));
        let args = || {
            vec![
                text("2026-03-05 14:07:09.123456"),
                text("YYYY-MM-DD HH24:MI:SS.US"),
            ]
        };
        let base = MARCH_5 + 14 * HOUR + 7 * 60_000_000_000 + 9_123_456_000;
        assert_eq!(nanos(call(&udf, args(), 1, None)), vec![Some(base)]);
        assert_eq!(
            nanos(call(&udf, args(), 1, Some("America/New_York"))),
            vec![Some(base + 5 * HOUR)]
        );
        // An offset in the text wins over the session zone.
        let with_offset = vec![
            text("2026-03-05 14:00 +05:30"),
            text("YYYY-MM-DD HH24:MI TZH:TZM"),
        ];
        assert_eq!(
            nanos(call(&udf, with_offset, 1, Some("America/New_York"))),
            vec![Some(MARCH_5 + 14 * HOUR - 5 * HOUR - HOUR / 2)]
        );
    }

    #[test]
    fn result_type_follows_the_session_zone() {
        let utc = ToTimestamp::new(&config(None));
        assert_eq!(
            utc.return_type(&[DataType::Utf8, DataType::Utf8]).ok(),
            Some(DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("+00:00".into())
            ))
        );
        let ny = utc.with_updated_config(&config(Some("America/New_York")));
        assert_eq!(
            ny.and_then(|f| f.return_type(&[DataType::Float64]).ok()),
            Some(DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("America/New_York".into())
            ))
        );
    }

    #[test]
    fn columns_with_nulls() {
        let udf = ToTimestamp::new(&config(None));
        let texts = StringArray::from(vec![
            Some("05 Mar 2026"),
            None,
            Some("06 mar 2026"),
            Some("x"),
        ]);
        let templates = StringArray::from(vec![
            Some("DD Mon YYYY"),
            Some("DD Mon YYYY"),
            Some("DD Mon YYYY"),
            None,
        ]);
        let args = vec![
            ColumnarValue::Array(Arc::new(texts)),
            ColumnarValue::Array(Arc::new(templates)),
        ];
        assert_eq!(
            nanos(call(&udf, args, 4, None)),
            vec![Some(MARCH_5), None, Some(MARCH_5 + 24 * HOUR), None]
        );
    }

    #[test]
    fn fraction_digits_round_like_postgres() {
        // PostgreSQL: '…09.1235' with FF3 gives .124, '…09.123456' gives .123.
        let udf = ToTimestamp::new(&config(None));
        let at = |t: &str| {
            nanos(call(
                &udf,
                vec![text(t), text("YYYY-MM-DD HH24:MI:SS.FF3")],
                1,
                None,
            ))
        };
        let base = MARCH_5 + 14 * HOUR + 7 * 60_000_000_000 + 9_000_000_000;
        assert_eq!(
            at("2026-03-05 14:07:09.1235"),
            vec![Some(base + 124_000_000)]
        );
        assert_eq!(
            at("2026-03-05 14:07:09.123456"),
            vec![Some(base + 123_000_000)]
        );
        assert_eq!(round_fraction(-1_500, 3), Some(-2_000));
    }

    #[test]
    fn out_of_range_and_delegation() {
        let udf = ToTimestamp::new(&config(None));
        // No year: PostgreSQL's 1 BC, beyond nanosecond timestamps.
        match call(&udf, vec![text("10:30"), text("HH24:MI")], 1, None) {
            Err(e) => assert!(e.to_string().contains("timestamp out of range"), "{e}"),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
        let epoch = ColumnarValue::Scalar(ScalarValue::Int64(Some(1_772_668_800)));
        assert_eq!(nanos(call(&udf, vec![epoch], 1, None)), vec![Some(MARCH_5)]);
        assert_eq!(
            nanos(call(&udf, vec![text("2026-03-05T00:00:00")], 1, None)),
            vec![Some(MARCH_5)]
        );
    }

    #[test]
    fn to_date_forms() {
        let udf = ToDate::new();
        let date = |args: Vec<ColumnarValue>| match call(&udf, args, 1, None) {
            Ok(ColumnarValue::Scalar(ScalarValue::Date32(d))) => d,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            date(vec![text("2026-03-05"), text("YYYY-MM-DD")]),
            Some(20_517)
        );
        assert_eq!(date(vec![text("20260305"), text("YYYYMMDD")]), Some(20_517));
        assert_eq!(date(vec![text("2026-03-05")]), Some(20_517));
        assert_eq!(
            date(vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(None)),
                text("YYYY")
            ]),
            None
        );
        match call(&udf, vec![text("2026-13-05"), text("YYYY-MM-DD")], 1, None) {
            Err(e) => assert!(
                e.to_string()
                    .contains("date/time field value out of range: \"2026-13-05\""),
                "{e}"
            ),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }
}
