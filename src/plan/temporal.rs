//! `JOIN r FOR SYSTEM_TIME AS OF s.p` with `p` a processing-time column
//! (`p AS PROCTIME()`) or `PROCTIME()` itself: a lookup join. Each row of
//! the stream side is matched, when it arrives, against the rows the
//! versioned side `r` holds at that moment (a view's current rows, say),
//! and emitted then, once: later changes of `r` change nothing already
//! emitted, and only `r`'s current rows are kept (the stream's are not).
//!
//! `JOIN r FOR SYSTEM_TIME AS OF s.ts` with `ts` the stream's event time
//! (its `WATERMARK FOR` column): a temporal join in event time. Each row of
//! `r` is a version of its join key, valid from its own event time until
//! the next version's; a row of `s` is matched with the version valid at
//! its time, once the watermark shows no version that could still be it is
//! to come.
//!
//! DataFusion does not read the clause, so it is taken out of the query
//! here, before planning; lowering makes a join one of whose inputs reads
//! a relation it named a lookup or temporal join (`lower_join.rs`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, TableFactor, TableVersion, VisitMut, VisitorMut,
};

use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};

/// A relation read `FOR SYSTEM_TIME AS OF`: the versioned side of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub relation: String,
    /// `None`: as of the processing time (a lookup join). Otherwise the
    /// stream's column the versions are looked up at (its event time), as
    /// `(qualifier, column)`.
    pub at: Option<(Option<String>, String)>,
}

/// Takes every `FOR SYSTEM_TIME AS OF` out of `query`; returns the
/// relations they named (the versioned sides of lookup and temporal
/// joins).
pub(super) fn take_versions(query: &mut ast::Query, catalog: &Catalog) -> Result<Vec<Versioned>> {
    struct Take<'a> {
        catalog: &'a Catalog,
        /// Relations the query reads (for its processing-time columns).
        relations: Vec<String>,
        versioned: Vec<Versioned>,
        error: Option<SluiceError>,
    }
    impl VisitorMut for Take<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
            // Before its relations lose their version clauses.
            keep_times(&mut query.body, self.catalog, &self.relations);
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, version, .. } = factor else {
                return ControlFlow::Continue(());
            };
            let relation = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or_else(|| name.to_string());
            self.relations.push(relation.clone());
            match version.take() {
                None => ControlFlow::Continue(()),
                Some(TableVersion::ForSystemTimeAsOf(at)) => {
                    if is_proctime(&at, self.catalog, &self.relations) {
                        self.versioned.push(Versioned { relation, at: None });
                        return ControlFlow::Continue(());
                    }
                    let column = match &at {
                        Expr::Identifier(i) => Some((None, i.value.clone())),
                        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                            [.., q, c] => Some((Some(q.value.clone()), c.value.clone())),
                            [c] => Some((None, c.value.clone())),
                            [] => None,
                        },
                        _ => None,
                    };
                    match column {
                        Some(column) => {
                            self.versioned.push(Versioned {
                                relation,
                                at: Some(column),
                            });
                            ControlFlow::Continue(())
                        }
                        None => {
                            self.error = Some(SluiceError::NotSupported(format!(
                                "FOR SYSTEM_TIME AS OF {at} in a continuous query: name the \
                                 stream's event-time column (its WATERMARK FOR column) for a \
                                 temporal join, or a processing-time column (declared AS \
                                 PROCTIME()) or PROCTIME() to look up the current row"
                            )));
                            ControlFlow::Break(())
                        }
                    }
                }
                Some(other) => {
                    self.error = Some(SluiceError::NotSupported(format!(
                        "{other} in a continuous query"
                    )));
                    ControlFlow::Break(())
                }
            }
        }
    }
    // The relations first (an AS OF may name a column of one that comes
    // after it in the FROM), then the clauses.
    let mut names = Take {
        catalog,
        relations: Vec::new(),
        versioned: Vec::new(),
        error: None,
    };
    let mut copy = query.clone();
    let _ = copy.visit(&mut names);
    let mut take = Take {
        catalog,
        relations: names.relations,
        versioned: Vec::new(),
        error: None,
    };
    let _ = query.visit(&mut take);
    match take.error {
        Some(e) => Err(e),
        None => Ok(take.versioned),
    }
}

/// DataFusion prunes the columns a query does not use, and the clause that
/// uses the times is gone before it plans: each join with a relation `r`
/// versioned `AS OF` an event time `at` gains `r.time <= at` in its ON
/// (`time` being `r`'s event time), true of the version it matches, so
/// both times reach the join.
fn keep_times(body: &mut ast::SetExpr, catalog: &Catalog, relations: &[String]) {
    use ast::{JoinConstraint, JoinOperator as J, SetExpr};
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            keep_times(left, catalog, relations);
            keep_times(right, catalog, relations);
        }
        SetExpr::Select(select) => {
            for from in &mut select.from {
                // Each factor's join: the first factor's is the first join.
                let mut times = Vec::new();
                let factors: Vec<&TableFactor> = std::iter::once(&from.relation)
                    .chain(from.joins.iter().map(|j| &j.relation))
                    .collect();
                for (i, factor) in factors.iter().enumerate() {
                    let TableFactor::Table {
                        name,
                        alias,
                        version: Some(TableVersion::ForSystemTimeAsOf(at)),
                        ..
                    } = factor
                    else {
                        continue;
                    };
                    if is_proctime(at, catalog, relations)
                        || !may_be_event_time(at, &factors, catalog)
                    {
                        continue;
                    }
                    let Some(relation) = name.0.last().and_then(|p| p.as_ident()) else {
                        continue;
                    };
                    let Some(column) = catalog.event_time(&relation.value) else {
                        continue;
                    };
                    let qualifier = alias
                        .as_ref()
                        .map_or_else(|| relation.clone(), |a| a.name.clone());
                    let time = Expr::CompoundIdentifier(vec![qualifier, ast::Ident::new(column)]);
                    let bound = Expr::BinaryOp {
                        left: Box::new(time),
                        op: ast::BinaryOperator::LtEq,
                        right: Box::new(at.clone()),
                    };
                    times.push((i.saturating_sub(1), bound));
                }
                for (j, bound) in times {
                    let Some(join) = from.joins.get_mut(j) else {
                        continue;
                    };
                    let constraint = match &mut join.join_operator {
                        J::Join(c)
                        | J::Inner(c)
                        | J::Left(c)
                        | J::LeftOuter(c)
                        | J::Right(c)
                        | J::RightOuter(c)
                        | J::FullOuter(c) => c,
                        _ => continue,
                    };
                    if let JoinConstraint::On(on) = constraint {
                        let on_before = std::mem::replace(on, Expr::Value(ast::Value::Null.into()));
                        *on = Expr::BinaryOp {
                            left: Box::new(Expr::Nested(Box::new(on_before))),
                            op: ast::BinaryOperator::And,
                            right: Box::new(bound),
                        };
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whether `at` may be the event time of one of `factors` (a table's
/// `WATERMARK FOR` column; any column of a subquery or table function):
/// otherwise comparing it with a version's time could fail on its type
/// before lowering says what is wrong.
fn may_be_event_time(at: &Expr, factors: &[&TableFactor], catalog: &Catalog) -> bool {
    let (qualifier, column) = match at {
        Expr::Identifier(c) => (None, c),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., q, c] => (Some(q), c),
            _ => return false,
        },
        _ => return false,
    };
    factors.iter().any(|f| {
        let (name, alias) = match f {
            // A table function (`TUMBLE(…)`) is any column's.
            TableFactor::Table {
                name, alias, args, ..
            } => (args.is_none().then_some(name), alias),
            TableFactor::Derived { alias, .. } | TableFactor::Function { alias, .. } => {
                (None, alias)
            }
            TableFactor::TableFunction { alias, .. } => (None, alias),
            _ => return false,
        };
        let table = name.and_then(|n| n.0.last()).and_then(|p| p.as_ident());
        let named = alias.as_ref().map(|a| &a.name).or(table);
        if qualifier.is_some_and(|q| named.is_none_or(|n| !n.value.eq_ignore_ascii_case(&q.value)))
        {
            return false;
        }
        match table {
            Some(t) => catalog
                .event_time(&t.value)
                .is_some_and(|e| e.eq_ignore_ascii_case(&column.value)),
            None => true,
        }
    })
}

/// Whether `at` is the processing time: `PROCTIME()`, or a column declared
/// `AS PROCTIME()` in one of `relations`.
fn is_proctime(at: &Expr, catalog: &Catalog, relations: &[String]) -> bool {
    let column = match at {
        Expr::Function(f) => {
            return f.name.to_string().eq_ignore_ascii_case("proctime")
                && match &f.args {
                    FunctionArguments::None => true,
                    FunctionArguments::List(l) => l.args.is_empty(),
                    FunctionArguments::Subquery(_) => false,
                };
        }
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    relations.iter().any(|r| {
        catalog.relation(r).is_some_and(|s| {
            s.columns.iter().any(|c| {
                c.name.eq_ignore_ascii_case(column)
                    && c.metadata.as_deref() == Some(crate::format::PROCTIME)
            })
        })
    })
}
