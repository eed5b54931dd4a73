//! Nexmark end to end: every query under `queries/nexmark/` run by the
//! `sluice` binary on N bids, from the built-in generator and from a
//! newline-JSON file of the same bids, each next to its ceiling in the same
//! run: DataFusion running the query in batch over the same rows, arrow-json
//! reading the same file, and (when a broker answers on 127.0.0.1:9092) a raw
//! rdkafka consumer reading the same topic. Then the latency from a window's
//! close to its row reaching the sink at 1,000 events/s.
//!
//!   cargo bench --bench nexmark                  # 10 million bids (release build)
//!   cargo bench --bench nexmark -- 1000000 q0 q5 # another size, some queries
//!   cargo bench --bench nexmark -- 2000000 joins # the join queries alone
//!
//! Under `cargo test --benches` (part of `.ci/run`) it runs once on 20,000
//! bids with a short latency run, as a smoke test; its figures then mean
//! nothing. Results and how to read them: docs/BENCHMARKS.md.

#[path = "../tests/sql/nexmark_oracle.rs"]
mod nexmark_oracle;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice::Engine;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const BROKER: &str = "127.0.0.1:9092";
const WATERMARK: &str = "WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds'";
/// librdkafka's `receive.message.max.bytes` for both consumers: the test
/// broker (noida-db 0.2.3) answers a fetch with more than `fetch.max.bytes`
/// asks for, and past librdkafka's default of 100 MB (a topic of about
/// 500,000 bids) the consumer drops the connection ("Bad message format").
const RECEIVE_MAX: &str = "2147483647";
/// The Kafka part's most bids: the test broker (noida-db) keeps every topic
/// in memory, several times over; with 10 million bids (2 GB of JSON) it
/// was killed for want of memory at 24 GB.
const KAFKA_MAX_BIDS: u64 = 2_000_000;
const COLUMNS: &str = "auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMP, extra TEXT";

fn generator(limit: u64, events_per_second: u64) -> String {
    let (limit, start) = if events_per_second == 0 {
        (
            format!(", limit = {limit}"),
            ", start_time = '2026-03-01T12:00:00Z'",
        )
    } else {
        // Paced and unbounded: event time follows the wall clock.
        (String::new(), "")
    };
    format!(
        "CREATE SOURCE bid ({WATERMARK}) WITH (connector = 'nexmark', table = 'bid', \
         events_per_second = {events_per_second}, seed = 7, max_out_of_orderness = '2 seconds'{limit}{start});"
    )
}

fn bid_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let int = |n: &str| Field::new(n, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        int("auction"),
        int("bidder"),
        int("price"),
        text("channel"),
        text("url"),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        text("extra"),
    ]))
}

/// The query files' names and continuous queries (`only`: these names).
fn queries(only: &[String]) -> Vec<(String, String)> {
    nexmark_oracle::query_files()
        .into_iter()
        .filter(|f| only.is_empty() || only.contains(&f.name))
        // The bench feeds bids alone: the joins (q3, q20) read other
        // tables too.
        .filter(|f| {
            f.setup
                .iter()
                .all(|s| s.sql.contains("table = 'bid'") || !s.sql.contains("CREATE SOURCE"))
        })
        .map(|f| {
            // The bench replaces the file's source by its own, with the
            // same watermark.
            assert!(
                f.setup.iter().all(|s| s.sql.contains(WATERMARK)),
                "{}: its source's watermark is not `{WATERMARK}`",
                f.name
            );
            (f.name, f.query)
        })
        .collect()
}

fn windowed(query: &str) -> bool {
    ["TUMBLE(", "HOP(", "SESSION("]
        .iter()
        .any(|w| query.to_uppercase().contains(w))
}

/// Wall time, CPU time and peak RSS of a finished `sluice` process.
struct Usage {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mb: f64,
}

/// A running `sluice` and the peak RSS its /proc entry shows (kB).
struct Running {
    child: Child,
    started: Instant,
    peak_kb: Arc<AtomicU64>,
}

/// Follows VmHWM in /proc/PID/status until the process ends. (`wait4`'s
/// `ru_maxrss` would count the pages of the fork of this process, which
/// holds the bids in memory, before the exec.)
fn watch_peak(pid: u32) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&peak);
    std::thread::spawn(move || loop {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return;
        };
        let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        else {
            return; // a zombie: it has exited
        };
        seen.fetch_max(kb, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    });
    peak
}

/// Starts `sluice run` on `script` in a fresh data directory under `dir`.
fn spawn(dir: &Path, script: &str, extra: &[&str]) -> Running {
    let data = tempfile::tempdir_in(dir).expect("data dir");
    let path = data.path().join("script.sql");
    std::fs::write(&path, script).expect("script");
    let log = std::fs::File::create(data.path().join("stderr.log")).expect("log");
    let data = data.keep();
    let started = Instant::now();
    let child = Command::new(SLUICE)
        .args(["--checkpoint-interval", "off"])
        .args(extra)
        .args(["run", "--no-progress", "--data-dir"])
        .arg(data.join("data"))
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sluice");
    let peak_kb = watch_peak(child.id());
    Running {
        child,
        started,
        peak_kb,
    }
}

/// Waits for the process and reads its resource usage (`wait4`).
fn reap(run: Running, dir: &Path, what: &str) -> Usage {
    let Running {
        child,
        started,
        peak_kb,
    } = run;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our child, not yet waited for; both pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(r, pid, "{what}: wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let signalled = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM;
    if !(ok || signalled) {
        let logs: String = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stderr.log")).ok())
            .collect();
        panic!("{what}: sluice exited with status {status}\n{logs}");
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    Usage {
        seconds,
        cpu_seconds: t(usage.ru_utime) + t(usage.ru_stime),
        peak_rss_mb: peak_kb.load(Ordering::Relaxed) as f64 / 1024.0,
    }
}

fn run_to_end(dir: &Path, script: &str, what: &str) -> Usage {
    reap(spawn(dir, script, &[]), dir, what)
}

fn header() {
    println!(
        "{:<6} {:<10} {:>10} {:>8} {:>12} {:>14} {:>6} {:>9} {:>12} {:>7}",
        "query",
        "input",
        "events",
        "seconds",
        "events/s",
        "per CPU-second",
        "cores",
        "peak RSS",
        "ceiling/s",
        "ratio"
    );
}

/// `seconds`: how long the events took (the process's life but for Kafka,
/// where it is until the source has read them all).
fn row(name: &str, input: &str, events: u64, seconds: f64, u: &Usage, ceiling: Option<f64>) {
    let rate = events as f64 / seconds;
    let (ceiling, ratio) = match ceiling {
        Some(c) => (format!("{c:.0}"), format!("{:.2}", rate / c)),
        None => ("-".into(), "-".into()),
    };
    println!(
        "{name:<6} {input:<10} {events:>10} {seconds:>8.2} {rate:>12.0} {:>14.0} {:>6.2} {:>6.0} MB {ceiling:>12} {ratio:>7}",
        events as f64 / u.cpu_seconds,
        u.cpu_seconds / u.seconds,
        u.peak_rss_mb,
    );
}

/// DataFusion in batch over `batches` (2 partitions, both cores): seconds.
async fn batch_seconds(name: &str, query: &str, batches: &[RecordBatch]) -> Option<f64> {
    if !nexmark_oracle::has_batch_form(name) {
        return None;
    }
    let schema = batches.first()?.schema();
    let mut parts = vec![Vec::new(), Vec::new()];
    for (i, b) in batches.iter().enumerate() {
        parts[i % 2].push(b.clone());
    }
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    // The queries' to_char is PostgreSQL's, as in Sluice.
    sluice::functions::register(&ctx);
    ctx.register_table(
        "bid",
        Arc::new(MemTable::try_new(schema, parts).expect("table")),
    )
    .expect("register");
    let started = Instant::now();
    let out = ctx
        .sql(&nexmark_oracle::oracle_sql(name, query))
        .await
        .expect("plan")
        .collect()
        .await
        .expect("batch query");
    std::hint::black_box(out);
    Some(started.elapsed().as_secs_f64())
}

fn slices(batch: &RecordBatch) -> Vec<RecordBatch> {
    (0..batch.num_rows())
        .step_by(8192)
        .map(|o| batch.slice(o, 8192.min(batch.num_rows() - o)))
        .collect()
}

/// The N bids as a newline-JSON file, generated once (by Sluice's file sink)
/// and cached beside the build.
fn json_file(dir: &Path, bids: u64) -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nexmark-bids-{bids}.jsonl"));
    if cache.exists() {
        return cache;
    }
    let partial = cache.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let script = format!(
        "{}\nCREATE SINK f AS SELECT * FROM bid WITH (connector = 'file', path = '{}', format = 'json');",
        generator(bids, 0),
        partial.display()
    );
    run_to_end(dir, &script, "generating the JSON file");
    std::fs::rename(&partial, &cache).expect("cache the JSON file");
    cache
}

/// arrow-json alone reading the file on one core: bids per second, and the
/// decoded batches.
fn read_with_arrow_json(path: &Path) -> (f64, Vec<RecordBatch>, f64) {
    let started = Instant::now();
    let file = std::fs::File::open(path).expect("open");
    let reader = arrow_json::ReaderBuilder::new(bid_schema())
        .with_batch_size(8192)
        .build(BufReader::with_capacity(1 << 20, file))
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("decodes")).collect();
    let seconds = started.elapsed().as_secs_f64();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    (rows as f64 / seconds, batches, seconds)
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().ok()?,
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("200 OK").then_some(body)
}

/// The value of `metric` for pipeline `pipeline` (summed over other labels).
fn sample(text: &str, metric: &str, pipeline: &str) -> Option<f64> {
    let label = format!("pipeline=\"{pipeline}\"");
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The q-quantile of a Prometheus histogram, interpolated within its bucket
/// as `histogram_quantile` does; and the number of observations.
fn quantile(text: &str, metric: &str, pipeline: &str, q: f64) -> Option<(f64, u64)> {
    let label = format!("pipeline=\"{pipeline}\"");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}_bucket{{")) && l.contains(&label))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some((prev.0, total as u64));
            }
            let within = if count > prev.1 {
                (rank - prev.1) / (count - prev.1)
            } else {
                1.0
            };
            return Some((prev.0 + (le - prev.0) * within, total as u64));
        }
        prev = (le, count);
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Windowed queries on the generator paced at 1,000 events/s (event time
/// follows the wall clock), all in one process: the end-to-end latency
/// histogram of each sink, from the source reading the batch whose
/// watermark closed the window to the sink having written its rows.
fn latency(dir: &Path, windowed: &[(String, String)], seconds: u64) {
    if windowed.is_empty() {
        return;
    }
    let mut script = generator(0, 1000);
    for (name, query) in windowed {
        script.push_str(&format!(
            "\nCREATE SINK {name} AS {query} WITH (connector = 'blackhole');"
        ));
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let run = spawn(dir, &script, &["--metrics-listen", &listen]);
    let started = run.started;
    let mut last = None;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(text) = scrape(port) {
            last = Some(text);
        }
    }
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) };
    reap(run, dir, "the latency run");
    let text = last.expect("the metrics endpoint answered");
    println!(
        "\nlatency from a window's close to its row at the sink, 1,000 events/s, {seconds} s:"
    );
    println!(
        "{:<6} {:>8} {:>10} {:>10}",
        "query", "closes", "p50 ms", "p99 ms"
    );
    for (name, _) in windowed {
        let metric = "sluice_end_to_end_latency_seconds";
        match (
            quantile(&text, metric, name, 0.5),
            quantile(&text, metric, name, 0.99),
        ) {
            (Some((p50, n)), Some((p99, _))) => {
                println!("{name:<6} {n:>8} {:>10.2} {:>10.2}", p50 * 1e3, p99 * 1e3)
            }
            _ => println!("{name:<6} {:>8} {:>10} {:>10}", 0, "-", "-"),
        }
    }
}

/// The soak's keyed TUMBLE (`-- soak SECONDS tumble`): q5's count per
/// auction over tumbling windows, where no key is shared between windows.
const KEYED_TUMBLE: &str = "q5_tumble";

fn keyed_tumble() -> (String, String) {
    (
        KEYED_TUMBLE.into(),
        "SELECT auction, window_start, window_end, count(*) AS num \
         FROM TUMBLE(bid, date_time, INTERVAL '10 seconds') \
         GROUP BY auction, window_start, window_end"
            .into(),
    )
}

/// Raw size of one group's aggregate state in a windowed query: its key
/// columns and its accumulators' values, at their Arrow widths (what a
/// perfect packing would hold). `None` for a query not listed.
fn raw_group_bytes(name: &str) -> Option<f64> {
    match name {
        // auction BIGINT, count(*) BIGINT
        "q5" | KEYED_TUMBLE => Some(16.0),
        // no key; max(price) BIGINT and its null flag
        "q7" => Some(8.0),
        // bidder BIGINT, count(*) BIGINT, the session's start and end
        "q11" => Some(32.0),
        _ => None,
    }
}

/// The memory soak: each query on the unpaced, unbounded generator for
/// `seconds` (event time advances at 10,000 events/s, so windows keep
/// closing and key cardinality per window stays constant). Every 10 s:
/// events read, RSS (VmRSS), and the window state (groups, bytes) from the
/// metrics endpoint. Prints the RSS growth over the run after its first
/// minute and the state bytes per open group next to the raw size.
fn soak(dir: &Path, queries: &[(String, String)], seconds: u64) {
    let script_of = |name: &str, query: &str| {
        format!(
            "CREATE SOURCE bid ({WATERMARK}) WITH (connector = 'nexmark', table = 'bid', \
             events_per_second = 0, seed = 7, max_out_of_orderness = '2 seconds', \
             start_time = '2026-03-01T12:00:00Z');\n\
             CREATE SINK {name} AS {query} WITH (connector = 'blackhole');"
        )
    };
    let rss_mb = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()
            .map(|kb| kb / 1024.0)
    };
    let warm_up = 60.min(seconds / 3);
    for (name, query) in queries {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let run = spawn(dir, &script_of(name, query), &["--metrics-listen", &listen]);
        let pid = run.child.id();
        println!("\nsoak: {name} on the unbounded generator for {seconds} s");
        println!(
            "{:>6} {:>14} {:>10} {:>12} {:>12} {:>12}",
            "second", "events", "RSS MB", "groups", "state MB", "B per group"
        );
        let (mut after_warm_up, mut lo, mut hi) = (None, f64::MAX, 0f64);
        let mut per_group = Vec::new();
        let mut next = 10;
        while run.started.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_millis(200));
            if run.started.elapsed() < Duration::from_secs(next) {
                continue;
            }
            next += 10;
            let (Some(rss), Some(text)) = (rss_mb(pid), scrape(port)) else {
                continue;
            };
            let events = sample(&text, "sluice_records_in_total", name).unwrap_or(0.0);
            let groups = sample(&text, "sluice_operator_state_rows", name).unwrap_or(0.0);
            let bytes = sample(&text, "sluice_operator_state_bytes", name).unwrap_or(0.0);
            let t = run.started.elapsed().as_secs();
            let per = if groups > 0.0 { bytes / groups } else { 0.0 };
            println!(
                "{t:>6} {events:>14.0} {rss:>10.1} {groups:>12.0} {:>12.2} {per:>12.0}",
                bytes / 1e6
            );
            if t >= warm_up {
                after_warm_up.get_or_insert(rss);
                lo = lo.min(rss);
                hi = hi.max(rss);
                if groups > 0.0 {
                    per_group.push(per);
                }
            }
        }
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let u = reap(run, dir, name);
        if let Some(first) = after_warm_up {
            println!(
                "{name}: RSS after {warm_up} s {first:.1} MB, then between {lo:.1} and {hi:.1} MB \
                 (growth {:+.1} %); peak {:.1} MB",
                (hi - first) / first * 100.0,
                u.peak_rss_mb
            );
        }
        if let (Some(raw), false) = (raw_group_bytes(name), per_group.is_empty()) {
            per_group.sort_by(f64::total_cmp);
            let median = per_group[per_group.len() / 2];
            println!(
                "{name}: state per open group {median:.0} B (median of the samples), raw {raw:.0} B: {:.1}x",
                median / raw
            );
        }
    }
}

fn broker_up() -> bool {
    TcpStream::connect_timeout(&BROKER.parse().expect("addr"), Duration::from_secs(1)).is_ok()
}

async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let result = admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create topic");
    for r in result {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// Deletes a topic: the test broker keeps every topic in memory, and a
/// full bench run's output topics once got it killed for want of memory.
async fn delete_topic(name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create()
        .expect("admin client");
    let result = admin
        .delete_topics(&[name], &AdminOptions::new())
        .await
        .expect("delete topic");
    for r in result {
        if let Err((t, e)) = r {
            println!("could not delete topic {t}: {e}");
        }
    }
}

/// A raw rdkafka consumer reading `topic` to `records`: seconds.
fn raw_consume(topic: &str, records: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("group.id", format!("bench-raw-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("receive.message.max.bytes", RECEIVE_MAX)
        .create()
        .expect("consumer");
    // Assigned, not subscribed: no group rebalance in the timing (Sluice's
    // source assigns its partitions too).
    let started = Instant::now();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut partitions = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions
            .add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    let mut seen = 0u64;
    let mut bytes = 0usize;
    while seen < records {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                seen += 1;
                bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len);
            }
            Some(Err(e)) => panic!("raw consumer: {e}"),
            None => assert!(
                started.elapsed() < Duration::from_secs(600),
                "raw consumer stuck at {seen} of {records}"
            ),
        }
    }
    std::hint::black_box(bytes);
    started.elapsed().as_secs_f64()
}

/// Kafka end to end: a topic of the N bids as JSON (2 partitions), read by
/// Sluice, the query, a Kafka sink; timed until the source has read all N
/// (from the metrics endpoint), next to the raw consumer. The test broker's
/// speed swings from run to run (a raw read of the same topic took 2.9 s
/// to 6.7 s in one hour), so each query runs `rounds` times, each right
/// after a raw read of its own; the ratio is to that read, and the median
/// round is the result.
async fn kafka(dir: &Path, bids: u64, queries: &[(String, String)], rounds: usize) {
    let run = format!("{}-{}", std::process::id(), bids);
    let input = format!("bench-bids-{run}");
    create_topic(&input, 2).await;
    let fill = format!(
        "{}\nCREATE SINK fill AS SELECT * FROM bid WITH (connector = 'kafka', topic = '{input}', bootstrap_servers = '{BROKER}');",
        generator(bids, 0)
    );
    let filled = run_to_end(dir, &fill, "filling the topic");
    println!(
        "\nKafka end to end ({bids} JSON bids in a 2-partition topic, written by Sluice's \
         Kafka sink in {:.1} s: {:.0} events/s, {:.2} cores; {rounds} rounds of a raw read \
         then the query):",
        filled.seconds,
        bids as f64 / filled.seconds,
        filled.cpu_seconds / filled.seconds,
    );
    header();
    let mut results = Vec::new();
    for (name, query) in queries {
        let mut ratios = Vec::new();
        for round in 0..rounds {
            let raw = raw_consume(&input, bids);
            let ceiling = bids as f64 / raw;
            println!(
                "{:<6} {:<10} {bids:>10} {raw:>8.2} {ceiling:>12.0} {:>14} {:>6} {:>9} {:>12} {:>7}",
                "-", "raw read", "-", "-", "-", "-", "-"
            );
            let output = format!("bench-{name}-{run}-{round}");
            create_topic(&output, 2).await;
            let script = format!(
                "CREATE SOURCE bid ({COLUMNS}, {WATERMARK}) WITH (connector = 'kafka', topic = '{input}', \
                 bootstrap_servers = '{BROKER}', start_from = 'earliest', group_id = 'bench-{name}-{run}-{round}', \
                 properties.receive.message.max.bytes = '{RECEIVE_MAX}');\n\
                 CREATE SINK {name} AS {query} WITH (connector = 'kafka', topic = '{output}', bootstrap_servers = '{BROKER}');"
            );
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let run = spawn(dir, &script, &["--metrics-listen", &listen]);
            let started = run.started;
            let mut read = 0.0;
            let mut done = None;
            while started.elapsed() < Duration::from_secs(900) {
                std::thread::sleep(Duration::from_millis(20));
                if let Some(text) = scrape(port) {
                    read = sample(&text, "sluice_records_in_total", name).unwrap_or(0.0);
                    if read >= bids as f64 {
                        done = Some(started.elapsed().as_secs_f64());
                        break;
                    }
                }
            }
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) };
            let u = reap(run, dir, name);
            let seconds = done.unwrap_or_else(|| panic!("{name}: read {read} of {bids} bids"));
            row(name, "kafka", bids, seconds, &u, Some(ceiling));
            ratios.push(bids as f64 / seconds / ceiling);
            delete_topic(&output).await;
        }
        ratios.sort_by(f64::total_cmp);
        results.push((name, ratios));
    }
    delete_topic(&input).await;
    for (name, ratios) in results {
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{name}: ratio to the raw read {} (median of {})",
            ratios
                .get(ratios.len() / 2)
                .map_or("-".into(), |r| format!("{r:.2}")),
            shown.join(", ")
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let bids: u64 = args
        .iter()
        .take_while(|a| *a != "soak")
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 10_000_000 } else { 20_000 });
    let only: Vec<String> = args
        .iter()
        .filter(|a| a.starts_with('q') && a[1..].parse::<u32>().is_ok())
        .cloned()
        .collect();
    // `-- generator json parallel latency kafka`: only these parts (all by
    // default).
    let parts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["generator", "joins", "json", "parallel", "latency", "kafka"].contains(a))
        .collect();
    let part = |p: &str| parts.is_empty() || parts.contains(&p);
    let queries = queries(&only);
    let dir = tempfile::tempdir().expect("temp dir");
    // `-- soak SECONDS [queries] [tumble]`: the memory soak alone (windowed
    // queries unless named; `tumble` adds the keyed TUMBLE).
    if let Some(i) = args.iter().position(|a| a == "soak") {
        let seconds = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(600);
        let tumble = args.iter().any(|a| a == "tumble");
        let mut chosen: Vec<(String, String)> = queries
            .into_iter()
            .filter(|(_, q)| !only.is_empty() || (windowed(q) && !tumble))
            .collect();
        if tumble {
            chosen.push(keyed_tumble());
        }
        soak(dir.path(), &chosen, seconds);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if part("generator") {
            generator_part(dir.path(), bids, &queries).await;
        }
        if part("joins") {
            joins_part(dir.path(), bids, &only).await;
        }
        if part("json") {
            json_part(dir.path(), bids, &queries).await;
        }
        if part("parallel") {
            parallel_part(dir.path(), bids, &queries);
        }
        let windowed: Vec<(String, String)> = queries
            .iter()
            .filter(|(_, q)| windowed(q))
            .cloned()
            .collect();
        if part("latency") {
            latency(dir.path(), &windowed, if bench { 60 } else { 8 });
            if !bench {
                // The soak's smoke test: short ones on q5 and the keyed TUMBLE.
                let mut q5: Vec<(String, String)> =
                    windowed.iter().filter(|(n, _)| n == "q5").cloned().collect();
                q5.push(keyed_tumble());
                soak(dir.path(), &q5, 12);
            }
        }
        let kafka_queries: Vec<(String, String)> = queries
            .iter()
            .filter(|(n, _)| n == "q0" || n == "q5")
            .cloned()
            .collect();
        if kafka_queries.is_empty() || !part("kafka") {
            return;
        }
        if broker_up() {
            kafka(
                dir.path(),
                bids.min(KAFKA_MAX_BIDS),
                &kafka_queries,
                if bench { 3 } else { 1 },
            )
            .await;
        } else {
            println!("\nKafka end to end: skipped, no broker on {BROKER} (bash ../shared/kafka/start-broker.sh)");
        }
    });
}

/// Every query on the generator, next to DataFusion in batch over the same
/// rows.
async fn generator_part(dir: &Path, bids: u64, queries: &[(String, String)]) {
    // The same bids in memory, for DataFusion in batch.
    let mut engine = Engine::new();
    engine.execute(&generator(bids, 0)).await.expect("source");
    let bid_rows = engine
        .query_to_end("SELECT * FROM bid")
        .await
        .expect("bids");
    assert_eq!(bid_rows.num_rows() as u64, bids);
    let generated = slices(&bid_rows);
    drop(bid_rows);

    println!(
        "{bids} bids, `sluice` {} build, 2 cores; ceiling = DataFusion in batch over the same rows (2 partitions)\n",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    header();
    for (name, query) in queries {
        let script = format!(
            "{}\nCREATE SINK {name} AS {query} WITH (connector = 'blackhole');",
            generator(bids, 0)
        );
        let u = run_to_end(dir, &script, name);
        let ceiling = batch_seconds(name, query, &generated)
            .await
            .map(|s| bids as f64 / s);
        row(name, "generator", bids, u.seconds, &u, ceiling);
    }
    drop(generated);
}

/// The join queries whose files read people or auctions besides bids
/// (q3, q8, q20): their own generator sources, scaled to `bids` bids (per
/// 50 events the generator makes 1 person, 3 auctions and 46 bids), next
/// to DataFusion joining the same rows in batch. Events are every source's.
async fn joins_part(dir: &Path, bids: u64, only: &[String]) {
    let files: Vec<_> = nexmark_oracle::query_files()
        .into_iter()
        .filter(|f| only.is_empty() || only.contains(&f.name))
        .filter(|f| {
            f.setup
                .iter()
                .any(|s| s.sql.contains("CREATE SOURCE") && !s.sql.contains("table = 'bid'"))
        })
        .collect();
    if files.is_empty() {
        return;
    }
    println!(
        "\nJoins: each query file's own sources scaled to {bids} bids; ceiling = DataFusion in batch over the same rows (2 partitions)\n"
    );
    header();
    for f in files {
        let mut events = 0;
        let setup: Vec<String> = f
            .setup
            .iter()
            .map(|s| {
                let (sql, n) = scaled(&s.sql, bids);
                events += n;
                sql
            })
            .collect();
        let script = format!(
            "{};\nCREATE SINK {} AS {} WITH (connector = 'blackhole');",
            setup.join(";\n"),
            f.name,
            f.query
        );
        let u = run_to_end(dir, &script, &f.name);
        // The same rows, in memory, for DataFusion.
        let mut engine = Engine::new();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        for sql in &setup {
            engine.execute(sql).await.expect("source");
        }
        for s in &f.setup {
            let Some(name) = s
                .sql
                .split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("SOURCE"))
                .nth(1)
            else {
                continue;
            };
            let rows = engine
                .query_to_end(&format!("SELECT * FROM {name}"))
                .await
                .expect("rows");
            let mut parts = vec![Vec::new(), Vec::new()];
            for (i, b) in slices(&rows).into_iter().enumerate() {
                parts[i % 2].push(b);
            }
            ctx.register_table(
                name,
                Arc::new(MemTable::try_new(rows.schema(), parts).expect("table")),
            )
            .expect("register");
        }
        let started = Instant::now();
        let out = ctx
            .sql(&nexmark_oracle::oracle_sql(&f.name, &f.query))
            .await
            .expect("plan")
            .collect()
            .await
            .expect("batch query");
        std::hint::black_box(out);
        let ceiling = events as f64 / started.elapsed().as_secs_f64();
        row(&f.name, "generator", events, u.seconds, &u, Some(ceiling));
    }
}

/// A query file's `CREATE SOURCE` with its `limit` set for `bids` bids (its
/// share of the generator's events); the statement, and that limit.
fn scaled(sql: &str, bids: u64) -> (String, u64) {
    let share = if sql.contains("table = 'person'") {
        bids / 46
    } else if sql.contains("table = 'auction'") {
        bids * 3 / 46
    } else {
        bids
    };
    let Some(at) = sql.find("limit = ") else {
        return (sql.to_string(), 0);
    };
    let digits = sql[at + 8..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(sql.len(), |d| at + 8 + d);
    (
        format!("{}limit = {share}{}", &sql[..at], &sql[digits..]),
        share,
    )
}

/// Every query on the JSON file at `--parallelism 1` and at every core, in
/// the same run: what the extra cores buy.
fn parallel_part(dir: &Path, bids: u64, queries: &[(String, String)]) {
    let path = json_file(dir, bids);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("\nthe JSON file at --parallelism 1 and {cores} (same run):");
    header();
    let mut speedups = Vec::new();
    for (name, query) in queries {
        let script = format!(
            "CREATE SOURCE bid ({COLUMNS}, {WATERMARK}) WITH (connector = 'file', path = '{}', format = 'json');\n\
             CREATE SINK {name} AS {query} WITH (connector = 'blackhole');",
            path.display()
        );
        let mut rates = Vec::new();
        for p in [1, cores] {
            let n = p.to_string();
            let u = reap(spawn(dir, &script, &["--parallelism", &n]), dir, name);
            row(name, &format!("json p{p}"), bids, u.seconds, &u, None);
            rates.push((bids as f64 / u.seconds, bids as f64 / u.cpu_seconds));
        }
        speedups.push((
            name.clone(),
            rates[1].0 / rates[0].0,
            rates[1].1 / rates[0].1,
        ));
    }
    for (name, speedup, per_cpu) in speedups {
        println!("{name}: throughput x{speedup:.2} at {cores} cores; per CPU-second x{per_cpu:.2}");
    }
}

/// Every query on the JSON file, next to arrow-json and DataFusion.
async fn json_part(dir: &Path, bids: u64, queries: &[(String, String)]) {
    let path = json_file(dir, bids);
    let (json_rate, decoded, json_seconds) = read_with_arrow_json(&path);
    println!(
        "\nnewline-JSON file ({:.0} MB): arrow-json alone reads it at {json_rate:.0} bids/s on one core; \
         ceiling = that decode plus DataFusion in batch",
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6
    );
    header();
    for (name, query) in queries {
        let script = format!(
            "CREATE SOURCE bid ({COLUMNS}, {WATERMARK}) WITH (connector = 'file', path = '{}', format = 'json');\n\
             CREATE SINK {name} AS {query} WITH (connector = 'blackhole');",
            path.display()
        );
        let u = run_to_end(dir, &script, name);
        let ceiling = batch_seconds(name, query, &decoded)
            .await
            .map(|s| bids as f64 / (s + json_seconds));
        row(name, "json file", bids, u.seconds, &u, ceiling);
    }
    drop(decoded);
}
