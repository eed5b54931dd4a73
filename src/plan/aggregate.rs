//! Aggregate node: GROUP BY over an unbounded input. Without a window it
//! emits a changelog per group; grouped by a TUMBLE or HOP window it emits
//! each window once, when the watermark passes its end; grouped by a
//! SESSION window, each session once it closes.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;

use super::stateless::Stage;
use super::{expr_text, tidy, WindowKind};

/// An aggregate over its input; `retracting`: the input is updating, so
/// rows it takes back are subtracted.
#[derive(Debug)]
pub struct AggregateNode {
    pub agg: Arc<AggregatePlan>,
    pub retracting: bool,
    /// Its reader matches whole rows (a join): an update goes out as the
    /// old row, then the new.
    pub old_rows: bool,
}

impl AggregateNode {
    pub fn name(&self) -> &'static str {
        match self.agg.window.map(|w| w.kind) {
            None => "changelog aggregate",
            Some(WindowKind::Session { .. }) => "session aggregate",
            Some(_) => "window aggregate",
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

impl AggregatePlan {
    /// The columns of its rows once the stages after it ran.
    pub fn post_schema(&self) -> SchemaRef {
        self.post
            .iter()
            .rev()
            .find_map(|s| match s {
                Stage::Project { schema, .. } | Stage::Window { schema, .. } => {
                    Some(schema.clone())
                }
                Stage::Filter(_) => None,
            })
            .unwrap_or_else(|| self.schema.clone())
    }

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
