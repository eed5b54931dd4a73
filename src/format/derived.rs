//! Columns a decoder cannot fill directly, computed after decoding:
//!
//! * a `jsonb`/`json` column of a JSON source is the field's value as it
//!   stands in the record, object or array or scalar (arrow-json reads
//!   only scalars into text), printed as `jsonb`;
//! * a `jsonb`/`json` column of a CSV source is its text, checked to be
//!   JSON;
//! * an `INTERVAL` column is read as text (`'1 hour 30 minutes'`,
//!   `'2 days'`) and cast.
//!
//! A value that does not convert makes its record a bad record, with the
//! column named.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast_with_options;
use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::DataType;

use crate::functions::json::value;

/// How one column is computed.
#[derive(Debug, Clone)]
pub enum Derivation {
    /// From the raw JSON record's field `name`.
    JsonField { name: String, nullable: bool },
    /// From a decoded text column, checked as JSON and printed as `jsonb`.
    JsonText,
    /// From a decoded text column, cast to `to`.
    Cast { to: DataType },
}

/// A computed column and, for each row that did not convert, why.
pub struct Derived {
    pub array: ArrayRef,
    pub errors: Vec<(usize, String)>,
}

/// The value of field `name` in each JSON `records`, as `jsonb` text.
pub fn json_fields<'r>(
    records: impl Iterator<Item = &'r [u8]>,
    name: &str,
    nullable: bool,
) -> Derived {
    let mut out = StringBuilder::new();
    let mut errors = Vec::new();
    for (row, record) in records.enumerate() {
        let field = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(record)
            .map_err(|e| format!("not a JSON object: {e}"))
            .map(|mut object| object.remove(name));
        match field {
            Ok(Some(v)) if !v.is_null() => out.append_value(value::to_jsonb_text(&v)),
            Ok(missing) => {
                if !nullable {
                    let state = if missing.is_some() { "null" } else { "missing" };
                    errors.push((
                        row,
                        format!("field \"{name}\" is {state} but the column is NOT NULL"),
                    ));
                }
                out.append_null();
            }
            Err(e) => {
                errors.push((row, e));
                out.append_null();
            }
        }
    }
    Derived {
        array: Arc::new(out.finish()),
        errors,
    }
}

/// `text` (a decoded text column) converted as `derivation` says; `name` is
/// the column, for error messages.
pub fn convert(text: &ArrayRef, derivation: &Derivation, name: &str) -> Derived {
    match derivation {
        Derivation::JsonText => {
            let text = text.as_string::<i32>();
            let mut out = StringBuilder::with_capacity(text.len(), text.value_data().len());
            let mut errors = Vec::new();
            for (row, v) in text.iter().enumerate() {
                match v.map(value::parse) {
                    None => out.append_null(),
                    Some(Ok(v)) => out.append_value(value::to_jsonb_text(&v)),
                    Some(Err(e)) => {
                        errors.push((row, super::decoder::clip(format!("column \"{name}\": {e}"))));
                        out.append_null();
                    }
                }
            }
            Derived {
                array: Arc::new(out.finish()),
                errors,
            }
        }
        Derivation::Cast { to } => {
            let safe = CastOptions {
                safe: true,
                ..Default::default()
            };
            let array = match cast_with_options(text, to, &safe) {
                Ok(array) => array,
                Err(e) => {
                    return Derived {
                        array: datafusion::arrow::array::new_null_array(to, text.len()),
                        errors: (0..text.len())
                            .map(|row| (row, format!("column \"{name}\": {e}")))
                            .collect(),
                    }
                }
            };
            // A safe cast turns what it cannot read into NULL: those rows.
            let strings = text.as_string::<i32>();
            let errors = (0..array.len())
                .filter(|&row| array.is_null(row) && strings.is_valid(row))
                .map(|row| {
                    (
                        row,
                        super::decoder::clip(format!(
                            "column \"{name}\": invalid input syntax for type {}: \"{}\"",
                            crate::sql::types::arrow_to_sql(to).to_lowercase(),
                            strings.value(row)
                        )),
                    )
                })
                .collect();
            Derived { array, errors }
        }
        Derivation::JsonField { .. } => Derived {
            array: Arc::clone(text),
            errors: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::IntervalUnit;

    #[test]
    fn json_fields_keep_nested_values() {
        let records: [&[u8]; 4] = [
            br#"{"id":1,"p":{"b":[1,2],"a":"x"}}"#,
            br#"{"id":2,"p":7}"#,
            br#"{"id":3}"#,
            br#"{"id":4,"p":null}"#,
        ];
        let d = json_fields(records.into_iter(), "p", true);
        let s = d.array.as_string::<i32>();
        assert_eq!(s.value(0), r#"{"a": "x", "b": [1, 2]}"#);
        assert_eq!(s.value(1), "7");
        assert!(s.is_null(2) && s.is_null(3));
        assert!(d.errors.is_empty());
        let d = json_fields(records.into_iter(), "p", false);
        assert_eq!(d.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(d.errors[0].1.contains("missing"), "{:?}", d.errors);
    }

    #[test]
    fn text_converts_or_names_the_column() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("1 hour"), Some("soon"), None]));
        let to = DataType::Interval(IntervalUnit::MonthDayNano);
        let d = convert(&text, &Derivation::Cast { to }, "gap");
        assert_eq!(d.errors.len(), 1);
        assert!(d.errors[0].1.contains("column \"gap\"") && d.errors[0].1.contains("soon"));
        let json: ArrayRef = Arc::new(StringArray::from(vec![r#"{"b":1,"a":2}"#, "{"]));
        let d = convert(&json, &Derivation::JsonText, "doc");
        assert_eq!(d.array.as_string::<i32>().value(0), r#"{"a": 2, "b": 1}"#);
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].0, 1);
        assert!(
            d.errors[0]
                .1
                .starts_with("column \"doc\": invalid input syntax for type json"),
            "{:?}",
            d.errors
        );
    }
}
