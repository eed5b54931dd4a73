//! Scripts: a file of statements, checked whole before anything runs.

use std::fmt;

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
            Outcome::Start(spec) => prepared.pipelines.push(*spec),
            other => prepared.outputs.push((located.sql, other)),
        }
    }
    Ok(prepared)
}
