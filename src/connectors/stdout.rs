//! `stdout` sink: one encoded row per line on standard output (JSON by
//! default), for demos and for piping into other tools. Rows go through
//! [`crate::terminal`], so that on a terminal they are written above the
//! progress line, never into it.

use std::sync::Arc;

use async_trait::async_trait;

use super::{take_encoder, Connector, SinkConnector, SinkSchema, SinkWriter};
use crate::error::{Result, SluiceError};
use crate::format::RecordEncoder;
use crate::sql::Options;
use crate::stream::StreamBatch;
use crate::terminal;

pub const CONNECTOR: Connector = Connector {
    name: "stdout",
    source: None,
    source_options: &[],
    source_decodes: false,
    metadata: &[],
    columns: None,
    sink: Some(sink_factory),
    sink_options: &["format", "header", "delimiter"],
};

#[derive(Debug)]
struct StdoutSink {
    encoder: RecordEncoder,
}

fn sink_factory(options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
    Ok(Arc::new(StdoutSink {
        encoder: take_encoder(options)?,
    }))
}

#[async_trait]
impl SinkConnector for StdoutSink {
    fn kind(&self) -> &'static str {
        "stdout"
    }

    async fn open(&self, _schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(StdoutWriter {
            encoder: self.encoder.clone(),
        }))
    }
}

struct StdoutWriter {
    encoder: RecordEncoder,
}

#[async_trait]
impl SinkWriter for StdoutWriter {
    /// Writes the batch's rows and flushes them: a terminal or a pipe sees
    /// each batch as it comes.
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        let mut buf = Vec::new();
        self.encoder.encode(&batch.with_op_column()?, &mut buf)?;
        let len = buf.len() as u64;
        // A blocking write, as tokio's own stdout does it: a slow reader
        // holds a blocking thread, not a runtime worker.
        tokio::task::spawn_blocking(move || terminal::write_stdout(&buf))
            .await
            .map_err(|e| SluiceError::Internal(format!("the stdout writer task ended: {e}")))?
            .map_err(|e| SluiceError::io("writing to stdout", e))?;
        Ok(len)
    }
}
