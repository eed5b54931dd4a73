//! DataFusion logical plan → [`StreamPlan`]: node by node into a dataflow
//! graph. Each input is a source with its chain of stateless stages;
//! `UNION ALL` merges inputs, a join matches two; an aggregate may follow
//! each. Anything else is reported as not supported, naming the construct.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};

use super::aggregate::AggregateNode;
use super::graph::{Changelog, NodeId, NodeKind, PlanGraph};
use super::join::JoinNode;
use super::session::SessionRowsNode;
use super::source::SourceNode;
use super::stateless::StatelessNode;
use super::union::UnionNode;
use super::window::{WindowKind, WindowTable};
use super::{AggregateCall, AggregatePlan, Stage, StreamPlan, WindowGrouping};
use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};
use datafusion::datasource::source_as_provider;

/// Where the window's start and end columns are in the current rows, while
/// projections keep them.
pub(super) type WindowColumns = Option<(WindowKind, Option<usize>, Option<usize>)>;

/// Where a lowered subtree's rows come from.
pub(super) enum From {
    /// A relation of the catalog.
    Source(String),
    /// `UNION ALL` of its inputs, under the union's columns.
    Union {
        inputs: Vec<Lowered>,
        schema: SchemaRef,
    },
    /// A join of two inputs; `schema` is the joined rows'.
    Join {
        inputs: Box<[Lowered; 2]>,
        join: Box<JoinNode>,
        schema: SchemaRef,
    },
}

/// What lowering a subtree produced: where its rows come from, the
/// stateless stages on them, and the aggregate over them (with the stages
/// after it).
pub(super) struct Lowered {
    pub(super) from: From,
    /// Stages on the rows before any aggregate.
    pub(super) stages: Vec<Stage>,
    pub(super) aggregate: Option<AggregatePlan>,
    pub(super) window: WindowColumns,
}

impl Lowered {
    fn push(&mut self, stage: Stage) {
        match &mut self.aggregate {
            Some(agg) => agg.post.push(stage),
            None => self.stages.push(stage),
        }
    }

    /// The relations it reads, in the order their source nodes get ids.
    pub(super) fn sources(&self) -> Vec<&str> {
        match &self.from {
            From::Source(name) => vec![name.as_str()],
            From::Union { inputs, .. } => inputs.iter().flat_map(Lowered::sources).collect(),
            From::Join { inputs, .. } => inputs.iter().flat_map(Lowered::sources).collect(),
        }
    }

    /// Whether its rows (before its aggregate) are updated: an updating
    /// relation or aggregate feeds it.
    pub(super) fn rows_updating(&self, catalog: &Catalog) -> bool {
        match &self.from {
            From::Source(name) => catalog
                .relation(name)
                .is_some_and(|r| r.changelog.is_some()),
            From::Union { inputs, .. } => inputs.iter().any(|i| i.updating(catalog)),
            From::Join { inputs, join, .. } => match join.lookup {
                // Only the stream's changes reach the output.
                Some(looked_up) => inputs[1 - looked_up].updating(catalog),
                None => join.retracts() || inputs.iter().any(|i| i.updating(catalog)),
            },
        }
    }

    /// Whether its output is updated.
    pub(super) fn updating(&self, catalog: &Catalog) -> bool {
        match &self.aggregate {
            Some(agg) => agg.window.is_none(),
            None => self.rows_updating(catalog),
        }
    }

    /// The first updating relation it reads.
    fn updating_source<'a>(&'a self, catalog: &Catalog) -> Option<&'a str> {
        self.sources().into_iter().find(|name| {
            catalog
                .relation(name)
                .is_some_and(|r| r.changelog.is_some())
        })
    }

    /// Its rows' event times: columns, each with a shift (ms) to add, whose
    /// sum no row still to come is behind the watermark by: its source's
    /// `WATERMARK FOR` column, while filters, projections and window
    /// assignment keep it; a TUMBLE or HOP window's end (or start plus its
    /// size), of the rows it assigns or of the aggregate over them.
    pub(super) fn event_times(&self, catalog: &Catalog) -> Vec<(usize, i64)> {
        let mut times = Vec::new();
        let shift = |kind: WindowKind| match kind {
            WindowKind::Tumble { size } | WindowKind::Hop { size, .. } => Some(size),
            WindowKind::Session { .. } => None,
        };
        if let Some(agg) = &self.aggregate {
            let Some(w) = agg.window else {
                return times;
            };
            let Some(size) = shift(w.kind) else {
                return times;
            };
            for (column, s) in [(w.end, 0), (w.start, size)] {
                if let Some(at) = follow(column, &agg.post) {
                    times.push((at, s));
                }
            }
            return times;
        }
        if let Some((kind, start, end)) = self.window {
            if let Some(size) = shift(kind) {
                times.extend(end.map(|e| (e, 0)));
                times.extend(start.map(|s| (s, size)));
            }
        }
        let From::Source(name) = &self.from else {
            return times;
        };
        let source = catalog.event_time(name).and_then(|column| {
            let at = catalog.relation(name)?.schema.index_of(&column).ok()?;
            follow(at, &self.stages)
        });
        times.extend(source.map(|at| (at, 0)));
        times
    }

    /// Whether one of its stages assigns a window.
    fn assigns_window(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Stage::Window { .. }))
    }
}

pub fn lower(
    plan: &LogicalPlan,
    catalog: &Catalog,
    versioned: &[super::temporal::Versioned],
) -> Result<StreamPlan> {
    let props = ExecutionProps::new();
    let planning = PhysicalPlanningContext::default();
    let lowered = lower_node(plan, catalog, &props, &planning, versioned)?;
    let output_schema = Arc::new(plan.schema().as_arrow().clone());
    check(&lowered, catalog, false)?;
    let (changelog, key_columns) = match &lowered.aggregate {
        // A windowed aggregate emits each window once: append-only.
        Some(agg) if agg.window.is_some() => (false, vec![]),
        Some(agg) => (true, key_columns(agg)),
        None if !lowered.rows_updating(catalog) => (false, vec![]),
        // Rows of an updating input pass through with their ops, keyed by
        // the input's key where the query keeps it. Rows of several inputs
        // are told apart by whole rows.
        None => match &lowered.from {
            From::Source(name) => {
                let keys = catalog
                    .relation(name)
                    .and_then(|r| r.changelog.clone())
                    .unwrap_or_default();
                (true, keys_through(&keys, &lowered.stages))
            }
            _ => (true, vec![]),
        },
    };
    let mut graph = PlanGraph::default();
    let (last, schema, _) = build(&mut graph, lowered, catalog, true)?;
    if schema.fields().len() != output_schema.fields().len() {
        return Err(SluiceError::Internal(format!(
            "the plan's last node {last} has {} columns, its query {}",
            schema.fields().len(),
            output_schema.fields().len()
        )));
    }
    Ok(StreamPlan {
        graph,
        output_schema,
        changelog,
        key_columns,
        logical: plan.display_indent().to_string(),
        allowed_lateness: 0,
    })
}

/// Refuses what an updating input cannot feed: a window (assigned on its
/// rows, or grouped by above them: `windowed`), and an aggregate that
/// cannot take back a row it has counted.
fn check(lowered: &Lowered, catalog: &Catalog, windowed: bool) -> Result<()> {
    let windowed = windowed
        || lowered
            .aggregate
            .as_ref()
            .is_some_and(|a| a.window.is_some());
    match &lowered.from {
        From::Source(name) => {
            let updating = catalog
                .relation(name)
                .is_some_and(|r| r.changelog.is_some());
            if updating && (windowed || lowered.assigns_window()) {
                return Err(SluiceError::NotSupported(format!(
                    "windows over '{name}', whose rows are updated (it is an aggregate without a \
                     window); window the source it reads instead"
                )));
            }
        }
        From::Union { inputs, .. } => {
            for input in inputs {
                check(input, catalog, windowed)?;
            }
        }
        From::Join { inputs, .. } => {
            for input in inputs.iter() {
                check(input, catalog, false)?;
            }
        }
    }
    let Some(agg) = &lowered.aggregate else {
        return Ok(());
    };
    if !lowered.rows_updating(catalog) {
        return Ok(());
    }
    let source = lowered
        .updating_source(catalog)
        .unwrap_or("an outer join")
        .to_string();
    for call in &agg.calls {
        let name = call.func.fun().name().to_ascii_lowercase();
        if call.func.is_distinct() || !RETRACTABLE.contains(&name.as_str()) {
            return Err(SluiceError::NotSupported(format!(
                "{}{}() over '{}', whose rows are updated: it cannot take back a row it \
                 has counted; over an updating view use {}",
                name,
                if call.func.is_distinct() {
                    " DISTINCT"
                } else {
                    ""
                },
                source,
                RETRACTABLE.join(", ")
            )));
        }
    }
    Ok(())
}

/// Adds the nodes of `lowered` to `graph`, inputs first: its sources and
/// the stages on their rows, the union or join where they meet, the stages
/// after it and its aggregate. `split_sessions`: rows of a SESSION window
/// wait for their session to close (no aggregate groups them by it).
/// Returns its last node, with that node's schema and changelog.
fn build(
    graph: &mut PlanGraph,
    lowered: Lowered,
    catalog: &Catalog,
    split_sessions: bool,
) -> Result<(NodeId, SchemaRef, Changelog)> {
    let grouped_session = lowered
        .aggregate
        .as_ref()
        .and_then(|a| a.window)
        .is_some_and(|w| matches!(w.kind, WindowKind::Session { .. }));
    let split_sessions = split_sessions && !grouped_session;
    let (last, schema, changelog, split) = match lowered.from {
        From::Source(name) => {
            let Some(relation) = catalog.relation(&name) else {
                return Err(catalog.unknown_relation(&name));
            };
            let changelog = match relation.changelog.clone() {
                None => Changelog::AppendOnly,
                Some(key) => Changelog::Updating { key },
            };
            let schema = relation.schema.clone();
            let id = graph.add(
                vec![],
                schema.clone(),
                changelog.clone(),
                NodeKind::Source(SourceNode { name }),
            );
            (id, schema, changelog, split_sessions)
        }
        From::Union { inputs, schema } => {
            let mut ends = Vec::new();
            let mut updating = false;
            for input in inputs {
                let (end, _, changelog) = build(graph, input, catalog, split_sessions)?;
                updating |= changelog.is_updating();
                ends.push(end);
            }
            // DataFusion casts the inputs to the union's types; its rows go
            // on under the union's column names.
            let changelog = if updating {
                Changelog::Updating { key: vec![] }
            } else {
                Changelog::AppendOnly
            };
            let id = graph.add(
                ends,
                schema.clone(),
                changelog.clone(),
                NodeKind::Union(UnionNode),
            );
            (id, schema, changelog, false)
        }
        From::Join {
            inputs,
            join,
            schema,
        } => {
            let [left, right] = *inputs;
            let (l, _, lc) = build(graph, left, catalog, true)?;
            let (r, _, rc) = build(graph, right, catalog, true)?;
            // The join takes back rows by their whole value.
            for input in [l, r] {
                if let NodeKind::Aggregate(a) = &mut graph.node_mut(input)?.kind {
                    a.old_rows = true;
                }
            }
            let updating = match join.lookup {
                Some(0) => rc.is_updating(),
                Some(_) => lc.is_updating(),
                None => lc.is_updating() || rc.is_updating() || join.retracts(),
            };
            let changelog = if updating {
                Changelog::Updating { key: vec![] }
            } else {
                Changelog::AppendOnly
            };
            let id = graph.add(
                vec![l, r],
                schema.clone(),
                changelog.clone(),
                NodeKind::Join(join),
            );
            (id, schema, changelog, false)
        }
    };
    let (mut last, mut schema) = (last, schema);
    if !lowered.stages.is_empty() {
        (last, schema) = chain(graph, last, schema, &changelog, lowered.stages, split);
    }
    let Some(agg) = lowered.aggregate else {
        let changelog = graph.node(last)?.changelog.clone();
        return Ok((last, schema, changelog));
    };
    let retracting = changelog.is_updating();
    let changelog = if agg.window.is_some() {
        Changelog::AppendOnly
    } else {
        Changelog::Updating {
            key: key_columns(&agg),
        }
    };
    let schema = agg.post_schema();
    let id = graph.add(
        vec![last],
        schema.clone(),
        changelog.clone(),
        NodeKind::Aggregate(AggregateNode {
            agg: Arc::new(agg),
            retracting,
            old_rows: false,
        }),
    );
    Ok((id, schema, changelog))
}

/// Nodes for a chain of stateless stages after `input`: one stateless node,
/// split around a SESSION window whose rows wait for their session to close
/// (`split_sessions`). Returns the last node and its schema.
fn chain(
    graph: &mut PlanGraph,
    input: NodeId,
    mut schema: SchemaRef,
    changelog: &Changelog,
    stages: Vec<Stage>,
    split_sessions: bool,
) -> (NodeId, SchemaRef) {
    let mut last = input;
    let mut run: Vec<Stage> = Vec::new();
    let kind_of = |run: &[Stage]| match changelog {
        // Rows keep their ops; keys are followed through projections by the
        // plan's output keys, not per node.
        Changelog::Updating { .. } if !run.is_empty() => Changelog::Updating { key: vec![] },
        other => other.clone(),
    };
    for stage in stages {
        let session = match &stage {
            Stage::Window {
                kind: WindowKind::Session { gap },
                ..
            } if split_sessions => Some(*gap),
            _ => None,
        };
        if let Some(s) = stage_schema(&stage) {
            schema = s;
        }
        run.push(stage);
        if let Some(gap) = session {
            let c = kind_of(&run);
            last = graph.add(
                vec![last],
                schema.clone(),
                c,
                NodeKind::Stateless(StatelessNode {
                    stages: Arc::new(std::mem::take(&mut run)),
                }),
            );
            let width = schema.fields().len();
            last = graph.add(
                vec![last],
                schema.clone(),
                Changelog::AppendOnly,
                NodeKind::SessionRows(SessionRowsNode {
                    gap,
                    start: width - 2,
                    end: width - 1,
                }),
            );
        }
    }
    if !run.is_empty() {
        let c = kind_of(&run);
        last = graph.add(
            vec![last],
            schema.clone(),
            c,
            NodeKind::Stateless(StatelessNode {
                stages: Arc::new(run),
            }),
        );
    }
    (last, schema)
}

fn stage_schema(stage: &Stage) -> Option<SchemaRef> {
    match stage {
        Stage::Window { schema, .. } | Stage::Project { schema, .. } => Some(schema.clone()),
        Stage::Filter(_) => None,
    }
}

/// Where column `at` is after `stages`, while they keep it as it is.
fn follow(mut at: usize, stages: &[Stage]) -> Option<usize> {
    for stage in stages {
        match stage {
            Stage::Filter(_) => {}
            Stage::Project { exprs, .. } => {
                at = exprs
                    .iter()
                    .position(|e| e.downcast_ref::<Column>().is_some_and(|c| c.index() == at))?
            }
            Stage::Window { keep, .. } => {
                if let Some(keep) = keep {
                    at = keep.iter().position(|&k| k == at)?;
                }
            }
        }
    }
    Some(at)
}

/// Aggregates whose value does not depend on the order rows arrive and
/// leave in, so an updating input can take rows back.
const RETRACTABLE: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "var",
    "var_samp",
    "var_pop",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "percentile_disc",
    "mode",
];

/// Where an input's key columns end up after stateless stages; empty when a
/// projection drops or computes over one of them.
fn keys_through(keys: &[usize], stages: &[Stage]) -> Vec<usize> {
    let mut keys = keys.to_vec();
    for stage in stages {
        if let Stage::Project { exprs, .. } = stage {
            let mapped: Vec<usize> = keys
                .iter()
                .filter_map(|k| {
                    exprs
                        .iter()
                        .position(|e| e.downcast_ref::<Column>().is_some_and(|c| c.index() == *k))
                })
                .collect();
            if mapped.len() != keys.len() {
                return vec![];
            }
            keys = mapped;
        }
    }
    keys
}

/// The output columns that carry group keys unchanged.
pub(crate) fn key_columns(agg: &AggregatePlan) -> Vec<usize> {
    let mut keys: Vec<usize> = (0..agg.group_exprs.len()).collect();
    for stage in &agg.post {
        if let Stage::Project { exprs, .. } = stage {
            keys = exprs
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    e.downcast_ref::<Column>()
                        .filter(|c| keys.contains(&c.index()))
                        .map(|_| i)
                })
                .collect();
        }
    }
    keys
}

pub(super) fn physical(
    e: &Expr,
    schema: &DFSchema,
    props: &ExecutionProps,
    planning: &PhysicalPlanningContext,
) -> Result<Arc<dyn PhysicalExpr>> {
    Ok(create_physical_expr(e, schema, props, planning)?)
}

pub(super) fn not_supported(what: &str) -> SluiceError {
    SluiceError::NotSupported(format!("{what} in a continuous query"))
}

pub(super) fn lower_node(
    plan: &LogicalPlan,
    catalog: &Catalog,
    props: &ExecutionProps,
    planning: &PhysicalPlanningContext,
    versioned: &[super::temporal::Versioned],
) -> Result<Lowered> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            let window_table = provider.downcast_ref::<WindowTable>();
            let name = match window_table {
                Some(w) => w.source.clone(),
                None => scan.table_name.table().to_string(),
            };
            let Some(source) = catalog.relation(&name) else {
                return Err(catalog.unknown_relation(&name));
            };
            if !scan.filters.is_empty() || scan.fetch.is_some() {
                return Err(SluiceError::Internal(format!(
                    "scan of '{name}' has pushed-down filters or limits"
                )));
            }
            let mut lowered = Lowered {
                from: From::Source(name),
                stages: vec![],
                aggregate: None,
                window: None,
            };
            let projection = scan.projection.as_ref().filter(|p| {
                p.len() != scan.source.schema().fields().len()
                    || p.iter().enumerate().any(|(a, b)| a != *b)
            });
            // TUMBLE and HOP produce only the columns the scan projects.
            // (Rows of sessions not grouped by their window wait for their
            // session to close with every column and its bounds last; those
            // keep the projection as its own stage.)
            let mut folded = false;
            if let Some(w) = window_table {
                let n = source.schema.fields().len();
                lowered.window = Some((w.kind, Some(n), Some(n + 1)));
                let keep = projection.filter(|_| !matches!(w.kind, WindowKind::Session { .. }));
                folded = keep.is_some();
                lowered.push(Stage::Window {
                    kind: w.kind,
                    time_column: w.time_column,
                    keep: keep.cloned(),
                    all: provider.schema(),
                    schema: match keep {
                        Some(_) => Arc::new(scan.projected_schema.as_arrow().clone()),
                        None => provider.schema(),
                    },
                });
            }
            if let Some(projection) = projection {
                lowered.window = lowered.window.map(|(k, start, end)| {
                    let find = |idx: Option<usize>| projection.iter().position(|&i| Some(i) == idx);
                    (k, find(start), find(end))
                });
                if !folded {
                    let source_schema = scan.source.schema();
                    let exprs = projection
                        .iter()
                        .map(|&i| {
                            Arc::new(Column::new(source_schema.field(i).name(), i))
                                as Arc<dyn PhysicalExpr>
                        })
                        .collect::<Vec<_>>();
                    lowered.push(Stage::Project {
                        exprs,
                        schema: Arc::new(scan.projected_schema.as_arrow().clone()),
                    });
                }
            }
            Ok(lowered)
        }
        LogicalPlan::Filter(f) => {
            let mut lowered = lower_node(&f.input, catalog, props, planning, versioned)?;
            lowered.push(Stage::Filter(physical(
                &f.predicate,
                f.input.schema(),
                props,
                planning,
            )?));
            Ok(lowered)
        }
        LogicalPlan::Projection(p) => {
            let mut lowered = lower_node(&p.input, catalog, props, planning, versioned)?;
            let exprs = p
                .expr
                .iter()
                .map(|e| physical(e, p.input.schema(), props, planning))
                .collect::<Result<Vec<_>>>()?;
            if lowered.aggregate.is_none() {
                lowered.window = lowered.window.map(|(k, start, end)| {
                    let find = |idx: Option<usize>| {
                        exprs.iter().position(|e| {
                            e.downcast_ref::<Column>()
                                .is_some_and(|c| Some(c.index()) == idx)
                        })
                    };
                    (k, find(start), find(end))
                });
            }
            lowered.push(Stage::Project {
                exprs,
                schema: Arc::new(p.schema.as_arrow().clone()),
            });
            Ok(lowered)
        }
        LogicalPlan::SubqueryAlias(s) => lower_node(&s.input, catalog, props, planning, versioned),
        LogicalPlan::Aggregate(a) => {
            let mut lowered = lower_node(&a.input, catalog, props, planning, versioned)?;
            if lowered.aggregate.is_some() {
                return Err(not_supported(
                    "an aggregate over the result of another aggregate",
                ));
            }
            if a.group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
            {
                return Err(not_supported("GROUPING SETS, CUBE and ROLLUP"));
            }
            let input_schema = a.input.schema();
            let physical_input: &Schema = input_schema.as_arrow();
            let group_exprs = a
                .group_expr
                .iter()
                .map(|e| physical(e, input_schema, props, planning))
                .collect::<Result<Vec<_>>>()?;
            let schema = Arc::new(a.schema.as_arrow().clone());
            let group_schema = Arc::new(Schema::new(schema.fields()[..group_exprs.len()].to_vec()));
            let mut calls = Vec::new();
            for e in &a.aggr_expr {
                let lowered_agg =
                    LoweredAggregateBuilder::new(e, input_schema, physical_input, props, planning)
                        .build()?;
                let func = lowered_agg.aggregate;
                // Arguments an aggregate fixes when it starts (a literal
                // percentile, string_agg's delimiter) are checked now, not
                // when the first row arrives and the pipeline fails.
                func.create_accumulator().map_err(|e| {
                    SluiceError::Plan(format!(
                        "{}: {}",
                        super::tidy(func.name()),
                        e.strip_backtrace()
                    ))
                })?;
                let mut args = func.expressions();
                args.extend(lowered_agg.order_bys.iter().map(|s| Arc::clone(&s.expr)));
                calls.push(AggregateCall {
                    func,
                    args,
                    filter: lowered_agg.filter,
                });
            }
            let window = match lowered.window {
                None => None,
                Some((kind, start, end)) => {
                    let find = |idx: Option<usize>| {
                        group_exprs.iter().position(|e| {
                            e.downcast_ref::<Column>()
                                .is_some_and(|c| Some(c.index()) == idx)
                        })
                    };
                    let uses =
                        |name: &str| a.group_expr.iter().any(|e| e.to_string().ends_with(name));
                    match (find(start), find(end)) {
                        (Some(start), Some(end)) => Some(WindowGrouping { kind, start, end }),
                        (None, None) if !uses(super::WINDOW_START) && !uses(super::WINDOW_END) => None,
                        _ => {
                            return Err(SluiceError::Plan(format!(
                                "GROUP BY over a {} window must include both window_start and window_end",
                                kind.name()
                            )))
                        }
                    }
                }
            };
            lowered.aggregate = Some(AggregatePlan {
                group_exprs,
                group_schema,
                calls,
                schema,
                post: vec![],
                window,
            });
            Ok(lowered)
        }
        LogicalPlan::Sort(_) => Err(not_supported(
            "ORDER BY (a stream never ends, so it cannot be sorted)",
        )),
        LogicalPlan::Limit(_) => Err(not_supported("LIMIT / OFFSET")),
        LogicalPlan::Join(j) => {
            super::lower_join::lower_join(j, catalog, props, planning, versioned)
        }
        LogicalPlan::Union(u) => {
            let mut inputs = Vec::new();
            let mut windows = Vec::new();
            for input in &u.inputs {
                let lowered = lower_node(input, catalog, props, planning, versioned)?;
                if lowered.aggregate.is_some() {
                    return Err(not_supported(
                        "UNION ALL of aggregates (aggregate the union instead)",
                    ));
                }
                windows.push(lowered.window);
                // A union of a union: its inputs join this one, unless
                // something runs on the inner union's rows.
                match lowered {
                    Lowered {
                        from: From::Union { inputs: inner, .. },
                        stages,
                        ..
                    } if stages.is_empty() => inputs.extend(inner),
                    other => inputs.push(other),
                }
            }
            // The union keeps window columns only where every input has
            // them in the same place.
            let window = match windows.split_first() {
                Some((first, rest)) if rest.iter().all(|w| w == first) => *first,
                _ => None,
            };
            Ok(Lowered {
                from: From::Union {
                    inputs,
                    schema: Arc::new(u.schema.as_arrow().clone()),
                },
                stages: vec![],
                aggregate: None,
                window,
            })
        }
        LogicalPlan::Window(_) => Err(not_supported(
            "window functions with OVER (not implemented yet)",
        )),
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Err(SluiceError::Plan(
            "a continuous query must read a source: add FROM <source>".into(),
        )),
        LogicalPlan::Distinct(_) => Err(not_supported("DISTINCT ON")),
        LogicalPlan::Subquery(_) => Err(not_supported("subqueries")),
        other => Err(not_supported(&format!(
            "this kind of query ({})",
            other
                .display()
                .to_string()
                .split(':')
                .next()
                .unwrap_or("plan")
        ))),
    }
}
