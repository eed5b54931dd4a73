//! Errors our functions raise on their arguments, each with the SQLSTATE
//! PostgreSQL gives it. They travel through DataFusion as
//! `DataFusionError::External`, so the wire layer reads the code from the
//! type (`crate::error`), never from the message.

use datafusion::error::DataFusionError;

use super::pg_datetime::DateTimeError;

/// A function's error on its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    pub sqlstate: &'static str,
    pub message: String,
}

impl FunctionError {
    /// 22008 datetime_field_overflow: a date, time or timestamp out of
    /// range.
    pub fn datetime_overflow(message: impl Into<String>) -> Self {
        Self::new("22008", message)
    }

    /// 22P02 invalid_text_representation: text that does not parse as the
    /// type asked for (JSON, an array literal).
    pub fn invalid_text(message: impl Into<String>) -> Self {
        Self::new("22P02", message)
    }

    /// 22023 invalid_parameter_value.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("22023", message)
    }

    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        FunctionError {
            sqlstate,
            message: message.into(),
        }
    }
}

impl From<FunctionError> for DataFusionError {
    fn from(e: FunctionError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl From<DateTimeError> for DataFusionError {
    fn from(e: DateTimeError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl DateTimeError {
    /// PostgreSQL's SQLSTATE for it.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            DateTimeError::FieldOutOfRange(_)
            | DateTimeError::ValueOutOfRange { .. }
            | DateTimeError::TimestampOutOfRange
            | DateTimeError::DateOutOfRange(_)
            | DateTimeError::IntervalOutOfRange => "22008",
            DateTimeError::TimeZoneDisplacement(_) => "22009",
            DateTimeError::OnlyInToChar(_) => "0A000",
            DateTimeError::InvalidValue { .. }
            | DateTimeError::SourceTooShort { .. }
            | DateTimeError::ConflictingValues { .. }
            | DateTimeError::MixedDateConventions
            | DateTimeError::InvalidTwelveHour(_)
            | DateTimeError::InvalidYearWithComma
            | DateTimeError::DayOfYearWithoutYear
            | DateTimeError::NotForInterval => "22007",
        }
    }
}

/// The SQLSTATE of an error raised through DataFusion as `External`, when
/// it is one of ours.
pub fn sqlstate_of(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<&'static str> {
    if let Some(f) = e.downcast_ref::<FunctionError>() {
        return Some(f.sqlstate);
    }
    e.downcast_ref::<DateTimeError>()
        .map(DateTimeError::sqlstate)
}
