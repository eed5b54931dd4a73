//! A checkpointed pipeline's source task: the connector runs, and barriers
//! go in between its batches when the checkpoint coordinator says so.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpointer;
use crate::connectors::{SourceConnector, SourceContext};
use crate::error::Result;
use crate::stream::Message;

/// The source side of a checkpointed pipeline: runs the connector and, on
/// the coordinator's signal, injects barriers between its batches. The
/// final checkpoint (engine shutdown) stops the source right after its
/// barrier. A bounded input that ends flushes the operators and takes one
/// last checkpoint, so its final output is committed with it.
pub(super) async fn run_checkpointed(
    connector: Arc<dyn SourceConnector>,
    ctx: SourceContext,
    cp: Arc<Checkpointer>,
    shutdown: CancellationToken,
) -> Result<()> {
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
                if stop.is_cancelled() {
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
                give_up = Some(tokio::time::Instant::now() + Duration::from_secs(20));
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
