//! Kafka end to end against a real broker (`../shared/kafka/start-broker.sh`
//! on 127.0.0.1:9092, or `SLUICE_TEST_KAFKA`): the seed pipeline, metadata
//! columns, keyed sinks, dead letters, a broker that is down at start, and
//! exactly-once across crashes (`kafka/crash.rs`).

mod common;
#[path = "kafka/crash.rs"]
mod crash;
#[path = "kafka/damaged.rs"]
mod damaged;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{growing_counts, json_lines, printed_tables, wait_for, Sluice};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(90);

fn broker() -> String {
    std::env::var("SLUICE_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

async fn create_topic(servers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create topic {name} on {servers} (is the broker running?): {e}")
        });
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

fn producer(servers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Produces and returns (partition, offset).
async fn produce(
    p: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    payload: &[u8],
    ts: Option<i64>,
) -> (i32, i64) {
    let mut record = FutureRecord::<str, [u8]>::to(topic).payload(payload);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(ts) = ts {
        record = record.timestamp(ts);
    }
    let delivery = p
        .send(record, Duration::from_secs(30))
        .await
        .expect("delivered");
    (delivery.partition, delivery.offset)
}

#[derive(Debug, Clone)]
struct Received {
    key: Option<String>,
    payload: Vec<u8>,
    headers: BTreeMap<String, String>,
}

impl Received {
    fn of(m: &impl Message) -> Received {
        let mut headers = BTreeMap::new();
        if let Some(h) = m.headers() {
            for hdr in h.iter() {
                headers.insert(
                    hdr.key.to_string(),
                    String::from_utf8_lossy(hdr.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        Received {
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("json payload")
    }
}

/// Reads every message of `topic` from the start until `done` holds.
fn consume_until(
    servers: &str,
    topic: &str,
    what: &str,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", unique("sluice-test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = wait_for(&format!("topic {topic}"), T, || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .filter(|m| {
                m.topics()
                    .first()
                    .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty())
            })
    });
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while !done(&got) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} on {topic}; got {} messages: {got:?}",
            got.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(Received::of(&m));
        }
    }
    got
}

/// The latest total per key in the seed pipeline's output.
fn latest_totals(messages: &[Received]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for r in messages {
        let v = r.json();
        m.insert(
            v["key"].as_str().expect("key").to_string(),
            v["total"].as_i64().expect("total"),
        );
    }
    m
}

/// The seed scenario, with `queries/seed_example.sql` as written (only its
/// topic names made unique): JSON records in, filter, double, running sum
/// per key, changelog out keyed by the key; bad records dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_pipeline_end_to_end() {
    let servers = broker();
    let input = unique("test_topic");
    let output = unique("aggregated_topic");
    create_topic(&servers, &input, 3).await;
    create_topic(&servers, &output, 3).await;
    let dead = format!("{input}_dead_letter");
    create_topic(&servers, &dead, 1).await;

    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/seed_example.sql"),
    )
    .expect("seed script");
    let script = seed
        .replace("test_topic", &input)
        .replace("aggregated_topic", &output)
        .replace("localhost:9092", &servers)
        .replace("sluice-seed-example", &unique("seed-group"));
    assert_ne!(script, seed);

    let p = producer(&servers);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut send = Vec::new();
    for i in 0..400i64 {
        let key = format!("k{}", i % 10);
        let value = (i * 37) % 250;
        if value > 100 {
            *expected.entry(key.clone()).or_default() += value * 2;
        }
        send.push((
            key,
            serde_json::json!({"key": format!("k{}", i % 10), "value": value})
                .to_string()
                .into_bytes(),
        ));
    }
    let bad: Vec<Vec<u8>> = vec![
        b"{\"key\": \"k1\", \"value\": ".to_vec(),
        b"{\"key\": \"k2\", \"value\": \"lots\"}".to_vec(),
        b"definitely not json".to_vec(),
    ];
    for (i, (key, payload)) in send.iter().enumerate().take(200) {
        produce(&p, &input, Some(key), payload, None).await;
        if i % 70 == 0 {
            produce(&p, &input, Some(key), &bad[i / 70], None).await;
        }
    }
    let first_half: BTreeMap<String, i64> = {
        let mut m = BTreeMap::new();
        for (key, payload) in send.iter().take(200) {
            let v: serde_json::Value = serde_json::from_slice(payload).expect("json");
            let value = v["value"].as_i64().expect("value");
            if value > 100 {
                *m.entry(key.clone()).or_default() += value * 2;
            }
        }
        m
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let mut sluice = Sluice::run(dir.path(), &script);
    consume_until(&servers, &output, "totals of the first half", |m| {
        latest_totals(m) == first_half
    });

    // The pipeline is live: the second half updates the totals.
    for (key, payload) in send.iter().skip(200) {
        produce(&p, &input, Some(key), payload, None).await;
    }
    let messages = consume_until(&servers, &output, "final totals", |m| {
        latest_totals(m) == expected
    });

    // Every message is keyed by its group key; per key the changelog starts
    // with an insert, then updates with growing totals.
    let mut seen: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for m in &messages {
        let v = m.json();
        let key = v["key"].as_str().expect("key").to_string();
        assert_eq!(
            m.key.as_deref(),
            Some(key.as_str()),
            "message key is the group key"
        );
        seen.entry(key).or_default().push((
            v["op"].as_str().expect("op").to_string(),
            v["total"].as_i64().expect("total"),
        ));
    }
    for (key, changes) in &seen {
        assert_eq!(changes[0].0, "insert", "{key}: {changes:?}");
        assert!(
            changes[1..].iter().all(|c| c.0 == "update"),
            "{key}: {changes:?}"
        );
        assert!(
            changes.windows(2).all(|w| w[0].1 < w[1].1),
            "{key}: totals grow: {changes:?}"
        );
    }

    // Bad records: dead-lettered verbatim, with their position.
    let dead_letters = consume_until(&servers, &dead, "dead letters", |m| m.len() >= bad.len());
    let payloads: Vec<&Vec<u8>> = dead_letters.iter().map(|m| &m.payload).collect();
    for b in &bad {
        assert!(
            payloads.contains(&b),
            "{:?} dead-lettered",
            String::from_utf8_lossy(b)
        );
    }
    for m in &dead_letters {
        assert!(
            m.headers["sluice.position"].starts_with(&format!("topic {input} partition ")),
            "{:?}",
            m.headers
        );
        assert!(!m.headers["sluice.error"].is_empty());
    }

    sluice.interrupt();
    let status = sluice.wait(T);
    assert!(
        status.success(),
        "Ctrl-C exits 0; stderr:\n{}",
        sluice.stderr()
    );
    assert!(
        sluice.stderr().contains("errors 3 (dead-lettered 3)"),
        "{}",
        sluice.stderr()
    );
}

/// Message key, timestamp, partition and offset as columns; a Kafka sink
/// keyed by a column of an append-only query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_columns_and_keyed_append_sink() {
    let servers = broker();
    let input = unique("meta_in");
    let output = unique("meta_out");
    create_topic(&servers, &input, 2).await;
    create_topic(&servers, &output, 2).await;
    let p = producer(&servers);
    // Recent timestamps: the test broker drops messages older than 7 days.
    let base_ts = chrono::Utc::now().timestamp_millis() / 1000 * 1000 - 3_600_000;
    let mut sent = BTreeMap::new();
    for i in 0..40i64 {
        let key = format!("user{}", i % 4);
        let (partition, offset) = produce(
            &p,
            &input,
            Some(&key),
            format!("{{\"id\": {i}}}").as_bytes(),
            Some(base_ts + i * 1000),
        )
        .await;
        sent.insert(i, (key, partition, offset));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE clicks (
                 id BIGINT,
                 k TEXT METADATA FROM 'key',
                 ts TIMESTAMP METADATA FROM 'timestamp',
                 p INT METADATA FROM 'partition',
                 o BIGINT METADATA FROM 'offset'
             ) WITH (connector = 'kafka', topic = '{input}', bootstrap_servers = '{servers}', start_from = 'earliest');
             CREATE SINK rows AS SELECT id, k, ts, p, o FROM clicks WITH (connector = 'file', path = 'rows.jsonl');
             CREATE SINK copy AS SELECT id, upper(k) AS who FROM clicks
                 WITH (connector = 'kafka', topic = '{output}', bootstrap_servers = '{servers}', key = 'who');"
        ),
    );
    let out = dir.path().join("rows.jsonl");
    wait_for("40 rows", T, || {
        (json_lines(&out).len() >= 40).then_some(())
    });
    for r in json_lines(&out) {
        let id = r["id"].as_i64().expect("id");
        let (key, partition, offset) = &sent[&id];
        assert_eq!(r["k"].as_str(), Some(key.as_str()));
        assert_eq!(r["p"].as_i64(), Some(*partition as i64));
        assert_eq!(r["o"].as_i64(), Some(*offset));
        let ts = chrono::DateTime::from_timestamp_millis(base_ts + id * 1000).expect("ts");
        assert_eq!(
            r["ts"].as_str(),
            Some(ts.format("%Y-%m-%dT%H:%M:%S").to_string().as_str())
        );
    }
    let copies = consume_until(&servers, &output, "40 copies", |m| m.len() >= 40);
    for m in &copies {
        let v = m.json();
        assert_eq!(
            m.key.as_deref(),
            v["who"].as_str(),
            "keyed by the `key` column"
        );
        assert!(v.get("op").is_none(), "append-only rows carry no op");
    }
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
}

struct ExtraBroker(u16);

impl Drop for ExtraBroker {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kafka/stop-broker.sh");
        let _status = std::process::Command::new("bash")
            .arg(script)
            .env("KAFKA_PORT", self.0.to_string())
            .status();
    }
}

/// A broker that is not there yet: a clear error, retries, and once it is
/// up, every record arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_at_start_then_up() {
    let port = common::free_port();
    let servers = format!("127.0.0.1:{port}");
    let topic = unique("late");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE s (n BIGINT) WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{servers}', start_from = 'earliest');
             CREATE SINK out FROM s WITH (connector = 'file', path = 'out.jsonl');"
        ),
    );
    wait_for("a clear error about the broker", T, || {
        sluice
            .stderr()
            .contains(&format!("cannot reach Kafka at {servers}"))
            .then_some(())
    });
    let start = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kafka/start-broker.sh");
    let status = std::process::Command::new("bash")
        .arg(start)
        .env("KAFKA_PORT", port.to_string())
        .status()
        .expect("start-broker.sh");
    assert!(status.success(), "second broker starts");
    let _guard = ExtraBroker(port);
    create_topic(&servers, &topic, 2).await;
    let p = producer(&servers);
    for n in 0..50 {
        produce(&p, &topic, None, format!("{{\"n\": {n}}}").as_bytes(), None).await;
    }
    let out = dir.path().join("out.jsonl");
    wait_for("all 50 records", T, || {
        (json_lines(&out).len() == 50).then_some(())
    });
    let mut ns: Vec<i64> = json_lines(&out)
        .iter()
        .map(|r| r["n"].as_i64().expect("n"))
        .collect();
    ns.sort();
    assert_eq!(ns, (0..50).collect::<Vec<_>>());
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
}

/// `start_from = 'committed'` resumes where a cleanly stopped run left off
/// (nothing lost, nothing repeated); `latest` reads only what comes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_committed_resumes_and_latest_skips_history() {
    let servers = broker();
    let topic = unique("resume");
    create_topic(&servers, &topic, 2).await;
    let p = producer(&servers);
    for n in 0..100 {
        produce(
            &p,
            &topic,
            Some(&format!("{}", n % 5)),
            format!("{{\"n\": {n}}}").as_bytes(),
            None,
        )
        .await;
    }
    let group = unique("resume-group");
    let script = |start: &str, group: &str, out: &str| {
        format!(
            "CREATE SOURCE s (n BIGINT) WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{servers}',
                 group_id = '{group}', start_from = '{start}', properties.fetch.wait.max.ms = '50');
             CREATE SINK out FROM s WITH (connector = 'file', path = '{out}');"
        )
    };
    let numbers = |path: &Path| {
        let mut ns: Vec<i64> = json_lines(path)
            .iter()
            .map(|r| r["n"].as_i64().expect("n"))
            .collect();
        ns.sort();
        ns
    };
    let dir = tempfile::tempdir().expect("tempdir");

    let mut first = Sluice::run(dir.path(), &script("committed", &group, "first.jsonl"));
    let out1 = dir.path().join("first.jsonl");
    first.wait_for("100 rows", T, || {
        (json_lines(&out1).len() >= 100).then_some(())
    });
    first.interrupt();
    assert!(first.wait(T).success(), "{}", first.stderr());
    assert_eq!(numbers(&out1), (0..100).collect::<Vec<_>>());

    for n in 100..150 {
        produce(
            &p,
            &topic,
            Some(&format!("{}", n % 5)),
            format!("{{\"n\": {n}}}").as_bytes(),
            None,
        )
        .await;
    }
    let mut second = Sluice::run(dir.path(), &script("committed", &group, "second.jsonl"));
    let out2 = dir.path().join("second.jsonl");
    second.wait_for("50 new rows", T, || {
        (json_lines(&out2).len() >= 50).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    second.interrupt();
    assert!(second.wait(T).success(), "{}", second.stderr());
    assert_eq!(
        numbers(&out2),
        (100..150).collect::<Vec<_>>(),
        "resumed: nothing lost or repeated"
    );

    let mut third = Sluice::run(
        dir.path(),
        &script("latest", &unique("latest-group"), "third.jsonl"),
    );
    third.wait_for("the source to start", T, || {
        third
            .stderr()
            .contains("kafka source started")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    for n in 150..160 {
        produce(
            &p,
            &topic,
            Some(&format!("{}", n % 5)),
            format!("{{\"n\": {n}}}").as_bytes(),
            None,
        )
        .await;
    }
    let out3 = dir.path().join("third.jsonl");
    third.wait_for("10 new rows", T, || {
        (json_lines(&out3).len() >= 10).then_some(())
    });
    third.interrupt();
    assert!(third.wait(T).success(), "{}", third.stderr());
    assert_eq!(
        numbers(&out3),
        (150..160).collect::<Vec<_>>(),
        "latest skips what was there"
    );
}

/// Per-partition watermarks: the source's watermark is the minimum over its
/// partitions, so a partition that lags holds windows open; once it has been
/// idle for `idle_timeout` it no longer does. Event times arrive as epoch
/// milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_watermark_is_the_minimum_over_partitions_until_one_goes_idle() {
    let servers = broker();
    let topic = unique("wm");
    create_topic(&servers, &topic, 2).await;
    let p = producer(&servers);
    // A 10-second boundary a minute ago.
    let t0 = (chrono::Utc::now().timestamp_millis() / 10_000 - 6) * 10_000;
    let send = |partition: i32, ts: i64| {
        let payload = format!("{{\"id\": {ts}, \"ts\": {ts}}}");
        let p = p.clone();
        let topic = topic.clone();
        async move {
            let record = FutureRecord::<(), [u8]>::to(&topic)
                .partition(partition)
                .payload(payload.as_bytes());
            p.send(record, Duration::from_secs(30))
                .await
                .expect("delivered");
        }
    };
    for s in 0..30 {
        send(0, t0 + s * 1000).await;
    }
    for s in 0..5 {
        send(1, t0 + s * 1000).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE ev (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1 second')
                 WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{servers}',
                       start_from = 'earliest', idle_timeout = '3 s');
             CREATE SINK w AS SELECT window_start, count(*) AS n FROM TUMBLE(ev, ts, INTERVAL '10 seconds')
                 GROUP BY window_start, window_end
             WITH (connector = 'file', path = 'w.jsonl');"
        ),
    );
    let out = dir.path().join("w.jsonl");
    sluice.wait_for("both partitions read", T, || {
        sluice
            .stderr()
            .contains("kafka source started")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        json_lines(&out).is_empty(),
        "partition 1 (at t0+4s) holds every window open"
    );
    // Partition 1 goes idle; the next batch on partition 0 moves the watermark.
    std::thread::sleep(Duration::from_secs(3));
    send(0, t0 + 31_000).await;
    sluice.wait_for("windows closed by partition 0 alone", T, || {
        (json_lines(&out).len() >= 3).then_some(())
    });
    let counts: Vec<i64> = json_lines(&out)
        .iter()
        .map(|r| r["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(
        counts,
        vec![15, 10, 10],
        "[t0, t0+10) has 10 + 5 rows, then 10 and 10"
    );
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
}

/// A restart on the same data directory brings back the source, the view
/// and the sinks, each from the last checkpoint (the one taken at the
/// stop): the view, the aggregates and the open window come back as they
/// were and the topic is read on from the checkpointed offsets. Across a
/// clean stop and start nothing is lost or written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_the_catalog_and_resumes_without_loss_or_duplicates() {
    restart_test(true).await;
}

/// The same without checkpoints: the view is rebuilt from the topic; a
/// filtering sink resumes from its committed offsets; an aggregating sink,
/// a windowed sink and a sink fed by the view re-read the topic to rebuild
/// their state, write nothing they wrote before, and go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_checkpoints_rebuilds_state_from_the_topic() {
    restart_test(false).await;
}

async fn restart_test(checkpoints: bool) {
    let options: &[&str] = if checkpoints {
        &["--checkpoint-interval", "1s"]
    } else {
        &["--checkpoint-interval", "off"]
    };
    let servers = broker();
    let topic = unique("restart");
    create_topic(&servers, &topic, 2).await;
    let p = producer(&servers);
    // Event time: record n is at 12:00:00 + n × 100 ms, so ten-second
    // windows hold 100 records each.
    let record = |n: i64| {
        format!(
            "{{\"k\": \"k{}\", \"v\": {n}, \"ts\": \"2026-03-01T12:00:{:02}.{:03}Z\"}}",
            n % 7,
            n / 10,
            (n % 10) * 100
        )
    };
    let key = |n: i64| format!("k{}", n % 7);
    for n in 0..300 {
        produce(&p, &topic, Some(&key(n)), record(n).as_bytes(), None).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("pipeline.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)
                 WITH (connector = 'kafka', topic = '{topic}',
                 bootstrap_servers = '{servers}', format = 'json', properties.fetch.wait.max.ms = '50');
             CREATE MATERIALIZED VIEW totals AS SELECT k, sum(v) AS s, count(*) AS n FROM ev GROUP BY k;
             CREATE SINK evens AS SELECT v FROM ev WHERE v % 2 = 0
                 WITH (connector = 'file', path = 'evens.jsonl', format = 'json');
             CREATE SINK per_key AS SELECT k, count(*) AS n FROM ev GROUP BY k
                 WITH (connector = 'file', path = 'per_key.jsonl', format = 'json');
             CREATE SINK windows AS SELECT window_start, count(*) AS n, sum(v) AS s
                 FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY window_start, window_end
                 WITH (connector = 'file', path = 'windows.jsonl', format = 'json');
             CREATE SINK totals_out FROM totals
                 WITH (connector = 'file', path = 'totals.jsonl', format = 'json');"
        ),
    )
    .expect("script");
    let out = |name: &str| json_lines(&dir.path().join(name));
    let evens = || -> Vec<i64> {
        let mut v: Vec<i64> = out("evens.jsonl")
            .iter()
            .map(|r| r["v"].as_i64().expect("v"))
            .collect();
        v.sort();
        v
    };
    let changelog = |name: &str| growing_counts(&dir.path().join(name));
    let counted = |name: &str| changelog(name).values().sum::<i64>();
    let windows = || -> Vec<(String, i64, i64)> {
        out("windows.jsonl")
            .iter()
            .map(|r| {
                (
                    r["window_start"]
                        .as_str()
                        .expect("window_start")
                        .to_string(),
                    r["n"].as_i64().expect("n"),
                    r["s"].as_i64().expect("s"),
                )
            })
            .collect()
    };

    let mut first = Sluice::start_with(dir.path(), Some(&script), &data, options);
    first.wait_for("all 300 records in every sink", T, || {
        (evens().len() == 150
            && counted("per_key.jsonl") == 300
            && counted("totals.jsonl") == 300
            && windows().len() == 2)
            .then_some(())
    });
    first.interrupt();
    assert!(first.wait(T).success(), "{}", first.stderr());
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("catalog.json")).expect("catalog"))
            .expect("catalog json");
    let names: Vec<&str> = catalog["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["ev", "totals", "evens", "per_key", "windows", "totals_out"]
    );
    assert_eq!(
        windows().len(),
        2,
        "the window open at the stop is kept for the next run, not flushed"
    );

    for n in 300..500 {
        produce(&p, &topic, Some(&key(n)), record(n).as_bytes(), None).await;
    }
    // No script: everything comes from the data directory. The query runs
    // once the view's pipeline has stopped.
    let query = dir.path().join("query.sql");
    std::fs::write(&query, "SELECT k, s, n FROM totals ORDER BY k;").expect("query");
    let mut second = Sluice::start_with(dir.path(), Some(&query), &data, options);
    second.wait_for("all 500 records in every sink", T, || {
        (evens().len() == 250
            && counted("per_key.jsonl") == 500
            && counted("totals.jsonl") == 500
            && windows().len() == 4)
            .then_some(())
    });
    second.interrupt();
    assert!(second.wait(T).success(), "{}", second.stderr());
    let stderr = second.stderr();
    assert!(stderr.contains("resuming from"), "{stderr}");
    if checkpoints {
        assert_eq!(
            stderr.matches("pipeline restored from checkpoint").count(),
            5,
            "{stderr}"
        );
    } else {
        assert!(stderr.contains("caught up with the last run"), "{stderr}");
    }
    assert_eq!(
        evens(),
        (0..500).filter(|v| v % 2 == 0).collect::<Vec<_>>(),
        "every even value exactly once across the restart"
    );
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for n in 0..500 {
        let e = want.entry(key(n)).or_default();
        e.0 += n;
        e.1 += 1;
    }
    let want_counts: BTreeMap<String, i64> =
        want.iter().map(|(k, (_, n))| (k.clone(), *n)).collect();
    assert_eq!(changelog("per_key.jsonl"), want_counts, "aggregating sink");
    assert_eq!(
        changelog("totals.jsonl"),
        want_counts,
        "sink fed by the view"
    );
    // Windows [00, 10), [10, 20) from the first run, [20, 30) (open at the
    // stop) and [30, 40) from the second; [40, 50) is still open.
    let want_windows: Vec<(String, i64, i64)> = (0..4)
        .map(|w| {
            (
                format!("2026-03-01T12:00:{:02}", w * 10),
                100,
                (w * 100..w * 100 + 100).sum(),
            )
        })
        .collect();
    assert_eq!(
        windows(),
        want_windows,
        "each window once, complete; second run:\n{stderr}"
    );
    let stdout = std::fs::read_to_string(dir.path().join("sluice.stdout")).expect("stdout");
    let want: Vec<Vec<String>> = want
        .into_iter()
        .map(|(k, (s, n))| vec![k, s.to_string(), n.to_string()])
        .collect();
    assert_eq!(
        printed_tables(&stdout).concat(),
        want,
        "view after restart:\n{stdout}"
    );
}

/// A Kafka sink from an updating view writes upserts keyed by the view's
/// key, and a tombstone when a key leaves the view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_from_an_updating_view_writes_upserts_and_tombstones() {
    let servers = broker();
    let out = unique("upserts");
    create_topic(&servers, &out, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // One row at a time: every key passes through small counts (in the
    // view `few`) and then grows out of it (a tombstone). Slowly: the sink
    // starts from `few`'s snapshot when it attaches, so a key already
    // past 10 by then never shows (under load, the first pipelines can run
    // a while before the Kafka sink has its producer).
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE ev (k TEXT) WITH (connector = 'datagen', rows_per_second = 20,
                 limit = 150, seed = 7, fields.k.values = 'a,b,c,d,rare', fields.k.weights = '25,25,25,25,1');
             CREATE MATERIALIZED VIEW counts AS SELECT k, count(*) AS n FROM ev GROUP BY k;
             CREATE MATERIALIZED VIEW few AS SELECT k, n FROM counts WHERE n < 10;
             CREATE SINK few_out FROM few WITH (connector = 'kafka', topic = '{out}',
                 bootstrap_servers = '{servers}', format = 'json');
             SELECT k, n FROM few ORDER BY k;"
        ),
    );
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    let stdout = std::fs::read_to_string(dir.path().join("sluice.stdout")).expect("stdout");
    let want: BTreeMap<String, serde_json::Value> = printed_tables(&stdout)
        .concat()
        .into_iter()
        .map(|r| {
            (
                r[0].clone(),
                serde_json::json!(r[1].parse::<i64>().expect("n")),
            )
        })
        .collect();
    // Applying the upserts and tombstones gives the view's final contents.
    let apply = |messages: &[Received]| {
        let mut state: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for m in messages {
            let key = m.key.clone().expect("every message is keyed");
            if m.payload.is_empty() {
                assert!(
                    state.remove(&key).is_some(),
                    "tombstone for a key not shown: {key}"
                );
            } else {
                let v = m.json();
                assert_eq!(
                    v["k"].as_str(),
                    Some(key.as_str()),
                    "the key is the view's key"
                );
                state.insert(key, v["n"].clone());
            }
        }
        state
    };
    let messages = consume_until(&servers, &out, "the view's final contents", |got| {
        apply(got) == want && got.iter().any(|m| m.payload.is_empty())
    });
    assert_eq!(apply(&messages), want, "stdout:\n{stdout}");
}

/// Consumer lag per partition on the metrics endpoint, against known
/// numbers: 3,000 records in 3 partitions are all read (lag 0 on each); then
/// 1,500 more are produced and read too, and the file sink's bytes out are
/// the file's size. A second pipeline reads 400,000 records into a sink that
/// does not keep up: its source stops, and what it has not read is its lag,
/// which drains to 0 once the sink's reader catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_per_partition_on_the_metrics_endpoint() {
    let servers = broker();
    let (topic, big) = (unique("lag"), unique("lag_big"));
    create_topic(&servers, &topic, 3).await;
    create_topic(&servers, &big, 3).await;
    let p = producer(&servers);
    let produce_n = |topic: &str, from: i64, n: i64| {
        let sends: Vec<_> = (from..from + n)
            .map(|i| {
                let (p, topic) = (p.clone(), topic.to_string());
                async move {
                    let payload = format!("{{\"id\": {i}}}");
                    produce(&p, &topic, Some(&format!("k{i}")), payload.as_bytes(), None).await
                }
            })
            .collect();
        futures::future::join_all(sends)
    };
    // More than the pipeline holds in flight (two channels of 16 batches
    // of at most 8,192 records, and the socket's buffers), into a sink
    // whose reader takes 50 bytes/s: the source must stop reading, and the
    // rest of the topic is its lag.
    const BIG: i64 = 400_000;
    produce_n(&topic, 0, 3000).await;
    produce_n(&big, 0, BIG).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("lag.sql");
    let (reader_port, drain) = common::slow_reader(1);
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE ev (id BIGINT)
                 WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{servers}', start_from = 'earliest');
             CREATE SINK out FROM ev WITH (connector = 'file', path = 'out.jsonl');
             CREATE SOURCE many (id BIGINT)
                 WITH (connector = 'kafka', topic = '{big}', bootstrap_servers = '{servers}', start_from = 'earliest');
             CREATE SINK stuck AS SELECT id, repeat('x', 200) AS pad FROM many
                 WITH (connector = 'socket', port = {reader_port});"
        ),
    )
    .expect("script");
    let metrics_port = common::free_port();
    let mut sluice = Sluice::start_with(
        dir.path(),
        Some(&script),
        &dir.path().join("data"),
        &[
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            // A stuck pipeline holds every checkpoint back (barriers are
            // aligned), and with them the file sink's commits.
            "--checkpoint-interval",
            "off",
        ],
    );
    // Per partition lag, and records read, of a pipeline.
    let figures = |text: &str, pipeline: &str| {
        let pipeline = format!("pipeline=\"{pipeline}\"");
        let lags: Vec<f64> = (0..3)
            .filter_map(|p| {
                let partition = format!("partition=\"{p}\"");
                common::sample(text, "sluice_kafka_consumer_lag", &[&pipeline, &partition])
            })
            .collect();
        let read = common::sample(text, "sluice_records_in_total", &[&pipeline]);
        (lags, read.unwrap_or(0.0))
    };
    for total in [3000.0, 4500.0] {
        if total > 3000.0 {
            produce_n(&topic, 3000, 1500).await;
        }
        sluice.wait_for(&format!("{total} read, no lag on 3 partitions"), T, || {
            let (lags, read) = figures(&common::try_scrape(metrics_port)?, "out");
            (lags == vec![0.0; 3] && read == total).then_some(())
        });
    }
    // The file sink's bytes out are the file's bytes.
    let out = dir.path().join("out.jsonl");
    sluice.wait_for("bytes out = the output file's size", T, || {
        let text = common::try_scrape(metrics_port)?;
        let sent = common::sample(&text, "sluice_bytes_out_total", &["pipeline=\"out\""])?;
        let size = std::fs::metadata(&out).ok()?.len();
        (common::read_lines(&out).len() == 4500 && sent == size as f64).then_some(())
    });

    // The stuck pipeline: once its source has stopped reading (two scrapes
    // a second apart agree), what it has not read is exactly its lag.
    let mut last = (Vec::new(), -1.0);
    let (lags, read) = sluice.wait_for("the stuck pipeline to stop reading", T, || {
        std::thread::sleep(Duration::from_secs(1));
        let now = figures(&common::try_scrape(metrics_port)?, "stuck");
        let settled = now.0.len() == 3 && now.1 > 0.0 && now == last;
        last = now.clone();
        settled.then_some(now)
    });
    let lag: f64 = lags.iter().sum();
    assert!(
        read < BIG as f64 && lag > 0.0,
        "a stuck sink holds the source back: read {read}, lag {lags:?}"
    );
    assert_eq!(
        read + lag,
        BIG as f64,
        "records read and the partitions' lag {lags:?} add up to the topic"
    );
    // The reader catches up: the lag drains to nothing.
    drain.store(true, std::sync::atomic::Ordering::Relaxed);
    sluice.wait_for("the stuck pipeline to catch up", T, || {
        let (lags, read) = figures(&common::try_scrape(metrics_port)?, "stuck");
        (lags == vec![0.0; 3] && read == BIG as f64).then_some(())
    });
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    let stderr = sluice.stderr();
    assert!(
        stderr.contains("records in") && stderr.contains("4500"),
        "the run ends with a summary table: {stderr}"
    );
}
