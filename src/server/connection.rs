//! The connection around a session: refused when there are too many,
//! closed when its startup takes too long, watched for the client going
//! away mid-statement.

use super::activity::Activity;

/// Answers a connection over `--max-connections` as PostgreSQL does
/// (FATAL 53300), then closes it.
pub(super) async fn refuse(mut socket: tokio::net::TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let message =
        format!("sorry, too many clients already (the server takes {max}: --max-connections)");
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "53300"),
        (b'M', message.as_str()),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        // As PostgreSQL does, the error answers the startup message: an
        // SSL or GSS request first is declined ('N') so the client sends it.
        for _ in 0..3 {
            let mut len = [0u8; 4];
            if socket.read_exact(&mut len).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes(len) as usize;
            if !(8..=10_000).contains(&len) {
                break;
            }
            let mut rest = vec![0u8; len - 4];
            if socket.read_exact(&mut rest).await.is_err() {
                return;
            }
            let code = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if len == 8 && (code == 80_877_103 || code == 80_877_104) {
                if socket.write_all(b"N").await.is_err() {
                    return;
                }
                continue;
            }
            break;
        }
        let _ = socket.write_all(&frame).await;
        let _ = socket.shutdown().await;
    })
    .await;
}

/// Resolves if the connection from `peer` has not finished its startup
/// within `timeout`; otherwise never.
pub(super) async fn startup_expired(
    activity: &Activity,
    peer: std::net::SocketAddr,
    timeout: std::time::Duration,
) {
    tokio::time::sleep(timeout).await;
    if activity.is_started(&peer) {
        std::future::pending::<()>().await;
    }
}

/// Resolves once the session from `peer` has been idle (between
/// statements) for `timeout` (`--idle-timeout`); never without one.
pub(super) async fn idle_expired(
    activity: &Activity,
    peer: std::net::SocketAddr,
    timeout: Option<std::time::Duration>,
) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let idle = activity.idle_for(&peer).unwrap_or_default();
        if idle >= timeout {
            return;
        }
        tokio::time::sleep(timeout - idle).await;
    }
}

/// `socket` and a second handle on it, to watch for the client leaving.
pub(super) fn watched(
    socket: tokio::net::TcpStream,
) -> std::io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let std = socket.into_std()?;
    let watch = std.try_clone()?;
    Ok((
        tokio::net::TcpStream::from_std(std)?,
        tokio::net::TcpStream::from_std(watch)?,
    ))
}

/// Resolves once the client has closed its end of the connection. Bytes
/// it sent ahead (pipelined statements) are left for pgwire to read.
pub(super) async fn client_gone(watch: &tokio::net::TcpStream) {
    let mut byte = [0u8; 1];
    loop {
        match watch.peek(&mut byte).await {
            Ok(0) | Err(_) => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// Removes a connection from the session table when it ends, however it
/// ends.
pub(super) struct Registered {
    activity: std::sync::Arc<Activity>,
    peer: std::net::SocketAddr,
}

impl Registered {
    pub(super) fn new(activity: std::sync::Arc<Activity>, peer: std::net::SocketAddr) -> Self {
        Registered { activity, peer }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.activity.disconnected(&self.peer);
    }
}

/// What a panic said.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
