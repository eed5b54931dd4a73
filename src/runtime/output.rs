//! Where an operator task sends what it emits: a channel to the next task,
//! the hash exchange in front of a plan's parallel instances, or the sink
//! itself, chained onto the task when it only applies in memory (a view).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::exchange::Partitioner;
use super::sink_task::SinkRunner;
use crate::error::{Result, SluiceError};
use crate::metrics::NodeMetrics;
use crate::stream::{Commit, Message};

/// Where an operator task sends what it emits.
pub enum Output {
    Channel(mpsc::Sender<Message>),
    /// Hash-partitions batches among instances: `to[i][port]` feeds input
    /// `port` of instance `i`, a batch leaving by output `port` is split by
    /// `partitioners[port]`.
    Exchange {
        to: Vec<Vec<mpsc::Sender<Message>>>,
        partitioners: Vec<Partitioner>,
        /// The exchange's stage in the pipeline's figures.
        stage: Arc<NodeMetrics>,
    },
    /// The sink, run on this task.
    Sink(Box<SinkRunner>),
}

impl Output {
    pub async fn send(&mut self, message: Message) -> Result<()> {
        let stopped = || SluiceError::Connector("the sink stopped".into());
        match self {
            Output::Channel(tx) => tx.send(message).await.map_err(|_| stopped()),
            Output::Sink(sink) => sink.handle(message).await,
            Output::Exchange {
                to,
                partitioners,
                stage,
            } => {
                // What the other instances get of a control message.
                let copy = |m: &Message| -> Option<Message> {
                    Some(match m {
                        Message::Watermark(w) => Message::Watermark(*w),
                        Message::CaughtUp => Message::CaughtUp,
                        Message::EndOfInput => Message::EndOfInput,
                        Message::Commit(_) => Message::Commit(Commit(Box::new(|| {}))),
                        Message::Barrier(b) => Message::Barrier(crate::stream::Barrier {
                            operators: Vec::new(),
                            ..b.clone()
                        }),
                        Message::Batch(_) => return None,
                    })
                };
                match message {
                    Message::Batch(batch) => {
                        let started = Instant::now();
                        let n = batch.num_rows() as u64;
                        let bytes = batch.data.get_array_memory_size() as u64;
                        let port = batch.port;
                        let partitioner = partitioners.get_mut(port).ok_or_else(|| {
                            SluiceError::Internal(format!("an exchange without input {port}"))
                        })?;
                        let parts = partitioner.split(batch)?;
                        stage.record(started, n, bytes, n);
                        for (i, part) in parts {
                            to[i][port]
                                .send(Message::Batch(part))
                                .await
                                .map_err(|_| stopped())?;
                        }
                    }
                    other => {
                        // To every input of every instance; the first gets
                        // the original (a barrier's operator states, a
                        // real commit).
                        let mut all = to.iter().flatten();
                        let first = all.next();
                        for tx in all {
                            if let Some(copy) = copy(&other) {
                                tx.send(copy).await.map_err(|_| stopped())?;
                            }
                        }
                        if let Some(tx) = first {
                            tx.send(other).await.map_err(|_| stopped())?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Output `port` of the graph feeding it ended (`all`: every one has):
    /// an exchange ends that input of every instance; anything else ends
    /// once all have.
    pub async fn end(&mut self, port: usize, all: bool) -> Result<()> {
        match self {
            Output::Exchange { to, .. } => {
                for inputs in to.iter() {
                    if let Some(tx) = inputs.get(port) {
                        tx.send(Message::EndOfInput)
                            .await
                            .map_err(|_| SluiceError::Connector("the sink stopped".into()))?;
                    }
                }
                Ok(())
            }
            _ if all => self.send(Message::EndOfInput).await,
            _ => Ok(()),
        }
    }

    /// Everything was sent: a chained sink closes (a channel closes when
    /// dropped).
    pub async fn close(self) -> Result<()> {
        match self {
            Output::Sink(sink) => sink.close().await,
            Output::Channel(_) | Output::Exchange { .. } => Ok(()),
        }
    }
}
