//! Session rows node: rows of a SESSION window that the query does not
//! group by their window wait for their session to close, then go on with
//! its bounds (`window_start`, `window_end`).

/// Holds rows until their session (gap `gap` ms) closes; the session's
/// bounds go in columns `start` and `end`.
#[derive(Debug, Clone, Copy)]
pub struct SessionRowsNode {
    pub gap: i64,
    pub start: usize,
    pub end: usize,
}
