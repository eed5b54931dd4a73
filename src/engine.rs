//! The engine: executes statements against the catalog and runs pipelines.
//! This is the library API the CLI (and later the wire server) drives.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, SinkDef};
use crate::connectors::{self, SinkConnector};
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::{Planner, StreamPlan};
use crate::runtime::collect::CollectSink;
use crate::runtime::progress::ProgressEntry;
use crate::runtime::{Pipeline, PipelineSpec, PipelineState};
use crate::sql::{self, CreateSink, CreateSource, SinkInput, Statement};

/// What executing a statement produced.
#[derive(Debug)]
pub enum Outcome {
    /// A DDL statement took effect; the PostgreSQL command tag.
    Done(&'static str),
    /// Rows to show (SHOW …).
    Rows(RecordBatch),
    /// A pipeline to start (CREATE SINK, a bare SELECT).
    Start(Box<PipelineSpec>),
}

pub struct Engine {
    catalog: Catalog,
    planner: Planner,
    pipelines: Vec<Pipeline>,
    shutdown: CancellationToken,
    selects: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Engine {
            catalog: Catalog::default(),
            planner: Planner::new(),
            pipelines: Vec::new(),
            shutdown: CancellationToken::new(),
            selects: 0,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Cancelling this token stops every pipeline's sources; the pipelines
    /// then drain and flush.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Validates a statement and applies it to the catalog. Pipelines are
    /// returned, not started, so a script is checked whole before it runs.
    pub async fn prepare(&mut self, statement: Statement) -> Result<Outcome> {
        match statement {
            Statement::CreateSource(c) => self.create_source(*c),
            Statement::CreateSink(c) => self.create_sink(c).await,
            Statement::Query(q) => {
                let plan = self.planner.plan_query(&self.catalog, &q).await?;
                self.selects += 1;
                let mut options = sql::Options::new();
                options.insert("connector".into(), "stdout".into())?;
                let (_, sink) = connectors::create_sink(&mut options)?;
                self.pipeline_spec(format!("select_{}", self.selects), plan, sink)
                    .map(|s| Outcome::Start(Box::new(s)))
            }
            Statement::ShowSources => Ok(Outcome::Rows(self.show_sources()?)),
            Statement::ShowSinks => Ok(Outcome::Rows(self.show_sinks()?)),
            Statement::ShowPipelines => Ok(Outcome::Rows(self.show_pipelines()?)),
            Statement::Other(s) => Err(SluiceError::NotSupported(format!(
                "statement '{}'",
                s.to_string()
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    /// Starts a prepared pipeline.
    pub async fn start(&mut self, spec: PipelineSpec) -> Result<()> {
        let pipeline = Pipeline::start(spec, self.shutdown.clone()).await?;
        self.pipelines.push(pipeline);
        Ok(())
    }

    /// Parses, prepares and (for pipelines) starts one statement.
    pub async fn execute(&mut self, sql_text: &str) -> Result<Outcome> {
        let statement = sql::parse_one(sql_text)?;
        let outcome = self.prepare(statement).await?;
        if let Outcome::Start(spec) = &outcome {
            self.start((**spec).clone()).await?;
        }
        Ok(outcome)
    }

    /// Runs a SELECT over bounded sources to the end and returns its result:
    /// every row of an append-only query, the final row per group of an
    /// aggregate.
    pub async fn query_to_end(&mut self, query_sql: &str) -> Result<RecordBatch> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("expected a SELECT".into()));
        };
        let plan = self.planner.plan_query(&self.catalog, &q).await?;
        let source = self.source_of(&plan)?;
        if !source.connector.is_bounded() {
            return Err(SluiceError::Plan(format!(
                "source '{}' never ends, so this SELECT would never finish; \
                 give it a limit or read a file once",
                source.name
            )));
        }
        let sink = Arc::new(CollectSink::default());
        let result = sink.result.clone();
        let spec = self.pipeline_spec("query".into(), plan, sink)?;
        let mut pipeline = Pipeline::start(spec, self.shutdown.clone()).await?;
        match pipeline.wait().await {
            PipelineState::Failed(reason) => Err(SluiceError::Connector(reason)),
            _ => Ok(result
                .batches()
                .into_iter()
                .next()
                .ok_or_else(|| SluiceError::Internal("query produced no result".into()))?),
        }
    }

    /// Plans a continuous SELECT without running it.
    pub async fn plan_select(&self, query_sql: &str) -> Result<StreamPlan> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("expected a SELECT".into()));
        };
        self.planner.plan_query(&self.catalog, &q).await
    }

    /// The pipelines started so far, for the progress display.
    pub fn progress_entries(&self) -> Vec<ProgressEntry> {
        self.pipelines
            .iter()
            .map(|p| ProgressEntry {
                name: p.name.clone(),
                metrics: Arc::clone(&p.metrics),
            })
            .collect()
    }

    /// Waits for every pipeline to finish; returns each one's final state.
    pub async fn wait_all(&mut self) -> Vec<(String, PipelineState, Arc<PipelineMetrics>)> {
        let mut out = Vec::new();
        for p in self.pipelines.iter_mut() {
            let state = p.wait().await;
            out.push((p.name.clone(), state, Arc::clone(&p.metrics)));
        }
        out
    }

    /// Whether every running pipeline reads a bounded source.
    pub fn all_bounded(&self) -> bool {
        self.pipelines.iter().all(|p| p.bounded)
    }

    fn create_source(&mut self, c: CreateSource) -> Result<Outcome> {
        if self.catalog.contains(&c.name) {
            if c.if_not_exists {
                return Ok(Outcome::Done("CREATE SOURCE"));
            }
            return Err(SluiceError::Catalog(format!(
                "source '{}' already exists",
                c.name
            )));
        }
        let mut c = c;
        if c.columns.is_empty() {
            let fixed = c
                .options
                .get("connector")
                .and_then(|n| connectors::connector(&n.to_ascii_lowercase()).ok())
                .and_then(|e| e.columns);
            if let Some(columns_of) = fixed {
                c.columns = columns_of(&c.options)?;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for col in &c.columns {
            if !seen.insert(col.name.to_ascii_lowercase()) {
                return Err(SluiceError::Plan(format!(
                    "column '{}' is declared twice in source '{}'",
                    col.name, c.name
                )));
            }
        }
        let decodes = c
            .options
            .get("connector")
            .and_then(|n| connectors::connector(&n.to_ascii_lowercase()).ok())
            .is_some_and(|e| e.source_decodes);
        if decodes && c.columns.iter().all(|col| col.metadata.is_some()) {
            return Err(SluiceError::Plan(format!(
                "source '{}' needs a column list naming the fields of its records, \
                 e.g. CREATE SOURCE {} (key TEXT, value BIGINT) WITH (…)",
                c.name, c.name
            )));
        }
        let schema = Arc::new(Schema::new(
            c.columns
                .iter()
                .map(|col| Field::new(&col.name, col.data_type.clone(), col.nullable))
                .collect::<Vec<_>>(),
        ));
        let watermark = match &c.watermark {
            None => None,
            Some(w) => {
                let Ok(field) = schema.field_with_name(&w.column) else {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {}: source '{}' has no such column",
                        w.column, c.name
                    )));
                };
                if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {}: the column must be a TIMESTAMP, not {}",
                        w.column,
                        field.data_type()
                    )));
                }
                let expr = self.planner.physical_expr(&schema, &w.expr)?;
                let ty = expr.data_type(&schema)?;
                if !matches!(ty, DataType::Timestamp(_, _)) {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {} AS {}: the expression must be a TIMESTAMP, not {ty}",
                        w.column, w.expr
                    )));
                }
                Some((w.column.clone(), expr))
            }
        };
        let def = connectors::create_source(&c.name, c.columns, schema, c.options, watermark)?;
        self.catalog.add_source(def)?;
        Ok(Outcome::Done("CREATE SOURCE"))
    }

    async fn create_sink(&mut self, mut c: CreateSink) -> Result<Outcome> {
        if self.catalog.contains(&c.name) {
            if c.if_not_exists {
                return Ok(Outcome::Done("CREATE SINK"));
            }
            return Err(SluiceError::Catalog(format!(
                "sink '{}' already exists",
                c.name
            )));
        }
        let lateness = match c.options.take("allowed_lateness") {
            Some(t) => sql::parse_duration("allowed_lateness", &t)?,
            None => std::time::Duration::ZERO,
        };
        let (connector_name, sink) = connectors::create_sink(&mut c.options)?;
        let query = match c.input {
            SinkInput::Query(q) => q,
            SinkInput::Relation(name) => {
                if self.catalog.source(&name).is_none() {
                    return Err(self.catalog.unknown_relation(&name));
                }
                select_all(&name)?
            }
        };
        let plan = self
            .planner
            .plan_query(&self.catalog, &query)
            .await?
            .with_allowed_lateness(lateness)?;
        let spec = self.pipeline_spec(c.name.clone(), plan, Arc::clone(&sink))?;
        self.catalog.add_sink(SinkDef {
            name: c.name,
            connector_name,
            plan: Arc::clone(&spec.plan),
            connector: sink,
        })?;
        Ok(Outcome::Start(Box::new(spec)))
    }

    fn source_of(&self, plan: &StreamPlan) -> Result<&connectors::SourceDef> {
        self.catalog
            .source(&plan.source)
            .ok_or_else(|| self.catalog.unknown_relation(&plan.source))
    }

    fn pipeline_spec(
        &self,
        name: String,
        plan: StreamPlan,
        sink: Arc<dyn SinkConnector>,
    ) -> Result<PipelineSpec> {
        let source = self.source_of(&plan)?.clone();
        Ok(PipelineSpec {
            name,
            source,
            plan: Arc::new(plan),
            sink,
        })
    }

    fn show_sources(&self) -> Result<RecordBatch> {
        let rows: Vec<_> = self.catalog.sources().collect();
        text_table(
            &["name", "connector", "columns"],
            vec![
                rows.iter().map(|s| s.name.clone()).collect(),
                rows.iter().map(|s| s.connector_name.to_string()).collect(),
                rows.iter()
                    .map(|s| {
                        s.schema
                            .fields()
                            .iter()
                            .map(|f| format!("{} {}", f.name(), f.data_type()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .collect(),
            ],
        )
    }

    fn show_sinks(&self) -> Result<RecordBatch> {
        let rows: Vec<_> = self.catalog.sinks().collect();
        text_table(
            &["name", "connector", "source", "changelog"],
            vec![
                rows.iter().map(|s| s.name.clone()).collect(),
                rows.iter().map(|s| s.connector_name.to_string()).collect(),
                rows.iter().map(|s| s.plan.source.clone()).collect(),
                rows.iter().map(|s| s.plan.changelog.to_string()).collect(),
            ],
        )
    }

    fn show_pipelines(&self) -> Result<RecordBatch> {
        let p = &self.pipelines;
        let state = |s: PipelineState| match s {
            PipelineState::Running => "running".to_string(),
            PipelineState::Finished => "finished".to_string(),
            PipelineState::Failed(r) => format!("failed: {r}"),
        };
        let counter = |f: fn(&crate::metrics::MetricsSnapshot) -> u64| -> ArrayRef {
            Arc::new(
                p.iter()
                    .map(|x| f(&x.metrics.snapshot()))
                    .collect::<UInt64Array>(),
            )
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("records_in", DataType::UInt64, false),
            Field::new("records_out", DataType::UInt64, false),
            Field::new("errors", DataType::UInt64, false),
            Field::new("dead_lettered", DataType::UInt64, false),
            Field::new("late", DataType::UInt64, false),
            Field::new("watermark", DataType::Utf8, true),
        ]));
        Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    p.iter()
                        .map(|x| Some(x.name.clone()))
                        .collect::<StringArray>(),
                ),
                Arc::new(
                    p.iter()
                        .map(|x| Some(state(x.state())))
                        .collect::<StringArray>(),
                ),
                counter(|m| m.records_in),
                counter(|m| m.records_out),
                counter(|m| m.errors),
                counter(|m| m.dead_lettered),
                counter(|m| m.late),
                Arc::new(
                    p.iter()
                        .map(|x| {
                            let w = x
                                .metrics
                                .watermark
                                .load(std::sync::atomic::Ordering::Relaxed);
                            (w != i64::MIN)
                                .then(|| chrono::DateTime::from_timestamp_millis(w))
                                .flatten()
                                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                        })
                        .collect::<StringArray>(),
                ),
            ],
        )?)
    }
}

fn select_all(name: &str) -> Result<Box<ast::Query>> {
    let quoted = format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""));
    match sql::parse_one(&quoted)? {
        Statement::Query(q) => Ok(q),
        _ => Err(SluiceError::Internal(
            "SELECT * did not parse as a query".into(),
        )),
    }
}

fn text_table(names: &[&str], columns: Vec<Vec<String>>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}
