//! Window table functions: `TUMBLE(src, ts, size)`, `HOP(src, ts, slide,
//! size)`, `SESSION(src, ts, gap)`. Each is registered with DataFusion as a
//! table function returning a [`WindowTable`]: the source's columns plus
//! `window_start` and `window_end`. Lowering recognises the table and puts a
//! window-assignment stage at the head of the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result as DFResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// Window sizes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumble { size: i64 },
    Hop { slide: i64, size: i64 },
    Session { gap: i64 },
}

impl WindowKind {
    pub fn name(&self) -> &'static str {
        match self {
            WindowKind::Tumble { .. } => "TUMBLE",
            WindowKind::Hop { .. } => "HOP",
            WindowKind::Session { .. } => "SESSION",
        }
    }
}

pub const WINDOW_START: &str = "window_start";
pub const WINDOW_END: &str = "window_end";

/// A windowed view of a source, as a table DataFusion can plan against.
#[derive(Debug)]
pub struct WindowTable {
    pub source: String,
    /// Index of the event-time column in the source's schema.
    pub time_column: usize,
    pub kind: WindowKind,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WindowTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan_err!("a window over a stream is not scanned in batch")
    }
}

/// `TUMBLE`, `HOP` or `SESSION`, knowing the sources' schemas.
#[derive(Debug)]
pub struct WindowFunction {
    name: &'static str,
    sources: Arc<HashMap<String, SchemaRef>>,
}

impl WindowFunction {
    /// The three window functions over `sources`, under the names SQL uses.
    pub fn all(
        sources: Arc<HashMap<String, SchemaRef>>,
    ) -> Vec<(String, Arc<dyn TableFunctionImpl>)> {
        let mut out = Vec::new();
        for name in ["tumble", "hop", "session"] {
            let f: Arc<dyn TableFunctionImpl> = Arc::new(WindowFunction {
                name,
                sources: Arc::clone(&sources),
            });
            out.push((name.to_string(), Arc::clone(&f)));
            out.push((name.to_ascii_uppercase(), f));
        }
        out
    }

    fn usage(&self) -> &'static str {
        match self.name {
            "tumble" => "TUMBLE(source, time_column, INTERVAL 'size')",
            "hop" => "HOP(source, time_column, INTERVAL 'slide', INTERVAL 'size')",
            _ => "SESSION(source, time_column, INTERVAL 'gap')",
        }
    }
}

fn interval_ms(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    let ms = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            i.days as i64 * 86_400_000 + i.nanoseconds / 1_000_000
        }
        ScalarValue::IntervalDayTime(Some(i)) => i.days as i64 * 86_400_000 + i.milliseconds as i64,
        ScalarValue::DurationMillisecond(Some(ms)) => *ms,
        _ => return None,
    };
    (ms > 0).then_some(ms)
}

impl TableFunctionImpl for WindowFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let want = if self.name == "hop" { 4 } else { 3 };
        if exprs.len() != want {
            return plan_err!(
                "{} takes {want} arguments: {}",
                self.name.to_ascii_uppercase(),
                self.usage()
            );
        }
        let Expr::Column(src) = &exprs[0] else {
            return plan_err!(
                "the first argument of {} must name a source: {}",
                self.usage(),
                exprs[0]
            );
        };
        let source = src.name.to_ascii_lowercase();
        let Some(schema) = self.sources.get(&source) else {
            let mut known: Vec<&String> = self.sources.keys().collect();
            known.sort();
            return plan_err!(
                "relation '{source}' does not exist; sources are: {}",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let Expr::Column(ts) = &exprs[1] else {
            return plan_err!(
                "the second argument of {} must be a column: {}",
                self.usage(),
                exprs[1]
            );
        };
        let Ok(time_column) = schema.index_of(&ts.name) else {
            return plan_err!("source '{source}' has no column '{}'", ts.name);
        };
        if !matches!(
            schema.field(time_column).data_type(),
            DataType::Timestamp(_, _)
        ) {
            return plan_err!(
                "the time column '{}' of {} must be a TIMESTAMP, not {}",
                ts.name,
                self.usage(),
                schema.field(time_column).data_type()
            );
        }
        let mut sizes = Vec::new();
        for e in &exprs[2..] {
            match interval_ms(e) {
                Some(ms) => sizes.push(ms),
                None => {
                    return plan_err!(
                        "window sizes must be positive intervals of days or less, like INTERVAL '10 seconds', not {e}"
                    )
                }
            }
        }
        let kind = match self.name {
            "tumble" => WindowKind::Tumble { size: sizes[0] },
            "hop" => WindowKind::Hop {
                slide: sizes[0],
                size: sizes[1],
            },
            _ => WindowKind::Session { gap: sizes[0] },
        };
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        for name in [WINDOW_START, WINDOW_END] {
            if schema.index_of(name).is_ok() {
                return plan_err!("source '{source}' already has a column named {name}");
            }
            fields.push(Arc::new(Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            )));
        }
        Ok(Arc::new(WindowTable {
            source,
            time_column,
            kind,
            schema: Arc::new(Schema::new(fields)),
        }))
    }
}
