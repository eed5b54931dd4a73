//! The relations a statement reads: what access control checks SELECT
//! privilege on. Every table reference counts, and so does the relation a
//! window table function reads (`TUMBLE(ev, ts, …)`). Names of system
//! schemas (`pg_catalog`, `information_schema`, `sluice`) are left out;
//! names fold to lower case unless quoted, as the catalog keeps them.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, ObjectName, TableFactor, Visit, Visitor,
};

use super::{SinkInput, Statement};

/// Schemas whose relations belong to the server, not the catalog.
const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "sluice"];

/// The names `statement` reads from (some may be CTEs or system tables:
/// the caller keeps those the catalog knows).
pub fn relations_read(statement: &Statement) -> BTreeSet<String> {
    let mut found = Found::default();
    match statement {
        Statement::Query(q) => {
            let _ = q.visit(&mut found);
        }
        Statement::CreateView(v) => {
            let _ = v.query.visit(&mut found);
        }
        Statement::CreateSink(s) => match &s.input {
            SinkInput::Relation(name) => {
                found.0.insert(name.clone());
            }
            SinkInput::Query(q) => {
                let _ = q.visit(&mut found);
            }
        },
        Statement::Explain(inner) => return relations_read(inner),
        Statement::ExplainAnalyze(name) | Statement::Describe(name) => {
            found.0.insert(name.clone());
        }
        Statement::Other(s) => {
            let _ = s.visit(&mut found);
        }
        _ => {}
    }
    found.0
}

/// Whether `statement` reads `sluice.errors` (it holds the records of
/// every source).
pub fn reads_errors_table(statement: &Statement) -> bool {
    struct Errors(bool);
    impl Visitor for Errors {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            let parts: Vec<String> = relation
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(fold))
                .collect();
            if matches!(parts.as_slice(), [.., schema, table] if schema == "sluice" && table == "errors")
            {
                self.0 = true;
            }
            ControlFlow::Continue(())
        }
    }
    let mut errors = Errors(false);
    match statement {
        Statement::Query(q) => {
            let _ = q.visit(&mut errors);
        }
        Statement::Explain(inner) => return reads_errors_table(inner),
        Statement::Other(s) => {
            let _ = s.visit(&mut errors);
        }
        _ => {}
    }
    errors.0
}

#[derive(Default)]
struct Found(BTreeSet<String>);

impl Visitor for Found {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if let Some(name) = catalog_name(relation) {
            self.0.insert(name);
        }
        ControlFlow::Continue(())
    }

    /// `TUMBLE(ev, …)`, `HOP(ev, …)`, `SESSION(ev, …)`: the first argument
    /// is the relation read.
    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            args: Some(args), ..
        } = factor
        {
            if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) = args.args.first() {
                match e {
                    Expr::Identifier(i) => {
                        self.0.insert(fold(i));
                    }
                    Expr::CompoundIdentifier(parts) => {
                        if let Some(name) = catalog_name(&ObjectName::from(parts.clone())) {
                            self.0.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn fold(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// `v`, `public.v` or `sluice.public.v` → `v`; system schemas → none.
fn catalog_name(name: &ObjectName) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(fold))
        .collect::<Option<_>>()?;
    let (last, schema) = match parts.as_slice() {
        [last] => (last, None),
        [.., schema, last] => (last, Some(schema.as_str())),
        [] => return None,
    };
    match schema {
        Some(s) if SYSTEM_SCHEMAS.contains(&s) => None,
        Some(s) if s != "public" => None,
        _ => Some(last.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(sql: &str) -> Vec<String> {
        relations_read(&crate::sql::parse_one(sql).unwrap())
            .into_iter()
            .collect()
    }

    #[test]
    fn finds_every_relation_a_statement_reads() {
        assert_eq!(read("SELECT * FROM v JOIN public.w ON true"), ["v", "w"]);
        assert_eq!(
            read("SELECT * FROM (SELECT * FROM \"Inner\") x WHERE k IN (SELECT k FROM s)"),
            ["Inner", "s"]
        );
        assert_eq!(
            read("CREATE MATERIALIZED VIEW m AS SELECT window_start, count(*) FROM TUMBLE(ev, ts, INTERVAL '1' MINUTE) GROUP BY 1"),
            ["ev", "tumble"]
        );
        assert_eq!(
            read("CREATE SINK k FROM m WITH (connector = 'file', path = 'x')"),
            ["m"]
        );
        assert_eq!(read("EXPLAIN SELECT 1 FROM t"), ["t"]);
        let errors = |sql: &str| reads_errors_table(&crate::sql::parse_one(sql).unwrap());
        assert!(errors("SELECT reason FROM sluice.errors"));
        assert!(errors(
            "SELECT * FROM sluice.sluice.errors e JOIN v ON true"
        ));
        assert!(!errors("SELECT * FROM errors"));
        assert_eq!(
            read("SELECT relname FROM pg_catalog.pg_class, information_schema.tables"),
            Vec::<String>::new()
        );
    }
}
