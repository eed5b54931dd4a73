//! Rewrites of a parsed query into the shape the planner takes, for
//! spellings users bring that mean the same thing:
//!
//! * a window table function without an alias (`FROM HOP(bids, …)`) is
//!   named after its source, so `bids.auction` refers to its columns as it
//!   would without the window;
//! * `GROUP BY window_start` without `window_end` (or the other way round)
//!   groups by both: either bound implies the other for one window, and the
//!   window aggregate needs both to know when a window closes;
//! * Flink's group-window functions (`GROUP BY TUMBLE(ts, INTERVAL '10'
//!   SECOND)` with `TUMBLE_START(…)` / `TUMBLE_END(…)` / `TUMBLE_ROWTIME(…)`
//!   in the select list, HOP and SESSION alike) and Arroyo's
//!   (`GROUP BY tumble(INTERVAL '10' SECOND)` over the source's event-time
//!   column, the window as a struct of `start` and `end`) become our window
//!   table functions in `FROM`;
//! * `generate_series(…)` in a select list returns a row per value, as
//!   PostgreSQL's set-returning function does (DataFusion's returns a list,
//!   so it is unnested), and in `FROM` its column is named after the
//!   function or the alias (`AS t` → column `t`), not `value`;
//! * PostgreSQL's JSON operators (`->`, `->>`, `#>`, `#>>`) and casts to
//!   `jsonb`/`json` become calls of [`crate::functions::json`]'s functions.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, SelectItem, TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};

use crate::error::{Result, SluiceError};

/// The window table functions (`FROM TUMBLE(src, …)`) and the bounds they
/// add (the planner's `WINDOW_START` / `WINDOW_END`).
const WINDOW_START: &str = "window_start";
const WINDOW_END: &str = "window_end";

const WINDOW_FUNCTIONS: &[&str] = &["tumble", "hop", "session"];

/// Applies every rewrite to `query` in place. `event_time` names a
/// source's event-time column (its WATERMARK FOR), for window functions
/// that leave it implied.
pub fn rewrite_query(
    query: &mut ast::Query,
    event_time: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let mut rewriter = Windows {
        event_time,
        error: None,
    };
    let _ = query.visit(&mut rewriter);
    match rewriter.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Windows<'a> {
    event_time: &'a dyn Fn(&str) -> Option<String>,
    error: Option<SluiceError>,
}

impl VisitorMut for Windows<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut ast::Select) -> ControlFlow<()> {
        if let Err(e) = group_window(select, self.event_time) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        let mut windowed = false;
        for table in &mut select.from {
            windowed |= name_window(&mut table.relation);
            for join in &mut table.joins {
                windowed |= name_window(&mut join.relation);
            }
        }
        if windowed {
            if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                complete_window_bounds(exprs);
            }
        }
        for table in &mut select.from {
            name_series_column(&mut table.relation);
            for join in &mut table.joins {
                name_series_column(&mut join.relation);
            }
        }
        for item in &mut select.projection {
            unnest_series(item);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        json_operator(expr);
        ControlFlow::Continue(())
    }
}

/// `a -> b` as `jsonb_get(a, b)` (and the other JSON operators), `x::jsonb`
/// as `jsonb(x)`.
fn json_operator(expr: &mut Expr) {
    let name = match expr {
        Expr::BinaryOp { op, .. } => match op {
            ast::BinaryOperator::Arrow => "jsonb_get",
            ast::BinaryOperator::LongArrow => "jsonb_get_text",
            ast::BinaryOperator::HashArrow => "jsonb_get_path",
            ast::BinaryOperator::HashLongArrow => "jsonb_get_path_text",
            _ => return,
        },
        // TRY_CAST keeps DataFusion's NULL-on-failure meaning.
        Expr::Cast {
            data_type,
            kind: ast::CastKind::Cast | ast::CastKind::DoubleColon,
            ..
        } => match data_type {
            ast::DataType::JSONB => "jsonb",
            ast::DataType::JSON => "json",
            _ => return,
        },
        _ => return,
    };
    let taken = std::mem::replace(expr, Expr::value(ast::Value::Null));
    *expr = match taken {
        Expr::BinaryOp { left, right, .. } => call(name, vec![*left, *right]),
        Expr::Cast { expr, .. } => call(name, vec![*expr]),
        other => other,
    };
}

/// A call of the function `name` with `args`.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ast::ObjectName(vec![ast::ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A window function in GROUP BY: its kind and arguments.
fn group_window_call(e: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = e else { return None };
    let name = single_name(&f.name)?;
    if !WINDOW_FUNCTIONS.contains(&name.as_str()) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((name, args))
}

fn single_name(name: &ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// Flink's and Arroyo's `GROUP BY TUMBLE(…)` → `FROM TUMBLE(source, …)`.
fn group_window(
    select: &mut ast::Select,
    event_time: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Ok(());
    };
    let Some(at) = exprs.iter().position(|e| group_window_call(e).is_some()) else {
        return Ok(());
    };
    let Some((kind, args)) = group_window_call(&exprs[at]) else {
        return Ok(());
    };
    let usage = || {
        SluiceError::Plan(format!(
            "GROUP BY {}(…) groups one source's rows by window: FROM names that source alone, \
             and {} takes (time_column, {}) or, over a source with WATERMARK FOR, ({})",
            kind.to_ascii_uppercase(),
            kind.to_ascii_uppercase(),
            if kind == "hop" {
                "slide, size"
            } else if kind == "session" {
                "gap"
            } else {
                "size"
            },
            if kind == "hop" {
                "slide, size"
            } else if kind == "session" {
                "gap"
            } else {
                "size"
            },
        ))
    };
    let [table] = select.from.as_slice() else {
        return Err(usage());
    };
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &table.relation
    else {
        return Err(usage());
    };
    if !table.joins.is_empty() {
        return Err(usage());
    }
    let source = name.to_string();
    let sizes = if kind == "hop" { 2 } else { 1 };
    let (time, sizes) = if args.len() == sizes + 1 {
        (args[0].to_string(), &args[1..])
    } else if args.len() == sizes {
        let column = event_time(&source.to_ascii_lowercase()).ok_or_else(|| {
            SluiceError::Plan(format!(
                "GROUP BY {}({}) needs the time column: source '{source}' has no \
                 WATERMARK FOR, so name the column: {}(time_column, …)",
                kind.to_ascii_uppercase(),
                args.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                kind.to_ascii_uppercase(),
            ))
        })?;
        (column, &args[..])
    } else {
        return Err(usage());
    };
    let alias = alias
        .as_ref()
        .map(|a| a.name.to_string())
        .unwrap_or_else(|| source.rsplit('.').next().unwrap_or(&source).to_string());
    let sizes: Vec<String> = sizes.iter().map(|e| e.to_string()).collect();
    let text = format!(
        "SELECT * FROM {}({source}, {time}, {}) AS {alias}",
        kind.to_ascii_uppercase(),
        sizes.join(", ")
    );
    let windowed = match crate::sql::parse_one(&text)? {
        crate::sql::Statement::Query(q) => match *q.body {
            ast::SetExpr::Select(s) => s.from.into_iter().next(),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(usage)?;
    select.from = vec![windowed];
    exprs.splice(
        at..=at,
        [
            Expr::Identifier(Ident::new(WINDOW_START)),
            Expr::Identifier(Ident::new(WINDOW_END)),
        ],
    );
    // TUMBLE_START(…) and friends, and Arroyo's window value, anywhere in
    // the select list and HAVING.
    let replace = |e: &mut Expr| {
        let replacement = match e {
            Expr::Function(f) => match single_name(&f.name).as_deref() {
                Some("tumble_start" | "hop_start" | "session_start") => {
                    Some(ident_expr(WINDOW_START))
                }
                Some("tumble_end" | "hop_end" | "session_end") => Some(ident_expr(WINDOW_END)),
                // Flink's rowtime of a window: the last millisecond in it.
                Some("tumble_rowtime" | "hop_rowtime" | "session_rowtime") => {
                    crate::sql::parse_expr("window_end - INTERVAL '1' MILLISECOND").ok()
                }
                Some(w) if WINDOW_FUNCTIONS.contains(&w) => {
                    crate::sql::parse_expr("named_struct('start', window_start, 'end', window_end)")
                        .ok()
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
        ControlFlow::<()>::Continue(())
    };
    let _ = ast::visit_expressions_mut(&mut select.projection, replace);
    if let Some(having) = &mut select.having {
        let _ = ast::visit_expressions_mut(having, replace);
    }
    Ok(())
}

fn ident_expr(name: &str) -> Expr {
    Expr::Identifier(Ident::new(name))
}

const GENERATE_SERIES: &str = "generate_series";

fn is_generate_series(name: &ast::ObjectName) -> bool {
    name.0.len() == 1
        && name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case(GENERATE_SERIES))
}

/// `FROM generate_series(…) [AS t]` names its one column `generate_series`
/// (or `t`), as PostgreSQL does; `FROM unnest(array)` is DataFusion's
/// UNNEST relation.
fn name_series_column(factor: &mut TableFactor) {
    if let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        ..
    } = factor
    {
        if single_name(name).as_deref() == Some("unnest") {
            let array_exprs = args
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            *factor = TableFactor::UNNEST {
                alias: alias.take(),
                array_exprs,
                with_offset: false,
                with_offset_alias: None,
                with_ordinality: false,
            };
            return;
        }
    }
    let TableFactor::Table {
        name,
        alias,
        args: Some(_),
        ..
    } = factor
    else {
        return;
    };
    if !is_generate_series(name) {
        return;
    }
    let alias = alias.get_or_insert_with(|| TableAlias {
        explicit: true,
        name: Ident::new(GENERATE_SERIES),
        columns: vec![],
        at: None,
    });
    if alias.columns.is_empty() {
        alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
    }
}

/// `SELECT generate_series(1, 3)` → `SELECT unnest(generate_series(1, 3))
/// AS generate_series`.
fn unnest_series(item: &mut SelectItem) {
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(e) => (e, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    let Expr::Function(f) = expr else { return };
    if !is_generate_series(&f.name) {
        return;
    }
    let mut unnest = f.clone();
    unnest.name = ast::ObjectName::from(vec![Ident::new("unnest")]);
    unnest.args = FunctionArguments::List(FunctionArgumentList {
        duplicate_treatment: None,
        args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Function(
            f.clone(),
        )))],
        clauses: vec![],
    });
    *item = SelectItem::ExprWithAlias {
        expr: Expr::Function(unnest),
        alias: alias.unwrap_or_else(|| Ident::new(GENERATE_SERIES)),
    };
}

/// Names an unaliased window table function after its source; whether
/// `factor` is a window table function.
fn name_window(factor: &mut TableFactor) -> bool {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        ..
    } = factor
    else {
        return false;
    };
    let is_window = name.0.len() == 1
        && name.0[0]
            .as_ident()
            .is_some_and(|i| WINDOW_FUNCTIONS.contains(&i.value.to_ascii_lowercase().as_str()));
    if !is_window {
        return false;
    }
    if alias.is_none() {
        let source = args.args.first().and_then(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => last_ident(e),
            _ => None,
        });
        if let Some(source) = source {
            *alias = Some(TableAlias {
                explicit: true,
                name: source.clone(),
                columns: vec![],
                at: None,
            });
        }
    }
    true
}

fn last_ident(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Identifier(i) => Some(i),
        Expr::CompoundIdentifier(parts) => parts.last(),
        _ => None,
    }
}

/// Adds `window_end` to a grouping that has `window_start` alone (with the
/// same qualifier), and the other way round.
fn complete_window_bounds(exprs: &mut Vec<Expr>) {
    let find = |exprs: &[Expr], column: &str| {
        exprs
            .iter()
            .find(|e| last_ident(e).is_some_and(|i| i.value.eq_ignore_ascii_case(column)))
            .cloned()
    };
    let start = find(exprs, WINDOW_START);
    let end = find(exprs, WINDOW_END);
    let (have, missing) = match (start, end) {
        (Some(s), None) => (s, WINDOW_END),
        (None, Some(e)) => (e, WINDOW_START),
        _ => return,
    };
    let added = match have {
        Expr::CompoundIdentifier(mut parts) => {
            if let Some(last) = parts.last_mut() {
                *last = Ident::new(missing);
            }
            Expr::CompoundIdentifier(parts)
        }
        _ => Expr::Identifier(Ident::new(missing)),
    };
    exprs.push(added);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{parse_one, Statement};

    fn rewritten(sql: &str) -> String {
        let Ok(Statement::Query(mut q)) = parse_one(sql) else {
            panic!("not a query: {sql}");
        };
        rewrite_query(&mut q, &|s| (s == "bids").then(|| "date_time".to_string()))
            .expect("rewrite");
        q.to_string()
    }

    #[test]
    fn window_is_named_after_its_source() {
        assert_eq!(
            rewritten("SELECT bid.auction FROM HOP(bid, date_time, INTERVAL '1' SECOND, INTERVAL '2' SECOND)"),
            "SELECT bid.auction FROM HOP(bid, date_time, INTERVAL '1' SECOND, INTERVAL '2' SECOND) AS bid"
        );
        assert_eq!(
            rewritten("SELECT b.auction FROM TUMBLE(bid, date_time, INTERVAL '1' SECOND) AS b"),
            "SELECT b.auction FROM TUMBLE(bid, date_time, INTERVAL '1' SECOND) AS b"
        );
    }

    #[test]
    fn flink_and_arroyo_group_windows() {
        assert_eq!(
            rewritten(
                "SELECT auction, TUMBLE_START(date_time, INTERVAL '10' SECOND) AS ws, count(*) \
                 FROM bids GROUP BY auction, TUMBLE(date_time, INTERVAL '10' SECOND)"
            ),
            "SELECT auction, window_start AS ws, count(*) FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) \
             AS bids GROUP BY auction, window_start, window_end"
        );
        assert_eq!(
            rewritten(
                "SELECT HOP_END(b.date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND), count(*) \
                 FROM bids AS b GROUP BY HOP(b.date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)"
            ),
            "SELECT window_end, count(*) FROM HOP(bids, b.date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) \
             AS b GROUP BY window_start, window_end"
        );
        assert_eq!(
            rewritten(
                "SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) FROM bids \
                 GROUP BY tumble(INTERVAL '1' SECOND)"
            ),
            "SELECT named_struct('start', window_start, 'end', window_end) AS w, count(*) \
             FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND) AS bids GROUP BY window_start, window_end"
        );
        let Ok(Statement::Query(mut q)) =
            parse_one("SELECT count(*) FROM other GROUP BY tumble(INTERVAL '1' SECOND)")
        else {
            panic!("query")
        };
        let err = rewrite_query(&mut q, &|_| None).expect_err("no event time");
        assert!(err.to_string().contains("WATERMARK FOR"), "{err}");
    }

    #[test]
    fn generate_series_returns_rows() {
        assert_eq!(
            rewritten("SELECT x, generate_series(1, 3) FROM t"),
            "SELECT x, unnest(generate_series(1, 3)) AS generate_series FROM t"
        );
        assert_eq!(
            rewritten("SELECT * FROM generate_series(1, 3)"),
            "SELECT * FROM generate_series(1, 3) AS generate_series (generate_series)"
        );
        assert_eq!(
            rewritten("SELECT g FROM generate_series(1, 3) AS g"),
            "SELECT g FROM generate_series(1, 3) AS g (g)"
        );
    }

    #[test]
    fn window_start_alone_implies_window_end() {
        assert_eq!(
            rewritten("SELECT window_start, count(*) FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start"),
            "SELECT window_start, count(*) FROM TUMBLE(t, ts, INTERVAL '1' SECOND) AS t GROUP BY window_start, window_end"
        );
        assert_eq!(
            rewritten("SELECT count(*) FROM TUMBLE(t, ts, INTERVAL '1' SECOND) AS w GROUP BY w.window_end, k"),
            "SELECT count(*) FROM TUMBLE(t, ts, INTERVAL '1' SECOND) AS w GROUP BY w.window_end, k, w.window_start"
        );
        // Without a window in FROM nothing changes.
        assert_eq!(
            rewritten("SELECT window_start FROM v GROUP BY window_start"),
            "SELECT window_start FROM v GROUP BY window_start"
        );
    }
}
