//! One error type for the engine. The variant says whose fault it is: the
//! user's SQL (`Parse`, `Plan`, `Options`, `Catalog`, `NotSupported`), the
//! outside world (`Io`, `Kafka`, `Connector`), or ours (`Internal`).
//! SQLSTATE codes are chosen in exactly one place: [`SluiceError::sqlstate`];
//! a hint (PostgreSQL's HINT field) rides on any of them as [`SluiceError::Hinted`].

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SluiceError {
    /// The SQL text does not parse.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Parse {
        message: String,
        line: u64,
        column: u64,
    },
    /// The statement parses but cannot be planned (unknown column, wrong type…).
    #[error("{0}")]
    Plan(String),
    /// A WITH option is unknown, missing or has a bad value.
    #[error("{0}")]
    Options(String),
    /// A relation is unknown, or the catalog cannot be read.
    #[error("{0}")]
    Catalog(String),
    /// A name is already taken (a relation, role, function or cursor).
    #[error("{0}")]
    Duplicate(String),
    /// An object other than a relation (a role) is unknown.
    #[error("{0}")]
    UndefinedObject(String),
    /// Saved state does not fit what runs now (a checkpoint of another
    /// version of a query).
    #[error("{0}")]
    StateMismatch(String),
    /// A DROP refused because other objects read the one being dropped.
    #[error("{0}")]
    Dependents(String),
    /// Valid SQL that Sluice does not run (yet).
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("{}", datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
    #[error("{}", arrow_message(.0))]
    Arrow(#[from] ArrowError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A connector failed at run time for a reason that is not an I/O error.
    #[error("{0}")]
    Connector(String),
    /// A statement past what the planner can take (PostgreSQL's "statement
    /// too complex").
    #[error("{0}")]
    TooComplex(String),
    /// Something the server does not let a client do (a file outside the
    /// allowed directories).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A sink's destination already holds output newer than the checkpoint
    /// being restored: running on would write it again (exactly-once
    /// would break), so the sink refuses to start.
    #[error("{0}")]
    AheadOfCheckpoint(String),
    /// A bug in Sluice.
    #[error("internal error: {0} (this is a bug in Sluice)")]
    Internal(String),
    /// An error with a suggestion for the user (`did you mean GROUP?`). The
    /// error inside says whose fault it is; the wire server sends the hint
    /// in its own field, text output shows it after the message.
    #[error("{error} ({hint})")]
    Hinted {
        error: Box<SluiceError>,
        hint: String,
    },
}

impl SluiceError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SluiceError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        SluiceError::Kafka {
            context: context.into(),
            source,
        }
    }

    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        SluiceError::Hinted {
            error: Box::new(self),
            hint: hint.into(),
        }
    }

    /// The suggestion that goes with the error, if there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            SluiceError::Hinted { hint, .. } => Some(hint),
            _ => None,
        }
    }

    /// The error itself, without its hint: what to match on.
    pub fn unhinted(&self) -> &SluiceError {
        match self {
            SluiceError::Hinted { error, .. } => error.unhinted(),
            other => other,
        }
    }

    /// The PostgreSQL error code for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SluiceError::Hinted { error, .. } => error.sqlstate(),
            SluiceError::Parse { .. } => "42601",
            SluiceError::Plan(_) => "42P20",
            SluiceError::Options(_) => "22023",
            SluiceError::Catalog(_) => "42P01",
            SluiceError::Duplicate(_) => "42710",
            SluiceError::UndefinedObject(_) => "42704",
            SluiceError::StateMismatch(_) => "55000",
            SluiceError::Dependents(_) => "2BP01",
            SluiceError::NotSupported(_) => "0A000",
            SluiceError::DataFusion(e) => datafusion_sqlstate(e),
            SluiceError::Arrow(e) => arrow_sqlstate(e),
            SluiceError::Io { .. } => "58030",
            SluiceError::Kafka { .. } | SluiceError::Connector(_) => "08000",
            SluiceError::TooComplex(_) => "54001",
            SluiceError::PermissionDenied(_) => "42501",
            // PostgreSQL's data_corrupted.
            SluiceError::AheadOfCheckpoint(_) => "XX001",
            SluiceError::Internal(_) => "XX000",
        }
    }
}

/// A DataFusion error's SQLSTATE. Only DataFusion's own `Internal` is
/// XX000: whatever else fails while planning or running a statement failed
/// on the statement or its data.
fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    match e.find_root() {
        DataFusionError::SchemaError(_, _) => "42703",
        DataFusionError::Plan(msg) if msg.contains("Invalid function") => "42883",
        DataFusionError::Plan(msg) if msg.contains("No function matches") => "42883",
        DataFusionError::Plan(_) => "42P20",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::SQL(_, _) => "42601",
        DataFusionError::ArrowError(e, _) => arrow_sqlstate(e),
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::Configuration(_) => "22023",
        DataFusionError::Execution(msg) => execution_sqlstate(msg),
        // Our functions' errors carry their code.
        DataFusionError::External(e) => {
            crate::functions::error::sqlstate_of(e.as_ref()).unwrap_or("XX000")
        }
        // DataFusion calls some type errors in a user's expression its own
        // (a nested call no signature fits): to the user they are a type
        // mismatch, as PostgreSQL would say.
        DataFusionError::Internal(msg) if is_type_error(msg) => "42804",
        DataFusionError::Internal(_) => "XX000",
        _ => "XX000",
    }
}

/// Whether DataFusion's "internal" error is about the types of a user's
/// expression.
fn is_type_error(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    [
        "signature",
        "coerc",
        "argument",
        "data type",
        "datatype",
        "cannot infer",
        "type mismatch",
        "expected type",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

/// An Arrow kernel's error on a statement's data.
fn arrow_sqlstate(e: &ArrowError) -> &'static str {
    match e {
        ArrowError::DivideByZero => "22012",
        ArrowError::ArithmeticOverflow(_) => "22003",
        ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
        ArrowError::MemoryError(_) => "53200",
        ArrowError::NotYetImplemented(_) => "0A000",
        ArrowError::InvalidArgumentError(_) | ArrowError::ComputeError(_) => "22023",
        ArrowError::IoError(_, _) => "58030",
        _ => "22000",
    }
}

/// Errors DataFusion's own functions raised on their arguments. Ours are
/// typed (`functions::error`); DataFusion's carry only a message, so its
/// words choose the code.
fn execution_sqlstate(msg: &str) -> &'static str {
    let msg = msg.to_ascii_lowercase();
    if msg.contains("divide by zero") || msg.contains("division by zero") {
        "22012"
    } else if msg.contains("overflow") || msg.contains("out of range") {
        "22003"
    } else {
        "22023"
    }
}

/// A DataFusion error as the user reads it: our functions' errors as they
/// word them, without DataFusion's "External error: ", and an Arrow
/// kernel's error on the statement's data without "Arrow error: ".
fn datafusion_message(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::External(inner)
            if crate::functions::error::sqlstate_of(inner.as_ref()).is_some() =>
        {
            inner.to_string()
        }
        DataFusionError::ArrowError(inner, _) => arrow_message(inner),
        _ => e.to_string(),
    }
}

/// An Arrow kernel's error, in PostgreSQL's words where it has them.
fn arrow_message(e: &ArrowError) -> String {
    match e {
        ArrowError::DivideByZero => "division by zero".to_string(),
        other => other.to_string(),
    }
}

impl From<datafusion::sql::sqlparser::parser::ParserError> for SluiceError {
    fn from(e: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        use datafusion::sql::sqlparser::parser::ParserError;
        let text = match e {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => "statement nests too deeply".to_string(),
        };
        // sqlparser appends " at Line: L, Column: C"; lift it into fields.
        let (message, line, column) = split_location(&text);
        SluiceError::Parse {
            message,
            line,
            column,
        }
    }
}

fn split_location(text: &str) -> (String, u64, u64) {
    if let Some(idx) = text.rfind(" at Line: ") {
        let tail = &text[idx + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse().ok());
        let column = parts.next().and_then(|c| c.trim().parse().ok());
        if let (Some(line), Some(column)) = (line, column) {
            return (text[..idx].to_string(), line, column);
        }
    }
    (text.to_string(), 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_location_is_lifted() {
        let (m, l, c) = split_location("Expected: ), found: x at Line: 3, Column: 7");
        assert_eq!((m.as_str(), l, c), ("Expected: ), found: x", 3, 7));
    }

    #[test]
    fn a_hint_keeps_the_error_it_is_about() {
        let e = SluiceError::Parse {
            message: "expected end of statement (;), found 'BY'".into(),
            line: 1,
            column: 28,
        }
        .with_hint("did you mean GROUP?");
        assert_eq!(e.sqlstate(), "42601");
        assert_eq!(e.hint(), Some("did you mean GROUP?"));
        assert!(matches!(
            e.unhinted(),
            SluiceError::Parse { column: 28, .. }
        ));
        assert_eq!(
            e.to_string(),
            "syntax error at line 1, column 28: expected end of statement (;), found 'BY' \
             (did you mean GROUP?)"
        );
    }

    #[test]
    fn an_arrow_kernels_error_reads_as_postgresql_words_it() {
        let e = SluiceError::from(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert_eq!(
            (e.sqlstate(), e.to_string().as_str()),
            ("22012", "division by zero")
        );
        let e = SluiceError::from(DataFusionError::Context(
            "projection".into(),
            Box::new(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None,
            )),
        ));
        assert_eq!(e.to_string(), "division by zero");
        let e = SluiceError::from(ArrowError::DivideByZero);
        assert_eq!(
            (e.sqlstate(), e.to_string().as_str()),
            ("22012", "division by zero")
        );
    }
}
