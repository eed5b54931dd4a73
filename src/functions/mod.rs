//! Functions Sluice adds to or replaces in DataFusion so SQL behaves as
//! users of PostgreSQL, Flink SQL, RisingWave and Arroyo expect.
//!
//! [`register`] installs them in a [`SessionContext`]; a function
//! registered under a name DataFusion already uses replaces DataFusion's.
//! [`udfs`] and [`udafs`] return the same set for code that builds a
//! session state itself.
//!
//! Besides the functions below, one module each, saying what it adds and
//! where it differs from the system it copies: `date_trunc` with every
//! PostgreSQL unit, Flink's `date_format`, `make_timestamptz`, `mod`,
//! Flink's `split_index`, `regexp_extract` and PostgreSQL's
//! `regexp_matches` (`regexp`), `proctime()`, PostgreSQL's JSON operators and
//! functions (`json`), and the aggregates `percentile_disc` and
//! `mode` (`ordered_set`) and `approx_percentile`.
//!
//! PostgreSQL's date/time templates ([`pg_datetime`]):
//!
//! * `to_char(timestamp | timestamptz | date | time | interval, text)`.
//!   A `timestamptz` (an Arrow timestamp with a zone) is shown in the
//!   session time zone (`datafusion.execution.time_zone`), else in its own
//!   zone; a date counts as midnight in the session zone (PostgreSQL turns
//!   it into a `timestamptz`). A numeric first argument
//!   (`to_char(123.45, '999D99')`) is refused when the query is planned
//!   (a planning error saying the feature is not implemented): number
//!   templates are a separate language we do not have, and DataFusion has
//!   no numeric `to_char` to fall back to.
//! * `to_timestamp(text, text)`: the text is read in the session time zone
//!   (UTC if none) unless it carries `TZH`/`TZM`. The result is
//!   `Timestamp(Nanosecond, zone)` like DataFusion's `now()`, with the
//!   session zone, or `+00:00` (Sluice's `timestamptz`) when the session
//!   has none. Every other form (`to_timestamp(double)`: epoch seconds;
//!   `to_timestamp(text)`: ISO 8601; three or more arguments: chrono
//!   formats) is DataFusion's own function, built for the same zone so the
//!   result type is the same.
//! * `to_date(text, text)` returns `Date32`; other forms are DataFusion's.
//!
//! Reading accepts `TZH`/`TZM` and refuses `TZ`, `tz` and `OF`, as
//! PostgreSQL 15 does.
//!
//! Errors on arguments are typed ([`error::FunctionError`],
//! [`pg_datetime::DateTimeError`]), carry PostgreSQL's message and SQLSTATE,
//! and go through DataFusion as `External`.
//!
//! Where we differ from PostgreSQL 15:
//! * `TZ` prints `UTC`/`GMT` for those zones and the numeric offset
//!   (`-05`, `+0530`) for all others: Arrow's zone type does not expose
//!   abbreviations such as `EST`.
//! * `to_timestamp` results must fit Arrow nanoseconds (years 1677 to
//!   2262); outside that, including the year-0 default of a template
//!   without a year, is `timestamp out of range`.
//! * Names are English only (as PostgreSQL in the C locale): the `TM`
//!   prefix only turns off name padding.

mod approx_percentile;
mod args;
mod date_format;
mod date_trunc;
pub mod error;
pub mod json;
mod length_limit;
mod make_timestamptz;
mod modulo;
mod ordered_set;
pub mod pg_datetime;
mod proctime;
mod regexp;
mod split_index;
mod to_char;
mod to_timestamp;
mod zone;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{exec_err, internal_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ColumnarValue, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use approx_percentile::ApproxPercentile;
pub use date_format::DateFormat;
pub use date_trunc::DateTrunc;
pub use make_timestamptz::MakeTimestamptz;
pub use modulo::Mod;
pub use ordered_set::{Mode, PercentileDisc};
use pg_datetime::Template;
pub use proctime::ProcTime;
pub use regexp::{RegexpExtract, RegexpMatches};
pub use split_index::SplitIndex;
pub use to_char::ToChar;
pub use to_timestamp::{ToDate, ToTimestamp};

/// Sluice's scalar functions, configured for `config` (the session time
/// zone fixes `to_timestamp`'s result type).
pub fn udfs(config: &ConfigOptions) -> Vec<ScalarUDF> {
    let mut all = vec![
        ScalarUDF::new_from_impl(ToChar::new()),
        ScalarUDF::new_from_impl(ToTimestamp::new(config)),
        ScalarUDF::new_from_impl(ToDate::new()),
        ScalarUDF::new_from_impl(DateTrunc::new()),
        ScalarUDF::new_from_impl(DateFormat::new()),
        ScalarUDF::new_from_impl(MakeTimestamptz::new(config)),
        ScalarUDF::new_from_impl(Mod::new()),
        ScalarUDF::new_from_impl(SplitIndex::new()),
        ScalarUDF::new_from_impl(RegexpExtract::new()),
        ScalarUDF::new_from_impl(RegexpMatches::new()),
        ScalarUDF::new_from_impl(ProcTime::new()),
    ];
    all.extend(json::udfs());
    all.extend(length_limit::udfs());
    all
}

/// Sluice's aggregate functions.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(PercentileDisc::new()),
        AggregateUDF::new_from_impl(Mode::new()),
        AggregateUDF::new_from_impl(ApproxPercentile::new()),
    ]
}

/// Registers Sluice's functions in `ctx`, replacing DataFusion's functions
/// of the same names.
pub fn register(ctx: &SessionContext) {
    let config = ctx.copied_config();
    for udf in udfs(config.options()) {
        ctx.register_udf(udf);
    }
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
}

/// The template argument of one batch. A constant template, the common
/// case, is compiled once per batch; a template column is compiled again
/// only where its value changes.
enum TemplateArg {
    Constant(Option<Template>),
    Column {
        patterns: StringArray,
        last: Option<(String, Template)>,
    },
}

impl TemplateArg {
    fn new(arg: &ColumnarValue) -> Result<TemplateArg> {
        Ok(match arg {
            ColumnarValue::Scalar(value) => {
                TemplateArg::Constant(scalar_str(value)?.map(Template::compile))
            }
            ColumnarValue::Array(array) => TemplateArg::Column {
                patterns: string_array(array)?,
                last: None,
            },
        })
    }

    /// The template for `row`, `None` if it is NULL.
    fn get(&mut self, row: usize) -> Option<&Template> {
        match self {
            TemplateArg::Constant(template) => template.as_ref(),
            TemplateArg::Column { patterns, last } => {
                if patterns.is_null(row) {
                    return None;
                }
                let pattern = patterns.value(row);
                if last.as_ref().is_none_or(|(cached, _)| cached != pattern) {
                    *last = Some((pattern.to_string(), Template::compile(pattern)));
                }
                last.as_ref().map(|(_, template)| template)
            }
        }
    }
}

fn scalar_str(value: &ScalarValue) -> Result<Option<&str>> {
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
            Ok(s.as_deref())
        }
        v if v.is_null() => Ok(None),
        other => exec_err!("expected a text argument, got {}", other.data_type()),
    }
}

/// Any string (or NULL) column as `Utf8`.
fn string_array(array: &ArrayRef) -> Result<StringArray> {
    let array = match array.data_type() {
        DataType::Utf8 => Arc::clone(array),
        _ => cast(array, &DataType::Utf8)?,
    };
    Ok(array.as_string::<i32>().clone())
}

/// Whether a type can be a text argument (NULL included).
fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Runs `kernel` over a (value, template) argument pair. The result is a
/// scalar when both arguments are, else an array of `rows`.
fn with_template(
    args: &[ColumnarValue],
    rows: usize,
    kernel: impl FnOnce(&ArrayRef, &mut TemplateArg) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let [value, template] = args else {
        return internal_err!(
            "expected a value and a template, got {} arguments",
            args.len()
        );
    };
    let scalar = matches!(
        (value, template),
        (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
    );
    let values = value.to_array(if scalar { 1 } else { rows })?;
    let mut templates = TemplateArg::new(template)?;
    let out = kernel(&values, &mut templates)?;
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::error::DataFusionError;

    async fn query(ctx: &SessionContext, sql: &str) -> Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(pretty_format_batches(&batches)?.to_string())
    }

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        register(&ctx);
        ctx
    }

    fn lines(table: &[&str]) -> String {
        table.join("\n")
    }

    #[tokio::test]
    async fn to_char_through_sql() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT to_char(TIMESTAMP '2026-03-05 14:07:09', 'YYYY-MM-DD HH24:MI') AS t",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+------------------+",
                "| t                |",
                "+------------------+",
                "| 2026-03-05 14:07 |",
                "+------------------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn columns_nulls_and_template_columns() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT to_char(ts, f) AS s FROM (VALUES \
               (TIMESTAMP '2026-03-05 14:07:09', 'FMDay, FMDDth FMMonth YYYY'), \
               (TIMESTAMP '2026-03-05 14:07:09', 'HH12:MI AM'), \
               (NULL, 'YYYY'), \
               (TIMESTAMP '2027-01-03 00:00:00', NULL), \
               (TIMESTAMP '2027-01-03 00:00:00', 'IYYY-IW')) AS v(ts, f)",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+--------------------------+",
                "| s                        |",
                "+--------------------------+",
                "| Thursday, 5th March 2026 |",
                "| 02:07 PM                 |",
                "|                          |",
                "|                          |",
                "| 2026-53                  |",
                "+--------------------------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn dates_and_intervals() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT to_char(DATE '2026-03-05', 'DD/MM/YYYY TZ') AS d, \
                    to_char(INTERVAL '1 day 2 hours 3 minutes', 'DD HH24:MI') AS i",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+----------------+----------+",
                "| d              | i        |",
                "+----------------+----------+",
                "| 05/03/2026 UTC | 01 02:03 |",
                "+----------------+----------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn to_timestamp_and_to_date_through_sql() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT to_timestamp('2026-03-05 14:07:09.123456', 'YYYY-MM-DD HH24:MI:SS.US') AS a, \
                    to_timestamp('05 Mar 2026', 'DD Mon YYYY') AS b, \
                    to_date('20260305', 'YYYYMMDD') AS c",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+-----------------------------+----------------------+------------+",
                "| a                           | b                    | c          |",
                "+-----------------------------+----------------------+------------+",
                "| 2026-03-05T14:07:09.123456Z | 2026-03-05T00:00:00Z | 2026-03-05 |",
                "+-----------------------------+----------------------+------------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn other_forms_stay_datafusions() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT to_timestamp(1772719629) AS a, \
                    to_timestamp('2026-03-05T14:07:09') AS b, \
                    to_date('2026-03-05') AS c, \
                    arrow_typeof(to_timestamp(0)) AS t1, \
                    arrow_typeof(to_timestamp('2026', 'YYYY')) AS t2",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+----------------------+----------------------+------------+-------------------------+-------------------------+",
                "| a                    | b                    | c          | t1                      | t2                      |",
                "+----------------------+----------------------+------------+-------------------------+-------------------------+",
                "| 2026-03-05T14:07:09Z | 2026-03-05T14:07:09Z | 2026-03-05 | Timestamp(ns, \"+00:00\") | Timestamp(ns, \"+00:00\") |",
                "+----------------------+----------------------+------------+-------------------------+-------------------------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn session_time_zone() -> Result<()> {
        let ctx = context();
        ctx.sql("SET datafusion.execution.time_zone = 'America/New_York'")
            .await?
            .collect()
            .await?;
        let got = query(
            &ctx,
            "SELECT to_char(to_timestamp('2026-07-05 14:07', 'YYYY-MM-DD HH24:MI'), \
                            'YYYY-MM-DD HH24:MI TZ OF') AS local, \
                    to_char(arrow_cast(to_timestamp('2026-07-05 14:07', 'YYYY-MM-DD HH24:MI'), \
                                       'Timestamp(Nanosecond, None)'), 'HH24:MI') AS utc",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+--------------------------+-------+",
                "| local                    | utc   |",
                "+--------------------------+-------+",
                "| 2026-07-05 14:07 -04 -04 | 18:07 |",
                "+--------------------------+-------+",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn errors_are_postgres_messages() -> Result<()> {
        let ctx = context();
        for (sql, message, code) in [
            (
                "SELECT to_date('2026-13-05', 'YYYY-MM-DD')",
                "date/time field value out of range: \"2026-13-05\"",
                "22008",
            ),
            (
                "SELECT to_timestamp('garbage', 'YYYY-MM-DD')",
                "invalid value \"garb\" for \"YYYY\"",
                "22007",
            ),
        ] {
            // Typed, with PostgreSQL's words and code.
            let ours = |e: &DataFusionError| {
                matches!(e.find_root(), DataFusionError::External(x)
                    if x.to_string() == message && error::sqlstate_of(x.as_ref()) == Some(code))
            };
            match ctx.sql(sql).await {
                Ok(df) => match df.collect().await {
                    Ok(_) => panic!("{sql}: expected an error"),
                    Err(e) => assert!(ours(&e), "{sql}: {e}"),
                },
                // Constant folding may raise it while planning.
                Err(e) => assert!(ours(&e), "{sql}: {e}"),
            }
        }
        // DataFusion wraps a coercion error in a planning error.
        match ctx.sql("SELECT to_char(123.45, '999D99')").await {
            Ok(_) => panic!("numeric to_char must be refused"),
            Err(e) => assert!(
                e.to_string()
                    .contains("to_char(Float64, text) is not supported"),
                "{e}"
            ),
        }
        Ok(())
    }

    /// The wire layer's SQLSTATE for the errors of the functions added
    /// here: PostgreSQL's codes.
    #[tokio::test]
    async fn errors_map_to_postgres_sqlstates() {
        let ctx = context();
        for (sql, sqlstate) in [
            ("SELECT mod(7, 0)", "22012"),
            ("SELECT mod('a', 3)", "42883"),
            ("SELECT split_index('a', 1)", "42883"),
            ("SELECT no_such_function(1)", "42883"),
            ("SELECT regexp_matches('a', 'a', 'g')", "0A000"),
            ("SELECT regexp_matches('a', 'a', 'z')", "22023"),
        ] {
            let error = match ctx.sql(sql).await {
                Ok(df) => match df.collect().await {
                    Ok(_) => panic!("{sql}: expected an error"),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let message = error.to_string();
            assert_eq!(
                crate::error::SluiceError::from(error).sqlstate(),
                sqlstate,
                "{sql}: {message}"
            );
        }
    }

    #[tokio::test]
    async fn date_trunc_and_mod_through_sql() -> Result<()> {
        let ctx = context();
        let got = query(
            &ctx,
            "SELECT date_trunc('millennia', TIMESTAMP '2026-03-05 14:07:00') AS m, \
                    date_trunc(NULL, TIMESTAMP '2026-03-05 14:07:00') AS n, \
                    datetrunc('decs', TIMESTAMP '2026-03-05 14:07:00') AS d, \
                    mod(CAST(7 AS SMALLINT), CAST(3 AS SMALLINT)) AS r, \
                    arrow_typeof(mod(CAST(7 AS SMALLINT), CAST(3 AS SMALLINT))) AS t",
        )
        .await?;
        assert_eq!(
            got,
            lines(&[
                "+---------------------+---+---------------------+---+-------+",
                "| m                   | n | d                   | r | t     |",
                "+---------------------+---+---------------------+---+-------+",
                "| 2001-01-01T00:00:00 |   | 2020-01-01T00:00:00 | 1 | Int16 |",
                "+---------------------+---+---------------------+---+-------+",
            ])
        );
        Ok(())
    }
}
