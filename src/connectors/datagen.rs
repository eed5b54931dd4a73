//! `datagen`: typed random (or sequential) rows built straight into Arrow
//! arrays, at `rows_per_second`, up to `limit`, reproducible from `seed`.
//!
//! Per column, `fields.<col>.<option>`:
//! * `kind = 'random' | 'sequence'` (default `random`), `null_rate` (0..1).
//! * Integers: `min` / `max`, and `skew` (a Zipf exponent: `min` is the
//!   hottest value, then `min + 1`, … — a few hot keys, a long tail); as a
//!   `sequence`, counting up from `start`. Floats: `min` / `max`. Text:
//!   `length`.
//! * Any type: `values = 'a,b,c'` picks from a list — uniformly, by
//!   `weights = '90,5,5'`, or by `skew` (the first value hottest).
//! * Timestamps: the generation time minus a uniform lag in `[0, max_lag]`;
//!   as a `sequence`, `start` + n × `step` minus that lag, so event time can
//!   run far ahead of wall time (windows of a bounded generator close in
//!   seconds) and is out of order by at most `max_lag`.
//!
//! Skewed and weighted picks search a cumulative distribution computed once
//! per column; every column is generated as one Arrow array per batch.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Connector, SourceConnector, SourceContext, SourceSpec};
use crate::error::{Result, SluiceError};
use crate::sql::Options;

pub const CONNECTOR: Connector = Connector {
    name: "datagen",
    source: Some(source_factory),
    source_options: &[
        "rows_per_second",
        "limit",
        "seed",
        "fields.<column>.<kind|min|max|start|step|length|values|weights|skew|max_lag|null_rate>",
    ],
    source_decodes: false,
    metadata: &[],
    columns: None,
    sink: None,
    sink_options: &[],
};

const FIELD_PROPS: &[&str] = &[
    "kind",
    "min",
    "max",
    "start",
    "step",
    "length",
    "values",
    "weights",
    "skew",
    "max_lag",
    "null_rate",
];

/// A skewed integer range has one CDF entry per value; beyond this it would
/// cost more memory than a scenario is worth.
const MAX_SKEWED_VALUES: u64 = 1 << 20;

#[derive(Debug, Clone)]
enum Gen {
    Int {
        min: i64,
        max: i64,
    },
    SkewedInt {
        min: i64,
        pick: Cdf,
    },
    Seq {
        start: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    Text {
        length: usize,
    },
    Choice {
        values: Vec<String>,
        pick: Option<Cdf>,
    },
    /// Generation time minus a random lag of up to `max_lag` ms.
    Now {
        max_lag: i64,
    },
    /// `start + n × step` minus a random lag; `start` defaults to the time
    /// the source starts.
    Clock {
        start: Option<i64>,
        step_nanos: i128,
        max_lag: i64,
    },
}

impl Gen {
    /// For "option X does not apply to …".
    fn describe(&self) -> &'static str {
        match self {
            Gen::Int { .. } | Gen::SkewedInt { .. } => "random integers",
            Gen::Seq { .. } => "an integer sequence",
            Gen::Float { .. } => "random numbers",
            Gen::Bool => "random booleans",
            Gen::Text { .. } => "random text",
            Gen::Choice { .. } => "a values list",
            Gen::Now { .. } => "random timestamps (the generation time)",
            Gen::Clock { .. } => "a timestamp sequence",
        }
    }
}

/// A cumulative distribution over indexes `0..n`, sampled by binary search.
#[derive(Debug, Clone)]
struct Cdf(Vec<f64>);

impl Cdf {
    /// Zipf: index `k` (0-based) is drawn in proportion to `1 / (k + 1)^s`.
    fn zipf(n: usize, s: f64) -> Cdf {
        Cdf::from_weights((1..=n).map(|k| (k as f64).powf(-s)))
    }

    /// The weights must be finite, ≥ 0 and not all zero.
    fn from_weights(weights: impl Iterator<Item = f64>) -> Cdf {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = weights
            .map(|w| {
                total += w;
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Cdf(cdf)
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        // The first index whose cumulative weight exceeds `u`, so a
        // zero-weight index is never drawn; `min` covers rounding at 1.0.
        self.0.partition_point(|&c| c <= u).min(self.0.len() - 1)
    }
}

#[derive(Debug, Clone)]
struct ColumnGen {
    data_type: DataType,
    gen: Gen,
    null_rate: f64,
}

#[derive(Debug)]
struct Datagen {
    columns: Vec<ColumnGen>,
    rows_per_second: u64,
    limit: Option<u64>,
    seed: u64,
}

fn source_factory(options: &mut Options, spec: &SourceSpec) -> Result<Arc<dyn SourceConnector>> {
    if spec.columns.is_empty() {
        return Err(SluiceError::Plan(format!(
            "the datagen source '{}' needs a column list, e.g. CREATE SOURCE {} (k INT, v BIGINT) WITH (connector = 'datagen')",
            spec.name, spec.name
        )));
    }
    let rows_per_second = options
        .take_parsed::<u64>(
            "rows_per_second",
            "a whole number (0 = as fast as possible)",
        )?
        .unwrap_or(10_000);
    let limit = options.take_parsed::<u64>("limit", "a whole number of rows")?;
    let seed = options
        .take_parsed::<u64>("seed", "a whole number")?
        .unwrap_or_else(|| fastrand::u64(..));
    let mut fields = options.take_prefixed("fields.");
    let mut columns = Vec::new();
    for c in spec.columns {
        let key_name = c.name.to_ascii_lowercase();
        let prefix = format!("{key_name}.");
        let mut props = Options::new();
        for (k, v) in fields.iter().filter(|(k, _)| k.starts_with(&prefix)) {
            props.insert(k[prefix.len()..].to_string(), v.clone())?;
        }
        fields.retain(|(k, _)| !k.starts_with(&prefix));
        let field = FieldOptions {
            column: &c.name,
            key_name: &key_name,
            props,
        };
        columns.push(column_gen(field, &c.data_type, rows_per_second)?);
    }
    if let Some((k, _)) = fields.first() {
        return Err(SluiceError::Options(format!(
            "option 'fields.{k}' names no column of '{}'; columns are: {}",
            spec.name,
            spec.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Arc::new(Datagen {
        columns,
        rows_per_second,
        limit,
        seed,
    }))
}

/// One column's `fields.<col>.*` options, taken as they are read; every
/// error names the column and the full option key.
struct FieldOptions<'a> {
    column: &'a str,
    /// The column name as it appears in option keys (lower case).
    key_name: &'a str,
    props: Options,
}

impl FieldOptions<'_> {
    fn key(&self, prop: &str) -> String {
        format!("fields.{}.{prop}", self.key_name)
    }

    fn error(&self, message: impl std::fmt::Display) -> SluiceError {
        SluiceError::Options(format!("datagen column '{}': {message}", self.column))
    }

    fn bad(&self, prop: &str, expected: &str, got: &str) -> SluiceError {
        self.error(format_args!(
            "{} must be {expected}, got '{got}'",
            self.key(prop)
        ))
    }

    fn take(&mut self, prop: &str) -> Option<String> {
        self.props.take(prop)
    }

    /// Takes and parses `prop`; `valid` rejects values of the right type
    /// but out of range, with the same message.
    fn parse<T: FromStr>(
        &mut self,
        prop: &str,
        expected: &str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>> {
        let Some(text) = self.take(prop) else {
            return Ok(None);
        };
        match text.trim().parse::<T>() {
            Ok(v) if valid(&v) => Ok(Some(v)),
            _ => Err(self.bad(prop, expected, &text)),
        }
    }

    fn number(&mut self, prop: &str) -> Result<Option<f64>> {
        self.parse(prop, "a number", |v: &f64| v.is_finite())
    }

    fn integer(&mut self, prop: &str) -> Result<Option<i64>> {
        self.parse(prop, "an integer", |_| true)
    }

    fn skew(&mut self) -> Result<Option<f64>> {
        let skew = self.parse("skew", "a number ≥ 0", |v: &f64| {
            v.is_finite() && *v >= 0.0
        })?;
        Ok(skew.filter(|s| *s > 0.0))
    }

    fn duration_ms(&mut self, prop: &str) -> Result<Option<i64>> {
        Ok(self.duration(prop)?.map(|d| d.as_millis() as i64))
    }

    fn duration(&mut self, prop: &str) -> Result<Option<Duration>> {
        let Some(text) = self.take(prop) else {
            return Ok(None);
        };
        crate::sql::parse_duration(&self.key(prop), &text)
            .map(Some)
            .map_err(|_| self.bad(prop, "a duration like '100 ms', '5 s' or '1 minute'", &text))
    }

    /// `'2026-01-01 00:00:00'`, `'2026-01-01T00:00:00.250'` (UTC), RFC 3339
    /// with a zone, or a date.
    fn timestamp_ms(&mut self, prop: &str) -> Result<Option<i64>> {
        let Some(text) = self.take(prop) else {
            return Ok(None);
        };
        let t = text.trim();
        let parsed = chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp_millis())
            .ok()
            .or_else(|| {
                ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
                    .or_else(|| {
                        chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                    })
                    .map(|d| d.and_utc().timestamp_millis())
            });
        parsed.map(Some).ok_or_else(|| {
            self.bad(
                prop,
                "a time like '2026-01-01 00:00:00' or '2026-01-01T00:00:00Z'",
                &text,
            )
        })
    }

    /// Fails on an option left over: one that does not apply to this
    /// column's generator, or an unknown one (with the closest known one).
    fn finish(self, data_type: &DataType, gen: &Gen) -> Result<()> {
        let Some(prop) = self.props.iter().next().map(|(k, _)| k.clone()) else {
            return Ok(());
        };
        if FIELD_PROPS.contains(&prop.as_str()) {
            return Err(self.error(format_args!(
                "{} does not apply to {} (column type {data_type})",
                self.key(&prop),
                gen.describe()
            )));
        }
        let valid: Vec<String> = FIELD_PROPS.iter().map(|p| self.key(p)).collect();
        let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
        let mut unknown = Options::new();
        unknown.insert(self.key(&prop), String::new())?;
        unknown.finish(&format!("datagen column '{}'", self.column), &valid)
    }
}

fn column_gen(
    mut p: FieldOptions,
    data_type: &DataType,
    rows_per_second: u64,
) -> Result<ColumnGen> {
    let sequence = match p.take("kind") {
        None => false,
        Some(k) => match k.trim().to_ascii_lowercase().as_str() {
            "random" => false,
            "sequence" => true,
            _ => return Err(p.bad("kind", "'random' or 'sequence'", &k)),
        },
    };
    let null_rate = p
        .parse("null_rate", "a number between 0 and 1", |v: &f64| {
            (0.0..=1.0).contains(v)
        })?
        .unwrap_or(0.0);
    let is_int = matches!(
        data_type,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    );
    let is_time = matches!(
        data_type,
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date32
    );
    let gen = if let Some(values) = p.take("values") {
        if sequence {
            return Err(p.error(format_args!(
                "{} = 'sequence' cannot be combined with {}",
                p.key("kind"),
                p.key("values")
            )));
        }
        choice(&mut p, values)?
    } else if sequence && is_int {
        Gen::Seq {
            start: p.integer("start")?.unwrap_or(0),
        }
    } else if sequence && is_time {
        // By default event time advances as fast as rows are generated.
        let default_step = 1_000_000_000 / rows_per_second.max(1) as i128;
        let step_nanos = p
            .duration("step")?
            .map_or(default_step, |d| d.as_nanos() as i128);
        Gen::Clock {
            start: p.timestamp_ms("start")?,
            step_nanos,
            max_lag: p.duration_ms("max_lag")?.unwrap_or(0),
        }
    } else if sequence {
        return Err(p.error(format_args!(
            "{} = 'sequence' needs an integer or timestamp column, not {data_type}",
            p.key("kind")
        )));
    } else if is_int {
        let (lo, hi) = match data_type {
            DataType::Int8 => (i8::MIN as i64, i8::MAX as i64),
            DataType::Int16 => (i16::MIN as i64, i16::MAX as i64),
            _ => (0, 1_000_000),
        };
        let min = p.integer("min")?.unwrap_or(lo.max(0));
        let max = p.integer("max")?.unwrap_or(hi);
        if min > max {
            return Err(p.error(format_args!(
                "{} ({min}) is greater than {} ({max})",
                p.key("min"),
                p.key("max")
            )));
        }
        match p.skew()? {
            None => Gen::Int { min, max },
            Some(s) => {
                let n = (max as i128 - min as i128 + 1) as u64;
                if n > MAX_SKEWED_VALUES {
                    return Err(p.error(format_args!(
                        "{} works on at most {MAX_SKEWED_VALUES} values, but {}..{} has {n}",
                        p.key("skew"),
                        p.key("min"),
                        p.key("max")
                    )));
                }
                Gen::SkewedInt {
                    min,
                    pick: Cdf::zipf(n as usize, s),
                }
            }
        }
    } else {
        match data_type {
            DataType::Float32 | DataType::Float64 => {
                let min = p.number("min")?.unwrap_or(0.0);
                let max = p.number("max")?.unwrap_or(1.0);
                if min > max {
                    return Err(p.error(format_args!(
                        "{} ({min}) is greater than {} ({max})",
                        p.key("min"),
                        p.key("max")
                    )));
                }
                Gen::Float { min, max }
            }
            DataType::Boolean => Gen::Bool,
            DataType::Utf8 => Gen::Text {
                length: p
                    .parse("length", "a whole number", |_: &usize| true)?
                    .unwrap_or(8),
            },
            _ if is_time => Gen::Now {
                max_lag: p.duration_ms("max_lag")?.unwrap_or(0),
            },
            other => {
                return Err(SluiceError::NotSupported(format!(
                    "datagen cannot generate column '{}' of type {other}",
                    p.column
                )))
            }
        }
    };
    p.finish(data_type, &gen)?;
    Ok(ColumnGen {
        data_type: data_type.clone(),
        gen,
        null_rate,
    })
}

/// `values`, picked uniformly, by `weights` or by `skew`.
fn choice(p: &mut FieldOptions, values: String) -> Result<Gen> {
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    let skew = p.skew()?;
    let pick = match p.take("weights") {
        Some(_) if skew.is_some() => {
            return Err(p.error(format_args!(
                "give {} or {}, not both",
                p.key("weights"),
                p.key("skew")
            )))
        }
        Some(text) => {
            let expected = "numbers ≥ 0, not all zero, like '90,5,5'";
            let weights = text
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite() && *w >= 0.0)
                })
                .collect::<Option<Vec<f64>>>()
                .filter(|w| w.iter().any(|w| *w > 0.0))
                .ok_or_else(|| p.bad("weights", expected, &text))?;
            if weights.len() != values.len() {
                return Err(p.error(format_args!(
                    "{} has {} weights but {} has {} values",
                    p.key("weights"),
                    weights.len(),
                    p.key("values"),
                    values.len()
                )));
            }
            Some(Cdf::from_weights(weights.into_iter()))
        }
        None => skew.map(|s| Cdf::zipf(values.len(), s)),
    };
    Ok(Gen::Choice { values, pick })
}

impl Datagen {
    fn batch(
        &self,
        rng: &mut fastrand::Rng,
        at: Position,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| generate(c, rng, at))
            .collect::<Result<_>>()?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Where a batch sits in the generated stream.
#[derive(Debug, Clone, Copy)]
struct Position {
    first_row: u64,
    rows: usize,
    /// When the source started (epoch ms): a timestamp sequence's default start.
    started_ms: i64,
}

fn generate(c: &ColumnGen, rng: &mut fastrand::Rng, at: Position) -> Result<ArrayRef> {
    let Position {
        first_row,
        rows,
        started_ms,
    } = at;
    let valid = |rng: &mut fastrand::Rng| c.null_rate <= 0.0 || rng.f64() >= c.null_rate;
    let lag = |rng: &mut fastrand::Rng, max_lag: i64| {
        if max_lag > 0 {
            rng.i64(0..=max_lag)
        } else {
            0
        }
    };
    let array: ArrayRef = match &c.gen {
        Gen::Int { min, max } => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| rng.i64(*min..=*max)))
                .collect::<Int64Array>(),
        ),
        Gen::SkewedInt { min, pick } => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| min + pick.sample(rng) as i64))
                .collect::<Int64Array>(),
        ),
        Gen::Seq { start } => Arc::new(
            (0..rows)
                .map(|i| valid(rng).then_some(start + (first_row + i as u64) as i64))
                .collect::<Int64Array>(),
        ),
        Gen::Float { min, max } => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| min + rng.f64() * (max - min)))
                .collect::<Float64Array>(),
        ),
        Gen::Bool => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| rng.bool()))
                .collect::<BooleanArray>(),
        ),
        Gen::Text { length } => Arc::new(
            (0..rows)
                .map(|_| {
                    valid(rng).then(|| (0..*length).map(|_| rng.alphanumeric()).collect::<String>())
                })
                .collect::<StringArray>(),
        ),
        Gen::Choice { values, pick } => Arc::new(
            (0..rows)
                .map(|_| {
                    valid(rng).then(|| {
                        let i = match pick {
                            Some(cdf) => cdf.sample(rng),
                            None => rng.usize(..values.len()),
                        };
                        values[i].as_str()
                    })
                })
                .collect::<StringArray>(),
        ),
        Gen::Now { max_lag } => {
            let now = chrono::Utc::now().timestamp_millis();
            Arc::new(
                (0..rows)
                    .map(|_| valid(rng).then(|| now - lag(rng, *max_lag)))
                    .collect::<TimestampMillisecondArray>(),
            )
        }
        Gen::Clock {
            start,
            step_nanos,
            max_lag,
        } => {
            let start = start.unwrap_or(started_ms);
            Arc::new(
                (0..rows)
                    .map(|i| {
                        valid(rng).then(|| {
                            let n = (first_row + i as u64) as i128;
                            start + (n * step_nanos / 1_000_000) as i64 - lag(rng, *max_lag)
                        })
                    })
                    .collect::<TimestampMillisecondArray>(),
            )
        }
    };
    // Generated as the widest type of the family; narrowed to the column's.
    let target = &c.data_type;
    if array.data_type() == target {
        return Ok(array);
    }
    let narrowed = match (array.data_type(), target) {
        (DataType::Timestamp(_, _), DataType::Date32) => {
            cast(&cast(&array, &DataType::Date64)?, target)?
        }
        _ => cast(&array, target)?,
    };
    Ok(narrowed)
}

#[async_trait]
impl SourceConnector for Datagen {
    async fn run(&self, ctx: SourceContext) -> Result<()> {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let batch_size = if self.rows_per_second == 0 {
            8192
        } else {
            (self.rows_per_second / 20).clamp(1, 8192) as usize
        };
        let mut started = Instant::now();
        let mut started_ms = chrono::Utc::now().timestamp_millis();
        let mut produced: u64 = 0;
        // Restored from a checkpoint: carry on with the same rows (the
        // generator's random state and row count), at the same rate.
        if let Some(p) = ctx.restored_position(GENERATOR) {
            let field = |k: &str| p.get(k).and_then(|v| v.as_u64());
            if let (Some(n), Some(state)) = (field("produced"), field("rng")) {
                produced = n;
                rng = fastrand::Rng::with_seed(state);
                started_ms = p
                    .get("started_ms")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(started_ms);
                if self.rows_per_second > 0 {
                    let ahead = Duration::from_secs_f64(n as f64 / self.rows_per_second as f64);
                    started = Instant::now().checked_sub(ahead).unwrap_or(started);
                }
            }
        }
        if self.rows_per_second > 0 {
            // Rows due but not generated yet are its backlog (when the
            // pipeline cannot keep up with its rate). The figures count
            // this run's rows: the schedule they are held to starts with
            // the rows restored.
            let ahead = Duration::from_secs_f64(produced as f64 / self.rows_per_second as f64);
            ctx.metrics.set_schedule(
                started + ahead,
                self.rows_per_second as f64,
                self.limit.map(|l| l.saturating_sub(produced)),
            );
        }
        loop {
            let rows = match self.limit {
                Some(l) if produced >= l => return Ok(()),
                Some(l) => batch_size.min((l - produced) as usize),
                None => batch_size,
            };
            if self.rows_per_second > 0 {
                let due = Duration::from_secs_f64(produced as f64 / self.rows_per_second as f64);
                let wait = due.saturating_sub(started.elapsed());
                if !wait.is_zero() {
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            if ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            let at = Position {
                first_row: produced,
                rows,
                started_ms,
            };
            let batch = self.batch(&mut rng, at, &ctx.schema)?;
            produced += rows as u64;
            let position = serde_json::json!({
                "produced": produced,
                "rng": rng.get_seed(),
                "started_ms": started_ms,
            });
            if ctx
                .emit_batch_at(batch, GENERATOR, Some(position))
                .await?
                .is_err()
            {
                return Ok(());
            }
        }
    }

    fn is_bounded(&self) -> bool {
        self.limit.is_some()
    }
}

/// The generator's one partition.
const GENERATOR: &str = "generator";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};

    use super::*;

    type Props<'a> = &'a [(&'a str, &'a str)];

    const START: &str = "2026-01-01 00:00:00";
    const START_MS: i64 = 1_767_225_600_000;

    fn column(name: &str, data_type: DataType, props: &[(&str, &str)]) -> Result<ColumnGen> {
        let mut options = Options::new();
        for (k, v) in props {
            options.insert(k.to_string(), v.to_string())?;
        }
        let field = FieldOptions {
            column: name,
            key_name: name,
            props: options,
        };
        column_gen(field, &data_type, 1000)
    }

    fn rows(c: &ColumnGen, first_row: u64, rows: usize) -> ArrayRef {
        let at = Position {
            first_row,
            rows,
            started_ms: START_MS,
        };
        generate(c, &mut fastrand::Rng::with_seed(7), at).expect("generate")
    }

    fn counts(array: &ArrayRef) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for v in array.as_string::<i32>().iter().flatten() {
            *counts.entry(v.to_string()).or_default() += 1;
        }
        counts
    }

    fn error(data_type: DataType, props: &[(&str, &str)]) -> String {
        match column("price", data_type, props) {
            Ok(c) => panic!("{props:?} was accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn skew_makes_the_first_value_far_more_frequent_than_the_last() {
        let values = ("values", "a,b,c,d,e,f,g,h,i,j");
        let skewed = column("k", DataType::Utf8, &[values, ("skew", "1.2")]).unwrap();
        let n = counts(&rows(&skewed, 0, 100_000));
        // Zipf 1.2 over ten values: a / j = 10^1.2 ≈ 16.
        assert!(n["a"] > 10 * n["j"], "{n:?}");
        assert!(n["a"] > n["b"] && n["b"] > n["c"], "{n:?}");

        let uniform = column("k", DataType::Utf8, &[values, ("skew", "0")]).unwrap();
        let n = counts(&rows(&uniform, 0, 100_000));
        assert!(n.values().all(|c| (9_000..11_000).contains(c)), "{n:?}");
    }

    #[test]
    fn skew_on_an_integer_range_makes_min_the_hottest_key() {
        let props = [("min", "1"), ("max", "1000"), ("skew", "1.1")];
        let c = column("k", DataType::Int64, &props).unwrap();
        let a = rows(&c, 0, 100_000);
        let v = a.as_primitive::<Int64Type>();
        assert!(v.iter().flatten().all(|k| (1..=1000).contains(&k)));
        let hottest = v.iter().flatten().filter(|k| *k == 1).count();
        let upper_half = v.iter().flatten().filter(|k| *k > 500).count();
        // Zipf 1.1: key 1 has ~17 % of rows, keys 501..1000 ~6 % together.
        assert!(hottest > 2 * upper_half, "{hottest} vs {upper_half}");
    }

    #[test]
    fn weights_follow_the_given_proportions() {
        let props = [("values", "view,cart,purchase"), ("weights", "90,5,5")];
        let c = column("action", DataType::Utf8, &props).unwrap();
        let n = counts(&rows(&c, 0, 100_000));
        assert!((88_000..92_000).contains(&n["view"]), "{n:?}");
        assert!((4_000..6_000).contains(&n["cart"]), "{n:?}");
        assert!((4_000..6_000).contains(&n["purchase"]), "{n:?}");

        let props = [("values", "a,b,c"), ("weights", "1, 0, 1")];
        let c = column("k", DataType::Utf8, &props).unwrap();
        assert!(!counts(&rows(&c, 0, 10_000)).contains_key("b"));
    }

    #[test]
    fn timestamp_sequence_steps_with_bounded_lag() {
        let props = [
            ("kind", "sequence"),
            ("start", START),
            ("step", "100ms"),
            ("max_lag", "5s"),
        ];
        let c = column(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            &props,
        )
        .unwrap();
        let a = rows(&c, 500, 10_000);
        let ts = a.as_primitive::<TimestampMillisecondType>();
        let mut out_of_order = 0;
        for (i, t) in ts.iter().enumerate() {
            let t = t.expect("no nulls");
            let seq = START_MS + (500 + i as i64) * 100;
            assert!((seq - 5_000..=seq).contains(&t), "row {i}: {t} vs {seq}");
            if i > 0 && t < ts.value(i - 1) {
                out_of_order += 1;
            }
        }
        assert!(out_of_order > 1_000, "{out_of_order} rows out of order");

        // RFC 3339 start; without max_lag the sequence is exact.
        let props = [
            ("kind", "sequence"),
            ("start", "2026-01-01T01:00:00+01:00"),
            ("step", "1 minute"),
        ];
        let c = column(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            &props,
        )
        .unwrap();
        let a = rows(&c, 0, 3);
        let ts = a.as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            ts.values().to_vec(),
            [START_MS, START_MS + 60_000, START_MS + 120_000]
        );
    }

    #[test]
    fn timestamp_sequence_defaults_to_the_start_time_and_row_rate() {
        let c = column(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            &[("kind", "sequence")],
        )
        .unwrap();
        // 1000 rows per second: one millisecond per row.
        let a = rows(&c, 10, 2);
        let ts = a.as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.values().to_vec(), [START_MS + 10, START_MS + 11]);
    }

    #[test]
    fn random_timestamps_lag_behind_generation_time() {
        let c = column(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            &[("max_lag", "2 s")],
        )
        .unwrap();
        let before = chrono::Utc::now().timestamp_millis();
        let a = rows(&c, 0, 1_000);
        let after = chrono::Utc::now().timestamp_millis();
        let ts = a.as_primitive::<TimestampMillisecondType>();
        assert!(ts
            .values()
            .iter()
            .all(|t| (before - 2_000..=after).contains(t)));
        assert!(ts.values().iter().any(|t| *t < before - 1_000));
    }

    #[test]
    fn same_seed_same_rows() {
        let c = column("k", DataType::Utf8, &[("values", "a,b,c"), ("skew", "1")]).unwrap();
        assert_eq!(rows(&c, 0, 1_000).as_ref(), rows(&c, 0, 1_000).as_ref());
    }

    #[test]
    fn bad_values_name_the_column_and_the_option() {
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, None);
        let cases: &[(DataType, Props, &str)] = &[
            (
                DataType::Float64,
                &[("values", "1,2"), ("skew", "x")],
                "datagen column 'price': fields.price.skew must be a number ≥ 0, got 'x'",
            ),
            (
                DataType::Int64,
                &[("skew", "-1")],
                "datagen column 'price': fields.price.skew must be a number ≥ 0, got '-1'",
            ),
            (
                DataType::Utf8,
                &[("values", "a,b,c"), ("weights", "90,10")],
                "datagen column 'price': fields.price.weights has 2 weights but fields.price.values has 3 values",
            ),
            (
                DataType::Utf8,
                &[("values", "a,b"), ("weights", "1,lots")],
                "datagen column 'price': fields.price.weights must be numbers ≥ 0, not all zero, like '90,5,5', got '1,lots'",
            ),
            (
                DataType::Utf8,
                &[("values", "a,b"), ("weights", "1,1"), ("skew", "1")],
                "datagen column 'price': give fields.price.weights or fields.price.skew, not both",
            ),
            (
                ts(),
                &[("kind", "sequence"), ("step", "fast")],
                "datagen column 'price': fields.price.step must be a duration like '100 ms', '5 s' or '1 minute', got 'fast'",
            ),
            (
                ts(),
                &[("kind", "sequence"), ("start", "yesterday")],
                "datagen column 'price': fields.price.start must be a time like '2026-01-01 00:00:00' or '2026-01-01T00:00:00Z', got 'yesterday'",
            ),
            (
                DataType::Int64,
                &[("min", "5"), ("max", "1")],
                "datagen column 'price': fields.price.min (5) is greater than fields.price.max (1)",
            ),
            (
                DataType::Float64,
                &[("null_rate", "2")],
                "datagen column 'price': fields.price.null_rate must be a number between 0 and 1, got '2'",
            ),
            (
                DataType::Utf8,
                &[("kind", "sequence")],
                "datagen column 'price': fields.price.kind = 'sequence' needs an integer or timestamp column, not Utf8",
            ),
            (
                DataType::Int64,
                &[("step", "1s")],
                "datagen column 'price': fields.price.step does not apply to random integers (column type Int64)",
            ),
            (
                DataType::Int64,
                &[("min", "0"), ("max", "2000000"), ("skew", "1")],
                "datagen column 'price': fields.price.skew works on at most 1048576 values, but fields.price.min..fields.price.max has 2000001",
            ),
            (
                DataType::Float64,
                &[("skw", "1")],
                "unknown option 'fields.price.skw' for datagen column 'price' (did you mean 'fields.price.skew'?); \
                 valid options are: fields.price.kind, fields.price.min, fields.price.max, fields.price.start, \
                 fields.price.step, fields.price.length, fields.price.values, fields.price.weights, \
                 fields.price.skew, fields.price.max_lag, fields.price.null_rate",
            ),
        ];
        for (data_type, props, expected) in cases {
            assert_eq!(&error(data_type.clone(), props), expected, "{props:?}");
        }
    }
}
