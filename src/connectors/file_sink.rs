//! The file sink: one encoded row per line. Output is committed per
//! checkpoint (written to a pending file, appended on commit), so a
//! restart neither loses nor repeats rows.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::file::CONNECTOR;
use super::{take_encoder, SinkConnector, SinkSchema, SinkWriter};
use crate::error::{Result, SluiceError};
use crate::format::RecordEncoder;
use crate::sql::Options;
use crate::stream::StreamBatch;

#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    append: bool,
    encoder: RecordEncoder,
}

pub(super) fn sink_factory(options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
    let path = options.require("path", "the file sink", CONNECTOR.sink_options)?;
    let append = options.take_bool("append")?.unwrap_or(false);
    let encoder = take_encoder(options)?;
    Ok(Arc::new(FileSink {
        path: PathBuf::from(path),
        append,
        encoder,
    }))
}

#[async_trait]
impl SinkConnector for FileSink {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn open(&self, schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        let io = |what: &str, e| SluiceError::io(format!("{what} {}", self.path.display()), e);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("creating directory for", e))?;
        }
        let header = {
            let empty =
                datafusion::arrow::record_batch::RecordBatch::new_empty(schema.schema.clone());
            let empty = if schema.changelog {
                StreamBatch::changelog(
                    empty,
                    datafusion::arrow::array::UInt8Array::from(Vec::<u8>::new()),
                )
            } else {
                StreamBatch::append(empty)
            };
            self.encoder.header(&empty.with_op_column()?.schema())?
        };
        if schema.exactly_once.is_some() {
            return Ok(Box::new(CommittedFile {
                pending_path: pending_path(&self.path),
                path: self.path.clone(),
                append: self.append,
                header,
                pending: None,
                encoder: self.encoder.clone(),
                buf: Vec::new(),
            }));
        }
        // A restored pipeline adds to what its earlier run wrote.
        let append = self.append || schema.resume;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&self.path)
            .await
            .map_err(|e| io("opening output file", e))?;
        let fresh = file.metadata().await.map_err(|e| io("reading", e))?.len() == 0;
        let mut writer = BufWriter::new(file);
        if let Some(header) = header.filter(|_| fresh) {
            writer
                .write_all(&header)
                .await
                .map_err(|e| io("writing", e))?;
        }
        Ok(Box::new(FileSinkWriter {
            path: self.path.clone(),
            writer,
            encoder: self.encoder.clone(),
            buf: Vec::new(),
        }))
    }
}

struct FileSinkWriter {
    path: PathBuf,
    writer: BufWriter<tokio::fs::File>,
    encoder: RecordEncoder,
    buf: Vec<u8>,
}

#[async_trait]
impl SinkWriter for FileSinkWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        self.buf.clear();
        self.encoder
            .encode(&batch.with_op_column()?, &mut self.buf)?;
        self.writer
            .write_all(&self.buf)
            .await
            .map_err(|e| SluiceError::io(format!("writing {}", self.path.display()), e))?;
        // Rows become visible per batch, so `tail -f` follows the output.
        self.flush().await?;
        Ok(self.buf.len() as u64)
    }

    async fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .await
            .map_err(|e| SluiceError::io(format!("writing {}", self.path.display()), e))
    }
}

/// Where an exactly-once file sink keeps output not yet committed: next to
/// the file, hidden.
fn pending_path(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.pending"))
}

/// The file sink with checkpoints: rows go to a pending file beside the
/// output; when a checkpoint completes, the pending bytes are appended to
/// the output and synced. The checkpoint records the output's length before
/// that append and the pending length, so recovery can finish or redo an
/// interrupted append and drop anything written after the checkpoint.
/// Readers of the output only ever see committed rows.
struct CommittedFile {
    path: PathBuf,
    pending_path: PathBuf,
    append: bool,
    header: Option<Vec<u8>>,
    pending: Option<tokio::fs::File>,
    encoder: RecordEncoder,
    buf: Vec<u8>,
}

impl CommittedFile {
    fn io(&self, what: &str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SluiceError {
        let context = format!("{what} {}", path.display());
        move |e| SluiceError::io(context, e)
    }

    async fn pending(&mut self) -> Result<&mut tokio::fs::File> {
        if self.pending.is_none() {
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.pending_path)
                .await
                .map_err(self.io("opening", &self.pending_path))?;
            self.pending = Some(f);
        }
        self.pending
            .as_mut()
            .ok_or_else(|| SluiceError::Internal("pending file".into()))
    }

    async fn len(&self, path: &std::path::Path) -> Result<u64> {
        match tokio::fs::metadata(path).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(self.io("reading", path)(e)),
        }
    }

    /// Cuts the output to `len` bytes and adds `bytes`, synced.
    async fn set_output(&self, len: u64, bytes: &[u8]) -> Result<()> {
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.path)
            .await
            .map_err(self.io("opening output file", &self.path))?;
        out.set_len(len)
            .await
            .map_err(self.io("truncating", &self.path))?;
        out.seek(std::io::SeekFrom::Start(len))
            .await
            .map_err(self.io("seeking", &self.path))?;
        out.write_all(bytes)
            .await
            .map_err(self.io("writing", &self.path))?;
        out.sync_data()
            .await
            .map_err(self.io("syncing", &self.path))
    }

    async fn clear_pending(&mut self) -> Result<()> {
        self.pending = None;
        tokio::fs::write(&self.pending_path, b"")
            .await
            .map_err(self.io("clearing", &self.pending_path))
    }
}

#[async_trait]
impl SinkWriter for CommittedFile {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.encoder.encode(&batch.with_op_column()?, &mut buf)?;
        let path = self.pending_path.clone();
        let file = self.pending().await?;
        let written = file.write_all(&buf).await;
        let bytes = buf.len() as u64;
        self.buf = buf;
        written.map_err(self.io("writing", &path))?;
        Ok(bytes)
    }

    async fn prepare(&mut self, _epoch: u64) -> Result<Option<crate::snapshot::StateSnapshot>> {
        let path = self.pending_path.clone();
        let file = self.pending().await?;
        file.sync_data().await.map_err(self.io("syncing", &path))?;
        let output = self.len(&self.path).await?;
        let pending = self.len(&self.pending_path).await?;
        Ok(Some(crate::snapshot::StateSnapshot::new(
            serde_json::json!({"output": output, "pending": pending}),
            Vec::new(),
        )))
    }

    fn transactional(&self) -> bool {
        true
    }

    async fn commit(&mut self, _epoch: u64) -> Result<()> {
        let pending = tokio::fs::read(&self.pending_path)
            .await
            .map_err(self.io("reading", &self.pending_path))?;
        if !pending.is_empty() {
            let len = self.len(&self.path).await?;
            self.set_output(len, &pending).await?;
        }
        self.clear_pending().await
    }

    async fn recover(
        &mut self,
        _epoch: u64,
        state: Option<crate::snapshot::StateSnapshot>,
    ) -> Result<()> {
        let Some(state) = state else {
            // A fresh start: the output is rewritten unless `append`.
            self.clear_pending().await?;
            let len = if self.append {
                self.len(&self.path).await?
            } else {
                0
            };
            let header = self.header.clone().filter(|_| len == 0).unwrap_or_default();
            return self.set_output(len, &header).await;
        };
        let at = |k: &str| state.meta[k].as_u64().unwrap_or(0);
        let (output, pending) = (at("output"), at("pending"));
        if self.len(&self.path).await? >= output + pending {
            // The checkpoint's append was done; drop anything after it.
            self.set_output(output + pending, b"").await?;
        } else {
            // The crash came before the append finished: do it again.
            let bytes = tokio::fs::read(&self.pending_path)
                .await
                .map_err(self.io("reading", &self.pending_path))?;
            let Some(bytes) = bytes.get(..pending as usize) else {
                return Err(SluiceError::Connector(format!(
                    "cannot finish the last checkpoint's write to {}: its pending file {} \
                     holds {} bytes, {pending} expected",
                    self.path.display(),
                    self.pending_path.display(),
                    bytes.len()
                )));
            };
            self.set_output(output, bytes).await?;
        }
        self.clear_pending().await
    }

    async fn close(&mut self) -> Result<()> {
        // Rows after the last checkpoint stay pending: the next run drops
        // them and writes them again from the input.
        if let Some(f) = self.pending.as_mut() {
            f.flush().await.map_err(|e| SluiceError::io("writing", e))?;
        }
        Ok(())
    }
}
