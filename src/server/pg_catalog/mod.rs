//! The PostgreSQL system catalogs, as psql, drivers and BI tools read them.
//!
//! Clients learn what a database holds from `pg_catalog` (psql's `\d`,
//! SQLAlchemy's inspector, pgjdbc's `DatabaseMetaData`) and
//! `information_schema` (Grafana, many others), and call PostgreSQL's
//! functions (`format_type`, `pg_table_is_visible`, `version()`…) on the way.
//! For each ad-hoc query this module offers those tables, built from the
//! engine's catalog as in-memory DataFusion tables when the query names
//! them (most queries name none), registers the functions, and
//! rewrites PostgreSQL spellings DataFusion does not plan (`::regclass`,
//! `COLLATE pg_catalog.default`, `pg_catalog.`-qualified functions).
//!
//! Every materialized view is a relation of kind `m` in schema `public` of
//! database `sluice`, with its columns typed as the wire protocol sends them
//! (see [`super::encode::pg_type`]). Sources and sinks are not relations a
//! client can query, so they are not listed; `SHOW SOURCES` / `SHOW SINKS`
//! list them. Tables the emulation keeps empty (constraints, triggers,
//! policies…) exist so that the queries which join them plan and run.
//!
//! The parts: `tables` turns a table's definition into a `MemTable`;
//! `relations`, `types`, `cluster`, `roles` and `backends` define
//! pg_catalog's tables by what they describe, `information_schema` the standard's views; `rewrite`
//! (with `from_items` and `subqueries`) makes PostgreSQL's spellings
//! plannable; `functions` (with `strings`) are PostgreSQL's functions.

mod backends;
mod cluster;
mod from_items;
mod functions;
mod information_schema;
mod relations;
mod rewrite;
mod roles;
mod strings;
mod subqueries;
mod tables;
mod types;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast;

use crate::catalog::Catalog;
use crate::engine::{SystemCatalog, DATABASE};
use crate::error::Result;
use crate::server::access::Access;
use crate::server::activity::{self, Activity};

const PG_CATALOG: &str = "pg_catalog";
const INFORMATION_SCHEMA: &str = "information_schema";
/// Namespace OIDs as PostgreSQL numbers them.
const PG_CATALOG_OID: i64 = 11;
const PUBLIC_OID: i64 = 2200;
const INFORMATION_SCHEMA_OID: i64 = 13_000;
const DATABASE_OID: i64 = 16_384;
/// The one role: the owner of everything.
const OWNER_OID: i64 = 10;
const OWNER: &str = "sluice";
/// The emulated catalog tables' OIDs (`'pg_class'::regclass`).
const SYSTEM_TABLE_OIDS: i64 = 12_000;
/// Relations are numbered from here, in the order they were created.
const FIRST_RELATION_OID: i64 = 16_400;

/// `version()`: PostgreSQL's form (drivers parse the major version out of
/// it), then what is really answering.
pub fn version() -> String {
    format!(
        "PostgreSQL {} on {}-linux, Sluice {} streaming SQL engine",
        super::settings::SERVER_VERSION,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// PostgreSQL's catalog over Sluice's, and the server's sessions
/// (`pg_stat_activity`).
pub struct PgCatalog {
    activity: Arc<Activity>,
    access: Arc<Access>,
}

impl PgCatalog {
    pub fn new(activity: Arc<Activity>, access: Arc<Access>) -> PgCatalog {
        PgCatalog { activity, access }
    }
}

impl SystemCatalog for PgCatalog {
    fn provides(&self, relation: &TableReference) -> bool {
        let catalog_ok = relation.catalog().is_none_or(|c| c == DATABASE);
        // pg_catalog is on every search path.
        let schema = relation.schema().unwrap_or(PG_CATALOG);
        catalog_ok && tables::find(schema, relation.table()).is_some()
    }

    fn rewrite(&self, catalog: &Catalog, query: &mut ast::Query) -> Result<()> {
        rewrite::rewrite(query, &Relations::of(catalog, &|_| None))
    }

    fn register(
        &self,
        ctx: &SessionContext,
        catalog: &Catalog,
        rows: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<()> {
        let mut relations = Relations::of(catalog, rows);
        relations.1 = self.activity.rows();
        // Who is asking: the session whose statement this is.
        let current = activity::current_pid()
            .and_then(|pid| relations.1.iter().find(|r| r.pid == pid))
            .map(|r| r.user.clone());
        // As PostgreSQL: only superusers see other roles' statements.
        if let Some(me) = &current {
            if !self.access.principal(me).superuser {
                for row in relations.1.iter_mut().filter(|r| r.user != *me) {
                    row.query = "<insufficient privilege>".into();
                }
            }
        }
        relations.2 = roles::Roles::of(&self.access, current);
        for r in &mut relations.0 {
            r.owner_oid = relations.2.oid(&self.access.grants.owner(&r.name));
            r.acl = self.access.grants.acl_items(&r.name);
        }
        let relations = Arc::new(relations);
        tables::register(ctx, Arc::clone(&relations))?;
        let who = roles::Who::of(&relations, Some(&self.access));
        for f in functions::functions(&relations, &who) {
            ctx.register_udf(ScalarUDF::new_from_impl(f));
        }
        for f in backends::functions(&self.activity) {
            ctx.register_udf(ScalarUDF::new_from_impl(f));
        }
        Ok(())
    }
}

/// A relation clients see: a materialized view.
struct Relation {
    oid: i64,
    name: String,
    schema: SchemaRef,
    definition: String,
    rows: i64,
    owner_oid: i64,
    /// `relacl`: none until something is granted.
    acl: Option<Vec<String>>,
}

/// The views clients see, the server's sessions, and its roles.
struct Relations(
    Vec<Relation>,
    Vec<crate::server::activity::Row>,
    roles::Roles,
);

impl Relations {
    /// The catalog's relations; `rows` says how many rows a view holds.
    fn of(catalog: &Catalog, rows: &dyn Fn(&str) -> Option<usize>) -> Relations {
        let mut out = Vec::new();
        for (i, d) in catalog.definitions().iter().enumerate() {
            if let Some(v) = catalog.view(&d.name) {
                out.push(Relation {
                    oid: FIRST_RELATION_OID + i as i64,
                    name: d.name.clone(),
                    schema: v.plan.output_schema.clone(),
                    definition: view_query(&d.sql),
                    rows: rows(&d.name).map_or(0, |n| n as i64),
                    owner_oid: OWNER_OID,
                    acl: None,
                });
            }
        }
        Relations(out, Vec::new(), roles::Roles::default())
    }

    fn by_name(&self, name: &str) -> Option<&Relation> {
        self.0.iter().find(|r| r.name == name)
    }
}

/// The query of `CREATE MATERIALIZED VIEW v … AS <query> …`, as
/// `pg_get_viewdef` returns it: the stored statement parsed again and its
/// query printed, whatever the CREATE's spacing, IF NOT EXISTS or WITH
/// options.
fn view_query(sql: &str) -> String {
    match crate::sql::parse_one(sql) {
        Ok(crate::sql::Statement::CreateView(v)) => format!("{};", v.query),
        // Every stored view parsed when it was created; the text is the
        // next best answer.
        _ => format!("{};", sql.trim().trim_end_matches(';')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_definitions_are_the_query_whatever_the_create_looks_like() {
        for create in [
            "CREATE MATERIALIZED VIEW v AS SELECT k, max(v) AS top FROM ev GROUP BY k",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS   v\n  AS\n    SELECT k, max(v) AS top\n FROM ev GROUP BY k;",
            "create materialized view v with (retention = '1 hour') as SELECT k, max(v) AS top FROM ev GROUP BY k",
            "CREATE MATERIALIZED VIEW v AS SELECT k, max(v) AS top FROM ev GROUP BY k WITH (allowed_lateness = '5 seconds')",
        ] {
            assert_eq!(
                view_query(create),
                "SELECT k, max(v) AS top FROM ev GROUP BY k;",
                "{create}"
            );
        }
    }
}
