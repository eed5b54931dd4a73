//! What every pipeline is doing, measured where it happens and read by the
//! progress display, `SHOW PIPELINES` / `sluice.pipelines`, `EXPLAIN
//! ANALYZE` and the Prometheus endpoint; and its recent bad records
//! (`sluice.errors`).
//!
//! Counters are atomics bumped once per batch (never per record). A sampler
//! ([`Monitor::run_sampler`]) snapshots them every second; rates over the last
//! 10 s are differences between those samples.
//!
//! * **λ, arrival rate**: records that became available to the source per
//!   second: those it read plus the growth of its backlog (a Kafka
//!   partition's lag, a rate-limited generator's rows already due). A source
//!   that knows no backlog (files, sockets) reports its read rate.
//! * **μ, service rate**: records a stage handles per second of its own busy
//!   time (time in `process_batch`, in the sink's `write`), in the stage's
//!   own rows. The pipeline's μ is in source records: the rate it reads
//!   divided by the busy fraction of its busiest stage (what it would read
//!   with that stage busy all the time).
//! * **ρ = λ / μ**: below 1 the pipeline keeps up; at or above 1 for the
//!   whole 10 s window it is falling behind (said in its row, logged once).

pub mod errors;
pub mod exposition;
pub mod table;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::mpsc::WeakSender;

use crate::stream::Message;

/// Samples kept: one a second, for rates over the last 10 s.
const HISTORY: usize = 11;
/// Rates are taken over this much history.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Where a stage sits in a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Source,
    Operator,
    Sink,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Operator => "operator",
            NodeKind::Sink => "sink",
        }
    }
}

/// One stage of a pipeline: its source, an operator, or its sink.
#[derive(Debug)]
pub struct NodeMetrics {
    pub kind: NodeKind,
    /// What it is, e.g. `window aggregate` or `sink kafka`.
    pub name: String,
    /// Its settings, as EXPLAIN shows them.
    pub detail: String,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Arrow bytes of the batches it received.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub batches: AtomicU64,
    /// Nanoseconds spent handling batches and watermarks.
    pub busy_ns: AtomicU64,
    /// Nanoseconds a source waited for room in the channel after it: the
    /// stages downstream were slower than it.
    pub blocked_ns: AtomicU64,
    /// Rows and bytes of state it holds (open windows, groups, a view).
    pub state_rows: AtomicU64,
    pub state_bytes: AtomicU64,
    /// Per input of an operator with several (a join's sides): the rows
    /// and bytes of its state that input's rows are.
    input_state: Mutex<Vec<(u64, u64)>>,
    /// Seconds per batch handled.
    pub batch_seconds: Histogram,
    /// The channel feeding it, for its depth.
    queue: std::sync::OnceLock<WeakSender<Message>>,
    /// The stages it reads, by index into its pipeline's stages; unset: the
    /// stage before it.
    inputs: std::sync::OnceLock<Vec<usize>>,
    /// When its state size was last read.
    state_read: Mutex<Option<Instant>>,
    /// How many instances of it run (a keyed operator split across cores
    /// by an exchange): they add to its figures together.
    instances: std::sync::OnceLock<usize>,
    /// Each instance's state and when it was last read.
    state_parts: Mutex<Vec<StatePart>>,
}

/// An instance's state, and when it was last read.
type StatePart = (Option<Instant>, StateSize);

/// Rows and bytes of state an operator holds, and (an operator with
/// several inputs, such as a join) how much of it each input's rows are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSize {
    pub rows: u64,
    pub bytes: u64,
    /// Per input: (rows, bytes); empty when not told apart.
    pub inputs: Vec<(u64, u64)>,
}

impl From<(u64, u64)> for StateSize {
    fn from((rows, bytes): (u64, u64)) -> Self {
        StateSize {
            rows,
            bytes,
            inputs: Vec::new(),
        }
    }
}

/// Input `i` of an operator with `inputs` of them, as the figures name
/// it: a join's `left` and `right`, otherwise its number.
pub fn input_name(inputs: usize, i: usize) -> String {
    match (inputs, i) {
        (2, 0) => "left".to_string(),
        (2, _) => "right".to_string(),
        _ => i.to_string(),
    }
}

impl StateSize {
    /// The sum of several instances' state.
    fn add(&mut self, other: &StateSize) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        if self.inputs.len() < other.inputs.len() {
            self.inputs.resize(other.inputs.len(), (0, 0));
        }
        for (mine, theirs) in self.inputs.iter_mut().zip(&other.inputs) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }
}

/// How often a stage's state size is re-read (what the once-a-second
/// sampler needs, without walking large state on every batch).
const STATE_SIZE_EVERY: Duration = Duration::from_secs(1);

impl NodeMetrics {
    pub fn new(kind: NodeKind, name: impl Into<String>, detail: impl Into<String>) -> Self {
        NodeMetrics {
            kind,
            name: name.into(),
            detail: detail.into(),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            blocked_ns: AtomicU64::new(0),
            state_rows: AtomicU64::new(0),
            state_bytes: AtomicU64::new(0),
            batch_seconds: Histogram::new(exponential_buckets(0.000_01, 4.0, 12)),
            queue: std::sync::OnceLock::new(),
            inputs: std::sync::OnceLock::new(),
            state_read: Mutex::new(None),
            instances: std::sync::OnceLock::new(),
            state_parts: Mutex::new(Vec::new()),
            input_state: Mutex::new(Vec::new()),
        }
    }

    /// `n` instances of it run, sharing these figures (set once).
    pub fn set_instances(&self, n: usize) {
        let _ = self.instances.set(n.max(1));
    }

    /// How many instances of it run.
    pub fn instances(&self) -> usize {
        self.instances.get().copied().unwrap_or(1)
    }

    /// [`NodeMetrics::refresh_state`] for instance `part` of several: its
    /// state is the sum of theirs.
    pub fn refresh_state_of(
        &self,
        part: usize,
        now: bool,
        size: impl FnOnce() -> Option<StateSize>,
    ) {
        if self.instances() == 1 {
            return self.refresh_state(now, size);
        }
        let Ok(mut parts) = self.state_parts.lock() else {
            return;
        };
        if parts.len() <= part {
            parts.resize(part + 1, (None, StateSize::default()));
        }
        let (read, held) = &mut parts[part];
        if !now && read.is_some_and(|t| t.elapsed() < STATE_SIZE_EVERY) {
            return;
        }
        *read = Some(Instant::now());
        if let Some(s) = size() {
            *held = s;
            let mut sum = StateSize::default();
            for (_, p) in parts.iter() {
                sum.add(p);
            }
            self.store_state(sum);
        }
    }

    fn store_state(&self, size: StateSize) {
        self.state_rows.store(size.rows, Ordering::Relaxed);
        self.state_bytes.store(size.bytes, Ordering::Relaxed);
        if let Ok(mut inputs) = self.input_state.lock() {
            *inputs = size.inputs;
        }
    }

    /// Per input of an operator with several (a join's sides): the rows
    /// and bytes of its state that input's rows are; empty for the others.
    pub fn input_state(&self) -> Vec<(u64, u64)> {
        self.input_state
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Watches the channel that feeds this stage.
    pub fn set_queue(&self, sender: &tokio::sync::mpsc::Sender<Message>) {
        self.watch_queue(sender.downgrade());
    }

    /// Watches the channel that feeds this stage, by a handle that does
    /// not keep it open.
    pub fn watch_queue(&self, sender: tokio::sync::mpsc::WeakSender<Message>) {
        let _ = self.queue.set(sender);
    }

    /// Sets the stages it reads (once).
    pub fn set_inputs(&self, inputs: impl IntoIterator<Item = usize>) {
        // Set once, when the pipeline is built; a second call changes nothing.
        let _ = self.inputs.set(inputs.into_iter().collect());
    }

    /// The stages it reads; `None` when they were never set (the stage
    /// before it, in a chain).
    pub fn inputs(&self) -> Option<&[usize]> {
        self.inputs.get().map(Vec::as_slice)
    }

    /// Messages waiting in the channel that feeds this stage.
    pub fn queue_depth(&self) -> Option<u64> {
        let sender = self.queue.get()?.upgrade()?;
        Some((sender.max_capacity() - sender.capacity()) as u64)
    }

    /// Accounts one handled batch (or watermark: `rows_in` 0).
    pub fn record(&self, started: Instant, rows_in: u64, bytes_in: u64, rows_out: u64) {
        let spent = started.elapsed();
        self.busy_ns
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
        if rows_in > 0 {
            self.records_in.fetch_add(rows_in, Ordering::Relaxed);
            self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.batch_seconds.observe(spent.as_secs_f64());
        }
        self.records_out.fetch_add(rows_out, Ordering::Relaxed);
    }

    /// Accounts rows that took no measurable work (a generator's batch).
    pub fn count(&self, rows_in: u64, bytes_in: u64, rows_out: u64) {
        self.records_in.fetch_add(rows_in, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records_out.fetch_add(rows_out, Ordering::Relaxed);
    }

    /// Re-reads the state size through `size` when it is due (or `now`).
    pub fn refresh_state(&self, now: bool, size: impl FnOnce() -> Option<StateSize>) {
        let Ok(mut read) = self.state_read.lock() else {
            return;
        };
        if !now && read.is_some_and(|t| t.elapsed() < STATE_SIZE_EVERY) {
            return;
        }
        *read = Some(Instant::now());
        if let Some(size) = size() {
            self.store_state(size);
        }
    }
}

/// A Kafka partition's position against its high watermark.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartitionLag {
    /// The next offset the source will read (-1: nothing read yet).
    pub position: i64,
    /// The partition's high watermark (-1: not known yet).
    pub high: i64,
    /// librdkafka's own lag figure, used until the source has read.
    pub reported_lag: i64,
}

impl PartitionLag {
    pub fn lag(&self) -> Option<i64> {
        if self.high < 0 {
            return None;
        }
        if self.position >= 0 {
            Some((self.high - self.position).max(0))
        } else {
            (self.reported_lag >= 0).then_some(self.reported_lag)
        }
    }
}

/// How a pipeline stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineState {
    Running,
    /// Its bounded input ended, or it was stopped (shutdown, DROP).
    Finished,
    Failed(String),
}

impl PipelineState {
    /// `running`, `stopped` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            PipelineState::Running => "running",
            PipelineState::Finished => "stopped",
            PipelineState::Failed(_) => "failed",
        }
    }

    /// The name, with the reason of a failure.
    pub fn label(&self) -> String {
        match self {
            PipelineState::Failed(reason) => format!("failed: {reason}"),
            other => other.name().into(),
        }
    }
}

#[derive(Debug)]
pub struct PipelineMetrics {
    pub name: String,
    /// The source it reads.
    pub source: String,
    pub started: Instant,
    /// Records read from the source (decoded or not).
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Rows written by the sink.
    pub records_out: AtomicU64,
    /// Bytes the sink sent on (see `SinkWriter::write`).
    pub bytes_out: AtomicU64,
    /// Records that could not be decoded.
    pub errors: AtomicU64,
    /// Of those, how many reached the dead-letter target.
    pub dead_lettered: AtomicU64,
    /// The newest of those, for `sluice.errors`.
    pub recent_errors: errors::RecentErrors,
    /// Rows dropped because they arrived behind the watermark.
    pub late: AtomicU64,
    /// Rows a join's state let go: freed once the watermark passed them
    /// (an interval or window join), or forgotten by `state_ttl`.
    pub evicted: AtomicU64,
    /// The current watermark (epoch ms), `i64::MIN` before the first.
    pub watermark: AtomicI64,
    /// Records available to the source but not read yet (-1: unknown).
    pub backlog: AtomicI64,
    /// A rate-limited generator's schedule (start, rows/s, limit): its
    /// backlog is the rows due by now that it has not produced.
    schedule: std::sync::OnceLock<(Instant, f64, Option<u64>)>,
    /// Seconds from the source reading a batch to the sink having written
    /// what it produced. Buckets double from 0.25 ms to 33 s, fine enough
    /// for the benchmark's p50 / p99 (benches/nexmark.rs).
    pub latency_seconds: Histogram,
    pub state: Mutex<PipelineState>,
    /// Source, operators and sink, in order.
    pub nodes: Mutex<Vec<Arc<NodeMetrics>>>,
    /// Kafka partitions by number.
    pub partitions: Mutex<BTreeMap<i32, PartitionLag>>,
    history: Mutex<VecDeque<Sample>>,
    /// Warned that it falls behind (until it keeps up again).
    behind: std::sync::atomic::AtomicBool,
    /// The last checkpoint this pipeline took part in: when its state was
    /// saved (epoch ms) and how long from barrier to saved (ms).
    pub checkpoint: Mutex<Option<(i64, f64)>>,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        PipelineMetrics::new("", "")
    }
}

/// Counters at one instant.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    arrived: u64,
    read: u64,
    /// Per stage: records in, busy ns, blocked ns.
    nodes: Vec<(u64, u64, u64)>,
}

/// Rates over a span of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Records per second into the stage (λ for the source).
    pub rate: f64,
    /// Records per busy second (μ); `None` before it has handled any.
    pub service: Option<f64>,
    /// Busy time per wall time.
    pub busy: f64,
    /// Time blocked on a full channel per wall time (sources).
    pub blocked: f64,
}

/// A stage's figures, as `SHOW PIPELINES` shows them.
#[derive(Debug, Clone)]
pub struct NodeStats {
    pub node: Arc<NodeMetrics>,
    pub last_10s: Rates,
    pub since_start: Rates,
    pub queue_depth: Option<u64>,
}

/// A pipeline's figures.
#[derive(Debug, Clone)]
pub struct PipelineStats {
    pub state: PipelineState,
    pub counters: MetricsSnapshot,
    pub elapsed: Duration,
    /// λ over the last 10 s and since start.
    pub arrival_10s: f64,
    pub arrival_total: f64,
    /// μ of the slowest stage, over the last 10 s and since start.
    pub service_10s: Option<f64>,
    pub service_total: Option<f64>,
    pub backlog: Option<i64>,
    pub watermark: Option<i64>,
    /// The last checkpoint: when (epoch ms) and how long it took (ms).
    pub checkpoint: Option<(i64, f64)>,
    pub nodes: Vec<NodeStats>,
    pub partitions: BTreeMap<i32, PartitionLag>,
    /// ρ has stayed at or above 1 for the whole last 10 s.
    pub falling_behind: bool,
}

impl PipelineStats {
    pub fn utilisation_10s(&self) -> Option<f64> {
        self.service_10s
            .filter(|m| *m > 0.0)
            .map(|m| self.arrival_10s / m)
    }

    pub fn utilisation_total(&self) -> Option<f64> {
        self.service_total
            .filter(|m| *m > 0.0)
            .map(|m| self.arrival_total / m)
    }

    /// How far the watermark is behind the wall clock.
    pub fn watermark_lag(&self) -> Option<Duration> {
        let w = self.watermark?;
        let now = chrono::Utc::now().timestamp_millis();
        Some(Duration::from_millis((now - w).max(0) as u64))
    }
}

impl PipelineMetrics {
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Self {
        PipelineMetrics {
            name: name.into(),
            source: source.into(),
            started: Instant::now(),
            records_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            recent_errors: errors::RecentErrors::default(),
            late: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            backlog: AtomicI64::new(-1),
            schedule: std::sync::OnceLock::new(),
            latency_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 18)),
            state: Mutex::new(PipelineState::Running),
            nodes: Mutex::new(Vec::new()),
            partitions: Mutex::new(BTreeMap::new()),
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            behind: std::sync::atomic::AtomicBool::new(false),
            checkpoint: Mutex::new(None),
        }
    }

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
            bytes_out: Self::get(&self.bytes_out),
            errors: Self::get(&self.errors),
            dead_lettered: Self::get(&self.dead_lettered),
            late: Self::get(&self.late),
            evicted: Self::get(&self.evicted),
        }
    }

    /// Adds a stage (in pipeline order).
    pub fn add_node(&self, node: NodeMetrics) -> Arc<NodeMetrics> {
        let node = Arc::new(node);
        if let Ok(mut nodes) = self.nodes.lock() {
            nodes.push(Arc::clone(&node));
        }
        node
    }

    pub fn nodes(&self) -> Vec<Arc<NodeMetrics>> {
        self.nodes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Records a checkpoint the pipeline's state went into.
    pub fn set_checkpoint(&self, took: Duration) {
        if let Ok(mut c) = self.checkpoint.lock() {
            *c = Some((
                chrono::Utc::now().timestamp_millis(),
                took.as_secs_f64() * 1000.0,
            ));
        }
    }

    pub fn set_state(&self, state: PipelineState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    pub fn state(&self) -> PipelineState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(PipelineState::Running)
    }

    /// Sets a Kafka partition's read position (the next offset).
    pub fn set_position(&self, partition: i32, next: i64) {
        if let Ok(mut p) = self.partitions.lock() {
            let e = p.entry(partition).or_insert(PartitionLag {
                position: -1,
                high: -1,
                reported_lag: -1,
            });
            e.position = next;
        }
    }

    /// Sets a Kafka partition's high watermark (and librdkafka's lag).
    pub fn set_high(&self, partition: i32, high: i64, reported_lag: i64) {
        let backlog = match self.partitions.lock() {
            Ok(mut p) => {
                let e = p.entry(partition).or_insert(PartitionLag {
                    position: -1,
                    high: -1,
                    reported_lag: -1,
                });
                e.high = high;
                e.reported_lag = reported_lag;
                p.values().filter_map(PartitionLag::lag).sum::<i64>()
            }
            Err(_) => return,
        };
        self.backlog.store(backlog, Ordering::Relaxed);
    }

    /// A generator producing `rate` rows/s (up to `limit`) from `start`.
    pub fn set_schedule(&self, start: Instant, rate: f64, limit: Option<u64>) {
        let _ = self.schedule.set((start, rate, limit));
    }

    /// Records available to the source but not read yet, if known.
    pub fn backlog(&self) -> Option<i64> {
        if let Some((start, rate, limit)) = self.schedule.get() {
            let due = start.elapsed().as_secs_f64() * rate;
            let due = limit.map_or(due, |l| due.min(l as f64));
            return Some((due as i64 - Self::get(&self.records_in) as i64).max(0));
        }
        let b = self.backlog.load(Ordering::Relaxed);
        (b >= 0).then_some(b)
    }

    /// Records that arrived at the source: read, or waiting to be.
    fn arrived(&self) -> u64 {
        Self::get(&self.records_in) + self.backlog().unwrap_or(0) as u64
    }

    fn sample(&self) -> Sample {
        Sample {
            at: Instant::now(),
            arrived: self.arrived(),
            read: Self::get(&self.records_in),
            nodes: self
                .nodes()
                .iter()
                .map(|n| {
                    (
                        n.records_in.load(Ordering::Relaxed),
                        // Its instances work side by side: its
                        // utilisation is their average.
                        n.busy_ns.load(Ordering::Relaxed) / n.instances() as u64,
                        n.blocked_ns.load(Ordering::Relaxed),
                    )
                })
                .collect(),
        }
    }

    /// Takes this second's sample; warns once when the pipeline starts
    /// falling behind, and says when it keeps up again.
    pub fn tick(&self) {
        let s = self.sample();
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(s);
        }
        if self.state() != PipelineState::Running {
            return;
        }
        let stats = self.stats();
        let was = self.behind.load(Ordering::Relaxed);
        if stats.falling_behind && !was {
            self.behind.store(true, Ordering::Relaxed);
            tracing::warn!(
                pipeline = %self.name,
                arrival_rate = stats.arrival_10s.round(),
                service_rate = stats.service_10s.map(f64::round),
                utilisation = stats.utilisation_10s().map(|r| (r * 100.0).round() / 100.0),
                bottleneck = %stats.bottleneck().unwrap_or("-"),
                "pipeline is falling behind: records arrive faster than it processes them"
            );
        } else if !stats.falling_behind && was && stats.utilisation_10s().is_some_and(|r| r < 0.9) {
            self.behind.store(false, Ordering::Relaxed);
            tracing::info!(pipeline = %self.name, "pipeline keeps up again");
        }
    }

    /// The figures now.
    pub fn stats(&self) -> PipelineStats {
        let now = self.sample();
        let history: Vec<Sample> = self
            .history
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        let origin = Sample {
            at: self.started,
            arrived: 0,
            read: 0,
            nodes: vec![(0, 0, 0); now.nodes.len()],
        };
        // The oldest sample within the window (or the start).
        let base = history
            .iter()
            .find(|s| now.at.duration_since(s.at) <= RATE_WINDOW + Duration::from_millis(500))
            .unwrap_or(&origin);
        let nodes = self.nodes();
        let rates = |from: &Sample, i: usize| -> Rates {
            let dt = now.at.duration_since(from.at).as_secs_f64();
            let (r0, b0, w0) = from.nodes.get(i).copied().unwrap_or((0, 0, 0));
            let (r1, b1, w1) = now.nodes[i];
            let dr = r1.saturating_sub(r0) as f64;
            let db = b1.saturating_sub(b0) as f64 / 1e9;
            let dw = w1.saturating_sub(w0) as f64 / 1e9;
            let per_wall = |x: f64| if dt > 0.0 { (x / dt).min(1.0) } else { 0.0 };
            Rates {
                rate: if dt > 0.0 { dr / dt } else { 0.0 },
                service: (dr > 0.0 && db > 0.0).then(|| dr / db),
                busy: per_wall(db),
                blocked: per_wall(dw),
            }
        };
        let node_stats: Vec<NodeStats> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeStats {
                node: Arc::clone(n),
                last_10s: rates(base, i),
                since_start: rates(&origin, i),
                queue_depth: n.queue_depth(),
            })
            .collect();
        // Capacity in source records: read rate over the busiest stage's
        // busy fraction.
        let capacity = |read_rate: f64, busy: fn(&NodeStats) -> f64| {
            let max = node_stats
                .iter()
                .filter(|n| n.node.kind != NodeKind::Source)
                .map(busy)
                .fold(0.0, f64::max);
            (max > 0.0 && read_rate > 0.0).then(|| read_rate / max)
        };
        let per_sec = |n: u64, since: Instant| {
            let dt = now.at.duration_since(since).as_secs_f64();
            if dt > 0.0 {
                n as f64 / dt
            } else {
                0.0
            }
        };
        let arrival_10s = per_sec(now.arrived.saturating_sub(base.arrived), base.at);
        let service_10s = capacity(per_sec(now.read.saturating_sub(base.read), base.at), |n| {
            n.last_10s.busy
        });
        // Falling behind: ρ ≥ 1 over a full window (a pipeline a few
        // seconds old has no such window yet).
        let full_window = history.len() >= HISTORY
            && now.at.duration_since(base.at) >= RATE_WINDOW - Duration::from_millis(500);
        let watermark = self.watermark.load(Ordering::Relaxed);
        let backlog = self.backlog();
        let mut stats = PipelineStats {
            state: self.state(),
            counters: self.snapshot(),
            elapsed: self.started.elapsed(),
            arrival_10s,
            arrival_total: per_sec(now.arrived, self.started),
            service_10s,
            service_total: capacity(per_sec(now.read, self.started), |n| n.since_start.busy),
            backlog,
            watermark: (watermark != i64::MIN).then_some(watermark),
            checkpoint: self.checkpoint.lock().ok().and_then(|c| *c),
            nodes: node_stats,
            partitions: self
                .partitions
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default(),
            falling_behind: false,
        };
        stats.falling_behind = full_window && stats.utilisation_10s().is_some_and(|r| r >= 1.0);
        stats
    }
}

impl PipelineStats {
    /// The busiest stage (the one that limits μ).
    pub fn bottleneck(&self) -> Option<&str> {
        self.nodes
            .iter()
            .filter(|n| n.node.kind != NodeKind::Source && n.last_10s.busy > 0.0)
            .max_by(|a, b| a.last_10s.busy.total_cmp(&b.last_10s.busy))
            .map(|n| n.node.name.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub dead_lettered: u64,
    pub late: u64,
    pub evicted: u64,
}

/// Every pipeline of an engine, for the system views, the sampler and the
/// metrics endpoint (which must not wait for the engine's lock).
#[derive(Debug, Default)]
pub struct Monitor {
    pipelines: Mutex<Vec<Arc<PipelineMetrics>>>,
}

impl Monitor {
    pub fn register(&self, metrics: Arc<PipelineMetrics>) {
        if let Ok(mut p) = self.pipelines.lock() {
            p.push(metrics);
        }
    }

    /// Forgets a dropped pipeline.
    pub fn remove(&self, name: &str) {
        if let Ok(mut p) = self.pipelines.lock() {
            p.retain(|m| m.name != name);
        }
    }

    pub fn pipelines(&self) -> Vec<Arc<PipelineMetrics>> {
        self.pipelines.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Samples every pipeline once a second until `stop`.
    pub async fn run_sampler(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            for p in self.pipelines() {
                p.tick();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lag_prefers_the_read_position() {
        let m = PipelineMetrics::new("p", "s");
        m.set_high(0, 100, 40);
        assert_eq!(m.stats().partitions[&0].lag(), Some(40));
        m.set_position(0, 90);
        m.set_high(0, 100, 40);
        assert_eq!(m.stats().partitions[&0].lag(), Some(10));
        assert_eq!(m.stats().backlog, Some(10));
    }

    #[test]
    fn service_rate_is_records_per_busy_second() {
        let m = PipelineMetrics::new("p", "s");
        let node = m.add_node(NodeMetrics::new(NodeKind::Sink, "sink", ""));
        std::thread::sleep(Duration::from_millis(40));
        node.records_in.store(1000, Ordering::Relaxed);
        node.busy_ns.store(20_000_000, Ordering::Relaxed);
        m.records_in.store(4000, Ordering::Relaxed);
        let s = m.stats();
        let mu = s.nodes[0].since_start.service.expect("service rate");
        assert!((mu - 50_000.0).abs() < 1e-6, "{mu}");
        // The pipeline's μ is in source records: 4000 read while the sink
        // was busy for 20 ms of the elapsed time.
        let busy = s.nodes[0].since_start.busy;
        let read_rate = 4000.0 / s.elapsed.as_secs_f64();
        let want = read_rate / busy;
        let got = s.service_total.expect("pipeline service rate");
        assert!((got - want).abs() / want < 0.05, "{got} vs {want}");
        assert_eq!(s.bottleneck(), Some("sink"));
    }
}
