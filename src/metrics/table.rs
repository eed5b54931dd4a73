//! `SHOW PIPELINES` and `sluice.pipelines`: a row per pipeline, then a row
//! per stage of it (source, operators, sink).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Monitor, NodeKind, PipelineState, PipelineStats};
use crate::error::Result;

/// The columns, in order.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let f = |name: &str, t: DataType| Field::new(name, t, true);
    Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, false),
        f("stage", DataType::Int64),
        Field::new("operator", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        f("records_in", DataType::UInt64),
        f("records_out", DataType::UInt64),
        f("bytes_in", DataType::UInt64),
        f("bytes_out", DataType::UInt64),
        f("arrival_rate", DataType::Float64),
        f("arrival_rate_avg", DataType::Float64),
        f("service_rate", DataType::Float64),
        f("service_rate_avg", DataType::Float64),
        f("utilisation", DataType::Float64),
        f("utilisation_avg", DataType::Float64),
        f("backpressure", DataType::Float64),
        f("queue_depth", DataType::UInt64),
        f("watermark", ts.clone()),
        f("watermark_lag_s", DataType::Float64),
        f("backlog", DataType::Int64),
        f("kafka_lag", DataType::Utf8),
        f("late", DataType::UInt64),
        f("evicted", DataType::UInt64),
        f("dead_lettered", DataType::UInt64),
        f("errors", DataType::UInt64),
        f("state_rows", DataType::UInt64),
        f("state_bytes", DataType::UInt64),
        f("state_by_input", DataType::Utf8),
        f("last_checkpoint", ts),
        f("checkpoint_ms", DataType::Float64),
        f("note", DataType::Utf8),
    ]))
}

/// One row's values.
#[derive(Default)]
struct Row {
    pipeline: String,
    stage: Option<i64>,
    operator: String,
    state: String,
    records_in: Option<u64>,
    records_out: Option<u64>,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    arrival: Option<f64>,
    arrival_avg: Option<f64>,
    service: Option<f64>,
    service_avg: Option<f64>,
    utilisation: Option<f64>,
    utilisation_avg: Option<f64>,
    backpressure: Option<f64>,
    queue_depth: Option<u64>,
    watermark: Option<i64>,
    watermark_lag: Option<f64>,
    backlog: Option<i64>,
    kafka_lag: Option<String>,
    late: Option<u64>,
    evicted: Option<u64>,
    dead_lettered: Option<u64>,
    errors: Option<u64>,
    state_rows: Option<u64>,
    state_bytes: Option<u64>,
    state_by_input: Option<String>,
    last_checkpoint: Option<i64>,
    checkpoint_ms: Option<f64>,
    note: Option<String>,
}

/// Rounds a rate or ratio for display (3 significant decimals are plenty).
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn pipeline_row(name: &str, s: &PipelineStats) -> Row {
    let note = match &s.state {
        PipelineState::Failed(_) => Some(s.state.label()),
        _ if s.falling_behind => Some(format!(
            "falling behind: {:.0} records/s arrive, {} handles {:.0}/s",
            s.arrival_10s,
            s.bottleneck().unwrap_or("the slowest stage"),
            s.service_10s.unwrap_or(0.0)
        )),
        _ => None,
    };
    let kafka_lag = (!s.partitions.is_empty()).then(|| {
        s.partitions
            .iter()
            .map(|(p, l)| match l.lag() {
                Some(v) => format!("{p}:{v}"),
                None => format!("{p}:?"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    let state: (u64, u64) = s.nodes.iter().fold((0, 0), |(r, b), n| {
        (
            r + n.node.state_rows.load(std::sync::atomic::Ordering::Relaxed),
            b + n
                .node
                .state_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    });
    Row {
        pipeline: name.to_string(),
        stage: None,
        operator: "pipeline".into(),
        state: s.state.name().into(),
        records_in: Some(s.counters.records_in),
        records_out: Some(s.counters.records_out),
        bytes_in: Some(s.counters.bytes_in),
        bytes_out: Some(s.counters.bytes_out),
        arrival: Some(round(s.arrival_10s)),
        arrival_avg: Some(round(s.arrival_total)),
        service: s.service_10s.map(round),
        service_avg: s.service_total.map(round),
        utilisation: s.utilisation_10s().map(round),
        utilisation_avg: s.utilisation_total().map(round),
        backpressure: s.nodes.first().map(|n| round(n.last_10s.blocked)),
        queue_depth: None,
        watermark: s.watermark,
        watermark_lag: s.watermark_lag().map(|d| round(d.as_secs_f64())),
        backlog: s.backlog,
        kafka_lag,
        late: Some(s.counters.late),
        evicted: Some(s.counters.evicted),
        dead_lettered: Some(s.counters.dead_lettered),
        errors: Some(s.counters.errors),
        state_rows: Some(state.0),
        state_bytes: Some(state.1),
        state_by_input: None,
        last_checkpoint: s.checkpoint.map(|c| c.0),
        checkpoint_ms: s.checkpoint.map(|c| round(c.1)),
        note,
    }
}

fn stage_rows(name: &str, s: &PipelineStats) -> Vec<Row> {
    let load = std::sync::atomic::Ordering::Relaxed;
    s.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let stateful = n.node.kind != NodeKind::Source
                && (n.node.state_rows.load(load) > 0 || n.node.state_bytes.load(load) > 0);
            Row {
                pipeline: name.to_string(),
                stage: Some(i as i64),
                operator: n.node.name.clone(),
                state: n.node.kind.as_str().into(),
                records_in: Some(n.node.records_in.load(load)),
                records_out: Some(n.node.records_out.load(load)),
                bytes_in: Some(n.node.bytes_in.load(load)),
                // Only a sink's are counted: the bytes it sent on.
                bytes_out: (n.node.kind == NodeKind::Sink).then(|| n.node.bytes_out.load(load)),
                arrival: Some(round(n.last_10s.rate)),
                arrival_avg: Some(round(n.since_start.rate)),
                service: n.last_10s.service.map(round),
                service_avg: n.since_start.service.map(round),
                utilisation: Some(round(n.last_10s.busy)),
                utilisation_avg: Some(round(n.since_start.busy)),
                backpressure: (n.node.kind == NodeKind::Source).then(|| round(n.last_10s.blocked)),
                queue_depth: n.queue_depth,
                state_rows: stateful.then(|| n.node.state_rows.load(load)),
                state_bytes: stateful.then(|| n.node.state_bytes.load(load)),
                state_by_input: by_input(&n.node.input_state()),
                note: (!n.node.detail.is_empty()).then(|| n.node.detail.clone()),
                ..Row::default()
            }
        })
        .collect()
}

/// An operator's state per input (a join's sides): `left 120 rows 3.4
/// KiB, right 7 rows 512 B`.
fn by_input(inputs: &[(u64, u64)]) -> Option<String> {
    if inputs.is_empty() {
        return None;
    }
    let name = |i: usize| match inputs.len() {
        2 => super::input_name(2, i),
        n => format!("input {}", super::input_name(n, i)),
    };
    Some(
        inputs
            .iter()
            .enumerate()
            .map(|(i, (rows, bytes))| format!("{} {rows} rows {}", name(i), show_bytes(*bytes)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Every pipeline's figures now.
pub fn pipelines(monitor: &Monitor) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    for p in monitor.pipelines() {
        let stats = p.stats();
        rows.push(pipeline_row(&p.name, &stats));
        rows.extend(stage_rows(&p.name, &stats));
    }
    batch(&rows)
}

fn batch(rows: &[Row]) -> Result<RecordBatch> {
    let text = |f: fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let u = |f: fn(&Row) -> Option<u64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<UInt64Array>())
    };
    let i = |f: fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int64Array>())
    };
    let fl = |f: fn(&Row) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let ts = |f: fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<TimestampMillisecondArray>())
    };
    let columns = vec![
        text(|r| Some(r.pipeline.clone())),
        i(|r| r.stage),
        text(|r| Some(r.operator.clone())),
        text(|r| Some(r.state.clone())),
        u(|r| r.records_in),
        u(|r| r.records_out),
        u(|r| r.bytes_in),
        u(|r| r.bytes_out),
        fl(|r| r.arrival),
        fl(|r| r.arrival_avg),
        fl(|r| r.service),
        fl(|r| r.service_avg),
        fl(|r| r.utilisation),
        fl(|r| r.utilisation_avg),
        fl(|r| r.backpressure),
        u(|r| r.queue_depth),
        ts(|r| r.watermark),
        fl(|r| r.watermark_lag),
        i(|r| r.backlog),
        text(|r| r.kafka_lag.clone()),
        u(|r| r.late),
        u(|r| r.evicted),
        u(|r| r.dead_lettered),
        u(|r| r.errors),
        u(|r| r.state_rows),
        u(|r| r.state_bytes),
        text(|r| r.state_by_input.clone()),
        ts(|r| r.last_checkpoint),
        fl(|r| r.checkpoint_ms),
        text(|r| r.note.clone()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// A byte count for people: `512 B`, `3.4 KiB`, `12.0 MiB`.
pub fn show_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The streaming plan as a tree, sink at the top and source at the bottom
/// (data flows up). With `stats`, each stage carries its live figures.
pub fn plan_tree(nodes: &[Arc<super::NodeMetrics>], stats: Option<&PipelineStats>) -> String {
    let load = std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    if let Some(s) = stats {
        out.push_str(&format!(
            "Pipeline: {}; arrival {:.1}/s, service {}, utilisation {}",
            s.state.label(),
            s.arrival_10s,
            s.service_10s
                .map_or("-".to_string(), |m| format!("{m:.1}/s")),
            s.utilisation_10s()
                .map_or("-".to_string(), |r| format!("{r:.3}")),
        ));
        if let Some(lag) = s.watermark_lag() {
            out.push_str(&format!("; watermark lag {:.3}s", lag.as_secs_f64()));
        }
        if let Some(b) = s.backlog {
            out.push_str(&format!("; backlog {b}"));
        }
        out.push_str(&format!(
            "; late {}; errors {}",
            s.counters.late, s.counters.errors
        ));
        if s.falling_behind {
            out.push_str("; FALLING BEHIND");
        }
        out.push('\n');
    }
    // From the sink down through each stage's inputs (a union has several).
    let mut order = Vec::new();
    let mut todo: Vec<(usize, usize)> = nodes
        .len()
        .checked_sub(1)
        .map(|l| (l, 0))
        .into_iter()
        .collect();
    while let Some((i, depth)) = todo.pop() {
        if order.len() > nodes.len() * nodes.len() {
            break;
        }
        order.push((i, depth));
        let inputs: Vec<usize> = match nodes[i].inputs() {
            Some(inputs) => inputs
                .iter()
                .copied()
                .filter(|&j| j < nodes.len())
                .collect(),
            None => i.checked_sub(1).into_iter().collect(),
        };
        todo.extend(inputs.into_iter().rev().map(|j| (j, depth + 1)));
    }
    for (i, depth) in order {
        let node = &nodes[i];
        let indent = "   ".repeat(depth);
        let branch = if depth == 0 { "" } else { "└─ " };
        let title = match node.kind {
            super::NodeKind::Sink => "Sink",
            super::NodeKind::Source => "Source",
            super::NodeKind::Operator => "Operator",
        };
        out.push_str(&format!("{indent}{branch}{title}: {}", node.name));
        if !node.detail.is_empty() {
            out.push_str(&format!(" [{}]", node.detail));
        }
        out.push('\n');
        if let Some(n) = stats.and_then(|s| s.nodes.get(i)) {
            let pad = "   ".repeat(depth + 1);
            let mut line = format!(
                "{pad}rows in {} ({:.1}/s), out {}; busy {:.1}%",
                n.node.records_in.load(load),
                n.last_10s.rate,
                n.node.records_out.load(load),
                n.last_10s.busy * 100.0,
            );
            if let Some(mu) = n.last_10s.service {
                line.push_str(&format!(", service {mu:.0}/s"));
            }
            if node.kind == super::NodeKind::Source {
                line.push_str(&format!(", blocked {:.1}%", n.last_10s.blocked * 100.0));
            }
            if node.kind == super::NodeKind::Sink {
                line.push_str(&format!(
                    ", sent {}",
                    show_bytes(n.node.bytes_out.load(load))
                ));
            }
            if let Some(q) = n.queue_depth {
                line.push_str(&format!(", queue {q}"));
            }
            let rows = n.node.state_rows.load(load);
            let bytes = n.node.state_bytes.load(load);
            if rows > 0 || bytes > 0 {
                line.push_str(&format!(", state {rows} rows / {}", show_bytes(bytes)));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

/// `sluice.pipelines` for ad-hoc queries: the figures are read when a query
/// scans it, so queries that do not read it pay nothing.
#[derive(Debug)]
pub struct PipelinesTable(pub Arc<Monitor>);

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for PipelinesTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let batch = pipelines(&self.0)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let table = datafusion::catalog::MemTable::try_new(schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
