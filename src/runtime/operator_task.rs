//! A pipeline's operator task: reads its inputs' channels in turn, aligns
//! their checkpoint barriers, runs batches and watermarks through the
//! plan's graph and sends what comes out to the sink. Also how a
//! checkpoint's operator states are put back into the graph.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::aggregate::FLUSH_INTERVAL;
use super::align::Alignment;
use super::checkpoint::Restored;
use super::graph::{refuse_leftovers, OperatorGraph};
use super::input::Input;
use super::output::Output;
use crate::error::{Result, SluiceError};
use crate::stream::{Message, StreamBatch};

/// Runs the graph until every input ends. At the end of input its operators
/// emit what they hold (open windows), unless `keep_open` was cancelled: the
/// pipeline was stopped, and its next run will close those windows itself.
pub(super) async fn run_operators(
    graph: OperatorGraph,
    mut alignment: Alignment,
    mut inputs: Vec<Input>,
    output: Output,
    keep_open: Option<CancellationToken>,
) -> Result<()> {
    let mut task = Task::new(graph, output);
    task.run(&mut alignment, &mut inputs, keep_open).await?;
    task.output.close().await
}

/// The graph, where its output goes, and what it emitted or holds back on
/// its way there.
struct Task {
    graph: OperatorGraph,
    output: Output,
    /// What the operators emitted, not sent yet.
    out: Vec<StreamBatch>,
    /// When the source read the latest batch: what a watermark after it
    /// closes was made possible by that batch.
    born: Option<Instant>,
    /// Since when an operator has held changes back (see
    /// `Operator::holds_back`): they are flushed `FLUSH_INTERVAL` later, or
    /// when the input goes quiet that long.
    holding: Option<Instant>,
    /// A source's commits (and its caught-up mark) behind rows whose
    /// changes are held back wait for them: a commit says the rows before
    /// it are written.
    deferred: Vec<Message>,
}

impl Task {
    fn new(graph: OperatorGraph, output: Output) -> Task {
        Task {
            // Operators restored from a checkpoint may hold changes already.
            holding: graph.holds_back().then(Instant::now),
            graph,
            output,
            out: Vec::new(),
            born: None,
            deferred: Vec::new(),
        }
    }

    async fn run(
        &mut self,
        alignment: &mut Alignment,
        inputs: &mut [Input],
        keep_open: Option<CancellationToken>,
    ) -> Result<()> {
        let stopping = || keep_open.as_ref().is_some_and(|t| t.is_cancelled());
        // Which input is read first next time, so that a busy one cannot
        // keep the others waiting.
        let mut first = 0;
        loop {
            // Which inputs may be read (not the alignment itself: the
            // commits it holds are not `Sync`, and the wait must be `Send`).
            let readable: Vec<bool> = (0..inputs.len())
                .map(|i| !alignment.closed(i) && !alignment.blocked(i))
                .collect();
            let all_closed = alignment.all_closed();
            let next = std::future::poll_fn(|cx| {
                let n = inputs.len();
                for k in 0..n {
                    let i = (first + k) % n;
                    if !readable[i] {
                        continue;
                    }
                    if let std::task::Poll::Ready(m) = inputs[i].poll_recv(cx) {
                        return std::task::Poll::Ready(Some((i, m)));
                    }
                }
                if all_closed {
                    std::task::Poll::Ready(None)
                } else {
                    std::task::Poll::Pending
                }
            });
            let received = match self.holding {
                None => Some(next.await),
                Some(since) => {
                    let left = FLUSH_INTERVAL.saturating_sub(since.elapsed());
                    tokio::time::timeout(left, next).await.ok()
                }
            };
            // Held changes go out once held that long (or the input was
            // quiet that long), before the next message: a barrier or
            // commit behind them must cover them.
            if self
                .holding
                .is_some_and(|since| since.elapsed() >= FLUSH_INTERVAL)
            {
                self.release_held().await?;
            }
            let Some(received) = received else {
                continue;
            };
            let Some((input, message)) = received else {
                break;
            };
            first = (input + 1) % inputs.len();
            let Some(message) = message else {
                // The input's source finished: its end (unless the pipeline
                // is stopping, when open windows wait for the next run), and
                // the barrier it held up.
                let barrier = alignment.close(input);
                if !stopping() {
                    self.end_input(input).await?;
                }
                if let Some(commit) = alignment.release() {
                    self.forward(Message::Commit(commit)).await?;
                }
                if alignment.check_caught_up() {
                    self.send_caught_up().await?;
                }
                if let Some(barrier) = barrier {
                    self.send_barrier(barrier).await?;
                }
                continue;
            };
            match message {
                // These pass the operators by: everything before them is
                // already on its way to the sink.
                Message::Commit(commit) => {
                    if let Some(commit) = alignment.commit(input, commit) {
                        self.forward(Message::Commit(commit)).await?;
                    }
                }
                Message::CaughtUp => {
                    if alignment.caught_up(input) {
                        self.send_caught_up().await?;
                    }
                }
                Message::Barrier(barrier) => {
                    if let Some(barrier) = alignment.barrier(input, barrier) {
                        self.send_barrier(barrier).await?;
                    }
                }
                Message::EndOfInput => self.end_input(input).await?,
                message => {
                    if let Message::Batch(b) = &message {
                        self.born = b.born.or(self.born);
                    }
                    let watermark = self.graph.push_input(input, message, &mut self.out)?;
                    if self.holding.is_none() && self.graph.holds_back() {
                        self.holding = Some(Instant::now());
                    }
                    let release = !self.graph.holds_back();
                    self.send_emitted(release).await?;
                    // What the operators emitted for a watermark reaches the
                    // sink first.
                    if let Some(w) = watermark {
                        self.output.send(Message::Watermark(w)).await?;
                    }
                }
            }
        }
        // Every input closed, and each one that was not stopped has ended
        // (its operators emitted what they held) and counted as caught up.
        Ok(())
    }

    /// Input `input` ended: what the operators emit for it goes out, then
    /// the watermark it let through, if it moved; once the graph's output
    /// has ended, the end of input goes on too (to the instances after an
    /// exchange, which then emit what they hold).
    async fn end_input(&mut self, input: usize) -> Result<()> {
        let before = self.graph.outputs_ended();
        let w = self.graph.end_input(input, &mut self.out)?;
        self.send_emitted(true).await?;
        if let Some(w) = w {
            self.output.send(Message::Watermark(w)).await?;
        }
        let all = self.graph.output_ended();
        for (port, ended) in self.graph.outputs_ended().into_iter().enumerate() {
            if ended && !before[port] {
                self.output.end(port, all).await?;
            }
        }
        Ok(())
    }

    /// Sends a message that passes the operators by, or holds it behind
    /// the changes they hold back.
    async fn forward(&mut self, message: Message) -> Result<()> {
        if self.graph.holds_back() {
            self.deferred.push(message);
            return Ok(());
        }
        self.output.send(message).await
    }

    /// What the operators hold back goes out now, then the messages that
    /// waited behind it.
    async fn release_held(&mut self) -> Result<()> {
        if self.graph.holds_back() || self.holding.is_some() {
            self.holding = None;
            self.graph.flush(&mut self.out)?;
        }
        self.send_emitted(true).await
    }

    /// Every input caught up with the last run: what the replay changed
    /// goes out ahead of the mark (a restored sink drops it), so that rows
    /// after the mark are not folded into the same held changes.
    async fn send_caught_up(&mut self) -> Result<()> {
        self.release_held().await?;
        self.output.send(Message::CaughtUp).await
    }

    /// Every input delivered the barrier: the operators' state goes with
    /// it.
    async fn send_barrier(&mut self, mut barrier: crate::stream::Barrier) -> Result<()> {
        // What the operators hold back goes out ahead of the barrier: the
        // checkpoint then holds nothing pending, and a run restored from it
        // emits nothing before the pipelines that read its output have
        // attached.
        self.release_held().await?;
        // Added to what the operators before an exchange gathered.
        barrier.operators.extend(self.graph.snapshot()?);
        self.output.send(Message::Barrier(barrier)).await
    }

    /// Sends what the operators emitted (stamped with when the source read
    /// the batch that made it possible), then, if `release`, the messages
    /// that waited for it.
    async fn send_emitted(&mut self, release: bool) -> Result<()> {
        for mut b in self.out.drain(..) {
            b.born = b.born.or(self.born);
            self.output.send(Message::Batch(b)).await?;
        }
        if release {
            for m in self.deferred.drain(..) {
                self.output.send(m).await?;
            }
        }
        Ok(())
    }
}

/// Puts a checkpoint's operator states back into a pipeline's graphs (one,
/// or the part before an exchange and each instance after it), by node
/// (the sink's part is recovered by the sink task). A checkpoint written
/// before operators were keyed by node lists them by position: that is the
/// order of a plan with one input, so it is read so when the counts agree.
pub(super) fn restore(
    name: &str,
    restored: &Restored,
    graphs: &mut [&mut OperatorGraph],
) -> Result<()> {
    let mut states = restored.operators.clone();
    if let Some(positional) = &restored.positional {
        let [graph] = graphs else {
            return Err(SluiceError::StateMismatch(format!(
                "the checkpoint of pipeline '{name}' was taken before operators were keyed by \
                 node, and this pipeline runs on several cores: start it with parallelism = 1 \
                 once, or delete the data directory's checkpoints to start it afresh"
            )));
        };
        let keys = graph.state_keys();
        if graph.inputs() != 1 || positional.len() != keys.len() {
            return Err(SluiceError::StateMismatch(format!(
                "the checkpoint of pipeline '{name}' holds {} operators but its plan has {}: \
                 it was taken by a different version of the query; delete the data directory's \
                 checkpoints to start it afresh",
                positional.len(),
                keys.len()
            )));
        }
        for (key, state) in keys.into_iter().zip(positional) {
            if let Some(state) = state {
                states.insert(key, state.clone());
            }
        }
    }
    for graph in graphs.iter_mut() {
        graph.restore_own(&mut states)?;
    }
    refuse_leftovers(name, &states)?;
    tracing::info!(pipeline = %name, epoch = restored.epoch, "pipeline restored from checkpoint");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{BinaryArray, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::restore;
    use crate::runtime::checkpoint::{decode_pipeline, encode_pipeline};
    use crate::runtime::graph::{build_operators, push};
    use crate::runtime::restore_check::{batch, plan, Row, BASE};
    use crate::runtime::state::StateSnapshot;
    use crate::stream::{Message, StreamBatch};

    /// A pipeline's state as checkpoints before operators were keyed by
    /// node wrote it: operator states by position.
    fn positional_object(states: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut parts: Vec<String> = (0..states.len()).map(|i| format!("operator:{i}")).collect();
        parts.push("sink".into());
        let mut blobs: Vec<Option<&[u8]>> = states.iter().map(|s| s.as_deref()).collect();
        blobs.push(None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, false),
            Field::new("state", DataType::Binary, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(parts)),
                Arc::new(BinaryArray::from(blobs)),
            ],
        )
        .expect("batch");
        StateSnapshot::new(
            serde_json::json!({"epoch": 3, "source": {}, "operators": states.len()}),
            vec![batch],
        )
        .encode()
        .expect("encode")
    }

    #[test]
    fn operator_state_is_restored_by_node_and_old_checkpoints_by_position() {
        let sql = "SELECT k, count(*) AS n, sum(v) AS s FROM t WHERE v > 0 GROUP BY k";
        let p = plan(sql, 0);
        let mut graph = build_operators(&p, &Default::default()).expect("operators");
        let rows: Vec<Row> = (0..20)
            .map(|i| Row {
                k: i % 3,
                tag: None,
                v: Some(i),
                ts: BASE + i,
            })
            .collect();
        let mut out = Vec::new();
        push(
            &mut graph,
            Message::Batch(StreamBatch::append(batch(&rows))),
            &mut out,
        )
        .expect("rows");
        let states = graph.snapshot().expect("snapshot");
        assert_eq!(
            states.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["1:filter/project", "2:changelog aggregate"]
        );
        let groups = |g: &crate::runtime::graph::OperatorGraph| {
            g.operators()
                .filter_map(|o| o.state_size())
                .map(|s| s.0)
                .sum::<u64>()
        };

        // Keyed by node.
        let object = encode_pipeline(3, serde_json::json!({}), &states, None).expect("encode");
        let restored = decode_pipeline(3, &object).expect("decode");
        assert!(restored.positional.is_none());
        let mut fresh = build_operators(&p, &Default::default()).expect("operators");
        restore("p", &restored, &mut [&mut fresh]).expect("restore");
        assert_eq!(groups(&fresh), groups(&graph));

        // By position (format 1): read in the plan's order.
        let old: Vec<Option<Vec<u8>>> = states.iter().map(|(_, s)| s.clone()).collect();
        let restored_old = decode_pipeline(3, &positional_object(&old)).expect("decode");
        assert!(restored_old.positional.is_some());
        let mut fresh = build_operators(&p, &Default::default()).expect("operators");
        restore("p", &restored_old, &mut [&mut fresh]).expect("restore by position");
        assert_eq!(groups(&fresh), groups(&graph));

        // A plan with two inputs cannot tell the positions apart.
        let union = plan(
            "SELECT k, count(*) AS n FROM (SELECT k FROM t UNION ALL SELECT k FROM t) u GROUP BY k",
            0,
        );
        let mut fresh = build_operators(&union, &Default::default()).expect("operators");
        let e = restore("p", &restored_old, &mut [&mut fresh]).expect_err("refused");
        assert!(
            e.to_string().contains("different version of the query"),
            "{e}"
        );

        // Another query's state, keyed by node: refused, naming it.
        let windowed = plan(
            "SELECT k, window_start, count(*) AS n FROM TUMBLE(t, ts, INTERVAL '1 second') \
             GROUP BY k, window_start, window_end",
            0,
        );
        let mut fresh = build_operators(&windowed, &Default::default()).expect("operators");
        let e = restore("p", &restored, &mut [&mut fresh]).expect_err("refused");
        assert!(
            e.to_string()
                .contains("holds state of operator 2:changelog aggregate"),
            "{e}"
        );
    }
}
