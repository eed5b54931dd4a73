//! `JOIN r FOR SYSTEM_TIME AS OF s.p` with `p` a processing-time column
//! (`p AS PROCTIME()`) or `PROCTIME()` itself: a lookup join. Each row of
//! the stream side is matched, when it arrives, against the rows the
//! versioned side `r` holds at that moment (a view's current rows, say),
//! and emitted then, once: later changes of `r` change nothing already
//! emitted, and only `r`'s current rows are kept (the stream's are not).
//!
//! DataFusion does not read the clause, so it is taken out of the query
//! here, before planning; lowering makes a join one of whose inputs reads
//! a relation it named a lookup join (`lower_join.rs`). An `AS OF` an event
//! time (a temporal join in event time) is refused.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, TableFactor, TableVersion, VisitMut, VisitorMut,
};

use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};

/// Takes every `FOR SYSTEM_TIME AS OF` out of `query`; returns the
/// relations they named (the versioned sides of lookup joins).
pub(super) fn take_versions(query: &mut ast::Query, catalog: &Catalog) -> Result<Vec<String>> {
    struct Take<'a> {
        catalog: &'a Catalog,
        /// Relations the query reads (for its processing-time columns).
        relations: Vec<String>,
        versioned: Vec<String>,
        error: Option<SluiceError>,
    }
    impl VisitorMut for Take<'_> {
        type Break = ();
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
                        self.versioned.push(relation);
                        ControlFlow::Continue(())
                    } else {
                        self.error = Some(SluiceError::NotSupported(format!(
                            "FOR SYSTEM_TIME AS OF {at} in a continuous query: a temporal join \
                             in event time is not supported yet; AS OF a processing-time column \
                             (declared AS PROCTIME()) or PROCTIME() looks up the current row"
                        )));
                        ControlFlow::Break(())
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
