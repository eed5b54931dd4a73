//! PostgreSQL spellings DataFusion does not plan, rewritten on the AST:
//! `::regclass` and the other catalog casts, `COLLATE`, `pg_catalog.`
//! prefixes, `LIKE … ESCAPE`, SQL's parameterless functions,
//! `(composite).field`, information_schema's `_pg_expandarray`, literals
//! compared with boolean catalog columns, and PostgreSQL's names for
//! unnamed columns. FROM items are `from_items`', subqueries `subqueries`'.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Value, ValueWithSpan,
};

use super::subqueries::{
    at_most_one_row, catalog_tables, never_true, CatalogTables, SortOnSubqueries,
};
use super::types::type_oid_by_name;
use super::{from_items, tables, Relations, INFORMATION_SCHEMA, PG_CATALOG, SYSTEM_TABLE_OIDS};
use crate::error::{Result, SluiceError};

/// A SELECT that joins an empty catalog table returns nothing, so its
/// subqueries never run: they become NULL before anything tries to plan
/// them (psql's publication query has a LATERAL-style `generate_series`).
struct Prune<'r>(&'r Relations);

impl ast::VisitorMut for Prune<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut ast::Select) -> ControlFlow<()> {
        name_columns(select);
        if joins_an_empty_table(select, self.0) {
            // Set-returning functions (over int2vector columns kept as text)
            // go too.
            let _ = ast::visit_expressions_mut(&mut select.projection, |e| {
                let set_returning = matches!(e, Expr::Function(f)
                    if ["unnest", "generate_subscripts", "generate_series", "regexp_split_to_table"]
                        .contains(&f.name.to_string().to_ascii_lowercase().as_str()));
                if set_returning || matches!(e, Expr::Subquery(_)) {
                    *e = Expr::value(Value::Null);
                }
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::Continue(())
    }
}

pub(super) fn rewrite(query: &mut ast::Query, rels: &Relations) -> Result<()> {
    from_items::rewrite(query);
    let _ = ast::VisitMut::visit(query, &mut SortOnSubqueries);
    let _ = ast::VisitMut::visit(query, &mut Prune(rels));
    // Unqualified catalog tables live in pg_catalog (on every search path).
    // pg_catalog.unnest(…) and other functions in FROM: DataFusion's own.
    let _ = ast::visit_relations_mut(query, |name| {
        match name.0.as_slice() {
            [ObjectNamePart::Identifier(table)] => {
                let t = table.value.to_ascii_lowercase();
                if rels.by_name(&table.value).is_none() && tables::find(PG_CATALOG, &t).is_some() {
                    *name = ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(PG_CATALOG)),
                        ObjectNamePart::Identifier(table.clone()),
                    ]);
                }
            }
            [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(table)]
                if schema.value.eq_ignore_ascii_case(PG_CATALOG)
                    && tables::find(PG_CATALOG, &table.value).is_none() =>
            {
                *name = ObjectName(vec![ObjectNamePart::Identifier(table.clone())]);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let tables = catalog_tables(query);
    let mut failure = None;
    let _ = ast::visit_expressions_mut(query, |e| {
        if let Err(err) = rewrite_expr(e, rels, &tables) {
            failure = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

fn rewrite_expr(e: &mut Expr, rels: &Relations, tables: &CatalogTables) -> Result<()> {
    match e {
        // ARRAY(SELECT rolname FROM pg_auth_members … WHERE m.member =
        // r.oid): psql's `\du` lists the roles a role is a member of. As
        // an aggregate over the correlated rows, DataFusion plans it.
        Expr::Function(f)
            if f.name.to_string().eq_ignore_ascii_case("array")
                && matches!(&f.args, ast::FunctionArguments::Subquery(q)
                    if q.to_string().contains("pg_auth_members")) =>
        {
            if let ast::FunctionArguments::Subquery(q) = &f.args {
                let mut q = q.clone();
                if let ast::SetExpr::Select(select) = q.body.as_mut() {
                    if let [ast::SelectItem::UnnamedExpr(item)] = select.projection.as_mut_slice() {
                        let inner = std::mem::replace(item, Expr::value(Value::Null));
                        *item = call("array_agg", vec![inner]);
                    }
                }
                *e = Expr::Subquery(q);
            }
        }
        // Any other ARRAY(SELECT …): psql's only use builds a relation's
        // options, and no relation here has any.
        Expr::Function(f)
            if matches!(f.args, ast::FunctionArguments::Subquery(_))
                && f.name.to_string().eq_ignore_ascii_case("array") =>
        {
            *e = Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(Expr::value(Value::Null)),
                data_type: ast::DataType::Array(ast::ArrayElemTypeDef::SquareBracket(
                    Box::new(ast::DataType::Text),
                    None,
                )),
                array: false,
                format: None,
            };
        }
        Expr::Function(f) => {
            // pg_catalog.format_type(…) → format_type(…)
            if let [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(name)] =
                f.name.0.as_slice()
            {
                let s = schema.value.to_ascii_lowercase();
                if s == PG_CATALOG || s == INFORMATION_SCHEMA {
                    f.name = ObjectName(vec![ObjectNamePart::Identifier(name.clone())]);
                }
            }
            // _pg_expandarray is set-returning: one (x, n) row per element.
            if f.name.to_string().eq_ignore_ascii_case("_pg_expandarray") {
                let expanded = std::mem::replace(e, Expr::value(Value::Null));
                *e = call("unnest", vec![expanded]);
            }
        }
        // `(composite).field` (pgjdbc's `(result.KEYS).x`): DataFusion
        // reads a field with get_field.
        Expr::CompoundFieldAccess { root, access_chain }
            if access_chain
                .iter()
                .all(|a| matches!(a, ast::AccessExpr::Dot(Expr::Identifier(_)))) =>
        {
            let mut value = std::mem::replace(root.as_mut(), Expr::value(Value::Null));
            for access in access_chain.iter() {
                if let ast::AccessExpr::Dot(Expr::Identifier(field)) = access {
                    let name =
                        Expr::value(Value::SingleQuotedString(field.value.to_ascii_lowercase()));
                    value = call("get_field", vec![value, name]);
                }
            }
            *e = value;
        }
        // Over a catalog table with no rows (defaults, collations,
        // descriptions): NULL, which DataFusion need not decorrelate.
        Expr::Subquery(q) if matches!(q.body.as_ref(), ast::SetExpr::Select(s) if joins_an_empty_table(s, rels)) => {
            *e = Expr::value(Value::Null)
        }
        Expr::Subquery(q) => at_most_one_row(q),
        Expr::Case { conditions, .. } => {
            for when in conditions.iter_mut() {
                if !matches!(when.result, Expr::Value(_))
                    && never_true(&when.condition, rels, tables)
                {
                    when.result = Expr::value(Value::Null);
                }
            }
        }
        // DataFusion's LIKE escapes with a backslash only: ESCAPE '/'
        // (SQLAlchemy's) is translated in the pattern.
        Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            if let Some(ValueWithSpan {
                value: Value::SingleQuotedString(esc),
                ..
            }) = escape_char
            {
                if esc != "\\" {
                    let esc = Expr::value(Value::SingleQuotedString(esc.clone()));
                    let p = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
                    **pattern = call("like_escape", vec![p, esc]);
                    *escape_char = None;
                }
            }
        }
        // SQL's parameterless functions, which read as column names.
        Expr::Identifier(i) if keyword_function(i).is_some() => {
            *e = call(&i.value.to_ascii_lowercase(), vec![]);
        }
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = inner;
        }
        Expr::BinaryOp { op, left, right } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                if let Some(std) = parts.last().and_then(|o| standard_operator(o)) {
                    *op = std;
                }
            }
            if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                boolean_literal(left, right);
                boolean_literal(right, left);
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            if let Some(replacement) = cast_target(data_type, expr, rels)? {
                *e = replacement;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `i.indisprimary = 't'` (psqlODBC): PostgreSQL reads a quoted literal
/// compared with a boolean as a boolean; DataFusion compares text with a
/// boolean not at all. When `column` names a boolean catalog column, the
/// literal `other` becomes TRUE or FALSE.
fn boolean_literal(column: &Expr, other: &mut Expr) {
    let name = match column {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return,
        },
        _ => return,
    };
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(text),
        ..
    }) = other
    else {
        return;
    };
    let truth = match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => true,
        "f" | "false" | "n" | "no" | "off" | "0" => false,
        _ => return,
    };
    if tables::is_boolean_column(&name.to_ascii_lowercase()) {
        *other = Expr::value(Value::Boolean(truth));
    }
}

/// Names the unnamed columns of `select` as PostgreSQL does (`count(*)` is
/// `count`, `1` is `?column?`, `x::text` is `x`) rather than by their
/// DataFusion display (`count(*)`, `Int64(1)`); a name already taken gets a
/// suffix (DataFusion needs distinct names).
fn name_columns(select: &mut ast::Select) {
    let mut taken: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            ast::SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            ast::SelectItem::UnnamedExpr(Expr::Identifier(i)) if keyword_function(i).is_none() => {
                Some(i.value.clone())
            }
            ast::SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|i| i.value.clone())
            }
            _ => None,
        })
        .collect();
    for item in select.projection.iter_mut() {
        let ast::SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        // A column (cast or not) keeps DataFusion's name: the column's
        // own as an alias would clash with it in ORDER BY.
        let mut inner = &*expr;
        while let Expr::Cast { expr, .. } | Expr::Nested(expr) = inner {
            inner = expr;
        }
        let keyword = matches!(inner, Expr::Identifier(i) if keyword_function(i).is_some());
        if !keyword && matches!(inner, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let base = column_name(expr).unwrap_or_else(|| "?column?".into());
        let mut name = base.clone();
        let mut n = 1;
        while taken.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        taken.push(name.clone());
        let expr = std::mem::replace(expr, Expr::value(Value::Null));
        *item = ast::SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        };
    }
}

/// `current_catalog`, `current_user`…: SQL's functions without parentheses,
/// which sqlparser reads as column names.
fn keyword_function(i: &Ident) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "current_catalog",
        "current_schema",
        "current_user",
        "current_role",
        "session_user",
        "user",
    ];
    if i.quote_style.is_some() {
        return None;
    }
    NAMES
        .iter()
        .find(|n| i.value.eq_ignore_ascii_case(n))
        .copied()
}

/// PostgreSQL's name for an unnamed column (`FigureColname`).
fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase()),
        Expr::Cast {
            expr, data_type, ..
        } => column_name(expr).or_else(|| {
            Some(match data_type {
                ast::DataType::Custom(name, _) => name.to_string().to_ascii_lowercase(),
                t => t.to_string().to_ascii_lowercase(),
            })
        }),
        Expr::Nested(e) => column_name(e),
        Expr::Case { .. } => Some("case".into()),
        Expr::Exists { .. } => Some("exists".into()),
        Expr::Array(_) => Some("array".into()),
        _ => None,
    }
}

/// Whether `select` inner-joins a system table that has no rows now (so it
/// returns no rows).
fn joins_an_empty_table(select: &ast::Select, rels: &Relations) -> bool {
    let inner = select.from.iter().flat_map(|t| {
        std::iter::once(&t.relation).chain(t.joins.iter().filter_map(|j| match j.join_operator {
            ast::JoinOperator::Join(_)
            | ast::JoinOperator::Inner(_)
            | ast::JoinOperator::CrossJoin(_) => Some(&j.relation),
            _ => None,
        }))
    });
    let empty = |name: &ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
            .collect();
        let table = match parts.as_slice() {
            [schema, t] => tables::find(schema, t),
            _ => None,
        };
        table.is_some_and(|d| (d.rows)(rels).is_empty())
    };
    inner
        .filter_map(|r| match r {
            ast::TableFactor::Table {
                name, args: None, ..
            } => Some(name),
            _ => None,
        })
        .any(empty)
}

fn standard_operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        _ => return None,
    })
}

/// Casts to PostgreSQL's own types: `'v'::regclass` becomes the view's
/// OID, `x::oid` / `::regtype` an integer, `::name` / `::"char"` text.
fn cast_target(dt: &ast::DataType, expr: &mut Expr, rels: &Relations) -> Result<Option<Expr>> {
    // `proargtypes::regtype[]` (pgcli): an array of OIDs.
    if let ast::DataType::Array(
        ast::ArrayElemTypeDef::SquareBracket(element, _)
        | ast::ArrayElemTypeDef::AngleBracket(element),
    ) = dt
    {
        if is_oid_type(element) {
            // A parameter `$1::oid[]` is described as oid[] (a list of
            // u32, see encode::pg_type), as PostgreSQL describes it: asyncpg
            // decodes oid[] itself, but asks the server about int8[] with
            // this very query, again and again.
            let placeholder = matches!(
                expr,
                Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(_),
                    ..
                })
            );
            let element = match placeholder {
                true => ast::DataType::IntUnsigned(None),
                false => ast::DataType::BigInt(None),
            };
            let oids = ast::DataType::Array(ast::ArrayElemTypeDef::SquareBracket(
                Box::new(element),
                None,
            ));
            return Ok(Some(Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(std::mem::replace(expr, Expr::value(Value::Null))),
                data_type: oids,
                array: false,
                format: None,
            }));
        }
    }
    let name = match dt {
        ast::DataType::Regclass => "regclass".to_string(),
        ast::DataType::Text | ast::DataType::Varchar(_) => "text".to_string(),
        ast::DataType::Custom(name, _) => match name.0.last() {
            Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let take = |expr: &mut Expr| std::mem::replace(expr, Expr::value(Value::Null));
    let to = |t: ast::DataType, expr: &mut Expr| {
        Some(Expr::Cast {
            kind: ast::CastKind::DoubleColon,
            expr: Box::new(take(expr)),
            data_type: t,
            array: false,
            format: None,
        })
    };
    let literal = match &*expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    };
    let oid = |n: i64| Some(Expr::value(Value::Number(n.to_string(), false)));
    Ok(match name.as_str() {
        // 'v'::regclass: the relation's OID; x::regclass::text: its name.
        "regclass" => match literal {
            Some(s) => {
                let unqualified = s.rsplit('.').next().unwrap_or(&s).trim_matches('"');
                let found = rels.by_name(unqualified).map(|r| r.oid).or_else(|| {
                    tables::pg_catalog()
                        .position(|t| t.name == unqualified)
                        .map(|i| SYSTEM_TABLE_OIDS + i as i64)
                });
                oid(found.ok_or_else(|| {
                    SluiceError::Catalog(format!("relation '{s}' does not exist"))
                })?)
            }
            None => Some(call("regclass_oid", vec![take(expr)])),
        },
        "regtype" => match literal {
            Some(s) => oid(type_oid_by_name(&s)
                .ok_or_else(|| SluiceError::Catalog(format!("type '{s}' does not exist")))?),
            None => Some(call("regtype_oid", vec![take(expr)])),
        },
        // Functions are compared by name, as a regproc is shown
        // ('pg_catalog.array_in'::regproc is array_in: pgjdbc's is_array).
        "regproc" | "regprocedure" => match literal {
            Some(s) => Some(Expr::value(Value::SingleQuotedString(
                s.strip_prefix("pg_catalog.").unwrap_or(&s).to_string(),
            ))),
            None => to(ast::DataType::BigInt(None), expr),
        },
        "text" | "name" | "varchar" => match &mut *expr {
            Expr::Function(f) if f.name.to_string() == "regtype_oid" => Some(call(
                "format_type",
                vec![first_arg(f), Expr::value(Value::Null)],
            )),
            Expr::Function(f) if f.name.to_string() == "regclass_oid" => {
                Some(call("relation_name", vec![first_arg(f)]))
            }
            // TEXT and VARCHAR DataFusion knows; pg_catalog.text, name not.
            _ if matches!(dt, ast::DataType::Custom(..)) => to(ast::DataType::Text, expr),
            _ => None,
        },
        "oid" | "regnamespace" | "regrole" | "regoper" | "xid" | "cid" | "tid" => {
            to(ast::DataType::BigInt(None), expr)
        }
        "char" | "bpchar" | "int2vector" | "oidvector" | "aclitem" | "pg_node_tree" => {
            to(ast::DataType::Text, expr)
        }
        "int2" => to(ast::DataType::SmallInt(None), expr),
        "int4" => to(ast::DataType::Integer(None), expr),
        "int8" => to(ast::DataType::BigInt(None), expr),
        "bool" => to(ast::DataType::Boolean, expr),
        "float8" => to(ast::DataType::DoublePrecision, expr),
        _ => None,
    })
}

/// Whether `dt` is `oid` or one of its `reg*` aliases.
fn is_oid_type(dt: &ast::DataType) -> bool {
    match dt {
        ast::DataType::Regclass => true,
        ast::DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .is_some_and(|i| {
                [
                    "oid",
                    "regclass",
                    "regtype",
                    "regproc",
                    "regprocedure",
                    "regnamespace",
                    "regrole",
                    "regoper",
                ]
                .contains(&i.value.to_ascii_lowercase().as_str())
            }),
        _ => false,
    }
}

/// A call of `name` with `args`.
pub(super) use crate::sql::rewrite::call;

fn first_arg(f: &mut ast::Function) -> Expr {
    match &mut f.args {
        ast::FunctionArguments::List(l) => match l.args.first_mut() {
            Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))) => {
                std::mem::replace(e, Expr::value(Value::Null))
            }
            _ => Expr::value(Value::Null),
        },
        _ => Expr::value(Value::Null),
    }
}
