//! The progress display on stderr: one line per pipeline with records in /
//! out / errors, redrawn in place on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::PipelineMetrics;

pub struct ProgressEntry {
    pub name: String,
    pub metrics: Arc<PipelineMetrics>,
}

pub fn line(entries: &[ProgressEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            let m = e.metrics.snapshot();
            let mut s = format!(
                "{}: in {} out {} errors {}",
                e.name, m.records_in, m.records_out, m.errors
            );
            if m.dead_lettered > 0 {
                s.push_str(&format!(" (dead-lettered {})", m.dead_lettered));
            }
            if m.late > 0 {
                s.push_str(&format!(" late {}", m.late));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Draws progress until `stop` fires, then prints the final counts.
pub async fn run(entries: Vec<ProgressEntry>, stop: CancellationToken) {
    let tty = std::io::stderr().is_terminal();
    let period = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let mut last = String::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
        let l = line(&entries);
        let mut err = std::io::stderr().lock();
        let drawn = if tty {
            write!(err, "\r\x1b[K{l}")
        } else if l != last {
            writeln!(err, "progress: {l}")
        } else {
            Ok(())
        };
        if drawn.is_err() {
            // Nobody reads stderr any more: stop drawing, the pipelines go on.
            return;
        }
        last = l;
    }
    let mut err = std::io::stderr().lock();
    let clear = if tty { write!(err, "\r\x1b[K") } else { Ok(()) };
    if clear
        .and_then(|()| writeln!(err, "done: {}", line(&entries)))
        .is_err()
    {
        tracing::debug!("stderr closed: no final progress line");
    }
}
