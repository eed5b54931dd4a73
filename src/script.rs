//! Scripts: a file of statements, checked whole before anything runs; and
//! where a script's state is kept between runs.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::{Engine, Outcome};
use crate::error::SluiceError;
use crate::runtime::PipelineSpec;
use crate::sql;

/// A statement that failed, with where it is in the script.
#[derive(Debug)]
pub struct ScriptError {
    /// 1-based statement number (0 when the script does not parse).
    pub statement: usize,
    pub line: u64,
    pub sql: String,
    pub error: SluiceError,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.statement == 0 {
            return write!(f, "{}", self.error);
        }
        let first_line = self.sql.lines().next().unwrap_or_default();
        write!(
            f,
            "statement {} (line {}) failed: {}\n  {}{}",
            self.statement,
            self.line,
            self.error,
            first_line,
            if self.sql.lines().count() > 1 {
                " …"
            } else {
                ""
            }
        )
    }
}

impl std::error::Error for ScriptError {}

/// Output of preparing a script: rows to print, pipelines to start, and
/// ad-hoc queries to run once their views' inputs are consumed.
#[derive(Default)]
pub struct Prepared {
    pub outputs: Vec<(String, Outcome)>,
    pub pipelines: Vec<PipelineSpec>,
}

/// Parses and validates every statement, applying DDL to the catalog.
pub async fn prepare(engine: &mut Engine, text: &str) -> Result<Prepared, ScriptError> {
    let statements = sql::parse_script(text).map_err(|error| {
        let line = match error.unhinted() {
            SluiceError::Parse { line, .. } => *line,
            _ => 0,
        };
        ScriptError {
            statement: 0,
            line,
            sql: String::new(),
            error,
        }
    })?;
    let mut prepared = Prepared::default();
    for (i, located) in statements.into_iter().enumerate() {
        let outcome = engine
            .prepare(located.statement, &located.sql)
            .await
            .map_err(|error| ScriptError {
                statement: i + 1,
                line: located.line,
                sql: located.sql.clone(),
                error,
            })?;
        match outcome {
            Outcome::Start(spec) => {
                for notice in spec.plan.notices() {
                    tracing::warn!(pipeline = %spec.name, line = located.line, "{notice}");
                }
                prepared.pipelines.push(*spec)
            }
            other => prepared.outputs.push((located.sql, other)),
        }
    }
    Ok(prepared)
}

/// The data directory of `sluice serve`, and the parent of each script's own.
pub const DATA_ROOT: &str = "sluice-data";

/// The mark a run leaves in its data directory when it ended by itself.
const FINISHED: &str = "FINISHED";

/// Where `sluice run FILE` keeps its state unless told otherwise:
/// `sluice-data/<file name without .sql>`, so that scripts do not restore
/// each other's objects.
pub fn default_data_dir(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "script".into());
    // Not a name `sluice serve` uses in the same directory.
    let name = match stem.as_str() {
        "checkpoints" | "positions" => format!("{stem}-script"),
        _ => stem,
    };
    Path::new(DATA_ROOT).join(name)
}

/// Whether the last run on `data_dir` ended by itself: every source read to
/// its end, no failure, no Ctrl-C.
pub fn finished(data_dir: &Path) -> bool {
    data_dir.join(FINISHED).exists()
}

/// Records that the run of `script` on `data_dir` ended by itself.
pub fn mark_finished(data_dir: &Path, script: &str) -> std::io::Result<()> {
    std::fs::write(
        data_dir.join(FINISHED),
        format!("{script} read all its input; its next run starts over\n"),
    )
}

/// A run starts: until it ends by itself, it is one to resume.
pub fn clear_finished(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(FINISHED)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_script_has_a_directory_of_its_own() {
        assert_eq!(
            default_data_dir(Path::new("queries/demo.sql")),
            Path::new("sluice-data/demo")
        );
        assert_eq!(
            default_data_dir(Path::new("/elsewhere/q5.sql")),
            Path::new("sluice-data/q5")
        );
        // Not the directories `sluice serve` keeps in sluice-data itself.
        assert_eq!(
            default_data_dir(Path::new("checkpoints.sql")),
            Path::new("sluice-data/checkpoints-script")
        );
    }

    #[test]
    fn a_finished_run_is_marked_until_the_next_one_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!finished(dir.path()));
        clear_finished(dir.path()).expect("nothing to clear");
        mark_finished(dir.path(), "demo.sql").expect("mark");
        assert!(finished(dir.path()));
        clear_finished(dir.path()).expect("clear");
        assert!(!finished(dir.path()));
    }
}
