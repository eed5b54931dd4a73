//! A running pipeline: a task per source, an operator task running the
//! plan's graph and a sink task, joined by bounded channels (back-pressure
//! all the way to the sources).
//!
//! Shutdown is cooperative: cancelling the token stops the source; the
//! channels then drain, operators emit what they hold, and the sink flushes
//! before the pipeline reports itself finished.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::align::{input_state, Alignment};
use super::checkpoint::Checkpointer;
use super::exchange::Partitioner;
pub use super::graph::{build_operators, finish, flush, push};
use super::graph::{instances_in, OperatorGraph, Part, Stage};
use super::input::{Input, ViewInput};
use super::operator_task::{restore, run_operators};
use super::output::Output;
use super::rescale::rescale;
use super::sink_task::SinkRunner;
use super::source_task::run_checkpointed;
use super::upserts::Upserts;
use super::view::ViewState;
use crate::connectors::{ExactlyOnce, SinkConnector, SinkSchema, SourceContext, SourceDef};
use crate::error::{Result, SluiceError};
pub use crate::metrics::PipelineState;
use crate::metrics::{NodeKind, NodeMetrics, PipelineMetrics};
use crate::plan::{Exchange, NodeKind as PlanNodeKind, StreamPlan};
use crate::stream::Message;

const CHANNEL_CAPACITY: usize = 16;

/// What to run: sources, a plan over them and a sink for its output.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub name: String,
    /// The relations the plan reads, one per source node, in its order.
    pub sources: Vec<SourceDef>,
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
    /// How many cores it may keep busy (each input decodes that many
    /// batches at once).
    pub parallelism: usize,
    /// The inputs that are views, by name: read from their dispatchers.
    pub views: std::collections::BTreeMap<String, Follow>,
}

/// A view a pipeline reads.
#[derive(Debug, Clone)]
pub struct Follow {
    pub view: Arc<ViewState>,
    /// Start with the view's current contents (else only later changes).
    pub snapshot: bool,
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
        let names: Vec<&str> = spec.sources.iter().map(|s| s.name.as_str()).collect();
        let metrics = Arc::new(PipelineMetrics::new(&spec.name, names.join(", ")));
        let checkpoints = spec.checkpoints.clone();
        let mut restored = checkpoints
            .as_ref()
            .and_then(|c| c.take_restored(&spec.name));
        // A checkpoint's keyed state was split across its run's instances
        // by key: re-split for this run's, or (where an operator cannot)
        // the pipeline keeps that many.
        let mut parallelism = spec.parallelism.max(1);
        if let (Some(r), Some(x)) = (&mut restored, Exchange::of(&spec.plan.graph)) {
            let kept = match &r.positional {
                Some(_) => Some(1),
                None => instances_in(&r.operators, &x.part(&spec.plan.graph)),
            };
            if let Some(kept) = kept.filter(|&k| k != parallelism) {
                let rescaled = match &r.positional {
                    Some(_) => Ok(false),
                    None => rescale(&spec.plan, &x, &mut r.operators, kept, parallelism),
                };
                match rescaled {
                    Ok(true) => tracing::info!(
                        pipeline = %spec.name,
                        from = kept,
                        to = parallelism,
                        "re-split its checkpoint's keyed state for this parallelism"
                    ),
                    Ok(false) => {
                        tracing::info!(
                            pipeline = %spec.name,
                            parallelism = kept,
                            "keeps the parallelism its checkpoint's state was split by"
                        );
                        parallelism = kept;
                    }
                    Err(e) => {
                        tracing::warn!(
                            pipeline = %spec.name,
                            parallelism = kept,
                            error = %e,
                            "could not re-split its checkpoint's keyed state; keeps the parallelism it was split by"
                        );
                        parallelism = kept;
                    }
                }
            }
        }
        let Stages {
            mut graph,
            mut split,
            sink: sink_node,
        } = stages(
            &spec.plan,
            &spec.sources,
            spec.sink.kind(),
            &metrics,
            parallelism,
        )?;
        let input_ids: Vec<_> = spec.plan.graph.sources().map(|(n, _)| n.id).collect();
        if input_ids.len() != spec.sources.len() {
            return Err(SluiceError::Internal(format!(
                "pipeline '{}' has {} sources for a plan of {}",
                spec.name,
                spec.sources.len(),
                input_ids.len()
            )));
        }
        let resume = spec.resume && spec.sources.iter().all(|s| s.connector.resumable());
        let sink_schema = SinkSchema {
            schema: spec.plan.output_schema.clone(),
            changelog: spec.plan.changelog,
            key_columns: spec.plan.key_columns.clone(),
            resume,
            exactly_once: checkpoints.as_ref().map(|c| ExactlyOnce {
                pipeline: spec.name.clone(),
                instance: c.instance.clone(),
            }),
        };
        let writer = spec.sink.open(&sink_schema).await?;
        if let Some(r) = &restored {
            let mut graphs = vec![&mut graph];
            if let Some(split) = &mut split {
                graphs.extend(split.instances.iter_mut());
            }
            restore(&spec.name, r, &mut graphs)?;
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
        let dropping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let runner = SinkRunner {
            pipeline: spec.name.clone(),
            writer,
            upserts: Upserts::new(&spec.plan)?,
            suppress: spec.resume,
            node: Arc::clone(&sink_node),
            metrics: Arc::clone(&metrics),
            checkpoints: checkpoints.clone(),
            dropping: Arc::clone(&dropping),
        };
        // With checkpoints, the engine's shutdown stops a source only once it
        // has injected the final barrier.
        let stop = if checkpoints.is_some() {
            CancellationToken::new()
        } else {
            shutdown.child_token()
        };
        if let Some(cp) = &checkpoints {
            cp.join(&spec.name);
        }
        let span = tracing::info_span!("pipeline", name = %spec.name);
        let mut inputs = Vec::new();
        let mut sources = Vec::new();
        let mut finishers = Vec::new();
        for (i, def) in spec.sources.iter().enumerate() {
            let node = metrics
                .nodes()
                .iter()
                .filter(|n| n.kind == NodeKind::Source)
                .nth(i)
                .cloned();
            // Nothing to re-read: the input starts caught up (a source that
            // resumes from its position, or one that keeps none).
            let caught_up = !(spec.replay && def.connector.resumable());
            if let Some(follow) = spec.views.get(&def.name) {
                // A view: read straight from its dispatcher.
                let subscription = follow.view.subscribe()?;
                if let (Some(stage), Some(queue)) =
                    (graph.entry_stage(i), subscription.queue.clone())
                {
                    stage.watch_queue(queue);
                }
                let mut input = ViewInput::new(
                    subscription,
                    follow.snapshot && restored.is_none(),
                    stop.clone(),
                    shutdown.clone(),
                    Arc::clone(&metrics),
                    node,
                    checkpoints.clone(),
                );
                if caught_up {
                    input.starts_caught_up();
                }
                inputs.push(Input::View(Box::new(input)));
                continue;
            }
            let (source_tx, source_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
            // Each channel's depth shows on the stage it feeds.
            if let Some(stage) = graph.entry_stage(i) {
                stage.set_queue(&source_tx);
            }
            if caught_up {
                source_tx
                    .try_send(Message::CaughtUp)
                    .map_err(|_| SluiceError::Internal("new pipeline channel is full".into()))?;
            }
            let mut ctx = SourceContext::new(def, source_tx, stop.clone(), Arc::clone(&metrics))
                .await?
                .for_pipeline(&spec.name, spec.replay)
                .for_input(i, node)
                .with_parallelism(spec.parallelism)
                .with_positions(spec.positions.clone());
            ctx.checkpointed = checkpoints.is_some();
            if let Some(r) = &restored {
                ctx = ctx.with_restored(input_state(&r.source, input_ids[i], input_ids.len()))?;
            }
            finishers.push(ctx.finishers());
            let connector = Arc::clone(&def.connector);
            let gate = spec.gate.clone();
            let source_checkpoints = checkpoints.clone();
            let engine_shutdown = shutdown.clone();
            sources.push(tokio::spawn(
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
            ));
            inputs.push(Input::Channel(source_rx));
        }
        let bounded = spec.sources.iter().all(|s| s.connector.is_bounded());
        let resumable = spec.sources.iter().all(|s| s.connector.resumable());
        let resumed = restored.is_some();
        // Stopped on a resumable source (or with checkpoints, which keep
        // it), open windows wait for the next run.
        let keep_open = (resumable || checkpoints.is_some()).then(|| stop.clone());
        let alignment = Alignment::new(input_ids);
        // Set when the pipeline stopped while its sink still waited for its
        // remote end: the stages before it then fail to hand it rows, which
        // is no failure.
        let unconnected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recover = {
            let stop = stop.clone();
            let shutdown = shutdown.clone();
            let damaged = checkpoints.as_ref().and_then(|c| c.damaged());
            let unconnected = Arc::clone(&unconnected);
            let from_checkpoint = restored.is_some();
            move |mut runner: SinkRunner| async move {
                let connected = runner
                    .recover(recovery, from_checkpoint, &stop, &shutdown, damaged)
                    .await?;
                if !connected {
                    unconnected.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok::<_, SluiceError>(connected.then_some(runner))
            }
        };
        let schema = spec.plan.graph.output()?.schema.clone();
        let chained = spec.sink.chained();
        let (operator, sink) = if chained {
            // The sink only applies in memory: it runs on the operators'
            // task. It recovers before the pipeline counts as started: a
            // view's restored state must be in place before a pipeline
            // started after it subscribes and reads its snapshot.
            let recovered = recover(runner).await?;
            let task_span = span.clone();
            let run = async move {
                let Some(runner) = recovered else {
                    return Ok(());
                };
                let output = Output::Sink(Box::new(runner));
                match split {
                    None => run_operators(graph, alignment, inputs, output, keep_open).await,
                    Some(split) => {
                        split
                            .spawn(
                                graph, alignment, inputs, output, keep_open, schema, &task_span,
                            )
                            .await
                    }
                }
            };
            (tokio::spawn(run.instrument(span.clone())), None)
        } else {
            let (sink_tx, mut sink_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
            sink_node.set_queue(&sink_tx);
            let output = Output::Channel(sink_tx);
            let operator = match split {
                None => tokio::spawn(
                    run_operators(graph, alignment, inputs, output, keep_open)
                        .instrument(span.clone()),
                ),
                Some(split) => tokio::spawn(
                    split.spawn(graph, alignment, inputs, output, keep_open, schema, &span),
                ),
            };
            let sink = tokio::spawn(
                async move {
                    let Some(mut runner) = recover(runner).await? else {
                        return Ok(());
                    };
                    while let Some(message) = sink_rx.recv().await {
                        runner.handle(message).await?;
                    }
                    runner.close().await
                }
                .instrument(span.clone()),
            );
            (operator, Some(sink))
        };
        let source_aborts: Vec<_> = sources.iter().map(|s| s.abort_handle()).collect();
        let mut tasks = source_aborts.clone();
        tasks.push(operator.abort_handle());
        tasks.extend(sink.as_ref().map(|s| s.abort_handle()));
        let (state_tx, state) = watch::channel(PipelineState::Running);
        let name = spec.name.clone();
        let status = Arc::clone(&metrics);
        let leave_checkpoints = checkpoints.clone();
        let handle = tokio::spawn(async move {
            // A stage that fails ends the stages before it at once: they
            // would only wait for it (a source for its next checkpoint).
            let operator_abort = operator.abort_handle();
            let upstream = source_aborts.clone();
            let sink = async move {
                let r = match sink {
                    Some(sink) => sink.await,
                    None => Ok(Ok(())),
                };
                if !matches!(r, Ok(Ok(()))) {
                    operator_abort.abort();
                    upstream.iter().for_each(|s| s.abort());
                }
                r
            };
            let operator = async move {
                let r = operator.await;
                if !matches!(r, Ok(Ok(()))) {
                    source_aborts.iter().for_each(|s| s.abort());
                }
                r
            };
            // The sources' outcome: the first that failed, if one did.
            let source = async move {
                let mut outcome = Ok(Ok(()));
                for source in sources {
                    let r = source.await;
                    if matches!(outcome, Ok(Ok(()))) {
                        outcome = r;
                    }
                }
                outcome
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
                .iter()
                .flat_map(|f| {
                    f.lock()
                        .map(|mut f| f.drain(..).collect::<Vec<_>>())
                        .unwrap_or_default()
                })
                .collect();
            for hook in hooks {
                if let Err(e) = tokio::task::spawn_blocking(hook).await {
                    tracing::warn!(error = %e, "source commit at pipeline end failed");
                }
            }
            let mut errors = Vec::new();
            // A chained sink (a view) fails on the operators' task.
            let operator = if chained {
                "operator or view"
            } else {
                "operator"
            };
            for (part, r) in [("source", s), (operator, o), ("sink", k)] {
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
        tracing::info!(pipeline = %spec.name, sources = %names.join(", "), "pipeline started");
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

/// A pipeline's operators: the graph its sources feed, the instances after
/// its exchange when it runs on several cores, and its sink's stage.
pub struct Stages {
    pub graph: OperatorGraph,
    pub split: Option<Split>,
    pub sink: Arc<NodeMetrics>,
}

/// The part of a plan after its exchange, as several instances.
pub struct Split {
    exchange: Exchange,
    /// The exchange's stage.
    stage: Arc<NodeMetrics>,
    pub instances: Vec<OperatorGraph>,
}

impl Split {
    /// How its exchange splits batches among the instances: one
    /// partitioner per input of the exchange's node.
    pub fn partitioners(&self) -> Vec<Partitioner> {
        self.exchange
            .inputs
            .iter()
            .map(|keys| Partitioner::new(keys.clone(), self.instances.len()))
            .collect()
    }

    /// The operator tasks: `graph` (the part before the exchange) reading
    /// the sources and hash-partitioning its output, one task per
    /// instance, and the merge feeding the sink. One future: the first
    /// task to fail ends it (and, dropped, the others).
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        self,
        graph: OperatorGraph,
        alignment: Alignment,
        inputs: Vec<Input>,
        sink: Output,
        keep_open: Option<CancellationToken>,
        schema: datafusion::arrow::datatypes::SchemaRef,
        span: &tracing::Span,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let n = self.instances.len();
        let ports = self.exchange.inputs.len();
        let partitioners = self.partitioners();
        let mut tasks = tokio::task::JoinSet::new();
        let mut to = Vec::new();
        let mut merged = Vec::new();
        for (i, instance) in self.instances.into_iter().enumerate() {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..ports)
                .map(|_| mpsc::channel::<Message>(CHANNEL_CAPACITY))
                .unzip();
            let (out_tx, out_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
            if i == 0 {
                if let Some(stage) = instance.entry_stage(0) {
                    stage.set_queue(&txs[0]);
                }
            }
            // One input: its barriers pass as they are; a join's two get
            // the same barrier (and commits) from the exchange, gathered as
            // the merge gathers the instances'.
            let alignment = if ports == 1 {
                Alignment::new(vec![self.exchange.node])
            } else {
                Alignment::instances(ports)
            };
            let run = run_operators(
                instance,
                alignment,
                rxs.into_iter().map(Input::Channel).collect(),
                Output::Channel(out_tx),
                keep_open.clone(),
            );
            tasks.spawn(run.instrument(span.clone()));
            to.push(txs);
            merged.push(out_rx);
        }
        let exchange = Output::Exchange {
            to,
            partitioners,
            stage: self.stage,
        };
        let before = run_operators(graph, alignment, inputs, exchange, keep_open.clone());
        tasks.spawn(before.instrument(span.clone()));
        let merge = run_operators(
            OperatorGraph::merge(n, schema),
            Alignment::instances(n),
            merged.into_iter().map(Input::Channel).collect(),
            sink,
            keep_open,
        );
        tasks.spawn(merge.instrument(span.clone()));
        async move {
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(SluiceError::Internal(format!("operator task: {e}"))),
                }
            }
            Ok(())
        }
    }
}

/// The stages of a pipeline running `plan` from `sources` into a
/// `sink_kind` sink on `parallelism` cores, added to `metrics` each with
/// its inputs: its operators (with an exchange, the instances after it
/// share their stages), and the sink's stage.
pub fn stages(
    plan: &Arc<StreamPlan>,
    sources: &[SourceDef],
    sink_kind: &str,
    metrics: &Arc<PipelineMetrics>,
    parallelism: usize,
) -> Result<Stages> {
    let source_stage = |n: &crate::plan::PlanNode| {
        Stage::New(match &n.kind {
            PlanNodeKind::Source(s) => sources
                .iter()
                .find(|d| d.name == s.name)
                .map(|d| Box::new(source_node(d))),
            _ => None,
        })
    };
    let last = || metrics.nodes().len().checked_sub(1);
    let Some(exchange) = Exchange::of(&plan.graph).filter(|_| parallelism > 1) else {
        let graph = OperatorGraph::build_part(plan, metrics, &Part::Whole, source_stage)?;
        let sink = metrics.add_node(sink_node(plan, sink_kind));
        sink.set_inputs(last().and_then(|n| n.checked_sub(1)));
        return Ok(Stages {
            graph,
            split: None,
            sink,
        });
    };
    let graph =
        OperatorGraph::build_part(plan, metrics, &Part::Before(exchange.clone()), source_stage)?;
    let upstream = last();
    let stage = metrics.add_node(NodeMetrics::new(
        NodeKind::Operator,
        "exchange",
        exchange.describe(),
    ));
    // A join's exchange reads both its inputs' last stages.
    match graph.output_stages() {
        [_, _, ..] => stage.set_inputs(graph.output_stages().iter().flatten().copied()),
        _ => stage.set_inputs(upstream),
    }
    let added = metrics.nodes().len();
    let part = |index| Part::Instance {
        exchange: exchange.clone(),
        index,
        of: parallelism,
        upstream: added.checked_sub(1),
    };
    let first = OperatorGraph::build_part(plan, metrics, &part(0), |_| Stage::New(None))?;
    // The other instances add to the first one's stages.
    let shared: std::collections::BTreeMap<_, _> = exchange
        .part(&plan.graph)
        .into_iter()
        .zip(metrics.nodes().into_iter().skip(added))
        .collect();
    let mut instances = vec![first];
    for index in 1..parallelism {
        instances.push(OperatorGraph::build_part(
            plan,
            metrics,
            &part(index),
            |n| {
                shared
                    .get(&n.id)
                    .map_or(Stage::New(None), |s| Stage::Shared(Arc::clone(s)))
            },
        )?);
    }
    let sink = metrics.add_node(sink_node(plan, sink_kind));
    sink.set_inputs(last().and_then(|n| n.checked_sub(1)));
    Ok(Stages {
        graph,
        split: Some(Split {
            exchange,
            stage,
            instances,
        }),
        sink,
    })
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
