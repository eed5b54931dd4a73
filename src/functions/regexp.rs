//! Regular-expression functions users bring from Flink and PostgreSQL:
//!
//! * `regexp_extract(text, pattern [, group])` (Flink): group `group` (0,
//!   the default, is the whole match) of the first match; NULL when the
//!   pattern does not match or the group took no part in the match.
//! * `regexp_matches(text, pattern [, flags])` (PostgreSQL, without `g`):
//!   the first match's capture groups as `text[]` (the whole match when
//!   the pattern has no groups), NULL elements for groups that took no
//!   part; PostgreSQL's option letters are honoured (`.` matches a newline
//!   unless `n`/`p` says otherwise, as in PostgreSQL).
//!
//! DataFusion's `regexp_match` is not an alias for `regexp_matches`: it
//! drops groups that took no part in the match, so later groups shift
//! left (`(a)(x)?(b)` on `ab` gives `[a, b]`, PostgreSQL `{a,NULL,b}`).
//!
//! Patterns are compiled by DataFusion's `compile_regex` (Rust's `regex`
//! syntax: no look-around or back-references, which Java and PostgreSQL
//! have). A constant pattern is compiled once per batch, a pattern column
//! again only where its value changes.
//!
//! Where we differ: PostgreSQL's `regexp_matches` is set-returning, so a
//! row without a match disappears there and is NULL here; the `g` flag
//! (one row per match) is refused. Flink returns NULL for an invalid
//! pattern or a group index the pattern does not have; both are errors
//! here, since a NULL would hide the mistake.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{exec_err, internal_err, not_impl_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::regex::compile_regex;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{finish, shape, type_list, NumArg, TextArg};
use super::is_text;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for RegexpExtract {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
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
            [text, pattern] if is_text(text) && is_text(pattern) => {
                Ok(vec![DataType::Utf8, DataType::Utf8])
            }
            [text, pattern, group]
                if is_text(text) && is_text(pattern) && (group.is_integer() || group.is_null()) =>
            {
                Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
            }
            _ => plan_err!(
                "function regexp_extract({}) does not exist; it takes (text, text [, integer])",
                type_list(arg_types)
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let (text, pattern, group) = match args.args.as_slice() {
            [text, pattern] => (TextArg::new(text)?, TextArg::new(pattern)?, None),
            [text, pattern, group] => (
                TextArg::new(text)?,
                TextArg::new(pattern)?,
                Some(NumArg::<Int64Type>::new(group)?),
            ),
            other => return internal_err!("regexp_extract got {} arguments", other.len()),
        };
        let mut cache = PatternCache::default();
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            let group = match &group {
                None => Some(0),
                Some(group) => group.get(row),
            };
            let (Some(text), Some(pattern), Some(group)) = (text.get(row), pattern.get(row), group)
            else {
                out.append_null();
                continue;
            };
            let re = cache.get(pattern, "", |pattern, _| {
                compile_regex(pattern, None).map_err(|_| invalid_pattern(pattern))
            })?;
            let groups = re.captures_len() - 1;
            let group = match usize::try_from(group) {
                Ok(g) if g <= groups => g,
                _ => {
                    return exec_err!(
                        "regexp_extract: group {group} does not exist; the pattern has \
                         {groups} capture group(s) (0 is the whole match)"
                    )
                }
            };
            let found = if group == 0 {
                re.find(text).map(|m| m.as_str())
            } else {
                re.captures(text)
                    .and_then(|c| c.get(group))
                    .map(|m| m.as_str())
            };
            out.append_option(found);
        }
        finish(Arc::new(out.finish()) as ArrayRef, scalar)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpMatches {
    signature: Signature,
}

impl RegexpMatches {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for RegexpMatches {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for RegexpMatches {
    fn name(&self) -> &str {
        "regexp_matches"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if (2..=3).contains(&arg_types.len()) && arg_types.iter().all(is_text) {
            return Ok(vec![DataType::Utf8; arg_types.len()]);
        }
        plan_err!(
            "function regexp_matches({}) does not exist; it takes (text, text [, text])",
            type_list(arg_types)
        )
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let (text, pattern, flags) = match args.args.as_slice() {
            [text, pattern] => (TextArg::new(text)?, TextArg::new(pattern)?, None),
            [text, pattern, flags] => (
                TextArg::new(text)?,
                TextArg::new(pattern)?,
                Some(TextArg::new(flags)?),
            ),
            other => return internal_err!("regexp_matches got {} arguments", other.len()),
        };
        let mut cache = PatternCache::default();
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            let flags = match &flags {
                None => Some(""),
                Some(flags) => flags.get(row),
            };
            let (Some(text), Some(pattern), Some(flags)) = (text.get(row), pattern.get(row), flags)
            else {
                out.append_null();
                continue;
            };
            let re = cache.get(pattern, flags, |pattern, flags| {
                let (rust_pattern, rust_flags) = postgres_pattern(pattern, flags)?;
                compile_regex(&rust_pattern, Some(&rust_flags))
                    .map_err(|_| invalid_pattern(pattern))
            })?;
            let Some(captures) = re.captures(text) else {
                out.append_null();
                continue;
            };
            if captures.len() == 1 {
                out.values()
                    .append_option(captures.get(0).map(|m| m.as_str()));
            } else {
                for group in 1..captures.len() {
                    out.values()
                        .append_option(captures.get(group).map(|m| m.as_str()));
                }
            }
            out.append(true);
        }
        finish(Arc::new(out.finish()) as ArrayRef, scalar)
    }
}

/// The last (pattern, flags) compiled in this batch and its regex. The
/// regex type is whatever `compile_regex` returns, so it is generic here.
struct PatternCache<R> {
    last: Option<(String, String, R)>,
}

impl<R> Default for PatternCache<R> {
    fn default() -> Self {
        Self { last: None }
    }
}

impl<R> PatternCache<R> {
    fn get(
        &mut self,
        pattern: &str,
        flags: &str,
        compile: impl FnOnce(&str, &str) -> Result<R>,
    ) -> Result<&R> {
        let hit = matches!(&self.last, Some((p, f, _)) if p == pattern && f == flags);
        if !hit {
            self.last = Some((
                pattern.to_owned(),
                flags.to_owned(),
                compile(pattern, flags)?,
            ));
        }
        match &self.last {
            Some((_, _, re)) => Ok(re),
            None => internal_err!("pattern cache is empty after compiling"),
        }
    }
}

/// The error for a pattern `regex` does not accept (`compile_regex`'s own
/// error drops the reason).
fn invalid_pattern(pattern: &str) -> DataFusionError {
    DataFusionError::Execution(format!("invalid regular expression: {pattern}"))
}

/// A PostgreSQL pattern and option letters (`regexp_matches`'s `flags`)
/// as a Rust pattern and the flags `compile_regex` puts in front of it.
///
/// PostgreSQL's default is not Rust's: `.` matches a newline and `^`/`$`
/// only match at the ends of the text. `n` (and its old name `m`) makes
/// the text newline-sensitive, `p` and `w` half of that; `i`/`c` set the
/// case sensitivity (the last one wins), `x` ignores white space and `#`
/// comments, `q` takes the pattern literally, `e` and `t` are the
/// defaults. `b` (basic regular expressions) is refused.
fn postgres_pattern(pattern: &str, flags: &str) -> Result<(String, String)> {
    let (mut case_insensitive, mut dot_matches_newline, mut multi_line) = (false, true, false);
    let (mut expanded, mut literal) = (false, false);
    for flag in flags.chars() {
        match flag {
            'i' => case_insensitive = true,
            'c' => case_insensitive = false,
            'n' | 'm' => (dot_matches_newline, multi_line) = (false, true),
            'p' => (dot_matches_newline, multi_line) = (false, false),
            'w' => (dot_matches_newline, multi_line) = (true, true),
            's' => (dot_matches_newline, multi_line) = (true, false),
            'x' => expanded = true,
            'q' => literal = true,
            'e' | 't' => {}
            'g' => {
                return not_impl_err!(
                    "regexp_matches with the \"g\" flag returns one row per match, which \
                     Sluice does not support; without \"g\" it returns the first match"
                )
            }
            'b' => {
                return not_impl_err!(
                    "regular expression option \"b\" (basic regular expressions) is not supported"
                )
            }
            other => return exec_err!("invalid regular expression option: \"{other}\""),
        }
    }
    let mut rust_flags = String::new();
    for (on, letter) in [
        (case_insensitive, 'i'),
        (dot_matches_newline, 's'),
        (multi_line, 'm'),
        (expanded && !literal, 'x'),
    ] {
        if on {
            rust_flags.push(letter);
        }
    }
    let pattern = if literal {
        escape(pattern)
    } else {
        pattern.to_owned()
    };
    Ok((pattern, rust_flags))
}

/// `text` as a pattern that matches it literally.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ScalarUDF;

    fn call(udf: ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> Result<ColumnarValue> {
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect::<Vec<_>>();
        let return_field = Arc::new(Field::new(
            "r",
            udf.return_type(&args.iter().map(|a| a.data_type()).collect::<Vec<_>>())?,
            true,
        ));
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_string())))
    }

    fn extract(args: Vec<ColumnarValue>) -> Result<Option<String>> {
        match call(ScalarUDF::new_from_impl(RegexpExtract::new()), args, 1)? {
            ColumnarValue::Scalar(ScalarValue::Utf8(s)) => Ok(s),
            other => internal_err!("unexpected {other:?}"),
        }
    }

    fn matches(args: Vec<ColumnarValue>) -> Result<Option<Vec<Option<String>>>> {
        let out = call(ScalarUDF::new_from_impl(RegexpMatches::new()), args, 1)?;
        let array = out.to_array(1)?;
        let list = array.as_list::<i32>();
        if list.is_null(0) {
            return Ok(None);
        }
        let values = list.value(0);
        let values = values.as_string::<i32>();
        Ok(Some(
            (0..values.len())
                .map(|i| values.is_valid(i).then(|| values.value(i).to_string()))
                .collect(),
        ))
    }

    fn int(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    /// Flink's documented examples.
    #[test]
    fn regexp_extract_as_flink() -> Result<()> {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            extract(vec![text("foothebar"), text("foo(.*?)(bar)"), int(2)])?,
            s("bar")
        );
        assert_eq!(
            extract(vec![text("foothebar"), text("foo(.*?)(bar)"), int(1)])?,
            s("the")
        );
        assert_eq!(
            extract(vec![text("foothebar"), text("foo(.*?)(bar)")])?,
            s("foothebar")
        );
        assert_eq!(extract(vec![text("abc"), text("x(y)"), int(1)])?, None);
        assert_eq!(extract(vec![text("ac"), text("a(b)?c"), int(1)])?, None);
        assert!(extract(vec![text("abc"), text("(b)"), int(2)]).is_err());
        assert!(extract(vec![text("abc"), text("(b)"), int(-1)]).is_err());
        assert!(extract(vec![text("abc"), text("(b")]).is_err());
        Ok(())
    }

    #[test]
    fn regexp_extract_over_columns() -> Result<()> {
        let texts: ArrayRef = Arc::new(StringArray::from(vec![
            Some("k1=v1"),
            None,
            Some("k2=v2"),
            Some("nothing"),
        ]));
        let patterns: ArrayRef = Arc::new(StringArray::from(vec![
            Some("(\\w+)=(\\w+)"),
            Some("(\\w+)=(\\w+)"),
            Some("(\\w+)=(\\w+)"),
            Some("(\\w+)=(\\w+)"),
        ]));
        let out = call(
            ScalarUDF::new_from_impl(RegexpExtract::new()),
            vec![
                ColumnarValue::Array(texts),
                ColumnarValue::Array(patterns),
                int(2),
            ],
            4,
        )?
        .to_array(4)?;
        let out = out.as_string::<i32>();
        let got: Vec<_> = (0..4)
            .map(|i| out.is_valid(i).then(|| out.value(i)))
            .collect();
        assert_eq!(got, vec![Some("v1"), None, Some("v2"), None]);
        Ok(())
    }

    /// PostgreSQL 15's answers.
    #[test]
    fn regexp_matches_as_postgres() -> Result<()> {
        let v = |items: &[Option<&str>]| Some(items.iter().map(|i| i.map(String::from)).collect());
        assert_eq!(
            matches(vec![text("ab"), text("(a)(x)?(b)")])?,
            v(&[Some("a"), None, Some("b")])
        );
        assert_eq!(matches(vec![text("foobar"), text("o+")])?, v(&[Some("oo")]));
        assert_eq!(
            matches(vec![text("fooBAR"), text("(b)(a)"), text("i")])?,
            v(&[Some("B"), Some("A")])
        );
        assert_eq!(matches(vec![text("abc"), text("x")])?, None);
        // `.` matches a newline unless the text is newline-sensitive.
        assert_eq!(
            matches(vec![text("a\nb"), text("a.b")])?,
            v(&[Some("a\nb")])
        );
        assert_eq!(matches(vec![text("a\nb"), text("a.b"), text("n")])?, None);
        assert_eq!(
            matches(vec![text("x\nab"), text("^a"), text("n")])?,
            v(&[Some("a")])
        );
        assert_eq!(
            matches(vec![text("a.b"), text("."), text("q")])?,
            v(&[Some(".")])
        );
        Ok(())
    }

    #[test]
    fn regexp_matches_refusals() {
        let err = |flags: &str| match matches(vec![text("ab"), text("a"), text(flags)]) {
            Err(e) => e.to_string(),
            Ok(v) => format!("no error: {v:?}"),
        };
        assert!(err("z").contains("invalid regular expression option: \"z\""));
        assert!(err("g").contains("one row per match"));
        assert!(err("b").contains("not supported"));
    }
}
