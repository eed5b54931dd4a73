//! What an operator task reads: a channel fed by a source task (or by the
//! operators before it), or a view's dispatcher, read straight from it.
//!
//! A pipeline that reads a view has no task of its own for it: it
//! subscribes to the view, and its operators take the view's snapshot and
//! then every change the view dispatches, in the order the view applied
//! them, barriers and watermarks included.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::checkpoint::Checkpointer;
use super::view::Subscription;
use crate::metrics::{NodeMetrics, PipelineMetrics};
use crate::stream::{Barrier, Message};

pub(super) enum Input {
    /// A source task's channel, or another operator task's.
    Channel(mpsc::Receiver<Message>),
    /// A view's dispatcher.
    View(Box<ViewInput>),
}

impl Input {
    /// The next message; `None` once the input has ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match self {
            Input::Channel(rx) => rx.poll_recv(cx),
            Input::View(v) => v.poll_recv(cx),
        }
    }
}

/// The last checkpoint a pipeline takes once the view it reads has ended:
/// what it flushed at the end is committed with it.
type Finale = Pin<Box<dyn Future<Output = Option<Barrier>> + Send>>;

/// A view read as a pipeline's input.
pub(super) struct ViewInput {
    /// The snapshot and what the view said of itself when subscribed.
    pending: VecDeque<Message>,
    /// The view's changes; `None` once it has ended or this pipeline
    /// stopped following it.
    changes: Option<mpsc::Receiver<Message>>,
    /// This pipeline's stop.
    stop: CancellationToken,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The whole engine is stopping: the view drains to its end, and this
    /// input takes everything it still sends (or the view's acknowledged
    /// position would be ahead of this pipeline's output); the pipeline
    /// stops, so its open windows wait for the next run.
    engine_shutdown: CancellationToken,
    shutting_down: Pin<Box<WaitForCancellationFutureOwned>>,
    draining: bool,
    metrics: Arc<PipelineMetrics>,
    /// The input's stage in the pipeline's figures.
    node: Option<Arc<NodeMetrics>>,
    checkpoints: Option<Arc<Checkpointer>>,
    /// The newest barrier passed on.
    last_barrier: u64,
    finale: Option<Finale>,
}

impl ViewInput {
    /// Reads `subscription`: its snapshot first when `snapshot` (a pipeline
    /// restored from a checkpoint already reflects the view's restored
    /// contents, so only later changes are new to it).
    pub fn new(
        subscription: Subscription,
        snapshot: bool,
        stop: CancellationToken,
        engine_shutdown: CancellationToken,
        metrics: Arc<PipelineMetrics>,
        node: Option<Arc<NodeMetrics>>,
        checkpoints: Option<Arc<Checkpointer>>,
    ) -> ViewInput {
        let mut pending: VecDeque<Message> = VecDeque::new();
        if snapshot {
            pending.extend(subscription.snapshot.into_iter().map(Message::Batch));
        }
        pending.extend(subscription.watermark.map(Message::Watermark));
        if subscription.caught_up {
            pending.push_back(Message::CaughtUp);
        }
        let mut input = ViewInput {
            pending,
            changes: subscription.changes,
            stopped: Box::pin(stop.clone().cancelled_owned()),
            stop,
            shutting_down: Box::pin(engine_shutdown.clone().cancelled_owned()),
            engine_shutdown,
            draining: false,
            metrics,
            node,
            checkpoints,
            last_barrier: 0,
            finale: None,
        };
        if input.changes.is_none() {
            // The view had ended already.
            input.ended();
        }
        input
    }

    /// Nothing to re-read: the input is caught up before anything the view
    /// sends.
    pub fn starts_caught_up(&mut self) {
        self.pending.push_front(Message::CaughtUp);
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Poll::Ready(Some(self.count(m)));
            }
            if let Some(changes) = &mut self.changes {
                if !self.draining && self.shutting_down.as_mut().poll(cx).is_ready() {
                    self.draining = true;
                    self.stop.cancel();
                }
                if !self.draining && self.stopped.as_mut().poll(cx).is_ready() {
                    // Dropped on its own: stop following.
                    self.changes = None;
                    self.finale = None;
                    return Poll::Ready(None);
                }
                match changes.poll_recv(cx) {
                    Poll::Ready(Some(m)) => return Poll::Ready(Some(self.count(m))),
                    Poll::Ready(None) => {
                        self.changes = None;
                        if self.draining || self.stop.is_cancelled() {
                            return Poll::Ready(None);
                        }
                        self.ended();
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            return match &mut self.finale {
                None => Poll::Ready(None),
                Some(f) => match f.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(barrier) => {
                        self.finale = None;
                        match barrier {
                            Some(b) => Poll::Ready(Some(self.count(Message::Barrier(b)))),
                            None => Poll::Ready(None),
                        }
                    }
                },
            };
        }
    }

    /// The view ended (its input did): the operators flush, and with
    /// checkpoints one more is taken after what they flushed.
    fn ended(&mut self) {
        self.pending.push_back(Message::EndOfInput);
        let Some(cp) = self.checkpoints.clone() else {
            return;
        };
        let mut triggers = cp.triggers();
        let current = triggers.borrow_and_update().epoch;
        // The checkpoint under way waits for this pipeline's barrier.
        if current > self.last_barrier {
            self.pending.push_back(Message::Barrier(barrier(current)));
        }
        let shutdown = self.engine_shutdown.clone();
        let stop = self.stop.clone();
        self.finale = Some(Box::pin(async move {
            cp.request().await;
            tokio::select! {
                changed = triggers.changed() => {
                    changed.ok().map(|_| barrier(triggers.borrow_and_update().epoch))
                }
                _ = shutdown.cancelled() => None,
                _ = stop.cancelled() => None,
            }
        }));
    }

    /// Counts what passes into the pipeline's figures.
    fn count(&mut self, message: Message) -> Message {
        match &message {
            Message::Batch(b) => {
                let rows = b.num_rows() as u64;
                PipelineMetrics::add(&self.metrics.records_in, rows);
                if let Some(node) = &self.node {
                    node.count(rows, b.data.get_array_memory_size() as u64, rows);
                }
            }
            Message::Watermark(w) => {
                self.metrics.watermark.fetch_max(*w, Ordering::Relaxed);
            }
            Message::Barrier(b) => self.last_barrier = self.last_barrier.max(b.epoch),
            Message::Commit(_) | Message::CaughtUp | Message::EndOfInput => {}
        }
        message
    }
}

fn barrier(epoch: u64) -> Barrier {
    Barrier {
        epoch,
        injected: Some(std::time::Instant::now()),
        ..Default::default()
    }
}
