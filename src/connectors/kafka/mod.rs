//! Kafka source and sink through rdkafka (the only module that touches it);
//! the sink is in `sink.rs`.
//!
//! The source assigns itself every partition of the topic and reads each
//! partition in its own task (a split partition queue), so partitions are
//! decoded concurrently. A batch's offset is stored once the pipeline's sink
//! has made it durable (a `Commit` message follows the batch through the
//! pipeline; see `SinkWriter::acknowledge`) and committed by the consumer
//! group, one group per pipeline. A view's pipeline commits nothing and
//! reads from the start each time: it rebuilds its in-memory state.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use futures::future::join_all;
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::{Connector, SourceConnector, SourceContext, SourceSpec};
use crate::error::{Result, SluiceError};
use crate::format::{MetaKey, RawBatch};
use crate::sql::Options;
use crate::stream::{Commit, Message};

mod sink;

use sink::sink_factory;
pub use sink::DeadLetterProducer;

pub const CONNECTOR: Connector = Connector {
    name: "kafka",
    source: Some(source_factory),
    source_options: &[
        "topic",
        "bootstrap_servers",
        "group_id",
        "start_from",
        "properties.*",
    ],
    source_decodes: true,
    metadata: &["key", "timestamp", "partition", "offset", "topic"],
    columns: None,
    sink: Some(sink_factory),
    sink_options: &[
        "topic",
        "bootstrap_servers",
        "key",
        "format",
        "properties.*",
    ],
};

/// Most records one partition task puts in a batch.
const MAX_BATCH_RECORDS: usize = 8192;
/// How long a partition task waits to fill a batch once it has a record.
const BATCH_LINGER: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartFrom {
    Earliest,
    Latest,
    Committed,
}

#[derive(Debug)]
struct KafkaSource {
    topic: String,
    bootstrap_servers: String,
    /// `None`: a group per pipeline, `sluice-<source>-<pipeline>`.
    group_id: Option<String>,
    start_from: StartFrom,
    properties: Vec<(String, String)>,
    with_metadata: bool,
}

fn source_factory(options: &mut Options, spec: &SourceSpec) -> Result<Arc<dyn SourceConnector>> {
    let valid = CONNECTOR.source_options;
    let topic = options.require("topic", "the kafka source", valid)?;
    let bootstrap_servers = options.require("bootstrap_servers", "the kafka source", valid)?;
    let group_id = options.take("group_id");
    let start_from = match options
        .take_choice("start_from", &["earliest", "latest", "committed"])?
        .as_deref()
    {
        Some("earliest") => StartFrom::Earliest,
        Some("latest") => StartFrom::Latest,
        _ => StartFrom::Committed,
    };
    let properties = options.take_prefixed("properties.");
    let source = KafkaSource {
        topic,
        bootstrap_servers,
        group_id,
        start_from,
        properties,
        with_metadata: spec.columns.iter().any(|c| c.metadata.is_some()),
    };
    validate(&source.config())?;
    Ok(Arc::new(source))
}

/// librdkafka checks every property's name and value when it builds its
/// configuration: do that now, so a bad `properties.*` fails the statement.
fn validate(config: &ClientConfig) -> Result<()> {
    config
        .create_native_config()
        .map(|_| ())
        .map_err(|e| SluiceError::Options(format!("invalid Kafka client property: {e}")))
}

type SourceConsumer = StreamConsumer<SourceStats>;

/// A source consumer's context: librdkafka's statistics give each
/// partition's high watermark (the lag is measured against the offsets the
/// source has read); its errors say when the brokers are lost and found.
struct SourceStats {
    metrics: Arc<crate::metrics::PipelineMetrics>,
    topic: String,
    source: String,
    brokers_down: std::sync::atomic::AtomicBool,
}

impl ClientContext for SourceStats {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (&p, part) in &topic.partitions {
                // librdkafka lists an internal partition -1.
                if p >= 0 && part.hi_offset >= 0 {
                    self.metrics.set_high(p, part.hi_offset, part.consumer_lag);
                }
            }
        }
        let up = statistics.brokers.values().any(|b| b.state == "UP");
        if up
            && self
                .brokers_down
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(source = %self.source, "kafka broker reachable again");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let lost = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        if lost {
            if !self
                .brokers_down
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(source = %self.source, %reason, "kafka brokers unreachable; retrying");
            }
        } else {
            tracing::warn!(source = %self.source, error = %error, %reason, "kafka client error");
        }
    }
}

impl ConsumerContext for SourceStats {}

impl KafkaSource {
    fn consumer(&self, ctx: &SourceContext) -> Result<SourceConsumer> {
        let mut config = self.config();
        match &self.group_id {
            Some(g) => config.set("group.id", g),
            // One consumer group per pipeline reading the source, so each
            // resumes from its own position.
            None => config.set(
                "group.id",
                format!("sluice-{}-{}", ctx.source_name, ctx.input_key()),
            ),
        };
        // Statistics every second: each partition's high watermark, for
        // the consumer lag in SHOW PIPELINES and the metrics endpoint.
        if !self
            .properties
            .iter()
            .any(|(k, _)| k == "statistics.interval.ms")
        {
            config.set("statistics.interval.ms", "1000");
        }
        let context = SourceStats {
            metrics: Arc::clone(&ctx.metrics),
            topic: self.topic.clone(),
            source: ctx.source_name.to_string(),
            brokers_down: std::sync::atomic::AtomicBool::new(false),
        };
        config
            .create_with_context(context)
            .map_err(|e| SluiceError::kafka("creating consumer", e))
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", self.group_id.as_deref().unwrap_or("sluice"))
            .set("enable.partition.eof", "false")
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// The topic's partitions; retries with backoff while the broker is
    /// unreachable or the topic does not exist yet.
    async fn partitions(
        &self,
        consumer: &Arc<SourceConsumer>,
        ctx: &SourceContext,
    ) -> Option<Vec<i32>> {
        let (topic, servers) = (self.topic.clone(), self.bootstrap_servers.clone());
        retry(ctx, consumer, move |c| {
            let md = c
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .map_err(|e| format!("cannot reach Kafka at {servers}: {e}"))?;
            md.topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .ok_or_else(|| format!("topic '{topic}' does not exist"))
        })
        .await
    }
}

/// Runs a blocking broker request off the async threads until it succeeds,
/// logging each failure and backing off (0.5 s doubling to 30 s); `None` on
/// shutdown.
async fn retry<T: Send + 'static>(
    ctx: &SourceContext,
    consumer: &Arc<SourceConsumer>,
    request: impl Fn(&SourceConsumer) -> std::result::Result<T, String> + Clone + Send + 'static,
) -> Option<T> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let (c, request) = (Arc::clone(consumer), request.clone());
        let problem = match tokio::task::spawn_blocking(move || request(&c)).await {
            Ok(Ok(found)) => return Some(found),
            Ok(Err(problem)) => problem,
            Err(e) => format!("broker request task failed: {e}"),
        };
        tracing::error!(source = %ctx.source_name, retry_in = ?backoff, "{problem}");
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[async_trait]
impl SourceConnector for KafkaSource {
    async fn run(&self, ctx: SourceContext) -> Result<()> {
        let consumer = Arc::new(self.consumer(&ctx)?);
        let Some(partitions) = self.partitions(&consumer, &ctx).await else {
            return Ok(());
        };
        let offset = match self.start_from {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
            // Rebuilding state: read the whole topic, then carry on.
            StartFrom::Committed if ctx.replay => Offset::Beginning,
            // With checkpoints, positions come from the checkpoint: the
            // pipeline's own group may have committed offsets whose output
            // was never committed (a crash before the first checkpoint).
            StartFrom::Committed if ctx.checkpointed && self.group_id.is_none() => {
                Offset::Beginning
            }
            StartFrom::Committed => Offset::Stored,
        };
        // Where each partition's replay ends: the group's committed offset.
        let targets = if ctx.replay && self.start_from == StartFrom::Committed {
            match self.replay_targets(&consumer, &partitions, &ctx).await {
                Some(t) => t,
                None => return Ok(()),
            }
        } else {
            Vec::new()
        };
        let catch_up = Arc::new(CatchUp {
            pending: std::sync::atomic::AtomicUsize::new(targets.len()),
            done: tokio_util::sync::CancellationToken::new(),
        });
        if ctx.replay && targets.is_empty() {
            catch_up.done.cancel();
            if ctx.caught_up().await.is_err() {
                return Ok(());
            }
        }
        let mut queues = Vec::new();
        for &p in &partitions {
            let q = consumer
                .split_partition_queue(&self.topic, p)
                .ok_or_else(|| {
                    SluiceError::Internal(format!("cannot split queue for partition {p}"))
                })?;
            queues.push((p, q));
        }
        for &p in &partitions {
            ctx.register_partition(&partition_origin(&self.topic, p))?;
        }
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            // Restored: each partition resumes right after the last record
            // the checkpoint covers.
            let from = ctx
                .restored_position(&partition_origin(&self.topic, p))
                .and_then(|v| v.as_i64())
                .map(Offset::Offset)
                .unwrap_or(offset);
            tpl.add_partition_offset(&self.topic, p, from)
                .map_err(|e| SluiceError::kafka("assigning partitions", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| SluiceError::kafka("assigning partitions", e))?;
        tracing::info!(source = %ctx.source_name, topic = %self.topic, partitions = partitions.len(), "kafka source started");

        // The main queue must be polled for events (errors, stats) to flow.
        let main = {
            let consumer = Arc::clone(&consumer);
            let ctx = ctx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        m = consumer.recv() => if let Err(e) = m {
                            tracing::warn!(source = %ctx.source_name, error = %e, "kafka consumer error");
                        }
                    }
                }
            })
        };

        let mut tasks = Vec::new();
        for (partition, queue) in queues {
            let ctx = ctx.clone();
            let consumer = Arc::clone(&consumer);
            let topic = self.topic.clone();
            let with_metadata = self.with_metadata;
            let target = targets.iter().find(|(p, _)| *p == partition);
            // A partition with nothing to replay still holds its records
            // until the others have caught up.
            let wait_for = (ctx.replay && target.is_none()).then(|| Arc::clone(&catch_up));
            let target = target.map(|&(_, t)| (t, Arc::clone(&catch_up)));
            tasks.push(tokio::spawn(async move {
                let reader = PartitionReader {
                    consumer,
                    topic,
                    partition,
                    with_metadata,
                    catch_up: target,
                    wait_for,
                };
                reader.run(queue, ctx).await
            }));
        }
        let mut result = Ok(());
        for t in join_all(tasks).await {
            match t {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(SluiceError::Internal(format!("partition task: {e}"))),
            }
        }
        main.abort();
        // Offsets are stored as the sink acknowledges batches; commit the
        // last of them once the sink has written everything.
        let source = ctx.source_name.clone();
        ctx.at_end(move || {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // Nothing stored yet is not a failure.
                if e != KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset) {
                    tracing::warn!(%source, error = %e, "final offset commit failed");
                }
            }
        });
        result
    }

    fn resumable(&self) -> bool {
        self.start_from == StartFrom::Committed
    }
}

impl KafkaSource {
    /// The group's committed offset of each partition that has records
    /// before it: a replay reads up to there before its output counts.
    /// Retries while the broker is away; `None` on shutdown.
    async fn replay_targets(
        &self,
        consumer: &Arc<SourceConsumer>,
        partitions: &[i32],
        ctx: &SourceContext,
    ) -> Option<Vec<(i32, i64)>> {
        let (topic, servers) = (self.topic.clone(), self.bootstrap_servers.clone());
        let partitions = partitions.to_vec();
        retry(ctx, consumer, move |c| {
            let failed =
                |e: KafkaError| format!("cannot read committed offsets from {servers}: {e}");
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                tpl.add_partition(&topic, p);
            }
            let committed = c
                .committed_offsets(tpl, Duration::from_secs(10))
                .map_err(failed)?;
            let mut targets = Vec::new();
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    let (low, _) = c
                        .fetch_watermarks(&topic, e.partition(), Duration::from_secs(10))
                        .map_err(failed)?;
                    if o > low {
                        targets.push((e.partition(), o));
                    }
                }
            }
            Ok(targets)
        })
        .await
    }
}

/// Partitions still replaying up to their committed offsets. The last to
/// get there tells the pipeline it has caught up; until then, partitions
/// that are there wait, so no new record overtakes the replay.
struct CatchUp {
    pending: std::sync::atomic::AtomicUsize,
    done: tokio_util::sync::CancellationToken,
}

impl CatchUp {
    async fn arrive(&self, ctx: &SourceContext) -> std::result::Result<(), super::Stopped> {
        if self
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            ctx.caught_up().await?;
            self.done.cancel();
        }
        tokio::select! {
            _ = self.done.cancelled() => Ok(()),
            _ = ctx.shutdown.cancelled() => Err(super::Stopped),
        }
    }
}

/// How often a replaying partition with nothing to read checks whether it
/// is already past its target (the last records were transaction markers).
const REPLAY_IDLE_CHECK: Duration = Duration::from_secs(1);

/// A partition's name in logs and watermark tracking.
fn partition_origin(topic: &str, partition: i32) -> String {
    format!("topic {topic} partition {partition} offset ")
}

type PartitionQueue = rdkafka::consumer::stream_consumer::StreamPartitionQueue<SourceStats>;

struct PartitionReader {
    consumer: Arc<SourceConsumer>,
    topic: String,
    partition: i32,
    with_metadata: bool,
    /// Replaying up to this offset (exclusive), with the other partitions.
    catch_up: Option<(i64, Arc<CatchUp>)>,
    /// Nothing to replay here, but the other partitions are replaying.
    wait_for: Option<Arc<CatchUp>>,
}

impl PartitionReader {
    async fn run(mut self, queue: PartitionQueue, ctx: SourceContext) -> Result<()> {
        let (topic, partition) = (self.topic.clone(), self.partition);
        let origin = partition_origin(&topic, partition);
        // One stream for the task's life: `recv` registers and drops a
        // waker slot for every message.
        let mut messages = queue.stream();
        loop {
            let mut raw = RawBatch::with_capacity(256, 64 * 1024);
            let mut meta = self.with_metadata.then(|| MetaBuilders::new(&topic));
            // Wait for the first record (or shutdown), then fill for a moment.
            let first = loop {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    m = messages.next() => match m {
                        Some(m) => break m,
                        None => return Ok(()),
                    },
                    _ = tokio::time::sleep(REPLAY_IDLE_CHECK), if self.catch_up.is_some() => {
                        if self.replayed_to_target() && self.arrive(&ctx).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            };
            let linger = tokio::time::sleep(BATCH_LINGER);
            tokio::pin!(linger);
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Ok(msg) => {
                        raw.push(msg.payload().unwrap_or_default(), msg.offset() as u64);
                        if let Some(meta) = meta.as_mut() {
                            meta.push(&msg);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(source = %ctx.source_name, %topic, partition, error = %e, "kafka read error")
                    }
                }
                if raw.len() >= MAX_BATCH_RECORDS {
                    break;
                }
                next = tokio::select! {
                    biased;
                    m = messages.next() => m,
                    _ = &mut linger => None,
                };
            }
            if let Some(meta) = meta {
                raw.meta = meta.finish();
            }
            if let Some(&o) = raw.seq.last() {
                ctx.metrics.set_position(partition, o as i64 + 1);
            }
            if let Some((target, _)) = &self.catch_up {
                // Records before the target were output by the last run:
                // they rebuild state only. Then wait for the other partitions.
                let target = *target;
                let live_from = raw.seq.iter().position(|&o| o as i64 >= target);
                let reached =
                    live_from.is_some() || raw.seq.last().is_some_and(|&o| o as i64 + 1 >= target);
                let live = live_from.map(|i| raw.split_off(i));
                if ctx.emit_raw(raw, &origin).await?.is_err() {
                    return Ok(());
                }
                if !reached {
                    continue;
                }
                if self.arrive(&ctx).await.is_err() {
                    return Ok(());
                }
                match live {
                    Some(l) => raw = l,
                    None => continue,
                }
            }
            if let Some(w) = self.wait_for.take() {
                tokio::select! {
                    _ = w.done.cancelled() => {}
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                }
            }
            let last_offset = raw.seq.last().map(|&o| o as i64);
            let next = last_offset.map(|o| serde_json::json!(o + 1));
            if ctx.emit_raw_at(raw, &origin, next).await?.is_err() {
                return Ok(());
            }
            if let Some(o) = last_offset {
                // Stored (and then auto-committed) only once the sink has
                // written the batch. librdkafka commits `o + 1`: the next to
                // read.
                let consumer = Arc::clone(&self.consumer);
                let (topic, source) = (topic.clone(), ctx.source_name.clone());
                let ack = Commit(Box::new(move || {
                    if let Err(e) = consumer.store_offset(&topic, partition, o) {
                        tracing::warn!(%source, %topic, partition, error = %e, "storing offset failed");
                    }
                }));
                if ctx.forward(Message::Commit(ack)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    /// Whether the consumer is already at or past the replay target.
    fn replayed_to_target(&self) -> bool {
        let Some((target, _)) = &self.catch_up else {
            return false;
        };
        self.consumer.position().is_ok_and(|tpl| {
            tpl.find_partition(&self.topic, self.partition)
                .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= *target))
        })
    }

    async fn arrive(&mut self, ctx: &SourceContext) -> std::result::Result<(), super::Stopped> {
        match self.catch_up.take() {
            Some((_, shared)) => shared.arrive(ctx).await,
            None => Ok(()),
        }
    }
}

struct MetaBuilders {
    key: BinaryBuilder,
    timestamp: TimestampMillisecondBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    topic: StringBuilder,
    topic_name: String,
}

impl MetaBuilders {
    fn new(topic: &str) -> Self {
        MetaBuilders {
            key: BinaryBuilder::new(),
            timestamp: TimestampMillisecondBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            topic: StringBuilder::new(),
            topic_name: topic.to_string(),
        }
    }

    fn push(&mut self, msg: &impl rdkafka::message::Message) {
        self.key.append_option(msg.key());
        self.timestamp.append_option(msg.timestamp().to_millis());
        self.partition.append_value(msg.partition());
        self.offset.append_value(msg.offset());
        self.topic.append_value(&self.topic_name);
    }

    fn finish(mut self) -> Vec<(MetaKey, ArrayRef)> {
        vec![
            (MetaKey::Key, Arc::new(self.key.finish()) as ArrayRef),
            (MetaKey::Timestamp, Arc::new(self.timestamp.finish())),
            (MetaKey::Partition, Arc::new(self.partition.finish())),
            (MetaKey::Offset, Arc::new(self.offset.finish())),
            (MetaKey::Topic, Arc::new(self.topic.finish())),
        ]
    }
}
