//! SUBSCRIBE: a continuous query whose changes stream to one client, as
//! rows of `(sluice_ts, op, columns…)`: `sluice_ts` is the time (epoch ms)
//! the change was produced, `op` one of insert, update (the new row of a
//! key), delete. The query runs as its own pipeline; it stops
//! when the client cancels, disconnects or closes the cursor.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{Sink, SinkExt};
use pgwire::api::results::{CopyEncoder, CopyTextOptions, Response, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyDone, CopyOutResponse};
use pgwire::messages::PgWireBackendMessage;
use tokio::sync::{mpsc, RwLock};

use super::encode::{self, Column};
use super::errors::pg_error;
use super::statements::SubscribeSpec;
use crate::connectors::{SinkConnector, SinkSchema, SinkWriter};
use crate::engine::Engine;
use crate::error::{Result, SluiceError};
use crate::runtime::Pipeline;
use crate::stream::StreamBatch;

/// Batches a subscription may hold before its pipeline waits.
const BUFFERED: usize = 16;

pub struct Subscription {
    pipeline: Pipeline,
    changes: mpsc::Receiver<RecordBatch>,
    schema: SchemaRef,
    /// Rows received but not fetched yet.
    pending: Option<RecordBatch>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pipeline.stop();
    }
}

impl Subscription {
    pub async fn start(engine: &RwLock<Engine>, spec: &SubscribeSpec) -> Result<Subscription> {
        let (tx, changes) = mpsc::channel(BUFFERED);
        let sink = Arc::new(ChannelSink {
            tx,
            slow_reader_timeout: spec.slow_reader_timeout,
        });
        let pipeline = engine
            .write()
            .await
            .subscribe(&spec.query, spec.snapshot, sink)
            .await?;
        let schema = with_change_columns(&pipeline.output_schema());
        Ok(Subscription {
            pipeline,
            changes,
            schema,
            pending: None,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next change batch; `None` once the query has ended. A
    /// subscription closed because its reader was too slow (or whose query
    /// failed) is an error.
    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        match self.changes.recv().await {
            Some(b) => Ok(Some(b)),
            None => match self.pipeline.done().await {
                crate::runtime::PipelineState::Failed(reason) => Err(SluiceError::Connector(
                    format!("the subscription ended: {reason}"),
                )),
                _ => Ok(None),
            },
        }
    }

    /// Up to `count` rows: waits for the first (at most `timeout`), then
    /// takes what has arrived.
    pub async fn fetch(&mut self, count: usize, timeout: Option<Duration>) -> Result<RecordBatch> {
        let mut got: Vec<RecordBatch> = Vec::new();
        let mut rows = 0;
        let first = match timeout {
            Some(t) => match tokio::time::timeout(t, self.next()).await {
                Ok(next) => next?,
                Err(_) => None,
            },
            None => self.next().await?,
        };
        let mut next = first;
        while let Some(b) = next.take() {
            let want = count - rows;
            if b.num_rows() > want {
                got.push(b.slice(0, want));
                self.pending = Some(b.slice(want, b.num_rows() - want));
                break;
            }
            rows += b.num_rows();
            got.push(b);
            if rows >= count {
                break;
            }
            next = self.changes.try_recv().ok();
        }
        Ok(concat_batches(&self.schema, &got)?)
    }
}

fn with_change_columns(schema: &Schema) -> SchemaRef {
    let mut fields = vec![
        Arc::new(Field::new("sluice_ts", DataType::Int64, false)),
        Arc::new(Field::new("op", DataType::Utf8, false)),
    ];
    fields.extend(schema.fields().iter().cloned());
    Arc::new(Schema::new(fields))
}

/// A pipeline's output, with the change columns in front.
struct ChannelSink {
    tx: mpsc::Sender<RecordBatch>,
    slow_reader_timeout: Duration,
}

impl Debug for ChannelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSink")
    }
}

#[async_trait]
impl SinkConnector for ChannelSink {
    fn kind(&self) -> &'static str {
        "subscribe"
    }

    async fn open(&self, schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(ChannelWriter {
            tx: self.tx.clone(),
            schema: with_change_columns(&schema.schema),
            slow_reader_timeout: self.slow_reader_timeout,
        }))
    }
}

struct ChannelWriter {
    tx: mpsc::Sender<RecordBatch>,
    schema: SchemaRef,
    slow_reader_timeout: Duration,
}

#[async_trait]
impl SinkWriter for ChannelWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        let n = batch.num_rows();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from(vec![now; n])), batch.op_names()];
        columns.extend(batch.data.columns().iter().cloned());
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let bytes = out.get_array_memory_size() as u64;
        // The buffer is full while the client reads nothing: wait a while,
        // then close the subscription rather than hold the view back.
        match tokio::time::timeout(self.slow_reader_timeout, self.tx.send(out)).await {
            Ok(Ok(())) => Ok(bytes),
            Ok(Err(_)) => Err(SluiceError::Connector("the subscriber went away".into())),
            Err(_) => Err(SluiceError::Connector(format!(
                "the client read nothing for {:?} while {BUFFERED} batches of changes \
                 waited; the subscription was closed so the view is not held back \
                 (SUBSCRIBE … WITH (slow_reader_timeout = '…') allows longer)",
                self.slow_reader_timeout
            ))),
        }
    }
}

/// `COPY (SUBSCRIBE …) TO STDOUT`: streams rows (text format) as they
/// happen, flushing each batch, until the query ends or the client cancels
/// (pgwire drops this future and answers 57014) or disconnects.
pub async fn copy_out<C>(
    engine: &RwLock<Engine>,
    client: &mut C,
    spec: &SubscribeSpec,
    zone: Tz,
) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut sub = Subscription::start(engine, spec).await.map_err(pg_error)?;
    let schema = sub.schema();
    let fields = Arc::new(encode::fields(
        &schema,
        &pgwire::api::portal::Format::UnifiedText,
    ));
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            fields.len() as i16,
            vec![0; fields.len()],
        )))
        .await?;
    let mut encoder = CopyEncoder::new_text(Arc::clone(&fields), CopyTextOptions::default());
    let mut rows = 0usize;
    while let Some(batch) = sub.next().await.map_err(pg_error)? {
        let columns: Vec<Column> = batch
            .columns()
            .iter()
            .map(|c| Column::new(c, zone))
            .collect::<PgWireResult<_>>()?;
        for row in 0..batch.num_rows() {
            for c in &columns {
                c.encode(row, &mut encoder)?;
            }
            client
                .feed(PgWireBackendMessage::CopyData(encoder.take_copy()))
                .await?;
            rows += 1;
        }
        client.flush().await?;
    }
    client
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(Response::Execution(Tag::new("COPY").with_rows(rows)))
}
