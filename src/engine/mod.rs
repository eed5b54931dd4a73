//! The engine: executes statements against the catalog and runs pipelines.
//! This is the library API the CLI (and later the wire server) drives.

mod adhoc;
pub mod coordinator;
mod ddl;
mod introspect;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tokio_util::sync::CancellationToken;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::resolve::resolve_table_references;
use futures::StreamExt;

use crate::catalog::store::Store;
use crate::catalog::{Catalog, SinkDef, ViewDef};
use crate::connectors::{self, SinkConnector};
use crate::error::{Result, SluiceError};
use crate::metrics::{Monitor, PipelineMetrics};
use crate::plan::WINDOW_END;
use crate::plan::{Planner, StreamPlan};
use crate::runtime::checkpoint::{Checkpointer, Checkpoints};
use crate::runtime::collect::CollectSink;
use crate::runtime::pipeline::Follow;
use crate::runtime::progress::ProgressEntry;
use crate::runtime::view::{Retention, ViewMode, ViewState};
use crate::runtime::view_io::{ViewSink, ViewSource, ViewTable};
use crate::runtime::{Pipeline, PipelineSpec, PipelineState};
use crate::sql::{self, CreateSink, CreateSource, CreateView, ObjectKind, SinkInput, Statement};
pub use adhoc::AdHocPlan;

/// What executing a statement produced.
#[derive(Debug)]
pub enum Outcome {
    /// A DDL statement took effect; the PostgreSQL command tag.
    Done(&'static str),
    /// Rows to show (SHOW …).
    Rows(RecordBatch),
    /// A pipeline to start (CREATE SINK / MATERIALIZED VIEW, a continuous
    /// SELECT).
    Start(Box<PipelineSpec>),
    /// An ad-hoc SELECT over views: a script runs it once the views' inputs
    /// are consumed.
    AdHoc(Box<ast::Query>),
}

/// How often an engine with a data directory checkpoints by default.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

pub struct Engine {
    catalog: Catalog,
    planner: Planner,
    /// The running pipelines and views' state.
    coordinator: coordinator::Coordinator,
    shutdown: CancellationToken,
    selects: usize,
    store: Option<Store>,
    /// Objects restored from the data directory that a script has not
    /// re-declared yet.
    restored: HashSet<String>,
    /// While restoring: holds every restored pipeline's source until all of
    /// them have started, so a sink following a view misses none of it.
    restoring: Option<CancellationToken>,
    /// Tables and functions beyond the catalog that ad-hoc queries may use
    /// (the wire server's PostgreSQL system catalogs).
    /// Over the wire: the directories connectors may touch (None: any).
    file_sandbox: Option<connectors::sandbox::FileSandbox>,
    system: Option<Arc<dyn SystemCatalog>>,
    /// Every running pipeline's figures (`sluice.pipelines`, Prometheus).
    monitor: Arc<Monitor>,
    sampling: bool,
    /// Checkpoints (with a data directory and a non-zero interval).
    checkpoints: Option<Arc<Checkpointer>>,
    /// The memory every ad-hoc query's sorts, aggregates, joins and result
    /// draw from together: a query past it fails with 53200, not the
    /// process.
    query_memory: Arc<dyn MemoryPool>,
    /// How many cores a pipeline keeps busy unless its view or sink says
    /// (`None`: `--parallelism`, or the machine's cores).
    parallelism: Option<usize>,
}

/// The default of `--query-memory-mb`: what ad-hoc queries may hold at once.
pub const DEFAULT_QUERY_MEMORY: usize = 2 << 30;

/// The schema of Sluice's own system tables.
pub const SYSTEM_SCHEMA: &str = "sluice";

/// Relations and functions outside the catalog that a client's ad-hoc
/// queries can read, derived from the catalog at each query: how the wire
/// server emulates PostgreSQL's `pg_catalog` and `information_schema`.
pub trait SystemCatalog: Send + Sync {
    /// Whether `relation` is one of its tables.
    fn provides(&self, relation: &TableReference) -> bool;
    /// Adapts `query` to what DataFusion plans (another dialect's
    /// spellings), before its relations are checked.
    fn rewrite(&self, catalog: &Catalog, query: &mut ast::Query) -> Result<()>;
    /// Registers its tables and functions, as of `catalog` now (`rows`: how
    /// many rows a view holds).
    fn register(
        &self,
        ctx: &SessionContext,
        catalog: &Catalog,
        rows: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<()>;
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
            coordinator: Default::default(),
            shutdown: CancellationToken::new(),
            selects: 0,
            store: None,
            restored: HashSet::new(),
            restoring: None,
            system: None,
            file_sandbox: None,
            monitor: Arc::default(),
            sampling: false,
            checkpoints: None,
            query_memory: Arc::new(GreedyMemoryPool::new(DEFAULT_QUERY_MEMORY)),
            parallelism: None,
        }
    }

    /// Runs this engine's pipelines on `n` cores unless a view or sink says
    /// otherwise (instead of the process's `--parallelism`).
    pub fn set_parallelism(&mut self, n: usize) {
        self.parallelism = Some(n.max(1));
    }

    /// Bounds the memory ad-hoc queries hold together (`--query-memory-mb`).
    pub fn set_query_memory(&mut self, bytes: usize) {
        self.query_memory = Arc::new(GreedyMemoryPool::new(bytes));
    }

    /// Lets ad-hoc queries read `system`'s tables and call its functions.
    /// Confines the files clients' connectors may name (`sluice serve`).
    pub fn set_file_sandbox(&mut self, sandbox: connectors::sandbox::FileSandbox) {
        self.file_sandbox = Some(sandbox);
    }

    fn check_files(&self, options: &sql::Options) -> Result<()> {
        match &self.file_sandbox {
            Some(sandbox) => sandbox.check(options.get("connector"), options),
            None => Ok(()),
        }
    }

    pub fn set_system_catalog(&mut self, system: Arc<dyn SystemCatalog>) {
        self.system = Some(system);
    }

    /// An engine whose catalog lives in `data_dir`: every definition stored
    /// there is recreated, and its pipelines started from the last
    /// checkpoint (one every [`DEFAULT_CHECKPOINT_INTERVAL`]).
    pub async fn open(data_dir: &Path) -> Result<Engine> {
        let checkpoints = Checkpoints {
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            state_url: None,
        };
        Engine::open_with(data_dir, Some(checkpoints)).await
    }

    /// `open`, checkpointing as `checkpoints` says (`None`: no
    /// checkpoints; a restart then rebuilds state by re-reading inputs).
    pub async fn open_with(data_dir: &Path, checkpoints: Option<Checkpoints>) -> Result<Engine> {
        Engine::open_dir(data_dir, checkpoints, false).await
    }

    /// `open_with`, after discarding what the data directory holds: its
    /// catalog, source positions and checkpoints (wherever they are kept).
    /// Nothing is restored; every pipeline starts from scratch.
    pub async fn open_fresh(data_dir: &Path, checkpoints: Option<Checkpoints>) -> Result<Engine> {
        Engine::open_dir(data_dir, checkpoints, true).await
    }

    async fn open_dir(
        data_dir: &Path,
        checkpoints: Option<Checkpoints>,
        fresh: bool,
    ) -> Result<Engine> {
        // Locked first: nothing is discarded under another process's feet.
        let store = Store::open(data_dir)?;
        if fresh {
            let state_url = checkpoints.as_ref().and_then(|c| c.state_url.as_deref());
            crate::runtime::checkpoint::discard(data_dir, state_url).await?;
            connectors::position::remove_all(data_dir)?;
            store.discard()?;
        }
        let definitions = store.load()?;
        let mut engine = Engine::new();
        engine.store = Some(store);
        if let Some(config) = &checkpoints {
            engine.checkpoints = Some(Checkpointer::open(data_dir, config).await?);
        }
        let gate = CancellationToken::new();
        engine.restoring = Some(gate.clone());
        for def in definitions {
            let restore = async {
                let statement = sql::parse_one(&def.sql)?;
                match engine.prepare(statement, &def.sql).await? {
                    Outcome::Start(spec) => engine.start(*spec).await,
                    _ => Ok(()),
                }
            };
            restore.await.map_err(|e| {
                engine.shutdown.cancel();
                SluiceError::Catalog(format!(
                    "cannot restore {} '{}' from {}: {e}",
                    def.kind.noun(),
                    def.name,
                    data_dir.join("catalog.json").display()
                ))
            })?;
            engine.restored.insert(def.name.clone());
        }
        engine.restoring = None;
        gate.cancel();
        if let Some(cp) = &engine.checkpoints {
            tokio::spawn(Arc::clone(cp).run(engine.shutdown.clone()));
        }
        Ok(engine)
    }

    /// Forgets which objects came from the data directory: a CREATE of one
    /// of them is then an error like any other existing object.
    pub fn adopt_restored(&mut self) {
        self.restored.clear();
    }

    /// Names restored from the data directory.
    pub fn restored(&self) -> Vec<String> {
        self.catalog
            .definitions()
            .iter()
            .filter(|d| self.restored.contains(&d.name))
            .map(|d| d.name.clone())
            .collect()
    }

    /// Writes the catalog to the data directory (when there is one).
    pub fn persist(&self) -> Result<()> {
        match &self.store {
            Some(store) => store.save(self.catalog.definitions()),
            None => Ok(()),
        }
    }

    /// Whether a CREATE of `name` is a script re-declaring what the data
    /// directory restored: a no-op when the SQL is the same.
    fn already_restored(&mut self, kind: ObjectKind, name: &str, sql: &str) -> Result<bool> {
        if !self.restored.contains(name) {
            return Ok(false);
        }
        let Some(def) = self.catalog.definition(name) else {
            return Ok(false);
        };
        if def.kind == kind && def.same_sql(sql) {
            self.restored.remove(name);
            return Ok(true);
        }
        Err(SluiceError::Duplicate(format!(
            "{} '{name}' already exists: it was restored from the data directory {} \
             with a different definition; DROP {} {name} first, start over with --fresh, \
             or use another --data-dir",
            def.kind.noun(),
            self.store
                .as_ref()
                .map(|s| s.dir().display().to_string())
                .unwrap_or_default(),
            def.kind.keyword(),
        )))
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
    /// `sql` is the statement's text, kept in the catalog.
    pub async fn prepare(&mut self, statement: Statement, sql: &str) -> Result<Outcome> {
        match statement {
            Statement::CreateSource(c) => self.create_source(*c, sql),
            Statement::CreateSink(c) => self.create_sink(c, sql).await,
            Statement::CreateView(c) => self.create_view(c, sql).await,
            Statement::Drop(d) => self.drop_object(d).await,
            Statement::Describe(name) => Ok(Outcome::Rows(self.describe(&name)?)),
            Statement::ShowViews => Ok(Outcome::Rows(self.show_views()?)),
            Statement::Explain(inner) => Ok(Outcome::Rows(self.explain(*inner).await?)),
            Statement::ExplainAnalyze(name) => Ok(Outcome::Rows(self.explain_analyze(&name)?)),
            Statement::Query(q) if self.is_ad_hoc(&q)? => Ok(Outcome::AdHoc(q)),
            Statement::Query(q) => {
                let plan = self.planner.plan_query(&self.catalog, &q).await?;
                self.selects += 1;
                let mut options = sql::Options::new();
                options.insert("connector".into(), "stdout".into())?;
                let (_, sink) = connectors::create_sink(&mut options)?;
                // A script's SELECT is not in the catalog: not checkpointed.
                self.pipeline_spec(format!("select_{}", self.selects), plan, sink)
                    .map(|mut s| {
                        s.checkpoints = None;
                        Outcome::Start(Box::new(s))
                    })
            }
            Statement::ShowSources => Ok(Outcome::Rows(self.show_sources()?)),
            Statement::ShowSinks => Ok(Outcome::Rows(self.show_sinks()?)),
            Statement::ShowPipelines => Ok(Outcome::Rows(self.show_pipelines()?)),
            Statement::CreateFunction(c) => self.create_function(*c, sql),
            Statement::DropFunction { names, if_exists } => self.drop_functions(&names, if_exists),
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
        self.monitor.register(Arc::clone(&pipeline.metrics));
        if !self.sampling {
            self.sampling = true;
            tokio::spawn(Arc::clone(&self.monitor).run_sampler(self.shutdown.clone()));
        }
        self.coordinator.add_pipeline(pipeline);
        Ok(())
    }

    /// Parses, prepares and (for pipelines) starts one statement; runs an
    /// ad-hoc SELECT at once. DDL is saved to the data directory.
    pub async fn execute(&mut self, sql_text: &str) -> Result<Outcome> {
        let statement = sql::parse_one(sql_text)?;
        let outcome = self.prepare(statement, sql_text).await?;
        match &outcome {
            Outcome::Start(spec) => self.start((**spec).clone()).await?,
            Outcome::AdHoc(q) => return Ok(Outcome::Rows(self.run_ad_hoc(q).await?)),
            _ => {}
        }
        self.persist()?;
        Ok(outcome)
    }

    /// A SELECT's result: over views, their contents once the pipelines that
    /// fill them are done (at once for unbounded ones: what is there now);
    /// over bounded sources, the query run to the end.
    pub async fn select(&mut self, query_sql: &str) -> Result<RecordBatch> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("expected a SELECT".into()));
        };
        if !self.is_ad_hoc(&q)? {
            return self.query_to_end(query_sql).await;
        }
        if self.all_bounded() {
            futures::future::join_all(self.inputs_done(&q)?).await;
        }
        self.run_ad_hoc(&q).await
    }

    /// Runs an ad-hoc SELECT over views and returns its rows.
    pub async fn query(&self, query_sql: &str) -> Result<RecordBatch> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("expected a SELECT".into()));
        };
        self.run_ad_hoc(&q).await
    }

    /// Starts a continuous query whose output goes to `sink` (SUBSCRIBE): a
    /// pipeline of its own, not in the catalog, stopped by its owner.
    pub async fn subscribe(
        &mut self,
        query_sql: &str,
        snapshot: bool,
        sink: Arc<dyn SinkConnector>,
    ) -> Result<Pipeline> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("SUBSCRIBE takes a SELECT".into()));
        };
        let plan = self.planner.plan_query(&self.catalog, &q).await?;
        self.selects += 1;
        let mut spec = self.pipeline_spec(format!("subscribe_{}", self.selects), plan, sink)?;
        spec.positions = None;
        spec.resume = false;
        spec.gate = None;
        // A client's subscription is not part of the catalog: nothing to
        // restore it into.
        spec.checkpoints = None;
        for input in &spec.sources {
            if let Some(follow) = spec.views.get_mut(&input.name) {
                follow.snapshot = snapshot;
            } else if !snapshot {
                return Err(SluiceError::Plan(format!(
                    "snapshot = false applies to views; '{}' is a source, read from where it starts",
                    input.name
                )));
            }
        }
        Pipeline::start(spec, self.shutdown.clone()).await
    }

    /// The columns a statement returns, without side effects (a client's
    /// Describe): planned for SELECTs over views, run for SHOW / DESCRIBE /
    /// EXPLAIN, `None` for statements that return no rows.
    pub async fn describe_statement(&mut self, sql_text: &str) -> Result<Option<SchemaRef>> {
        let statement = sql::parse_one(sql_text)?;
        match statement {
            Statement::Query(q) => {
                self.check_ad_hoc(&q)?;
                Ok(Some(self.plan_ad_hoc(&q).await?.schema()))
            }
            Statement::ShowSources
            | Statement::ShowViews
            | Statement::ShowSinks
            | Statement::ShowPipelines
            | Statement::Describe(_)
            | Statement::Explain(_)
            | Statement::ExplainAnalyze(_) => match self.prepare(statement, sql_text).await? {
                Outcome::Rows(b) => Ok(Some(b.schema())),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// Runs one statement for a client: like `execute`, but a SELECT that
    /// reads a source (which would run forever) is refused.
    pub async fn execute_for_client(&mut self, sql_text: &str) -> Result<Outcome> {
        let statement = sql::parse_one(sql_text)?;
        if let Statement::Query(q) = &statement {
            self.check_ad_hoc(q)?;
        }
        self.execute(sql_text).await
    }

    /// Every pipeline's figures, shared with the metrics endpoint.
    pub fn monitor(&self) -> Arc<Monitor> {
        Arc::clone(&self.monitor)
    }

    /// Runs a SELECT over bounded sources to the end and returns its result:
    /// every row of an append-only query, the final row per group of an
    /// aggregate.
    pub async fn query_to_end(&mut self, query_sql: &str) -> Result<RecordBatch> {
        let Statement::Query(q) = sql::parse_one(query_sql)? else {
            return Err(SluiceError::Plan("expected a SELECT".into()));
        };
        let plan = self.planner.plan_query(&self.catalog, &q).await?;
        if let Some(source) = self
            .sources_of(&plan)?
            .into_iter()
            .find(|s| !s.connector.is_bounded())
        {
            return Err(SluiceError::Plan(format!(
                "source '{}' never ends, so this SELECT would never finish; \
                 give it a limit or read a file once",
                source.name
            )));
        }
        let sink = Arc::new(CollectSink {
            one_row: plan.is_global_aggregate(),
            ..CollectSink::default()
        });
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
        self.coordinator.progress_entries()
    }

    /// Waits for every pipeline to finish; returns each one's final state.
    pub async fn wait_all(&mut self) -> Vec<coordinator::Ended> {
        self.coordinator.wait_all().await
    }

    /// What ends every running pipeline where it is (a watchdog's, for a
    /// shutdown that does not finish).
    pub fn abort_handles(&self) -> Vec<tokio::task::AbortHandle> {
        self.coordinator.abort_handles()
    }

    /// `wait_all` after a shutdown, giving the pipelines `grace` in all to
    /// drain and take their final checkpoint; those still running then
    /// (a sink waiting on a remote end) are aborted and reported failed.
    pub async fn wait_all_within(&mut self, grace: std::time::Duration) -> Vec<coordinator::Ended> {
        self.coordinator.wait_all_within(grace).await
    }

    /// Whether every running pipeline reads a bounded source.
    pub fn all_bounded(&self) -> bool {
        self.coordinator.all_bounded()
    }

    fn sources_of(&self, plan: &StreamPlan) -> Result<Vec<&connectors::SourceDef>> {
        plan.sources()
            .into_iter()
            .map(|name| {
                self.catalog
                    .relation(name)
                    .ok_or_else(|| self.catalog.unknown_relation(name))
            })
            .collect()
    }

    fn pipeline_spec(
        &self,
        name: String,
        plan: StreamPlan,
        sink: Arc<dyn SinkConnector>,
    ) -> Result<PipelineSpec> {
        let sources: Vec<_> = self.sources_of(&plan)?.into_iter().cloned().collect();
        // The views it reads, from their dispatchers.
        let views = sources
            .iter()
            .filter_map(|s| Some((s.name.clone(), self.coordinator.view(&s.name)?)))
            .map(|(name, view)| {
                let follow = Follow {
                    view: Arc::clone(view),
                    snapshot: true,
                };
                (name, follow)
            })
            .collect();
        // State (an aggregate's, or the view read) is rebuilt by re-reading
        // the input from its start.
        // With checkpoints, state and positions come from the last one.
        let checkpointed = self.checkpoints.is_some();
        let replay = !checkpointed
            && (plan.is_stateful() || sources.iter().any(|s| self.catalog.view(&s.name).is_some()));
        Ok(PipelineSpec {
            name,
            sources,
            plan: Arc::new(plan),
            sink,
            replay,
            resume: !checkpointed && self.restoring.is_some(),
            positions: if checkpointed {
                None
            } else {
                self.store.as_ref().map(|s| Arc::from(s.dir()))
            },
            gate: self.restoring.clone(),
            checkpoints: self.checkpoints.clone(),
            parallelism: self
                .parallelism
                .unwrap_or_else(crate::runtime::default_parallelism),
            views,
        })
    }
}

/// The name clients see the engine's database by (`psql -d sluice`).
pub const DATABASE: &str = "sluice";
