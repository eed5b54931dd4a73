//! One error type for the engine. The variant says whose fault it is: the
//! user's SQL (`Parse`, `Plan`, `Options`, `Catalog`, `NotSupported`), the
//! outside world (`Io`, `Kafka`, `Connector`), or ours (`Internal`).
//! SQLSTATE codes are chosen in exactly one place: [`SluiceError::sqlstate`].

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
    /// A name is unknown or already taken.
    #[error("{0}")]
    Catalog(String),
    /// A DROP refused because other objects read the one being dropped.
    #[error("{0}")]
    Dependents(String),
    /// Valid SQL that Sluice does not run (yet).
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
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
    /// A bug in Sluice.
    #[error("internal error: {0} (this is a bug in Sluice)")]
    Internal(String),
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

    /// The PostgreSQL error code for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SluiceError::Parse { .. } => "42601",
            SluiceError::Plan(_) => "42P20",
            SluiceError::Options(_) => "22023",
            SluiceError::Catalog(msg) if msg.contains("already exists") => "42710",
            SluiceError::Catalog(_) => "42P01",
            SluiceError::Dependents(_) => "2BP01",
            SluiceError::NotSupported(_) => "0A000",
            SluiceError::DataFusion(e) => match e.find_root() {
                DataFusionError::SchemaError(_, _) => "42703",
                DataFusionError::Plan(_) => "42P20",
                DataFusionError::NotImplemented(_) => "0A000",
                DataFusionError::SQL(_, _) => "42601",
                _ => "XX000",
            },
            SluiceError::Arrow(_) => "22000",
            SluiceError::Io { .. } => "58030",
            SluiceError::Kafka { .. } | SluiceError::Connector(_) => "08000",
            SluiceError::Internal(_) => "XX000",
        }
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
}
