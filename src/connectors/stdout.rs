//! `stdout` sink: one encoded row per line on standard output (JSON by
//! default), for demos and for piping into other tools.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{take_encoder, Connector, SinkConnector, SinkSchema, SinkWriter};
use crate::error::{Result, SluiceError};
use crate::format::RecordEncoder;
use crate::sql::Options;
use crate::stream::StreamBatch;

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
            out: tokio::io::stdout(),
            buf: Vec::new(),
        }))
    }
}

struct StdoutWriter {
    encoder: RecordEncoder,
    out: tokio::io::Stdout,
    buf: Vec<u8>,
}

#[async_trait]
impl SinkWriter for StdoutWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        self.buf.clear();
        self.encoder
            .encode(&batch.with_op_column()?, &mut self.buf)?;
        self.out
            .write_all(&self.buf)
            .await
            .map_err(|e| SluiceError::io("writing to stdout", e))?;
        self.flush().await?;
        Ok(self.buf.len() as u64)
    }

    async fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .await
            .map_err(|e| SluiceError::io("writing to stdout", e))
    }
}
