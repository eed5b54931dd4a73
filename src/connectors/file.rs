//! File source (JSON lines or CSV, read once or followed like `tail -f`) and
//! file sink (one encoded row per line).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{
    take_encoder, Connector, DecodeJob, SinkConnector, SinkSchema, SinkWriter, SourceConnector,
    SourceContext, SourceSpec, Stopped,
};
use crate::error::{Result, SluiceError};
use crate::format::{FormatKind, RawBatch, RecordEncoder};
use crate::sql::Options;
use crate::stream::{Commit, Message, StreamBatch};

pub const CONNECTOR: Connector = Connector {
    name: "file",
    source: Some(source_factory),
    source_options: &["path", "mode"],
    source_decodes: true,
    metadata: &[],
    columns: None,
    sink: Some(sink_factory),
    sink_options: &["path", "format", "header", "delimiter", "append"],
};

/// Bytes per read: each read is a hop to a blocking thread and back, so
/// fewer, larger reads (a batch is still at most 8,192 records).
const READ_CHUNK: usize = 4 * 1024 * 1024;
const MAX_BATCH_RECORDS: usize = 8192;
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct FileSource {
    path: PathBuf,
    follow: bool,
    skip_header: bool,
    /// CSV records may hold newlines in quoted fields.
    csv: bool,
}

fn source_factory(options: &mut Options, spec: &SourceSpec) -> Result<Arc<dyn SourceConnector>> {
    let path = options.require("path", "the file source", CONNECTOR.source_options)?;
    let follow = options.take_choice("mode", &["once", "follow"])?.as_deref() == Some("follow");
    let skip_header = spec
        .format
        .is_some_and(|f| f.kind == FormatKind::Csv && f.csv_header);
    Ok(Arc::new(FileSource {
        path: PathBuf::from(path),
        follow,
        skip_header,
        csv: spec.format.is_some_and(|f| f.kind == FormatKind::Csv),
    }))
}

/// Splits a byte stream into lines, carrying a partial line between reads.
/// For CSV, a newline inside a quoted field does not end the record.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    pub(crate) line: u64,
    /// CSV: quotes count, and `partial` ends inside a quoted field when it
    /// holds an odd number of them.
    pub(crate) csv: bool,
    open_quote: bool,
}

impl LineSplitter {
    /// A splitter from the start of a stream; `csv` keeps quoted newlines.
    pub(crate) fn new(csv: bool) -> Self {
        LineSplitter {
            csv,
            ..LineSplitter::default()
        }
    }

    /// Pushes every complete line of `data` (without `\n` / `\r\n`, blank
    /// lines skipped) into `raw`, numbered from 1.
    pub(crate) fn feed(&mut self, mut data: &[u8], raw: &mut RawBatch) {
        while let Some(nl) = memchr::memchr(b'\n', data) {
            self.line += 1;
            if self.csv {
                // `""` inside a quoted field flips twice: parity is enough.
                let quotes = memchr::memchr_iter(b'"', &data[..nl]).count();
                self.open_quote ^= quotes % 2 == 1;
                if self.open_quote {
                    self.partial.extend_from_slice(&data[..=nl]);
                    data = &data[nl + 1..];
                    continue;
                }
            }
            if self.partial.is_empty() {
                push_line(&data[..nl], self.line, raw);
            } else {
                self.partial.extend_from_slice(&data[..nl]);
                let line = std::mem::take(&mut self.partial);
                push_line(&line, self.line, raw);
            }
            data = &data[nl + 1..];
        }
        if self.csv {
            let quotes = memchr::memchr_iter(b'"', data).count();
            self.open_quote ^= quotes % 2 == 1;
        }
        self.partial.extend_from_slice(data);
    }

    /// At the end of input, the last line may lack its newline.
    pub(crate) fn finish(&mut self, raw: &mut RawBatch) {
        if !self.partial.is_empty() {
            self.line += 1;
            let line = std::mem::take(&mut self.partial);
            push_line(&line, self.line, raw);
        }
    }
}

fn push_line(line: &[u8], number: u64, raw: &mut RawBatch) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    raw.push(line, number);
}

/// A file read on a blocking thread straight into our buffer: one hop per
/// read, without tokio's file's copy through its own buffer (which also
/// caps a read at 2 MiB).
struct Reader {
    file: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl Reader {
    async fn open(path: &std::path::Path) -> std::io::Result<Reader> {
        let file = tokio::fs::File::open(path).await?.into_std().await;
        Ok(Reader {
            file: Some(file),
            buf: vec![0u8; READ_CHUNK],
        })
    }

    async fn seek(&mut self, offset: u64) -> std::io::Result<()> {
        use std::io::Seek;
        self.blocking(move |file, _| file.seek(std::io::SeekFrom::Start(offset)).map(|_| 0))
            .await
            .map(|_| ())
    }

    /// Reads up to `want` bytes (at most [`READ_CHUNK`]); `read_bytes`
    /// gives them.
    async fn read(&mut self, want: usize) -> std::io::Result<usize> {
        use std::io::Read;
        let want = want.min(READ_CHUNK);
        self.blocking(move |file, buf| file.read(&mut buf[..want]))
            .await
    }

    /// The `n` bytes the last read gave.
    fn read_bytes(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.buf.len())]
    }

    async fn blocking(
        &mut self,
        f: impl FnOnce(&mut std::fs::File, &mut [u8]) -> std::io::Result<usize> + Send + 'static,
    ) -> std::io::Result<usize> {
        let (Some(mut file), mut buf) = (self.file.take(), std::mem::take(&mut self.buf)) else {
            return Err(std::io::Error::other("an earlier read of the file failed"));
        };
        let (file, buf, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut file, &mut buf);
            (file, buf, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.file = Some(file);
        self.buf = buf;
        result
    }
}

/// How far a pipeline has read a file: the byte after the last whole line
/// its sink acknowledged, that line's number, and whether the file was read
/// to its end (mode 'once').
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct FilePosition {
    offset: u64,
    line: u64,
    ended: bool,
    /// In a checkpoint: lines up to this one, read again from `offset`, were
    /// already sent before the barrier (a read can yield several batches).
    #[serde(default)]
    sent_through: u64,
}

#[async_trait]
impl SourceConnector for FileSource {
    async fn run(&self, ctx: SourceContext) -> Result<()> {
        let io = |what: &str, e| SluiceError::io(format!("{what} file {}", self.path.display()), e);
        let mut file = Reader::open(&self.path)
            .await
            .map_err(|e| io("opening", e))?;
        let positions = ctx.position_file();
        let origin = format!("{}:", self.path.display());
        let stored = match &positions {
            Some(p) => p.load::<FilePosition>()?,
            None => ctx
                .restored_position(&origin)
                .and_then(|v| serde_json::from_value::<FilePosition>(v.clone()).ok()),
        };
        // Only a checkpoint's position says which lines were already sent;
        // a position file's replay re-reads everything up to its offset.
        let mut sent_through = match &positions {
            None => stored.map_or(0, |p| p.sent_through),
            Some(_) => 0,
        };
        let len = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| io("reading", e))?
            .len();
        let stored = match stored {
            Some(p) if p.offset > len => {
                tracing::warn!(source = %ctx.source_name, path = %self.path.display(), position = p.offset, len, "file is shorter than where the last run stopped; reading it from the start");
                None
            }
            p => p,
        };
        // Replaying: read from the start up to `target` (output suppressed
        // downstream), then go on. Resuming: start where the last run ended.
        let (start, mut target) = match stored {
            Some(p) if ctx.replay => (FilePosition::default(), Some(p)),
            Some(p) => (p, None),
            None => (FilePosition::default(), None),
        };
        if ctx.replay && target.is_none() && ctx.caught_up().await.is_err() {
            return Ok(());
        }
        // A file read to its end last time, and not grown since: the end of
        // input is part of the replay (the pipeline flushed it then).
        if target.is_some_and(|t| t.ended && t.offset == len) {
            target = None;
        }
        if start.offset > 0 {
            file.seek(start.offset)
                .await
                .map_err(|e| io("seeking", e))?;
        }
        let mut splitter = LineSplitter {
            line: start.line,
            csv: self.csv,
            ..LineSplitter::default()
        };
        let mut position: u64 = start.offset;
        let mut header_pending = self.skip_header && start.offset == 0;
        let ack = |raw_end: FilePosition| -> Option<Message> {
            let p = positions.clone()?;
            Some(Message::Commit(Commit(Box::new(move || p.ack(&raw_end)))))
        };
        if let Some(p) = positions.clone() {
            ctx.at_end(move || p.write());
        }
        // Batches decoding on other cores, and the acknowledgements behind
        // them, handed on in the order they were read.
        let mut queue = DecodeQueue::new(&ctx, &origin);
        loop {
            if ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            // While replaying, stop exactly at the acknowledged position.
            let want = match target {
                Some(t) => (t.offset - position).min(READ_CHUNK as u64) as usize,
                None => READ_CHUNK,
            };
            let n = if want == 0 {
                0
            } else {
                file.read(want).await.map_err(|e| io("reading", e))?
            };
            let mut raw = RawBatch::with_capacity(1024, n + 1024);
            // Where this read can be repeated from: the start of the line it
            // continues (for the checkpoint positions of what it yields).
            let resume = FilePosition {
                offset: position - splitter.partial.len() as u64,
                line: splitter.line,
                ended: false,
                sent_through: 0,
            };
            if n == 0 && target.is_some_and(|t| position >= t.offset) {
                // Replayed up to where the last run's output stopped.
                target = None;
                if queue.sync().await?.is_err() || ctx.caught_up().await.is_err() {
                    return Ok(());
                }
                continue;
            }
            if n == 0 {
                // What is still decoding goes on before the end, or before
                // the wait for more.
                if queue.sync().await?.is_err() {
                    return Ok(());
                }
                if !self.follow {
                    splitter.finish(&mut raw);
                    let raw = skip_sent(raw, sent_through);
                    let end = FilePosition {
                        offset: position,
                        line: splitter.line,
                        ended: true,
                        sent_through: splitter.line,
                    };
                    let at = serde_json::to_value(end).ok();
                    if ctx.emit_raw_at(raw, &origin, at).await?.is_err() {
                        return Ok(());
                    }
                    if let Some(m) = ack(end) {
                        let _ = ctx.forward(m).await;
                    }
                    return Ok(());
                }
                // Follow: wait for more; start over if the file was truncated.
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                }
                let len = tokio::fs::metadata(&self.path)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(position);
                if len < position {
                    tracing::warn!(source = %ctx.source_name, path = %self.path.display(), "file was truncated; reading it again from the start");
                    file = Reader::open(&self.path)
                        .await
                        .map_err(|e| io("opening", e))?;
                    position = 0;
                    splitter = LineSplitter {
                        csv: self.csv,
                        ..LineSplitter::default()
                    };
                    header_pending = self.skip_header;
                }
                continue;
            }
            position += n as u64;
            splitter.feed(file.read_bytes(n), &mut raw);
            if header_pending && !raw.is_empty() {
                raw = drop_first(raw);
                header_pending = false;
            }
            for part in split_batch(skip_sent(raw, sent_through)) {
                let at = part.seq.last().and_then(|&last| {
                    serde_json::to_value(FilePosition {
                        sent_through: last,
                        ..resume
                    })
                    .ok()
                });
                if queue.batch(&ctx, part, &origin, at).await?.is_err() {
                    return Ok(());
                }
            }
            sent_through = 0;
            if target.is_none() {
                let read = FilePosition {
                    offset: position - splitter.partial.len() as u64,
                    line: splitter.line,
                    ended: false,
                    sent_through: 0,
                };
                if let Some(m) = ack(read) {
                    if queue.message(&ctx, m).await?.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn is_bounded(&self) -> bool {
        !self.follow
    }

    fn resumable(&self) -> bool {
        true
    }
}

/// Drops the records numbered up to `through` (sent before the checkpoint
/// the pipeline restored from).
/// What the file source has read and not yet handed on.
enum Queued {
    /// A batch decoding, with the position to record once it is sent.
    Decoding(DecodeJob, Option<serde_json::Value>),
    /// A message to send once the batches before it are.
    Message(Message),
    /// Everything before it is handed on: say so.
    Sync(tokio::sync::oneshot::Sender<()>),
}

/// Batches decoding on other cores, handed on in the order they were read
/// by a task of their own, so that reading, decoding and sending overlap.
/// With parallelism 1 there is no such task: each batch is decoded and
/// sent where it is read.
struct DecodeQueue {
    queue: Option<tokio::sync::mpsc::Sender<Queued>>,
    deliverer: Option<tokio::task::JoinHandle<Result<std::result::Result<(), Stopped>>>>,
}

impl DecodeQueue {
    fn new(ctx: &SourceContext, origin: &str) -> DecodeQueue {
        if ctx.parallelism <= 1 {
            return DecodeQueue {
                queue: None,
                deliverer: None,
            };
        }
        // A read queues its batches and then its acknowledgement. Four
        // items per core keep every core decoding while the reader, woken
        // between decoders, catches up; fewer left a fifth of two cores
        // idle (measured, docs/BENCHMARKS.md).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Queued>(ctx.parallelism * 4);
        let (ctx, origin) = (ctx.clone(), origin.to_string());
        let deliverer = tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Queued::Decoding(job, at) => {
                        if ctx.deliver_decoded(job, &origin, at).await?.is_err() {
                            return Ok(Err(Stopped));
                        }
                    }
                    Queued::Message(m) => {
                        if ctx.forward(m).await.is_err() {
                            return Ok(Err(Stopped));
                        }
                    }
                    Queued::Sync(done) => {
                        // The reader may have stopped waiting: nothing to do.
                        let _ = done.send(());
                    }
                }
            }
            Ok(Ok(()))
        });
        DecodeQueue {
            queue: Some(tx),
            deliverer: Some(deliverer),
        }
    }

    /// Hands `raw` on (decoded elsewhere when there is a deliverer).
    async fn batch(
        &mut self,
        ctx: &SourceContext,
        raw: RawBatch,
        origin: &str,
        at: Option<serde_json::Value>,
    ) -> Result<std::result::Result<(), Stopped>> {
        match &self.queue {
            Some(_) if !raw.is_empty() => {
                let job = ctx.decode_in_background(raw)?;
                self.send(Queued::Decoding(job, at)).await
            }
            Some(_) => {
                if self.sync().await?.is_err() {
                    return Ok(Err(Stopped));
                }
                ctx.emit_raw_at(raw, origin, at).await
            }
            None => ctx.emit_raw_at(raw, origin, at).await,
        }
    }

    /// Sends `m` once the batches before it are sent.
    async fn message(
        &mut self,
        ctx: &SourceContext,
        m: Message,
    ) -> Result<std::result::Result<(), Stopped>> {
        match &self.queue {
            Some(_) => self.send(Queued::Message(m)).await,
            None => Ok(ctx.forward(m).await),
        }
    }

    /// Waits until everything queued is handed on.
    async fn sync(&mut self) -> Result<std::result::Result<(), Stopped>> {
        if self.queue.is_none() {
            return Ok(Ok(()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.send(Queued::Sync(tx)).await?.is_err() {
            return Ok(Err(Stopped));
        }
        match rx.await {
            Ok(()) => Ok(Ok(())),
            Err(_) => self.ended().await,
        }
    }

    async fn send(&mut self, item: Queued) -> Result<std::result::Result<(), Stopped>> {
        let Some(queue) = &self.queue else {
            return Ok(Ok(()));
        };
        if queue.send(item).await.is_ok() {
            return Ok(Ok(()));
        }
        self.ended().await
    }

    /// The deliverer ended early: why.
    async fn ended(&mut self) -> Result<std::result::Result<(), Stopped>> {
        self.queue = None;
        match self.deliverer.take() {
            None => Ok(Err(Stopped)),
            Some(d) => match d.await {
                Ok(Ok(Ok(()))) => Ok(Err(Stopped)),
                Ok(outcome) => outcome,
                Err(e) => Err(SluiceError::Internal(format!("file source delivery: {e}"))),
            },
        }
    }
}

fn skip_sent(raw: RawBatch, through: u64) -> RawBatch {
    if raw.seq.first().is_none_or(|&first| first > through) {
        return raw;
    }
    let mut out = RawBatch::with_capacity(raw.len(), raw.byte_len());
    for i in 0..raw.len() {
        if raw.seq[i] > through {
            out.push(raw.record(i), raw.seq[i]);
        }
    }
    out
}

fn drop_first(raw: RawBatch) -> RawBatch {
    let mut out = RawBatch::with_capacity(raw.len(), raw.byte_len());
    for i in 1..raw.len() {
        out.push(raw.record(i), raw.seq[i]);
    }
    out
}

/// Keeps batches at most `MAX_BATCH_RECORDS` long.
pub(crate) fn split_batch(raw: RawBatch) -> Vec<RawBatch> {
    if raw.len() <= MAX_BATCH_RECORDS {
        return vec![raw];
    }
    let mut out = Vec::new();
    let mut cur = RawBatch::with_capacity(MAX_BATCH_RECORDS, 0);
    for i in 0..raw.len() {
        cur.push(raw.record(i), raw.seq[i]);
        if cur.len() == MAX_BATCH_RECORDS {
            out.push(std::mem::replace(
                &mut cur,
                RawBatch::with_capacity(MAX_BATCH_RECORDS, 0),
            ));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    append: bool,
    encoder: RecordEncoder,
}

fn sink_factory(options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_newlines_inside_quotes() {
        let mut s = LineSplitter {
            csv: true,
            ..LineSplitter::default()
        };
        let mut raw = RawBatch::default();
        s.feed(
            b"1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,\"split",
            &mut raw,
        );
        s.feed(b" across\nreads\",x\n", &mut raw);
        let records: Vec<&[u8]> = (0..raw.len()).map(|i| raw.record(i)).collect();
        assert_eq!(
            records,
            vec![
                &b"1,\"two\nlines\""[..],
                &b"2,\"say \"\"hi\"\"\""[..],
                &b"3,\"split across\nreads\",x"[..],
            ]
        );
        assert_eq!(
            raw.seq,
            vec![2, 3, 5],
            "numbered by the line each record ends on"
        );
    }

    #[test]
    fn splitter_handles_partial_lines_crlf_and_blanks() {
        let mut s = LineSplitter::default();
        let mut raw = RawBatch::default();
        s.feed(b"{\"a\":1}\r\n\n{\"a\"", &mut raw);
        s.feed(b":2}\n{\"a\":3}", &mut raw);
        s.finish(&mut raw);
        assert_eq!(raw.len(), 3);
        assert_eq!(raw.record(0), b"{\"a\":1}");
        assert_eq!(raw.record(1), b"{\"a\":2}");
        assert_eq!(raw.record(2), b"{\"a\":3}");
        assert_eq!(raw.seq, vec![1, 3, 4]);
    }
}
