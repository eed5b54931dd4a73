//! Continuous SELECT → streaming plan. DataFusion plans and optimizes the
//! query against the sources' schemas; [`lower`] then turns the logical plan
//! into stages of physical expressions (filters, projections) and at most one
//! changelog aggregate, which the runtime runs on whole batches.

mod lower;
pub mod window;

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;

use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};

pub use lower::lower;
pub use window::{WindowKind, WINDOW_END, WINDOW_START};

/// A continuous query, ready to run.
#[derive(Debug)]
pub struct StreamPlan {
    /// The source the query reads.
    pub source: String,
    /// Stateless stages on the source's rows.
    pub stages: Vec<Stage>,
    pub aggregate: Option<Arc<AggregatePlan>>,
    pub output_schema: SchemaRef,
    /// The output is a changelog (insert / update / delete per row).
    pub changelog: bool,
    /// Output columns that identify a changelog row (the GROUP BY key).
    pub key_columns: Vec<usize>,
    /// DataFusion's optimized logical plan, for EXPLAIN.
    pub logical: String,
    /// `allowed_lateness` in ms (windowed aggregates only).
    pub allowed_lateness: i64,
    /// The input is an updating view: rows carry ops to apply.
    pub input_changelog: bool,
}

impl StreamPlan {
    /// Keeps windows `lateness` past their end so late rows update them; the
    /// output becomes a changelog keyed by the group (window included).
    pub fn with_allowed_lateness(mut self, lateness: std::time::Duration) -> Result<StreamPlan> {
        let ms = lateness.as_millis() as i64;
        if ms == 0 {
            return Ok(self);
        }
        let Some(agg) = &self.aggregate else {
            return Err(SluiceError::Plan(
                "allowed_lateness applies to windowed aggregates (GROUP BY window_start, window_end, …)".into(),
            ));
        };
        if agg.window.is_none() {
            return Err(SluiceError::Plan(
                "allowed_lateness applies to windowed aggregates (GROUP BY window_start, window_end, …)".into(),
            ));
        }
        self.key_columns = lower::key_columns(agg);
        self.changelog = true;
        self.allowed_lateness = ms;
        Ok(self)
    }
}

pub enum Stage {
    /// Adds `window_start` and `window_end` (and drops late rows).
    Window {
        kind: WindowKind,
        /// The event-time column in the input.
        time_column: usize,
        /// The columns it produces, by index into the input's columns
        /// followed by `window_start` and `window_end`; `None`: all of them.
        /// The scan's projection, folded in at lowering: a HOP copies each
        /// row into every window, so copying only the columns the query
        /// reads (q5: two of seven) saves most of its work.
        keep: Option<Vec<usize>>,
        /// Every column it can produce: the input's, then `window_start`
        /// and `window_end`.
        all: SchemaRef,
        /// What it produces.
        schema: SchemaRef,
    },
    Filter(Arc<dyn PhysicalExpr>),
    Project {
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    },
}

impl StreamPlan {
    /// An aggregate without GROUP BY or window: its output is one row.
    pub fn is_global_aggregate(&self) -> bool {
        self.aggregate
            .as_ref()
            .is_some_and(|a| a.group_exprs.is_empty() && a.window.is_none())
    }

    /// Whether the pipeline holds state between batches (aggregates,
    /// sessions), so it must re-read its input to rebuild it after a restart.
    pub fn is_stateful(&self) -> bool {
        self.aggregate.is_some()
            || self.stages.iter().any(|s| {
                matches!(
                    s,
                    Stage::Window {
                        kind: WindowKind::Session { .. },
                        ..
                    }
                )
            })
    }
}

impl Stage {
    /// Columns out of this stage, when it fixes them.
    pub fn output_width(&self) -> Option<usize> {
        match self {
            Stage::Window { schema, .. } | Stage::Project { schema, .. } => {
                Some(schema.fields().len())
            }
            Stage::Filter(_) => None,
        }
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Window {
                kind, time_column, ..
            } => write!(f, "Window({kind:?} on #{time_column})"),
            Stage::Filter(p) => write!(f, "Filter({p})"),
            Stage::Project { exprs, .. } => {
                let e: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
                write!(f, "Project({})", e.join(", "))
            }
        }
    }
}

/// `GROUP BY` over an unbounded input: a changelog per group.
#[derive(Debug)]
pub struct AggregatePlan {
    pub group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Schema of the group columns (for the group-values table).
    pub group_schema: SchemaRef,
    pub calls: Vec<AggregateCall>,
    /// Group columns then aggregate results.
    pub schema: SchemaRef,
    /// Stages over the aggregate's rows (HAVING, the select list).
    pub post: Vec<Stage>,
    /// Set when the groups include a window: results are emitted once, when
    /// the watermark passes the window's end.
    pub window: Option<WindowGrouping>,
}

/// Where the window columns are among an aggregate's group expressions.
#[derive(Debug, Clone, Copy)]
pub struct WindowGrouping {
    pub kind: WindowKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug)]
pub struct AggregateCall {
    pub func: Arc<AggregateFunctionExpr>,
    /// Argument expressions, then ORDER BY expressions of the aggregate.
    pub args: Vec<Arc<dyn PhysicalExpr>>,
    /// `FILTER (WHERE …)`
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// Plans continuous queries against the catalog's sources.
pub struct Planner {
    rules: Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>>,
}

impl Default for Planner {
    fn default() -> Self {
        Self::new()
    }
}

impl Planner {
    pub fn new() -> Self {
        let state = SessionStateBuilder::new().with_default_features().build();
        // `count(DISTINCT x)` is rewritten into two aggregates by this rule;
        // a streaming aggregate keeps the distinct set itself instead.
        let rules = state
            .optimizers()
            .iter()
            .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
            .cloned()
            .collect();
        Planner { rules }
    }

    /// A fresh DataFusion context with every source and view registered as an
    /// (empty) table of its schema.
    fn context(&self, catalog: &Catalog) -> Result<SessionContext> {
        let state = SessionStateBuilder::new()
            .with_config(session_config())
            .with_default_features()
            .with_optimizer_rules(self.rules.clone())
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::functions::register(&ctx);
        let mut schemas = std::collections::HashMap::new();
        for s in catalog.relations() {
            let table = MemTable::try_new(s.schema.clone(), vec![vec![]])?;
            ctx.register_table(s.name.as_str(), Arc::new(table))?;
            schemas.insert(s.name.clone(), s.schema.clone());
        }
        for (name, f) in window::WindowFunction::all(Arc::new(schemas)) {
            ctx.register_udtf(&name, f);
        }
        Ok(ctx)
    }

    /// A scalar SQL expression over `schema` as a physical expression (type
    /// coerced and simplified), e.g. a watermark.
    pub fn physical_expr(
        &self,
        schema: &SchemaRef,
        expr: &ast::Expr,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let state = SessionStateBuilder::new().with_default_features().build();
        let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
        let logical = state.create_logical_expr(&expr.to_string(), &df_schema)?;
        Ok(state.create_physical_expr(logical, &df_schema)?)
    }

    /// Plans `query` as a continuous query.
    pub async fn plan_query(&self, catalog: &Catalog, query: &ast::Query) -> Result<StreamPlan> {
        let logical = self.logical_plan(catalog, query).await?;
        lower(&logical, catalog)
    }

    /// DataFusion's optimized logical plan of `query`.
    pub async fn logical_plan(&self, catalog: &Catalog, query: &ast::Query) -> Result<LogicalPlan> {
        let ctx = self.context(catalog)?;
        let state = ctx.state();
        let mut query = query.clone();
        catalog.rewrite_query(&mut query)?;
        let statement = DFStatement::Statement(Box::new(ast::Statement::Query(Box::new(query))));
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| relation_error(e, catalog))?;
        Ok(state.optimize(&plan)?)
    }
}

/// DataFusion's settings for Sluice's SQL, continuous and ad-hoc alike:
/// `now()` is a `timestamptz` (in UTC; clients show it in their session's
/// zone), as in PostgreSQL.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new();
    config.options_mut().execution.time_zone = Some("+00:00".into());
    config
}

/// DataFusion's "table not found" becomes our catalog error, listing sources.
fn relation_error(e: datafusion::error::DataFusionError, catalog: &Catalog) -> SluiceError {
    let text = e.to_string();
    if let Some(rest) = text.split("table '").nth(1) {
        if text.contains("not found") {
            let name = rest.split('\'').next().unwrap_or(rest);
            let name = name.rsplit('.').next().unwrap_or(name);
            return catalog.unknown_relation(name);
        }
    }
    SluiceError::DataFusion(e)
}

/// A duration in milliseconds as EXPLAIN shows it: `400ms`, `1.5s`, `2m`.
pub fn show_ms(ms: i64) -> String {
    if ms % 60_000 == 0 && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// A physical expression without its column indices (`k@0` → `k`).
pub fn expr_text(e: &dyn PhysicalExpr) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    tidy(&out)
}

/// DataFusion's spellings made readable: `count(Int64(1))` is `count(*)`,
/// and a window table's columns need no `TUMBLE().` qualifier.
fn tidy(text: &str) -> String {
    text.replace("(Int64(1))", "(*)")
        .replace("TUMBLE().", "")
        .replace("HOP().", "")
        .replace("SESSION().", "")
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowKind::Tumble { size } => write!(f, "TUMBLE(size {})", show_ms(*size)),
            WindowKind::Hop { slide, size } => {
                write!(f, "HOP(slide {}, size {})", show_ms(*slide), show_ms(*size))
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap {})", show_ms(*gap)),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Window {
                kind,
                time_column,
                keep,
                all,
                schema,
            } => {
                let column = all
                    .fields()
                    .get(*time_column)
                    .map(|c| c.name().as_str())
                    .unwrap_or("?");
                write!(
                    f,
                    "window {kind} on {column}, adds window_start and window_end, drops rows behind the watermark"
                )?;
                if keep.is_some() {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|c| c.name().as_str()).collect();
                    write!(f, ", keeps {}", names.join(", "))?;
                }
                Ok(())
            }
            Stage::Filter(p) => write!(f, "filter {}", expr_text(p.as_ref())),
            Stage::Project { exprs, schema } => {
                let e: Vec<String> = exprs
                    .iter()
                    .zip(schema.fields())
                    .map(|(e, field)| {
                        let text = expr_text(e.as_ref());
                        if &text == field.name() {
                            text
                        } else {
                            format!("{text} AS {}", field.name())
                        }
                    })
                    .collect();
                write!(f, "project {}", e.join(", "))
            }
        }
    }
}

impl AggregatePlan {
    /// Its grouping and aggregate calls, as EXPLAIN shows them.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self
            .group_exprs
            .iter()
            .map(|e| expr_text(e.as_ref()))
            .collect();
        let calls: Vec<String> = self.calls.iter().map(|c| tidy(c.func.name())).collect();
        let mut text = if groups.is_empty() {
            "no grouping".to_string()
        } else {
            format!("group by {}", groups.join(", "))
        };
        text.push_str(&format!("; aggregates {}", calls.join(", ")));
        for s in &self.post {
            text.push_str(&format!("; then {s}"));
        }
        text
    }
}
