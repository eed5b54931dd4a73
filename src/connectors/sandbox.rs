//! Which files connectors may touch when clients, not the operator, write
//! the SQL (`sluice serve`): file sources and sinks, dead-letter files and
//! librdkafka properties that name local files (`ssl.ca.location`,
//! `sasl.kerberos.keytab`, `plugin.library.paths` …) must lie under one of
//! the `--allow-file-dir` directories (default `files/` in the data
//! directory). `--allow-hosts` limits the hosts socket and Kafka
//! connectors reach. `sluice run` runs its user's own script and has no
//! sandbox.
//!
//! A path is resolved as the process would open it: relative to the
//! working directory, `..` taken lexically, symbolic links resolved in
//! every part that exists, so neither `files/../../etc/passwd` nor a link
//! inside an allowed directory leads out of it.

use std::path::{Component, Path, PathBuf};

use crate::error::{Result, SluiceError};
use crate::sql::Options;

#[derive(Debug, Clone)]
pub struct FileSandbox {
    /// Canonical directories.
    dirs: Vec<PathBuf>,
    /// `--allow-hosts`: the hosts socket and Kafka connectors may reach
    /// (`name`, `*.suffix` or an IP address); none given: any.
    hosts: Option<Vec<String>>,
}

impl FileSandbox {
    /// The sandbox of `dirs` (each created if missing).
    pub fn new(dirs: &[PathBuf]) -> Result<FileSandbox> {
        let mut canonical = Vec::with_capacity(dirs.len());
        for d in dirs {
            std::fs::create_dir_all(d)
                .map_err(|e| SluiceError::io(format!("creating {}", d.display()), e))?;
            canonical.push(
                d.canonicalize()
                    .map_err(|e| SluiceError::io(format!("resolving {}", d.display()), e))?,
            );
        }
        Ok(FileSandbox {
            dirs: canonical,
            hosts: None,
        })
    }

    /// Limits the hosts connectors may connect to (`--allow-hosts`).
    pub fn with_hosts(mut self, hosts: Vec<String>) -> FileSandbox {
        if !hosts.is_empty() {
            self.hosts = Some(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect());
        }
        self
    }

    /// Refuses a host outside `--allow-hosts`.
    fn check_host(&self, key: &str, host: &str) -> Result<()> {
        let Some(allowed) = &self.hosts else {
            return Ok(());
        };
        let host = host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let ok = allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => *a == host,
        });
        if ok {
            Ok(())
        } else {
            Err(SluiceError::PermissionDenied(format!(
                "{key}: host '{host}' is not one the server lets connectors reach: {} \
                 (sluice serve --allow-hosts)",
                allowed.join(", ")
            )))
        }
    }

    /// Refuses a statement whose `connector` options name a file outside
    /// the allowed directories.
    pub fn check(&self, connector: Option<&str>, options: &Options) -> Result<()> {
        for (key, value) in options.iter() {
            let names_file = match key.as_str() {
                "path" => connector == Some("file"),
                "dead_letter" => true,
                k => k.starts_with("properties.") && is_file_property(k),
            };
            if names_file {
                self.check_path(key, value)?;
            }
            let names_hosts = match key.as_str() {
                "host" => connector == Some("socket"),
                "bootstrap_servers"
                | "properties.bootstrap.servers"
                | "properties.metadata.broker.list" => true,
                _ => false,
            };
            if names_hosts {
                for server in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    // host:port, [v6]:port, or a bare host.
                    let host = match server.rsplit_once(':') {
                        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                        _ => server,
                    };
                    let host = host.rsplit_once("://").map_or(host, |(_, h)| h);
                    self.check_host(key, host)?;
                }
            }
        }
        // A socket connector without `host` connects to 127.0.0.1.
        if connector == Some("socket") && options.get("host").is_none() {
            self.check_host("host", "127.0.0.1")?;
        }
        Ok(())
    }

    fn check_path(&self, key: &str, value: &str) -> Result<()> {
        // plugin.library.paths is a list.
        for one in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let resolved = resolve(Path::new(one))?;
            if !self.dirs.iter().any(|d| resolved.starts_with(d)) {
                return Err(SluiceError::PermissionDenied(format!(
                    "{key} = '{one}' is outside the directories the server lets connectors use: {} \
                     (sluice serve --allow-file-dir)",
                    self.dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// librdkafka properties whose value is a local file or library.
pub fn is_file_property(key: &str) -> bool {
    key.ends_with(".location")
        || key.ends_with("keytab")
        || key.ends_with(".library.paths")
        || key.ends_with("kinit.cmd")
        || key.ends_with(".file")
}

/// `path` as the process would open it: absolute, `..` applied, links
/// resolved as far as the path exists.
fn resolve(path: &Path) -> Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| SluiceError::io("reading the working directory", e))?
            .join(path)
    };
    let mut lexical = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    // The deepest part that exists, with its links resolved, then the rest.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => rest.push(name.to_os_string()),
            None => break,
        }
        existing.pop();
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    for part in rest.iter().rev() {
        resolved.push(part);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Options {
        let mut o = Options::new();
        for (k, v) in pairs {
            o.insert(k.to_string(), v.to_string()).unwrap();
        }
        o
    }

    #[test]
    fn only_allowed_directories_are_reached() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("files");
        let sandbox = FileSandbox::new(std::slice::from_ref(&allowed)).unwrap();
        let hosts = sandbox.clone().with_hosts(vec![
            "kafka.internal".into(),
            "*.corp.example".into(),
            "10.0.0.5".into(),
        ]);
        for ok in [
            (
                "kafka",
                "bootstrap_servers",
                "kafka.internal:9092,b1.corp.example:9093",
            ),
            ("socket", "host", "10.0.0.5"),
        ] {
            hosts
                .check(Some(ok.0), &options(&[("connector", ok.0), (ok.1, ok.2)]))
                .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            (
                "kafka",
                "bootstrap_servers",
                "kafka.internal:9092,evil.com:9092",
            ),
            (
                "kafka",
                "properties.bootstrap.servers",
                "169.254.169.254:80",
            ),
            ("socket", "host", "corp.example.evil.com"),
        ] {
            let e = hosts
                .check(
                    Some(bad.0),
                    &options(&[("connector", bad.0), (bad.1, bad.2)]),
                )
                .unwrap_err();
            assert_eq!(e.sqlstate(), "42501", "{bad:?}");
            assert!(e.to_string().contains("--allow-hosts"), "{e}");
        }
        assert!(
            hosts
                .check(
                    Some("socket"),
                    &options(&[("connector", "socket"), ("port", "9")])
                )
                .is_err(),
            "a socket without host connects to 127.0.0.1"
        );
        assert!(
            sandbox
                .check(
                    Some("socket"),
                    &options(&[("connector", "socket"), ("host", "anywhere")])
                )
                .is_ok(),
            "no --allow-hosts: any host"
        );
        let inside = allowed.join("in.jsonl").display().to_string();
        sandbox
            .check(Some("file"), &options(&[("path", &inside)]))
            .unwrap();
        let new_dir = allowed.join("new/out.jsonl").display().to_string();
        sandbox
            .check(Some("file"), &options(&[("path", &new_dir)]))
            .unwrap();
        for bad in [
            "/etc/passwd".to_string(),
            "/proc/self/environ".to_string(),
            allowed.join("../../etc/passwd").display().to_string(),
        ] {
            let err = sandbox
                .check(Some("file"), &options(&[("path", &bad)]))
                .unwrap_err();
            assert_eq!(err.sqlstate(), "42501", "{bad}: {err}");
            assert!(err.to_string().contains("--allow-file-dir"), "{err}");
        }
        // A link inside the allowed directory does not lead out of it.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", allowed.join("etc")).unwrap();
            let via_link = allowed.join("etc/passwd").display().to_string();
            assert!(sandbox
                .check(Some("file"), &options(&[("path", &via_link)]))
                .is_err());
        }
        assert!(sandbox
            .check(Some("kafka"), &options(&[("dead_letter", "/tmp/x")]))
            .is_err());
        assert!(sandbox
            .check(
                Some("kafka"),
                &options(&[("properties.ssl.ca.location", "/etc/ssl/ca.pem")])
            )
            .is_err());
        assert!(sandbox
            .check(
                Some("kafka"),
                &options(&[("properties.plugin.library.paths", &inside)])
            )
            .is_ok());
        // Other connectors' `path`-less options are not files.
        sandbox
            .check(Some("kafka"), &options(&[("topic", "/etc/passwd")]))
            .unwrap();
    }
}
