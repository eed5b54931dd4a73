//! TCP socket source and sink, one record per line.
//!
//! `mode = 'connect'` dials `host:port` (retrying while nobody listens);
//! `mode = 'listen'` accepts any number of clients. A connecting source ends
//! when the peer closes the connection; a listening one runs until shutdown.
//! A listening sink waits for its first client, then sends every row to all
//! connected clients.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::lines::{split_batch, LineSplitter};
use super::{
    take_encoder, Connector, SinkConnector, SinkSchema, SinkWriter, SourceConnector, SourceContext,
    SourceSpec,
};
use crate::error::{Result, SluiceError};
use crate::format::{RawBatch, RecordEncoder};
use crate::sql::Options;
use crate::stream::StreamBatch;

pub const CONNECTOR: Connector = Connector {
    name: "socket",
    source: Some(source_factory),
    source_options: &["host", "port", "mode"],
    source_decodes: true,
    metadata: &[],
    columns: None,
    sink: Some(sink_factory),
    sink_options: &["host", "port", "mode", "format"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Listen,
    Connect,
}

#[derive(Debug, Clone)]
struct Endpoint {
    addr: String,
    mode: Mode,
}

fn take_endpoint(options: &mut Options, what: &str, valid: &[&str]) -> Result<Endpoint> {
    let host = options
        .take("host")
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let port: u16 = options
        .take_parsed("port", "a TCP port number")?
        .ok_or_else(|| {
            SluiceError::Options(format!(
                "missing required option 'port' for {what}; valid options are: {}",
                valid.join(", ")
            ))
        })?;
    let mode = match options
        .take_choice("mode", &["listen", "connect"])?
        .as_deref()
    {
        Some("listen") => Mode::Listen,
        _ => Mode::Connect,
    };
    Ok(Endpoint {
        addr: format!("{host}:{port}"),
        mode,
    })
}

/// Connects, retrying with backoff while the peer is not there yet.
async fn connect(
    addr: &str,
    who: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<TcpStream>> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(Some(s)),
            Err(e) => {
                tracing::warn!(%addr, error = %e, retry_in = ?backoff, "{who}: cannot connect");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[derive(Debug)]
struct SocketSource {
    endpoint: Endpoint,
    /// CSV records may hold newlines in quoted fields.
    csv: bool,
}

fn source_factory(options: &mut Options, spec: &SourceSpec) -> Result<Arc<dyn SourceConnector>> {
    let endpoint = take_endpoint(options, "the socket source", CONNECTOR.source_options)?;
    let csv = spec
        .format
        .is_some_and(|f| f.kind == crate::format::FormatKind::Csv);
    Ok(Arc::new(SocketSource { endpoint, csv }))
}

async fn read_lines(
    mut stream: TcpStream,
    origin: String,
    ctx: SourceContext,
    csv: bool,
) -> Result<()> {
    let mut splitter = LineSplitter::new(csv);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => 0,
            r = stream.read(&mut buf) => r.map_err(|e| SluiceError::io(format!("reading {origin}"), e))?,
        };
        let mut raw = RawBatch::with_capacity(256, n + 64);
        if n == 0 {
            splitter.finish(&mut raw);
            if ctx.emit_raw(raw, &origin).await?.is_ok() {
                // The client is gone: it no longer holds the watermark back.
                // Returning either way: a stopped pipeline needs nothing more.
                match ctx.close_partition(&origin).await? {
                    Ok(()) | Err(super::Stopped) => {}
                }
            }
            return Ok(());
        }
        splitter.feed(&buf[..n], &mut raw);
        for part in split_batch(raw) {
            if ctx.emit_raw(part, &origin).await?.is_err() {
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl SourceConnector for SocketSource {
    async fn run(&self, ctx: SourceContext) -> Result<()> {
        match self.endpoint.mode {
            Mode::Connect => {
                let Some(stream) =
                    connect(&self.endpoint.addr, "socket source", &ctx.shutdown).await?
                else {
                    return Ok(());
                };
                let origin = format!("socket {} line ", self.endpoint.addr);
                read_lines(stream, origin, ctx, self.csv).await
            }
            Mode::Listen => {
                let listener = TcpListener::bind(&self.endpoint.addr).await.map_err(|e| {
                    SluiceError::io(format!("listening on {}", self.endpoint.addr), e)
                })?;
                tracing::info!(source = %ctx.source_name, addr = %self.endpoint.addr, "socket source listening");
                let mut clients = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        accepted = listener.accept() => {
                            let (stream, peer) = accepted
                                .map_err(|e| SluiceError::io(format!("accepting on {}", self.endpoint.addr), e))?;
                            let origin = format!("socket {} client {peer} line ", self.endpoint.addr);
                            clients.spawn(read_lines(stream, origin, ctx.clone(), self.csv));
                        }
                        Some(done) = clients.join_next(), if !clients.is_empty() => {
                            match done {
                                Ok(Err(e)) => tracing::warn!(source = %ctx.source_name, error = %e, "socket client failed"),
                                Err(e) => tracing::warn!(source = %ctx.source_name, error = %e, "socket client task failed"),
                                Ok(Ok(())) => {}
                            }
                        }
                    }
                }
                while clients.join_next().await.is_some() {}
                Ok(())
            }
        }
    }

    fn is_bounded(&self) -> bool {
        self.endpoint.mode == Mode::Connect
    }
}

#[derive(Debug)]
struct SocketSink {
    endpoint: Endpoint,
    encoder: RecordEncoder,
}

fn sink_factory(options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
    let endpoint = take_endpoint(options, "the socket sink", CONNECTOR.sink_options)?;
    let encoder = take_encoder(options)?;
    Ok(Arc::new(SocketSink { endpoint, encoder }))
}

#[async_trait]
impl SinkConnector for SocketSink {
    fn kind(&self) -> &'static str {
        "socket"
    }

    async fn open(&self, _schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        let target = match self.endpoint.mode {
            Mode::Connect => Target::Connect(None),
            Mode::Listen => {
                let listener = TcpListener::bind(&self.endpoint.addr).await.map_err(|e| {
                    SluiceError::io(format!("listening on {}", self.endpoint.addr), e)
                })?;
                let clients: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
                let accepting = Arc::clone(&clients);
                let acceptor = tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        accepting.lock().await.push(stream);
                    }
                });
                Target::Listen { clients, acceptor }
            }
        };
        Ok(Box::new(SocketSinkWriter {
            addr: self.endpoint.addr.clone(),
            encoder: self.encoder.clone(),
            target,
            buf: Vec::new(),
        }))
    }
}

enum Target {
    Connect(Option<TcpStream>),
    Listen {
        clients: Arc<Mutex<Vec<TcpStream>>>,
        acceptor: tokio::task::JoinHandle<()>,
    },
}

struct SocketSinkWriter {
    addr: String,
    encoder: RecordEncoder,
    target: Target,
    buf: Vec<u8>,
}

impl Drop for SocketSinkWriter {
    fn drop(&mut self) {
        if let Target::Listen { acceptor, .. } = &self.target {
            acceptor.abort();
        }
    }
}

#[async_trait]
impl SinkWriter for SocketSinkWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        self.buf.clear();
        self.encoder
            .encode(&batch.with_op_column()?, &mut self.buf)?;
        match &mut self.target {
            Target::Connect(conn) => loop {
                if conn.is_none() {
                    let never = tokio_util::sync::CancellationToken::new();
                    *conn = connect(&self.addr, "socket sink", &never).await?;
                }
                let Some(stream) = conn.as_mut() else {
                    continue;
                };
                match stream.write_all(&self.buf).await {
                    Ok(()) => return Ok(self.buf.len() as u64),
                    Err(e) => {
                        // The peer went away: reconnect and send the batch again.
                        tracing::warn!(addr = %self.addr, error = %e, "socket sink: connection lost; reconnecting");
                        *conn = None;
                    }
                }
            },
            Target::Listen { clients, .. } => {
                // Rows wait for a reader rather than vanish.
                loop {
                    if !clients.lock().await.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let mut clients = clients.lock().await;
                let mut alive = Vec::with_capacity(clients.len());
                for mut c in clients.drain(..) {
                    if c.write_all(&self.buf).await.is_ok() {
                        alive.push(c);
                    }
                }
                *clients = alive;
                Ok(self.buf.len() as u64)
            }
        }
    }

    async fn flush(&mut self) -> Result<()> {
        match &mut self.target {
            Target::Connect(Some(s)) => s
                .flush()
                .await
                .map_err(|e| SluiceError::io(format!("writing to {}", self.addr), e)),
            _ => Ok(()),
        }
    }
}
