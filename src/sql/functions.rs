//! SQL functions users define: `CREATE FUNCTION f(a BIGINT) RETURNS BIGINT
//! LANGUAGE sql AS $$ SELECT a + 1 $$` (or `AS 'SELECT …'`, or the
//! standard `RETURN a + 1`), kept in the catalog.
//!
//! A function's body is one expression over its parameters. Calls are
//! inlined where the query is parsed ([`inline`]): each argument is cast
//! to its parameter's type and put where the parameter is named (or `$n`),
//! and the result is cast to the declared return type. A view using a
//! function is planned with its body, as PostgreSQL inlines SQL functions,
//! so streaming operators see a plain expression.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, VisitMut, VisitorMut,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};

/// How deep functions may call functions before we call it recursion.
const MAX_DEPTH: usize = 32;

/// How many expression nodes inlining may add to one query: a function
/// whose body uses its parameter several times, nested, grows
/// exponentially.
const MAX_INLINED_NODES: usize = 20_000;

/// A user's SQL function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlFunction {
    pub name: String,
    /// Each parameter's name (if it has one) and SQL type.
    pub params: Vec<(Option<String>, String)>,
    pub returns: Option<String>,
    /// The body expression, as SQL text.
    pub body: String,
}

/// A `CREATE FUNCTION` statement.
#[derive(Debug, Clone)]
pub struct CreateFunction {
    pub function: SqlFunction,
    pub or_replace: bool,
    pub if_not_exists: bool,
}

impl CreateFunction {
    pub fn from_ast(f: &ast::CreateFunction) -> Result<CreateFunction> {
        let name = single_name(&f.name).ok_or_else(|| {
            SluiceError::NotSupported(format!(
                "function name {}: functions live in the public schema; name it without a schema",
                f.name
            ))
        })?;
        if let Some(language) = &f.language {
            if !language.value.eq_ignore_ascii_case("sql") {
                return Err(SluiceError::NotSupported(format!(
                    "function '{name}' in LANGUAGE {language}: only LANGUAGE sql functions \
                     (one expression) are supported"
                )));
            }
        }
        let returns = match &f.return_type {
            None => None,
            Some(ast::FunctionReturnType::DataType(t)) => Some(t.to_string()),
            Some(ast::FunctionReturnType::SetOf(t)) => {
                return Err(SluiceError::NotSupported(format!(
                    "function '{name}' RETURNS SETOF {t}: only functions returning one value"
                )))
            }
        };
        let mut params = Vec::new();
        for a in f.args.iter().flatten() {
            if matches!(a.mode, Some(ast::ArgMode::Out | ast::ArgMode::InOut)) {
                return Err(SluiceError::NotSupported(format!(
                    "function '{name}': OUT parameters"
                )));
            }
            if a.default_expr.is_some() {
                return Err(SluiceError::NotSupported(format!(
                    "function '{name}': parameter defaults"
                )));
            }
            params.push((
                a.name.as_ref().map(|n| n.value.to_lowercase()),
                a.data_type.to_string(),
            ));
        }
        let body = match &f.function_body {
            Some(ast::CreateFunctionBody::Return(e) | ast::CreateFunctionBody::AsReturnExpr(e)) => {
                e.to_string()
            }
            Some(
                ast::CreateFunctionBody::AsBeforeOptions { body, .. }
                | ast::CreateFunctionBody::AsAfterOptions(body),
            ) => body_of_string(&name, body)?,
            _ => {
                return Err(SluiceError::NotSupported(format!(
                "function '{name}' needs a body: AS $$ SELECT expression $$ or RETURN expression"
            )))
            }
        };
        let function = SqlFunction {
            name,
            params,
            returns,
            body,
        };
        // Checked now, not at its first call: it parses, and names nothing
        // but its parameters (a column of the calling query would be
        // captured silently otherwise).
        let mut stray = None;
        let _ = ast::visit_expressions(&function.body_expr()?, |e| {
            let named = match e {
                Expr::Identifier(i) => Some(i.value.clone()),
                Expr::CompoundIdentifier(parts) => Some(
                    parts
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect::<Vec<_>>()
                        .join("."),
                ),
                _ => None,
            };
            match named {
                Some(n)
                    if !function
                        .params
                        .iter()
                        .any(|(p, _)| p.as_deref() == Some(n.to_lowercase().as_str())) =>
                {
                    stray = Some(n);
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        });
        if let Some(n) = stray {
            return Err(SluiceError::Plan(format!(
                "function '{}': its body names '{n}', which is not one of its parameters",
                function.name
            )));
        }
        Ok(CreateFunction {
            function,
            or_replace: f.or_replace,
            if_not_exists: f.if_not_exists,
        })
    }
}

/// A one-part name as the catalog keys it: folded to lower case unless
/// quoted.
pub fn single_name(name: &ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ast::ObjectNamePart::Identifier(i)] => Some(if i.quote_style.is_some() {
            i.value.clone()
        } else {
            i.value.to_lowercase()
        }),
        _ => None,
    }
}

/// The expression of `AS 'SELECT expr'` (or `AS $$ expr $$`).
fn body_of_string(name: &str, body: &Expr) -> Result<String> {
    let text = match body {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::DollarQuotedString(d) => d.value.clone(),
            _ => body.to_string(),
        },
        other => other.to_string(),
    };
    let one = || {
        SluiceError::NotSupported(format!(
            "function '{name}': the body must be one expression (SELECT expression, \
             without FROM), found: {}",
            text.trim()
        ))
    };
    let trimmed = text.trim().trim_end_matches(';').trim();
    let starts_select = trimmed
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("select"))
        && !trimmed[6..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
    if !starts_select {
        return super::parser::parse_expr(trimmed)
            .map(|e| e.to_string())
            .map_err(|_| one());
    }
    match super::parse_one(trimmed) {
        Ok(super::Statement::Query(q)) => match *q.body {
            ast::SetExpr::Select(s) if s.from.is_empty() && s.projection.len() == 1 => {
                match &s.projection[0] {
                    ast::SelectItem::UnnamedExpr(e)
                    | ast::SelectItem::ExprWithAlias { expr: e, .. } => Ok(e.to_string()),
                    _ => Err(one()),
                }
            }
            _ => Err(one()),
        },
        _ => Err(one()),
    }
}

impl SqlFunction {
    fn body_expr(&self) -> Result<Expr> {
        super::parser::parse_expr(&self.body)
    }

    /// The call `f(args)` as the body with `args` in place.
    fn expand(&self, args: Vec<Expr>) -> Result<Expr> {
        let mut typed = Vec::with_capacity(args.len());
        for (arg, (_, ty)) in args.into_iter().zip(&self.params) {
            typed.push(cast(arg, ty)?);
        }
        let mut body = self.body_expr()?;
        let _ = ast::visit_expressions_mut(&mut body, |e| {
            let at = match e {
                Expr::Identifier(i) if i.quote_style.is_none() || i.quote_style == Some('"') => {
                    let n = if i.quote_style.is_some() {
                        i.value.clone()
                    } else {
                        i.value.to_lowercase()
                    };
                    self.params
                        .iter()
                        .position(|(p, _)| p.as_deref() == Some(n.as_str()))
                }
                Expr::Value(v) => match &v.value {
                    ast::Value::Placeholder(p) => p
                        .strip_prefix('$')
                        .and_then(|n| n.parse::<usize>().ok())
                        .and_then(|n| n.checked_sub(1)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(arg) = at.and_then(|i| typed.get(i)) {
                *e = Expr::Nested(Box::new(arg.clone()));
            }
            ControlFlow::<()>::Continue(())
        });
        match &self.returns {
            Some(ty) => cast(body, ty),
            None => Ok(Expr::Nested(Box::new(body))),
        }
    }
}

fn cast(expr: Expr, ty: &str) -> Result<Expr> {
    let text = format!("CAST(NULL AS {ty})");
    match super::parser::parse_expr(&text)? {
        Expr::Cast {
            kind,
            data_type,
            array,
            format,
            ..
        } => Ok(Expr::Cast {
            kind,
            expr: Box::new(Expr::Nested(Box::new(expr))),
            data_type,
            array,
            format,
        }),
        _ => Err(SluiceError::Internal(format!("type {ty} did not parse"))),
    }
}

/// Replaces every call of a function in `functions` in `query` by its body.
pub fn inline(query: &mut ast::Query, functions: &BTreeMap<String, SqlFunction>) -> Result<()> {
    if functions.is_empty() {
        return Ok(());
    }
    let mut inliner = Inliner {
        functions,
        error: None,
        budget: std::cell::Cell::new(MAX_INLINED_NODES),
    };
    let _ = query.visit(&mut inliner);
    match inliner.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Inliner<'a> {
    functions: &'a BTreeMap<String, SqlFunction>,
    error: Option<SluiceError>,
    /// Expression nodes inlining may still add.
    budget: std::cell::Cell<usize>,
}

impl Inliner<'_> {
    /// `e` with every call of a user function expanded, `depth` calls deep.
    fn expand(&self, e: &mut Expr, depth: usize) -> Result<()> {
        let mut error = None;
        let _ = ast::visit_expressions_mut(e, |e| {
            let Expr::Function(f) = e else {
                return ControlFlow::Continue(());
            };
            let Some(function) = single_name(&f.name).and_then(|n| self.functions.get(&n)) else {
                return ControlFlow::Continue(());
            };
            let result = (|| {
                if depth >= MAX_DEPTH {
                    return Err(SluiceError::TooComplex(format!(
                        "function '{}' calls functions more than {MAX_DEPTH} deep (recursion?)",
                        function.name
                    )));
                }
                let args = plain_args(f, function)?;
                let mut expanded = function.expand(args)?;
                self.expand(&mut expanded, depth + 1)?;
                let mut nodes = 0usize;
                let _ = ast::visit_expressions(&expanded, |_| {
                    nodes += 1;
                    ControlFlow::<()>::Continue(())
                });
                match self.budget.get().checked_sub(nodes) {
                    Some(left) => self.budget.set(left),
                    None => {
                        return Err(SluiceError::TooComplex(format!(
                            "calls of function '{}' expand to more than {MAX_INLINED_NODES} \
                             expression nodes",
                            function.name
                        )))
                    }
                }
                Ok(expanded)
            })();
            match result {
                Ok(expanded) => {
                    *e = expanded;
                    ControlFlow::Continue(())
                }
                Err(err) => {
                    error = Some(err);
                    ControlFlow::Break(())
                }
            }
        });
        error.map_or(Ok(()), Err)
    }
}

impl VisitorMut for Inliner<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Err(err) = self.expand(e, 0) {
            self.error = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// A call's arguments, checked against the function's parameters.
fn plain_args(f: &ast::Function, function: &SqlFunction) -> Result<Vec<Expr>> {
    let list = match &f.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::List(l) if l.duplicate_treatment.is_none() && l.clauses.is_empty() => {
            l.args.clone()
        }
        _ => {
            return Err(SluiceError::Plan(format!(
                "function {}: call it with plain arguments",
                function.name
            )))
        }
    };
    let mut args = Vec::with_capacity(list.len());
    for a in list {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
            other => {
                return Err(SluiceError::Plan(format!(
                    "function {}: argument {other} is not supported",
                    function.name
                )))
            }
        }
    }
    if args.len() != function.params.len() || f.over.is_some() || f.filter.is_some() {
        let types: Vec<&str> = function.params.iter().map(|(_, t)| t.as_str()).collect();
        return Err(SluiceError::Plan(format!(
            "function {}({}) takes {} argument{} ({}), not {}",
            function.name,
            types.join(", "),
            types.len(),
            if types.len() == 1 { "" } else { "s" },
            types.join(", "),
            args.len()
        )));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(sql: &str) -> Result<SqlFunction> {
        match super::super::parse_one(sql)? {
            super::super::Statement::CreateFunction(c) => Ok(c.function),
            other => panic!("not a function: {other:?}"),
        }
    }

    fn inlined(functions: &[SqlFunction], sql: &str) -> Result<String> {
        let map = functions
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        let super::super::Statement::Query(mut q) = super::super::parse_one(sql)? else {
            panic!("not a query")
        };
        inline(&mut q, &map)?;
        Ok(q.to_string())
    }

    #[test]
    fn bodies_in_every_spelling() {
        for sql in [
            "CREATE FUNCTION inc(a BIGINT) RETURNS BIGINT LANGUAGE sql AS $$ SELECT a + 1 $$",
            "CREATE FUNCTION inc(a BIGINT) RETURNS BIGINT AS 'select a + 1;' LANGUAGE SQL IMMUTABLE",
            "CREATE FUNCTION inc(a BIGINT) RETURNS BIGINT RETURN a + 1",
            "CREATE OR REPLACE FUNCTION inc(BIGINT) RETURNS BIGINT LANGUAGE sql AS $$ SELECT $1 + 1 $$",
        ] {
            let f = create(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(f.name, "inc");
            assert_eq!(f.returns.as_deref(), Some("BIGINT"));
            let q = inlined(&[f], "SELECT inc(x) FROM t").unwrap();
            assert_eq!(q, "SELECT CAST(((CAST((x) AS BIGINT)) + 1) AS BIGINT) FROM t", "{sql}");
        }
    }

    #[test]
    fn functions_call_functions_and_refuse_what_they_cannot() {
        let double = create("CREATE FUNCTION double(v INT) RETURNS INT RETURN v * 2").unwrap();
        let quad =
            create("CREATE FUNCTION quad(v INT) RETURNS INT RETURN double(double(v))").unwrap();
        let q = inlined(&[double.clone(), quad], "SELECT quad(3)").unwrap();
        assert!(!q.contains("double") && !q.contains("quad"), "{q}");
        let err = inlined(&[double], "SELECT double(1, 2)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes 1 argument (INT), not 2"), "{err}");
        let looped = create("CREATE FUNCTION f(v INT) RETURNS INT RETURN f(v)").unwrap();
        let err = inlined(&[looped], "SELECT f(1)").unwrap_err().to_string();
        assert!(err.contains("more than 32 deep"), "{err}");
        let four = create("CREATE FUNCTION four(v INT) RETURNS INT RETURN v + v + v + v").unwrap();
        let nested = format!("SELECT {}1{}", "four(".repeat(12), ")".repeat(12));
        let err = inlined(&[four], &nested).unwrap_err().to_string();
        assert!(err.contains("expression nodes"), "{err}");
        let err = create("CREATE FUNCTION g(a INT) RETURNS INT RETURN a + b").unwrap_err();
        assert!(err.to_string().contains("names 'b'"), "{err}");
        let f =
            create("CREATE FUNCTION h(a INT) RETURNS INT LANGUAGE sql AS $$SELECT\n(a)$$").unwrap();
        assert_eq!(f.body, "(a)");
        for (sql, says) in [
            ("CREATE FUNCTION p(a INT) RETURNS INT LANGUAGE plpgsql AS $$ BEGIN RETURN a; END $$", "LANGUAGE plpgsql"),
            ("CREATE FUNCTION s(a INT) RETURNS INT LANGUAGE sql AS $$ SELECT a FROM t $$", "one expression"),
            ("CREATE FUNCTION r(a INT) RETURNS SETOF INT LANGUAGE sql AS $$ SELECT a $$", "SETOF"),
        ] {
            let err = create(sql).unwrap_err().to_string();
            assert!(err.contains(says), "{sql}: {err}");
        }
    }
}
