//! Exchange: where a plan is split across cores. The rows entering a keyed
//! node (an aggregate grouped by something other than its window) are
//! hash-partitioned by its group key, so that each of the pipeline's
//! instances of that node and the nodes after it sees every row of its own
//! groups and no other's; a merge gathers their outputs for the sink.
//!
//! A plan has at most one exchange: before its aggregate, when the
//! aggregate keeps its state per key (a changelog aggregate, or a TUMBLE or
//! HOP aggregate with a key beside the window) and the nodes after it form
//! a chain. A global aggregate or one grouped by its window alone has no key
//! to split by and runs as one instance; session windows are not split yet.

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;

use super::graph::{NodeKind, PlanGraph};
use super::{expr_text, NodeId, WindowKind};

/// The node whose input is hash-partitioned, and the expressions (over
/// that input) whose values choose the partition.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The first node of the part that runs as several instances.
    pub node: NodeId,
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
}

impl Exchange {
    /// The plan's exchange point, if it has one.
    pub fn of(graph: &PlanGraph) -> Option<Exchange> {
        let mut aggregates = graph.nodes().iter().filter_map(|n| match &n.kind {
            NodeKind::Aggregate(a) => Some((n, a)),
            _ => None,
        });
        let (node, agg) = aggregates.next()?;
        if aggregates.next().is_some() || node.inputs.len() != 1 {
            return None;
        }
        // Sessions keep rows per key before their aggregate: not split yet.
        let sessions = graph.nodes().iter().any(|n| match &n.kind {
            NodeKind::SessionRows(_) => true,
            NodeKind::Stateless(s) => s.assigns_session_windows(),
            _ => false,
        });
        if sessions {
            return None;
        }
        let window = match agg.agg.window {
            Some(w) if matches!(w.kind, WindowKind::Session { .. }) => return None,
            Some(w) => Some((w.start, w.end)),
            None => None,
        };
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
        // What follows the aggregate is a chain to the output, each node
        // read by one other: every instance runs it whole.
        let mut at = node.id;
        loop {
            let mut readers = graph.readers(at);
            match (readers.next(), readers.next()) {
                (None, _) => break,
                (Some((r, _)), None) if r.inputs.len() == 1 => at = r.id,
                _ => return None,
            }
        }
        Some(Exchange {
            node: node.id,
            keys,
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
        let keys: Vec<String> = self.keys.iter().map(|e| expr_text(e.as_ref())).collect();
        format!(
            "hash by {}; the operators above run as one instance per core of the pipeline's \
             parallelism",
            keys.join(", ")
        )
    }
}
