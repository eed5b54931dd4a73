//! Counters shared by a pipeline's tasks; read by the progress display.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct PipelineMetrics {
    /// Records read from the source (decoded or not).
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Rows written by the sink.
    pub records_out: AtomicU64,
    /// Records that could not be decoded.
    pub errors: AtomicU64,
    /// Of those, how many reached the dead-letter target.
    pub dead_lettered: AtomicU64,
    /// Rows dropped because they arrived behind the watermark.
    pub late: AtomicU64,
    /// The current watermark (epoch ms), `i64::MIN` before the first.
    pub watermark: std::sync::atomic::AtomicI64,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        PipelineMetrics {
            records_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            late: AtomicU64::new(0),
            watermark: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }
}

impl PipelineMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            records_in: Self::get(&self.records_in),
            bytes_in: Self::get(&self.bytes_in),
            records_out: Self::get(&self.records_out),
            errors: Self::get(&self.errors),
            dead_lettered: Self::get(&self.dead_lettered),
            late: Self::get(&self.late),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub errors: u64,
    pub dead_lettered: u64,
    pub late: u64,
}
