//! The data directory: `catalog.json` lists every source, view and sink with
//! the SQL that created it, in creation order; a restart replays that list.
//! The file is replaced atomically (written aside, then renamed), and a lock
//! file keeps two processes from sharing one directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};

pub use crate::sql::ObjectKind as Kind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub kind: Kind,
    pub name: String,
    pub sql: String,
}

impl Definition {
    pub fn new(kind: Kind, name: &str, sql: &str) -> Self {
        Definition {
            kind,
            name: name.to_string(),
            sql: sql.trim().trim_end_matches(';').trim().to_string(),
        }
    }

    /// Whether `sql` defines the same thing (ignoring layout).
    pub fn same_sql(&self, sql: &str) -> bool {
        normalize(&self.sql) == normalize(sql.trim().trim_end_matches(';'))
    }
}

fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Serialize, Deserialize)]
struct CatalogFile {
    version: u32,
    definitions: Vec<Definition>,
}

/// A data directory, locked for this process while the value lives.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) and locks `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "create the data directory", e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path)
            .map_err(|e| io_error(&lock_path, "create the lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SluiceError::Catalog(format!(
                    "the data directory {} is in use by another sluice process; \
                     stop it or pass a different --data-dir",
                    dir.display()
                )))
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io_error(&lock_path, "lock the data directory", e))
            }
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn catalog_path(&self) -> PathBuf {
        self.dir.join("catalog.json")
    }

    /// The stored definitions, in creation order (none for a new directory).
    pub fn load(&self) -> Result<Vec<Definition>> {
        let path = self.catalog_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_error(&path, "read the catalog", e)),
        };
        let file: CatalogFile = serde_json::from_str(&text).map_err(|e| {
            SluiceError::Catalog(format!(
                "{} is not a valid catalog ({e}); move it away to start afresh",
                path.display()
            ))
        })?;
        if file.version != 1 {
            return Err(SluiceError::Catalog(format!(
                "{} has catalog version {}, this sluice reads version 1",
                path.display(),
                file.version
            )));
        }
        Ok(file.definitions)
    }

    /// Forgets the stored definitions: the next start restores nothing.
    pub fn discard(&self) -> Result<()> {
        let path = self.catalog_path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, "remove the catalog", e)),
        }
    }

    /// Replaces the stored definitions.
    pub fn save(&self, definitions: &[Definition]) -> Result<()> {
        let path = self.catalog_path();
        let tmp = self.dir.join("catalog.json.tmp");
        let text = serde_json::to_string_pretty(&CatalogFile {
            version: 1,
            definitions: definitions.to_vec(),
        })
        .map_err(|e| SluiceError::Internal(format!("encoding the catalog: {e}")))?;
        let write = || -> std::io::Result<()> {
            // Owner-only: definitions may hold passwords given as literals
            // (`secret('ENV')` keeps them out altogether).
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| io_error(&path, "write the catalog", e))
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> SluiceError {
    SluiceError::Catalog(format!("cannot {what} at {}: {e}", path.display()))
}
