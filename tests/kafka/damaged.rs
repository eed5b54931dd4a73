//! Exactly-once when the newest checkpoints are damaged. Recovery falls
//! back to an older checkpoint, whose input positions are behind what the
//! Kafka sink already committed: running on would write those records
//! again. The sink must refuse, naming the damaged checkpoint, and the
//! output read with `read_committed` must hold each record at most once.

use std::collections::BTreeSet;
use std::time::Duration;

use super::crash::{last_checkpoint, read_committed};
use super::{broker, create_topic, produce, producer, unique, T};
use crate::common::Sluice;

const RECORDS: i64 = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_newest_checkpoints_never_duplicate_kafka_output() {
    let servers = broker();
    let input = unique("damaged_in");
    let output = unique("damaged_out");
    create_topic(&servers, &input, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("pipeline.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE ev (id BIGINT) WITH (connector = 'kafka', topic = '{input}',
                 bootstrap_servers = '{servers}', format = 'json', properties.fetch.wait.max.ms = '50');
             CREATE SINK evens AS SELECT id FROM ev WHERE id % 2 = 0
                 WITH (connector = 'kafka', topic = '{output}', bootstrap_servers = '{servers}', format = 'json');"
        ),
    )
    .expect("script");
    // A steady stream, so that input positions move between checkpoints.
    let feeder = {
        let servers = servers.clone();
        let input = input.clone();
        tokio::spawn(async move {
            let p = producer(&servers);
            // 100 records every 50 ms: a stream of four seconds.
            for chunk in 0..RECORDS / 100 {
                let payloads: Vec<String> = (chunk * 100..(chunk + 1) * 100)
                    .map(|id| format!("{{\"id\": {id}}}"))
                    .collect();
                futures::future::join_all(
                    payloads
                        .iter()
                        .map(|v| produce(&p, &input, None, v.as_bytes(), None)),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let options = ["--checkpoint-interval", "1s"];
    let mut first = Sluice::start_with(dir.path(), Some(&script), &data, &options);
    let start = last_checkpoint(&data).unwrap_or(0);
    first.wait_for("four checkpoints with output committed", T, || {
        (last_checkpoint(&data).unwrap_or(0) >= start + 4
            && read_committed(&servers, &output, Duration::from_secs(5))
                .is_ok_and(|m| m.len() >= 200))
        .then_some(())
    });
    first.child.kill().expect("SIGKILL");
    first.wait(T);

    // Damage the two newest checkpoints: delete their state objects.
    let newest = last_checkpoint(&data).expect("a checkpoint");
    let mut deleted = Vec::new();
    for epoch in [newest, newest - 1] {
        let epoch_dir = data.join("checkpoints").join(format!("{epoch:020}"));
        for entry in std::fs::read_dir(&epoch_dir).expect("checkpoint directory") {
            let path = entry.expect("entry").path();
            std::fs::remove_file(&path).expect("delete state object");
            deleted.push(path);
        }
    }
    assert!(
        !deleted.is_empty(),
        "no state objects under the newest checkpoints"
    );
    feeder.await.expect("feeder");

    // The catalog comes from the data directory.
    let mut second = Sluice::start_with(dir.path(), None, &data, &options);
    let stderr = second.wait_for("the sink's refusal", T, || {
        let stderr = second.stderr();
        stderr.contains("refuses to start").then_some(stderr)
    });
    assert!(
        stderr.contains(&format!("checkpoint {newest} ")) && stderr.contains("is damaged"),
        "the refusal names the damaged checkpoint:\n{stderr}"
    );
    assert!(
        stderr.contains("evens.state"),
        "the refusal names the damaged object:\n{stderr}"
    );
    let _ = second.child.kill();
    second.wait(T);

    let messages = read_committed(&servers, &output, T).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = BTreeSet::new();
    for m in &messages {
        let id = m.json()["id"].as_i64().expect("id");
        assert_eq!(id % 2, 0, "only even ids");
        assert!(seen.insert(id), "id {id} written twice:\n{stderr}");
    }
    assert!(seen.len() >= 200, "output before the crash is kept");
}
