//! A continuous query as a dataflow graph: nodes with n inputs, each with a
//! stable id, its output schema and its changelog kind. The last node is the
//! query's output (what the sink or view receives).
//!
//! Ids are given in the order lowering creates nodes, which depends only on
//! the query and the catalog, so the same query gets the same ids on every
//! start: operator state is checkpointed and restored by them.

use std::fmt;

use datafusion::arrow::datatypes::SchemaRef;

use super::aggregate::AggregateNode;
use super::join::JoinNode;
use super::session::SessionRowsNode;
use super::source::SourceNode;
use super::stateless::StatelessNode;
use super::union::UnionNode;
use crate::error::{Result, SluiceError};

/// A node's id, unique within its query's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a node's output rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changelog {
    /// Only inserts.
    AppendOnly,
    /// Rows carry an op (insert, update, delete); `key` are the columns
    /// that identify a row (empty: whole rows, a multiset).
    Updating { key: Vec<usize> },
}

impl Changelog {
    pub fn is_updating(&self) -> bool {
        matches!(self, Changelog::Updating { .. })
    }
}

/// What a node does.
#[derive(Debug)]
pub enum NodeKind {
    Source(SourceNode),
    Stateless(StatelessNode),
    SessionRows(SessionRowsNode),
    Aggregate(AggregateNode),
    Union(UnionNode),
    Join(Box<JoinNode>),
}

#[derive(Debug)]
pub struct PlanNode {
    pub id: NodeId,
    pub inputs: Vec<NodeId>,
    pub schema: SchemaRef,
    pub changelog: Changelog,
    pub kind: NodeKind,
}

impl PlanNode {
    /// The node as EXPLAIN titles it.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Source(_) => "source",
            NodeKind::Stateless(_) => "filter/project",
            NodeKind::SessionRows(_) => "session rows",
            NodeKind::Aggregate(a) => a.name(),
            NodeKind::Union(_) => "union",
            NodeKind::Join(_) => "join",
        }
    }

    /// Whether it holds state between batches that a restart must rebuild
    /// or restore.
    pub fn is_stateful(&self) -> bool {
        match &self.kind {
            NodeKind::Aggregate(_) | NodeKind::SessionRows(_) | NodeKind::Join(_) => true,
            NodeKind::Stateless(s) => s.assigns_session_windows(),
            NodeKind::Source(_) | NodeKind::Union(_) => false,
        }
    }
}

/// The nodes of a query, inputs before the nodes that read them; the last
/// one is the output.
#[derive(Debug, Default)]
pub struct PlanGraph {
    nodes: Vec<PlanNode>,
}

impl PlanGraph {
    /// Adds a node reading `inputs`; returns its id.
    pub fn add(
        &mut self,
        inputs: Vec<NodeId>,
        schema: SchemaRef,
        changelog: Changelog,
        kind: NodeKind,
    ) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(PlanNode {
            id,
            inputs,
            schema,
            changelog,
            kind,
        });
        id
    }

    pub fn nodes(&self) -> &[PlanNode] {
        &self.nodes
    }

    pub fn nodes_mut(&mut self) -> &mut [PlanNode] {
        &mut self.nodes
    }

    pub fn node(&self, id: NodeId) -> Result<&PlanNode> {
        self.nodes
            .get(id.0 as usize)
            .ok_or_else(|| SluiceError::Internal(format!("plan has no node {id}")))
    }

    pub fn node_mut(&mut self, id: NodeId) -> Result<&mut PlanNode> {
        self.nodes
            .get_mut(id.0 as usize)
            .ok_or_else(|| SluiceError::Internal(format!("plan has no node {id}")))
    }

    /// The node whose output the query returns.
    pub fn output(&self) -> Result<&PlanNode> {
        self.nodes
            .last()
            .ok_or_else(|| SluiceError::Internal("empty plan".into()))
    }

    /// The source nodes, in the order their ids were given.
    pub fn sources(&self) -> impl Iterator<Item = (&PlanNode, &SourceNode)> {
        self.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Source(s) => Some((n, s)),
            _ => None,
        })
    }

    /// The nodes that read `id` (with the input position they read it at).
    pub fn readers(&self, id: NodeId) -> impl Iterator<Item = (&PlanNode, usize)> {
        self.nodes
            .iter()
            .filter_map(move |n| n.inputs.iter().position(|&i| i == id).map(|port| (n, port)))
    }

    /// The aggregate, when the query has one.
    pub fn aggregate(&self) -> Option<&AggregateNode> {
        self.nodes.iter().find_map(|n| match &n.kind {
            NodeKind::Aggregate(a) => Some(a),
            _ => None,
        })
    }

    pub fn aggregate_mut(&mut self) -> Option<&mut AggregateNode> {
        self.nodes.iter_mut().find_map(|n| match &mut n.kind {
            NodeKind::Aggregate(a) => Some(a),
            _ => None,
        })
    }
}
