//! Subqueries where DataFusion does not plan them as they stand: in ORDER
//! BY, `IN (SELECT …)` in a projection, a scalar subquery DataFusion would
//! not decorrelate (made an aggregate), and one in a CASE branch that no
//! row of the catalog takes.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, TableWithJoins, Value,
    ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::rewrite::call;
use super::{tables, Relations, PG_CATALOG};

/// The catalog tables a query reads, by the names (aliases) it gives them;
/// None for a name given to different tables in different places.
pub(super) type CatalogTables = HashMap<String, Option<&'static tables::TableDef>>;

pub(super) fn catalog_tables(query: &ast::Query) -> CatalogTables {
    struct Collect<'a>(&'a mut CatalogTables);
    impl ast::Visitor for Collect<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &ast::TableFactor) -> ControlFlow<()> {
            if let ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
                    .collect();
                let table = match parts.as_slice() {
                    // Catalog tables are qualified by now (see rewrite).
                    [schema, t] if schema == PG_CATALOG => tables::find(PG_CATALOG, t),
                    _ => None,
                };
                if let Some(table) = table {
                    let key = alias.as_ref().map_or(table.name, |a| a.name.value.as_str());
                    let known = self
                        .0
                        .entry(key.to_ascii_lowercase())
                        .or_insert(Some(table));
                    if known.is_some_and(|t| t.name != table.name) {
                        *known = None;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut out = CatalogTables::new();
    let _ = ast::Visit::visit(query, &mut Collect(&mut out));
    out
}

/// `ORDER BY <expression with a subquery>` (Grafana's table picker sorts
/// on `quote_ident(table_schema) IN (SELECT …)`): DataFusion plans a
/// subquery in a projection or a filter, not in a sort. The query computes
/// each ORDER BY expression as a column, and an outer query sorts on those
/// columns and leaves them out. DataFusion plans `x IN (SELECT y …)` in a
/// filter only: in a projection it becomes `array_has((SELECT array_agg(y)
/// …), x)`, a scalar subquery (false, not NULL, where NULLs are involved).
pub(super) struct SortOnSubqueries;

impl ast::VisitorMut for SortOnSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        let Some(ast::OrderBy {
            kind: ast::OrderByKind::Expressions(order),
            ..
        }) = &query.order_by
        else {
            return ControlFlow::Continue(());
        };
        let mut has_subquery = false;
        let _ = ast::visit_expressions(order, |e| {
            has_subquery |= matches!(
                e,
                Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
            );
            ControlFlow::<()>::Continue(())
        });
        let plain_select =
            matches!(query.body.as_ref(), ast::SetExpr::Select(s) if s.distinct.is_none());
        if has_subquery && plain_select {
            sort_outside(query);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut ast::Select) -> ControlFlow<()> {
        in_subqueries_to_arrays(select);
        ControlFlow::Continue(())
    }
}

fn in_subqueries_to_arrays(select: &mut ast::Select) {
    let _ = ast::visit_expressions_mut(&mut select.projection, |e| {
        let Expr::InSubquery {
            expr,
            subquery,
            negated,
        } = e
        else {
            return ControlFlow::<()>::Continue(());
        };
        let ast::SetExpr::Select(inner) = subquery.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let [ast::SelectItem::UnnamedExpr(item) | ast::SelectItem::ExprWithAlias { expr: item, .. }] =
            inner.projection.as_mut_slice()
        else {
            return ControlFlow::Continue(());
        };
        let value = std::mem::replace(item, Expr::value(Value::Null));
        *item = call("array_agg", vec![value]);
        let array = Expr::Subquery(subquery.clone());
        let needle = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
        let found = call(
            "coalesce",
            vec![
                call("array_has", vec![array, needle]),
                Expr::value(Value::Boolean(false)),
            ],
        );
        *e = match negated {
            true => Expr::UnaryOp {
                op: ast::UnaryOperator::Not,
                expr: Box::new(found),
            },
            false => found,
        };
        ControlFlow::Continue(())
    });
}

fn sort_outside(query: &mut ast::Query) {
    const SORTED: &str = "SELECT * EXCLUDE (\"?sort?\") FROM (SELECT 1) AS \"?sorted?\"";
    let Ok(mut outer) = Parser::new(&GenericDialect {})
        .try_with_sql(SORTED)
        .and_then(|mut p| p.parse_query())
    else {
        return;
    };
    let (ast::SetExpr::Select(inner), ast::SetExpr::Select(sorted)) =
        (query.body.as_mut(), outer.body.as_mut())
    else {
        return;
    };
    let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(order),
        ..
    }) = &mut query.order_by
    else {
        return;
    };
    // Every ORDER BY expression but a column position moves inside.
    let mut hidden = Vec::new();
    for (i, item) in order.iter_mut().enumerate() {
        if matches!(item.expr, Expr::Value(_)) {
            continue;
        }
        let name = Ident::with_quote('"', format!("?sort {}?", i + 1));
        let expr = std::mem::replace(&mut item.expr, Expr::Identifier(name.clone()));
        inner.projection.push(ast::SelectItem::ExprWithAlias {
            expr,
            alias: name.clone(),
        });
        hidden.push(ObjectName(vec![ObjectNamePart::Identifier(name)]));
    }
    if let [ast::SelectItem::Wildcard(options)] = sorted.projection.as_mut_slice() {
        options.opt_exclude = Some(ast::ExcludeSelectItem::Multiple(hidden));
    }
    if let Some(TableWithJoins {
        relation: ast::TableFactor::Derived { subquery, .. },
        ..
    }) = sorted.from.first_mut()
    {
        std::mem::swap(&mut subquery.body, &mut query.body);
    }
    std::mem::swap(&mut query.body, &mut outer.body);
}

/// Whether `condition` is `<catalog table>.<column> = '<literal>'` and no
/// row of that table has that value: `CASE WHEN t.typtype = 'd' THEN (…)`
/// (t being pg_type) in asyncpg's type introspection, whose THEN (a
/// correlated recursive query over domains, which DataFusion does not
/// plan) is then never needed.
pub(super) fn never_true(condition: &Expr, rels: &Relations, tables: &CatalogTables) -> bool {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = condition
    else {
        return false;
    };
    let Expr::CompoundIdentifier(parts) = left.as_ref() else {
        return false;
    };
    let [qualifier, column] = parts.as_slice() else {
        return false;
    };
    let Some(Some(table)) = tables.get(&qualifier.value.to_ascii_lowercase()) else {
        return false;
    };
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(literal),
        ..
    }) = right.as_ref()
    else {
        return false;
    };
    tables::column_values(table, &column.value.to_ascii_lowercase(), rels).is_some_and(|values| {
        !values
            .iter()
            .any(|v| v.as_deref() == Some(literal.as_str()))
    })
}

/// A scalar subquery returns at most one row; DataFusion plans a
/// correlated one only when an aggregate says so. `(SELECT x FROM … WHERE
/// …)` becomes `(SELECT max(x) …)`: the same value when there is one row.
pub(super) fn at_most_one_row(q: &mut ast::Query) {
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let grouped = match &select.group_by {
        ast::GroupByExpr::Expressions(e, _) => !e.is_empty(),
        ast::GroupByExpr::All(_) => true,
    };
    if grouped || select.projection.len() != 1 {
        return;
    }
    let (ast::SelectItem::UnnamedExpr(item) | ast::SelectItem::ExprWithAlias { expr: item, .. }) =
        &mut select.projection[0]
    else {
        return;
    };
    let text = item.to_string().to_ascii_lowercase();
    const AGGREGATES: &[&str] = &[
        "count(",
        "sum(",
        "min(",
        "max(",
        "avg(",
        "array_agg(",
        "string_agg(",
        "bool_and(",
        "bool_or(",
        "every(",
    ];
    if AGGREGATES.iter().any(|a| text.contains(a)) {
        return;
    }
    let inner = std::mem::replace(item, Expr::value(Value::Null));
    *item = call("max", vec![inner]);
}
