//! Checkpoints that go wrong: a damaged or half-written checkpoint on disk,
//! and a disk that fills up under a running pipeline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{growing_counts, json_lines, wait_for, Sluice};

const T: Duration = Duration::from_secs(60);

/// Line n of the input: key k(n % 5), event time 12:00:00 + n × 100 ms.
fn line(n: u64) -> String {
    format!(
        "{{\"k\": \"k{}\", \"v\": {n}, \"ts\": \"2026-03-01T12:00:{:02}.{:03}Z\"}}\n",
        n % 5,
        n / 10,
        (n % 10) * 100
    )
}

fn append(path: &Path, range: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("input");
    f.write_all(range.map(line).collect::<String>().as_bytes())
        .expect("append");
}

/// A file source followed as it grows, a keyed count and 2-second windows,
/// each into a file sink.
fn script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("pipeline.sql");
    std::fs::write(
        &script,
        "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)
             WITH (connector = 'file', path = 'in.jsonl', mode = 'follow');
         CREATE SINK per_key AS SELECT k, count(*) AS n FROM ev GROUP BY k
             WITH (connector = 'file', path = 'per_key.jsonl');
         CREATE SINK windows AS SELECT window_start, count(*) AS n
             FROM TUMBLE(ev, ts, INTERVAL '2 seconds') GROUP BY window_start, window_end
             WITH (connector = 'file', path = 'windows.jsonl');",
    )
    .expect("script");
    script
}

/// Every key's count, and every closed window's, for lines 0..n.
fn want(n: u64) -> (BTreeMap<String, i64>, Vec<(String, i64)>) {
    let keys = (0..5).map(|k| (format!("k{k}"), (n / 5) as i64)).collect();
    // Windows hold 20 lines; the one holding the last line is still open.
    let windows = (0..n / 20 - 1)
        .map(|w| (format!("2026-03-01T12:00:{:02}", w * 2), 20))
        .collect();
    (keys, windows)
}

fn windows(dir: &Path) -> Vec<(String, i64)> {
    json_lines(&dir.join("windows.jsonl"))
        .iter()
        .map(|r| {
            (
                r["window_start"].as_str().expect("start").to_string(),
                r["n"].as_i64().expect("n"),
            )
        })
        .collect()
}

/// `checkpoints/manifest-<epoch>.json` files, newest last.
fn manifests(data: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut found: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(data.join("checkpoints"))
        .map(|dir| {
            dir.filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                let epoch = name
                    .strip_prefix("manifest-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((epoch, e.path()))
            })
            .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The checkpoints taken after some point are damaged (a flipped byte in
/// each state object) and a newer manifest is cut short: the restart names
/// each, restores the last intact checkpoint, and the output is still
/// every result exactly once (what the file sinks committed after that
/// checkpoint is taken back and written again).
#[test]
fn a_damaged_checkpoint_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    let script = script(dir.path());
    // Few checkpoints: the intact one must outlive the 3 kept.
    let options = ["--checkpoint-interval", "3s"];
    append(&input, 0..100);
    let mut first = Sluice::start_with(dir.path(), Some(&script), &data, &options);
    first.wait_for("the first 100 lines in both sinks", T, || {
        let (keys, wins) = want(100);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    // Sinks commit at a checkpoint: this one holds the 100 lines.
    let intact = manifests(&data).last().expect("a checkpoint").0;
    append(&input, 100..140);
    first.wait_for("40 more lines in both sinks", T, || {
        let (keys, wins) = want(140);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    first.interrupt();
    assert!(first.wait(T).success(), "{}", first.stderr());

    let found = manifests(&data);
    assert!(
        found.iter().any(|(e, _)| *e == intact),
        "checkpoint {intact} still kept: {found:?}"
    );
    let damaged: Vec<u64> = found
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| *e > intact)
        .collect();
    assert!(!damaged.is_empty(), "checkpoints after {intact}: {found:?}");
    for (epoch, manifest) in &found {
        if *epoch <= intact {
            continue;
        }
        let listed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(manifest).expect("manifest")).expect("json");
        for entry in listed["pipelines"].as_object().expect("pipelines").values() {
            let path = data.join(entry["object"].as_str().expect("object"));
            let mut bytes = std::fs::read(&path).expect("state object");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
            std::fs::write(&path, bytes).expect("damage");
        }
    }
    // And a manifest after them, half written.
    let (newest, manifest) = found.last().cloned().expect("a checkpoint");
    let torn = data
        .join("checkpoints")
        .join(format!("manifest-{:020}.json", newest + 1));
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&torn, &text[..text.len() / 2]).expect("torn manifest");

    append(&input, 140..200);
    let mut second = Sluice::start_with(dir.path(), None, &data, &options);
    second.wait_for("all 200 lines in both sinks", T, || {
        let (keys, wins) = want(200);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    second.interrupt();
    assert!(second.wait(T).success(), "{}", second.stderr());
    let stderr = second.stderr();
    let named: Vec<u64> = stderr
        .lines()
        .filter(|l| l.contains("checkpoint is damaged or incomplete"))
        .filter_map(|l| {
            let at = l.find("epoch=")? + "epoch=".len();
            l[at..].split(' ').next()?.parse().ok()
        })
        .collect();
    let mut want_named: Vec<u64> = damaged.clone();
    want_named.push(newest + 1);
    want_named.sort_by(|a, b| b.cmp(a));
    assert_eq!(named, want_named, "each bad checkpoint named:\n{stderr}");
    assert!(
        stderr.contains(&format!("restoring from checkpoint epoch={intact}")),
        "{stderr}"
    );
    // Exactly once: counts only grow (no repeat), every window once.
    let (keys, wins) = want(200);
    assert_eq!(growing_counts(&dir.path().join("per_key.jsonl")), keys);
    assert_eq!(windows(dir.path()), wins);
}

/// `sluice run` in a mount namespace of its own whose data directory is a
/// 1 MiB tmpfs, so the test can fill that disk (through
/// `/proc/<pid>/root`) while it runs.
struct SmallDisk {
    child: Child,
    stderr: std::path::PathBuf,
}

impl SmallDisk {
    fn start(dir: &Path, script: &Path, data: &Path, options: &[&str]) -> SmallDisk {
        std::fs::create_dir_all(data).expect("data dir");
        let stderr = dir.join("sluice.stderr");
        let child = Command::new("unshare")
            .args(["--map-root-user", "--mount", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@""#)
            .arg(data)
            .arg(env!("CARGO_BIN_EXE_sluice"))
            .args(options)
            .args(["run", "--no-progress", "--data-dir"])
            .arg(data)
            .arg(script)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr"))
            .spawn()
            .expect("unshare (util-linux)");
        SmallDisk { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The data directory as the process sees it.
    fn data(&self, data: &Path) -> std::path::PathBuf {
        Path::new(&format!("/proc/{}/root", self.child.id()))
            .join(data.strip_prefix("/").expect("absolute"))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The disk under the data directory fills up: each checkpoint fails with
/// an error that says so, the last good one stays, the pipeline keeps
/// reading, and (file sinks commit only at a checkpoint) nothing is lost.
/// Once there is room again, the next checkpoint commits everything, once.
#[test]
fn a_full_disk_fails_checkpoints_until_there_is_room_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    let script = script(dir.path());
    append(&input, 0..100);
    let mut run = SmallDisk::start(
        dir.path(),
        &script,
        &data,
        &["--checkpoint-interval", "300ms"],
    );
    wait_for("the first 100 lines in both sinks", T, || {
        let (keys, wins) = want(100);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    let inside = run.data(&data);
    let good = manifests(&inside).last().expect("a checkpoint").0;

    // Fill the disk.
    let filler = inside.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let block = vec![0u8; 4096];
    let full = loop {
        if let Err(e) = f.write_all(&block).and_then(|_| f.sync_all()) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(28), "ENOSPC: {full}");
    append(&input, 100..200);
    let error = wait_for("a checkpoint to fail for want of space", T, || {
        run.stderr()
            .lines()
            .find(|l| l.contains("checkpoint failed") && l.contains("No space left on device"))
            .map(str::to_string)
    });
    assert!(
        error.contains("the previous checkpoint stays valid"),
        "{error}"
    );
    // More attempts fail the same way; the process keeps running, and the
    // newest complete checkpoint is still the last good one.
    wait_for("a second failed checkpoint", T, || {
        (run.stderr().matches("checkpoint failed").count() >= 2).then_some(())
    });
    assert!(
        run.child.try_wait().expect("try_wait").is_none(),
        "{}",
        run.stderr()
    );
    assert_eq!(manifests(&inside).last().map(|m| m.0), Some(good));
    let (keys, _) = want(100);
    assert_eq!(
        growing_counts(&dir.path().join("per_key.jsonl")),
        keys,
        "nothing committed while checkpoints fail"
    );

    // Room again: the next checkpoint commits the last 100 lines, once.
    drop(f);
    std::fs::remove_file(&filler).expect("remove filler");
    wait_for("all 200 lines in both sinks", T, || {
        let (keys, wins) = want(200);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    assert!(manifests(&inside).last().expect("checkpoint").0 > good);
    crate::common::signal(run.child.id(), "INT");
    let status = run.child.wait().expect("wait");
    assert!(status.success(), "{status}: {}", run.stderr());
    let (keys, wins) = want(200);
    assert_eq!(growing_counts(&dir.path().join("per_key.jsonl")), keys);
    assert_eq!(windows(dir.path()), wins);
}

/// moto's S3 server (`python -m moto.server`), stopped on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start(dir: &Path) -> S3Server {
        let python = std::env::var("SLUICE_PYTHON")
            .expect("SLUICE_PYTHON: a Python with moto[server] installed (.ci/run sets it up)");
        let port = crate::common::free_port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("moto.log")).expect("moto log"))
            .spawn()
            .expect("python -m moto.server");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for("moto's S3 server to answer", T, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        server
    }

    /// One plain HTTP request (moto takes unsigned ones); the response.
    fn http(&self, method: &str, path: &str) -> String {
        use std::io::Read;
        let port = self.endpoint.rsplit(':').next().expect("port");
        let mut conn = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("response");
        response
    }

    /// The object keys in `bucket` under `prefix`.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listing = self.http("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"));
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--state-url s3://bucket/prefix`: checkpoints go to S3-compatible
/// storage (moto's S3 server), not the data directory, and a restart
/// restores from there with nothing lost or repeated.
#[test]
fn checkpoints_in_s3_compatible_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s3 = S3Server::start(dir.path());
    let created = s3.http("PUT", "/sluice-state");
    assert!(
        created.starts_with("HTTP/1.1 200"),
        "create bucket: {created}"
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", s3.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    let script = script(dir.path());
    let options = [
        "--checkpoint-interval",
        "300ms",
        "--state-url",
        "s3://sluice-state/team/a",
    ];
    append(&input, 0..100);
    let mut first = Sluice::start_env(dir.path(), Some(&script), &data, &options, &env);
    first.wait_for("the first 100 lines in both sinks", T, || {
        let (keys, wins) = want(100);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    // Enough checkpoints that older ones have been collected.
    let epoch_of = |key: &str| -> Option<u64> {
        let rest = key.strip_prefix("team/a/checkpoints/")?;
        let name = rest.strip_prefix("manifest-").unwrap_or(rest);
        name.split(['/', '.']).next()?.parse().ok()
    };
    first.wait_for("a fifth checkpoint in the bucket", T, || {
        let keys = s3.keys("sluice-state", "team/a/checkpoints/");
        keys.iter()
            .filter(|k| k.contains("manifest-"))
            .filter_map(|k| epoch_of(k))
            .any(|e| e >= 5)
            .then_some(())
    });
    first.interrupt();
    assert!(first.wait(T).success(), "{}", first.stderr());
    let keys = s3.keys("sluice-state", "team/a/checkpoints/");
    assert!(
        keys.iter()
            .any(|k| k.ends_with(".json") && k.contains("manifest-"))
            && keys.iter().any(|k| k.ends_with("/per_key.state")),
        "manifests and state objects in the bucket: {keys:?}"
    );
    assert!(
        manifests(&data).is_empty(),
        "no checkpoint in the data directory"
    );
    // Only the last 3 are kept, objects and all.
    let mut kept: Vec<u64> = keys
        .iter()
        .filter(|k| k.contains("manifest-"))
        .filter_map(|k| epoch_of(k))
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 3, "{keys:?}");
    assert!(
        kept[0] > 1,
        "older checkpoints were taken, and deleted: {keys:?}"
    );
    assert!(
        keys.iter()
            .filter_map(|k| epoch_of(k))
            .all(|e| e >= kept[0]),
        "no object of a deleted checkpoint is left: {keys:?}"
    );

    append(&input, 100..200);
    let mut second = Sluice::start_env(dir.path(), None, &data, &options, &env);
    second.wait_for("all 200 lines in both sinks", T, || {
        let (keys, wins) = want(200);
        (growing_counts(&dir.path().join("per_key.jsonl")) == keys && windows(dir.path()) == wins)
            .then_some(())
    });
    second.interrupt();
    assert!(second.wait(T).success(), "{}", second.stderr());
    let stderr = second.stderr();
    assert!(
        stderr.contains("restoring from checkpoint")
            && stderr.contains("s3://sluice-state/team/a/checkpoints"),
        "{stderr}"
    );
    let (keys, wins) = want(200);
    assert_eq!(growing_counts(&dir.path().join("per_key.jsonl")), keys);
    assert_eq!(windows(dir.path()), wins);
}

/// Restarting a finite source already read to its end next to an endless
/// one: periodic checkpoints go on completing (a trigger sent between a
/// pipeline's registration and its source task's start was never seen, so
/// the epoch waited for it until abandoned and no checkpoint completed).
#[test]
fn checkpoints_complete_after_restarting_an_exhausted_source_beside_an_endless_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("mix.sql");
    append(&dir.path().join("done.jsonl"), 0..20);
    std::fs::write(
        &script,
        "CREATE SOURCE done (k TEXT, v BIGINT, ts TIMESTAMP) WITH (connector = 'file', path = 'done.jsonl');
         CREATE SINK done_out AS SELECT k, count(*) AS n FROM done GROUP BY k
             WITH (connector = 'file', path = 'done_out.jsonl');
         CREATE SOURCE gen (k TEXT) WITH (connector = 'datagen', rows_per_second = '50', seed = '1',
             fields.k.values = 'a,b');
         CREATE SINK gen_out AS SELECT k, count(*) AS n FROM gen GROUP BY k
             WITH (connector = 'file', path = 'gen_out.jsonl');",
    )
    .expect("script");
    let options = ["--checkpoint-interval", "300ms"];
    let first = Sluice::start_with(dir.path(), Some(&script), &data, &options);
    first.wait_for("a few checkpoints", T, || {
        (manifests(&data).len() >= 3).then_some(())
    });
    first.interrupt();
    let mut first = first;
    assert!(first.wait(T).success(), "{}", first.stderr());

    for restart in 0..3 {
        let newest = manifests(&data).last().expect("a checkpoint").0;
        let mut again = Sluice::start_with(dir.path(), None, &data, &options);
        again.wait_for(
            &format!("restart {restart}: three more checkpoints after {newest}"),
            Duration::from_secs(20),
            || {
                (manifests(&data)
                    .last()
                    .is_some_and(|(e, _)| *e >= newest + 3))
                .then_some(())
            },
        );
        again.interrupt();
        assert!(again.wait(T).success(), "{}", again.stderr());
        assert!(
            !again.stderr().contains("checkpoint abandoned"),
            "{}",
            again.stderr()
        );
    }
}

/// A sink reading a view over a bounded input gets and commits all of it:
/// the view's pipeline applies its output on its own operator task and the
/// sink's pipeline reads the view's dispatcher directly; when the view
/// ends, the sink's pipeline flushes and takes one more checkpoint, which
/// commits what it flushed (a file sink writes only what checkpoints
/// commit).
#[test]
fn a_sink_from_a_view_over_a_bounded_input_commits_all_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("view.sql");
    append(&dir.path().join("in.jsonl"), 0..600);
    std::fs::write(
        &script,
        "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP)
             WITH (connector = 'file', path = 'in.jsonl');
         CREATE MATERIALIZED VIEW per_key AS SELECT k, count(*) AS n FROM ev GROUP BY k;
         CREATE SINK out FROM per_key WITH (connector = 'file', path = 'out.jsonl');",
    )
    .expect("script");
    let mut run = Sluice::start_with(
        dir.path(),
        Some(&script),
        &data,
        &["--checkpoint-interval", "200ms"],
    );
    assert!(run.wait(T).success(), "{}", run.stderr());
    assert_eq!(
        growing_counts(&dir.path().join("out.jsonl")),
        want(600).0,
        "{}",
        run.stderr()
    );
}

/// A view restored from its checkpoint has its rows back before anything
/// started after it reads its snapshot: a sink declared on the next run
/// gets every key, though the view's input has nothing new to give.
#[test]
fn a_sink_new_on_restart_reads_the_restored_view_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    append(&dir.path().join("in.jsonl"), 0..600);
    let view = "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP)
             WITH (connector = 'file', path = 'in.jsonl');
         CREATE MATERIALIZED VIEW per_key AS SELECT k, count(*) AS n FROM ev GROUP BY k;";
    let first = dir.path().join("first.sql");
    std::fs::write(&first, view).expect("script");
    let mut run = Sluice::start_with(
        dir.path(),
        Some(&first),
        &data,
        &["--checkpoint-interval", "200ms"],
    );
    assert!(run.wait(T).success(), "{}", run.stderr());
    // Three new sinks: each reads the view's snapshot as it starts.
    let sinks: String = (0..3)
        .map(|i| {
            format!(
                "CREATE SINK out{i} FROM per_key WITH (connector = 'file', path = 'out{i}.jsonl');\n"
            )
        })
        .collect();
    let second = dir.path().join("second.sql");
    std::fs::write(&second, format!("{view}\n{sinks}")).expect("script");
    let mut run = Sluice::start_with(
        dir.path(),
        Some(&second),
        &data,
        &["--checkpoint-interval", "200ms"],
    );
    assert!(run.wait(T).success(), "{}", run.stderr());
    for i in 0..3 {
        let out = dir.path().join(format!("out{i}.jsonl"));
        assert_eq!(
            growing_counts(&out),
            want(600).0,
            "out{i}: {}",
            run.stderr()
        );
    }
}
