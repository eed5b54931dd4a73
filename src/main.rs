//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice::runtime::{progress, PipelineState};
use sluice::{script, Checkpoints, Engine, Outcome};
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
    /// `RUST_LOG=sluice=debug`); the default is `warn,sluice=info`.
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
    Run {
        /// The script (statements separated by `;`). Without one, runs what
        /// the data directory holds.
        file: Option<PathBuf>,
        /// Do not print the progress line on stderr.
        #[arg(long)]
        no_progress: bool,
        /// Where the catalog (sources, views, sinks) is kept across restarts.
        #[arg(long, default_value = "sluice-data")]
        data_dir: PathBuf,
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
        #[arg(long, default_value = "sluice-data")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let metrics_listen = cli.metrics_listen.clone();
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
    runtime.block_on(async {
        match cli.command {
            Command::Run {
                file,
                no_progress,
                data_dir,
            } => {
                run(
                    file,
                    Some(data_dir),
                    !no_progress,
                    metrics_listen,
                    checkpoints,
                )
                .await
            }
            Command::Check { file } => check(file).await,
            Command::Serve { listen, data_dir } => {
                serve(listen, data_dir, metrics_listen, checkpoints).await
            }
        }
    })
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,sluice=info,librdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
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
        Ok(t) => println!("{t}"),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// `sluice serve`: the engine on its data directory, behind the Postgres
/// wire protocol, until Ctrl-C / SIGTERM.
async fn serve(
    listen: String,
    data_dir: PathBuf,
    metrics_listen: Option<String>,
    checkpoints: Option<Checkpoints>,
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
    sluice::server::serve(std::sync::Arc::clone(&engine), listener, shutdown.clone()).await;
    let finished = engine.write().await.wait_all().await;
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

async fn run(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    show_progress: bool,
    metrics_listen: Option<String>,
    checkpoints: Option<Checkpoints>,
) -> ExitCode {
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
    let mut engine = match &data_dir {
        Some(dir) => match Engine::open_with(dir, checkpoints).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Engine::new(),
    };
    let restored = engine.restored();
    if !restored.is_empty() {
        tracing::info!(objects = %restored.join(", "), "restored from the data directory");
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
    let progress_stop = CancellationToken::new();
    let progress_task = show_progress.then(|| {
        tokio::spawn(progress::run(
            engine.progress_entries(),
            progress_stop.clone(),
        ))
    });
    let mut failed = start_failed;
    // Each ad-hoc SELECT runs once the pipelines filling its views are done.
    for q in ad_hoc {
        match engine.inputs_done(&q) {
            Ok(waits) => {
                futures::future::join_all(waits).await;
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        }
        match engine.run_ad_hoc(&q).await {
            Ok(batch) => print_rows(&batch),
            Err(e) => {
                eprintln!("error: {q}: {e}");
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
    for (name, state, _) in &results {
        if let PipelineState::Failed(reason) = state {
            eprintln!("error: pipeline {name} failed: {reason}");
            failed = true;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// First Ctrl-C / SIGTERM: stop cleanly. Second: exit at once.
async fn handle_signals(shutdown: CancellationToken) {
    wait_for_signal().await;
    eprintln!(
        "\nstopping: sources stop, in-flight rows reach the sinks (Ctrl-C again to exit at once)"
    );
    shutdown.cancel();
    wait_for_signal().await;
    eprintln!("exiting without flushing");
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
