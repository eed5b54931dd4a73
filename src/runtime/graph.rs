//! A plan's graph as operators, and how one message runs through it.
//!
//! Every operator node of the plan becomes one operator; all of a
//! pipeline's operators run on one task, so a message goes through the
//! graph as plain calls, reaching an operator at the input (port) it
//! arrived on. Input `i` is the plan's `i`-th source node: its
//! messages enter at the node that reads it. A node with several inputs (a
//! union) takes the least of its inputs' watermarks, an input that ended no
//! longer holding it back, and ends when all of them have. Barriers are
//! aligned before they enter (see `pipeline.rs`), so a snapshot of every
//! operator is a consistent cut.
//!
//! Synchronous and free of channels, so oracle tests drive it directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::aggregate::ChangelogAggregate;
use super::join::JoinOperator;
use super::operator::{Measured, Operator};
use super::session::{SessionAggregate, SessionRows};
use super::state::StateSnapshot;
use super::stateless::StatelessOperator;
use super::union::UnionOperator;
use super::window::WindowAggregate;
use crate::error::{Result, SluiceError};
use crate::metrics::{NodeKind, NodeMetrics, PipelineMetrics};
use crate::plan::{self, Exchange, NodeId, PlanNode, SourceNode, StreamPlan, WindowKind};
use crate::stream::{Message, StreamBatch};

/// Where a node's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Input `port` of operator `node` (an index into `OperatorGraph::nodes`).
    Node(usize, usize),
    /// Out of the graph by output `port`: to the sink, or (the part
    /// before an exchange) to input `port` of the exchange's node.
    Output(usize),
}

/// What a node knows of each of its inputs.
#[derive(Debug, Clone, Default)]
struct Port {
    watermark: Option<i64>,
    ended: bool,
}

struct GraphNode {
    id: NodeId,
    /// Which instance of the plan's keyed part it is, of how many.
    instance: Option<(usize, usize)>,
    op: Box<dyn Operator>,
    /// Its stage in the pipeline's figures.
    stage: Arc<NodeMetrics>,
    ports: Vec<Port>,
    /// The watermark it was last given (several inputs: their least).
    watermark: Option<i64>,
    ended: bool,
    target: Target,
}

impl GraphNode {
    /// The key its state is checkpointed under: its id and what it is, so a
    /// checkpoint of another query's operator is never loaded into it.
    fn state_key(&self) -> String {
        state_key(self.id, self.instance, self.op.name())
    }

    /// The watermark all its inputs have passed, when it moved forward.
    fn advance(&mut self) -> Option<i64> {
        advance(&self.ports, &mut self.watermark)
    }
}

/// The watermark all of `ports` have passed (an ended one no longer holds
/// the others back), when it moved past `watermark`.
fn advance(ports: &[Port], watermark: &mut Option<i64>) -> Option<i64> {
    let live: Vec<Option<i64>> = ports
        .iter()
        .filter(|p| !p.ended)
        .map(|p| p.watermark)
        .collect();
    let least = if live.is_empty() {
        ports.iter().filter_map(|p| p.watermark).max()
    } else if live.iter().any(Option::is_none) {
        None
    } else {
        live.into_iter().flatten().min()
    }?;
    if watermark.is_some_and(|w| least <= w) {
        return None;
    }
    *watermark = Some(least);
    Some(least)
}

/// The operators of a plan, wired as its graph.
pub struct OperatorGraph {
    /// In the plan's order: a node's inputs come before it.
    nodes: Vec<GraphNode>,
    /// Where each input (the plan's source nodes, in order) enters.
    entries: Vec<Target>,
    /// Inputs that ended.
    inputs_ended: Vec<bool>,
    /// Its outputs (one, or before a join's exchange one per join input):
    /// their watermarks and ends, and the least watermark they passed.
    outputs: Vec<Port>,
    output_watermark: Option<i64>,
    /// Per output, the stage that feeds it.
    output_stages: Vec<Option<usize>>,
}

/// Which of a plan's nodes a graph runs.
#[derive(Debug, Clone)]
pub enum Part {
    /// All of them.
    Whole,
    /// Those before the exchange (`plan/exchange.rs`): its output is the
    /// exchange's input.
    Before(Exchange),
    /// Instance `index` of `of` of the exchange's node and those after it;
    /// `upstream` is the stage that feeds it (the exchange's).
    Instance {
        exchange: Exchange,
        index: usize,
        of: usize,
        upstream: Option<usize>,
    },
}

impl Part {
    fn runs(&self, plan: &StreamPlan, id: NodeId) -> bool {
        match self {
            Part::Whole => true,
            Part::Before(x) => !x.part(&plan.graph).contains(&id),
            Part::Instance { exchange, .. } => exchange.part(&plan.graph).contains(&id),
        }
    }
}

/// The operators that run `plan` after its sources, each measured as a
/// stage of `metrics`.
pub fn build_operators(
    plan: &Arc<StreamPlan>,
    metrics: &Arc<PipelineMetrics>,
) -> Result<OperatorGraph> {
    OperatorGraph::build(plan, metrics, |_| None)
}

impl OperatorGraph {
    /// Builds the operators of `plan`. `source_stage` gives a source node's
    /// stage for `metrics` (the pipeline knows its connector); the stages
    /// are added in the plan's order, each with its inputs.
    pub fn build(
        plan: &Arc<StreamPlan>,
        metrics: &Arc<PipelineMetrics>,
        source_stage: impl Fn(&SourceNode) -> Option<NodeMetrics>,
    ) -> Result<OperatorGraph> {
        Self::build_part(plan, metrics, &Part::Whole, |n| {
            Stage::New(match &n.kind {
                plan::NodeKind::Source(s) => source_stage(s).map(Box::new),
                _ => None,
            })
        })
    }

    /// Builds the operators of `part` of `plan`. `stage` gives each node's
    /// stage: a new one to add to `metrics` (a source's, which the pipeline
    /// knows; `None` for an operator's, made from it), or one already added
    /// (an instance's, shared with the other instances).
    pub fn build_part(
        plan: &Arc<StreamPlan>,
        metrics: &Arc<PipelineMetrics>,
        part: &Part,
        stage: impl Fn(&PlanNode) -> Stage,
    ) -> Result<OperatorGraph> {
        let graph = &plan.graph;
        let instance = match part {
            Part::Instance { index, of, .. } => Some((*index, *of)),
            _ => None,
        };
        // Plan node index → its stage in `metrics`, and → its operator.
        let mut stage_of: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut operator_of: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut nodes: Vec<GraphNode> = Vec::new();
        if let Part::Instance {
            exchange,
            upstream: Some(upstream),
            ..
        } = part
        {
            for input in &graph.node(exchange.node)?.inputs {
                stage_of.insert(*input, *upstream);
            }
        }
        for node in graph.nodes() {
            if !part.runs(plan, node.id) {
                continue;
            }
            let given = stage(node);
            let stage = match &node.kind {
                plan::NodeKind::Source(_) => match given {
                    Stage::New(s) => s.map(|s| metrics.add_node(*s)),
                    Stage::Shared(s) => Some(s),
                },
                _ => {
                    let op = operator(plan, node, metrics)?;
                    let (stage, new) = match given {
                        Stage::Shared(s) => (s, false),
                        Stage::New(s) => (
                            metrics.add_node(s.map_or_else(
                                || NodeMetrics::new(NodeKind::Operator, op.name(), op.detail()),
                                |s| *s,
                            )),
                            true,
                        ),
                    };
                    operator_of.insert(node.id, nodes.len());
                    let measured = Measured::new(op, Arc::clone(&stage)).instance(instance);
                    nodes.push(GraphNode {
                        id: node.id,
                        instance,
                        op: Box::new(measured),
                        stage: Arc::clone(&stage),
                        ports: vec![Port::default(); node.inputs.len()],
                        watermark: None,
                        ended: false,
                        target: Target::Output(0),
                    });
                    if !new {
                        continue;
                    }
                    Some(stage)
                }
            };
            if let Some(stage) = stage {
                // A split join's two inputs both come from the exchange.
                let mut inputs: Vec<usize> = node
                    .inputs
                    .iter()
                    .filter_map(|i| stage_of.get(i).copied())
                    .collect();
                inputs.dedup();
                stage.set_inputs(inputs);
                stage_of.insert(node.id, metrics.nodes().len() - 1);
            }
        }
        // Wire each node's output to the node that reads it.
        let target_of = |id: NodeId| -> Result<Target> {
            let mut readers = graph.readers(id);
            let target = match readers.next() {
                Some((reader, port)) if !part.runs(plan, reader.id) => Target::Output(port),
                None => Target::Output(0),
                Some((reader, port)) => {
                    let index = operator_of.get(&reader.id).copied().ok_or_else(|| {
                        SluiceError::Internal(format!("node {} reads a source", reader.id))
                    })?;
                    Target::Node(index, port)
                }
            };
            if readers.next().is_some() {
                return Err(SluiceError::NotSupported(format!(
                    "a plan whose node {id} feeds several others"
                )));
            }
            Ok(target)
        };
        for node in &mut nodes {
            node.target = target_of(node.id)?;
        }
        let entries = match part {
            Part::Instance { exchange, .. } => {
                let first = operator_of.get(&exchange.node).copied().ok_or_else(|| {
                    SluiceError::Internal(format!("no operator for node {}", exchange.node))
                })?;
                (0..exchange.inputs.len())
                    .map(|port| Target::Node(first, port))
                    .collect()
            }
            _ => graph
                .sources()
                .map(|(n, _)| target_of(n.id))
                .collect::<Result<Vec<_>>>()?,
        };
        let inputs_ended = vec![false; entries.len()];
        let output_stages = match part {
            Part::Before(exchange) => graph
                .node(exchange.node)?
                .inputs
                .iter()
                .map(|i| stage_of.get(i).copied())
                .collect(),
            _ => vec![nodes.last().and_then(|n| stage_of.get(&n.id).copied())],
        };
        Ok(OperatorGraph {
            nodes,
            entries,
            inputs_ended,
            outputs: vec![Port::default(); output_stages.len()],
            output_watermark: None,
            output_stages,
        })
    }

    /// Merges `n` instances of a plan's keyed part whose rows have
    /// `schema`: the least of their watermarks goes on, and the end once
    /// all have ended. Not measured, and keeps no state.
    pub fn merge(n: usize, schema: datafusion::arrow::datatypes::SchemaRef) -> OperatorGraph {
        let stage = Arc::new(NodeMetrics::new(NodeKind::Operator, "merge", ""));
        OperatorGraph {
            nodes: vec![GraphNode {
                id: NodeId(u32::MAX),
                instance: None,
                op: Box::new(UnionOperator::new(schema)),
                stage,
                ports: vec![Port::default(); n],
                watermark: None,
                ended: false,
                target: Target::Output(0),
            }],
            entries: (0..n).map(|i| Target::Node(0, i)).collect(),
            inputs_ended: vec![false; n],
            outputs: vec![Port::default()],
            output_watermark: None,
            output_stages: vec![None],
        }
    }

    /// The stage of the node that runs last (`None`: no operator).
    pub fn last_stage(&self) -> Option<Arc<NodeMetrics>> {
        self.nodes.last().map(|n| Arc::clone(&n.stage))
    }

    /// The stage input `input` enters at (its channel's depth shows there);
    /// `None` when it goes straight to the output.
    pub fn entry_stage(&self, input: usize) -> Option<Arc<NodeMetrics>> {
        match self.entries.get(input)? {
            Target::Node(n, _) => Some(Arc::clone(&self.nodes[*n].stage)),
            Target::Output(_) => None,
        }
    }

    /// How many outputs it has (before a join's exchange, one per join
    /// input; a batch's `port` says which it left by).
    pub fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Per output, the stage (index in the pipeline's figures) that feeds
    /// it.
    pub fn output_stages(&self) -> &[Option<usize>] {
        &self.output_stages
    }

    /// Its operators, in the plan's order.
    pub fn operators(&self) -> impl Iterator<Item = &Box<dyn Operator>> {
        self.nodes.iter().map(|n| &n.op)
    }

    pub fn operators_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Operator>> {
        self.nodes.iter_mut().map(|n| &mut n.op)
    }

    /// How many inputs (source nodes) it has.
    pub fn inputs(&self) -> usize {
        self.entries.len()
    }

    /// Runs a batch or watermark of input `input` through the graph; output
    /// batches go to `out`. Returns the watermark that reached the output,
    /// when it moved (what the output emitted for it is in `out` first).
    pub fn push_input(
        &mut self,
        input: usize,
        message: Message,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        let target = self.entry(input)?;
        match message {
            Message::Batch(b) => {
                self.send_batch(target, b, out)?;
                Ok(None)
            }
            Message::Watermark(w) => self.send_watermark(target, w, out),
            _ => Ok(None),
        }
    }

    /// Input `input` ended: nodes that read only ended inputs emit what
    /// they hold, through the nodes after them. Returns the watermark that
    /// reached the output, when it moved.
    pub fn end_input(&mut self, input: usize, out: &mut Vec<StreamBatch>) -> Result<Option<i64>> {
        let target = self.entry(input)?;
        if std::mem::replace(&mut self.inputs_ended[input], true) {
            return Ok(None);
        }
        self.send_end(target, out)
    }

    /// Whether every input ended.
    pub fn all_ended(&self) -> bool {
        self.inputs_ended.iter().all(|e| *e)
    }

    /// Whether its output ended (every output, when it has several).
    pub fn output_ended(&self) -> bool {
        self.outputs.iter().all(|p| p.ended)
    }

    /// Which of its outputs ended.
    pub fn outputs_ended(&self) -> Vec<bool> {
        self.outputs.iter().map(|p| p.ended).collect()
    }

    fn entry(&self, input: usize) -> Result<Target> {
        self.entries
            .get(input)
            .copied()
            .ok_or_else(|| SluiceError::Internal(format!("the plan has no input {input}")))
    }

    fn send_batch(
        &mut self,
        target: Target,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        match target {
            Target::Output(port) => {
                if batch.num_rows() > 0 {
                    out.push(StreamBatch { port, ..batch });
                }
                Ok(())
            }
            Target::Node(n, port) => {
                let mut emitted = Vec::new();
                self.nodes[n]
                    .op
                    .process_batch_at(port, batch, &mut emitted)?;
                let next = self.nodes[n].target;
                for b in emitted {
                    self.send_batch(next, b, out)?;
                }
                Ok(())
            }
        }
    }

    fn send_watermark(
        &mut self,
        target: Target,
        w: i64,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        let (n, port) = match target {
            Target::Node(n, port) => (n, port),
            // One output: every watermark goes on.
            Target::Output(_) if self.outputs.len() == 1 => return Ok(Some(w)),
            Target::Output(port) => {
                let p = &mut self.outputs[port];
                p.watermark = p.watermark.max(Some(w));
                return Ok(advance(&self.outputs, &mut self.output_watermark));
            }
        };
        let node = &mut self.nodes[n];
        let w = if node.ports.len() == 1 {
            // One input: every watermark goes on (operators ignore those
            // that do not move theirs).
            node.ports[0].watermark = Some(w);
            node.watermark = Some(w);
            w
        } else {
            node.ports[port].watermark = node.ports[port].watermark.max(Some(w));
            match node.advance() {
                Some(w) => w,
                None => return Ok(None),
            }
        };
        self.watermark_at(n, w, out)
    }

    fn send_end(&mut self, target: Target, out: &mut Vec<StreamBatch>) -> Result<Option<i64>> {
        let (n, port) = match target {
            Target::Node(n, port) => (n, port),
            Target::Output(port) => {
                self.outputs[port].ended = true;
                if self.outputs.len() == 1 || self.output_ended() {
                    return Ok(None);
                }
                // An ended output no longer holds the others' watermark
                // back.
                return Ok(advance(&self.outputs, &mut self.output_watermark));
            }
        };
        let node = &mut self.nodes[n];
        node.ports[port].ended = true;
        if node.ports.iter().all(|p| p.ended) {
            if std::mem::replace(&mut node.ended, true) {
                return Ok(None);
            }
            let mut held = Vec::new();
            node.op.on_end(&mut held)?;
            let next = node.target;
            for b in held {
                self.send_batch(next, b, out)?;
            }
            return self.send_end(next, out);
        }
        let mut held = Vec::new();
        node.op.on_input_end(port, &mut held)?;
        let next = node.target;
        for b in held {
            self.send_batch(next, b, out)?;
        }
        // An ended input no longer holds the others' watermark back.
        let Some(w) = self.nodes[n].advance() else {
            return Ok(None);
        };
        self.watermark_at(n, w, out)
    }

    /// Node `n` moved to watermark `w`: what it emits for it, then the
    /// watermark, go on to the node after it.
    fn watermark_at(
        &mut self,
        n: usize,
        w: i64,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        let mut emitted = Vec::new();
        self.nodes[n].op.on_watermark(w, &mut emitted)?;
        let next = self.nodes[n].target;
        for b in emitted {
            self.send_batch(next, b, out)?;
        }
        self.send_watermark(next, w, out)
    }

    /// Whether an operator holds back changes it has not emitted yet.
    pub fn holds_back(&self) -> bool {
        self.nodes.iter().any(|n| n.op.holds_back())
    }

    /// Each operator in turn emits what it holds back, through the
    /// operators after it.
    pub fn flush(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        for n in 0..self.nodes.len() {
            if !self.nodes[n].op.holds_back() {
                continue;
            }
            let mut held = Vec::new();
            self.nodes[n].op.flush(&mut held)?;
            let next = self.nodes[n].target;
            for b in held {
                self.send_batch(next, b, out)?;
            }
        }
        Ok(())
    }

    /// Every operator's state at a barrier, by node: (key, encoded state or
    /// `None` when it keeps none).
    pub fn snapshot(&mut self) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        self.nodes
            .iter_mut()
            .filter(|n| n.id != NodeId(u32::MAX))
            .map(|n| {
                let state = n.op.snapshot()?.map(|s| s.encode()).transpose()?;
                Ok((n.state_key(), state))
            })
            .collect()
    }

    /// The keys `snapshot` gives, in the same order.
    pub fn state_keys(&self) -> Vec<String> {
        self.nodes.iter().map(GraphNode::state_key).collect()
    }

    /// Loads a checkpoint's states, by node. A state for a node this graph
    /// does not have (or has as another operator) means the checkpoint was
    /// taken by a different query: refused, never misread.
    pub fn restore(
        &mut self,
        name: &str,
        mut states: BTreeMap<String, StateSnapshot>,
    ) -> Result<()> {
        self.restore_own(&mut states)?;
        refuse_leftovers(name, &states)
    }

    /// Loads the states of its own nodes out of `states`.
    pub fn restore_own(&mut self, states: &mut BTreeMap<String, StateSnapshot>) -> Result<()> {
        for node in &mut self.nodes {
            if let Some(state) = states.remove(&node.state_key()) {
                node.op.restore(state)?;
            }
        }
        Ok(())
    }
}

/// A checkpoint's states that no node took: it was taken by another query.
pub fn refuse_leftovers(name: &str, states: &BTreeMap<String, StateSnapshot>) -> Result<()> {
    if let Some(key) = states.keys().next() {
        return Err(SluiceError::StateMismatch(format!(
            "the checkpoint of pipeline '{name}' holds state of operator {key}, which its \
                 plan does not have: it was taken by a different version of the query; delete \
                 the data directory's checkpoints to start it afresh"
        )));
    }
    Ok(())
}

/// How many instances of `nodes` (an exchange's part) a checkpoint's
/// states were taken with: `Some(1)` when it has their state unsplit,
/// `None` when it has none of it.
pub fn instances_in(states: &BTreeMap<String, StateSnapshot>, nodes: &[NodeId]) -> Option<usize> {
    states.keys().find_map(|k| {
        let (id, rest) = k.split_at(k.find([':', '@'])?);
        if !nodes.iter().any(|n| n.to_string() == id) {
            return None;
        }
        if rest.starts_with(':') {
            return Some(1);
        }
        let (_, of) = rest.strip_prefix('@')?.split_once(':')?.0.split_once('/')?;
        of.parse().ok()
    })
}

/// A node's stage in a pipeline's figures.
pub enum Stage {
    /// A new stage (`None`: the operator's own).
    New(Option<Box<NodeMetrics>>),
    /// One already added.
    Shared(Arc<NodeMetrics>),
}

/// The key the state of node `id` (instance `i` of `n`, when its part is
/// split) running `operator` is checkpointed under. One instance of one is
/// the whole plan: a pipeline at parallelism 1 runs no exchange.
pub fn state_key(id: NodeId, instance: Option<(usize, usize)>, operator: &str) -> String {
    match instance {
        Some((i, n)) if n > 1 => format!("{id}@{i}/{n}:{operator}"),
        _ => format!("{id}:{operator}"),
    }
}

/// The operator a plan node runs.
pub(super) fn operator(
    plan: &Arc<StreamPlan>,
    node: &PlanNode,
    metrics: &Arc<PipelineMetrics>,
) -> Result<Box<dyn Operator>> {
    Ok(match &node.kind {
        plan::NodeKind::Source(_) => {
            return Err(SluiceError::Internal(
                "a source node has no operator".into(),
            ))
        }
        plan::NodeKind::Stateless(s) => Box::new(StatelessOperator::new(
            Arc::clone(&s.stages),
            plan.allowed_lateness,
            Arc::clone(metrics),
        )),
        plan::NodeKind::SessionRows(s) => Box::new(SessionRows::new(s.gap, s.start, s.end)),
        plan::NodeKind::Union(_) => Box::new(UnionOperator::new(node.schema.clone())),
        plan::NodeKind::Join(j) => {
            let inputs = [0, 1].map(|i| {
                node.inputs
                    .get(i)
                    .and_then(|id| plan.graph.node(*id).ok())
                    .map(|n| n.schema.clone())
            });
            let [Some(left), Some(right)] = inputs else {
                return Err(SluiceError::Internal(format!(
                    "join {} without two inputs",
                    node.id
                )));
            };
            Box::new(JoinOperator::new(
                (**j).clone(),
                [left, right],
                node.schema.clone(),
                node.changelog.is_updating(),
                Arc::clone(metrics),
            )?)
        }
        plan::NodeKind::Aggregate(a) => match a.agg.window.map(|w| w.kind) {
            None => Box::new(
                ChangelogAggregate::new(
                    Arc::clone(&a.agg),
                    node.schema.clone(),
                    a.retracting,
                    Arc::clone(metrics),
                )?
                .with_old_rows(a.old_rows),
            ),
            Some(WindowKind::Session { .. }) => Box::new(SessionAggregate::new(
                Arc::clone(&a.agg),
                plan.allowed_lateness,
            )?),
            Some(_) => Box::new(WindowAggregate::new(
                Arc::clone(&a.agg),
                plan.allowed_lateness,
                Arc::clone(metrics),
            )?),
        },
    })
}

/// Runs one batch or watermark of a single-input graph through it (tests,
/// benchmarks).
pub fn push(graph: &mut OperatorGraph, message: Message, out: &mut Vec<StreamBatch>) -> Result<()> {
    graph.push_input(0, message, out).map(|_| ())
}

/// End of a single-input graph's input: each operator in turn emits what it
/// holds, through the operators after it.
pub fn finish(graph: &mut OperatorGraph, out: &mut Vec<StreamBatch>) -> Result<()> {
    for i in 0..graph.inputs() {
        graph.end_input(i, out)?;
    }
    Ok(())
}

/// Each operator in turn emits what it holds back.
pub fn flush(graph: &mut OperatorGraph, out: &mut Vec<StreamBatch>) -> Result<()> {
    graph.flush(out)
}
