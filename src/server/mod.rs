//! `sluice serve`: the engine behind the PostgreSQL wire protocol (pgwire).
//!
//! Every connection shares one engine: what one session creates, all see.
//! Statements the engine knows go to it; session statements (SET, SHOW of a
//! setting, BEGIN / COMMIT / ROLLBACK) are answered here; `SUBSCRIBE` streams
//! a continuous query's changes through `COPY (SUBSCRIBE …) TO STDOUT`.

mod access;
pub(crate) mod activity;
pub mod auth;
mod connection;
mod copy;
mod cursor;
mod encode;
mod errors;
pub mod grants;
mod params;
mod pg_catalog;
mod session;
mod settings;
mod startup;
mod statements;
mod subscribe;
pub mod tls;
mod users;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{stream, FutureExt, Sink};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::Execute;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::PgWireBackendMessage;
use tokio::net::TcpListener;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Outcome};
use crate::error::SluiceError;
use activity::Activity;
use cursor::Cursor;
pub use errors::error_info;
use errors::{pg_error, pg_error_code, statement_timeout};
pub use statements::Command;
use statements::CursorBody;

/// The largest row limit of an Execute taken as a limit (see
/// `on_execute`).
const MAX_ROWS_PER_EXECUTE: i32 = 1 << 20;

/// The default port (RisingWave's; Postgres's own 5432 is often taken).
pub const DEFAULT_PORT: u16 = 4566;

pub struct Server {
    engine: Arc<RwLock<Engine>>,
    manager: Arc<ConnectionManager>,
    parser: Arc<SqlParser>,
    activity: Arc<Activity>,
    access: Arc<access::Access>,
    /// Backend pids and cancel keys, one sequence for every connection
    /// whichever way it authenticates (pgwire's SCRAM handler, made per
    /// connection, would otherwise start its own at the same pid).
    pids: Arc<pgwire::api::RandomPidSecretKeyGenerator>,
}

/// How `sluice serve` guards itself against its clients.
#[derive(Clone)]
pub struct ServerConfig {
    /// Connections beyond this many are refused with 53300.
    pub max_connections: usize,
    /// A connection that has not finished its startup (and
    /// authentication) by then is closed.
    pub startup_timeout: std::time::Duration,
    /// A connection idle this long between statements is closed.
    pub idle_timeout: Option<std::time::Duration>,
    /// What clients' ad-hoc queries may hold together (bytes).
    pub query_memory: usize,
    /// Trust, or SCRAM passwords checked against `users`.
    pub auth: auth::AuthMode,
    /// The data directory's users (kept even under trust, for when
    /// passwords are turned on).
    pub users: Arc<auth::Users>,
    /// Object owners and privileges.
    pub grants: Arc<grants::Grants>,
    /// TLS, when a certificate was given.
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
    /// Refuse clients that do not use TLS.
    pub tls_required: bool,
    /// The directories clients' connectors may name.
    pub file_sandbox: crate::connectors::sandbox::FileSandbox,
}

/// Accepts connections until `shutdown`.
pub async fn serve(
    engine: Arc<RwLock<Engine>>,
    listener: TcpListener,
    shutdown: CancellationToken,
    config: ServerConfig,
) {
    let activity = Arc::new(Activity::default());
    let access = Arc::new(access::Access {
        users: Arc::clone(&config.users),
        grants: Arc::clone(&config.grants),
        mode: config.auth,
    });
    {
        let mut engine = engine.write().await;
        engine.set_system_catalog(Arc::new(pg_catalog::PgCatalog::new(
            Arc::clone(&activity),
            Arc::clone(&access),
        )));
        engine.set_file_sandbox(config.file_sandbox.clone());
        engine.set_query_memory(config.query_memory);
    }
    let manager = Arc::new(ConnectionManager::new());
    let factory = Arc::new(Handlers {
        server: Arc::new(Server {
            parser: Arc::new(SqlParser {
                engine: Arc::clone(&engine),
            }),
            engine,
            manager: Arc::clone(&manager),
            activity: Arc::clone(&activity),
            access,
            pids: Arc::default(),
        }),
        password_users: (config.auth == auth::AuthMode::Password)
            .then(|| Arc::clone(&config.users)),
        tls_required: config.tls_required,
        cancel: Arc::new(DefaultCancelHandler::new(manager)),
    });
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            },
        };
        tracing::debug!(%peer, "client connected");
        if activity.connections() >= config.max_connections {
            tracing::warn!(%peer, max = config.max_connections, "connection refused: too many clients");
            tokio::spawn(connection::refuse(socket, config.max_connections));
            continue;
        }
        let factory = Arc::clone(&factory);
        let activity = Arc::clone(&activity);
        let startup_timeout = config.startup_timeout;
        let idle_timeout = config.idle_timeout;
        let tls = config.tls.clone();
        // pg_terminate_backend ends the connection through this token.
        let terminate = CancellationToken::new();
        activity.connected(peer, terminate.clone());
        tokio::spawn(async move {
            // Whatever ends the session (a panic too), it leaves the table.
            let _registered = connection::Registered::new(Arc::clone(&activity), peer);
            // A second handle on the socket notices a client that went
            // away while its statement runs (pgwire reads only between
            // statements): the statement is then cancelled.
            let (socket, watch) = match connection::watched(socket) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot watch the connection");
                    return;
                }
            };
            // A panic in a session (pgwire's message decoding has had some)
            // closes that session only; it is logged and counted.
            let session =
                std::panic::AssertUnwindSafe(pgwire::tokio::process_socket(socket, tls, factory))
                    .catch_unwind();
            // Biased: once terminated, the session answers nothing more,
            // even a statement already waiting on its socket.
            tokio::select! {
                biased;
                _ = terminate.cancelled() => {
                    tracing::info!(%peer, "connection terminated by pg_terminate_backend");
                }
                ended = session => match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
                    Err(panic) => {
                        let total = activity.count_panic();
                        tracing::error!(%peer, cause = %connection::panic_message(&panic), panics = total, "a session panicked; its connection was closed");
                    }
                },
                // Whether a statement was running, read before the session
                // (and its statement) is dropped.
                running = async {
                    connection::client_gone(&watch).await;
                    activity.is_active(&peer)
                } => {
                    if running {
                        tracing::info!(%peer, "client disconnected; its running statement was cancelled");
                    }
                }
                _ = connection::startup_expired(&activity, peer, startup_timeout) => {
                    tracing::warn!(%peer, timeout = ?startup_timeout, "connection closed: its startup did not finish in time");
                }
                _ = connection::idle_expired(&activity, peer, idle_timeout) => {
                    tracing::info!(%peer, timeout = ?idle_timeout, "connection closed: idle longer than --idle-timeout");
                }
            }
        });
    }
}

struct Handlers {
    server: Arc<Server>,
    cancel: Arc<DefaultCancelHandler>,
    /// `--auth password`: the users SCRAM checks against.
    password_users: Option<Arc<auth::Users>>,
    tls_required: bool,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.server)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.server)
    }

    /// One per connection: a SCRAM exchange keeps its state in it.
    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(startup::Startup::new(
            Arc::clone(&self.server),
            self.password_users.clone(),
            self.tls_required,
        ))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

#[async_trait]
impl NoopStartupHandler for Server {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(Arc::clone(&self.manager))
    }

    fn pid_secret_key_generator(&self) -> &dyn pgwire::api::PidSecretKeyGenerator {
        self.pids.as_ref()
    }

    /// The session shows in `pg_stat_activity` from here on.
    async fn post_startup<C>(
        &self,
        client: &mut C,
        _message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session_started(client);
        Ok(())
    }
}

impl Server {
    /// The role a session acts as.
    fn principal<C: ClientInfo>(&self, client: &C) -> access::Principal {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        self.access.principal(&user)
    }

    /// Refuses what `principal` may not do (42501); whether the object the
    /// statement creates existed before.
    async fn authorize(
        &self,
        principal: &access::Principal,
        needs: &access::Needs,
    ) -> PgWireResult<bool> {
        if principal.superuser && !needs.is_ddl() {
            return Ok(false);
        }
        let engine = self.engine.read().await;
        self.access.check(principal, needs, engine.catalog())?;
        Ok(needs
            .creates()
            .is_some_and(|n| engine.catalog().kind_of(n).is_some()))
    }

    /// A session authenticated: it shows in `pg_stat_activity` from here on.
    fn session_started<C: ClientInfo>(&self, client: &C) {
        let cancel = client
            .session_extensions()
            .get::<Arc<pgwire::api::ConnectionHandle>>();
        self.activity.started(
            client.socket_addr(),
            client.pid_and_secret_key().0,
            client.metadata(),
            cancel.map(|c| Arc::clone(c.as_ref())),
            session::of(client),
            client.is_secure(),
        );
    }
}

/// The command tag of a statement that started a pipeline.
fn creation_tag(sql: &str) -> &'static str {
    let w: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    match w.get(1).map(String::as_str) {
        Some("sink") => "CREATE SINK",
        Some("materialized") | Some("view") => "CREATE MATERIALIZED VIEW",
        _ => "SELECT",
    }
}

/// Whether a statement only reads (so cutting it short changes nothing).
fn reads_only(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.trim_start_matches('('),
        "select" | "with" | "values" | "show" | "explain" | "describe" | "table"
    )
}

fn query_response(
    batch: &RecordBatch,
    format: &Format,
    session: &session::Session,
) -> PgWireResult<Response> {
    let fields = Arc::new(encode::fields(&batch.schema(), format));
    let rows = encode::rows(batch, Arc::clone(&fields), session.time_zone())?;
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows.into_iter().map(Ok)),
    )))
}

impl Server {
    /// Runs one statement that returns at once (everything but a streaming
    /// COPY of a subscription).
    async fn run<C>(
        &self,
        client: &C,
        command: Command,
        format: &Format,
        params: Option<Bound>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo,
    {
        let session = session::of(client);
        let principal = self.principal(client);
        let needs = access::needs(&command);
        let existed = self.authorize(&principal, &needs).await?;
        let failed = client.transaction_status() == TransactionStatus::Error;
        if failed && !matches!(command, Command::Commit | Command::Rollback) {
            return Err(pg_error_code(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        match command {
            Command::Empty => Ok(Response::EmptyQuery),
            Command::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            // A failed transaction ends in a rollback, whatever it is told.
            Command::Commit | Command::Rollback => {
                session.end_transaction();
                let tag = match command {
                    Command::Commit if !failed => "COMMIT",
                    _ => "ROLLBACK",
                };
                Ok(Response::TransactionEnd(Tag::new(tag)))
            }
            Command::Tag(tag) => Ok(Response::Execution(Tag::new(tag))),
            Command::User(command) => {
                self.access.run_user_command(&principal, &command)?;
                Ok(Response::Execution(Tag::new(command.tag())))
            }
            Command::Grant(command) => {
                let engine = self.engine.read().await;
                self.access
                    .run_grant(&principal, &command, engine.catalog())?;
                Ok(Response::Execution(Tag::new(command.tag())))
            }
            Command::Set(name, value) => {
                session.set(&name, &value).map_err(pg_error)?;
                Ok(Response::Execution(Tag::new("SET")))
            }
            Command::Show(name) => {
                let batch = session.show(&name).map_err(pg_error)?;
                query_response(&batch, format, &session)
            }
            Command::Subscribe(_) | Command::CopySubscribe(_) => {
                Err(pg_error(SluiceError::NotSupported(
                    "SUBSCRIBE on its own: use COPY (SUBSCRIBE …) TO STDOUT, or \
                     DECLARE c CURSOR FOR SUBSCRIBE …; FETCH 100 c"
                        .into(),
                )))
            }
            Command::Declare { name, body, hold } => {
                let cursor = match body {
                    CursorBody::Subscribe(spec) => Cursor::Subscribe(Box::new(
                        subscribe::Subscription::start(&self.engine, &spec)
                            .await
                            .map_err(pg_error)?,
                    )),
                    CursorBody::Query(sql) => Cursor::rows(self.query(&sql).await?),
                };
                let in_block = client.transaction_status() == TransactionStatus::Transaction;
                session
                    .declare(name, cursor, in_block && !hold)
                    .map_err(pg_error)?;
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            Command::CopyQuery(spec) => {
                let batch = self.query(&spec.query).await?;
                copy::response(&batch, &spec, session.time_zone())
            }
            Command::Fetch {
                name,
                count,
                timeout,
            } => {
                let cursor = session.cursor(&name).map_err(pg_error)?;
                let batch = cursor
                    .lock()
                    .await
                    .fetch(count, timeout)
                    .await
                    .map_err(pg_error)?;
                query_response(&batch, format, &session)
            }
            Command::Close(name) => {
                session.close(name.as_deref());
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            Command::Engine(sql) => {
                let run = async {
                    // An ad-hoc SELECT is planned under a shared lock and run
                    // without one: sessions' queries never wait on each
                    // other, and DDL waits only for plans being made. Its
                    // parameters are typed values bound into the plan; other
                    // statements get them as literals in their text.
                    let planned = self.engine.read().await.client_query(&sql).await;
                    match (planned, params) {
                        (Ok(Some(plan)), None) => plan.run().await.map(Outcome::Rows),
                        (Ok(Some(plan)), Some(p)) => match plan.with_parameters(p.values) {
                            Ok(plan) => plan.run().await.map(Outcome::Rows),
                            Err(e) => Err(e),
                        },
                        (Ok(None), p) => match p.map_or_else(|| Ok(sql.clone()), |p| p.text) {
                            Ok(sql) => self.engine.write().await.execute_for_client(&sql).await,
                            Err(e) => Err(SluiceError::Options(e)),
                        },
                        (Err(e), _) => Err(e),
                    }
                };
                // Only statements that read are cut short: a DDL statement
                // stopped halfway could leave a pipeline half made.
                let outcome = match session.statement_timeout().filter(|_| reads_only(&sql)) {
                    Some(limit) => tokio::time::timeout(limit, run)
                        .await
                        .map_err(|_| statement_timeout())?,
                    None => run.await,
                };
                let outcome = outcome.map_err(pg_error)?;
                if needs.is_ddl() {
                    let engine = self.engine.read().await;
                    self.access
                        .after_ddl(&principal, &needs, existed, engine.catalog());
                }
                match outcome {
                    Outcome::Done(tag) => Ok(Response::Execution(Tag::new(tag))),
                    Outcome::Rows(batch) => query_response(&batch, format, &session),
                    // A pipeline was started: the statement created it.
                    Outcome::Start(spec) => {
                        for notice in spec.plan.notices() {
                            session.notice(notice);
                        }
                        Ok(Response::Execution(Tag::new(creation_tag(&sql))))
                    }
                    Outcome::AdHoc(_) => Err(pg_error(SluiceError::Internal(
                        "ad-hoc query was not run".into(),
                    ))),
                }
            }
        }
    }

    /// The rows of an ad-hoc SELECT, run without holding the engine.
    async fn query(&self, sql: &str) -> PgWireResult<RecordBatch> {
        let planned = self.engine.read().await.client_query(sql).await;
        match planned.map_err(pg_error)? {
            Some(plan) => plan.run().await.map_err(pg_error),
            None => Err(pg_error(SluiceError::NotSupported(format!(
                "'{}' here: a cursor or COPY reads a SELECT",
                sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            )))),
        }
    }

    /// The row description of a statement, without running it (Describe);
    /// empty for statements that return no rows.
    async fn fields_of<C: ClientInfo>(
        &self,
        client: &C,
        sql: &str,
        format: &Format,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let command = statements::classify(sql).map_err(pg_error)?;
        Ok(match self.schema_of(client, &command).await? {
            Some(schema) => encode::fields(&schema, format),
            None => Vec::new(),
        })
    }

    async fn schema_of<C: ClientInfo>(
        &self,
        client: &C,
        command: &Command,
    ) -> PgWireResult<Option<SchemaRef>> {
        match command {
            Command::Show(name) => Ok(Some(session::show_schema(name))),
            Command::Fetch { name, .. } => {
                let cursor = session::of(client).cursor(name).map_err(pg_error)?;
                let schema = cursor.lock().await.schema();
                Ok(Some(schema))
            }
            Command::Engine(sql) => {
                let planned = self.engine.read().await.client_query(sql).await;
                match planned.map_err(pg_error)? {
                    Some(plan) => Ok(Some(plan.schema())),
                    None => self
                        .engine
                        .write()
                        .await
                        .describe_statement(sql)
                        .await
                        .map_err(pg_error),
                }
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Server {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pid = client.pid_and_secret_key().0;
        let _busy = self.activity.busy(pid, query);
        activity::scope(pid, self.simple_query(client, query)).await
    }
}

impl Server {
    async fn simple_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut responses = Vec::new();
        for text in statements::split_statements(query) {
            let command = statements::classify(&text).map_err(pg_error)?;
            let response = match command {
                Command::CopySubscribe(sub) => {
                    let needs = access::needs(&Command::CopySubscribe(sub.clone()));
                    match self.authorize(&self.principal(client), &needs).await {
                        Ok(_) => {
                            let zone = session::of(client).time_zone();
                            subscribe::copy_out(&self.engine, client, &sub, zone).await?
                        }
                        Err(PgWireError::UserError(info)) => {
                            responses.push(Response::Error(info));
                            return Ok(responses);
                        }
                        Err(e) => return Err(e),
                    }
                }
                command => match self.run(client, command, &Format::UnifiedText, None).await {
                    Ok(r) => {
                        send_notices(client).await?;
                        r
                    }
                    // Later statements of the query string are not run.
                    Err(PgWireError::UserError(info)) => {
                        responses.push(Response::Error(info));
                        return Ok(responses);
                    }
                    Err(e) => return Err(e),
                },
            };
            responses.push(response);
        }
        Ok(responses)
    }
}

/// Sends the NOTICEs the statement just run queued (before its
/// completion, as PostgreSQL does).
async fn send_notices<C>(client: &mut C) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    for text in session::of(client).take_notices() {
        let info = pgwire::error::ErrorInfo::new("NOTICE".into(), "00000".into(), text);
        client
            .send(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}

/// A statement of the extended protocol: its text, classified at Parse.
#[derive(Debug, Clone)]
pub struct Prepared {
    text: String,
    params: usize,
    /// The types the parameters' use implies (see `params`).
    inferred: Vec<Option<Type>>,
}

/// A statement's parameters: typed values for a query's plan, and the
/// statement's text with them as literals for anything else (`Err` when a
/// parameter has no literal form, e.g. a binary array: only a query can
/// take it).
pub struct Bound {
    values: Vec<datafusion::common::ScalarValue>,
    text: std::result::Result<String, String>,
}

/// The types the parameters of `text` get from their use, when it is a
/// query (`None` where nothing says, and for any other statement).
async fn infer_parameters(engine: &RwLock<Engine>, text: &str, n: usize) -> Vec<Option<Type>> {
    let unknown = vec![None; n];
    let Ok(Command::Engine(sql)) = statements::classify(text) else {
        return unknown;
    };
    let planned = engine.read().await.client_query(&sql).await;
    match planned.map(|p| p.map(|p| p.parameter_types(n))) {
        Ok(Some(Ok(types))) => types
            .into_iter()
            .map(|t| t.map(|t| encode::pg_type(&t)))
            .collect(),
        _ => unknown,
    }
}

/// Keeps a statement's text at Parse, with its parameters' types.
pub struct SqlParser {
    engine: Arc<RwLock<Engine>>,
}

#[async_trait]
impl QueryParser for SqlParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let text = sql.trim().trim_end_matches(';').to_string();
        if text.is_empty() {
            return Ok(None);
        }
        let params = params::count_parameters(&text)
            .map_err(|n| pg_error_code("42P02", &format!("there is no parameter ${n}")))?;
        let inferred = match params {
            0 => vec![],
            n => infer_parameters(&self.engine, &text, n).await,
        };
        Ok(Some(Prepared {
            params,
            text,
            inferred,
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok((0..stmt.params)
            .map(|i| {
                stmt.inferred
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or(Type::TEXT)
            })
            .collect())
    }

    fn get_result_schema(
        &self,
        _stmt: &Prepared,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Server {
    type Statement = Prepared;
    type QueryParser = SqlParser;

    fn query_parser(&self) -> Arc<SqlParser> {
        Arc::clone(&self.parser)
    }

    /// pgwire sizes its row buffer by Execute's row limit before it has a
    /// row: a client asking for 2^31 rows made it allocate 86 GB, and a
    /// negative limit wraps to a larger one. A limit that no buffer should
    /// be sized for means "all rows" (as 0 does); a negative one is 0.
    async fn on_execute<C>(&self, client: &mut C, mut message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !(0..=MAX_ROWS_PER_EXECUTE).contains(&message.max_rows) {
            message.max_rows = 0;
        }
        self._on_execute(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pid = client.pid_and_secret_key().0;
        let _busy = self.activity.busy(pid, &portal.statement.statement.text);
        activity::scope(pid, self.portal_query(client, portal)).await
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        stmt: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = params::types(stmt);
        // Planned with NULL for every parameter: the columns don't depend on
        // their values.
        let sql = params::substitute(&stmt.statement.text, &vec![None; stmt.statement.params]);
        let fields = self.fields_of(client, &sql, &Format::UnifiedText).await?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = params::bind(&portal.statement.statement.text, portal)?;
        let fields = self
            .fields_of(client, &sql, &portal.result_column_format)
            .await?;
        Ok(DescribePortalResponse::new(fields))
    }
}

impl Server {
    async fn portal_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let text = &portal.statement.statement.text;
        // Engine statements take their parameters typed; the server's own
        // (SET, FETCH …) read them as literals in their text.
        let (command, bound) = match statements::classify(text) {
            Ok(Command::Engine(sql)) if portal.parameter_len() > 0 => (
                Command::Engine(sql),
                Some(Bound {
                    values: params::values(portal)?,
                    text: params::bind(text, portal).map_err(|e| e.to_string()),
                }),
            ),
            _ => {
                let sql = params::bind(text, portal)?;
                (statements::classify(&sql).map_err(pg_error)?, None)
            }
        };
        let cursor = match &command {
            Command::Declare { name, .. } => Some((name.clone(), true)),
            Command::Close(Some(name)) => Some((name.clone(), false)),
            _ => None,
        };
        let response = self
            .run(client, command, &portal.result_column_format, bound)
            .await?;
        send_notices(client).await?;
        // A declared cursor is also a portal of that name, as in
        // PostgreSQL: psycopg describes it through the protocol.
        match cursor {
            Some((name, true)) => {
                let fetch = Prepared {
                    text: format!("FETCH ALL FROM \"{}\"", name.replace('"', "\"\"")),
                    params: 0,
                    inferred: vec![],
                };
                let statement = Arc::new(StoredStatement::new(name.clone(), fetch, vec![]));
                client
                    .portal_store()
                    .put_portal(Arc::new(Portal::new_cursor(name, statement)));
            }
            Some((name, false)) => client.portal_store().rm_portal(&name),
            None => {}
        }
        Ok(response)
    }
}
