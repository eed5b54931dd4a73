//! Continuous SELECT → streaming plan. DataFusion plans and optimizes the
//! query against the sources' schemas; [`lower`] then turns the logical plan,
//! node by node, into a dataflow graph ([`PlanGraph`]): sources, stateless
//! stages of physical expressions (filters, projections, window
//! assignment), unions, joins and aggregates, which the runtime runs on whole
//! batches. One file per kind of node.

pub mod aggregate;
pub mod exchange;
pub mod graph;
pub mod join;
mod lower;
mod lower_join;
pub mod session;
pub mod source;
pub mod stateless;
mod temporal;
pub mod union;
pub mod window;

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;

use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};

pub use aggregate::{AggregateCall, AggregateNode, AggregatePlan, WindowGrouping};
pub use exchange::Exchange;
pub use graph::{Changelog, NodeId, NodeKind, PlanGraph, PlanNode};
pub use join::{Interval, JoinKind, JoinNode, Temporal};
pub use lower::lower;
pub use source::SourceNode;
pub use stateless::{Stage, StatelessNode};
pub use window::{WindowKind, WINDOW_END, WINDOW_START};

/// A continuous query, ready to run.
#[derive(Debug)]
pub struct StreamPlan {
    /// Its dataflow graph; the last node is the output.
    pub graph: PlanGraph,
    pub output_schema: SchemaRef,
    /// The output is a changelog (insert / update / delete per row).
    pub changelog: bool,
    /// Output columns that identify a changelog row (the GROUP BY key).
    pub key_columns: Vec<usize>,
    /// DataFusion's optimized logical plan, for EXPLAIN.
    pub logical: String,
    /// `allowed_lateness` in ms (windowed aggregates only).
    pub allowed_lateness: i64,
}

impl StreamPlan {
    /// Keeps windows `lateness` past their end so late rows update them; the
    /// output becomes a changelog keyed by the group (window included).
    pub fn with_allowed_lateness(mut self, lateness: std::time::Duration) -> Result<StreamPlan> {
        let ms = lateness.as_millis() as i64;
        if ms == 0 {
            return Ok(self);
        }
        let Some(agg) = self.graph.aggregate().filter(|a| a.agg.window.is_some()) else {
            return Err(SluiceError::Plan(
                "allowed_lateness applies to windowed aggregates (GROUP BY window_start, window_end, …)".into(),
            ));
        };
        self.key_columns = lower::key_columns(&agg.agg);
        self.changelog = true;
        self.allowed_lateness = ms;
        Ok(self)
    }

    /// Its regular joins forget kept rows `ttl` after they arrived
    /// (`state_ttl`): their state stays bounded at the cost of missing
    /// matches with forgotten rows.
    pub fn with_state_ttl(mut self, ttl: Option<std::time::Duration>) -> Result<StreamPlan> {
        let Some(ttl) = ttl else {
            return Ok(self);
        };
        let ms = ttl.as_millis() as i64;
        if ms <= 0 {
            return Err(SluiceError::Options(
                "state_ttl must be longer than zero".into(),
            ));
        }
        let mut joins = 0;
        for node in self.graph.nodes_mut() {
            if let NodeKind::Join(j) = &mut node.kind {
                if j.unbounded() {
                    j.with_state_ttl(ms);
                    joins += 1;
                }
            }
        }
        if joins == 0 {
            return Err(SluiceError::Options(
                "state_ttl applies to regular joins (whose state nothing else bounds); this \
                 query has none"
                    .into(),
            ));
        }
        Ok(self)
    }

    /// What a client should be told when this query starts: each regular
    /// join whose state nothing bounds (no interval, no `state_ttl`).
    pub fn notices(&self) -> Vec<String> {
        self.graph
            .nodes()
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Join(j) if j.unbounded() && j.state_ttl.is_none() => Some(format!(
                    "the {} join keeps every row of both inputs: its state grows for as \
                         long as they do; bound it by the inputs' event times (an interval or \
                         window join) or WITH (state_ttl = '…')",
                    j.kind.sql()
                )),
                _ => None,
            })
            .collect()
    }

    /// The relations the query reads, in the order of its source nodes.
    pub fn sources(&self) -> Vec<&str> {
        self.graph.sources().map(|(_, s)| s.name.as_str()).collect()
    }

    /// Whether the query reads relation `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.graph.sources().any(|(_, s)| s.name == name)
    }

    /// The query's aggregate, when it has one.
    pub fn aggregate(&self) -> Option<&Arc<AggregatePlan>> {
        self.graph.aggregate().map(|a| &a.agg)
    }

    /// An aggregate without GROUP BY or window: its output is one row.
    pub fn is_global_aggregate(&self) -> bool {
        self.aggregate()
            .is_some_and(|a| a.group_exprs.is_empty() && a.window.is_none())
    }

    /// Whether the pipeline holds state between batches (aggregates,
    /// sessions), so it must re-read its input to rebuild it after a restart.
    pub fn is_stateful(&self) -> bool {
        self.graph.nodes().iter().any(PlanNode::is_stateful)
    }
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
        let mut query = query.clone();
        let versioned = temporal::take_versions(&mut query, catalog)?;
        let logical = self.logical_plan(catalog, &query).await?;
        lower(&logical, catalog, &versioned)
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
pub(crate) fn tidy(text: &str) -> String {
    intervals(text)
        .replace("(Int64(1))", "(*)")
        .replace("TUMBLE().", "")
        .replace("HOP().", "")
        .replace("SESSION().", "")
}

/// DataFusion's interval literals (`IntervalMonthDayNano("IntervalMonthDayNano
/// { months: 0, days: 0, nanoseconds: 10000000000 }")`) as SQL
/// (`INTERVAL '10s'`), when they have no months.
fn intervals(text: &str) -> String {
    const OPEN: &str = "IntervalMonthDayNano(\"IntervalMonthDayNano { ";
    const CLOSE: &str = " }\")";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let body = &rest[at + OPEN.len()..];
        let Some(end) = body.find(CLOSE) else {
            out.push_str(&rest[at..]);
            return out;
        };
        let field = |name: &str| -> Option<i64> {
            body[..end]
                .split(", ")
                .find_map(|f| f.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
        };
        match (field("months"), field("days"), field("nanoseconds")) {
            (Some(0), Some(days), Some(nanos)) => {
                let ms = days * 86_400_000 + nanos / 1_000_000;
                out.push_str(&format!("INTERVAL '{}'", show_ms(ms)));
            }
            _ => out.push_str(&rest[at..at + OPEN.len() + end + CLOSE.len()]),
        }
        rest = &body[end + CLOSE.len()..];
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn interval_literals_read_as_sql() {
        assert_eq!(
            super::tidy(
                "b.ts >= m.wend - IntervalMonthDayNano(\"IntervalMonthDayNano { months: 0, days: 0, \
                 nanoseconds: 10000000000 }\") AND count(Int64(1)) > 1"
            ),
            "b.ts >= m.wend - INTERVAL '10s' AND count(*) > 1"
        );
        let months =
            "IntervalMonthDayNano(\"IntervalMonthDayNano { months: 1, days: 0, nanoseconds: 0 }\")";
        assert_eq!(super::tidy(months), months);
    }
}
