//! Exchange: where a plan is split across cores. The rows entering a keyed
//! node (an aggregate grouped by something other than its window) are
//! hash-partitioned by its group key, so that each of the pipeline's
//! instances of that node and the nodes after it sees every row of its own
//! groups and no other's; a merge gathers their outputs for the sink.
//!
//! A plan has at most one exchange: before its aggregate, when the
//! aggregate keeps its state per key (a changelog aggregate, or a window
//! aggregate — TUMBLE, HOP or SESSION — with a key beside the window) and
//! the nodes after it form a chain. A global aggregate or one grouped by
//! its window alone has no key to split by and runs as one instance; so do
//! session rows without an aggregate.
//!
//! The exchange goes as far up as the key can be followed: through the
//! filters, projections and window assignment between a source and the
//! aggregate (a key column becomes the expression it was projected from),
//! so that they too run in every instance, on the rows of its keys only,
//! and a HOP copies rows after the split, not before it.
//!
//! Otherwise a plan whose one join is followed by a chain without an
//! aggregate is split at the join (aggregates in its inputs, such as the
//! two window aggregates of a window join, run before the exchange): each
//! of its two inputs by its own join keys (equal keys have equal types, so
//! they hash alike), so each instance joins the rows of its keys.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;

use super::graph::{NodeKind, PlanGraph};
use super::stateless::Stage;
use super::{expr_text, NodeId};

/// The node whose inputs are hash-partitioned, and per input the
/// expressions (over that input) whose values choose the partition.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The first node of the part that runs as several instances.
    pub node: NodeId,
    /// Per input of `node` (an aggregate has one, a join two).
    pub inputs: Vec<Vec<Arc<dyn PhysicalExpr>>>,
}

impl Exchange {
    /// The plan's exchange point, if it has one.
    pub fn of(graph: &PlanGraph) -> Option<Exchange> {
        // Session rows (sessions without an aggregate) are not split yet.
        if graph
            .nodes()
            .iter()
            .any(|n| matches!(n.kind, NodeKind::SessionRows(_)))
        {
            return None;
        }
        Self::at_aggregate(graph).or_else(|| Self::at_join(graph))
    }

    /// Before the plan's aggregate, when it has one, keyed, followed by a
    /// chain.
    fn at_aggregate(graph: &PlanGraph) -> Option<Exchange> {
        let mut aggregates = graph.nodes().iter().filter_map(|n| match &n.kind {
            NodeKind::Aggregate(a) => Some((n, a)),
            _ => None,
        });
        let (node, agg) = aggregates.next()?;
        if aggregates.next().is_some() || node.inputs.len() != 1 {
            return None;
        }
        let window = agg.agg.window.map(|w| (w.start, w.end));
        let keys: Vec<_> = agg
            .agg
            .group_exprs
            .iter()
            .enumerate()
            .filter(|(i, _)| window.is_none_or(|(s, e)| *i != s && *i != e))
            .map(|(_, e)| Arc::clone(e))
            .collect();
        if keys.is_empty() {
            return None;
        }
        chain_after(graph, node.id)?;
        // Up through the stateless nodes before it, each read by it alone.
        let mut exchange = Exchange {
            node: node.id,
            inputs: vec![keys],
        };
        loop {
            let above = graph.node(exchange.node).ok()?.inputs[0];
            let above = graph.node(above).ok()?;
            let NodeKind::Stateless(stateless) = &above.kind else {
                break;
            };
            if above.inputs.len() != 1 || graph.readers(above.id).count() != 1 {
                break;
            }
            let Some(keys) = before_stages(&stateless.stages, &exchange.inputs[0]) else {
                break;
            };
            exchange = Exchange {
                node: above.id,
                inputs: vec![keys],
            };
        }
        Some(exchange)
    }

    /// At the plan's one join, when a chain without an aggregate follows
    /// it (aggregates in its inputs run before the exchange).
    fn at_join(graph: &PlanGraph) -> Option<Exchange> {
        let mut joins = graph.nodes().iter().filter_map(|n| match &n.kind {
            NodeKind::Join(j) => Some((n, j)),
            _ => None,
        });
        let (node, join) = joins.next()?;
        if joins.next().is_some() || node.inputs.len() != 2 || join.left_keys.is_empty() {
            return None;
        }
        let after = chain_after(graph, node.id)?;
        let aggregate = |id: &NodeId| {
            graph
                .node(*id)
                .is_ok_and(|n| matches!(n.kind, NodeKind::Aggregate(_)))
        };
        if after.iter().any(aggregate) {
            return None;
        }
        Some(Exchange {
            node: node.id,
            inputs: vec![join.left_keys.clone(), join.right_keys.clone()],
        })
    }

    /// The nodes that run as several instances: the exchange's node and
    /// those after it.
    pub fn part(&self, graph: &PlanGraph) -> Vec<NodeId> {
        let mut part = vec![self.node];
        let mut at = self.node;
        while let Some((r, _)) = graph.readers(at).next() {
            part.push(r.id);
            at = r.id;
        }
        part
    }

    /// As EXPLAIN shows it.
    pub fn describe(&self) -> String {
        let keys = |keys: &[Arc<dyn PhysicalExpr>]| {
            keys.iter()
                .map(|e| expr_text(e.as_ref()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let by = match self.inputs.as_slice() {
            [one] => keys(one),
            [left, right] => format!("{} (left), {} (right)", keys(left), keys(right)),
            more => more.iter().map(|k| keys(k)).collect::<Vec<_>>().join("; "),
        };
        format!(
            "hash by {by}; the operators above run as one instance per core of the pipeline's \
             parallelism"
        )
    }
}

/// The nodes after `node`, when they are a chain to the output, each read
/// by one other (every instance runs it whole); `None` otherwise.
fn chain_after(graph: &PlanGraph, node: NodeId) -> Option<Vec<NodeId>> {
    let mut at = node;
    let mut chain = Vec::new();
    loop {
        let mut readers = graph.readers(at);
        match (readers.next(), readers.next()) {
            (None, _) => return Some(chain),
            (Some((r, _)), None) if r.inputs.len() == 1 => {
                at = r.id;
                chain.push(at);
            }
            _ => return None,
        }
    }
}

/// `keys` (over what `stages` output) as expressions over what they read,
/// when every key can be followed back (not to a window column).
fn before_stages(
    stages: &[Stage],
    keys: &[Arc<dyn PhysicalExpr>],
) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
    let mut keys = keys.to_vec();
    for stage in stages.iter().rev() {
        // What each output column is, over the stage's input (`None`: a
        // window's own column, not followed).
        let source: Vec<Option<Arc<dyn PhysicalExpr>>> = match stage {
            Stage::Filter(_) => continue,
            Stage::Project { exprs, .. } => exprs.iter().cloned().map(Some).collect(),
            Stage::Window { keep, all, .. } => {
                // Its input's columns come first in `all`, then the window's.
                let width = all.fields().len().checked_sub(2)?;
                let produced = keep.clone().unwrap_or_else(|| (0..width + 2).collect());
                produced
                    .into_iter()
                    .map(|i| {
                        (i < width).then(|| -> Arc<dyn PhysicalExpr> {
                            Arc::new(Column::new(all.field(i).name(), i))
                        })
                    })
                    .collect()
            }
        };
        keys = keys
            .iter()
            .map(|k| substitute(k, &source))
            .collect::<Option<Vec<_>>>()?;
    }
    Some(keys)
}

/// `expr` with each column `i` replaced by `source[i]`; `None` when one
/// has no replacement.
fn substitute(
    expr: &Arc<dyn PhysicalExpr>,
    source: &[Option<Arc<dyn PhysicalExpr>>],
) -> Option<Arc<dyn PhysicalExpr>> {
    let mut followed = true;
    let out = Arc::clone(expr)
        .transform(|e| {
            let Some(c) = e.downcast_ref::<Column>() else {
                return Ok(Transformed::no(e));
            };
            match source.get(c.index()).cloned().flatten() {
                Some(s) => Ok(Transformed::yes(s)),
                None => {
                    followed = false;
                    Ok(Transformed::no(e))
                }
            }
        })
        .ok()?
        .data;
    followed.then_some(out)
}
