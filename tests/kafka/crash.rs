//! Exactly-once across crashes. A producer writes a known stream (keys,
//! bounded disorder, a few late events) into Kafka at a steady pace while
//! `sluice --parallelism 2 --checkpoint-interval 1s` runs a windowed and a
//! non-windowed aggregate view (the latter over a UNION ALL), each split
//! into two instances behind a hash exchange, each with a Kafka sink, and
//! the same totals through a join, and the same windows through a window
//! join split across both instances by its keys, each with a Kafka sink
//! too. The test kills the process with
//! SIGKILL at least ten times — at random moments, right after a checkpoint
//! completes (while its transactions commit) and about when the next one
//! starts — and restarts it on the same data directory each time. At the
//! end the sink topics, read with `read_committed`, and the views hold
//! exactly DataFusion's batch answer over the topic: nothing lost, nothing
//! written twice. The second test restarts the broker in the middle too.
//!
//! Why the answer is deterministic: an on-time event is never more than
//! 4 s behind the stream on its partition, and the watermark is 5 s behind,
//! so no on-time event is ever late, whatever the restarts. The late events
//! (year 2000) are produced only once a window has been committed, i.e. once
//! a complete checkpoint holds a watermark that covers every partition; so
//! they are late in every run that reads them. A far-future event on every
//! partition closes every real window at the end; its own window never
//! closes, so the windowed answer leaves it out (the totals count it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{broker, create_topic, unique, ExtraBroker, Received, T};
use crate::common::{printed_tables, signal, Sluice};

#[path = "crash/answer.rs"]
mod answer;
use answer::{
    input_problems, total_problems, totals_of_rows, upsert_problems, window_problems,
    windows_of_messages, windows_of_rows, Oracle,
};

const PARTITIONS: i32 = 3;
/// On-time events: 2,400 at three every 30 ms (one per partition) is a
/// 24-second stream, over which the kills land.
const ON_TIME: usize = 2_400;
const TICK: Duration = Duration::from_millis(30);
/// Event time of event 0, 2026-03-01T12:00:00Z; event i is at
/// `BASE + i × STEP_MS`, up to `DISORDER_MS` earlier.
const BASE: i64 = 1_772_366_400_000;
const STEP_MS: i64 = 100;
/// Less than the watermark's 5 seconds: no on-time event is ever late.
const DISORDER_MS: i64 = 4_000;
const LATE: usize = 6;
/// 2000-01-01T00:00:00Z: behind any watermark of the stream.
const LATE_TS: i64 = 946_684_800_000;
/// 2100-01-01T00:00:00Z: closes every window of the stream.
const CLOSING_TS: i64 = 4_102_444_800_000;
const MIN_KILLS: usize = 10;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How long the broker stays down in the broker-restart test.
const BROKER_DOWN: Duration = Duration::from_secs(3);

const WINDOWED: &str = "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS s \
     FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end";
/// The totals over a UNION ALL of the stream's even and odd values: the
/// same answer as over the stream, from two inputs (two consumers, aligned
/// barriers, each input's offsets in the checkpoint).
const TOTALS: &str = "SELECT k, count(*) AS n, sum(v) AS s FROM \
     (SELECT k, v FROM ev WHERE v % 2 = 0 UNION ALL SELECT k, v FROM ev WHERE v % 2 <> 0 OR v IS NULL) u \
     GROUP BY k";
/// The same totals through a regular join of the stream with its own keys
/// (an aggregate): every event matches its key's one row, so the answer is
/// the totals', now from a join's state restored at every crash.
const JOINED: &str = "SELECT e.k, count(*) AS n, sum(e.v) AS s FROM ev e \
     JOIN (SELECT DISTINCT k FROM ev) d ON e.k = d.k GROUP BY e.k";
/// The windows again, through a window join of two window aggregates (each
/// key's window meets its own count): a join split across both cores by
/// its keys, whose state the watermark frees.
const WINDOW_JOINED: &str = "SELECT a.k, a.window_start, a.window_end, a.n, a.s FROM \
     (SELECT k, window_start, window_end, count(*) AS n, sum(v) AS s \
      FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end) a \
     JOIN (SELECT k, window_start, window_end, count(*) AS c \
      FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end) b \
     ON a.k = b.k AND a.window_start = b.window_start AND a.window_end = b.window_end";
/// `WINDOWED` in batch, over the on-time events (`window_start` in ms).
const WINDOWED_ORACLE: &str =
    "SELECT k, date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') AS window_start, \
     count(*) AS n, sum(v) AS s FROM on_time GROUP BY 1, 2";

/// SIGKILL at random moments, with checkpoints every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    crash_test(Scenario {
        signal: "KILL",
        checkpoints: true,
        late_events: true,
        broker: BrokerPlan::Shared,
    })
    .await;
}

/// The same, with the broker stopped for a few seconds and started again
/// (with its data) in the middle. The broker is one of this test's own, on
/// a port of its own, so that no other test sees it go away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_a_broker_restart_lose_and_repeat_nothing() {
    crash_test(Scenario {
        signal: "KILL",
        checkpoints: true,
        late_events: true,
        broker: BrokerPlan::OwnRestarted,
    })
    .await;
}

/// The harness itself against what works without checkpoints: every run
/// stops cleanly (SIGTERM), which already resumes without loss or
/// duplicates. No late events: without checkpoints a view is rebuilt by
/// re-reading the topic with no watermark, so whether an old event is late
/// then depends on how the partitions' first batches interleave. Run it
/// after changing this file:
/// `cargo test --test kafka crash::harness -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "checks the test harness, not the engine"]
async fn harness_check_with_clean_stops() {
    crash_test(Scenario {
        signal: "TERM",
        checkpoints: false,
        late_events: false,
        broker: BrokerPlan::Shared,
    })
    .await;
}

struct Scenario {
    /// How each run but the last ends: "KILL", or "TERM" (a clean stop).
    signal: &'static str,
    /// Pass `--checkpoint-interval`, and expect manifests.
    checkpoints: bool,
    /// Produce the year-2000 events once a window is committed.
    late_events: bool,
    broker: BrokerPlan,
}

#[derive(PartialEq)]
enum BrokerPlan {
    /// The broker every test uses (`broker()`).
    Shared,
    /// A broker of the test's own, restarted after half the kills.
    OwnRestarted,
}

async fn crash_test(scenario: Scenario) {
    let started = Instant::now();
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash: seed {seed} (rerun with SLUICE_CRASH_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);

    let own_broker = (scenario.broker == BrokerPlan::OwnRestarted).then(OwnBroker::start);
    let servers = match &own_broker {
        Some(b) => b.servers.clone(),
        None => broker(),
    };
    let input = unique("crash_in");
    let w_out = unique("crash_w_out");
    let t_out = unique("crash_t_out");
    let j_out = unique("crash_j_out");
    let wj_out = unique("crash_wj_out");
    create_topic(&servers, &input, PARTITIONS).await;
    create_topic(&servers, &w_out, 2).await;
    create_topic(&servers, &t_out, 2).await;
    create_topic(&servers, &j_out, 2).await;
    create_topic(&servers, &wj_out, 2).await;

    let mut dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("pipeline.sql");
    std::fs::write(
        &script,
        pipeline_sql(&servers, &input, [&w_out, &t_out, &j_out, &wj_out]),
    )
    .expect("script");
    // On two cores whatever the machine has: each view's keyed aggregate
    // runs as two instances behind a hash exchange.
    let mut options: Vec<String> = vec!["--parallelism".into(), "2".into()];
    if scenario.checkpoints {
        let interval = format!("{}s", CHECKPOINT_INTERVAL.as_secs());
        options.extend(["--checkpoint-interval".into(), interval]);
    }
    let mut runs = Runs::start(dir.path(), &script, options);

    let on_time = on_time_events(&mut rng);
    let late = if scenario.late_events {
        late_events(&mut rng)
    } else {
        Vec::new()
    };
    let gate = Gate::open_once_a_window_is_committed(
        &servers,
        &w_out,
        scenario.checkpoints.then(|| runs.data.clone()),
    );
    let producer = tokio::spawn(produce_stream(
        servers.clone(),
        input.clone(),
        on_time,
        late,
        Arc::clone(&gate.open),
    ));

    // Kill and restart until the stream is written and enough kills are in.
    let mut kills = 0;
    let mut broker_restarted = false;
    while kills < MIN_KILLS || !producer.is_finished() {
        let restart_broker = match own_broker.as_ref().filter(|_| !broker_restarted) {
            Some(b) if kills == MIN_KILLS / 2 => {
                // Mid-run, not while it starts: unreachable under a running
                // pipeline, which waits and goes on.
                std::thread::sleep(Duration::from_millis(rng.u64(300..1_500)));
                b.pause(BROKER_DOWN);
                runs.note(format!(
                    "broker frozen (SIGSTOP) for {BROKER_DOWN:?} under run {}",
                    runs.started
                ));
                true
            }
            _ => false,
        };
        // Between two runs: what a dead run left open must be fenced by a
        // broker that lost its memory. (Under a running pipeline noida-db
        // forgets an open transaction's partitions when it restarts, so
        // the transaction's commit hides or duplicates records; Kafka
        // keeps that state in `__transaction_state`.)
        let broker_restart = || {
            if let Some(b) = own_broker.as_ref().filter(|_| restart_broker) {
                b.restart(BROKER_DOWN);
                return Some(format!(
                    "broker stopped for {BROKER_DOWN:?} and started again"
                ));
            }
            None
        };
        if runs.kill_at(
            &When::pick(&mut rng, &scenario),
            &scenario,
            kills,
            broker_restart,
        ) {
            kills += 1;
            broker_restarted |= restart_broker;
        }
    }

    let sent = match producer.await {
        Ok(sent) => sent,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    drop(gate);
    let late_at: Vec<usize> = (sent.iter().enumerate())
        .filter(|(_, e)| e.ts < BASE - DISORDER_MS)
        .map(|(i, _)| i)
        .collect();
    runs.note(format!(
        "{} events produced; the late ones at positions {late_at:?}",
        sent.len()
    ));
    let after = format!(
        "after {kills} SIG{}s over {} runs{} (seed {seed})",
        scenario.signal,
        runs.started,
        if broker_restarted {
            " and a broker freeze and restart"
        } else {
            ""
        }
    );

    // The input as the broker holds it is what was produced.
    let topic_events = read_events(&servers, &input);
    let mut problems = input_problems(&sent, &topic_events);
    let want = Oracle::of(&topic_events).await;

    // The last run catches up, then stops cleanly and prints the views.
    let (windows_out, totals_out, joined_out, window_joined_out) = runs.catch_up(
        &servers,
        [&w_out, &t_out, &j_out, &wj_out],
        &want,
        scenario.checkpoints,
    );
    runs.current.interrupt();
    let status = runs.current.wait(T);
    if !status.success() {
        problems.push(format!(
            "the last run did not stop cleanly on SIGINT ({status})"
        ));
    }
    let stdout = std::fs::read_to_string(runs.run_dir().join("sluice.stdout")).unwrap_or_default();
    problems.extend(window_problems(
        "sink w_out",
        &windows_of_messages(&windows_out),
        &want.windows,
    ));
    problems.extend(upsert_problems("sink t_out", &totals_out, &want.totals));
    problems.extend(upsert_problems("sink j_out", &joined_out, &want.totals));
    problems.extend(window_problems(
        "sink wj_out",
        &windows_of_messages(&window_joined_out),
        &want.windows,
    ));
    match printed_tables(&stdout).as_slice() {
        [w, t, j, wj] => {
            problems.extend(window_problems(
                "view wj (a window join)",
                &windows_of_rows(wj),
                &want.windows,
            ));
            problems.extend(window_problems(
                "view w",
                &windows_of_rows(w),
                &want.windows,
            ));
            problems.extend(total_problems("view t", &totals_of_rows(t), &want.totals));
            problems.extend(total_problems(
                "view j (a join)",
                &totals_of_rows(j),
                &want.totals,
            ));
        }
        tables => problems.push(format!(
            "the last run printed {} tables, not the 4 views; stdout:\n{stdout}",
            tables.len()
        )),
    }
    eprintln!(
        "crash: {after}: {} windows, {} keys, last checkpoint {:?}; {:.1} s",
        want.windows.len(),
        want.totals.len(),
        runs.last_checkpoint(),
        started.elapsed().as_secs_f64()
    );
    if !problems.is_empty() {
        // Every run's stdout and stderr, and the data directory, for a look.
        dir.disable_cleanup(true);
    }
    assert!(
        problems.is_empty(),
        "{after}, the output is not exactly the batch answer:\n  {}\n\
         what happened:\n  {}\nthe last run's stderr ends:\n{}\n\
         (every run's output and the data directory are kept in {})",
        problems.join("\n  "),
        runs.timeline.join("\n  "),
        tail(&runs.current.stderr(), 20),
        dir.path().display()
    );
}

fn pipeline_sql(servers: &str, input: &str, [w_out, t_out, j_out, wj_out]: [&str; 4]) -> String {
    format!(
        "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5 seconds')
             WITH (connector = 'kafka', topic = '{input}', bootstrap_servers = '{servers}',
                   format = 'json', properties.fetch.wait.max.ms = '50');
         CREATE MATERIALIZED VIEW w AS {WINDOWED};
         CREATE MATERIALIZED VIEW t AS {TOTALS};
         CREATE MATERIALIZED VIEW j AS {JOINED};
         CREATE MATERIALIZED VIEW wj AS {WINDOW_JOINED};
         CREATE SINK w_out FROM w
             WITH (connector = 'kafka', topic = '{w_out}', bootstrap_servers = '{servers}', format = 'json');
         CREATE SINK t_out FROM t
             WITH (connector = 'kafka', topic = '{t_out}', bootstrap_servers = '{servers}', format = 'json');
         CREATE SINK j_out FROM j
             WITH (connector = 'kafka', topic = '{j_out}', bootstrap_servers = '{servers}', format = 'json');
         CREATE SINK wj_out FROM wj
             WITH (connector = 'kafka', topic = '{wj_out}', bootstrap_servers = '{servers}', format = 'json');
         SELECT k, window_start, n, s FROM w ORDER BY k, window_start;
         SELECT k, n, s FROM t ORDER BY k;
         SELECT k, n, s FROM j ORDER BY k;
         SELECT k, window_start, n, s FROM wj ORDER BY k, window_start;"
    )
}

// ---- the stream ----

#[derive(Debug, Clone, PartialEq)]
struct Event {
    partition: i32,
    k: String,
    v: i64,
    ts: i64,
}

impl Event {
    fn json(&self) -> String {
        serde_json::json!({"k": self.k, "v": self.v, "ts": self.ts}).to_string()
    }

    fn is_on_time(&self) -> bool {
        (BASE - DISORDER_MS..CLOSING_TS).contains(&self.ts)
    }
}

fn on_time_events(rng: &mut fastrand::Rng) -> Vec<Event> {
    (0..ON_TIME)
        .map(|i| Event {
            partition: i as i32 % PARTITIONS,
            k: format!("k{}", rng.u8(0..7)),
            v: rng.i64(-50..1_000),
            ts: BASE + i as i64 * STEP_MS - rng.i64(0..DISORDER_MS),
        })
        .collect()
}

fn late_events(rng: &mut fastrand::Rng) -> Vec<Event> {
    (0..LATE)
        .map(|j| Event {
            partition: j as i32 % PARTITIONS,
            k: format!("k{}", rng.u8(0..7)),
            v: rng.i64(-50..1_000),
            ts: LATE_TS + j as i64 * 1_000,
        })
        .collect()
}

/// Writes the on-time events at a steady pace, a late one every 150 events
/// once `gate` is open, then the closing event of every partition. Returns
/// what was written, in order.
async fn produce_stream(
    servers: String,
    topic: String,
    on_time: Vec<Event>,
    late: Vec<Event>,
    gate: Arc<AtomicBool>,
) -> Vec<Event> {
    // Idempotent: a retry after the broker restart writes nothing twice.
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("message.timeout.ms", "60000")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut late = late.into_iter();
    let mut sent = Vec::new();
    let mut next_late = 0;
    let start = tokio::time::Instant::now();
    for (tick, chunk) in on_time.chunks(PARTITIONS as usize).enumerate() {
        tokio::time::sleep_until(start + TICK * tick as u32).await;
        let mut batch = chunk.to_vec();
        if gate.load(Ordering::Relaxed) && sent.len() >= next_late {
            batch.extend(late.next());
            next_late = sent.len() + 150;
        }
        send_all(&p, &topic, &batch).await;
        sent.extend(batch);
    }
    let rest: Vec<Event> = late.collect();
    let deadline = tokio::time::Instant::now() + T;
    while !rest.is_empty() && !gate.load(Ordering::Relaxed) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no window was committed to the windowed sink (and no checkpoint manifest \
             written) during the whole stream and {T:?} after it: the late events \
             cannot be placed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_all(&p, &topic, &rest).await;
    sent.extend(rest);
    let closing: Vec<Event> = (0..PARTITIONS)
        .map(|partition| Event {
            partition,
            k: "k0".into(),
            v: 1,
            ts: CLOSING_TS,
        })
        .collect();
    send_all(&p, &topic, &closing).await;
    sent.extend(closing);
    sent
}

/// Sends the events concurrently (each partition's in order) and waits
/// until all are written.
async fn send_all(p: &FutureProducer, topic: &str, events: &[Event]) {
    let payloads: Vec<String> = events.iter().map(Event::json).collect();
    let sends = events.iter().zip(&payloads).map(|(e, payload)| {
        p.send(
            FutureRecord::to(topic)
                .partition(e.partition)
                .key(&e.k)
                .payload(payload),
            Duration::from_secs(60),
        )
    });
    for r in futures::future::join_all(sends).await {
        if let Err((e, _)) = r {
            panic!("producing the input stream to {topic}: {e}");
        }
    }
}

/// Opens once a window has been committed to the windowed sink (and, with
/// checkpoints, a manifest exists): from then on every restored watermark
/// covers every partition, so a year-2000 event is late in every run.
struct Gate {
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    fn open_once_a_window_is_committed(
        servers: &str,
        w_out: &str,
        checkpoints: Option<PathBuf>,
    ) -> Gate {
        let open = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (servers, w_out) = (servers.to_string(), w_out.to_string());
        let watcher = {
            let (open, stop) = (Arc::clone(&open), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let manifest =
                        (checkpoints.as_deref()).is_none_or(|d| last_checkpoint(d).is_some());
                    // The broker may be down for a while: try again.
                    let committed = || {
                        read_committed(&servers, &w_out, Duration::from_secs(5))
                            .is_ok_and(|m| !m.is_empty())
                    };
                    if manifest && committed() {
                        open.store(true, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        Gate {
            open,
            stop,
            watcher: Some(watcher),
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _finished = w.join();
        }
    }
}

// ---- the runs ----

/// The `sluice` runs on one data directory, each in a directory of its own
/// (its stdout and stderr kept), all with the same script.
struct Runs {
    dir: PathBuf,
    data: PathBuf,
    script: PathBuf,
    options: Vec<String>,
    /// Runs started so far; the current one is number `started`.
    started: usize,
    current: Sluice,
    /// Runs that ended by themselves (up to 3 tolerated in the broker-restart
    /// test, none in the others).
    exits: usize,
    /// Kills, exits and broker restarts, for the failure message.
    timeline: Vec<String>,
}

/// When to end a run.
enum When {
    After(Duration),
    /// As soon as a new checkpoint manifest appears: the checkpoint is
    /// complete and its transactions are being committed.
    AfterCheckpoint,
    /// This long after a new manifest appears: about when the next
    /// checkpoint starts.
    NextCheckpoint(Duration),
}

impl When {
    fn pick(rng: &mut fastrand::Rng, scenario: &Scenario) -> When {
        let any = When::After(Duration::from_millis(rng.u64(300..3_000)));
        if !scenario.checkpoints {
            return any;
        }
        match rng.u8(0..4) {
            0 => When::AfterCheckpoint,
            1 => When::NextCheckpoint(Duration::from_millis(rng.u64(950..1_050))),
            _ => any,
        }
    }
}

impl Runs {
    fn start(dir: &Path, script: &Path, options: Vec<String>) -> Runs {
        let data = dir.join("data");
        Runs {
            current: Self::spawn(dir, 1, script, &data, &options),
            dir: dir.to_path_buf(),
            data,
            script: script.to_path_buf(),
            options,
            started: 1,
            exits: 0,
            timeline: Vec::new(),
        }
    }

    fn spawn(dir: &Path, n: usize, script: &Path, data: &Path, options: &[String]) -> Sluice {
        let run_dir = dir.join(format!("run-{n}"));
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        Sluice::start_with(&run_dir, Some(script), data, &options)
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join(format!("run-{}", self.started))
    }

    fn restart(&mut self) {
        self.started += 1;
        self.current = Self::spawn(
            &self.dir,
            self.started,
            &self.script,
            &self.data,
            &self.options,
        );
    }

    fn note(&mut self, event: String) {
        eprintln!("crash: {event}");
        self.timeline.push(event);
    }

    fn last_checkpoint(&self) -> Option<u64> {
        last_checkpoint(&self.data)
    }

    /// Waits for the moment `when` and says what moment it is; `None` if
    /// the run ended by itself first (then it has been restarted).
    fn await_moment(&mut self, when: &When, scenario: &Scenario, kills: usize) -> Option<String> {
        let start = Instant::now();
        let before = self.last_checkpoint();
        let mut checkpoint: Option<(u64, Instant)> = None;
        loop {
            if let Some(status) = self.current.child.try_wait().expect("try_wait") {
                self.exited(status, scenario, kills);
                return None;
            }
            let now = Instant::now();
            let ms = |since: Instant| now.duration_since(since).as_millis();
            if checkpoint.is_none() {
                checkpoint = self
                    .last_checkpoint()
                    .filter(|epoch| Some(*epoch) > before)
                    .map(|epoch| (epoch, now));
            }
            let moment = match (when, checkpoint) {
                (When::After(d), _) if now >= start + *d => {
                    Some(format!("{} ms after the start", ms(start)))
                }
                (When::AfterCheckpoint, Some((epoch, _))) => {
                    Some(format!("as checkpoint {epoch} completed"))
                }
                (When::NextCheckpoint(d), Some((epoch, at))) if now >= at + *d => {
                    Some(format!("{} ms after checkpoint {epoch} completed", ms(at)))
                }
                _ if now >= start + Duration::from_secs(5) => Some(format!(
                    "{} ms after the start (waited for a checkpoint in vain)",
                    ms(start)
                )),
                _ => None,
            };
            if moment.is_some() {
                return moment;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn exited(&mut self, status: ExitStatus, scenario: &Scenario, kills: usize) {
        self.exits += 1;
        let stderr = self.current.stderr();
        self.note(format!(
            "run {} ended by itself ({status}); its stderr ends:\n{}",
            self.started,
            tail(&stderr, 5)
        ));
        assert!(
            scenario.broker == BrokerPlan::OwnRestarted && self.exits <= 3,
            "after {kills} kills, run {} ended by itself ({status}); its stderr ends:\n{}",
            self.started,
            tail(&stderr, 40)
        );
        self.restart();
    }

    /// Ends the current run with the scenario's signal at the moment
    /// `when`, and starts the next; false if it ended by itself first.
    /// `between` runs after the kill, before the next start.
    fn kill_at(
        &mut self,
        when: &When,
        scenario: &Scenario,
        kills: usize,
        between: impl FnOnce() -> Option<String>,
    ) -> bool {
        let Some(moment) = self.await_moment(when, scenario, kills) else {
            return false;
        };
        signal(self.current.child.id(), scenario.signal);
        let status = self.current.wait(T);
        self.note(format!(
            "kill {}: SIG{} to run {} {moment}: {status}",
            kills + 1,
            scenario.signal,
            self.started
        ));
        assert!(
            scenario.signal != "TERM" || status.success(),
            "run {} did not stop cleanly on SIGTERM; stderr:\n{}",
            self.started,
            self.current.stderr()
        );
        if let Some(what) = between() {
            self.note(what);
        }
        self.restart();
        true
    }

    /// Waits until the last run is up (its source started and, with
    /// checkpoints, one checkpoint of its own complete), then until the
    /// committed output equals the batch answer or stops changing for 10 s
    /// (so a wrong answer fails without the whole timeout). Returns the
    /// last reads of the sinks: the windows', the totals', the join's.
    fn catch_up(
        &mut self,
        servers: &str,
        [w_out, t_out, j_out, wj_out]: [&str; 4],
        want: &Oracle,
        checkpoints: bool,
    ) -> (Vec<Received>, Vec<Received>, Vec<Received>, Vec<Received>) {
        let before = self.last_checkpoint();
        self.current.wait_for("the last run to start up", T, || {
            let started = self.current.stderr().contains("kafka source started");
            let checkpointed = !checkpoints || self.last_checkpoint() > before;
            (started && checkpointed).then_some(())
        });
        let deadline = Instant::now() + T;
        let mut last_change = Instant::now();
        let mut last_sizes = (usize::MAX, usize::MAX, usize::MAX, usize::MAX);
        loop {
            if let Some(status) = self.current.child.try_wait().expect("try_wait") {
                panic!(
                    "the last run (run {}) ended by itself while catching up ({status}); \
                     its stderr ends:\n{}",
                    self.started,
                    tail(&self.current.stderr(), 40)
                );
            }
            let windows = read_committed(servers, w_out, T).unwrap_or_else(|e| panic!("{e}"));
            let totals = read_committed(servers, t_out, T).unwrap_or_else(|e| panic!("{e}"));
            let joined = read_committed(servers, j_out, T).unwrap_or_else(|e| panic!("{e}"));
            let window_joined =
                read_committed(servers, wj_out, T).unwrap_or_else(|e| panic!("{e}"));
            let done = window_problems("", &windows_of_messages(&windows), &want.windows)
                .is_empty()
                && upsert_problems("", &totals, &want.totals).is_empty()
                && upsert_problems("", &joined, &want.totals).is_empty()
                && window_problems("", &windows_of_messages(&window_joined), &want.windows)
                    .is_empty();
            let sizes = (
                windows.len(),
                totals.len(),
                joined.len(),
                window_joined.len(),
            );
            if sizes != last_sizes {
                last_sizes = sizes;
                last_change = Instant::now();
            }
            if done || Instant::now() > deadline || last_change.elapsed() > Duration::from_secs(10)
            {
                return (windows, totals, joined, window_joined);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The epoch of the latest complete checkpoint (`manifest-<epoch>.json`).
pub(crate) fn last_checkpoint(data: &Path) -> Option<u64> {
    std::fs::read_dir(data.join("checkpoints"))
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("manifest-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .max()
}

// ---- the broker ----

/// A broker of this test's own (`start-broker.sh` on a free port).
struct OwnBroker {
    servers: String,
    state: PathBuf,
    _stop: ExtraBroker,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = crate::common::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kafka/start-broker.sh");
        let status = std::process::Command::new("bash")
            .arg(script)
            .env("KAFKA_PORT", port.to_string())
            .status()
            .expect("start-broker.sh");
        assert!(
            status.success(),
            "a broker of the test's own starts on {port}"
        );
        // Where start-broker.sh keeps the broker's pid and data directory.
        let state = std::env::var("KAFKA_STATE_DIR")
            .unwrap_or_else(|_| format!("/tmp/kafka-broker-{port}"));
        OwnBroker {
            servers: format!("127.0.0.1:{port}"),
            state: PathBuf::from(state),
            _stop: ExtraBroker(port),
        }
    }

    /// Freezes the broker process (SIGSTOP) for `down`: every request
    /// waits, no connection drops.
    fn pause(&self, down: Duration) {
        let pid = std::fs::read_to_string(self.state.join("pid")).expect("broker pid");
        signal(pid.trim().parse().expect("broker pid"), "STOP");
        std::thread::sleep(down);
        signal(pid.trim().parse().expect("broker pid"), "CONT");
    }

    /// Stops the broker's Kafka service (its data is kept on disk, its
    /// memory and every connection dropped) and starts it again after
    /// `down`. `start-broker.sh` cannot do this: it always starts on an
    /// empty data directory.
    fn restart(&self, down: Duration) {
        let pid = std::fs::read_to_string(self.state.join("pid")).expect("broker pid");
        let exe = std::fs::read_link(format!("/proc/{}/exe", pid.trim())).expect("broker binary");
        let data = std::fs::read_to_string(self.state.join("data_dir")).expect("broker data dir");
        let noida = |command: &str| {
            let out = std::process::Command::new(&exe)
                .args([command, "kafka", "--data-dir", data.trim()])
                .output()
                .expect("noida-db");
            assert!(
                out.status.success(),
                "noida-db {command} kafka: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        noida("stop");
        std::thread::sleep(down);
        noida("start");
    }
}

// ---- reading the topics ----

/// Every message of `topic` a `read_committed` consumer sees, up to the end
/// of every partition (the last stable offset).
pub(crate) fn read_committed(
    servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Received>, String> {
    Ok(read_partitions(servers, topic, timeout)?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

fn read_partitions(
    servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, Received)>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", unique("sluice-crash-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| format!("{e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut at_end = BTreeSet::new();
    let mut got = Vec::new();
    while at_end.len() < partitions.len() {
        if Instant::now() > deadline {
            return Err(format!(
                "could not read {topic} to its end with read_committed within {timeout:?} \
                 (a transaction left open?); at the end of partitions {at_end:?} of \
                 {partitions:?} after {} messages",
                got.len()
            ));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                got.push((m.partition(), Received::of(&m)));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            // Transient (the broker restarting): librdkafka retries.
            Some(Err(_)) | None => {}
        }
    }
    Ok(got)
}

/// The input topic's events, each partition's in order.
fn read_events(servers: &str, topic: &str) -> Vec<Event> {
    read_partitions(servers, topic, T)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(partition, m)| {
            let v = m.json();
            Event {
                partition,
                k: v["k"].as_str().expect("k").to_string(),
                v: v["v"].as_i64().expect("v"),
                ts: v["ts"].as_i64().expect("ts"),
            }
        })
        .collect()
}
