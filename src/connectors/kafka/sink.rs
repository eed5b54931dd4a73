//! The Kafka sink: one message per row, keyed by the changelog key (or the
//! `key` option); a deleted key is written as a tombstone.
//!
//! Writing does not wait for the broker. Each message is numbered as it is
//! handed to librdkafka, and its delivery report (on the producer's polling
//! thread) advances the count of messages delivered without a gap
//! ([`Deliveries`]). A source's acknowledgement waits in the sink's acker
//! task until every message written before it is delivered, so offsets are
//! stored only behind delivered output, while the sink goes on encoding the
//! next batches. A full local queue is the back-pressure: the writer waits
//! for deliveries and sends again. With checkpoints each checkpoint's output
//! is one transaction.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BinaryBuilder, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, Notify};

use super::super::{SinkConnector, SinkSchema, SinkWriter};
use super::{validate, CONNECTOR};
use crate::error::{Result, SluiceError};
use crate::format::{EncodedRows, RecordEncoder};
use crate::snapshot::StateSnapshot;
use crate::sql::Options;
use crate::stream::{Commit, Op, StreamBatch};

pub(super) fn producer_config(
    bootstrap_servers: &str,
    properties: &[(String, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        // Never give up on a message while the broker is away: the pipeline
        // waits (back-pressure) and nothing is lost.
        .set("message.timeout.ms", "0")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

#[derive(Debug)]
struct KafkaSink {
    topic: String,
    bootstrap_servers: String,
    key: Option<String>,
    encoder: RecordEncoder,
    properties: Vec<(String, String)>,
}

pub(super) fn sink_factory(options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
    let valid = CONNECTOR.sink_options;
    let topic = options.require("topic", "the kafka sink", valid)?;
    let bootstrap_servers = options.require("bootstrap_servers", "the kafka sink", valid)?;
    let key = options.take("key");
    let encoder = super::super::take_encoder(options)?;
    let properties = options.take_prefixed("properties.");
    validate(&producer_config(&bootstrap_servers, &properties))?;
    Ok(Arc::new(KafkaSink {
        topic,
        bootstrap_servers,
        key,
        encoder,
        properties,
    }))
}

/// Which messages of a producer are delivered: `upto` counts the messages
/// delivered without a gap (messages are numbered from 0 as they are sent;
/// partitions deliver in their own order, so later ones can come first).
/// A failed delivery is kept and fails the sink.
struct Deliveries {
    state: Mutex<Delivered>,
    progress: Notify,
}

#[derive(Default)]
struct Delivered {
    upto: u64,
    /// From message `upto` on: which are delivered (ahead of a gap).
    ahead: VecDeque<bool>,
    failed: Option<KafkaError>,
}

impl Deliveries {
    fn new() -> Arc<Deliveries> {
        Arc::new(Deliveries {
            state: Mutex::new(Delivered::default()),
            progress: Notify::new(),
        })
    }

    fn delivered(&self, message: u64, failure: Option<KafkaError>) {
        {
            let Ok(mut d) = self.state.lock() else {
                return;
            };
            if let Some(e) = failure {
                d.failed.get_or_insert(e);
            }
            if message < d.upto {
                return;
            }
            let at = (message - d.upto) as usize;
            if d.ahead.len() <= at {
                d.ahead.resize(at + 1, false);
            }
            d.ahead[at] = true;
            if at > 0 {
                return;
            }
            while d.ahead.front() == Some(&true) {
                d.ahead.pop_front();
                d.upto += 1;
            }
        }
        self.progress.notify_waiters();
    }

    /// How many messages are delivered without a gap; the first failure.
    fn upto(&self) -> std::result::Result<u64, KafkaError> {
        let d = self.state.lock().map_err(|_| KafkaError::Canceled)?;
        match &d.failed {
            Some(e) => Err(e.clone()),
            None => Ok(d.upto),
        }
    }

    /// Waits until the first `count` messages are delivered.
    async fn wait_for(&self, count: u64) -> std::result::Result<(), KafkaError> {
        loop {
            let mut progress = pin!(self.progress.notified());
            progress.as_mut().enable();
            if self.upto()? >= count {
                return Ok(());
            }
            progress.await;
        }
    }

    /// Waits for any delivery (or a moment: the queue may have room again).
    async fn wait_a_little(&self) {
        tokio::time::timeout(Duration::from_millis(50), self.progress.notified())
            .await
            .ok();
    }
}

/// The producer's context: delivery reports carry the message's number.
struct SinkContext {
    deliveries: Arc<Deliveries>,
}

impl ClientContext for SinkContext {}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, message: usize) {
        let failure = result.as_ref().err().map(|(e, _)| e.clone());
        self.deliveries.delivered(message as u64, failure);
    }
}

type SinkProducer = ThreadedProducer<SinkContext>;

#[async_trait]
impl SinkConnector for KafkaSink {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn open(&self, schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        let key_columns = match &self.key {
            Some(name) => vec![schema.schema.index_of(name).map_err(|_| {
                SluiceError::Plan(format!(
                    "the kafka sink's key column '{name}' is not in the output; columns are: {}",
                    schema
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?],
            None => schema.key_columns.clone(),
        };
        let mut config = producer_config(&self.bootstrap_servers, &self.properties);
        let transactions = match &schema.exactly_once {
            Some(eo) => {
                let id = match self
                    .properties
                    .iter()
                    .find(|(k, _)| k == "transactional.id")
                {
                    Some((_, id)) => id.clone(),
                    None => format!("sluice-{}-{}", eo.instance, eo.pipeline),
                };
                config.set("transactional.id", &id);
                Some(Transactions::new(&self.bootstrap_servers, &id)?)
            }
            None => None,
        };
        let deliveries = Deliveries::new();
        let producer: SinkProducer = config
            .create_with_context(SinkContext {
                deliveries: Arc::clone(&deliveries),
            })
            .map_err(|e| SluiceError::kafka("creating producer", e))?;
        let (acks, pending) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge_delivered(Arc::clone(&deliveries), pending));
        Ok(Box::new(KafkaSinkWriter {
            producer,
            deliveries,
            sent: 0,
            acks: Some(acks),
            acker: Some(acker),
            topic: self.topic.clone(),
            key_columns,
            encoder: self.encoder.clone(),
            transactions,
        }))
    }
}

/// The acker task: runs each source acknowledgement once the messages
/// written before it are delivered, in order. After a failed delivery it
/// runs none (the sink fails; the source re-reads from the last stored
/// offsets).
async fn acknowledge_delivered(
    deliveries: Arc<Deliveries>,
    mut pending: mpsc::UnboundedReceiver<(u64, Commit)>,
) {
    while let Some((sent, ack)) = pending.recv().await {
        if deliveries.wait_for(sent).await.is_err() {
            return;
        }
        (ack.0)();
    }
}

struct KafkaSinkWriter {
    producer: SinkProducer,
    deliveries: Arc<Deliveries>,
    /// Messages handed to the producer so far (the next one's number).
    sent: u64,
    acks: Option<mpsc::UnboundedSender<(u64, Commit)>>,
    acker: Option<tokio::task::JoinHandle<()>>,
    topic: String,
    key_columns: Vec<usize>,
    encoder: RecordEncoder,
    /// With checkpoints: each checkpoint's output is one transaction.
    transactions: Option<Transactions>,
}

/// A transactional sink's bookkeeping. Each committed transaction also
/// commits, for a consumer group named like the transactional id, an
/// "offset" on the topic's partition 0 that is really the checkpoint's
/// epoch: after a crash it tells whether the last checkpoint's transaction
/// made it. Until it is committed, a transaction's messages are also kept
/// here and go into the checkpoint, so recovery can write them again when
/// the crash came between the checkpoint and its commit.
struct Transactions {
    marker: rdkafka::consumer::BaseConsumer,
    group: Arc<rdkafka::consumer::ConsumerGroupMetadata>,
    open: bool,
    keys: BinaryBuilder,
    values: BinaryBuilder,
}

/// How long one transactional call to the broker may take before it is
/// retried.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Transactions {
    fn new(bootstrap_servers: &str, id: &str) -> Result<Transactions> {
        let marker: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("group.id", id)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| SluiceError::kafka("creating the transaction marker consumer", e))?;
        let group = marker.group_metadata().ok_or_else(|| {
            SluiceError::Internal("the marker consumer has no group metadata".into())
        })?;
        Ok(Transactions {
            marker,
            group: Arc::new(group),
            open: false,
            keys: BinaryBuilder::new(),
            values: BinaryBuilder::new(),
        })
    }
}

impl KafkaSinkWriter {
    /// Runs a blocking transactional call off the async threads, retrying
    /// (with backoff) while the broker is unreachable: the pipeline waits.
    async fn txn<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl Fn(&SinkProducer) -> rdkafka::error::KafkaResult<T> + Clone + Send + 'static,
    ) -> Result<T> {
        let mut backoff = Duration::from_millis(500);
        loop {
            let (p, c) = (self.producer.clone(), call.clone());
            let r = tokio::task::spawn_blocking(move || c(&p))
                .await
                .map_err(|e| SluiceError::Internal(format!("{what} task: {e}")))?;
            match r {
                Ok(v) => return Ok(v),
                Err(KafkaError::Transaction(e)) if e.is_retriable() => {
                    tracing::warn!(topic = %self.topic, error = %e, retry_in = ?backoff, "{what} failed; retrying");
                }
                Err(e) => {
                    return Err(SluiceError::kafka(
                        format!("{what} (topic '{}')", self.topic),
                        e,
                    ))
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn failed(&self, e: KafkaError) -> SluiceError {
        SluiceError::kafka(format!("producing to topic '{}'", self.topic), e)
    }

    /// Hands one message to the producer, waiting while its queue is full.
    async fn send(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<()> {
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, self.sent as usize);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.deliveries.upto().map_err(|e| self.failed(e))?;
                    self.deliveries.wait_a_little().await;
                }
                Err((e, _)) => return Err(self.failed(e)),
            }
        }
    }

    /// Waits until every message sent so far is delivered.
    async fn delivered(&self) -> Result<()> {
        self.deliveries
            .wait_for(self.sent)
            .await
            .map_err(|e| self.failed(e))
    }

    /// The epoch of the last checkpoint whose transaction was committed.
    async fn committed_epoch(&self) -> Result<u64> {
        let Some(t) = &self.transactions else {
            return Ok(0);
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let committed = t
            .marker
            .committed_offsets(tpl, TXN_TIMEOUT)
            .map_err(|e| SluiceError::kafka("reading the last committed checkpoint", e))?;
        Ok(committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o > 0 => Some(o as u64),
                _ => None,
            })
            .unwrap_or(0))
    }

    async fn begin(&mut self) -> Result<()> {
        self.txn("beginning a transaction", |p| p.begin_transaction())
            .await?;
        if let Some(t) = &mut self.transactions {
            t.open = true;
        }
        Ok(())
    }

    /// Commits the open transaction as checkpoint `epoch`'s.
    async fn commit_as(&mut self, epoch: u64) -> Result<()> {
        let Some(t) = &self.transactions else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, 0, Offset::Offset(epoch as i64))
            .map_err(|e| SluiceError::kafka("marking the checkpoint", e))?;
        let group = Arc::clone(&t.group);
        self.txn("committing a transaction", move |p| {
            p.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)?;
            p.commit_transaction(TXN_TIMEOUT)
        })
        .await?;
        if let Some(t) = &mut self.transactions {
            t.open = false;
            t.keys = BinaryBuilder::new();
            t.values = BinaryBuilder::new();
        }
        Ok(())
    }
}

#[async_trait]
impl SinkWriter for KafkaSinkWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        self.deliveries.upto().map_err(|e| self.failed(e))?;
        let rows = batch.with_op_column()?;
        let values = self.encoder.encode_rows(&rows)?;
        let keys = Keys::encode(&batch.data, &self.key_columns)?;
        let mut bytes = 0;
        for i in 0..values.len() {
            let key = keys.as_ref().and_then(|k| k.get(i));
            // An upsert stream: a deleted key is a tombstone (no payload),
            // so a compacted topic forgets it.
            let tombstone = key.is_some() && batch.op(i) == Op::Delete;
            let value = (!tombstone).then(|| values.row(i));
            bytes += (value.map_or(0, <[u8]>::len) + key.map_or(0, <[u8]>::len)) as u64;
            self.send(key, value).await?;
            // Until its checkpoint commits, the transaction's messages are
            // kept for the checkpoint.
            if let Some(t) = &mut self.transactions {
                t.keys.append_option(key);
                t.values.append_option(value);
            }
        }
        Ok(bytes)
    }

    /// Runs `ack` once every message written before it is delivered,
    /// without holding up the next batches.
    async fn acknowledge(&mut self, ack: Commit) -> Result<()> {
        match &self.acks {
            Some(acks) if acks.send((self.sent, ack)).is_ok() => Ok(()),
            _ => {
                // The acker stopped: a delivery failed.
                self.deliveries.upto().map_err(|e| self.failed(e))?;
                Err(SluiceError::Internal(
                    "the kafka sink's acker stopped".into(),
                ))
            }
        }
    }

    async fn flush(&mut self) -> Result<()> {
        self.delivered().await
    }

    fn transactional(&self) -> bool {
        self.transactions.is_some()
    }

    /// Every message of the open transaction is delivered (not yet
    /// visible); they go into the checkpoint too.
    async fn prepare(&mut self, _epoch: u64) -> Result<Option<StateSnapshot>> {
        self.flush().await?;
        let Some(t) = &self.transactions else {
            return Ok(None);
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Binary, true),
            Field::new("value", DataType::Binary, true),
        ]));
        let keys = t.keys.finish_cloned();
        let values = t.values.finish_cloned();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(keys), Arc::new(values)])?;
        Ok(Some(StateSnapshot::new(
            serde_json::Value::Null,
            vec![batch],
        )))
    }

    async fn commit(&mut self, epoch: u64) -> Result<()> {
        if self.transactions.is_none() {
            return Ok(());
        }
        self.commit_as(epoch).await?;
        self.begin().await
    }

    /// Fences the transaction a crashed run left open (aborting it); if the
    /// restored checkpoint's own transaction never committed, writes its
    /// messages again and commits them.
    async fn recover(&mut self, epoch: u64, state: Option<StateSnapshot>) -> Result<()> {
        if self.transactions.is_none() {
            return Ok(());
        }
        self.txn("initialising transactions", |p| {
            p.init_transactions(TXN_TIMEOUT)
        })
        .await?;
        let committed = self.committed_epoch().await?;
        if committed > epoch {
            // Recovery fell back past a damaged checkpoint: the topic already
            // holds the output of the epochs after the restored one, and the
            // input would produce it again. Never duplicate silently.
            return Err(SluiceError::AheadOfCheckpoint(format!(
                "kafka sink to topic '{}' refuses to start: the topic already holds the output of checkpoint {committed}, \
                 but recovery restored checkpoint {epoch}, so running on would write the output in between again \
                 (restore the damaged checkpoint object, or drop and create the sink to accept that)",
                self.topic
            )));
        }
        if let (Some(state), true) = (state, committed < epoch && epoch > 0) {
            self.begin().await?;
            let mut count = 0;
            for batch in &state.batches {
                let keys = batch.column(0).as_binary::<i32>();
                let values = batch.column(1).as_binary::<i32>();
                for i in 0..batch.num_rows() {
                    let key = (!keys.is_null(i)).then(|| keys.value(i));
                    let value = (!values.is_null(i)).then(|| values.value(i));
                    self.send(key, value).await?;
                    count += 1;
                }
            }
            self.delivered().await?;
            self.commit_as(epoch).await?;
            tracing::info!(topic = %self.topic, epoch, messages = count, "finished the commit a crash interrupted");
        }
        self.begin().await
    }

    async fn close(&mut self) -> Result<()> {
        // What follows the last checkpoint is aborted: the next run
        // produces it again from the input.
        let result = if self.transactions.as_ref().is_some_and(|t| t.open) {
            self.txn("aborting a transaction", |p| {
                p.abort_transaction(TXN_TIMEOUT)
            })
            .await
            .map(|_| ())
        } else {
            self.flush().await
        };
        // Every acknowledgement is run (or, after a failure, dropped) before
        // the pipeline's final offset commit.
        self.acks = None;
        if let Some(acker) = self.acker.take() {
            if result.is_ok() {
                acker
                    .await
                    .map_err(|e| SluiceError::Internal(format!("kafka sink acker: {e}")))?;
            } else {
                acker.abort();
            }
        }
        result
    }
}

impl Drop for KafkaSinkWriter {
    /// A writer dropped without `close` (its pipeline failed) leaves no
    /// acker waiting for deliveries that will never come.
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            acker.abort();
        }
    }
}

/// Message keys: one key column as its text, several as a JSON object.
enum Keys {
    Text(StringArray),
    Json(EncodedRows),
}

impl Keys {
    fn encode(batch: &RecordBatch, key_columns: &[usize]) -> Result<Option<Keys>> {
        match key_columns {
            [] => Ok(None),
            [single] => {
                let text = cast(batch.column(*single), &DataType::Utf8)?;
                Ok(Some(Keys::Text(text.as_string::<i32>().clone())))
            }
            many => Ok(Some(Keys::Json(EncodedRows::json(&batch.project(many)?)?))),
        }
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            Keys::Text(text) => (!text.is_null(i)).then(|| text.value(i).as_bytes()),
            Keys::Json(rows) => Some(rows.row(i)),
        }
    }
}

/// Writes undecodable records to a Kafka topic, verbatim, with the position
/// and reason as headers.
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterProducer {
    pub fn new(bootstrap_servers: &str, topic: &str) -> Result<Self> {
        let producer = producer_config(bootstrap_servers, &[])
            .create()
            .map_err(|e| SluiceError::kafka("creating dead-letter producer", e))?;
        Ok(DeadLetterProducer {
            producer,
            topic: topic.to_string(),
        })
    }

    pub async fn send(&self, record: &[u8], position: &str, reason: &str) -> Result<()> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "sluice.position",
                value: Some(position),
            })
            .insert(Header {
                key: "sluice.error",
                value: Some(reason),
            });
        self.producer
            .send(
                FutureRecord::<(), [u8]>::to(&self.topic)
                    .payload(record)
                    .headers(headers),
                rdkafka::util::Timeout::Never,
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| {
                SluiceError::kafka(format!("writing dead-letter topic '{}'", self.topic), e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_count_only_messages_delivered_without_a_gap() {
        let d = Deliveries::new();
        d.delivered(1, None);
        d.delivered(3, None);
        assert_eq!(d.upto().unwrap(), 0, "message 0 is still out");
        d.delivered(0, None);
        assert_eq!(d.upto().unwrap(), 2, "0 and 1; 2 is still out");
        d.delivered(2, None);
        assert_eq!(d.upto().unwrap(), 4);
        d.delivered(4, None);
        assert_eq!(d.upto().unwrap(), 5);
        d.delivered(5, Some(KafkaError::Canceled));
        assert!(d.upto().is_err(), "a failed delivery fails the sink");
    }
}
