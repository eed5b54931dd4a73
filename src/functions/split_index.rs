//! Flink's `split_index(text, delimiter, index)`: the `index`-th (from 0)
//! piece of `text` cut at every `delimiter`. PostgreSQL's `split_part`
//! (1-based, negative from the end, `''` when out of range) is
//! DataFusion's own and needs nothing here.
//!
//! Flink semantics (`SqlFunctionUtils.splitIndex`, commons-lang's
//! `splitByWholeSeparatorPreserveAllTokens`), kept exactly:
//! * a negative or too large index, an empty text and any NULL give NULL;
//! * empty pieces count (`split_index('a,,b', ',', 1)` is `''`);
//! * an empty delimiter splits at every whitespace character (Java's
//!   `Character.isWhitespace`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{internal_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{finish, shape, type_list, NumArg, TextArg};
use super::is_text;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SplitIndex {
    signature: Signature,
}

impl SplitIndex {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SplitIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for SplitIndex {
    fn name(&self) -> &str {
        "split_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [text, delimiter, index]
                if is_text(text)
                    && is_text(delimiter)
                    && (index.is_integer() || index.is_null()) =>
            {
                Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
            }
            _ => plan_err!(
                "function split_index({}) does not exist; it takes (text, text, integer)",
                type_list(arg_types)
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let [text, delimiter, index] = args.args.as_slice() else {
            return internal_err!("split_index takes 3 arguments, got {}", args.args.len());
        };
        let (text, delimiter) = (TextArg::new(text)?, TextArg::new(delimiter)?);
        let index = NumArg::<Int64Type>::new(index)?;
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            let piece = match (text.get(row), delimiter.get(row), index.get(row)) {
                (Some(text), Some(delimiter), Some(index)) => split_index(text, delimiter, index),
                _ => None,
            };
            out.append_option(piece);
        }
        finish(Arc::new(out.finish()) as ArrayRef, scalar)
    }
}

/// The `index`-th piece, as Flink picks it.
fn split_index<'t>(text: &'t str, delimiter: &str, index: i64) -> Option<&'t str> {
    let index = usize::try_from(index).ok()?;
    if text.is_empty() {
        return None;
    }
    if delimiter.is_empty() {
        text.split(java_whitespace).nth(index)
    } else {
        text.split(delimiter).nth(index)
    }
}

/// Java's `Character.isWhitespace`: Unicode space separators other than
/// the no-break spaces, line and paragraph separators, and the ASCII
/// controls `\t \n \x0B \x0C \r \x1C-\x1F`.
fn java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{1680}'
            | '\u{2000}'..='\u{2006}'
            | '\u{2008}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_examples() {
        // Flink's documented example and its edge cases.
        assert_eq!(split_index("Jack,John,Mary", ",", 2), Some("Mary"));
        assert_eq!(split_index("Jack,John,Mary", ",", 3), None);
        assert_eq!(split_index("Jack,John,Mary", ",", -1), None);
        assert_eq!(split_index("a,,b", ",", 1), Some(""));
        assert_eq!(split_index("a,b,", ",", 2), Some(""));
        assert_eq!(split_index(",a", ",", 0), Some(""));
        assert_eq!(split_index("", ",", 0), None);
        assert_eq!(split_index("abc", ",", 0), Some("abc"));
        assert_eq!(split_index("a::b::c", "::", 1), Some("b"));
    }

    #[test]
    fn empty_delimiter_splits_at_whitespace() {
        assert_eq!(split_index("a b\tc", "", 2), Some("c"));
        assert_eq!(split_index("a  b", "", 1), Some(""));
        // A no-break space is not whitespace to Java.
        assert_eq!(split_index("a\u{A0}b c", "", 0), Some("a\u{A0}b"));
    }
}
