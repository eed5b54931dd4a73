//! The progress display on stderr: per pipeline, records in / out / errors,
//! the arrival rate and utilisation ρ, redrawn in place on a terminal (below
//! the rows on stdout, see [`crate::terminal`]), plain lines otherwise; a
//! summary table when the run ends.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::{PipelineMetrics, PipelineState};
use crate::terminal;

pub struct ProgressEntry {
    pub name: String,
    pub metrics: Arc<PipelineMetrics>,
    /// Started from a checkpoint's state, not from scratch.
    pub resumed: bool,
    /// Its source ends by itself (a file read once, a generator's limit).
    pub bounded: bool,
}

/// The pipelines that resumed from a checkpoint and ended without reading a
/// record: an earlier run had read their sources to the end.
pub fn nothing_new(entries: &[ProgressEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.resumed && e.bounded)
        .filter(|e| {
            e.metrics.state() == PipelineState::Finished
                && PipelineMetrics::get(&e.metrics.records_in) == 0
        })
        .map(|e| e.name.as_str())
        .collect()
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

/// Draws progress until `stop` fires, then takes the progress line away.
pub async fn run(entries: Vec<ProgressEntry>, stop: CancellationToken) {
    let tty = terminal::stderr_is_terminal();
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
        if tty {
            if terminal::set_status(&l).is_err() {
                // Nobody reads stderr any more: stop drawing, the pipelines go on.
                return;
            }
        } else if l != last {
            terminal::message(&format!("progress: {l}"));
        }
        last = l;
    }
    if terminal::clear_status().is_err() {
        tracing::debug!("stderr closed: the progress line stays");
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
