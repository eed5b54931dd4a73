//! The progress display on stderr: per pipeline, records in / out / errors,
//! the arrival rate and utilisation ρ, redrawn in place on a terminal, plain
//! lines otherwise; a summary table when the run ends.

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
            let stats = e.metrics.stats();
            let m = stats.counters;
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
            s.push_str(&format!(" ({:.0}/s", stats.arrival_10s));
            if let Some(rho) = stats.utilisation_10s() {
                s.push_str(&format!(", ρ {rho:.2}"));
            }
            s.push(')');
            if stats.falling_behind {
                s.push_str(" FALLING BEHIND");
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
        .and_then(|()| writeln!(err, "{}", summary(&entries)))
        .is_err()
    {
        tracing::debug!("stderr closed: no final progress line");
    }
}

/// The table printed when a run ends: per pipeline, what went in and out,
/// what was lost on the way, for how long and how fast.
pub fn summary(entries: &[ProgressEntry]) -> String {
    let header = [
        "pipeline",
        "state",
        "records in",
        "records out",
        "errors",
        "dead-lettered",
        "late",
        "duration",
        "avg in/s",
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let s = e.metrics.stats();
            let secs = s.elapsed.as_secs_f64();
            vec![
                e.name.clone(),
                s.state.label(),
                s.counters.records_in.to_string(),
                s.counters.records_out.to_string(),
                s.counters.errors.to_string(),
                s.counters.dead_lettered.to_string(),
                s.counters.late.to_string(),
                format!("{secs:.1}s"),
                format!("{:.0}", s.counters.records_in as f64 / secs.max(1e-3)),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(c, v)| {
                // Names left, figures right.
                if c < 2 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = vec![line(&header.map(String::from))];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}
