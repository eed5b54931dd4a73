//! `datagen`: typed random (or sequential) rows built straight into Arrow
//! arrays, at `rows_per_second`, up to `limit`, reproducible from `seed`.
//!
//! Per column: `fields.<col>.kind = 'random' | 'sequence'`, `.min` / `.max`
//! (numbers), `.start` (sequence), `.length` (text), `.values = 'a,b,c'`
//! (pick from a list), `.null_rate` (0..1). Timestamps default to the
//! generation time.

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
        "fields.<column>.<kind|min|max|start|length|values|null_rate>",
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
    "length",
    "values",
    "null_rate",
];

#[derive(Debug, Clone)]
enum Gen {
    Int { min: i64, max: i64 },
    Seq { start: i64 },
    Float { min: f64, max: f64 },
    Bool,
    Text { length: usize },
    Choice(Vec<String>),
    Now,
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
        let prefix = format!("{}.", c.name.to_ascii_lowercase());
        let mut props = Options::new();
        for (k, v) in fields.iter().filter(|(k, _)| k.starts_with(&prefix)) {
            props.insert(k[prefix.len()..].to_string(), v.clone())?;
        }
        fields.retain(|(k, _)| !k.starts_with(&prefix));
        columns.push(column_gen(&c.name, &c.data_type, props)?);
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

fn column_gen(name: &str, data_type: &DataType, mut p: Options) -> Result<ColumnGen> {
    let key = |k: &str| format!("fields.{name}.{k}");
    let kind = p.take_choice("kind", &["random", "sequence"])?;
    let null_rate = p
        .take_parsed::<f64>("null_rate", "a number between 0 and 1")?
        .unwrap_or(0.0);
    let values = p.take("values");
    let is_int = matches!(
        data_type,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    );
    let (lo, hi) = match data_type {
        DataType::Int8 => (i8::MIN as i64, i8::MAX as i64),
        DataType::Int16 => (i16::MIN as i64, i16::MAX as i64),
        DataType::Int32 => (0, 1_000_000),
        _ => (0, 1_000_000),
    };
    let gen = if let Some(values) = values {
        Gen::Choice(values.split(',').map(|v| v.trim().to_string()).collect())
    } else if kind.as_deref() == Some("sequence") {
        if !is_int {
            return Err(SluiceError::Options(format!(
                "{}: kind 'sequence' needs an integer column",
                key("kind")
            )));
        }
        Gen::Seq {
            start: p.take_parsed("start", "an integer")?.unwrap_or(0),
        }
    } else {
        match data_type {
            _ if is_int => {
                let min = p
                    .take_parsed::<i64>("min", "an integer")?
                    .unwrap_or(lo.max(0));
                let max = p.take_parsed::<i64>("max", "an integer")?.unwrap_or(hi);
                if min > max {
                    return Err(SluiceError::Options(format!(
                        "{} is greater than {}",
                        key("min"),
                        key("max")
                    )));
                }
                Gen::Int { min, max }
            }
            DataType::Float32 | DataType::Float64 => Gen::Float {
                min: p.take_parsed("min", "a number")?.unwrap_or(0.0),
                max: p.take_parsed("max", "a number")?.unwrap_or(1.0),
            },
            DataType::Boolean => Gen::Bool,
            DataType::Utf8 => Gen::Text {
                length: p.take_parsed("length", "a whole number")?.unwrap_or(8),
            },
            DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date32 => Gen::Now,
            other => {
                return Err(SluiceError::NotSupported(format!(
                    "datagen cannot generate column '{name}' of type {other}"
                )))
            }
        }
    };
    let valid: Vec<String> = FIELD_PROPS.iter().map(|k| key(k)).collect();
    let leftover: Vec<String> = p.iter().map(|(k, _)| k.clone()).collect();
    if let Some(k) = leftover.first() {
        return Err(SluiceError::Options(format!(
            "option '{}' does not apply to column '{name}' ({data_type}); column options are: {}",
            key(k),
            valid.join(", ")
        )));
    }
    Ok(ColumnGen {
        data_type: data_type.clone(),
        gen,
        null_rate,
    })
}

impl Datagen {
    fn batch(
        &self,
        rng: &mut fastrand::Rng,
        first_row: u64,
        rows: usize,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| generate(c, rng, first_row, rows))
            .collect::<Result<_>>()?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

fn generate(
    c: &ColumnGen,
    rng: &mut fastrand::Rng,
    first_row: u64,
    rows: usize,
) -> Result<ArrayRef> {
    let valid = |rng: &mut fastrand::Rng| c.null_rate <= 0.0 || rng.f64() >= c.null_rate;
    let array: ArrayRef = match &c.gen {
        Gen::Int { min, max } => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| rng.i64(*min..=*max)))
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
        Gen::Choice(values) => Arc::new(
            (0..rows)
                .map(|_| valid(rng).then(|| values[rng.usize(..values.len())].as_str()))
                .collect::<StringArray>(),
        ),
        Gen::Now => {
            let now = chrono::Utc::now().timestamp_millis();
            Arc::new(
                (0..rows)
                    .map(|_| valid(rng).then_some(now))
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
        let started = Instant::now();
        let mut produced: u64 = 0;
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
            let batch = self.batch(&mut rng, produced, rows, &ctx.schema)?;
            produced += rows as u64;
            if ctx.emit_batch(batch, "generator").await?.is_err() {
                return Ok(());
            }
        }
    }

    fn is_bounded(&self) -> bool {
        self.limit.is_some()
    }
}
