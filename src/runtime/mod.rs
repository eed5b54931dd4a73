//! Pipelines and operators: sources → a graph of operators → sink as tokio
//! tasks passing Arrow batches.

pub mod aggregate;
mod align;
pub mod checkpoint;
pub mod collect;
pub mod graph;
mod key_table;
pub mod operator;
mod operator_task;
pub mod pipeline;
pub mod progress;
#[cfg(test)]
mod restore_check;
pub mod session;
mod source_task;
pub mod state;
pub mod stateless;
pub mod union;
mod upserts;
pub mod view;
pub mod window;
mod window_keys;

pub use pipeline::{Pipeline, PipelineSpec, PipelineState};
