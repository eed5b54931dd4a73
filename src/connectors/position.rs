//! Source positions kept in the data directory, for sources that have no
//! store of their own (Kafka keeps its offsets in the consumer group).
//!
//! One small JSON file per pipeline, `positions/<pipeline>.json`, replaced
//! atomically. A position is acknowledged once the pipeline's sink has
//! written everything before it; acknowledgements are written at most once
//! a second and always when the pipeline ends, so a clean stop loses none.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, SluiceError};

/// How often acknowledged positions reach the disk while a pipeline runs.
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// The directory under the data directory that holds positions.
pub const DIR: &str = "positions";

#[derive(Clone)]
pub struct PositionFile {
    path: PathBuf,
    source: Arc<str>,
    pending: Arc<Mutex<Pending>>,
}

struct Pending {
    value: Option<serde_json::Value>,
    written: Instant,
}

impl PositionFile {
    pub fn new(data_dir: &Path, pipeline: &str, source: &str) -> PositionFile {
        PositionFile {
            path: path_of(data_dir, pipeline),
            source: source.into(),
            pending: Arc::new(Mutex::new(Pending {
                value: None,
                written: Instant::now(),
            })),
        }
    }

    /// The position the last run acknowledged, if any. A file that cannot
    /// be read or parsed is an error naming it: guessing could repeat or
    /// skip input.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SluiceError::io(
                    format!("reading source position {}", self.path.display()),
                    e,
                ))
            }
        };
        let stored: Stored<T> = serde_json::from_str(&text).map_err(|e| {
            SluiceError::Catalog(format!(
                "source position {} is damaged ({e}); delete it to read source '{}' from its start",
                self.path.display(),
                self.source
            ))
        })?;
        Ok(Some(stored.position))
    }

    /// Records a position the sink has acknowledged; written now if the last
    /// write is a second old.
    pub fn ack<T: Serialize>(&self, position: &T) {
        let value = match serde_json::to_value(position) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot encode source position");
                return;
            }
        };
        let due = match self.pending.lock() {
            Ok(mut p) => {
                p.value = Some(value);
                p.written.elapsed() >= WRITE_EVERY
            }
            Err(_) => false,
        };
        if due {
            self.write();
        }
    }

    /// Writes the latest acknowledged position, if one is pending.
    pub fn write(&self) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let Some(position) = pending.value.take() else {
            return;
        };
        pending.written = Instant::now();
        let stored = Stored {
            source: self.source.to_string(),
            position,
        };
        if let Err(e) = write_atomically(&self.path, &stored) {
            // The pipeline goes on; a restart would re-read from the last
            // position that did reach the disk.
            tracing::warn!(source = %self.source, error = %e, "cannot save source position");
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored<T> {
    source: String,
    position: T,
}

fn path_of(data_dir: &Path, pipeline: &str) -> PathBuf {
    data_dir.join(DIR).join(format!("{pipeline}.json"))
}

fn write_atomically<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let io = |what: &str, e| SluiceError::io(format!("{what} {}", path.display()), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(value)
        .map_err(|e| SluiceError::Internal(format!("encoding source position: {e}")))?;
    std::fs::write(&tmp, text).map_err(|e| io("writing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))
}

/// Forgets a dropped pipeline's positions (its first input's, and those of
/// its other inputs, `<pipeline>@<n>.json`), so a new one of the same name
/// starts afresh.
pub fn remove(data_dir: &Path, pipeline: &str) {
    let mut paths = vec![path_of(data_dir, pipeline)];
    let prefix = format!("{pipeline}@");
    if let Ok(entries) = std::fs::read_dir(data_dir.join(DIR)) {
        paths.extend(entries.flatten().map(|e| e.path()).filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json"))
        }));
    }
    for path in paths {
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove source position");
            }
        }
    }
}

/// Forgets every pipeline's position (starting over).
pub fn remove_all(data_dir: &Path) -> Result<()> {
    let dir = data_dir.join(DIR);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SluiceError::io(
            format!("removing source positions {}", dir.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_positions_survive_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = PositionFile::new(dir.path(), "p", "src");
        assert_eq!(f.load::<u64>().unwrap(), None);
        f.ack(&41u64);
        f.ack(&42u64);
        f.write();
        assert_eq!(f.load::<u64>().unwrap(), Some(42));
        std::fs::write(path_of(dir.path(), "p"), "{").unwrap();
        let err = f.load::<u64>().unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("'src'"), "{err}");
        remove(dir.path(), "p");
        assert_eq!(f.load::<u64>().unwrap(), None);
    }
}
