//! A running pipeline: a source task, an operator task and a sink task,
//! joined by bounded channels (back-pressure all the way to the source).
//!
//! Shutdown is cooperative: cancelling the token stops the source; the
//! channels then drain, operators emit what they hold, and the sink flushes
//! before the pipeline reports itself finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{UInt32Array, UInt8Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::row::{RowConverter, SortField};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::aggregate::{ChangelogAggregate, FLUSH_INTERVAL};
use super::checkpoint::{encode_pipeline, Checkpointer, Restored};
use super::operator::{Measured, Operator};
use super::session::{SessionAggregate, SessionRows};
use super::stateless::StatelessOperator;
use super::window::WindowAggregate;
use crate::connectors::{
    ExactlyOnce, SinkConnector, SinkSchema, SinkWriter, SourceConnector, SourceContext, SourceDef,
};
use crate::error::{Result, SluiceError};
pub use crate::metrics::PipelineState;
use crate::metrics::{NodeKind, NodeMetrics, PipelineMetrics};
use crate::plan::StreamPlan;
use crate::plan::{Stage, WindowKind};
use crate::stream::{Message, Op, StreamBatch};

const CHANNEL_CAPACITY: usize = 16;

/// What to run: a source, a plan over it and a sink for its output.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub name: String,
    pub source: SourceDef,
    pub plan: Arc<StreamPlan>,
    pub sink: Arc<dyn SinkConnector>,
    /// The pipeline holds state that lives in memory (an aggregate, a
    /// view): a resumable source re-reads its input from the start and says
    /// when it reaches the position the last run acknowledged.
    pub replay: bool,
    /// Restored from the data directory: the sink writes nothing until the
    /// pipeline has caught up with its last run (`Message::CaughtUp`), and
    /// adds to that run's output instead of replacing it.
    pub resume: bool,
    /// The data directory's home for source positions (files).
    pub positions: Option<Arc<std::path::Path>>,
    /// The source waits for this token before it reads (restoring a whole
    /// catalog: nothing flows until every pipeline has subscribed).
    pub gate: Option<CancellationToken>,
    /// Checkpoints are on: the pipeline restores from the last one, takes
    /// part in each, and its sink commits with them.
    pub checkpoints: Option<Arc<Checkpointer>>,
}

pub struct Pipeline {
    pub name: String,
    output_schema: datafusion::arrow::datatypes::SchemaRef,
    pub metrics: Arc<PipelineMetrics>,
    pub bounded: bool,
    /// Started from a checkpoint's state, not from scratch.
    pub resumed: bool,
    state: watch::Receiver<PipelineState>,
    stop: CancellationToken,
    /// The source, operator and sink tasks and the one that ends the
    /// pipeline, for when stopping nicely takes too long (a sink blocked on
    /// a remote end that never answers).
    tasks: Vec<tokio::task::AbortHandle>,
    /// Dropped (not shutting down): the sink commits what it holds at the end.
    dropping: Arc<std::sync::atomic::AtomicBool>,
    checkpoints: Option<Arc<Checkpointer>>,
    handle: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Opens the sink and starts the pipeline's tasks.
    pub async fn start(spec: PipelineSpec, shutdown: CancellationToken) -> Result<Pipeline> {
        let metrics = Arc::new(PipelineMetrics::new(&spec.name, &spec.source.name));
        metrics.add_node(source_node(&spec.source));
        let resumable = spec.source.connector.resumable();
        let checkpoints = spec.checkpoints.clone();
        let restored = checkpoints
            .as_ref()
            .and_then(|c| c.take_restored(&spec.name));
        let sink_schema = SinkSchema {
            schema: spec.plan.output_schema.clone(),
            changelog: spec.plan.changelog,
            key_columns: spec.plan.key_columns.clone(),
            resume: spec.resume && resumable,
            exactly_once: checkpoints.as_ref().map(|c| ExactlyOnce {
                pipeline: spec.name.clone(),
                instance: c.instance.clone(),
            }),
        };
        let mut writer = spec.sink.open(&sink_schema).await?;
        let mut operators = build_operators(&spec.plan, &metrics)?;
        if let Some(r) = &restored {
            restore(&spec.name, r, &mut operators)?;
        }
        // The sink's recovery talks to its remote end (a Kafka sink fences
        // and finishes transactions, retrying while the broker is away):
        // the pipeline's own task does it, so CREATE and restarts return at
        // once whatever the remote end does.
        // A pipeline without state in the restored checkpoint starts after
        // it: what its sink's destination holds from before (a dropped
        // sink of the same name) is not its own.
        let recovery = match &restored {
            Some(r) => Some((r.epoch, r.sink.clone())),
            None => checkpoints.as_ref().map(|c| (c.completed(), None)),
        };
        let sink_node = metrics.add_node(sink_node(&spec.plan, spec.sink.kind()));
        let (source_tx, source_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
        let (sink_tx, mut sink_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
        // Each channel's depth shows on the stage it feeds.
        if let Some(first) = metrics.nodes().get(1) {
            first.set_queue(&source_tx);
        }
        sink_node.set_queue(&sink_tx);
        if !(spec.replay && resumable) {
            // Nothing to re-read: the pipeline starts caught up (a source
            // that resumes from its position, or one that keeps none).
            source_tx
                .try_send(Message::CaughtUp)
                .map_err(|_| SluiceError::Internal("new pipeline channel is full".into()))?;
        }
        // With checkpoints, the engine's shutdown stops a source only once it
        // has injected the final barrier.
        let stop = if checkpoints.is_some() {
            CancellationToken::new()
        } else {
            shutdown.child_token()
        };
        let attached = spec.source.connector.attach()?;
        let mut ctx =
            SourceContext::new(&spec.source, source_tx, stop.clone(), Arc::clone(&metrics))
                .await?
                .for_pipeline(&spec.name, spec.replay)
                .with_engine(shutdown.clone(), spec.positions.clone(), attached);
        ctx.checkpointed = checkpoints.is_some();
        if let Some(r) = &restored {
            ctx = ctx.with_restored(r.source.clone())?;
        }
        let mut upserts = Upserts::new(&spec.plan)?;
        let bounded = spec.source.connector.is_bounded();
        let resumed = restored.is_some();
        let span = tracing::info_span!("pipeline", name = %spec.name);

        let ctx_finishers = ctx.finishers();
        let connector = Arc::clone(&spec.source.connector);
        let gate = spec.gate.clone();
        if let Some(cp) = &checkpoints {
            cp.join(&spec.name);
        }
        let source_checkpoints = checkpoints.clone();
        let engine_shutdown = shutdown.clone();
        let source = tokio::spawn(
            async move {
                if let Some(gate) = gate {
                    tokio::select! {
                        _ = gate.cancelled() => {}
                        _ = ctx.shutdown.cancelled() => return Ok(()),
                    }
                }
                match source_checkpoints {
                    None => connector.run(ctx).await,
                    Some(cp) => run_checkpointed(connector, ctx, cp, engine_shutdown).await,
                }
            }
            .instrument(span.clone()),
        );
        // Stopped on a resumable source (or with checkpoints, which keep
        // it), open windows wait for the next run.
        let keep_open = (resumable || checkpoints.is_some()).then(|| stop.clone());
        let operator = tokio::spawn(
            run_operators(operators, source_rx, sink_tx, keep_open).instrument(span.clone()),
        );
        let sink_metrics = Arc::clone(&metrics);
        let mut suppress = spec.resume;
        let sink_checkpoints = checkpoints.clone();
        let pipeline_name = spec.name.clone();
        let dropping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink_dropping = Arc::clone(&dropping);
        let recovery_stop = stop.clone();
        let recovery_shutdown = shutdown.clone();
        let recovering = spec.name.clone();
        let from_checkpoint = restored.is_some();
        // Set when the pipeline stopped while its sink still waited for its
        // remote end: the stages before it then fail to hand it rows, which
        // is no failure.
        let unconnected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink_unconnected = Arc::clone(&unconnected);
        let recovery_damage = checkpoints.as_ref().and_then(|c| c.damaged());
        let sink = tokio::spawn(
            async move {
                if let Some((epoch, state)) = recovery {
                    tokio::select! {
                        recovered = writer.recover(epoch, state) => recovered.map_err(|e| match recovery_damage {
                            // A sink refusing to write again what it already
                            // committed names the checkpoint that made it so.
                            Some(damaged) if matches!(e, SluiceError::AheadOfCheckpoint(_)) => {
                                SluiceError::AheadOfCheckpoint(format!("{e}; {damaged}"))
                            }
                            _ => e,
                        })?,
                        // Stopped while the sink still waits for its
                        // remote end: it wrote nothing, so nothing is lost.
                        _ = recovery_stop.cancelled() => {
                            tracing::info!(pipeline = %recovering, "stopped before its sink could connect");
                            sink_unconnected.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Ok(());
                        }
                        _ = recovery_shutdown.cancelled() => {
                            tracing::info!(pipeline = %recovering, "shut down before its sink could connect");
                            sink_unconnected.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Ok(());
                        }
                    }
                    if from_checkpoint {
                        tracing::info!(pipeline = %recovering, epoch, "sink recovered from checkpoint");
                    }
                }
                while let Some(message) = sink_rx.recv().await {
                    match message {
                        // Replayed: the last run wrote this.
                        Message::Batch(_) if suppress => {}
                        Message::Batch(batch) => {
                            let started = std::time::Instant::now();
                            let rows_in = batch.num_rows() as u64;
                            let bytes = batch.data.get_array_memory_size() as u64;
                            let born = batch.born;
                            let batch = upserts.normalize(batch)?;
                            let bytes_out = if batch.num_rows() > 0 {
                                writer.write(&batch).await?
                            } else {
                                0
                            };
                            let rows = batch.num_rows() as u64;
                            sink_node.record(started, rows_in, bytes, rows);
                            PipelineMetrics::add(&sink_node.bytes_out, bytes_out);
                            PipelineMetrics::add(&sink_metrics.records_out, rows);
                            PipelineMetrics::add(&sink_metrics.bytes_out, bytes_out);
                            if let Some(born) = born {
                                sink_metrics
                                    .latency_seconds
                                    .observe(born.elapsed().as_secs_f64());
                            }
                            sink_node.refresh_state(false, || writer.state_size());
                        }
                        Message::Watermark(w) => {
                            let started = std::time::Instant::now();
                            writer.watermark(w).await?;
                            sink_node.record(started, 0, 0, 0);
                        }
                        Message::Commit(c) => writer.acknowledge(c).await?,
                        Message::CaughtUp => {
                            suppress = false;
                            writer.caught_up().await?;
                        }
                        Message::Barrier(barrier) => {
                            if let Some(cp) = &sink_checkpoints {
                                checkpoint(
                                    cp,
                                    &pipeline_name,
                                    barrier,
                                    writer.as_mut(),
                                    &sink_metrics,
                                )
                                .await?;
                            }
                        }
                        Message::EndOfInput => {}
                    }
                }
                // Dropped: nothing will restore this pipeline, so what it
                // holds since the last checkpoint is committed now.
                if sink_dropping.load(std::sync::atomic::Ordering::Relaxed)
                    && writer.transactional()
                {
                    writer.commit(0).await?;
                }
                writer.close().await?;
                sink_node.refresh_state(true, || writer.state_size());
                Ok(())
            }
            .instrument(span.clone()),
        );

        let mut tasks = vec![
            source.abort_handle(),
            operator.abort_handle(),
            sink.abort_handle(),
        ];
        let (state_tx, state) = watch::channel(PipelineState::Running);
        let name = spec.name.clone();
        let finishers = ctx_finishers;
        let status = Arc::clone(&metrics);
        let leave_checkpoints = checkpoints.clone();
        let handle = tokio::spawn(async move {
            // A stage that fails ends the stages before it at once: they
            // would only wait for it (a source for its next checkpoint).
            let (source_abort, operator_abort) = (source.abort_handle(), operator.abort_handle());
            let upstream = source_abort.clone();
            let sink = async move {
                let r = sink.await;
                if !matches!(r, Ok(Ok(()))) {
                    operator_abort.abort();
                    upstream.abort();
                }
                r
            };
            let operator = async move {
                let r = operator.await;
                if !matches!(r, Ok(Ok(()))) {
                    source_abort.abort();
                }
                r
            };
            let (s, o, k) = tokio::join!(source, operator, sink);
            let (s, o) = if unconnected.load(std::sync::atomic::Ordering::Relaxed) {
                (Ok(Ok(())), Ok(Ok(())))
            } else {
                (s, o)
            };
            let failed = [&s, &o, &k].iter().any(|r| matches!(r, Ok(Err(_))));
            if let Some(cp) = leave_checkpoints {
                cp.leave(&name, false).await;
            }
            // The sink has written everything: sources may now commit.
            let hooks: Vec<_> = finishers
                .lock()
                .map(|mut f| f.drain(..).collect())
                .unwrap_or_default();
            for hook in hooks {
                if let Err(e) = tokio::task::spawn_blocking(hook).await {
                    tracing::warn!(error = %e, "source commit at pipeline end failed");
                }
            }
            let mut errors = Vec::new();
            for (part, r) in [("source", s), ("operator", o), ("sink", k)] {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(format!("{part}: {e}")),
                    // Ended because a later stage failed: that is the error.
                    Err(e) if e.is_cancelled() && failed => {}
                    Err(e) => errors.push(format!("{part} task: {e}")),
                }
            }
            let st = if errors.is_empty() {
                tracing::info!(pipeline = %name, "pipeline finished");
                PipelineState::Finished
            } else {
                let reason = errors.join("; ");
                tracing::error!(pipeline = %name, %reason, "pipeline failed");
                PipelineState::Failed(reason)
            };
            status.set_state(st.clone());
            state_tx.send_replace(st);
        });
        // Aborting must not wait on the end-of-pipeline hooks either (a
        // Kafka source's final commit to a broker that is gone).
        tasks.push(handle.abort_handle());
        tracing::info!(pipeline = %spec.name, source = %spec.source.name, "pipeline started");
        Ok(Pipeline {
            name: spec.name,
            output_schema: spec.plan.output_schema.clone(),
            metrics,
            bounded,
            resumed,
            state,
            stop,
            tasks,
            dropping,
            checkpoints,
            handle: Some(handle),
        })
    }

    /// The columns the pipeline writes.
    pub fn output_schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.output_schema.clone()
    }

    pub fn state(&self) -> PipelineState {
        self.state.borrow().clone()
    }

    /// A handle that resolves when the pipeline has finished or failed.
    pub fn done(&self) -> impl std::future::Future<Output = PipelineState> + Send + 'static {
        let mut rx = self.state.clone();
        async move {
            match rx.wait_for(|s| *s != PipelineState::Running).await {
                Ok(s) => s.clone(),
                Err(_) => PipelineState::Failed("pipeline task ended without a state".into()),
            }
        }
    }

    /// Stops this pipeline's source; the pipeline then drains and ends.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops the pipeline for good (DROP): its sink commits what it holds,
    /// and its state leaves the checkpoints.
    pub async fn drop_now(&mut self) -> PipelineState {
        self.dropping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.stop.cancel();
        let state = self.wait_at_most(DROP_GRACE).await;
        if let Some(cp) = &self.checkpoints {
            cp.leave(&self.name, true).await;
        }
        state
    }

    /// Handles that end the pipeline's tasks where they are.
    pub fn abort_handles(&self) -> Vec<tokio::task::AbortHandle> {
        self.tasks.clone()
    }

    /// Ends the pipeline's tasks where they are, without draining.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Waits until the pipeline has finished, for at most `grace`; then
    /// aborts it (its sink may be waiting on a remote end) and reports it
    /// failed.
    pub async fn wait_at_most(&mut self, grace: std::time::Duration) -> PipelineState {
        let Some(mut handle) = self.handle.take() else {
            return self.state();
        };
        let finished = tokio::time::timeout(grace, &mut handle).await;
        if finished.is_err() {
            tracing::warn!(pipeline = %self.name, ?grace, "pipeline did not stop in time; aborting it");
            self.abort();
            // Aborted, the task ends at its next await: its result says so.
            if let Err(e) = handle.await {
                tracing::debug!(pipeline = %self.name, error = %e, "pipeline task aborted");
            }
            let state = PipelineState::Failed(format!(
                "aborted after {grace:?}: it did not stop in time (a sink waiting on its remote end?)"
            ));
            self.metrics.set_state(state.clone());
            return state;
        }
        match finished {
            Ok(Err(e)) => PipelineState::Failed(format!("pipeline task: {e}")),
            _ => self.state(),
        }
    }

    /// Waits until the pipeline has finished (or failed).
    pub async fn wait(&mut self) -> PipelineState {
        if let Some(h) = self.handle.take() {
            if let Err(e) = h.await {
                return PipelineState::Failed(format!("pipeline task: {e}"));
            }
        }
        self.state()
    }
}

/// How long a DROP waits for a pipeline to drain before aborting it.
pub const DROP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The source's stage: its connector, and the watermark it generates.
pub fn source_node(source: &crate::connectors::SourceDef) -> NodeMetrics {
    let mut detail = format!("reads {}", source.name);
    if let Some(w) = &source.watermark_sql {
        detail.push_str(&format!("; watermark {w}"));
    }
    if source.dead_letter.is_some() {
        detail.push_str("; bad records dead-lettered");
    }
    NodeMetrics::new(
        NodeKind::Source,
        format!("{} source", source.connector_name),
        detail,
    )
}

/// The sink's stage: what it writes, and how.
pub fn sink_node(plan: &StreamPlan, kind: &str) -> NodeMetrics {
    let detail = if plan.changelog && !plan.key_columns.is_empty() {
        let keys: Vec<&str> = plan
            .key_columns
            .iter()
            .map(|&i| plan.output_schema.field(i).name().as_str())
            .collect();
        format!("writes a changelog keyed by {}", keys.join(", "))
    } else if plan.changelog {
        "writes a changelog of whole rows".to_string()
    } else {
        "appends rows".to_string()
    };
    NodeMetrics::new(NodeKind::Sink, format!("{kind} sink"), detail)
}

/// The operators that run `plan` after its source, in order, each measured
/// as a stage of `metrics`.
pub fn build_operators(
    plan: &Arc<StreamPlan>,
    metrics: &Arc<PipelineMetrics>,
) -> Result<Vec<Box<dyn Operator>>> {
    Ok(plain_operators(plan, metrics)?
        .into_iter()
        .map(|op| {
            let node =
                metrics.add_node(NodeMetrics::new(NodeKind::Operator, op.name(), op.detail()));
            Box::new(Measured::new(op, node)) as Box<dyn Operator>
        })
        .collect())
}

fn plain_operators(
    plan: &Arc<StreamPlan>,
    metrics: &Arc<PipelineMetrics>,
) -> Result<Vec<Box<dyn Operator>>> {
    let mut ops: Vec<Box<dyn Operator>> = Vec::new();
    let stages = plan.stages.len();
    let grouped_session = plan
        .aggregate
        .as_ref()
        .and_then(|a| a.window)
        .is_some_and(|w| matches!(w.kind, WindowKind::Session { .. }));
    match plan.stages.first() {
        // Sessions not grouped by their window: rows wait for their session
        // to close, then go on with its bounds.
        Some(Stage::Window {
            kind: WindowKind::Session { gap },
            time_column,
            ..
        }) if !grouped_session => {
            let width = plan.stages[0].output_width().unwrap_or(*time_column + 1);
            ops.push(Box::new(StatelessOperator::new(
                Arc::clone(plan),
                0..1,
                Arc::clone(metrics),
            )));
            ops.push(Box::new(SessionRows::new(*gap, width - 2, width - 1)));
            if stages > 1 {
                ops.push(Box::new(StatelessOperator::new(
                    Arc::clone(plan),
                    1..stages,
                    Arc::clone(metrics),
                )));
            }
        }
        _ if stages > 0 => ops.push(Box::new(StatelessOperator::new(
            Arc::clone(plan),
            0..stages,
            Arc::clone(metrics),
        ))),
        _ => {}
    }
    if let Some(agg) = &plan.aggregate {
        match agg.window.map(|w| w.kind) {
            None => ops.push(Box::new(ChangelogAggregate::new(
                Arc::clone(plan),
                Arc::clone(metrics),
            )?)),
            Some(WindowKind::Session { .. }) => ops.push(Box::new(SessionAggregate::new(
                Arc::clone(agg),
                plan.allowed_lateness,
            )?)),
            Some(_) => ops.push(Box::new(WindowAggregate::new(
                Arc::clone(agg),
                plan.allowed_lateness,
                Arc::clone(metrics),
            )?)),
        }
    }
    Ok(ops)
}

/// Runs the operators until the input ends. At the end of input they emit
/// what they hold (open windows), unless `keep_open` was cancelled: the
/// pipeline was stopped, and its next run will close those windows itself.
async fn run_operators(
    mut operators: Vec<Box<dyn Operator>>,
    mut input: mpsc::Receiver<Message>,
    output: mpsc::Sender<Message>,
    keep_open: Option<CancellationToken>,
) -> Result<()> {
    let mut out = Vec::new();
    let stopped = || SluiceError::Connector("the sink stopped".into());
    let mut caught_up = false;
    // A bounded input ended and the operators emitted what they held.
    let mut ended = false;
    // When the source read the latest batch: what a watermark after it
    // closes was made possible by that batch.
    let mut born = None;
    // Since when an operator has held changes back (see
    // `Operator::holds_back`): they are flushed `FLUSH_INTERVAL` later, or
    // when the input goes quiet that long.
    // Operators restored from a checkpoint may hold changes already.
    let mut holding = operators
        .iter()
        .any(|op| op.holds_back())
        .then(Instant::now);
    // A source's commits (and its caught-up mark) behind rows whose changes
    // are held back wait for them: a commit says the rows before it are
    // written.
    let mut deferred: Vec<Message> = Vec::new();
    loop {
        let received = match holding {
            None => Some(input.recv().await),
            Some(since) => {
                let left = FLUSH_INTERVAL.saturating_sub(since.elapsed());
                tokio::time::timeout(left, input.recv()).await.ok()
            }
        };
        // Held changes go out once held that long (or the input was quiet
        // that long), before the next message: a barrier or commit behind
        // them must cover them.
        if holding.is_some_and(|since| since.elapsed() >= FLUSH_INTERVAL) {
            holding = None;
            flush(&mut operators, &mut out)?;
            send_emitted(&output, &mut out, born, Some(&mut deferred)).await?;
        }
        let Some(message) = received else {
            continue;
        };
        let Some(message) = message else { break };
        if let Message::Batch(b) = &message {
            born = b.born.or(born);
        }
        let watermark = match message {
            // These pass the operators by: everything before them is
            // already on its way to the sink.
            Message::Commit(_) | Message::CaughtUp => {
                caught_up |= matches!(message, Message::CaughtUp);
                if operators.iter().any(|op| op.holds_back()) {
                    deferred.push(message);
                } else {
                    output.send(message).await.map_err(|_| stopped())?;
                }
                continue;
            }
            Message::Barrier(mut barrier) => {
                // What the operators hold back goes out ahead of the
                // barrier: the checkpoint then holds nothing pending, and a
                // run restored from it emits nothing before the pipelines
                // that read its output have attached.
                if operators.iter().any(|op| op.holds_back()) {
                    holding = None;
                    flush(&mut operators, &mut out)?;
                    send_emitted(&output, &mut out, born, Some(&mut deferred)).await?;
                }
                barrier.operators = operators
                    .iter_mut()
                    .map(|op| op.snapshot()?.map(|s| s.encode()).transpose())
                    .collect::<Result<_>>()?;
                output
                    .send(Message::Barrier(barrier))
                    .await
                    .map_err(|_| stopped())?;
                continue;
            }
            Message::EndOfInput => {
                ended = true;
                finish(&mut operators, &mut out)?;
                send_emitted(&output, &mut out, born, Some(&mut deferred)).await?;
                continue;
            }
            Message::Watermark(w) => Some(w),
            Message::Batch(_) => None,
        };
        push(&mut operators, message, &mut out)?;
        if holding.is_none() && operators.iter().any(|op| op.holds_back()) {
            holding = Some(Instant::now());
        }
        let release = !operators.iter().any(|op| op.holds_back());
        send_emitted(&output, &mut out, born, release.then_some(&mut deferred)).await?;
        // What the operators emitted for a watermark reaches the sink first.
        if let Some(w) = watermark {
            output
                .send(Message::Watermark(w))
                .await
                .map_err(|_| stopped())?;
        }
    }
    if ended || keep_open.is_some_and(|t| t.is_cancelled()) {
        return Ok(());
    }
    finish(&mut operators, &mut out)?;
    send_emitted(&output, &mut out, born, Some(&mut deferred)).await?;
    if !caught_up {
        // The replay ran to the end of a bounded input, which the last run
        // also reached: what the end flushed was written then.
        output
            .send(Message::CaughtUp)
            .await
            .map_err(|_| stopped())?;
    }
    Ok(())
}

/// Loads a checkpoint's state into a new pipeline's operators and sink.
/// Puts a checkpoint's operator states back (the sink's part is recovered
/// by the sink task).
fn restore(name: &str, restored: &Restored, operators: &mut [Box<dyn Operator>]) -> Result<()> {
    if restored.operators.len() != operators.len() {
        return Err(SluiceError::Catalog(format!(
            "the checkpoint of pipeline '{name}' holds {} operators but its plan has {}: \
             it was taken by a different version of the query; delete the data directory's \
             checkpoints to start it afresh",
            restored.operators.len(),
            operators.len()
        )));
    }
    for (op, state) in operators.iter_mut().zip(&restored.operators) {
        if let Some(state) = state {
            op.restore(state.clone())?;
        }
    }
    tracing::info!(pipeline = %name, epoch = restored.epoch, "pipeline restored from checkpoint");
    Ok(())
}

/// The source side of a checkpointed pipeline: runs the connector and, on
/// the coordinator's signal, injects barriers between its batches. The
/// final checkpoint (engine shutdown) stops the source right after its
/// barrier. A bounded input that ends flushes the operators and takes one
/// last checkpoint, so its final output is committed with it.
async fn run_checkpointed(
    connector: Arc<dyn SourceConnector>,
    ctx: SourceContext,
    cp: Arc<Checkpointer>,
    shutdown: CancellationToken,
) -> Result<()> {
    let follows = connector.follows_pipeline();
    let stop = ctx.shutdown.clone();
    let mut triggers = cp.triggers();
    // A checkpoint may have started between this pipeline joining the
    // coordinator and now: it waits for this pipeline's barrier, so the
    // trigger already sent is not old news.
    let current = *triggers.borrow_and_update();
    if cp.waits_for(&ctx.pipeline, current.epoch) {
        triggers.mark_changed();
    }
    let run = connector.run(ctx.clone());
    tokio::pin!(run);
    // If the final barrier never comes (a stuck checkpoint), stop anyway.
    let mut give_up: Option<tokio::time::Instant> = None;
    // A barrier waiting for its turn to be sent. It is polled next to the
    // source, never instead of it: the source may hold the send lock while
    // it waits for room downstream (back-pressure), and must go on.
    let mut injecting: Option<std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>> =
        None;
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            sent = async { injecting.as_mut().expect("guarded").await }, if injecting.is_some() => {
                injecting = None;
                if !sent {
                    stop.cancel();
                }
            }
            changed = triggers.changed(), if injecting.is_none() => {
                if changed.is_err() {
                    continue;
                }
                let t = *triggers.borrow_and_update();
                if follows || stop.is_cancelled() {
                    continue;
                }
                let (ctx, stop) = (ctx.clone(), stop.clone());
                injecting = Some(Box::pin(async move {
                    let sent = ctx.inject_barrier(t.epoch).await.is_ok();
                    // The final checkpoint: the source stops right after it.
                    if t.stop {
                        stop.cancel();
                    }
                    sent
                }));
            }
            _ = shutdown.cancelled(), if give_up.is_none() && !stop.is_cancelled() => {
                if follows {
                    // The view it follows drains to its end, barrier included.
                    stop.cancel();
                } else {
                    give_up = Some(tokio::time::Instant::now() + Duration::from_secs(20));
                }
            }
            _ = tokio::time::sleep_until(give_up.unwrap_or_else(tokio::time::Instant::now)), if give_up.is_some() && !stop.is_cancelled() => {
                tracing::warn!(pipeline = %ctx.pipeline, "no final checkpoint came; stopping without one");
                stop.cancel();
            }
        }
    };
    // A barrier still waiting goes after what the source sent.
    if let Some(injecting) = injecting {
        injecting.await;
    }
    if result.is_err() || stop.is_cancelled() {
        return result;
    }
    // The input ended: flush, then a last barrier after the flushed output.
    if ctx.send_in_order(Message::EndOfInput).await.is_err() {
        return result;
    }
    let current = triggers.borrow_and_update().epoch;
    if current > ctx.last_barrier() && ctx.inject_barrier(current).await.is_err() {
        return result;
    }
    cp.request().await;
    tokio::select! {
        changed = triggers.changed() => {
            if changed.is_ok() {
                let t = *triggers.borrow_and_update();
                let _ = ctx.inject_barrier(t.epoch).await;
            }
        }
        _ = shutdown.cancelled() => {}
    }
    result
}

/// A barrier reached the sink: the sink prepares its output, the pipeline's
/// state is written, and a transactional sink commits once the whole
/// checkpoint is complete.
async fn checkpoint(
    cp: &Checkpointer,
    name: &str,
    barrier: crate::stream::Barrier,
    writer: &mut dyn SinkWriter,
    metrics: &PipelineMetrics,
) -> Result<()> {
    let sink_state = writer.prepare(barrier.epoch).await?;
    let sink = sink_state.map(|s| s.encode()).transpose()?;
    let object = encode_pipeline(barrier.epoch, barrier.source, &barrier.operators, sink)?;
    if let Err(e) = cp.report(name, barrier.epoch, object).await {
        tracing::warn!(pipeline = %name, epoch = barrier.epoch, error = %e, "pipeline state not saved");
        return Ok(());
    }
    if writer.transactional() && cp.wait(barrier.epoch).await {
        writer.commit(barrier.epoch).await?;
    }
    if let Some(injected) = barrier.injected {
        metrics.set_checkpoint(injected.elapsed());
    }
    Ok(())
}

/// Turns the old-row / new-row pairs of updates (which views pass to their
/// subscribers) back into what sinks write: upserts by key, or inserts and
/// deletes of whole rows when the output has no key.
struct Upserts {
    keys: Option<(Vec<usize>, RowConverter)>,
}

impl Upserts {
    fn new(plan: &StreamPlan) -> Result<Upserts> {
        let keys = if plan.key_columns.is_empty() {
            None
        } else {
            let fields = plan
                .key_columns
                .iter()
                .map(|&i| SortField::new(plan.output_schema.field(i).data_type().clone()))
                .collect();
            Some((plan.key_columns.clone(), RowConverter::new(fields)?))
        };
        Ok(Upserts { keys })
    }

    fn normalize(&mut self, batch: StreamBatch) -> Result<StreamBatch> {
        let Some(ops) = &batch.ops else {
            return Ok(batch);
        };
        if !ops.values().contains(&(Op::UpdateBefore as u8)) {
            return Ok(batch);
        }
        let n = batch.num_rows();
        let mut keep = Vec::with_capacity(n);
        let mut new_ops = Vec::with_capacity(n);
        match &self.keys {
            None => {
                for i in 0..n {
                    keep.push(i as u32);
                    new_ops.push(if batch.is_addition(i) {
                        Op::Insert
                    } else {
                        Op::Delete
                    } as u8);
                }
            }
            Some((columns, converter)) => {
                let cols: Vec<_> = columns
                    .iter()
                    .map(|&c| batch.data.column(c).clone())
                    .collect();
                let rows = converter.convert_columns(&cols)?;
                // An old row whose key comes back later in the batch is
                // replaced by that upsert; otherwise its key is gone.
                let mut later = std::collections::HashSet::new();
                let mut dropped = vec![false; n];
                let mut op_of = vec![0u8; n];
                for i in (0..n).rev() {
                    let op = batch.op(i);
                    if op == Op::UpdateBefore {
                        if later.contains(&rows.row(i)) {
                            dropped[i] = true;
                        } else {
                            op_of[i] = Op::Delete as u8;
                        }
                    } else {
                        op_of[i] = op as u8;
                        if batch.is_addition(i) {
                            later.insert(rows.row(i));
                        }
                    }
                }
                for i in 0..n {
                    if !dropped[i] {
                        keep.push(i as u32);
                        new_ops.push(op_of[i]);
                    }
                }
            }
        }
        let data = take_record_batch(&batch.data, &UInt32Array::from(keep))?;
        Ok(StreamBatch::changelog(data, UInt8Array::from(new_ops)))
    }
}

/// Sends what the operators emitted (stamped with when the source read the
/// batch that made it possible), then `then`: messages that waited for it.
async fn send_emitted(
    output: &mpsc::Sender<Message>,
    out: &mut Vec<StreamBatch>,
    born: Option<Instant>,
    then: Option<&mut Vec<Message>>,
) -> Result<()> {
    let stopped = || SluiceError::Connector("the sink stopped".into());
    for mut b in out.drain(..) {
        b.born = b.born.or(born);
        output
            .send(Message::Batch(b))
            .await
            .map_err(|_| stopped())?;
    }
    for m in then.into_iter().flat_map(|t| t.drain(..)) {
        output.send(m).await.map_err(|_| stopped())?;
    }
    Ok(())
}

/// End of input: each operator in turn emits what it holds, through the
/// operators after it.
pub fn finish(operators: &mut [Box<dyn Operator>], out: &mut Vec<StreamBatch>) -> Result<()> {
    for i in 0..operators.len() {
        let (head, rest) = operators.split_at_mut(i + 1);
        let mut held = Vec::new();
        head[i].on_end(&mut held)?;
        for b in held {
            push(rest, Message::Batch(b), out)?;
        }
    }
    Ok(())
}

/// Each operator in turn emits what it holds back, through the operators
/// after it.
pub fn flush(operators: &mut [Box<dyn Operator>], out: &mut Vec<StreamBatch>) -> Result<()> {
    for i in 0..operators.len() {
        let (head, rest) = operators.split_at_mut(i + 1);
        if !head[i].holds_back() {
            continue;
        }
        let mut held = Vec::new();
        head[i].flush(&mut held)?;
        for b in held {
            push(rest, Message::Batch(b), out)?;
        }
    }
    Ok(())
}

/// Runs one message through a chain of operators. What an operator emits
/// for a watermark reaches the next operator before the watermark does.
pub fn push(
    operators: &mut [Box<dyn Operator>],
    message: Message,
    out: &mut Vec<StreamBatch>,
) -> Result<()> {
    let Some((first, rest)) = operators.split_first_mut() else {
        if let Message::Batch(b) = message {
            if b.num_rows() > 0 {
                out.push(b);
            }
        }
        return Ok(());
    };
    let mut emitted = Vec::new();
    let watermark = match message {
        Message::Batch(b) => {
            first.process_batch(b, &mut emitted)?;
            None
        }
        Message::Watermark(w) => {
            first.on_watermark(w, &mut emitted)?;
            Some(w)
        }
        Message::Commit(_) | Message::CaughtUp | Message::Barrier(_) | Message::EndOfInput => None,
    };
    for b in emitted {
        push(rest, Message::Batch(b), out)?;
    }
    if let Some(w) = watermark {
        push(rest, Message::Watermark(w), out)?;
    }
    Ok(())
}
