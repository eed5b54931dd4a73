//! Errors as the client reads them: the one place a [`SluiceError`] becomes
//! a PostgreSQL error response (SQLSTATE from `SluiceError::sqlstate`,
//! message, position, hint), and the errors the server raises itself.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::SluiceError;

/// A SluiceError as the client sees it: SQLSTATE, message, position, hint.
pub fn error_info(e: &SluiceError) -> ErrorInfo {
    // The hint goes in its own field, not after the message as in text.
    let message = e.unhinted().to_string();
    let mut info = ErrorInfo::new("ERROR".into(), e.sqlstate().into(), message);
    if let SluiceError::Parse { line, column, .. } = e.unhinted() {
        // Statements from clients are mostly one line; the position is a
        // 1-based character offset into the statement.
        if *line == 1 {
            info.position = Some(column.to_string());
        }
        info.hint = Some("check the statement against the SQL reference in README.md".into());
    }
    if let Some(hint) = e.hint() {
        info.hint = Some(hint.to_string());
    }
    info
}

pub(super) fn pg_error(e: SluiceError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// An error the server itself answers with, by SQLSTATE.
pub(super) fn pg_error_code(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

pub(super) fn statement_timeout() -> PgWireError {
    pg_error_code("57014", "canceling statement due to statement timeout")
}
