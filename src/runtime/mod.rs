//! Pipelines and operators: sources → a graph of operators → sink as tokio
//! tasks passing Arrow batches.

pub mod aggregate;
mod align;
pub mod checkpoint;
pub mod collect;
mod exchange;
pub mod graph;
mod input;
pub mod join;
mod join_output;
mod join_side;
mod key_table;
pub mod operator;
mod operator_task;
mod output;
pub mod pipeline;
pub mod progress;
pub mod rescale;
#[cfg(test)]
mod restore_check;
pub mod session;
mod sink_task;
mod source_task;
pub mod split;
pub mod state;
pub mod stateless;
pub mod union;
mod upserts;
pub mod view;
pub mod view_io;
pub mod window;
mod window_assign;
mod window_calls;
mod window_keys;

pub use pipeline::{Pipeline, PipelineSpec, PipelineState};

static PARALLELISM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many cores a pipeline may keep busy unless its view or sink says
/// otherwise (`--parallelism`; by default, the machine's cores).
pub fn default_parallelism() -> usize {
    match PARALLELISM.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Sets [`default_parallelism`] for this process (`--parallelism`).
pub fn set_default_parallelism(n: usize) {
    PARALLELISM.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}
