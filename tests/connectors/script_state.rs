//! Where a script's state lives between runs: each script in its own
//! directory, a run that read all its input starting over, one stopped early
//! resuming, `--data-dir` resuming whatever it holds and `--fresh` starting
//! over, with a message saying which.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::{sluice_with_args, Sluice};

const T: Duration = Duration::from_secs(60);

/// The demo's running sums: the last `events` count per key of the
/// changelog printed on stdout.
fn last_counts(stdout: &str) -> BTreeMap<String, i64> {
    let mut last = BTreeMap::new();
    for line in stdout.lines() {
        let row: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        last.insert(
            row["key"].as_str().expect("key").to_string(),
            row["events"].as_i64().expect("events"),
        );
    }
    last
}

/// The epochs of the checkpoints in `data_dir`, oldest first.
fn manifest_epochs(data_dir: &Path) -> Vec<u64> {
    let mut epochs: Vec<u64> = std::fs::read_dir(data_dir.join("checkpoints"))
        .expect("checkpoints")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("manifest-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    epochs.sort_unstable();
    assert!(
        !epochs.is_empty(),
        "no checkpoint in {}",
        data_dir.display()
    );
    epochs
}

fn stdout(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sluice.stdout")).expect("stdout")
}

/// Runs `sluice ARGS…` in `dir` to its end; returns stdout and stderr.
fn run_to_end(dir: &Path, args: &[&str]) -> (String, String) {
    let mut sluice = sluice_with_args(dir, args);
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(
        status.success(),
        "{args:?}: exit {status}; stderr:\n{stderr}"
    );
    (stdout(dir), stderr)
}

/// Starts `sluice ARGS…` in `dir` and stops it (Ctrl-C) once it printed
/// some rows; returns stdout.
fn run_and_interrupt(dir: &Path, args: &[&str]) -> String {
    let mut sluice: Sluice = sluice_with_args(dir, args);
    sluice.wait_for("some rows", T, || {
        (stdout(dir).lines().count() >= 50).then_some(())
    });
    sluice.interrupt();
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(
        status.success(),
        "{args:?}: exit {status}; stderr:\n{stderr}"
    );
    assert!(stderr.contains("stopped after "), "{stderr}");
    stdout(dir)
}

/// `sluice run queries/demo.sql` over and over in one directory: every run
/// prints the answer, or says why not and how to get it.
#[test]
fn the_demo_reruns_in_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/demo.sql");
    let script = script.to_str().expect("path");

    // The first run reads the generator to its end.
    let (out, stderr) = run_to_end(dir, &["run", script]);
    let answer = last_counts(&out);
    assert_eq!(answer.len(), 5, "five keys: {answer:?}");
    let counted: i64 = answer.values().sum();
    assert!((17_000..19_000).contains(&counted), "{counted}");
    assert!(
        stderr.contains("done in ") && stderr.contains("every source was read to the end"),
        "{stderr}"
    );
    assert!(
        dir.join("sluice-data/demo/catalog.json").exists(),
        "the script's own directory"
    );

    // Run again: it read all its input last time, so it starts over.
    let (out, stderr) = run_to_end(dir, &["run", script]);
    assert!(
        stderr.contains(&format!(
            "starting over: the last run of {script} read all its input (sluice-data/demo)"
        )),
        "{stderr}"
    );
    assert_eq!(last_counts(&out), answer, "the same answer again");

    // The same directory named with --data-dir is resumed as it is: there
    // is nothing left to read, and it says so.
    let (out, stderr) = run_to_end(dir, &["run", "--data-dir", "sluice-data/demo", script]);
    assert_eq!(out, "", "nothing new");
    assert!(
        stderr.contains(
            "nothing new: running_sums, big_values resumed from the checkpoint in \
             sluice-data/demo, and an earlier run had read their input to the end. \
             Run with --fresh to start them over."
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("done in ") && stderr.contains("nothing new to read (--fresh starts over)"),
        "{stderr}"
    );

    // --fresh starts over, even there; checkpoint epochs go on counting
    // (Kafka sinks compare them with what they committed).
    let epochs_before = manifest_epochs(&dir.join("sluice-data/demo"));
    let (out, stderr) = run_to_end(
        dir,
        &["run", "--data-dir", "sluice-data/demo", "--fresh", script],
    );
    assert!(
        stderr.contains("starting over: discarded the state in sluice-data/demo (--fresh)"),
        "{stderr}"
    );
    assert_eq!(last_counts(&out), answer, "the whole answer again");
    let epochs_after = manifest_epochs(&dir.join("sluice-data/demo"));
    assert!(
        epochs_after.first() >= epochs_before.last() && epochs_after.last() > epochs_before.last(),
        "{epochs_before:?} then {epochs_after:?}"
    );

    // A run stopped early resumes where it stopped: the two runs print the
    // answer between them.
    let before = run_and_interrupt(dir, &["run", script]);
    let (after, stderr) = run_to_end(dir, &["run", script]);
    assert!(
        stderr.contains(
            "resuming from the state in sluice-data/demo (demo_events, running_sums, big_values); \
             --fresh starts over"
        ),
        "{stderr}"
    );
    assert!(!after.is_empty(), "the rest of the input: {stderr}");
    assert_eq!(last_counts(&format!("{before}{after}")), answer);
}

/// Two scripts in one directory keep apart: the second neither restores
/// nor runs the first one's objects.
#[test]
fn scripts_do_not_restore_each_others_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("endless.sql"),
        "CREATE SOURCE ticks (k BIGINT) WITH (connector = 'datagen', rows_per_second = 100);
         CREATE SINK tick_out FROM ticks WITH (connector = 'file', path = 'ticks.jsonl');",
    )
    .expect("script");
    std::fs::write(
        dir.join("finite.sql"),
        "CREATE SOURCE few (k BIGINT) WITH (connector = 'datagen', rows_per_second = 0, limit = 10);
         CREATE SINK few_out FROM few WITH (connector = 'file', path = 'few.jsonl');",
    )
    .expect("script");
    let mut endless = sluice_with_args(dir, &["run", "--no-progress", "endless.sql"]);
    endless.wait_for("ticks", T, || {
        dir.join("sluice-data/endless/catalog.json")
            .exists()
            .then_some(())
    });
    endless.interrupt();
    assert!(endless.wait(T).success(), "{}", endless.stderr());

    // The finite script stops by itself, the endless one is not restored.
    let (_, stderr) = run_to_end(dir, &["run", "finite.sql"]);
    assert!(!stderr.contains("ticks"), "{stderr}");
    assert!(!stderr.contains("resuming"), "{stderr}");
    let catalog =
        std::fs::read_to_string(dir.join("sluice-data/finite/catalog.json")).expect("catalog");
    assert!(
        catalog.contains("few") && !catalog.contains("ticks"),
        "{catalog}"
    );
}
