//! A plan as it runs on `parallelism` cores, driven on one thread with
//! plain calls: the graph before its exchange, the exchange's hash split,
//! each instance of the part after it, and the merge — the same operators
//! and the same partitioning the pipeline's tasks run (`pipeline.rs`), in
//! one deterministic order. Oracle tests drive it to check that results are
//! the same at any parallelism; without an exchange (or at parallelism 1)
//! it is the plain graph.

use std::sync::Arc;

use super::exchange::Partitioner;
use super::graph::OperatorGraph;
use super::pipeline::{stages, Stages};
use super::state::StateSnapshot;
use crate::error::Result;
use crate::metrics::PipelineMetrics;
use crate::plan::StreamPlan;
use crate::stream::{Message, StreamBatch};

pub struct SplitGraph {
    before: OperatorGraph,
    split: Option<Instances>,
}

struct Instances {
    /// Per input of the exchange's node.
    partitioners: Vec<Partitioner>,
    graphs: Vec<OperatorGraph>,
    merge: OperatorGraph,
    /// The end of input reached them.
    ended: bool,
}

impl SplitGraph {
    /// The operators of `plan` on `parallelism` cores, measured on
    /// `metrics`.
    pub fn build(
        plan: &Arc<StreamPlan>,
        metrics: &Arc<PipelineMetrics>,
        parallelism: usize,
    ) -> Result<SplitGraph> {
        let Stages { graph, split, .. } = stages(plan, &[], "collect", metrics, parallelism)?;
        let split = match split {
            None => None,
            Some(split) => {
                let n = split.instances.len();
                Some(Instances {
                    partitioners: split.partitioners(),
                    graphs: split.instances,
                    merge: OperatorGraph::merge(n, plan.graph.output()?.schema.clone()),
                    ended: false,
                })
            }
        };
        Ok(SplitGraph {
            before: graph,
            split,
        })
    }

    /// Whether its keyed part runs as several instances.
    pub fn is_split(&self) -> bool {
        self.split.is_some()
    }

    /// How many inputs (source nodes) it has.
    pub fn inputs(&self) -> usize {
        self.before.inputs()
    }

    /// Runs a batch or watermark of input `input` through; what comes out
    /// goes to `out`. Returns the watermark that reached the output, when
    /// it moved.
    pub fn push_input(
        &mut self,
        input: usize,
        message: Message,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        let mut emitted = Vec::new();
        let watermark = self.before.push_input(input, message, &mut emitted)?;
        self.route(emitted, watermark, out)
    }

    /// Input `input` ended: what the operators hold comes out. Returns the
    /// watermark that reached the output, when it moved.
    pub fn end_input(&mut self, input: usize, out: &mut Vec<StreamBatch>) -> Result<Option<i64>> {
        let mut emitted = Vec::new();
        let before = self.before.outputs_ended();
        let watermark = self.before.end_input(input, &mut emitted)?;
        let mut reached = self.route(emitted, watermark, out)?;
        let after = self.before.outputs_ended();
        let ended = self.before.output_ended();
        let Some(split) = &mut self.split else {
            return Ok(reached);
        };
        // Each output that ended ends that input of every instance.
        for port in (0..after.len()).filter(|&p| after[p] && !before[p]) {
            for i in 0..split.graphs.len() {
                let mut emitted = Vec::new();
                let w = split.graphs[i].end_input(port, &mut emitted)?;
                reached = split.merge_from(i, emitted, w, out)?.or(reached);
            }
        }
        if !ended || std::mem::replace(&mut split.ended, true) {
            return Ok(reached);
        }
        for i in 0..split.graphs.len() {
            reached = split.merge.end_input(i, out)?.or(reached);
        }
        Ok(reached)
    }

    /// Every input ended.
    pub fn finish(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        for i in 0..self.before.inputs() {
            self.end_input(i, out)?;
        }
        Ok(())
    }

    /// Every operator emits what it holds back.
    pub fn flush(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        let mut emitted = Vec::new();
        self.before.flush(&mut emitted)?;
        self.route(emitted, None, out)?;
        if let Some(split) = &mut self.split {
            for i in 0..split.graphs.len() {
                let mut emitted = Vec::new();
                split.graphs[i].flush(&mut emitted)?;
                split.merge_from(i, emitted, None, out)?;
            }
        }
        Ok(())
    }

    /// Every operator's state, as a checkpoint holds it (by key).
    pub fn snapshot(&mut self) -> Result<std::collections::BTreeMap<String, StateSnapshot>> {
        let mut states = Vec::new();
        states.extend(self.before.snapshot()?);
        if let Some(split) = &mut self.split {
            for g in &mut split.graphs {
                states.extend(g.snapshot()?);
            }
        }
        states
            .into_iter()
            .filter_map(|(key, bytes)| Some((key, bytes?)))
            .map(|(key, bytes)| Ok((key, StateSnapshot::decode(&bytes)?)))
            .collect()
    }

    /// Loads a checkpoint's states into fresh operators.
    pub fn restore(
        &mut self,
        mut states: std::collections::BTreeMap<String, StateSnapshot>,
    ) -> Result<()> {
        self.before.restore_own(&mut states)?;
        if let Some(split) = &mut self.split {
            for g in &mut split.graphs {
                g.restore_own(&mut states)?;
            }
        }
        super::graph::refuse_leftovers("split", &states)
    }

    /// What the graph before the exchange emitted, through the instances
    /// and the merge.
    fn route(
        &mut self,
        emitted: Vec<StreamBatch>,
        watermark: Option<i64>,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        let Some(split) = &mut self.split else {
            out.extend(emitted);
            return Ok(watermark);
        };
        for batch in emitted {
            let port = batch.port;
            for (i, part) in split.partitioners[port].split(batch)? {
                let mut from = Vec::new();
                split.graphs[i].push_input(port, Message::Batch(part), &mut from)?;
                split.merge_from(i, from, None, out)?;
            }
        }
        let mut reached = None;
        if let Some(w) = watermark {
            for i in 0..split.graphs.len() {
                for port in 0..split.partitioners.len() {
                    let mut from = Vec::new();
                    let w = split.graphs[i].push_input(port, Message::Watermark(w), &mut from)?;
                    reached = split.merge_from(i, from, w, out)?.or(reached);
                }
            }
        }
        Ok(reached)
    }
}

impl Instances {
    /// Instance `i`'s output (and the watermark it let through) into the
    /// merge; the watermark the merge let through, when it moved.
    fn merge_from(
        &mut self,
        i: usize,
        batches: Vec<StreamBatch>,
        watermark: Option<i64>,
        out: &mut Vec<StreamBatch>,
    ) -> Result<Option<i64>> {
        for b in batches {
            self.merge.push_input(i, Message::Batch(b), out)?;
        }
        match watermark {
            Some(w) => self.merge.push_input(i, Message::Watermark(w), out),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::restore_check::{batch, plan, render, Row, AGGS, BASE};

    fn run(sql: &str, parallelism: usize) -> (bool, Vec<String>) {
        let p = plan(sql, 0);
        let mut g = SplitGraph::build(&p, &Default::default(), parallelism).expect("operators");
        let rows: Vec<Row> = (0..400)
            .map(|i| Row {
                k: i % 13,
                tag: None,
                v: Some(i * 7 % 50),
                ts: BASE + i * 37 - (i % 5) * 400,
            })
            .collect();
        let mut out = Vec::new();
        for (n, chunk) in rows.chunks(64).enumerate() {
            let b = StreamBatch::append(batch(chunk));
            g.push_input(0, Message::Batch(b), &mut out).expect("batch");
            let wm = BASE + (n as i64 + 1) * 64 * 37 - 3_000;
            g.push_input(0, Message::Watermark(wm), &mut out)
                .expect("watermark");
        }
        g.flush(&mut out).expect("flush");
        g.finish(&mut out).expect("end");
        (g.is_split(), render(&out))
    }

    #[test]
    fn the_same_rows_at_any_parallelism() {
        for sql in [
            format!("SELECT k, {AGGS} FROM t WHERE v > 3 GROUP BY k"),
            format!(
                "SELECT k, window_start, window_end, {AGGS} \
                 FROM HOP(t, ts, INTERVAL '1 second', INTERVAL '3 seconds') \
                 GROUP BY k, window_start, window_end"
            ),
            format!(
                "SELECT k, window_start, window_end, {AGGS} \
                 FROM SESSION(t, ts, INTERVAL '500 milliseconds') \
                 GROUP BY k, window_start, window_end"
            ),
        ] {
            let (split, one) = run(&sql, 1);
            assert!(!split, "one core runs the plain graph");
            for n in [2, 3] {
                let (split, many) = run(&sql, n);
                assert!(split, "a keyed aggregate splits: {sql}");
                // Changes per key keep their order; across keys they
                // interleave, so compare the sorted changes.
                assert_eq!(many, one, "{sql} at parallelism {n}");
            }
        }
        // No key beside the window: one instance.
        let (split, _) = run(
            "SELECT window_start, count(*) AS n FROM TUMBLE(t, ts, INTERVAL '1 second') \
             GROUP BY window_start, window_end",
            2,
        );
        assert!(!split);
    }
}
