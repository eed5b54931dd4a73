//! `UNION ALL`: the rows of every input, as they come. Its watermark is the
//! least of its inputs' (an input that ended no longer holds it back), and
//! its output is updating when any input is.

/// Merges its inputs' rows; they have the same columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnionNode;
