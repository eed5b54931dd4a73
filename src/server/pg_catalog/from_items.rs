//! FROM items as PostgreSQL reads them and DataFusion does not:
//!
//! * a scalar function is a one-row table whose column is named after the
//!   table's alias (pgcli's `SELECT * FROM current_schemas(true)`,
//!   Grafana's `FROM …, string_to_array(current_setting('search_path'), ',') s`);
//! * a one-column set-returning function's alias names its column too
//!   (Grafana's `generate_series(…) as i`), as does `unnest(…)`'s own name;
//! * `pg_get_keywords()` is a catalog table here;
//! * a query that adds materialized views to information_schema's
//!   relations itself, through pg_class's relkind `m` (Metabase's
//!   describe-fields: information_schema.columns UNION ALL the columns of
//!   relkind `m`), reads PostgreSQL's information_schema, which leaves
//!   materialized views out. Sluice lists them there for the tools that
//!   read nothing else (Grafana); such a query would see each column twice.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, TableAlias,
    TableAliasColumnDef, TableFactor, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::rewrite::call;
use super::{INFORMATION_SCHEMA, PG_CATALOG};
use crate::engine::DATABASE;

/// Scalar functions clients call in FROM.
const SCALAR: &[&str] = &[
    "current_schemas",
    "current_schema",
    "current_database",
    "current_user",
    "string_to_array",
    "version",
];

/// Set-returning functions without arguments that are catalog tables here.
const TABLES: &[&str] = &["pg_get_keywords"];

/// Set-returning functions of one column.
const ONE_COLUMN: &[&str] = &["generate_series", "range"];

/// The information_schema views that list relations.
const RELATION_VIEWS: &[&str] = &["tables", "columns", "views"];

/// Rewrites the FROM items of `query` (see the module's doc).
pub(super) fn rewrite(query: &mut ast::Query) {
    let leave_out_views = adds_materialized_views(query);
    let _ = ast::VisitMut::visit(query, &mut FromItems { leave_out_views });
}

struct FromItems {
    leave_out_views: bool,
}

impl ast::VisitorMut for FromItems {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                alias,
                ..
            } => {
                let function = function_name(name);
                if TABLES.contains(&function.as_str()) && args.args.is_empty() {
                    *name = ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(PG_CATALOG)),
                        ObjectNamePart::Identifier(Ident::new(&function)),
                    ]);
                    if let TableFactor::Table { args, .. } = factor {
                        *args = None;
                    }
                } else if SCALAR.contains(&function.as_str()) {
                    let column = alias
                        .as_ref()
                        .map_or_else(|| function.clone(), |a| a.name.value.clone());
                    let args = args
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                            _ => None,
                        })
                        .collect();
                    if let Some(subquery) = one_row(call(&function, args), &column) {
                        *factor = TableFactor::Derived {
                            lateral: false,
                            subquery: Box::new(subquery),
                            alias: Some(alias.take().unwrap_or_else(|| TableAlias {
                                explicit: true,
                                name: Ident::new(&column),
                                columns: vec![],
                                at: None,
                            })),
                            sample: None,
                        };
                    }
                } else if ONE_COLUMN.contains(&function.as_str()) {
                    name_the_column(alias);
                }
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            } if array_exprs.len() == 1 => match alias {
                Some(_) => name_the_column(alias),
                None => {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: Ident::new("unnest"),
                        columns: vec![TableAliasColumnDef::from_name("unnest")],
                        at: None,
                    })
                }
            },
            TableFactor::Table {
                name,
                args: None,
                alias,
                ..
            } if self.leave_out_views => {
                if let Some(view) = information_schema_view(name) {
                    let alias = alias.take().unwrap_or_else(|| TableAlias {
                        explicit: true,
                        name: Ident::new(&view),
                        columns: vec![],
                        at: None,
                    });
                    // Every relation listed there is a materialized view.
                    // Fully qualified inside, so that this visit leaves it.
                    let sql =
                        format!("SELECT * FROM {DATABASE}.{INFORMATION_SCHEMA}.{view} WHERE false");
                    if let Some(subquery) = parse_query(&sql) {
                        *factor = TableFactor::Derived {
                            lateral: false,
                            subquery: Box::new(subquery),
                            alias: Some(alias),
                            sample: None,
                        };
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A function's name without a `pg_catalog.` prefix, in lowercase.
fn function_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

/// `f(…) AS a` → `f(…) AS a(a)`: PostgreSQL names a one-column result after
/// the table alias.
fn name_the_column(alias: &mut Option<TableAlias>) {
    if let Some(a) = alias {
        if a.columns.is_empty() {
            a.columns = vec![TableAliasColumnDef::from_name(a.name.value.clone())];
        }
    }
}

/// `information_schema.tables` (and columns, views) as written in a FROM.
fn information_schema_view(name: &ObjectName) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
        .collect();
    match parts.as_slice() {
        [schema, view]
            if schema == INFORMATION_SCHEMA && RELATION_VIEWS.contains(&view.as_str()) =>
        {
            Some(view.clone())
        }
        _ => None,
    }
}

/// Whether `query` compares a `relkind` with `'m'`: it finds materialized
/// views through pg_class itself.
fn adds_materialized_views(query: &ast::Query) -> bool {
    let relkind = |e: &Expr| match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case("relkind"),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .is_some_and(|i| i.value.eq_ignore_ascii_case("relkind")),
        _ => false,
    };
    let m = |e: &Expr| matches!(e, Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. }) if s == "m");
    let mut found = false;
    let _ = ast::visit_expressions(query, |e| {
        found |= match e {
            Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } => (relkind(left) && m(right)) || (m(left) && relkind(right)),
            Expr::InList {
                expr,
                list,
                negated: false,
            } => relkind(expr) && list.iter().any(m),
            _ => false,
        };
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `SELECT <expr> AS "<column>"`.
fn one_row(expr: Expr, column: &str) -> Option<ast::Query> {
    let mut query = parse_query("SELECT NULL")?;
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    select.projection = vec![ast::SelectItem::ExprWithAlias {
        expr,
        alias: Ident::with_quote('"', column),
    }];
    Some(query)
}

fn parse_query(sql: &str) -> Option<ast::Query> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .ok()
        .map(|q| *q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut q = parse_query(sql).expect("parses");
        rewrite(&mut q);
        q.to_string()
    }

    #[test]
    fn scalar_functions_in_from_are_one_row_tables() {
        assert_eq!(
            rewritten("SELECT * FROM current_schemas(true)"),
            "SELECT * FROM (SELECT current_schemas(true) AS \"current_schemas\") AS current_schemas"
        );
        assert_eq!(
            rewritten("SELECT s[i] FROM generate_series(1, 2) AS i, string_to_array('a,b', ',') s"),
            "SELECT s[i] FROM generate_series(1, 2) AS i (i), \
             (SELECT string_to_array('a,b', ',') AS \"s\") s"
        );
        assert_eq!(
            rewritten("SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode = 'R'"),
            "SELECT word FROM pg_catalog.pg_get_keywords WHERE catcode = 'R'"
        );
        // Other functions in FROM (the window functions) are left alone.
        assert_eq!(
            rewritten("SELECT * FROM TUMBLE(t, ts, INTERVAL '1' SECOND)"),
            "SELECT * FROM TUMBLE(t, ts, INTERVAL '1' SECOND)"
        );
    }

    #[test]
    fn a_query_that_adds_materialized_views_reads_postgres_information_schema() {
        let metabase = "SELECT c.column_name FROM information_schema.columns AS c \
             UNION ALL SELECT a.attname FROM pg_class AS pc JOIN pg_attribute AS a \
             ON a.attrelid = pc.oid WHERE pc.relkind = 'm'";
        assert!(rewritten(metabase)
            .contains("FROM (SELECT * FROM sluice.information_schema.columns WHERE false) AS c"));
        let grafana = "SELECT column_name FROM information_schema.columns";
        assert_eq!(rewritten(grafana), grafana);
    }
}
