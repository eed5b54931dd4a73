//! PostgreSQL's JSON operators and functions over `json`/`jsonb` columns.
//!
//! A `jsonb` value is Arrow text marked with field metadata (see
//! [`crate::sql::types::PG_TYPE_KEY`]), so it travels through every
//! operator as a string and reaches clients as PostgreSQL's `jsonb`.
//! [`crate::sql::rewrite`] turns the operators into these functions:
//!
//! | SQL | function | returns |
//! |---|---|---|
//! | `j -> 'k'`, `j -> 2` | `jsonb_get` | `jsonb`: a field, or an array element (negative from the end) |
//! | `j ->> 'k'`, `j ->> 2` | `jsonb_get_text` | text: strings unquoted, JSON null as NULL |
//! | `j #> '{a,0}'` | `jsonb_get_path` | `jsonb` at a path |
//! | `j #>> '{a,0}'` | `jsonb_get_path_text` | text at a path |
//! | `x::jsonb`, `x::json` | `jsonb`, `json` | the text checked (and for `jsonb` normalised) |
//!
//! and PostgreSQL's own names: `jsonb_extract_path(j, VARIADIC text)`,
//! `jsonb_extract_path_text`, their `json_` twins, `jsonb_typeof` /
//! `json_typeof` and `jsonb_array_length` / `json_array_length`.
//!
//! A missing field or element, or a step into a scalar, gives NULL; text
//! that is not JSON is an error naming it (22P02), as in PostgreSQL. Text
//! columns are accepted where PostgreSQL wants `jsonb`, so a `VARCHAR` of
//! JSON needs no cast. Where we differ: a `json` value from a source or an
//! operator is printed as `jsonb` is (PostgreSQL keeps a `json` value's
//! spacing and key order; `x::json` does keep its text), non-integer
//! numbers are doubles (`1.50` prints as `1.5`), and integers beyond 64
//! bits become doubles.

pub mod value;

use crate::functions::error::FunctionError;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use serde_json::Value;

use super::args::{finish, shape, type_list, NumArg, TextArg};
use super::is_text;
use crate::sql::types::{pg_type_of, with_pg_type};
use value::Step;

/// What one function does with its JSON argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `->` / `->>`: one key or position.
    Get {
        text: bool,
    },
    /// `#>` / `#>>`: a path as a text-array literal.
    Path {
        text: bool,
    },
    /// `jsonb_extract_path[_text]`: a path as separate arguments.
    Extract {
        text: bool,
    },
    /// `::jsonb` / `::json`.
    Cast {
        jsonb: bool,
    },
    TypeOf,
    ArrayLength,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl JsonFunction {
    fn new(name: &'static str, kind: Kind) -> Self {
        JsonFunction {
            name,
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// Whether the result is JSON (marked `jsonb`/`json`) rather than text
    /// or a number.
    fn returns_json(&self) -> bool {
        matches!(
            self.kind,
            Kind::Get { text: false }
                | Kind::Path { text: false }
                | Kind::Extract { text: false }
                | Kind::Cast { .. }
        )
    }
}

/// Every JSON function, for [`super::udfs`].
pub fn udfs() -> Vec<ScalarUDF> {
    let all = [
        ("jsonb_get", Kind::Get { text: false }),
        ("jsonb_get_text", Kind::Get { text: true }),
        ("jsonb_get_path", Kind::Path { text: false }),
        ("jsonb_get_path_text", Kind::Path { text: true }),
        ("jsonb_extract_path", Kind::Extract { text: false }),
        ("jsonb_extract_path_text", Kind::Extract { text: true }),
        ("json_extract_path", Kind::Extract { text: false }),
        ("json_extract_path_text", Kind::Extract { text: true }),
        ("jsonb", Kind::Cast { jsonb: true }),
        ("json", Kind::Cast { jsonb: false }),
        ("jsonb_typeof", Kind::TypeOf),
        ("json_typeof", Kind::TypeOf),
        ("jsonb_array_length", Kind::ArrayLength),
        ("json_array_length", Kind::ArrayLength),
    ];
    all.into_iter()
        .map(|(name, kind)| ScalarUDF::new_from_impl(JsonFunction::new(name, kind)))
        .collect()
}

/// Whether `field` holds JSON text (`jsonb` or `json`).
pub fn is_json(field: &Field) -> bool {
    matches!(pg_type_of(field), Some("jsonb" | "json"))
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::ArrayLength => DataType::Int64,
            _ => DataType::Utf8,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let data_type = self.return_type(&[])?;
        let field = Field::new(self.name, data_type, true);
        if !self.returns_json() {
            return Ok(Arc::new(field));
        }
        let pg_type = match self.kind {
            Kind::Cast { jsonb: false } => "json",
            Kind::Cast { jsonb: true } => "jsonb",
            // An operator's result is of its input's kind.
            _ => match args.arg_fields.first().and_then(|f| pg_type_of(f)) {
                Some("json") => "json",
                _ => "jsonb",
            },
        };
        Ok(Arc::new(with_pg_type(field, pg_type)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let ok = match (self.kind, arg_types) {
            (Kind::Get { .. }, [doc, key]) => is_text(doc) && (is_text(key) || key.is_integer()),
            (Kind::Path { .. }, [doc, path]) => is_text(doc) && is_text(path),
            (Kind::Extract { .. }, [doc, path @ ..]) => is_text(doc) && path.iter().all(is_text),
            (Kind::Cast { .. } | Kind::TypeOf | Kind::ArrayLength, [doc]) => is_text(doc),
            _ => false,
        };
        if !ok {
            return plan_err!(
                "function {}({}) does not exist; it takes jsonb (or text){}",
                self.name,
                type_list(arg_types),
                match self.kind {
                    Kind::Get { .. } => " and a text key or an integer position",
                    Kind::Path { .. } => " and a text[] path such as '{a,0}'",
                    Kind::Extract { .. } => " and text path elements",
                    _ => "",
                }
            );
        }
        Ok(arg_types
            .iter()
            .map(|t| {
                if t.is_integer() {
                    DataType::Int64
                } else {
                    DataType::Utf8
                }
            })
            .collect())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let Some((doc, rest)) = args.args.split_first() else {
            return exec_err!("{} needs an argument", self.name);
        };
        let doc = TextArg::new(doc)?;
        let path = PathArg::new(self.kind, rest)?;
        let out: ArrayRef = if self.kind == Kind::ArrayLength {
            let mut out = Int64Builder::with_capacity(rows);
            for row in 0..rows {
                match doc.get(row).map(parse).transpose()? {
                    Some(Value::Array(items)) => out.append_value(items.len() as i64),
                    Some(other) => {
                        return exec_err!(
                            "cannot get array length of a {}",
                            match value::type_name(&other) {
                                "object" => "non-array",
                                _ => "scalar",
                            }
                        )
                    }
                    None => out.append_null(),
                }
            }
            Arc::new(out.finish())
        } else {
            let mut out = StringBuilder::with_capacity(rows, rows * 16);
            let mut steps = Vec::new();
            for row in 0..rows {
                let (Some(text), true) = (doc.get(row), path.steps(row, &mut steps)?) else {
                    out.append_null();
                    continue;
                };
                if let Kind::Cast { jsonb: false } = self.kind {
                    parse(text)?;
                    out.append_value(text);
                    continue;
                }
                let whole = parse(text)?;
                let found = steps.iter().try_fold(&whole, |v, s| value::step(v, s));
                let result = match (self.kind, found) {
                    (_, None) => None,
                    (Kind::TypeOf, Some(v)) => Some(value::type_name(v).to_string()),
                    (
                        Kind::Get { text: true }
                        | Kind::Path { text: true }
                        | Kind::Extract { text: true },
                        Some(v),
                    ) => value::to_text(v),
                    (_, Some(v)) => Some(value::to_jsonb_text(v)),
                };
                out.append_option(result);
            }
            Arc::new(out.finish())
        };
        finish(out, scalar)
    }
}

fn parse(text: &str) -> Result<Value> {
    value::parse(text).map_err(|e| FunctionError::invalid_text(e).into())
}

/// The path arguments after the JSON one.
enum PathArg<'a> {
    None,
    Key(TextArg<'a>),
    Position(NumArg<Int64Type>),
    /// `#>`'s text-array literal.
    Literal(TextArg<'a>),
    /// `jsonb_extract_path`'s elements.
    Elements(Vec<TextArg<'a>>),
}

impl<'a> PathArg<'a> {
    fn new(kind: Kind, rest: &'a [ColumnarValue]) -> Result<Self> {
        Ok(match (kind, rest) {
            (Kind::Get { .. }, [key]) if key.data_type().is_integer() => {
                PathArg::Position(NumArg::new(key)?)
            }
            (Kind::Get { .. }, [key]) => PathArg::Key(TextArg::new(key)?),
            (Kind::Path { .. }, [path]) => PathArg::Literal(TextArg::new(path)?),
            (Kind::Extract { .. }, elements) => {
                PathArg::Elements(elements.iter().map(TextArg::new).collect::<Result<_>>()?)
            }
            (_, []) => PathArg::None,
            (_, more) => return exec_err!("unexpected {} path arguments", more.len()),
        })
    }

    /// Fills `steps` with row `row`'s path; false when part of it is NULL
    /// (the result is NULL).
    fn steps(&self, row: usize, steps: &mut Vec<Step>) -> Result<bool> {
        steps.clear();
        match self {
            PathArg::None => {}
            PathArg::Key(key) => match key.get(row) {
                Some(k) => steps.push(Step::Key(k.to_string())),
                None => return Ok(false),
            },
            PathArg::Position(position) => match position.get(row) {
                Some(i) => steps.push(Step::Index(i)),
                None => return Ok(false),
            },
            PathArg::Literal(path) => match path.get(row) {
                Some(text) => steps.extend(
                    value::parse_text_array(text)
                        .map_err(|e| DataFusionError::from(FunctionError::invalid_text(e)))?
                        .into_iter()
                        .map(Step::Element),
                ),
                None => return Ok(false),
            },
            PathArg::Elements(elements) => {
                for e in elements {
                    match e.get(row) {
                        Some(k) => steps.push(Step::Element(k.to_string())),
                        None => return Ok(false),
                    }
                }
            }
        }
        Ok(true)
    }
}
