//! A pipeline's sink end: recovers the sink from the last checkpoint,
//! writes what the operators send, and takes part in checkpoints. It runs
//! on a task of its own for sinks with a remote end (Kafka, files), or
//! chained onto the last operator task for sinks that only apply in memory
//! (a view's dispatcher).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::checkpoint::{encode_pipeline, Checkpointer};
use super::state::StateSnapshot;
use super::upserts::Upserts;
use crate::connectors::SinkWriter;
use crate::error::{Result, SluiceError};
use crate::metrics::{NodeMetrics, PipelineMetrics};
use crate::stream::Message;

pub(super) struct SinkRunner {
    pub pipeline: String,
    pub writer: Box<dyn SinkWriter>,
    pub upserts: Upserts,
    /// Restored without checkpoints: what comes before the caught-up mark
    /// is a replay the last run wrote.
    pub suppress: bool,
    pub node: Arc<NodeMetrics>,
    pub metrics: Arc<PipelineMetrics>,
    pub checkpoints: Option<Arc<Checkpointer>>,
    /// Dropped (not shutting down): the sink commits what it holds at the
    /// end.
    pub dropping: Arc<AtomicBool>,
}

/// Where the sink recovers from: the restored checkpoint's epoch and the
/// sink's part of it.
pub(super) type Recovery = (u64, Option<StateSnapshot>);

impl SinkRunner {
    /// Recovers the sink from a checkpoint. `Ok(false)`: the pipeline was
    /// stopped while the sink still waited for its remote end; it wrote
    /// nothing, so nothing is lost.
    pub async fn recover(
        &mut self,
        recovery: Option<Recovery>,
        from_checkpoint: bool,
        stop: &CancellationToken,
        shutdown: &CancellationToken,
        damaged: Option<String>,
    ) -> Result<bool> {
        let Some((epoch, state)) = recovery else {
            return Ok(true);
        };
        let name = &self.pipeline;
        tokio::select! {
            recovered = self.writer.recover(epoch, state) => recovered.map_err(|e| match damaged {
                // A sink refusing to write again what it already committed
                // names the checkpoint that made it so.
                Some(damaged) if matches!(e, SluiceError::AheadOfCheckpoint(_)) => {
                    SluiceError::AheadOfCheckpoint(format!("{e}; {damaged}"))
                }
                _ => e,
            })?,
            _ = stop.cancelled() => {
                tracing::info!(pipeline = %name, "stopped before its sink could connect");
                return Ok(false);
            }
            _ = shutdown.cancelled() => {
                tracing::info!(pipeline = %name, "shut down before its sink could connect");
                return Ok(false);
            }
        }
        if from_checkpoint {
            tracing::info!(pipeline = %name, epoch, "sink recovered from checkpoint");
        }
        Ok(true)
    }

    /// Writes or acts on one message from the operators.
    pub async fn handle(&mut self, message: Message) -> Result<()> {
        match message {
            // Replayed: the last run wrote this.
            Message::Batch(_) if self.suppress => {}
            Message::Batch(batch) => {
                let started = std::time::Instant::now();
                let rows_in = batch.num_rows() as u64;
                let bytes = batch.data.get_array_memory_size() as u64;
                let born = batch.born;
                let batch = self.upserts.normalize(batch)?;
                let bytes_out = if batch.num_rows() > 0 {
                    self.writer.write(&batch).await?
                } else {
                    0
                };
                let rows = batch.num_rows() as u64;
                self.node.record(started, rows_in, bytes, rows);
                PipelineMetrics::add(&self.node.bytes_out, bytes_out);
                PipelineMetrics::add(&self.metrics.records_out, rows);
                PipelineMetrics::add(&self.metrics.bytes_out, bytes_out);
                if let Some(born) = born {
                    self.metrics
                        .latency_seconds
                        .observe(born.elapsed().as_secs_f64());
                }
                let writer = &self.writer;
                self.node
                    .refresh_state(false, || writer.state_size().map(Into::into));
            }
            Message::Watermark(w) => {
                let started = std::time::Instant::now();
                self.writer.watermark(w).await?;
                self.node.record(started, 0, 0, 0);
            }
            Message::Commit(c) => self.writer.acknowledge(c).await?,
            Message::CaughtUp => {
                self.suppress = false;
                self.writer.caught_up().await?;
            }
            Message::Barrier(barrier) => {
                if let Some(cp) = &self.checkpoints {
                    checkpoint(
                        cp,
                        &self.pipeline,
                        barrier,
                        self.writer.as_mut(),
                        &self.metrics,
                    )
                    .await?;
                }
            }
            Message::EndOfInput => {}
        }
        Ok(())
    }

    /// The operators have sent everything.
    pub async fn close(mut self) -> Result<()> {
        // Dropped: nothing will restore this pipeline, so what it holds
        // since the last checkpoint is committed now.
        if self.dropping.load(Ordering::Relaxed) && self.writer.transactional() {
            self.writer.commit(0).await?;
        }
        self.writer.close().await?;
        let writer = &self.writer;
        self.node
            .refresh_state(true, || writer.state_size().map(Into::into));
        Ok(())
    }
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
