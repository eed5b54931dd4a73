//! Sluice: a streaming SQL engine.
//!
//! Data flows one way, and so do the modules:
//!
//! ```text
//! sql (parse) → plan (DataFusion logical plan → streaming stages)
//!     → runtime (pipelines of tokio tasks passing Arrow batches)
//!     → connectors (sources in, sinks out) / clients
//! ```
//!
//! `format` turns records into Arrow and back; `catalog` holds what the SQL
//! created; [`engine::Engine`] ties them together for the CLI. `stream`
//! (batches and messages), `metrics` and `terminal` (stdout and the
//! progress line on one screen) are shared by all.

pub mod catalog;
pub mod connectors;
pub mod engine;
pub mod error;
pub mod format;
pub mod functions;
pub mod metrics;
pub mod plan;
pub mod runtime;
pub mod script;
pub mod server;
pub mod snapshot;
pub mod sql;
pub mod stream;
pub mod terminal;

pub use engine::{AdHocPlan, Engine, Outcome};
pub use error::{Result, SluiceError};
pub use runtime::checkpoint::Checkpoints;
