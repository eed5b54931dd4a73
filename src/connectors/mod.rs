//! Connectors: one file each, behind the [`SourceConnector`] and
//! [`SinkConnector`] traits, found by name in [`CONNECTORS`].
//!
//! A connector's factory validates its WITH options into a typed config when
//! the statement is created (so errors come before any pipeline starts); the
//! config then opens readers and writers for each pipeline that uses it.

pub mod blackhole;
mod context;
pub mod datagen;
pub mod dead_letter;
pub mod file;
mod file_sink;
pub mod kafka;
mod lines;
pub mod nexmark;
pub mod position;
pub mod sandbox;
pub mod socket;
pub mod stdout;
pub mod watermark;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::{Result, SluiceError};
use crate::format::{Format, MetaKey, RecordEncoder, DEFAULT_MAX_RECORD_BYTES};
use crate::sql::{Options, SourceColumn};
use crate::stream::StreamBatch;
pub use context::{DecodeJob, SourceContext, Stopped};
use dead_letter::DeadLetterSpec;
pub use watermark::{WatermarkSpec, WatermarkTracker, DEFAULT_IDLE_TIMEOUT};

/// A validated source: reads its input into a pipeline.
#[async_trait]
pub trait SourceConnector: Send + Sync + fmt::Debug {
    /// Reads until the input is exhausted or `ctx.shutdown` fires.
    async fn run(&self, ctx: SourceContext) -> Result<()>;

    /// Whether the input ends by itself (a file read once, a generator with a
    /// limit).
    fn is_bounded(&self) -> bool {
        false
    }

    /// Whether the source keeps a position across restarts and, asked to
    /// replay (`SourceContext::replay`), can re-read its input from the
    /// start up to that position and say so with `SourceContext::caught_up`
    /// (Kafka, files, views over them). A pipeline stopped on such a source
    /// keeps its open windows for the next run instead of flushing them.
    fn resumable(&self) -> bool {
        false
    }
}

/// A validated sink: opens a writer for one pipeline.
#[async_trait]
pub trait SinkConnector: Send + Sync + fmt::Debug {
    async fn open(&self, schema: &SinkSchema) -> Result<Box<dyn SinkWriter>>;

    /// What it writes to, for EXPLAIN and the pipeline figures.
    fn kind(&self) -> &'static str;

    /// Whether it only applies what it gets in memory (a view's
    /// dispatcher), so it runs on the task of the operators before it
    /// rather than on one of its own.
    fn chained(&self) -> bool {
        false
    }
}

/// Writes a pipeline's output.
#[async_trait]
pub trait SinkWriter: Send {
    /// Writes a batch; returns the bytes it sent on: the encoded records
    /// (keys and payloads for Kafka), or for a sink that keeps rows in
    /// memory (a view, a subscription) the batch's Arrow bytes.
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64>;

    /// Makes everything written so far durable / visible.
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Runs a source's acknowledgement once every row written before it is
    /// durable. By default that is now: `write` returns only then. A sink
    /// whose writes complete later runs it later, in order.
    async fn acknowledge(&mut self, ack: crate::stream::Commit) -> Result<()> {
        (ack.0)();
        Ok(())
    }

    /// The pipeline's input is complete up to this event time (ms).
    async fn watermark(&mut self, _watermark: i64) -> Result<()> {
        Ok(())
    }

    /// The pipeline has re-read its input up to where its last run stopped
    /// (see `Message::CaughtUp`).
    async fn caught_up(&mut self) -> Result<()> {
        Ok(())
    }

    /// Rows and bytes of state it keeps (a view's contents).
    fn state_size(&self) -> Option<(u64, u64)> {
        None
    }

    /// A checkpoint barrier: everything written so far must survive a crash
    /// (it need not be visible yet). Returns what recovery needs to finish
    /// the epoch (a view's contents, a transaction's messages).
    async fn prepare(&mut self, _epoch: u64) -> Result<Option<crate::snapshot::StateSnapshot>> {
        self.flush().await?;
        Ok(None)
    }

    /// Whether output becomes visible only at `commit` (then the sink waits
    /// for each checkpoint to complete before it goes on).
    fn transactional(&self) -> bool {
        false
    }

    /// Checkpoint `epoch` is complete: make its output visible.
    async fn commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    /// The pipeline restored from checkpoint `epoch`; `state` is what
    /// `prepare` returned then. Finishes that epoch's commit if the crash
    /// came before it, and drops output written after it.
    async fn recover(
        &mut self,
        _epoch: u64,
        _state: Option<crate::snapshot::StateSnapshot>,
    ) -> Result<()> {
        Ok(())
    }

    /// The pipeline ends: flush, and release what the writer holds.
    async fn close(&mut self) -> Result<()> {
        self.flush().await
    }
}

/// What a sink is given to write.
#[derive(Debug, Clone)]
pub struct SinkSchema {
    pub schema: SchemaRef,
    /// Rows carry insert / update / delete ops.
    pub changelog: bool,
    /// Columns that identify a row of a changelog (the GROUP BY key).
    pub key_columns: Vec<usize>,
    /// The pipeline carries on from an earlier run (restored from the data
    /// directory on a resumable source): add to the output, don't replace it.
    pub resume: bool,
    /// Checkpoints are on: output is committed with them (exactly once).
    /// Holds the pipeline's name and the engine's instance id.
    pub exactly_once: Option<ExactlyOnce>,
}

/// What a sink needs to take part in checkpoints.
#[derive(Debug, Clone)]
pub struct ExactlyOnce {
    pub pipeline: String,
    /// Stable across restarts of one data directory.
    pub instance: String,
}

/// What a source factory sees of its CREATE SOURCE statement.
pub struct SourceSpec<'a> {
    pub name: &'a str,
    pub columns: &'a [SourceColumn],
    pub schema: SchemaRef,
    /// The record format, for sources that decode records.
    pub format: Option<&'a Format>,
}

type SourceFactory = fn(&mut Options, &SourceSpec) -> Result<Arc<dyn SourceConnector>>;
type SinkFactory = fn(&mut Options) -> Result<Arc<dyn SinkConnector>>;
type ColumnsFactory = fn(&Options) -> Result<Vec<SourceColumn>>;

/// A connector in the name → factory table.
pub struct Connector {
    pub name: &'static str,
    pub source: Option<SourceFactory>,
    pub source_options: &'static [&'static str],
    /// Whether the source reads records in a format (else it makes Arrow
    /// arrays itself, like the generators).
    pub source_decodes: bool,
    /// `METADATA FROM '…'` keys the source fills.
    pub metadata: &'static [&'static str],
    /// The columns of a source created without a column list (generators
    /// with a fixed schema), from its options.
    pub columns: Option<ColumnsFactory>,
    pub sink: Option<SinkFactory>,
    pub sink_options: &'static [&'static str],
}

pub const CONNECTORS: &[Connector] = &[
    kafka::CONNECTOR,
    file::CONNECTOR,
    socket::CONNECTOR,
    datagen::CONNECTOR,
    nexmark::CONNECTOR,
    stdout::CONNECTOR,
    blackhole::CONNECTOR,
];

pub fn connector(name: &str) -> Result<&'static Connector> {
    CONNECTORS.iter().find(|c| c.name == name).ok_or_else(|| {
        SluiceError::Options(format!(
            "unknown connector '{name}'; available connectors are: {}",
            CONNECTORS
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The part a connector plays in a statement: CREATE SOURCE or CREATE SINK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Sink,
}

impl Role {
    fn plays(self, c: &Connector) -> bool {
        match self {
            Role::Source => c.source.is_some(),
            Role::Sink => c.sink.is_some(),
        }
    }

    /// The connectors that can play this part, sorted by name.
    fn names(self) -> Vec<&'static str> {
        let mut names: Vec<_> = CONNECTORS
            .iter()
            .filter(|c| self.plays(c))
            .map(|c| c.name)
            .collect();
        names.sort_unstable();
        names
    }

    /// `sources: datagen, file, …`, the end of an error message.
    fn listing(self) -> String {
        let what = match self {
            Role::Source => "sources",
            Role::Sink => "sinks",
        };
        format!("{what}: {}", self.names().join(", "))
    }
}

/// The connector named in a CREATE SOURCE or CREATE SINK. An unknown name is
/// answered with the closest name that can play the part and the list of
/// those that can: a sink-only connector is no help to a source.
pub fn connector_for(name: &str, role: Role) -> Result<&'static Connector> {
    let lower = name.to_ascii_lowercase();
    let Some(entry) = CONNECTORS.iter().find(|c| c.name == lower) else {
        let hint = crate::sql::suggest::closest(&lower, &role.names())
            .map(|c| format!(" did you mean '{c}'?"))
            .unwrap_or_default();
        return Err(SluiceError::Options(format!(
            "connector '{name}' does not exist;{hint} {}",
            role.listing()
        )));
    };
    if !role.plays(entry) {
        let part = match role {
            Role::Source => "a source",
            Role::Sink => "a sink",
        };
        return Err(SluiceError::Options(format!(
            "connector '{}' cannot be used as {part}; {}",
            entry.name,
            role.listing()
        )));
    }
    Ok(entry)
}

/// Options every decoding source takes.
const DECODING_OPTIONS: &[&str] = &[
    "dead_letter",
    "dead_letter_topic",
    "dead_letter_bootstrap_servers",
    "max_record_bytes",
];

/// A source as the catalog keeps it.
#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    pub connector_name: &'static str,
    pub schema: SchemaRef,
    pub columns: Vec<SourceColumn>,
    pub connector: Arc<dyn SourceConnector>,
    pub decoding: Option<(Format, usize)>,
    pub dead_letter: Option<DeadLetterSpec>,
    pub watermark: Option<WatermarkSpec>,
    /// The WATERMARK clause as written (`ts AS ts - INTERVAL '2 seconds'`).
    pub watermark_sql: Option<String>,
    /// `None` for an append-only input; for an updating one (a view of an
    /// aggregate), the columns that key its rows (empty: whole rows).
    pub changelog: Option<Vec<usize>>,
}

/// Validates a CREATE SOURCE's options and builds its definition.
pub fn create_source(
    name: &str,
    columns: Vec<SourceColumn>,
    schema: SchemaRef,
    mut options: Options,
    watermark: Option<(String, Arc<dyn datafusion::physical_expr::PhysicalExpr>)>,
) -> Result<SourceDef> {
    let connector_name = options.take("connector").ok_or_else(|| {
        SluiceError::Options(format!(
            "missing required option 'connector' for source '{name}'; {}",
            Role::Source.listing()
        ))
    })?;
    let entry = connector_for(&connector_name, Role::Source)?;
    let factory = entry
        .source
        .ok_or_else(|| SluiceError::Internal(format!("{} has no source", entry.name)))?;
    let mut valid: Vec<&str> = vec!["connector"];
    valid.extend_from_slice(entry.source_options);
    let idle_timeout = match options.take("idle_timeout") {
        None => DEFAULT_IDLE_TIMEOUT,
        Some(_) if watermark.is_none() => {
            return Err(SluiceError::Options(
                "option 'idle_timeout' needs a WATERMARK FOR … in the column list".into(),
            ))
        }
        Some(t) => crate::sql::parse_duration("idle_timeout", &t)?,
    };
    let watermark = watermark.map(|(column, expr)| WatermarkSpec {
        column,
        expr,
        idle_timeout,
    });
    if entry.source_decodes {
        valid.extend_from_slice(Format::OPTIONS);
        valid.extend_from_slice(DECODING_OPTIONS);
    }
    for c in &columns {
        if c.metadata.as_deref() == Some(crate::format::PROCTIME) {
            if !entry.source_decodes {
                return Err(SluiceError::NotSupported(format!(
                    "column '{}' AS PROCTIME() on a {} source: processing time is filled \
                     when records are decoded (file, kafka and socket sources); over a \
                     generator, use proctime() in a view",
                    c.name, entry.name
                )));
            }
            continue;
        }
        if let Some(key) = &c.metadata {
            if !entry.metadata.contains(&key.as_str()) || MetaKey::parse(key).is_none() {
                return Err(SluiceError::Plan(format!(
                    "column '{}': the {} connector has no metadata '{key}'{}",
                    c.name,
                    entry.name,
                    if entry.metadata.is_empty() {
                        String::new()
                    } else {
                        format!("; it has: {}", entry.metadata.join(", "))
                    }
                )));
            }
        }
    }
    valid.push("idle_timeout");
    let (decoding, dead_letter) = if entry.source_decodes {
        let format = Format::take(&mut options)?;
        let max = options
            .take_parsed::<usize>("max_record_bytes", "a number of bytes")?
            .unwrap_or(DEFAULT_MAX_RECORD_BYTES);
        let dl = DeadLetterSpec::take(&mut options)?;
        (Some((format, max)), dl)
    } else {
        (None, None)
    };
    let spec = SourceSpec {
        name,
        columns: &columns,
        schema: schema.clone(),
        format: decoding.as_ref().map(|(f, _)| f),
    };
    let connector = factory(&mut options, &spec)?;
    options.finish(&format!("the {} source", entry.name), &valid)?;
    Ok(SourceDef {
        name: name.to_string(),
        connector_name: entry.name,
        schema,
        columns,
        connector,
        decoding,
        dead_letter,
        watermark,
        watermark_sql: None,
        changelog: None,
    })
}

/// Validates a CREATE SINK's options.
pub fn create_sink(options: &mut Options) -> Result<(&'static str, Arc<dyn SinkConnector>)> {
    let connector_name = options.take("connector").ok_or_else(|| {
        SluiceError::Options(format!(
            "missing required option 'connector' for the sink; {}",
            Role::Sink.listing()
        ))
    })?;
    let entry = connector_for(&connector_name, Role::Sink)?;
    let factory = entry
        .sink
        .ok_or_else(|| SluiceError::Internal(format!("{} has no sink", entry.name)))?;
    let sink = factory(options)?;
    let mut valid: Vec<&str> = vec!["connector"];
    valid.extend_from_slice(entry.sink_options);
    std::mem::take(options).finish(&format!("the {} sink", entry.name), &valid)?;
    Ok((entry.name, sink))
}

/// Builds the encoder a record-writing sink uses from its options.
pub(crate) fn take_encoder(options: &mut Options) -> Result<RecordEncoder> {
    Ok(RecordEncoder::new(Format::take(options)?))
}
