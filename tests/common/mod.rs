//! Helpers shared by the integration tests: running the `sluice` binary on a
//! script, waiting for conditions, free ports.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends `signal` (e.g. "INT", "TERM") to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// A `sluice run` child process with its stderr captured to a file.
pub struct Sluice {
    pub child: Child,
    pub stderr_path: std::path::PathBuf,
}

impl Sluice {
    /// Starts `sluice run script.sql` in `dir` with `sql` as the script.
    pub fn run(dir: &Path, sql: &str) -> Sluice {
        let script = dir.join("script.sql");
        std::fs::write(&script, sql).expect("write script");
        Self::run_file(dir, &script)
    }

    /// Runs `script` with a data directory of its own (a fresh catalog).
    pub fn run_file(dir: &Path, script: &Path) -> Sluice {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::start(dir, Some(script), &dir.join(format!("sluice-data-{n}")))
    }

    /// `sluice run [script] --data-dir data_dir` in `dir`.
    pub fn start(dir: &Path, script: Option<&Path>, data_dir: &Path) -> Sluice {
        Self::start_with(dir, script, data_dir, &[])
    }

    /// Like [`Sluice::start`], with options before `run`.
    pub fn start_with(
        dir: &Path,
        script: Option<&Path>,
        data_dir: &Path,
        options: &[&str],
    ) -> Sluice {
        Self::start_env(dir, script, data_dir, options, &[])
    }

    /// Like [`Sluice::start_with`], with these environment variables.
    pub fn start_env(
        dir: &Path,
        script: Option<&Path>,
        data_dir: &Path,
        options: &[&str],
        env: &[(&str, &str)],
    ) -> Sluice {
        let stderr_path = dir.join("sluice.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let stdout = std::fs::File::create(dir.join("sluice.stdout")).expect("stdout file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(options)
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(script) = script {
            command.arg(script);
        }
        let child = command
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn,sluice=info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn sluice");
        Sluice { child, stderr_path }
    }

    /// Like [`wait_for`], with this process's stderr in the failure message.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; sluice stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGINT (what Ctrl-C sends).
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (panics after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _killed = self.child.kill();
                panic!(
                    "sluice did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _killed = self.child.kill();
        }
    }
}

/// A figure of `pipeline` in the summary table `sluice run` ends with: the
/// cell of `column` ("records in", "late", …) in the pipeline's row.
pub fn final_figure(stderr: &str, pipeline: &str, column: &str) -> u64 {
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_string()).collect() };
    let header = stderr
        .lines()
        .rfind(|l| l.starts_with("pipeline ") && l.contains("| records in |"))
        .map(cells)
        .unwrap_or_else(|| panic!("no summary table; stderr:\n{stderr}"));
    let row = stderr
        .lines()
        .map(cells)
        .rfind(|c| c.len() == header.len() && c[0] == pipeline)
        .unwrap_or_else(|| panic!("no summary of {pipeline}; stderr:\n{stderr}"));
    let i = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    row[i]
        .parse()
        .unwrap_or_else(|e| panic!("{column} of {pipeline}: {:?}: {e}", row[i]))
}

/// A pipeline's records in, records out, errors and dead-lettered records,
/// from the summary table `sluice run` ends with.
pub fn final_counts(stderr: &str, pipeline: &str) -> [u64; 4] {
    ["records in", "records out", "errors", "dead-lettered"]
        .map(|column| final_figure(stderr, pipeline, column))
}

/// `sluice ARGS…` in `dir` with exactly these arguments; stdout goes to
/// `dir/sluice.stdout`, stderr to `dir/sluice.stderr`.
pub fn sluice_with_args(dir: &Path, args: &[&str]) -> Sluice {
    let stderr_path = dir.join("sluice.stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let stdout = std::fs::File::create(dir.join("sluice.stdout")).expect("stdout file");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn,sluice=info")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn sluice");
    Sluice { child, stderr_path }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The rows (cells trimmed) of each `pretty` table printed on stdout; the
/// header and rules are skipped.
pub fn printed_tables(stdout: &str) -> Vec<Vec<Vec<String>>> {
    let mut tables = Vec::new();
    let mut rules = 0;
    let mut rows = Vec::new();
    for line in stdout.lines() {
        if line.starts_with('+') {
            rules += 1;
            if rules == 3 {
                tables.push(std::mem::take(&mut rows));
                rules = 0;
            }
        } else if line.starts_with('|') && rules == 2 {
            rows.push(
                line.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect(),
            );
        }
    }
    tables
}

/// A changelog file sink's rows keyed by `k` with a growing count `n`: per
/// key an insert, then updates whose count only grows (output repeated after
/// a restart would start again from 1). Returns the last count per key.
pub fn growing_counts(path: &Path) -> std::collections::BTreeMap<String, i64> {
    let mut last = std::collections::BTreeMap::new();
    for r in json_lines(path) {
        let k = r["k"].as_str().expect("k").to_string();
        let n = r["n"].as_i64().expect("n");
        let op = r["op"].as_str().expect("op");
        match last.get(&k) {
            None => assert_eq!(op, "insert", "{}: first row of {k}: {r}", path.display()),
            Some(&prev) => {
                assert_eq!(op, "update", "{}: later row of {k}: {r}", path.display());
                assert!(
                    n > prev,
                    "{}: {k} went from {prev} to {n}: repeated output",
                    path.display()
                );
            }
        }
        last.insert(k, n);
    }
    last
}

/// A peer that reads at most `bytes_per_tick` every 20 ms, and as fast as
/// it can once the returned flag is set.
pub fn slow_reader(bytes_per_tick: usize) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&stop);
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut buf = vec![0u8; bytes_per_tick];
        let mut fast = vec![0u8; 1 << 20];
        loop {
            let drain = done.load(Ordering::Relaxed);
            match conn.read(if drain { &mut fast } else { &mut buf }) {
                Ok(0) | Err(_) => return,
                Ok(_) if drain => {}
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, stop)
}

/// `GET /metrics` from the server's Prometheus endpoint.
pub fn scrape(port: u16) -> String {
    try_scrape(port).expect("connect to the metrics endpoint")
}

/// [`scrape`], or `None` while nothing listens yet.
pub fn try_scrape(port: u16) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    Some(response)
}

/// The value of the sample `name{…labels…}` whose labels include all of
/// `with`.
pub fn sample(text: &str, name: &str, with: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| with.iter().all(|w| l.contains(w)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
