//! A source's handle on its pipeline ([`SourceContext`]): what every
//! source connector runs with. It decodes raw records (on blocking threads,
//! several batches at once), counts them, dead-letters bad ones, tracks
//! each partition's watermark and position, and sends batches, watermarks,
//! barriers and caught-up marks to the pipeline in an order that keeps
//! every partition's rows ahead of any watermark that passes them.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::dead_letter::DeadLetterWriter;
use super::{position, SourceDef, WatermarkTracker};
use crate::error::{Result, SluiceError};
use crate::format::{RawBatch, RecordDecoder};
use crate::metrics::{NodeKind, NodeMetrics, PipelineMetrics};
use crate::stream::{Message, StreamBatch};

/// A source's handle on its pipeline: decodes, counts, dead-letters and
/// sends. Cloned into each partition's task.
#[derive(Clone)]
pub struct SourceContext {
    pub source_name: Arc<str>,
    /// The pipeline reading the source.
    pub pipeline: Arc<str>,
    /// Which of the pipeline's inputs this is (a UNION reads several).
    pub input: usize,
    /// How many batches of this input may decode at once, each on a core
    /// of its own (`--parallelism`).
    pub parallelism: usize,
    /// The pipeline rebuilds state (a view's, an aggregate's) on every
    /// start: a resumable source reads from its start and calls
    /// [`SourceContext::caught_up`] once it reaches the position the last
    /// run acknowledged. Otherwise it resumes from that position.
    pub replay: bool,
    /// Where sources without a position of their own (files) keep it; `None`
    /// without a data directory.
    positions: Option<Arc<std::path::Path>>,
    /// Run (off the async threads) once the pipeline's sink has finished.
    finishers: Finishers,
    pub shutdown: CancellationToken,
    pub metrics: Arc<PipelineMetrics>,
    pub schema: SchemaRef,
    output: mpsc::Sender<Message>,
    decoder: Option<Arc<RecordDecoder>>,
    dead_letter: Option<Arc<DeadLetterWriter>>,
    watermarks: Option<Arc<WatermarkTracker>>,
    /// Held from computing a watermark until the batch behind it is sent:
    /// otherwise another partition could send a watermark that passes rows
    /// still on their way, and they would arrive late.
    send_order: Arc<tokio::sync::Mutex<()>>,
    /// The pipeline's source stage, for its own figures.
    node: Option<Arc<NodeMetrics>>,
    /// Each partition's position after its last batch sent, updated under
    /// `send_order`, so a barrier records exactly what went before it.
    sent_positions: Arc<std::sync::Mutex<serde_json::Map<String, serde_json::Value>>>,
    /// What the checkpoint the pipeline restored from recorded of the source
    /// (`{"positions": {…}, "watermark": …}`); `None` on a fresh start.
    restored: Option<Arc<serde_json::Value>>,
    /// The newest barrier sent on (injected or passed on from a view).
    last_barrier: Arc<std::sync::atomic::AtomicU64>,
    /// Checkpoints are on: positions come from them, not from the source's
    /// own store (a consumer group, a position file).
    pub checkpointed: bool,
}

type Finishers = Arc<std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>>;

/// A batch of raw records being decoded on a blocking thread
/// ([`SourceContext::decode_in_background`]).
pub struct DecodeJob {
    handle: tokio::task::JoinHandle<(
        RawBatch,
        Result<crate::format::Decoded>,
        std::time::Duration,
    )>,
}

/// Returned by `emit_*` when the pipeline no longer takes input.
#[derive(Debug)]
pub struct Stopped;

impl SourceContext {
    pub async fn new(
        def: &SourceDef,
        output: mpsc::Sender<Message>,
        shutdown: CancellationToken,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<Self> {
        let decoder = match &def.decoding {
            Some((format, max)) => Some(Arc::new(RecordDecoder::new(
                format.clone(),
                &def.columns,
                def.schema.clone(),
                *max,
            )?)),
            None => None,
        };
        let dead_letter = match &def.dead_letter {
            Some(spec) => Some(Arc::new(spec.open().await?)),
            None => None,
        };
        let node = metrics
            .nodes()
            .into_iter()
            .find(|n| n.kind == NodeKind::Source);
        Ok(SourceContext {
            node,
            source_name: def.name.as_str().into(),
            pipeline: def.name.as_str().into(),
            input: 0,
            parallelism: 1,
            replay: false,
            positions: None,
            finishers: Arc::default(),
            shutdown,
            metrics,
            schema: def.schema.clone(),
            output,
            decoder,
            dead_letter,
            watermarks: def
                .watermark
                .clone()
                .map(|w| Arc::new(WatermarkTracker::new(w))),
            send_order: Arc::default(),
            sent_positions: Arc::default(),
            restored: None,
            last_barrier: Arc::default(),
            checkpointed: false,
        })
    }

    /// Restored from a checkpoint: `source` is what the source recorded at
    /// its barrier. The watermark continues from there.
    pub(crate) fn with_restored(mut self, source: serde_json::Value) -> Result<Self> {
        if let (Some(w), Some(state)) = (&self.watermarks, source.get("watermark")) {
            w.restore(state)?;
        }
        if let Some(p) = source.get("positions").and_then(|p| p.as_object()) {
            if let Ok(mut positions) = self.sent_positions.lock() {
                *positions = p.clone();
            }
        }
        self.restored = Some(Arc::new(source));
        Ok(self)
    }

    /// The newest barrier this source sent on.
    pub fn last_barrier(&self) -> u64 {
        self.last_barrier.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the pipeline restored from a checkpoint.
    pub fn is_restored(&self) -> bool {
        self.restored.is_some()
    }

    /// The position `partition` had at the restored checkpoint.
    pub fn restored_position(&self, partition: &str) -> Option<&serde_json::Value> {
        self.restored.as_ref()?.get("positions")?.get(partition)
    }

    /// Injects a checkpoint barrier between two batches: it records every
    /// partition's position after the batches sent before it.
    pub async fn inject_barrier(&self, epoch: u64) -> std::result::Result<(), Stopped> {
        let _order = self.send_order.lock().await;
        let positions = self
            .sent_positions
            .lock()
            .map(|p| serde_json::Value::Object(p.clone()))
            .unwrap_or_default();
        let watermark = self
            .watermarks
            .as_ref()
            .map(|w| w.checkpoint())
            .unwrap_or_default();
        self.last_barrier
            .fetch_max(epoch, std::sync::atomic::Ordering::Relaxed);
        let barrier = crate::stream::Barrier {
            epoch,
            source: serde_json::json!({"positions": positions, "watermark": watermark}),
            operators: Vec::new(),
            injected: Some(std::time::Instant::now()),
        };
        self.output
            .send(Message::Barrier(barrier))
            .await
            .map_err(|_| Stopped)
    }

    /// Sends a message on in order with the partitions' batches.
    pub async fn send_in_order(&self, message: Message) -> std::result::Result<(), Stopped> {
        let _order = self.send_order.lock().await;
        self.output.send(message).await.map_err(|_| Stopped)
    }

    /// Runs `hook` after the pipeline's sink has written everything (a
    /// final commit of the positions the sink acknowledged).
    pub fn at_end(&self, hook: impl FnOnce() + Send + 'static) {
        if let Ok(mut f) = self.finishers.lock() {
            f.push(Box::new(hook));
        }
    }

    pub(crate) fn finishers(&self) -> Finishers {
        Arc::clone(&self.finishers)
    }

    pub fn for_pipeline(mut self, pipeline: &str, replay: bool) -> Self {
        self.pipeline = pipeline.into();
        self.replay = replay;
        self
    }

    /// The pipeline's `input`-th input, with its own source stage.
    pub fn for_input(mut self, input: usize, node: Option<Arc<NodeMetrics>>) -> Self {
        self.input = input;
        if node.is_some() {
            self.node = node;
        }
        self
    }

    /// Decodes up to `parallelism` batches at once.
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// What names this input's own position (its position file, its Kafka
    /// consumer group): the pipeline's name, and for a second or later
    /// input also its number, so two inputs of one source keep apart.
    pub fn input_key(&self) -> String {
        match self.input {
            0 => self.pipeline.to_string(),
            i => format!("{}@{i}", self.pipeline),
        }
    }

    pub(crate) fn with_positions(mut self, positions: Option<Arc<std::path::Path>>) -> Self {
        self.positions = positions;
        self
    }

    /// The file where this pipeline's source keeps its position, when the
    /// engine has a data directory.
    pub fn position_file(&self) -> Option<position::PositionFile> {
        self.positions
            .as_ref()
            .map(|dir| position::PositionFile::new(dir, &self.input_key(), &self.source_name))
    }

    /// Replay reached the position the last run acknowledged: from here on
    /// the pipeline's output is new.
    pub async fn caught_up(&self) -> std::result::Result<(), Stopped> {
        tracing::info!(source = %self.source_name, pipeline = %self.pipeline, "caught up with the last run");
        self.output
            .send(Message::CaughtUp)
            .await
            .map_err(|_| Stopped)
    }

    /// Declares a partition before it sends anything, so that it holds the
    /// watermark back until it does (or goes idle).
    pub fn register_partition(&self, partition: &str) -> Result<()> {
        match &self.watermarks {
            Some(w) => w.register(partition),
            None => Ok(()),
        }
    }

    /// A partition ended (a socket client left).
    pub async fn close_partition(
        &self,
        partition: &str,
    ) -> Result<std::result::Result<(), Stopped>> {
        let _order = self.send_order.lock().await;
        match &self.watermarks {
            Some(w) => match w.close(partition)? {
                Some(wm) => Ok(self.send_watermark(wm).await),
                None => Ok(Ok(())),
            },
            None => Ok(Ok(())),
        }
    }

    async fn send_watermark(&self, wm: i64) -> std::result::Result<(), Stopped> {
        self.metrics
            .watermark
            .fetch_max(wm, std::sync::atomic::Ordering::Relaxed);
        self.output
            .send(Message::Watermark(wm))
            .await
            .map_err(|_| Stopped)
    }

    /// Decodes raw records and sends the good ones on. Bad records are
    /// counted, logged with their position (`origin` + record seq) and
    /// written to the dead-letter target when there is one.
    pub async fn emit_raw(
        &self,
        raw: RawBatch,
        origin: &str,
    ) -> Result<std::result::Result<(), Stopped>> {
        self.emit_raw_at(raw, origin, None).await
    }

    /// `emit_raw`, recording `position` as the partition's position once the
    /// batch is sent (for checkpoints: the barrier after it records it).
    pub async fn emit_raw_at(
        &self,
        raw: RawBatch,
        origin: &str,
        position: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        if raw.is_empty() {
            if let Some(p) = position {
                let _order = self.send_order.lock().await;
                self.set_position(origin, p);
            }
            return Ok(Ok(()));
        }
        let started = std::time::Instant::now();
        let decoded = self.decoder()?.decode(&raw)?;
        self.deliver(raw, decoded, started, origin, position).await
    }

    fn decoder(&self) -> Result<&Arc<RecordDecoder>> {
        self.decoder
            .as_ref()
            .ok_or_else(|| SluiceError::Internal("raw records from a non-decoding source".into()))
    }

    /// Decodes `raw` on a blocking thread, so that several batches of one
    /// input decode on several cores at once; `deliver_decoded` then hands
    /// them on, in the order they were read.
    pub fn decode_in_background(&self, raw: RawBatch) -> Result<DecodeJob> {
        let decoder = Arc::clone(self.decoder()?);
        let handle = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let decoded = decoder.decode(&raw);
            (raw, decoded, started.elapsed())
        });
        Ok(DecodeJob { handle })
    }

    /// Waits for a batch `decode_in_background` decoded and sends it on,
    /// as `emit_raw_at` would have.
    pub async fn deliver_decoded(
        &self,
        job: DecodeJob,
        origin: &str,
        position: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        let (raw, decoded, took) = job
            .handle
            .await
            .map_err(|e| SluiceError::Internal(format!("decoding records: {e}")))?;
        // The stage's busy time is the decoding's, not the wait for it.
        let now = std::time::Instant::now();
        let started = now.checked_sub(took).unwrap_or(now);
        self.deliver(raw, decoded?, started, origin, position).await
    }

    /// Counts decoded records, dead-letters the bad ones and sends the
    /// good ones on.
    async fn deliver(
        &self,
        raw: RawBatch,
        decoded: crate::format::Decoded,
        started: std::time::Instant,
        origin: &str,
        position: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        PipelineMetrics::add(&self.metrics.records_in, raw.len() as u64);
        PipelineMetrics::add(&self.metrics.bytes_in, raw.byte_len() as u64);
        if let Some(node) = &self.node {
            node.record(started, raw.len() as u64, raw.byte_len() as u64, 0);
        }
        if !decoded.bad.is_empty() {
            PipelineMetrics::add(&self.metrics.errors, decoded.bad.len() as u64);
            for bad in &decoded.bad {
                let position = format!("{origin}{}", raw.seq[bad.index]);
                tracing::warn!(source = %self.source_name, %position, reason = %bad.reason, "bad record");
                self.metrics.recent_errors.push(
                    &self.source_name,
                    &position,
                    &bad.reason,
                    raw.record(bad.index),
                );
                if let Some(dl) = &self.dead_letter {
                    dl.write(raw.record(bad.index), &position, &bad.reason)
                        .await?;
                    PipelineMetrics::add(&self.metrics.dead_lettered, 1);
                }
            }
            if let Some(dl) = &self.dead_letter {
                dl.flush().await?;
            }
        }
        match decoded.batch {
            Some(batch) => self.send(batch, origin, position).await,
            None => {
                if let Some(p) = position {
                    let _order = self.send_order.lock().await;
                    self.set_position(origin, p);
                }
                Ok(Ok(()))
            }
        }
    }

    fn set_position(&self, partition: &str, position: serde_json::Value) {
        if let Ok(mut p) = self.sent_positions.lock() {
            p.insert(partition.to_string(), position);
        }
    }

    /// Passes on a source's commit (once the batches it acknowledges were
    /// sent), counting any wait for room as back-pressure.
    pub async fn forward(&self, message: Message) -> std::result::Result<(), Stopped> {
        self.send_counting_backpressure(message).await
    }

    /// Sends a batch a generator built itself.
    pub async fn emit_batch(
        &self,
        batch: RecordBatch,
        partition: &str,
    ) -> Result<std::result::Result<(), Stopped>> {
        self.emit_batch_at(batch, partition, None).await
    }

    /// `emit_batch`, recording `position` as the partition's position.
    pub async fn emit_batch_at(
        &self,
        batch: RecordBatch,
        partition: &str,
        position: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        let rows = batch.num_rows() as u64;
        PipelineMetrics::add(&self.metrics.records_in, rows);
        if let Some(node) = &self.node {
            node.count(rows, batch.get_array_memory_size() as u64, 0);
        }
        self.send(batch, partition, position).await
    }

    /// Sends a message on, counting the time spent waiting for room in the
    /// channel (back-pressure from a slower stage downstream).
    async fn send_counting_backpressure(
        &self,
        message: Message,
    ) -> std::result::Result<(), Stopped> {
        let Some(node) = &self.node else {
            return self.output.send(message).await.map_err(|_| Stopped);
        };
        let message = match self.output.try_send(message) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stopped),
            Err(mpsc::error::TrySendError::Full(m)) => m,
        };
        let waited = std::time::Instant::now();
        let sent = self.output.send(message).await.map_err(|_| Stopped);
        node.blocked_ns.fetch_add(
            waited.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        sent
    }

    /// Sends a batch, then the watermark if the batch advanced it.
    async fn send(
        &self,
        batch: RecordBatch,
        partition: &str,
        position: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        let _order = self.send_order.lock().await;
        let advanced = match &self.watermarks {
            Some(w) => w.observe(partition, &batch)?,
            None => None,
        };
        let rows = batch.num_rows() as u64;
        let mut batch = StreamBatch::append(batch);
        batch.born = Some(std::time::Instant::now());
        if self
            .send_counting_backpressure(Message::Batch(batch))
            .await
            .is_err()
        {
            return Ok(Err(Stopped));
        }
        if let Some(p) = position {
            self.set_position(partition, p);
        }
        if let Some(node) = &self.node {
            PipelineMetrics::add(&node.records_out, rows);
        }
        match advanced {
            Some(wm) => Ok(self.send_watermark(wm).await),
            None => Ok(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::create_source;
    use crate::sql::{Options, SourceColumn};
    use datafusion::arrow::array::{AsArray, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{
        DataType, Field, Schema, TimeUnit, TimestampMillisecondType,
    };
    use datafusion::physical_expr::expressions::Column;

    /// Partitions of one source send from their own tasks. However their
    /// sends interleave, no batch reaches the pipeline behind a watermark
    /// that already passed its rows (they would be dropped as late).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_never_send_a_batch_behind_a_watermark() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let schema = Arc::new(Schema::new(vec![Field::new("ts", ts.clone(), false)]));
        let columns = vec![SourceColumn {
            name: "ts".into(),
            data_type: ts,
            nullable: false,
            metadata: None,
            pg_type: None,
        }];
        let mut options = Options::new();
        options
            .insert("connector".into(), "datagen".into())
            .unwrap();
        let watermark = Some((
            "ts".to_string(),
            Arc::new(Column::new("ts", 0)) as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ));
        let def = create_source("s", columns, schema.clone(), options, watermark).unwrap();
        const BATCHES: i64 = 20_000;
        // Room for everything: the partitions race each other, not the reader.
        let (tx, mut rx) = mpsc::channel(4 * BATCHES as usize + 1);
        let ctx = SourceContext::new(&def, tx, CancellationToken::new(), Arc::default())
            .await
            .unwrap();
        // Both registered before either sends: otherwise, on a busy
        // machine, "a" could send (and advance the watermark alone) before
        // "b" exists, which is a race in the test, not in the source.
        for p in ["a", "b"] {
            ctx.register_partition(p).unwrap();
        }
        let mut tasks = Vec::new();
        for p in ["a", "b"] {
            let (ctx, schema) = (ctx.clone(), schema.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..BATCHES {
                    let rows = TimestampMillisecondArray::from(vec![i * 10, i * 10 + 9]);
                    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(rows)]).unwrap();
                    ctx.emit_batch(batch, p).await.unwrap().unwrap();
                }
            }));
        }
        drop(ctx);
        for t in tasks {
            t.await.unwrap();
        }
        let (mut watermark, mut rows, mut late) = (i64::MIN, 0, 0);
        while let Some(m) = rx.recv().await {
            match m {
                Message::Watermark(w) => watermark = watermark.max(w),
                Message::Batch(b) => {
                    for t in b
                        .data
                        .column(0)
                        .as_primitive::<TimestampMillisecondType>()
                        .values()
                    {
                        rows += 1;
                        late += usize::from(*t < watermark);
                    }
                }
                _ => {}
            }
        }
        assert_eq!(rows, 2 * 2 * BATCHES as usize);
        assert_eq!(late, 0, "rows that arrived behind the watermark");
    }
}
