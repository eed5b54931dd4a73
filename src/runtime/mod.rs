//! Pipelines and operators: source → operators → sink as tokio tasks passing
//! Arrow batches.

pub mod aggregate;
pub mod checkpoint;
pub mod collect;
mod key_table;
pub mod operator;
pub mod pipeline;
pub mod progress;
#[cfg(test)]
mod restore_check;
pub mod session;
pub mod state;
pub mod stateless;
pub mod view;
pub mod window;
mod window_keys;

pub use pipeline::{Pipeline, PipelineSpec, PipelineState};
