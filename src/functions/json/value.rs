//! JSON values as PostgreSQL's `jsonb` reads, walks and prints them.
//!
//! A value is parsed with serde_json. Printing follows `jsonb`'s output:
//! object keys sorted shorter first, then bytewise (a repeated key keeps
//! its last value), `": "` and `", "` between items. Numbers are kept as
//! serde_json reads them: integers exactly, others as the nearest double
//! (PostgreSQL keeps `numeric` digits: `1.50` prints as `1.5` here, and an
//! integer beyond 64 bits becomes a double).

use serde_json::{Map, Value};

/// Parses `text` as one JSON value, naming the problem as PostgreSQL does
/// ("invalid input syntax for type json").
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid input syntax for type json: {e}"))
}

/// `value` printed as `jsonb`.
pub fn to_jsonb_text(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(key, out);
                out.push_str(": ");
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// An object's entries in `jsonb` order: shorter keys first, then bytewise.
fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    entries
}

fn write_string(s: &str, out: &mut String) {
    // serde_json escapes exactly what JSON requires, as PostgreSQL does.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// One step of a path: an object key, or an array position (negative
/// counts from the end).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `->`'s text key: an object field (NULL on an array, as in PostgreSQL).
    Key(String),
    /// `->`'s integer: an array position.
    Index(i64),
    /// A path element (`#>`, `jsonb_extract_path`): a field of an object,
    /// or a position in an array when it reads as an integer.
    Element(String),
}

/// The value one step below `value`, if there is one.
pub fn step<'v>(value: &'v Value, step: &Step) -> Option<&'v Value> {
    match (value, step) {
        (Value::Object(map), Step::Key(key) | Step::Element(key)) => map.get(key),
        (Value::Array(items), Step::Index(i)) => index(items, *i),
        (Value::Array(items), Step::Element(key)) => {
            key.trim().parse().ok().and_then(|i| index(items, i))
        }
        _ => None,
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let at = if i < 0 {
        i.checked_add(i64::try_from(items.len()).ok()?)?
    } else {
        i
    };
    items.get(usize::try_from(at).ok()?)
}

/// The text `->>` returns for `value`: a string unquoted, JSON null as SQL
/// NULL, anything else as `jsonb` text.
pub fn to_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(to_jsonb_text(other)),
    }
}

/// `jsonb_typeof`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A PostgreSQL text-array literal (`'{a,b,"c d"}'`) as its elements, the
/// form `#>` and `#>>` take their path in.
pub fn parse_text_array(text: &str) -> Result<Vec<String>, String> {
    let bad = || format!("malformed array literal: \"{text}\"");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            if items.is_empty() {
                return Ok(items);
            }
            return Err(bad());
        }
        let mut item = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.push(chars.next().ok_or_else(bad)?),
                    Some(c) => item.push(c),
                    None => return Err(bad()),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '\\' {
                    item.push(chars.next().ok_or_else(bad)?);
                } else {
                    item.push(c);
                }
            }
            item.truncate(item.trim_end().len());
            if item.is_empty() || item.contains(['{', '}', '"']) {
                return Err(bad());
            }
        }
        items.push(item);
        match chars.next() {
            Some(',') => continue,
            None => return Ok(items),
            Some(_) => return Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_jsonb_does() {
        let v = parse(r#"{"bb":1,"a":[true,null,"x\"y"],"c":{"z":1.5,"y":{}},"a":2}"#).unwrap();
        assert_eq!(
            to_jsonb_text(&v),
            r#"{"a": 2, "c": {"y": {}, "z": 1.5}, "bb": 1}"#
        );
        assert_eq!(to_jsonb_text(&parse("[]").unwrap()), "[]");
        assert_eq!(to_jsonb_text(&parse(r#""é\n""#).unwrap()), r#""é\n""#);
    }

    #[test]
    fn walks_keys_and_positions() {
        let v = parse(r#"{"a":[10,{"b":"x"}]}"#).unwrap();
        let a = step(&v, &Step::Key("a".into())).unwrap();
        assert_eq!(step(a, &Step::Index(0)), Some(&Value::from(10)));
        assert_eq!(
            step(a, &Step::Index(-1)).and_then(|o| step(o, &Step::Key("b".into()))),
            Some(&Value::from("x"))
        );
        assert_eq!(
            step(a, &Step::Element("1".into())).map(type_name),
            Some("object")
        );
        assert_eq!(
            step(a, &Step::Key("1".into())),
            None,
            "-> with text on an array"
        );
        assert_eq!(step(a, &Step::Index(2)), None);
        assert_eq!(step(a, &Step::Index(-3)), None);
        assert_eq!(step(&v, &Step::Index(0)), None);
        assert_eq!(to_text(&Value::Null), None);
        assert_eq!(to_text(&Value::from("s")).as_deref(), Some("s"));
    }

    #[test]
    fn reads_text_array_literals() {
        assert_eq!(parse_text_array("{a,b}").unwrap(), vec!["a", "b"]);
        assert_eq!(
            parse_text_array(r#"{ "c d" , 1 }"#).unwrap(),
            vec!["c d", "1"]
        );
        assert_eq!(parse_text_array("{}").unwrap(), Vec::<String>::new());
        assert!(parse_text_array("a,b").is_err());
        assert!(parse_text_array("{a,}").is_err());
    }
}
