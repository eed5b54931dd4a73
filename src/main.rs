//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice::runtime::{progress, PipelineState};
use sluice::{script, Engine, Outcome};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Streaming SQL over Kafka, files, sockets and generators"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
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
        /// The script (statements separated by `;`).
        file: PathBuf,
        /// Do not print the progress line on stderr.
        #[arg(long)]
        no_progress: bool,
    },
    /// Check a SQL script (parse, validate options, plan) without running it.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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
            Command::Run { file, no_progress } => run(file, !no_progress, true).await,
            Command::Check { file } => run(file, false, false).await,
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

async fn run(file: PathBuf, show_progress: bool, execute: bool) -> ExitCode {
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let mut engine = Engine::new();
    let prepared = match script::prepare(&mut engine, &text).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    for (_sql, outcome) in &prepared.outputs {
        if let Outcome::Rows(batch) = outcome {
            match pretty_format_batches(std::slice::from_ref(batch)) {
                Ok(t) => println!("{t}"),
                Err(e) => eprintln!("error: {e}"),
            }
        }
    }
    if !execute {
        eprintln!(
            "{}: OK ({} pipelines)",
            file.display(),
            prepared.pipelines.len()
        );
        return ExitCode::SUCCESS;
    }
    let shutdown = engine.shutdown_token();
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
    let results = engine.wait_all().await;
    progress_stop.cancel();
    if let Some(t) = progress_task {
        if let Err(e) = t.await {
            eprintln!("error: progress display: {e}");
        }
    }
    let mut failed = start_failed;
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
