//! Integer columns refuse JSON numbers that are not integers of their range.
//! arrow-json reads `7.25` into a BIGINT column as 7 without a word (it falls
//! back to a float and truncates), and reads `-9223372036854775809` as
//! i64::MIN (through the same float). So, before a batch is decoded:
//!
//! * [`IntegerFields::suspects`] finds, with memchr over the whole batch,
//!   the numbers with a `.` or a negative exponent that may be an integer
//!   field's value. Most records have none: an ISO timestamp's `.123` is
//!   told from a number by what precedes it, and a number is only a suspect
//!   after the key of an integer column (or in an array, with integer array
//!   columns).
//! * [`IntegerFields::check`] reads a suspect record's top-level fields
//!   exactly (no rounding through a float) and names the field at fault.
//!
//! Numbers arrow-json rejects by itself (`70000` for a SMALLINT) are checked
//! only to word the reason. A record that is not well-formed is left for
//! arrow-json to report.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use crate::sql::types::arrow_to_sql;

/// The integer fields of a JSON payload, found by name in raw records.
#[derive(Debug, Clone)]
pub struct IntegerFields {
    fields: Vec<IntegerField>,
    /// Some are arrays (`BIGINT[]`): numbers in arrays are suspects too.
    arrays: bool,
}

#[derive(Debug, Clone)]
struct IntegerField {
    name: String,
    /// Every number in the value is checked, so a list column (`BIGINT[]`)
    /// is checked element by element.
    range: IntRange,
    /// The column's SQL type, for the reason.
    sql_type: String,
}

#[derive(Debug, Clone, Copy)]
struct IntRange {
    min: i128,
    max: i128,
    /// Numbers of at most this many digits are in range whatever they are.
    safe_digits: usize,
}

impl IntRange {
    fn of(ty: &DataType) -> Option<IntRange> {
        let (min, max) = match ty {
            DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
            DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            DataType::Int64 => (i64::MIN as i128, i64::MAX as i128),
            DataType::UInt8 => (0, u8::MAX as i128),
            DataType::UInt16 => (0, u16::MAX as i128),
            DataType::UInt32 => (0, u32::MAX as i128),
            DataType::UInt64 => (0, u64::MAX as i128),
            DataType::List(f) | DataType::LargeList(f) => return IntRange::of(f.data_type()),
            _ => return None,
        };
        Some(IntRange {
            min,
            max,
            safe_digits: max.to_string().len() - 1,
        })
    }
}

/// What is wrong with a number in an integer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Fraction,
    OutOfRange,
    /// Number characters that are no JSON number (`-.5`), which arrow-json
    /// would still read as a float.
    NotANumber,
}

impl IntegerFields {
    /// The integer columns of `schema` (and lists of them); `None` when it
    /// has none, so batches without them pay nothing.
    pub fn of(schema: &Schema) -> Option<IntegerFields> {
        let fields: Vec<IntegerField> = schema
            .fields()
            .iter()
            .filter_map(|f| {
                Some(IntegerField {
                    name: f.name().clone(),
                    range: IntRange::of(f.data_type())?,
                    sql_type: arrow_to_sql(f.data_type()),
                })
            })
            .collect();
        let arrays = schema.fields().iter().any(|f| {
            matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_))
                && IntRange::of(f.data_type()).is_some()
        });
        (!fields.is_empty()).then_some(IntegerFields { fields, arrays })
    }

    /// Byte offsets in `bytes` (records back to back) of numbers with a
    /// fraction or a negative exponent that may be an integer field's: the
    /// records to [`check`](Self::check). Other numbers arrow-json reads
    /// exactly or rejects (a positive exponent makes no fraction). Not in
    /// order; a number may appear twice.
    pub fn suspects<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        // Single bytes and pairs rare in text, so memchr skips most of a
        // batch (an 'e' alone is in most words).
        memchr::memchr_iter(b'.', bytes)
            .chain(memchr::memmem::find_iter(bytes, b"e-"))
            .chain(memchr::memmem::find_iter(bytes, b"E-"))
            .filter(move |&at| self.suspect(bytes, at))
    }

    fn suspect(&self, b: &[u8], at: usize) -> bool {
        // Back to the start of the token the byte is in. arrow-json starts
        // a number at a digit or '-' and reads on over these bytes.
        let is_number = |c: u8| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        let mut start = at;
        while start > 0 && is_number(b[start - 1]) {
            start -= 1;
        }
        if !matches!(b[start], b'0'..=b'9' | b'-') {
            return false; // a word ("bidder"), not a number
        }
        // What comes before a value: ':' after a key, or ',' / '[' in an
        // array. Inside a string (`"12:00:00.123"`) it is something else.
        match before(b, start) {
            Some((b':', colon)) => match before(b, colon) {
                Some((b'"', close)) => self.integer_key(b, close),
                _ => false,
            },
            Some((b',' | b'[', _)) => self.arrays,
            _ => false,
        }
    }

    /// Whether the key that ends at the quote `close` may name an integer
    /// field (any key with an escape may).
    fn integer_key(&self, b: &[u8], close: usize) -> bool {
        // Back to the opening quote, or to an escape: then the key may be
        // anything once unescaped.
        let Some(open) = memchr::memrchr2(b'"', b'\\', &b[..close]) else {
            return true;
        };
        if b[open] == b'\\' || (open > 0 && b[open - 1] == b'\\') {
            return true;
        }
        let key = &b[open + 1..close];
        self.fields.iter().any(|f| f.name.as_bytes() == key)
    }

    /// Whether a decoded batch holds i64::MIN in a BIGINT column: arrow-json
    /// also gives that for integers just below it (read as a float that
    /// rounds to -2^63), so such a batch is checked record by record.
    pub fn may_have_clamped(&self, batch: &RecordBatch) -> bool {
        fn holds_min(array: &ArrayRef) -> bool {
            match array.data_type() {
                DataType::Int64 => array
                    .as_primitive::<Int64Type>()
                    .values()
                    .contains(&i64::MIN),
                DataType::List(_) => holds_min(array.as_list::<i32>().values()),
                DataType::LargeList(_) => holds_min(array.as_list::<i64>().values()),
                _ => false,
            }
        }
        self.fields.iter().any(|f| {
            f.range.min == i128::from(i64::MIN)
                && batch.column_by_name(&f.name).is_some_and(holds_min)
        })
    }

    /// Why `record` cannot go into its integer columns, if it cannot.
    pub fn check(&self, record: &[u8]) -> Option<String> {
        let mut s = Scanner { b: record, i: 0 };
        s.skip_ws();
        if s.peek()? != b'{' {
            return None;
        }
        s.i += 1;
        loop {
            s.skip_ws();
            match s.peek()? {
                b'"' => {}
                b',' => {
                    s.i += 1;
                    continue;
                }
                _ => return None,
            }
            let key = s.string()?;
            s.skip_ws();
            if s.peek()? != b':' {
                return None;
            }
            s.i += 1;
            s.skip_ws();
            let field = self.field(record, key);
            if let Some((number, problem)) = s.value(field.map(|f| f.range))? {
                let field = field?;
                return Some(field.reason(number, problem));
            }
        }
    }

    /// The integer field a key names.
    fn field(&self, record: &[u8], key: Key) -> Option<&IntegerField> {
        let raw = &record[key.start..key.end];
        if !key.escaped {
            // The first byte first: most keys differ there, and then no
            // comparison call is made.
            return self
                .fields
                .iter()
                .find(|f| f.name.as_bytes().first() == raw.first() && f.name.as_bytes() == raw);
        }
        // An escaped key (rare): compare its text, as arrow-json does.
        let quoted = record.get(key.start - 1..key.end + 1)?;
        let name: String = serde_json::from_slice(quoted).ok()?;
        self.fields.iter().find(|f| f.name == name)
    }
}

impl IntegerField {
    fn reason(&self, number: &[u8], problem: Problem) -> String {
        const SHOWN: usize = 40;
        let text = String::from_utf8_lossy(&number[..number.len().min(SHOWN)]);
        let more = if number.len() > SHOWN { "…" } else { "" };
        let what = match problem {
            Problem::Fraction => "is not an integer",
            Problem::OutOfRange => "is out of range",
            Problem::NotANumber => "is not a number",
        };
        format!(
            "field \"{}\": {text}{more} {what} for a column of type {}",
            self.name, self.sql_type
        )
    }
}

/// The last byte before `at` that is not white space, and where it is.
fn before(b: &[u8], at: usize) -> Option<(u8, usize)> {
    b[..at]
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .map(|i| (b[i], i))
}

/// Where a string's contents are in the record.
#[derive(Debug, Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A cursor over one record's bytes, as simple as the check allows: it runs
/// on every record before arrow-json does. Every method returns `None` on
/// bytes that are not JSON, which ends the check (arrow-json reports them).
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string starting at the cursor; leaves the cursor after it. A byte
    /// loop, not memchr: keys and most values are a few bytes long.
    fn string(&mut self) -> Option<Key> {
        let start = self.i + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            match *self.b.get(at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                _ => at += 1,
            }
        }
        self.i = at + 1;
        Some(Key {
            start,
            end: at,
            escaped,
        })
    }

    /// Reads past one value (an object or array with everything in it); with
    /// a range, returns the first number in it that does not fit.
    fn value(&mut self, range: Option<IntRange>) -> Option<Option<(&'a [u8], Problem)>> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' if depth > 0 => self.i += 1,
                _ => {
                    let (token, plain) = self.scalar();
                    if token.is_empty() {
                        return None;
                    }
                    if let Some(range) = range {
                        // Short plain integers (nearly all) fit whatever they are.
                        if !plain || token.len() > range.safe_digits {
                            if let Some(problem) = check_number(token, range) {
                                return Some(Some((token, problem)));
                            }
                        }
                    }
                }
            }
            if depth == 0 {
                return Some(None);
            }
        }
    }

    /// A number or literal (`true`, `null`…) starting at the cursor, and
    /// whether it is digits only (with a sign).
    fn scalar(&mut self) -> (&'a [u8], bool) {
        let start = self.i;
        let mut plain = true;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' | b'-' => {}
                b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' => break,
                _ => plain = false,
            }
            self.i += 1;
        }
        (&self.b[start..self.i], plain)
    }
}

/// Whether a JSON number token is an integer within `range`. `7.0` and
/// `1e3` are integers (arrow-json reads them as 7 and 1000); the check is
/// exact, with no rounding through a float. Tokens that are not numbers
/// (`null`, `true`) pass: arrow-json judges them.
fn check_number(token: &[u8], range: IntRange) -> Option<Problem> {
    let (negative, body) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'0'..=b'9', _)) => (false, token),
        _ => return None,
    };
    let (mantissa, exponent) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(e) => (&body[..e], Some(&body[e + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, &[][..]),
    };
    let digits = || int_part.iter().chain(frac_part);
    if !digits().all(u8::is_ascii_digit) || int_part.is_empty() {
        // `-.5`, `1.2.3`: arrow-json would try them as floats.
        return Some(Problem::NotANumber);
    }
    // Plain integers, nearly every value: short enough is in range.
    if exponent.is_none() && frac_part.is_empty() {
        let significant = int_part.len() - leading_zeros(int_part);
        if significant <= range.safe_digits {
            return None;
        }
    }
    let exponent = match exponent {
        None => 0i64,
        Some(e) => match parse_exponent(e) {
            Some(e) => e,
            None => return Some(Problem::NotANumber),
        },
    };
    // The value is D × 10^shift, D the digits of int_part and frac_part.
    let all: Vec<u8> = digits().copied().collect();
    let first = leading_zeros(&all);
    let significant = &all[first..];
    if significant.is_empty() {
        return None; // zero
    }
    let trailing = significant.iter().rev().take_while(|&&b| b == b'0').count();
    let significant = &significant[..significant.len() - trailing];
    let shift = exponent
        .saturating_sub(frac_part.len() as i64)
        .saturating_add(trailing as i64);
    if shift < 0 {
        return Some(Problem::Fraction);
    }
    // An integer of `significant` digits followed by `shift` zeros.
    let width = (significant.len() as i64).saturating_add(shift);
    if width > 38 {
        return Some(Problem::OutOfRange);
    }
    let mut value: i128 = 0;
    for &d in significant {
        value = value * 10 + i128::from(d - b'0');
    }
    for _ in 0..shift {
        value *= 10;
    }
    if negative {
        value = -value;
    }
    (value < range.min || value > range.max).then_some(Problem::OutOfRange)
}

fn leading_zeros(digits: &[u8]) -> usize {
    digits.iter().take_while(|&&b| b == b'0').count()
}

/// An exponent's value, saturating (`1e99999999999999999999` is simply
/// out of range).
fn parse_exponent(e: &[u8]) -> Option<i64> {
    let (negative, digits) = match e.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, e),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::datatypes::Field;

    fn fields() -> IntegerFields {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        IntegerFields::of(&Schema::new(vec![
            Field::new("big", DataType::Int64, true),
            Field::new("int", DataType::Int32, true),
            Field::new("small", DataType::Int16, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("ids", list, true),
        ]))
        .expect("integer columns")
    }

    fn check(record: &str) -> Option<String> {
        fields().check(record.as_bytes())
    }

    #[test]
    fn integers_of_every_spelling_pass() {
        for record in [
            r#"{"big": 7, "int": -7, "small": 32767}"#,
            r#"{"small": -32768, "big": 9223372036854775807}"#,
            r#"{"big": -9223372036854775808}"#,
            r#"{"big": 7.0, "int": 7.000, "small": 1e3, "name": "x"}"#,
            r#"{"big": 12.5e1, "int": 1E+2, "small": 0.0, "price": 7.25}"#,
            r#"{"big": null, "int": "12", "small": 0, "ids": [1, 2.0, 3]}"#,
            r#"{"big": 00012, "small": -0.0e-5}"#,
        ] {
            assert_eq!(check(record), None, "{record}");
        }
    }

    #[test]
    fn a_fraction_in_an_integer_field_is_named() {
        assert_eq!(
            check(r#"{"name": "a", "big": 7.25}"#).as_deref(),
            Some(r#"field "big": 7.25 is not an integer for a column of type BIGINT"#)
        );
        for record in [
            r#"{"int": 7.25}"#,
            r#"{"small": -0.5}"#,
            r#"{"big": 1e-3}"#,
            r#"{"big": 1250e-3}"#,
            r#"{"ids": [1, 2, 3.5]}"#,
            r#"{"big": 9007199254740993.5}"#,
            r#"{"big": 7.00000000000000000000001}"#,
        ] {
            let reason = check(record).unwrap_or_default();
            assert!(reason.contains("is not an integer"), "{record}: {reason}");
        }
    }

    #[test]
    fn a_number_out_of_range_is_named() {
        assert_eq!(
            check(r#"{"small": 70000}"#).as_deref(),
            Some(r#"field "small": 70000 is out of range for a column of type SMALLINT"#)
        );
        for record in [
            r#"{"big": 1e400}"#,
            r#"{"big": 9223372036854775808}"#,
            r#"{"big": -9223372036854775809}"#,
            r#"{"int": 2147483648}"#,
            r#"{"small": 3.2768e4}"#,
            r#"{"big": 1e99999999999999999999999}"#,
        ] {
            let reason = check(record).unwrap_or_default();
            assert!(reason.contains("is out of range"), "{record}: {reason}");
        }
    }

    #[test]
    fn other_fields_and_nested_keys_are_not_checked() {
        for record in [
            r#"{"price": 7.25, "name": "big: 7.25", "other": 1.5}"#,
            r#"{"meta": {"big": 7.25, "int": [0.5]}, "big": 7}"#,
            r#"{"name": "a \" \\", "x\"y": 2.5, "big": 3}"#,
        ] {
            assert_eq!(check(record), None, "{record}");
        }
    }

    #[test]
    fn escaped_keys_are_matched_by_their_text() {
        let reason = check(r#"{"b\u0069g": 7.5}"#).unwrap_or_default();
        assert!(reason.contains("field \"big\""), "{reason}");
    }

    #[test]
    fn malformed_records_are_left_to_the_decoder() {
        for record in [
            r#"{"big": "#,
            r#"{"big" 7.5}"#,
            r#"[7.5]"#,
            r#"{"big": 7.5"#,
            r#"{"name": "unterminated"#,
            r#"{"big": 1.}"#,
            r#"{"big": }"#,
            r#"{"big": -}"#,
            "",
        ] {
            // Whatever it answers, it must not panic or loop.
            check(record);
        }
        // Number characters arrow-json would read as a float anyway.
        let reason = check(r#"{"big": -.5}"#).unwrap_or_default();
        assert!(reason.contains("-.5 is not a number"), "{reason}");
    }

    /// The records of `lines` that [`IntegerFields::suspects`] picks.
    fn suspects(fields: &IntegerFields, lines: &[&str]) -> Vec<usize> {
        let bytes = lines.join("\n");
        let mut found: Vec<usize> = fields
            .suspects(bytes.as_bytes())
            .map(|at| bytes[..at].matches('\n').count())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    #[test]
    fn suspects_are_numbers_with_a_fraction_after_integer_keys() {
        let lines = [
            r#"{"big": 7, "int": 8, "name": "apple", "bidder": 3}"#,
            r#"{"big": 7.25}"#,
            r#"{"price": 7.25, "when": "2026-03-01T12:00:00.123", "e": 1}"#,
            r#"{"name": "big: 7.5", "price": 1e3}"#,
            r#"{"small" : -1E2, "name": "re-entry"}"#,
            r#"{"small" : 5E-1}"#,
            r#"{"meta": {"int": 0.5}}"#,
            r#"{"ids": [1, 2.5]}"#,
            r#"{"big": 7}"#,
        ];
        // A positive exponent makes no fraction (arrow-json reads -1E2 as
        // -100). Nested keys of the same name are suspects: check() tells.
        assert_eq!(suspects(&fields(), &lines), vec![1, 5, 6, 7]);
        let no_arrays = IntegerFields::of(&Schema::new(vec![
            Field::new("big", DataType::Int64, true),
            Field::new("prices", DataType::new_list(DataType::Float64, true), true),
        ]))
        .expect("integer columns");
        assert_eq!(
            suspects(
                &no_arrays,
                &[r#"{"prices": [1.5, 2.5]}"#, r#"{"big": 1.5}"#]
            ),
            vec![1]
        );
    }

    #[test]
    fn escaped_keys_are_suspects() {
        assert_eq!(suspects(&fields(), &[r#"{"pr\u0069ce": 1.5}"#]), vec![0]);
    }

    #[test]
    fn only_bigint_columns_holding_i64_min_may_be_clamped() {
        use datafusion::arrow::array::{Int32Array, Int64Array};
        let batch = |big: i64, int: i32| {
            RecordBatch::try_from_iter([
                ("big", Arc::new(Int64Array::from(vec![1, big])) as ArrayRef),
                ("int", Arc::new(Int32Array::from(vec![1, int])) as ArrayRef),
            ])
            .expect("batch")
        };
        assert!(fields().may_have_clamped(&batch(i64::MIN, 0)));
        assert!(!fields().may_have_clamped(&batch(i64::MIN + 1, i32::MIN)));
    }

    #[test]
    fn a_long_number_is_shortened_in_the_reason() {
        let record = format!(r#"{{"big": {}.5}}"#, "1".repeat(100));
        let reason = check(&record).unwrap_or_default();
        assert!(reason.contains("…"), "{reason}");
        assert!(reason.len() < 120, "{reason}");
    }
}
