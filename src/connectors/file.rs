//! The file connector: its source (JSON lines or CSV, read once or followed
//! like `tail -f`) is here; lines are cut by `lines.rs`, and its sink (one
//! encoded row per line, committed per checkpoint) is `file_sink.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::lines::{split_batch, LineSplitter};
use super::{Connector, DecodeJob, SourceConnector, SourceContext, SourceSpec, Stopped};
use crate::error::{Result, SluiceError};
use crate::format::{FormatKind, RawBatch};
use crate::sql::Options;
use crate::stream::{Commit, Message};

pub const CONNECTOR: Connector = Connector {
    name: "file",
    source: Some(source_factory),
    source_options: &["path", "mode"],
    source_decodes: true,
    metadata: &[],
    columns: None,
    sink: Some(super::file_sink::sink_factory),
    sink_options: &["path", "format", "header", "delimiter", "append"],
};

/// Bytes per read: each read is a hop to a blocking thread and back, so
/// fewer, larger reads (a batch is still at most 8,192 records).
const READ_CHUNK: usize = 4 * 1024 * 1024;
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
        let mut splitter = LineSplitter::at_line(self.csv, start.line);
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
                offset: position - splitter.partial_len() as u64,
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
                    splitter = LineSplitter::new(self.csv);
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
                    offset: position - splitter.partial_len() as u64,
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

/// Drops the records numbered up to `through` (sent before the checkpoint
/// the pipeline restored from).
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
