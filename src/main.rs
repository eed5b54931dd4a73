//! The `sluice` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice::runtime::progress::{self, ProgressEntry};
use sluice::runtime::PipelineState;
use sluice::{script, terminal, Checkpoints, Engine, Outcome};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// glibc's malloc adjusts its mmap and trim thresholds as it goes, and
/// depending on the order of allocations it gave large per-batch buffers
/// back to the kernel and faulted them in again: q5 took 1.5x longer after
/// an unrelated change (1 M page faults per 10 M bids; docs/BENCHMARKS.md,
/// round 4). Fixed thresholds keep freed buffers for reuse. And glibc
/// makes up to eight arenas per core, each keeping its own free memory: a
/// 10-minute q5 run grew from 108 to 129 MB resident with state steady at
/// 0.7 MB; with one arena per core (at least two) it stayed within 84-85
/// MB at the same speed (round 5). (mimalloc avoided the faults too, at
/// 30-60 MB more resident memory and ~10 % more CPU per record on the
/// Kafka path.)
///
/// glibc's own `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` and
/// `MALLOC_ARENA_MAX` environment variables, when set, win over these.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        for (env, param, value) in [
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 32 << 20),
            ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 32 << 20),
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas),
        ] {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only sets allocator parameters; called
                // before any thread is started.
                unsafe { libc::mallopt(param, value) };
            }
        }
    }
}

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Streaming SQL over Kafka, files, sockets and generators"
)]
struct Cli {
    /// Log format on stderr. Filter with RUST_LOG (e.g.
    /// `RUST_LOG=sluice=debug`); the default is `warn,sluice=info`, which
    /// leaves out each completed checkpoint (debug).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464), at
    /// /metrics. Off by default.
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Time between checkpoints of every pipeline's state, kept in the
    /// data directory (e.g. 10s, 500ms). A restart resumes from the last
    /// one, and file and Kafka sinks commit their output at each one
    /// (exactly once). `off`: no checkpoints; a restart re-reads inputs to
    /// rebuild state, and sinks write at once (at least once).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s")]
    checkpoint_interval: String,
    /// Where checkpoints are written: `s3://BUCKET[/PREFIX]` for
    /// S3-compatible storage (credentials, region and endpoint from the
    /// usual AWS_* variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP), or `file:///PATH`. By
    /// default, the data directory.
    #[arg(long, global = true, value_name = "URL")]
    state_url: Option<String>,
    /// How many cores each pipeline may keep busy: a file source decodes
    /// that many batches at once, and a keyed aggregate runs as that many
    /// instances, split by its key [default: the machine's cores]. A view's
    /// or sink's `parallelism` option overrides it; a pipeline restored from
    /// a checkpoint keeps the instances its state was split into.
    #[arg(long, global = true, value_name = "N")]
    parallelism: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a SQL script: create its sources and sinks, then run the
    /// pipelines until their sources are exhausted or Ctrl-C / SIGTERM.
    ///
    /// Each script keeps its state (catalog, checkpoints, source positions)
    /// in its own directory, sluice-data/<script name>. A run stopped early
    /// (Ctrl-C, SIGTERM, a crash) resumes from there next time; a run that
    /// read all its input starts over. --data-dir DIR always resumes what
    /// DIR holds (to share one between scripts, or to query a finished
    /// script's views); --fresh starts over.
    Run {
        /// The script (statements separated by `;`). Without one, runs what
        /// the data directory holds.
        file: Option<PathBuf>,
        /// Do not print the progress line nor the summary on stderr.
        #[arg(long)]
        no_progress: bool,
        /// Where the catalog (sources, views, sinks), checkpoints and source
        /// positions are kept across runs, and resumed from [default:
        /// sluice-data/<script name>; without a script, sluice-data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Discard the state in the data directory first: every source is
        /// read from its start again, sinks are written anew.
        #[arg(long)]
        fresh: bool,
    },
    /// Check a SQL script (parse, validate options, plan) without running it.
    Check { file: PathBuf },
    /// Run the engine as a PostgreSQL-compatible server: connect with
    /// `psql -h localhost -p 4566 -d sluice` or any Postgres driver.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4566")]
        listen: String,
        /// Where the catalog (sources, views, sinks) is kept across restarts.
        #[arg(long, default_value = script::DATA_ROOT)]
        data_dir: PathBuf,
        /// Connections beyond this many are refused (SQLSTATE 53300).
        #[arg(long, default_value_t = 100)]
        max_connections: usize,
        /// A client must finish its startup (and authentication) within
        /// this long, or its connection is closed.
        #[arg(long, default_value = "10s")]
        startup_timeout: String,
        /// `password`: clients log in with SCRAM-SHA-256 passwords (the
        /// first start creates superuser `sluice` with $SLUICE_PASSWORD);
        /// `trust`: any user name, no password. Default: trust on a
        /// loopback address; elsewhere it must be said.
        #[arg(long)]
        auth: Option<String>,
        /// TLS certificate chain (PEM); with --tls-key, clients may use TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Refuse clients that do not use TLS.
        #[arg(long, requires = "tls_cert")]
        tls_required: bool,
        /// A directory clients' file sources, sinks and dead-letter files
        /// may use (repeatable; default: `files` in the data directory).
        #[arg(long = "allow-file-dir", value_name = "DIR")]
        allow_file_dirs: Vec<PathBuf>,
        /// Hosts clients' socket and Kafka connectors may reach: names,
        /// `*.domain` or IP addresses, comma-separated (default: any).
        #[arg(long = "allow-hosts", value_name = "HOSTS", value_delimiter = ',')]
        allow_hosts: Vec<String>,
        /// Memory (MiB) the clients' ad-hoc queries may hold together
        /// (sorts, aggregates, results); a query past it fails with 53200.
        #[arg(long = "query-memory-mb", default_value_t = (sluice::engine::DEFAULT_QUERY_MEMORY >> 20) as u64)]
        query_memory_mb: u64,
        /// Close a connection idle (outside a statement) this long: `10min`,
        /// `1h`; `0` never (the default).
        #[arg(long = "idle-timeout", default_value = "0")]
        idle_timeout: String,
    },
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // A panic (a session's, caught and closed by the server) is one log
    // line with its cause and place, not a backtrace on stderr.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panicked");
    }));
    let metrics_listen = cli.metrics_listen.clone();
    match cli.parallelism {
        Some(0) => {
            eprintln!("error: --parallelism must be at least 1");
            return ExitCode::from(2);
        }
        Some(n) => sluice::runtime::set_default_parallelism(n),
        None => {}
    }
    let interval = match cli.checkpoint_interval.trim() {
        "off" | "0" => None,
        text => match sluice::sql::parse_duration("--checkpoint-interval", text) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => None,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let checkpoints = match (interval, cli.state_url) {
        (Some(interval), state_url) => Some(Checkpoints {
            interval,
            state_url,
        }),
        (None, None) => None,
        (None, Some(_)) => {
            eprintln!("error: --state-url needs checkpoints; --checkpoint-interval is off");
            return ExitCode::from(2);
        }
    };
    // Planning and dropping a statement walk its expression tree
    // recursively; sql::limits bounds the depth, these stacks hold it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run {
                file,
                no_progress,
                data_dir,
                fresh,
            } => {
                let state = StateDir::choose(file.as_deref(), data_dir, fresh);
                run(file, state, !no_progress, metrics_listen, checkpoints).await
            }
            Command::Check { file } => check(file).await,
            Command::Serve {
                listen,
                data_dir,
                max_connections,
                startup_timeout,
                auth,
                tls_cert,
                tls_key,
                tls_required,
                allow_file_dirs,
                allow_hosts,
                query_memory_mb,
                idle_timeout,
            } => {
                let options = ServeOptions {
                    max_connections,
                    startup_timeout,
                    auth,
                    tls: tls_cert.zip(tls_key),
                    tls_required,
                    allow_file_dirs,
                    allow_hosts,
                    query_memory_mb,
                    idle_timeout,
                };
                let config = match server_config(&listen, &data_dir, options) {
                    Ok(config) => config,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                };
                serve(listen, data_dir, metrics_listen, checkpoints, config).await
            }
        }
    });
    // Everything that matters is done. A blocking call still waiting on a
    // remote end (librdkafka fencing a transaction on a broker that is
    // not there, for up to its timeout) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,sluice=info,librdkafka=warn"));
    // Log lines go above `sluice run`'s progress line, never into it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal::stderr_is_terminal())
        .with_writer(|| terminal::StderrLines);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn read_script(file: &PathBuf) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

fn print_rows(batch: &RecordBatch) {
    match pretty_format_batches(std::slice::from_ref(batch)) {
        Ok(t) => {
            if let Err(e) = terminal::print(&t.to_string()) {
                terminal::message(&format!("error: writing to stdout: {e}"));
            }
        }
        Err(e) => terminal::message(&format!("error: {e}")),
    }
}

/// `sluice serve`'s own options, as given.
struct ServeOptions {
    max_connections: usize,
    startup_timeout: String,
    auth: Option<String>,
    tls: Option<(PathBuf, PathBuf)>,
    tls_required: bool,
    allow_file_dirs: Vec<PathBuf>,
    allow_hosts: Vec<String>,
    query_memory_mb: u64,
    idle_timeout: String,
}

/// The server's configuration: limits, who may log in, TLS. Off loopback,
/// who may connect must be said out loud.
fn server_config(
    listen: &str,
    data_dir: &std::path::Path,
    o: ServeOptions,
) -> Result<sluice::server::ServerConfig, String> {
    use sluice::server::auth::{AuthMode, Users, BOOTSTRAP_USER};
    let startup_timeout = sluice::sql::parse_duration("--startup-timeout", &o.startup_timeout)
        .map_err(|e| e.to_string())?;
    if startup_timeout.is_zero() {
        return Err("--startup-timeout must be longer than 0".into());
    }
    if o.max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    let idle_timeout = sluice::sql::parse_duration("--idle-timeout", &o.idle_timeout)
        .map_err(|e| e.to_string())?;
    if o.query_memory_mb == 0 {
        return Err("--query-memory-mb must be at least 1".into());
    }
    let loopback = listen
        .rsplit_once(':')
        .map(|(host, _)| host.trim_matches(['[', ']']))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    let auth = match o.auth.as_deref() {
        Some(a) => AuthMode::parse(a).map_err(|e| e.to_string())?,
        None if loopback => AuthMode::Trust,
        None => {
            return Err(format!(
                "--listen {listen} is not a loopback address: say who may connect, \
                 --auth password (set SLUICE_PASSWORD for the first start) or --auth trust"
            ))
        }
    };
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let users = Users::open(data_dir).map_err(|e| e.to_string())?;
    let password = std::env::var("SLUICE_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if users
        .bootstrap(password.as_deref())
        .map_err(|e| e.to_string())?
    {
        tracing::info!(
            user = BOOTSTRAP_USER,
            "created the superuser from SLUICE_PASSWORD"
        );
    }
    if auth == AuthMode::Password && users.is_empty() {
        return Err(
            "--auth password, but there are no users yet: start once with SLUICE_PASSWORD set \
             (it creates the superuser sluice)"
                .into(),
        );
    }
    let tls = match &o.tls {
        Some((cert, key)) => {
            Some(sluice::server::tls::acceptor(cert, key).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let dirs = if o.allow_file_dirs.is_empty() {
        vec![data_dir.join("files")]
    } else {
        o.allow_file_dirs
    };
    let file_sandbox = sluice::connectors::sandbox::FileSandbox::new(&dirs)
        .map_err(|e| e.to_string())?
        .with_hosts(o.allow_hosts);
    Ok(sluice::server::ServerConfig {
        file_sandbox,
        max_connections: o.max_connections,
        startup_timeout,
        idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
        query_memory: usize::try_from(o.query_memory_mb.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        auth,
        users: std::sync::Arc::new(users),
        grants: std::sync::Arc::new(
            sluice::server::grants::Grants::open(data_dir).map_err(|e| e.to_string())?,
        ),
        tls,
        tls_required: o.tls_required,
    })
}

/// `sluice serve`: the engine on its data directory, behind the Postgres
/// wire protocol, until Ctrl-C / SIGTERM.
async fn serve(
    listen: String,
    data_dir: PathBuf,
    metrics_listen: Option<String>,
    checkpoints: Option<Checkpoints>,
    config: sluice::server::ServerConfig,
) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut engine = match Engine::open_with(&data_dir, checkpoints).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let restored = engine.restored();
    if !restored.is_empty() {
        tracing::info!(objects = %restored.join(", "), "restored from the data directory");
    }
    // Every restored object belongs to the server now, not to a script.
    engine.adopt_restored();
    let shutdown = engine.shutdown_token();
    if let Err(code) = start_metrics(metrics_listen, &engine).await {
        shutdown.cancel();
        engine.wait_all().await;
        return code;
    }
    let engine = std::sync::Arc::new(tokio::sync::RwLock::new(engine));
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    tracing::info!(%address, data_dir = %data_dir.display(), "listening for PostgreSQL clients");
    tokio::spawn(handle_signals(shutdown.clone()));
    sluice::server::serve(
        std::sync::Arc::clone(&engine),
        listener,
        shutdown.clone(),
        config,
    )
    .await;
    // SIGTERM ends the server within seconds, whatever a connector does.
    let finished = engine.write().await.wait_all_within(SHUTDOWN_GRACE).await;
    let failed = finished
        .iter()
        .filter(|(_, s, _)| matches!(s, PipelineState::Failed(_)))
        .count();
    eprintln!("stopped ({} pipelines, {failed} failed)", finished.len());
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `sluice check`: parse, validate and plan, in memory.
async fn check(file: PathBuf) -> ExitCode {
    let text = match read_script(&file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut engine = Engine::new();
    match script::prepare(&mut engine, &text).await {
        Ok(prepared) => {
            eprintln!(
                "{}: OK ({} pipelines)",
                file.display(),
                prepared.pipelines.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// Starts the Prometheus endpoint when `--metrics-listen` asks for it.
async fn start_metrics(listen: Option<String>, engine: &Engine) -> Result<(), ExitCode> {
    let Some(listen) = listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        eprintln!("error: cannot serve metrics on {listen}: {e}");
        ExitCode::from(2)
    })?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    tracing::info!(%address, "serving Prometheus metrics at /metrics");
    tokio::spawn(sluice::metrics::exposition::serve(
        listener,
        engine.monitor(),
        engine.shutdown_token(),
    ));
    Ok(())
}

/// The data directory of a `sluice run`, and whether to restore what it
/// holds.
struct StateDir {
    dir: PathBuf,
    /// `--fresh`: discard what it holds.
    fresh: bool,
    /// The script's own directory (no `--data-dir`): a run that read all its
    /// input is not resumed but started over.
    own: bool,
}

impl StateDir {
    fn choose(file: Option<&Path>, data_dir: Option<PathBuf>, fresh: bool) -> StateDir {
        match (data_dir, file) {
            (Some(dir), _) => StateDir {
                dir,
                fresh,
                own: false,
            },
            (None, Some(file)) => StateDir {
                dir: script::default_data_dir(file),
                fresh,
                own: true,
            },
            (None, None) => StateDir {
                dir: PathBuf::from(script::DATA_ROOT),
                fresh,
                own: false,
            },
        }
    }
}

/// How a run ended.
enum Ending {
    /// Every pipeline ended by itself: its input was read to the end.
    Finished,
    /// Ctrl-C / SIGTERM.
    Stopped,
    Failed,
}

async fn run(
    file: Option<PathBuf>,
    state: StateDir,
    show_progress: bool,
    metrics_listen: Option<String>,
    checkpoints: Option<Checkpoints>,
) -> ExitCode {
    let started = Instant::now();
    let text = match &file {
        Some(f) => match read_script(f) {
            Ok(t) => t,
            Err(code) => return code,
        },
        None => String::new(),
    };
    let label = file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "data directory".into());
    let dir = state.dir.display().to_string();
    let had_state = state.dir.join("catalog.json").exists();
    let start_over = state.fresh || (state.own && script::finished(&state.dir));
    let opened = if start_over {
        Engine::open_fresh(&state.dir, checkpoints).await
    } else {
        Engine::open_with(&state.dir, checkpoints).await
    };
    let mut engine = match opened {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if had_state && start_over {
        if state.fresh {
            eprintln!("starting over: discarded the state in {dir} (--fresh)");
        } else {
            eprintln!("starting over: the last run of {label} read all its input ({dir})");
        }
    }
    let restored = engine.restored();
    if !restored.is_empty() {
        eprintln!(
            "resuming from the state in {dir} ({}); --fresh starts over",
            restored.join(", ")
        );
    }
    let prepared = match script::prepare(&mut engine, &text).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {label}: {e}");
            engine.shutdown_token().cancel();
            engine.wait_all().await;
            return ExitCode::from(2);
        }
    };
    if let Err(e) = engine.persist() {
        eprintln!("error: {e}");
        engine.shutdown_token().cancel();
        engine.wait_all().await;
        return ExitCode::from(2);
    }
    // Until this run ends by itself, it is one to resume.
    if let Err(e) = script::clear_finished(&state.dir) {
        tracing::warn!(dir = %dir, error = %e, "cannot clear the mark of a finished run");
    }
    let mut ad_hoc = Vec::new();
    for (_sql, outcome) in prepared.outputs {
        match outcome {
            Outcome::Rows(batch) => print_rows(&batch),
            Outcome::AdHoc(q) => ad_hoc.push(q),
            _ => {}
        }
    }
    if engine.all_bounded()
        && prepared.pipelines.is_empty()
        && restored.is_empty()
        && ad_hoc.is_empty()
    {
        return ExitCode::SUCCESS;
    }
    let shutdown = engine.shutdown_token();
    if let Err(code) = start_metrics(metrics_listen, &engine).await {
        shutdown.cancel();
        engine.wait_all().await;
        return code;
    }
    let mut start_failed = false;
    for spec in prepared.pipelines {
        let name = spec.name.clone();
        if let Err(e) = engine.start(spec).await {
            eprintln!("error: pipeline {name} could not start: {e}");
            start_failed = true;
        }
    }
    if start_failed {
        shutdown.cancel();
    }
    tokio::spawn(handle_signals(shutdown.clone()));
    // Ctrl-C / SIGTERM ends the run within seconds, whatever a connector
    // waits for: after the grace, the pipelines still running are aborted.
    let aborts = engine.abort_handles();
    let watchdog_shutdown = shutdown.clone();
    tokio::spawn(async move {
        watchdog_shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        if aborts.iter().any(|a| !a.is_finished()) {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "pipelines did not stop in time; aborting them");
            for a in &aborts {
                a.abort();
            }
        }
    });
    let progress_stop = CancellationToken::new();
    let progress_task = show_progress.then(|| {
        tokio::spawn(progress::run(
            engine.progress_entries(),
            progress_stop.clone(),
        ))
    });
    let nothing_new_task = tokio::spawn(report_nothing_new(
        engine.progress_entries(),
        dir.clone(),
        shutdown.clone(),
    ));
    let mut failed = start_failed;
    // Each ad-hoc SELECT runs once the pipelines filling its views are done.
    for q in ad_hoc {
        match engine.inputs_done(&q) {
            Ok(waits) => {
                futures::future::join_all(waits).await;
            }
            Err(e) => {
                terminal::message(&format!("error: {e}"));
                failed = true;
                continue;
            }
        }
        match engine.run_ad_hoc(&q).await {
            Ok(batch) => print_rows(&batch),
            Err(e) => {
                terminal::message(&format!("error: {q}: {e}"));
                failed = true;
            }
        }
    }
    let results = engine.wait_all().await;
    progress_stop.cancel();
    if let Some(t) = progress_task {
        if let Err(e) = t.await {
            eprintln!("error: progress display: {e}");
        }
    }
    // Every pipeline has ended: it says what it has to say, then returns.
    if let Err(e) = nothing_new_task.await {
        tracing::debug!(error = %e, "the nothing-new report ended early");
    }
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, state, _)| match state {
            PipelineState::Failed(reason) => {
                Some(format!("error: pipeline {name} failed: {reason}"))
            }
            _ => None,
        })
        .collect();
    failed |= !failures.is_empty();
    let ending = if failed {
        Ending::Failed
    } else if shutdown.is_cancelled() {
        Ending::Stopped
    } else {
        Ending::Finished
    };
    if show_progress {
        let entries = engine.progress_entries();
        eprintln!("{}", headline(&ending, &entries, started.elapsed()));
        eprintln!("{}", progress::summary(&entries));
    }
    for failure in &failures {
        eprintln!("{failure}");
    }
    match ending {
        Ending::Finished => {
            if let Err(e) = script::mark_finished(&state.dir, &label) {
                tracing::warn!(dir = %dir, error = %e, "cannot mark the run finished");
            }
            ExitCode::SUCCESS
        }
        Ending::Stopped => ExitCode::SUCCESS,
        Ending::Failed => ExitCode::from(1),
    }
}

/// The first line of a run's summary: how it ended, and after how long.
fn headline(ending: &Ending, entries: &[ProgressEntry], took: Duration) -> String {
    let secs = took.as_secs_f64();
    match ending {
        Ending::Finished
            if !entries.is_empty() && progress::nothing_new(entries).len() == entries.len() =>
        {
            format!("done in {secs:.1}s: nothing new to read (--fresh starts over)")
        }
        Ending::Finished => format!("done in {secs:.1}s: every source was read to the end"),
        Ending::Stopped => format!(
            "stopped after {secs:.1}s: the next run resumes where this one stopped \
             (--fresh starts over)"
        ),
        Ending::Failed => format!("failed after {secs:.1}s"),
    }
}

/// Says so as soon as the pipelines that resumed from a checkpoint have
/// ended without reading anything: an earlier run read their input to the
/// end, and a user waiting for output should know why none comes.
async fn report_nothing_new(entries: Vec<ProgressEntry>, dir: String, shutdown: CancellationToken) {
    let resumed = || entries.iter().filter(|e| e.resumed && e.bounded);
    if resumed().next().is_none() {
        return;
    }
    while resumed().any(|e| e.metrics.state() == PipelineState::Running) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Pipelines stopped by Ctrl-C end without reading too.
    if shutdown.is_cancelled() {
        return;
    }
    let names = progress::nothing_new(&entries);
    if names.is_empty() {
        return;
    }
    let (them, their) = if names.len() == 1 {
        ("it", "its")
    } else {
        ("them", "their")
    };
    terminal::message(&format!(
        "nothing new: {} resumed from the checkpoint in {dir}, and an earlier run had read \
         {their} input to the end. Run with --fresh to start {them} over.",
        names.join(", ")
    ));
}

/// How long `sluice serve` gives its pipelines to drain and checkpoint
/// after Ctrl-C / SIGTERM before aborting them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// First Ctrl-C / SIGTERM: stop cleanly. Second: exit at once.
async fn handle_signals(shutdown: CancellationToken) {
    wait_for_signal().await;
    terminal::message(
        "\nstopping: sources stop, in-flight rows reach the sinks (Ctrl-C again to exit at once)",
    );
    shutdown.cancel();
    wait_for_signal().await;
    terminal::message("exiting without flushing");
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if let Err(e) = r { eprintln!("error: Ctrl-C handler: {e}") },
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("error: SIGTERM handler: {e}");
                if let Err(e) = tokio::signal::ctrl_c().await {
                    eprintln!("error: Ctrl-C handler: {e}");
                }
            }
        }
    }
    #[cfg(not(unix))]
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: Ctrl-C handler: {e}");
    }
}
