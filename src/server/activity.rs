//! The server's sessions, as `pg_stat_activity` shows them and
//! `pg_cancel_backend` / `pg_terminate_backend` reach them.
//!
//! A connection is registered by its peer address when it is accepted
//! (with the token that ends it), gets its backend pid at startup, and is
//! marked active while a statement runs (with the statement's text) and
//! idle after. The pid of the session running a statement is a task-local
//! ([`scope`]), so the catalog functions planned for it (`pg_backend_pid()`)
//! answer for that session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use pgwire::api::ConnectionHandle;
use tokio_util::sync::CancellationToken;

tokio::task_local! {
    static BACKEND_PID: i32;
}

/// Runs `f` as the statement of the session with `pid`.
pub async fn scope<F: std::future::Future>(pid: i32, f: F) -> F::Output {
    BACKEND_PID.scope(pid, f).await
}

/// The pid of the session whose statement is running here, if any.
pub fn current_pid() -> Option<i32> {
    BACKEND_PID.try_with(|pid| *pid).ok()
}

/// What a session may change after its startup that `pg_stat_activity`
/// shows (a session implements it; this module does not know sessions).
pub trait LiveSettings: Send + Sync {
    /// `SET application_name`, if the session set it.
    fn application_name(&self) -> Option<String>;
}

/// One session.
struct Backend {
    peer: SocketAddr,
    /// Ends the connection (`pg_terminate_backend`).
    terminate: CancellationToken,
    /// Set at startup.
    started: Option<Started>,
    state: &'static str,
    query: String,
    query_start: Option<SystemTime>,
    state_change: SystemTime,
    backend_start: SystemTime,
}

struct Started {
    pid: i32,
    user: String,
    database: String,
    application_name: String,
    /// Cancels the running statement (`pg_cancel_backend`).
    cancel: Option<Arc<ConnectionHandle>>,
    session: Arc<dyn LiveSettings>,
    ssl: bool,
}

/// A row of `pg_stat_activity`.
#[derive(Debug, Clone)]
pub struct Row {
    pub pid: i32,
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub client_addr: String,
    pub client_port: i32,
    pub backend_start: SystemTime,
    pub query_start: Option<SystemTime>,
    pub state_change: SystemTime,
    pub state: &'static str,
    pub query: String,
    /// The connection is encrypted (TLS).
    pub ssl: bool,
}

/// Every connection of one server.
#[derive(Default)]
pub struct Activity {
    backends: Mutex<HashMap<SocketAddr, Backend>>,
    /// Sessions that panicked (and were closed) since the start.
    panics: std::sync::atomic::AtomicU64,
}

impl Activity {
    /// A connection accepted from `peer`; `terminate` ends it.
    pub fn connected(&self, peer: SocketAddr, terminate: CancellationToken) {
        let now = SystemTime::now();
        self.with(|b| {
            b.insert(
                peer,
                Backend {
                    peer,
                    terminate,
                    started: None,
                    state: "starting",
                    query: String::new(),
                    query_start: None,
                    state_change: now,
                    backend_start: now,
                },
            );
        });
    }

    /// The connection from `peer` finished its startup as `pid`.
    pub fn started(
        &self,
        peer: SocketAddr,
        pid: i32,
        startup: &HashMap<String, String>,
        cancel: Option<Arc<ConnectionHandle>>,
        session: Arc<dyn LiveSettings>,
        ssl: bool,
    ) {
        let param = |k: &str| startup.get(k).cloned().unwrap_or_default();
        self.with(|b| {
            if let Some(backend) = b.get_mut(&peer) {
                let user = param("user");
                let database = startup
                    .get("database")
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                backend.started = Some(Started {
                    pid,
                    user,
                    database,
                    application_name: param("application_name"),
                    cancel,
                    session,
                    ssl,
                });
                backend.state = "idle";
                backend.state_change = SystemTime::now();
            }
        });
    }

    /// The connection from `peer` ended.
    pub fn disconnected(&self, peer: &SocketAddr) {
        self.with(|b| b.remove(peer));
    }

    /// Marks the session `pid` active with `query` until the guard drops.
    pub fn busy(self: &Arc<Self>, pid: i32, query: &str) -> Busy {
        let now = SystemTime::now();
        self.with_pid(pid, |b| {
            b.state = "active";
            b.query = query.to_string();
            b.query_start = Some(now);
            b.state_change = now;
        });
        Busy {
            activity: Arc::clone(self),
            pid,
        }
    }

    /// Counts a session that panicked; the total so far.
    pub fn count_panic(&self) -> u64 {
        self.panics
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// How many connections are open (started or not).
    pub fn connections(&self) -> usize {
        self.with(|b| b.len())
    }

    /// Whether the connection from `peer` is running a statement.
    pub fn is_active(&self, peer: &SocketAddr) -> bool {
        self.with(|b| b.get(peer).is_some_and(|b| b.state == "active"))
    }

    /// Whether the connection from `peer` has finished its startup.
    pub fn is_started(&self, peer: &SocketAddr) -> bool {
        self.with(|b| b.get(peer).is_some_and(|b| b.started.is_some()))
    }

    /// `pg_cancel_backend(pid)`: whether there is such a session. Its
    /// running statement, if any, ends with 57014.
    pub fn cancel(&self, pid: i32) -> bool {
        let handle = self.with_pid(pid, |b| b.started.as_ref().and_then(|s| s.cancel.clone()));
        match handle {
            Some(Some(handle)) => {
                // The statement may be this session's own: cancelling it
                // must not wait for it.
                tokio::spawn(async move { handle.cancel().await });
                true
            }
            Some(None) => true,
            None => false,
        }
    }

    /// `pg_terminate_backend(pid)`: whether there is such a session; its
    /// connection is closed.
    pub fn terminate(&self, pid: i32) -> bool {
        self.with_pid(pid, |b| b.terminate.cancel()).is_some()
    }

    /// How long the session from `peer` has been idle between
    /// statements (none while a statement runs, or before its startup).
    pub fn idle_for(&self, peer: &SocketAddr) -> Option<std::time::Duration> {
        self.with(|b| {
            let b = b.get(peer)?;
            (b.started.is_some() && b.state == "idle")
                .then(|| b.state_change.elapsed().unwrap_or_default())
        })
    }

    /// `pg_stat_activity`: one row per started session.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self.with(|b| {
            b.values()
                .filter_map(|b| {
                    let s = b.started.as_ref()?;
                    Some(Row {
                        pid: s.pid,
                        user: s.user.clone(),
                        database: s.database.clone(),
                        application_name: s
                            .session
                            .application_name()
                            .unwrap_or_else(|| s.application_name.clone()),
                        client_addr: b.peer.ip().to_string(),
                        client_port: i32::from(b.peer.port()),
                        backend_start: b.backend_start,
                        query_start: b.query_start,
                        state_change: b.state_change,
                        state: b.state,
                        query: crate::sql::options::redact(&b.query),
                        ssl: s.ssl,
                    })
                })
                .collect()
        });
        rows.sort_by_key(|r| r.pid);
        rows
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<SocketAddr, Backend>) -> T) -> T {
        let mut guard = match self.backends.lock() {
            Ok(g) => g,
            // A panic elsewhere while holding it leaves the map usable.
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn with_pid<T>(&self, pid: i32, f: impl FnOnce(&mut Backend) -> T) -> Option<T> {
        self.with(|b| {
            b.values_mut()
                .find(|b| b.started.as_ref().is_some_and(|s| s.pid == pid))
                .map(f)
        })
    }
}

/// A statement running: its session shows `active` until this drops
/// (finished, failed or cancelled).
pub struct Busy {
    activity: Arc<Activity>,
    pid: i32,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity.with_pid(self.pid, |b| {
            b.state = "idle";
            b.state_change = SystemTime::now();
        });
    }
}
