//! The PostgreSQL system catalogs, as psql, drivers and BI tools read them.
//!
//! Clients learn what a database holds from `pg_catalog` (psql's `\d`,
//! SQLAlchemy's inspector, pgjdbc's `DatabaseMetaData`) and
//! `information_schema` (Grafana, many others), and call PostgreSQL's
//! functions (`format_type`, `pg_table_is_visible`, `version()`…) on the way.
//! For each ad-hoc query this module builds those tables from the engine's
//! catalog as in-memory DataFusion tables, registers the functions, and
//! rewrites PostgreSQL spellings DataFusion does not plan (`::regclass`,
//! `COLLATE pg_catalog.default`, `pg_catalog.`-qualified functions).
//!
//! Every materialized view is a relation of kind `m` in schema `public` of
//! database `sluice`, with its columns typed as the wire protocol sends them
//! (see [`super::encode::pg_type`]). Sources and sinks are not relations a
//! client can query, so they are not listed; `SHOW SOURCES` / `SHOW SINKS`
//! list them. Tables the emulation keeps empty (constraints, triggers,
//! policies…) exist so that the queries which join them plan and run.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Builder, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Value, ValueWithSpan,
};
use pgwire::api::Type;
use postgres_types::Kind;

use crate::catalog::Catalog;
use crate::engine::{SystemCatalog, DATABASE};
use crate::error::{Result, SluiceError};

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
        super::session::SERVER_VERSION,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// psql writes `a OPERATOR(pg_catalog.~) b`; only PostgreSQL's own parser
/// reads that, so it becomes `a ~ b` before parsing.
pub fn normalize(sql: &str) -> std::borrow::Cow<'_, str> {
    const OPERATOR: &str = "OPERATOR(pg_catalog.";
    if !sql.contains(OPERATOR) {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(OPERATOR) {
        let after = &rest[at + OPERATOR.len()..];
        let Some(end) = after.find(')') else { break };
        out.push_str(&rest[..at]);
        out.push_str(after[..end].trim());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.into()
}

#[derive(Debug, Default)]
pub struct PgCatalog;

impl SystemCatalog for PgCatalog {
    fn provides(&self, relation: &TableReference) -> bool {
        let catalog_ok = relation.catalog().is_none_or(|c| c == DATABASE);
        catalog_ok
            && match relation.schema() {
                Some(PG_CATALOG) => TABLES.iter().any(|t| t.name == relation.table()),
                Some(INFORMATION_SCHEMA) => INFORMATION_SCHEMA_TABLES
                    .iter()
                    .any(|t| t.name == relation.table()),
                // pg_catalog is on every search path.
                None => TABLES.iter().any(|t| t.name == relation.table()),
                Some(_) => false,
            }
    }

    fn rewrite(&self, catalog: &Catalog, query: &mut ast::Query) -> Result<()> {
        rewrite(query, &Relations::of(catalog))
    }

    fn register(&self, ctx: &SessionContext, catalog: &Catalog) -> Result<()> {
        let relations = Relations::of(catalog);
        register_tables(ctx, &relations)?;
        for f in functions(&relations) {
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
}

struct Relations(Vec<Relation>);

impl Relations {
    fn of(catalog: &Catalog) -> Relations {
        let mut out = Vec::new();
        for (i, d) in catalog.definitions().iter().enumerate() {
            if let Some(v) = catalog.view(&d.name) {
                out.push(Relation {
                    oid: FIRST_RELATION_OID + i as i64,
                    name: d.name.clone(),
                    schema: v.plan.output_schema.clone(),
                    definition: view_query(&d.sql),
                    rows: v.state.row_count().map_or(0, |n| n as i64),
                });
            }
        }
        Relations(out)
    }

    fn by_name(&self, name: &str) -> Option<&Relation> {
        self.0.iter().find(|r| r.name == name)
    }
}

/// The query of `CREATE MATERIALIZED VIEW v AS <query>`, as `pg_get_viewdef`
/// returns it.
fn view_query(sql: &str) -> String {
    let upper = sql.to_ascii_uppercase();
    let query = upper
        .find(" AS ")
        .map_or(sql, |at| sql[at + 4..].trim_start());
    format!("{query};")
}

// ---------------------------------------------------------------------------
// Types

/// The types a column can have on the wire, with what pg_type says of them:
/// (type, length, category).
const TYPES: &[(Type, i16, char)] = &[
    (Type::BOOL, 1, 'B'),
    (Type::BYTEA, -1, 'U'),
    (Type::CHAR, 1, 'Z'),
    (Type::NAME, 64, 'S'),
    (Type::INT8, 8, 'N'),
    (Type::INT2, 2, 'N'),
    (Type::INT4, 4, 'N'),
    (Type::TEXT, -1, 'S'),
    (Type::OID, 4, 'N'),
    (Type::JSON, -1, 'U'),
    (Type::FLOAT4, 4, 'N'),
    (Type::FLOAT8, 8, 'N'),
    (Type::BPCHAR, -1, 'S'),
    (Type::VARCHAR, -1, 'S'),
    (Type::DATE, 4, 'D'),
    (Type::TIME, 8, 'D'),
    (Type::TIMESTAMP, 8, 'D'),
    (Type::TIMESTAMPTZ, 8, 'D'),
    (Type::INTERVAL, 16, 'T'),
    (Type::NUMERIC, -1, 'N'),
    (Type::UUID, 16, 'U'),
    (Type::JSONB, -1, 'U'),
    (Type::REGCLASS, 4, 'N'),
    (Type::REGTYPE, 4, 'N'),
    (Type::REGPROC, 4, 'N'),
    (Type::BOOL_ARRAY, -1, 'A'),
    (Type::BYTEA_ARRAY, -1, 'A'),
    (Type::INT2_ARRAY, -1, 'A'),
    (Type::INT4_ARRAY, -1, 'A'),
    (Type::INT8_ARRAY, -1, 'A'),
    (Type::TEXT_ARRAY, -1, 'A'),
    (Type::VARCHAR_ARRAY, -1, 'A'),
    (Type::FLOAT4_ARRAY, -1, 'A'),
    (Type::FLOAT8_ARRAY, -1, 'A'),
    (Type::NUMERIC_ARRAY, -1, 'A'),
    (Type::DATE_ARRAY, -1, 'A'),
    (Type::TIME_ARRAY, -1, 'A'),
    (Type::TIMESTAMP_ARRAY, -1, 'A'),
    (Type::TIMESTAMPTZ_ARRAY, -1, 'A'),
    (Type::INTERVAL_ARRAY, -1, 'A'),
    (Type::JSON_ARRAY, -1, 'A'),
    (Type::JSONB_ARRAY, -1, 'A'),
    (Type::OID_ARRAY, -1, 'A'),
];

fn type_by_oid(oid: i64) -> Option<&'static Type> {
    TYPES
        .iter()
        .map(|(t, _, _)| t)
        .find(|t| i64::from(t.oid()) == oid)
}

/// The array type whose elements are `t`.
fn array_of(t: &Type) -> Option<&'static Type> {
    TYPES.iter().map(|(a, _, _)| a).find(|a| match a.kind() {
        Kind::Array(e) => e == t,
        _ => false,
    })
}

/// `format_type(oid, typmod)`: the SQL name of a type.
fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    let t = type_by_oid(oid)?;
    if let Kind::Array(e) = t.kind() {
        return format_type(i64::from(e.oid()), typmod).map(|n| format!("{n}[]"));
    }
    let modifier = typmod.filter(|m| *m >= 4);
    Some(match *t {
        Type::BOOL => "boolean".into(),
        Type::INT2 => "smallint".into(),
        Type::INT4 => "integer".into(),
        Type::INT8 => "bigint".into(),
        Type::FLOAT4 => "real".into(),
        Type::FLOAT8 => "double precision".into(),
        Type::VARCHAR => "character varying".into(),
        Type::BPCHAR => "character".into(),
        Type::CHAR => "\"char\"".into(),
        Type::TIME => "time without time zone".into(),
        Type::TIMESTAMP => "timestamp without time zone".into(),
        Type::TIMESTAMPTZ => "timestamp with time zone".into(),
        Type::NUMERIC => match modifier {
            Some(m) => format!("numeric({},{})", (m - 4) >> 16, (m - 4) & 0xffff),
            None => "numeric".into(),
        },
        _ => t.name().to_string(),
    })
}

/// `atttypmod` of a column: numeric's precision and scale, else -1.
fn typmod(dt: &DataType) -> i64 {
    match dt {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *s >= 0 => {
            ((i64::from(*p) << 16) | i64::from(*s)) + 4
        }
        _ => -1,
    }
}

// ---------------------------------------------------------------------------
// Tables

/// Column types of the emulated tables.
#[derive(Clone, Copy)]
enum Ty {
    Oid,
    I16,
    I32,
    F32,
    Text,
    Bool,
    TextArray,
}

/// A value in a row of an emulated table.
#[derive(Clone)]
enum V {
    I(i64),
    F(f64),
    S(String),
    B(bool),
    Null,
}

impl From<i64> for V {
    fn from(v: i64) -> V {
        V::I(v)
    }
}

impl From<&str> for V {
    fn from(v: &str) -> V {
        V::S(v.to_string())
    }
}

impl From<String> for V {
    fn from(v: String) -> V {
        V::S(v)
    }
}

impl From<bool> for V {
    fn from(v: bool) -> V {
        V::B(v)
    }
}

struct TableDef {
    name: &'static str,
    columns: &'static [(&'static str, Ty)],
    rows: fn(&Relations) -> Vec<Vec<V>>,
}

fn none(_: &Relations) -> Vec<Vec<V>> {
    Vec::new()
}

use Ty::{Bool, Oid, Text, TextArray, F32, I16, I32};

const TABLES: &[TableDef] = &[
    TableDef {
        name: "pg_namespace",
        columns: &[
            ("oid", Oid),
            ("nspname", Text),
            ("nspowner", Oid),
            ("nspacl", TextArray),
        ],
        rows: |_| {
            [
                (PG_CATALOG_OID, PG_CATALOG),
                (PUBLIC_OID, "public"),
                (INFORMATION_SCHEMA_OID, INFORMATION_SCHEMA),
            ]
            .into_iter()
            .map(|(oid, name)| vec![oid.into(), name.into(), OWNER_OID.into(), V::Null])
            .collect()
        },
    },
    TableDef {
        name: "pg_class",
        columns: &[
            ("oid", Oid),
            ("relname", Text),
            ("relnamespace", Oid),
            ("reltype", Oid),
            ("reloftype", Oid),
            ("relowner", Oid),
            ("relam", Oid),
            ("relfilenode", Oid),
            ("reltablespace", Oid),
            ("relpages", I32),
            ("reltuples", F32),
            ("relallvisible", I32),
            ("reltoastrelid", Oid),
            ("relhasindex", Bool),
            ("relisshared", Bool),
            ("relpersistence", Text),
            ("relkind", Text),
            ("relnatts", I16),
            ("relchecks", I16),
            ("relhasrules", Bool),
            ("relhastriggers", Bool),
            ("relhassubclass", Bool),
            ("relrowsecurity", Bool),
            ("relforcerowsecurity", Bool),
            ("relispopulated", Bool),
            ("relreplident", Text),
            ("relispartition", Bool),
            ("relrewrite", Oid),
            ("relfrozenxid", Oid),
            ("relminmxid", Oid),
            ("relacl", TextArray),
            ("reloptions", TextArray),
            ("relpartbound", Text),
        ],
        rows: |rels| {
            rels.0
                .iter()
                .map(|r| {
                    vec![
                        r.oid.into(),
                        r.name.as_str().into(),
                        PUBLIC_OID.into(),
                        0.into(),
                        0.into(),
                        OWNER_OID.into(),
                        0.into(),
                        r.oid.into(),
                        0.into(),
                        0.into(),
                        V::F(r.rows as f64),
                        0.into(),
                        0.into(),
                        false.into(),
                        false.into(),
                        "p".into(),
                        "m".into(),
                        (r.schema.fields().len() as i64).into(),
                        0.into(),
                        false.into(),
                        false.into(),
                        false.into(),
                        false.into(),
                        false.into(),
                        true.into(),
                        "d".into(),
                        false.into(),
                        0.into(),
                        0.into(),
                        0.into(),
                        V::Null,
                        V::Null,
                        V::Null,
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "pg_attribute",
        columns: &[
            ("attrelid", Oid),
            ("attname", Text),
            ("atttypid", Oid),
            ("attstattarget", I32),
            ("attlen", I16),
            ("attnum", I16),
            ("attndims", I32),
            ("attcacheoff", I32),
            ("atttypmod", I32),
            ("attbyval", Bool),
            ("attalign", Text),
            ("attstorage", Text),
            ("attcompression", Text),
            ("attnotnull", Bool),
            ("atthasdef", Bool),
            ("atthasmissing", Bool),
            ("attidentity", Text),
            ("attgenerated", Text),
            ("attisdropped", Bool),
            ("attislocal", Bool),
            ("attinhcount", I32),
            ("attcollation", Oid),
            ("attacl", TextArray),
            ("attoptions", TextArray),
            ("attfdwoptions", TextArray),
            ("attmissingval", Text),
        ],
        rows: |rels| {
            let mut rows = Vec::new();
            for r in &rels.0 {
                for (i, f) in r.schema.fields().iter().enumerate() {
                    let t = super::encode::pg_type(f.data_type());
                    let len = TYPES
                        .iter()
                        .find(|(x, _, _)| *x == t)
                        .map_or(-1, |(_, l, _)| i64::from(*l));
                    let array = matches!(t.kind(), Kind::Array(_));
                    rows.push(vec![
                        r.oid.into(),
                        f.name().as_str().into(),
                        i64::from(t.oid()).into(),
                        (-1).into(),
                        len.into(),
                        (i as i64 + 1).into(),
                        i64::from(array).into(),
                        (-1).into(),
                        typmod(f.data_type()).into(),
                        (len > 0 && len <= 8).into(),
                        "i".into(),
                        "p".into(),
                        "".into(),
                        (!f.is_nullable()).into(),
                        false.into(),
                        false.into(),
                        "".into(),
                        "".into(),
                        false.into(),
                        true.into(),
                        0.into(),
                        0.into(),
                        V::Null,
                        V::Null,
                        V::Null,
                        V::Null,
                    ]);
                }
            }
            rows
        },
    },
    TableDef {
        name: "pg_type",
        columns: &[
            ("oid", Oid),
            ("typname", Text),
            ("typnamespace", Oid),
            ("typowner", Oid),
            ("typlen", I16),
            ("typbyval", Bool),
            ("typtype", Text),
            ("typcategory", Text),
            ("typispreferred", Bool),
            ("typisdefined", Bool),
            ("typdelim", Text),
            ("typrelid", Oid),
            ("typsubscript", Text),
            ("typelem", Oid),
            ("typarray", Oid),
            ("typinput", Text),
            ("typoutput", Text),
            ("typreceive", Text),
            ("typsend", Text),
            ("typmodin", Text),
            ("typmodout", Text),
            ("typanalyze", Text),
            ("typalign", Text),
            ("typstorage", Text),
            ("typnotnull", Bool),
            ("typbasetype", Oid),
            ("typtypmod", I32),
            ("typndims", I32),
            ("typcollation", Oid),
            ("typdefaultbin", Text),
            ("typdefault", Text),
            ("typacl", TextArray),
        ],
        rows: |_| {
            TYPES
                .iter()
                .map(|(t, len, category)| {
                    let elem = match t.kind() {
                        Kind::Array(e) => i64::from(e.oid()),
                        _ => 0,
                    };
                    let array = array_of(t).map_or(0, |a| i64::from(a.oid()));
                    let io = if elem != 0 { "array" } else { t.name() };
                    vec![
                        i64::from(t.oid()).into(),
                        t.name().into(),
                        PG_CATALOG_OID.into(),
                        OWNER_OID.into(),
                        i64::from(*len).into(),
                        (*len > 0 && *len <= 8).into(),
                        "b".into(),
                        category.to_string().into(),
                        false.into(),
                        true.into(),
                        ",".into(),
                        0.into(),
                        "-".into(),
                        elem.into(),
                        array.into(),
                        format!("{io}_in").into(),
                        format!("{io}_out").into(),
                        format!("{io}_recv").into(),
                        format!("{io}_send").into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "i".into(),
                        "p".into(),
                        false.into(),
                        0.into(),
                        (-1).into(),
                        0.into(),
                        0.into(),
                        V::Null,
                        V::Null,
                        V::Null,
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "pg_database",
        columns: &[
            ("oid", Oid),
            ("datname", Text),
            ("datdba", Oid),
            ("encoding", I32),
            ("datlocprovider", Text),
            ("datistemplate", Bool),
            ("datallowconn", Bool),
            ("datconnlimit", I32),
            ("datfrozenxid", Oid),
            ("datminmxid", Oid),
            ("dattablespace", Oid),
            ("datcollate", Text),
            ("datctype", Text),
            ("daticulocale", Text),
            ("daticurules", Text),
            ("datcollversion", Text),
            ("datacl", TextArray),
        ],
        rows: |_| {
            vec![vec![
                DATABASE_OID.into(),
                DATABASE.into(),
                OWNER_OID.into(),
                6.into(),
                "c".into(),
                false.into(),
                true.into(),
                (-1).into(),
                0.into(),
                0.into(),
                1663.into(),
                "C.UTF-8".into(),
                "C.UTF-8".into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
            ]]
        },
    },
    TableDef {
        name: "pg_settings",
        columns: &[
            ("name", Text),
            ("setting", Text),
            ("unit", Text),
            ("category", Text),
            ("short_desc", Text),
            ("extra_desc", Text),
            ("context", Text),
            ("vartype", Text),
            ("source", Text),
            ("min_val", Text),
            ("max_val", Text),
            ("enumvals", TextArray),
            ("boot_val", Text),
            ("reset_val", Text),
            ("sourcefile", Text),
            ("sourceline", I32),
            ("pending_restart", Bool),
        ],
        rows: |_| {
            super::session::DEFAULTS
                .iter()
                .filter(|(name, _)| !name.contains(' '))
                .map(|(name, value)| {
                    vec![
                        (*name).into(),
                        (*value).into(),
                        V::Null,
                        "Client Connection Defaults".into(),
                        V::Null,
                        V::Null,
                        "user".into(),
                        "string".into(),
                        "default".into(),
                        V::Null,
                        V::Null,
                        V::Null,
                        (*value).into(),
                        (*value).into(),
                        V::Null,
                        V::Null,
                        false.into(),
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "pg_proc",
        columns: &[
            ("oid", Oid),
            ("proname", Text),
            ("pronamespace", Oid),
            ("proowner", Oid),
            ("prolang", Oid),
            ("procost", F32),
            ("prorows", F32),
            ("provariadic", Oid),
            ("prosupport", Text),
            ("prokind", Text),
            ("prosecdef", Bool),
            ("proleakproof", Bool),
            ("proisstrict", Bool),
            ("proretset", Bool),
            ("provolatile", Text),
            ("proparallel", Text),
            ("pronargs", I16),
            ("pronargdefaults", I16),
            ("prorettype", Oid),
            ("proargtypes", Text),
            ("proallargtypes", TextArray),
            ("proargmodes", TextArray),
            ("proargnames", TextArray),
            ("prosrc", Text),
            ("probin", Text),
            ("proconfig", TextArray),
            ("proacl", TextArray),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_index",
        columns: &[
            ("indexrelid", Oid),
            ("indrelid", Oid),
            ("indnatts", I16),
            ("indnkeyatts", I16),
            ("indisunique", Bool),
            ("indnullsnotdistinct", Bool),
            ("indisprimary", Bool),
            ("indisexclusion", Bool),
            ("indimmediate", Bool),
            ("indisclustered", Bool),
            ("indisvalid", Bool),
            ("indcheckxmin", Bool),
            ("indisready", Bool),
            ("indislive", Bool),
            ("indisreplident", Bool),
            ("indkey", Text),
            ("indcollation", Text),
            ("indclass", Text),
            ("indoption", Text),
            ("indexprs", Text),
            ("indpred", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_description",
        columns: &[
            ("objoid", Oid),
            ("classoid", Oid),
            ("objsubid", I32),
            ("description", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_shdescription",
        columns: &[("objoid", Oid), ("classoid", Oid), ("description", Text)],
        rows: none,
    },
    TableDef {
        name: "pg_attrdef",
        columns: &[
            ("oid", Oid),
            ("adrelid", Oid),
            ("adnum", I16),
            ("adbin", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_am",
        columns: &[
            ("oid", Oid),
            ("amname", Text),
            ("amhandler", Text),
            ("amtype", Text),
        ],
        rows: |_| {
            vec![vec![
                2.into(),
                "heap".into(),
                "heap_tableam_handler".into(),
                "t".into(),
            ]]
        },
    },
    TableDef {
        name: "pg_collation",
        columns: &[
            ("oid", Oid),
            ("collname", Text),
            ("collnamespace", Oid),
            ("collowner", Oid),
            ("collprovider", Text),
            ("collisdeterministic", Bool),
            ("collencoding", I32),
            ("collcollate", Text),
            ("collctype", Text),
            ("colliculocale", Text),
            ("collicurules", Text),
            ("collversion", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_constraint",
        columns: &[
            ("oid", Oid),
            ("conname", Text),
            ("connamespace", Oid),
            ("contype", Text),
            ("condeferrable", Bool),
            ("condeferred", Bool),
            ("convalidated", Bool),
            ("conrelid", Oid),
            ("contypid", Oid),
            ("conindid", Oid),
            ("conparentid", Oid),
            ("confrelid", Oid),
            ("confupdtype", Text),
            ("confdeltype", Text),
            ("confmatchtype", Text),
            ("conislocal", Bool),
            ("coninhcount", I32),
            ("connoinherit", Bool),
            ("conkey", TextArray),
            ("confkey", TextArray),
            ("conbin", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_inherits",
        columns: &[
            ("inhrelid", Oid),
            ("inhparent", Oid),
            ("inhseqno", I32),
            ("inhdetachpending", Bool),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_roles",
        columns: ROLE_COLUMNS,
        rows: roles,
    },
    TableDef {
        name: "pg_authid",
        columns: ROLE_COLUMNS,
        rows: roles,
    },
    TableDef {
        name: "pg_user",
        columns: &[
            ("usename", Text),
            ("usesysid", Oid),
            ("usecreatedb", Bool),
            ("usesuper", Bool),
            ("userepl", Bool),
            ("usebypassrls", Bool),
            ("passwd", Text),
            ("valuntil", Text),
            ("useconfig", TextArray),
        ],
        rows: |_| {
            vec![vec![
                OWNER.into(),
                OWNER_OID.into(),
                true.into(),
                true.into(),
                false.into(),
                false.into(),
                "********".into(),
                V::Null,
                V::Null,
            ]]
        },
    },
    TableDef {
        name: "pg_auth_members",
        columns: &[
            ("roleid", Oid),
            ("member", Oid),
            ("grantor", Oid),
            ("admin_option", Bool),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_tablespace",
        columns: &[
            ("oid", Oid),
            ("spcname", Text),
            ("spcowner", Oid),
            ("spcacl", TextArray),
            ("spcoptions", TextArray),
        ],
        rows: |_| {
            vec![vec![
                1663.into(),
                "pg_default".into(),
                OWNER_OID.into(),
                V::Null,
                V::Null,
            ]]
        },
    },
    TableDef {
        name: "pg_matviews",
        columns: &[
            ("schemaname", Text),
            ("matviewname", Text),
            ("matviewowner", Text),
            ("tablespace", Text),
            ("hasindexes", Bool),
            ("ispopulated", Bool),
            ("definition", Text),
        ],
        rows: |rels| {
            rels.0
                .iter()
                .map(|r| {
                    vec![
                        "public".into(),
                        r.name.as_str().into(),
                        OWNER.into(),
                        V::Null,
                        false.into(),
                        true.into(),
                        r.definition.as_str().into(),
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "pg_views",
        columns: &[
            ("schemaname", Text),
            ("viewname", Text),
            ("viewowner", Text),
            ("definition", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_tables",
        columns: &[
            ("schemaname", Text),
            ("tablename", Text),
            ("tableowner", Text),
            ("tablespace", Text),
            ("hasindexes", Bool),
            ("hasrules", Bool),
            ("hastriggers", Bool),
            ("rowsecurity", Bool),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_enum",
        columns: &[
            ("oid", Oid),
            ("enumtypid", Oid),
            ("enumsortorder", F32),
            ("enumlabel", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_range",
        columns: &[
            ("rngtypid", Oid),
            ("rngsubtype", Oid),
            ("rngmultitypid", Oid),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_trigger",
        columns: &[
            ("oid", Oid),
            ("tgrelid", Oid),
            ("tgparentid", Oid),
            ("tgname", Text),
            ("tgfoid", Oid),
            ("tgtype", I16),
            ("tgenabled", Text),
            ("tgisinternal", Bool),
            ("tgconstrrelid", Oid),
            ("tgconstrindid", Oid),
            ("tgconstraint", Oid),
            ("tgdeferrable", Bool),
            ("tginitdeferred", Bool),
            ("tgnargs", I16),
            ("tgattr", Text),
            ("tgargs", Text),
            ("tgqual", Text),
            ("tgoldtable", Text),
            ("tgnewtable", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_rewrite",
        columns: &[
            ("oid", Oid),
            ("rulename", Text),
            ("ev_class", Oid),
            ("ev_type", Text),
            ("ev_enabled", Text),
            ("is_instead", Bool),
            ("ev_qual", Text),
            ("ev_action", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_policy",
        columns: &[
            ("oid", Oid),
            ("polname", Text),
            ("polrelid", Oid),
            ("polcmd", Text),
            ("polpermissive", Bool),
            // oid[] in PostgreSQL; psql compares it with '{0}'.
            ("polroles", Text),
            ("polqual", Text),
            ("polwithcheck", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_statistic_ext",
        columns: &[
            ("oid", Oid),
            ("stxrelid", Oid),
            ("stxname", Text),
            ("stxnamespace", Oid),
            ("stxowner", Oid),
            ("stxstattarget", I32),
            ("stxkeys", Text),
            ("stxkind", TextArray),
            ("stxexprs", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_publication",
        columns: &[
            ("oid", Oid),
            ("pubname", Text),
            ("pubowner", Oid),
            ("puballtables", Bool),
            ("pubinsert", Bool),
            ("pubupdate", Bool),
            ("pubdelete", Bool),
            ("pubtruncate", Bool),
            ("pubviaroot", Bool),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_publication_rel",
        columns: &[
            ("oid", Oid),
            ("prpubid", Oid),
            ("prrelid", Oid),
            ("prqual", Text),
            ("prattrs", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_publication_namespace",
        columns: &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)],
        rows: none,
    },
    TableDef {
        name: "pg_foreign_table",
        columns: &[
            ("ftrelid", Oid),
            ("ftserver", Oid),
            ("ftoptions", TextArray),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_partitioned_table",
        columns: &[
            ("partrelid", Oid),
            ("partstrat", Text),
            ("partnatts", I16),
            ("partdefid", Oid),
            ("partattrs", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_extension",
        columns: &[
            ("oid", Oid),
            ("extname", Text),
            ("extowner", Oid),
            ("extnamespace", Oid),
            ("extrelocatable", Bool),
            ("extversion", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_sequence",
        columns: &[
            ("seqrelid", Oid),
            ("seqtypid", Oid),
            ("seqstart", Oid),
            ("seqincrement", Oid),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_depend",
        columns: &[
            ("classid", Oid),
            ("objid", Oid),
            ("objsubid", I32),
            ("refclassid", Oid),
            ("refobjid", Oid),
            ("refobjsubid", I32),
            ("deptype", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_language",
        columns: &[
            ("oid", Oid),
            ("lanname", Text),
            ("lanowner", Oid),
            ("lanispl", Bool),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_event_trigger",
        columns: &[
            ("oid", Oid),
            ("evtname", Text),
            ("evtevent", Text),
            ("evtenabled", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_opclass",
        columns: &[
            ("oid", Oid),
            ("opcmethod", Oid),
            ("opcname", Text),
            ("opcnamespace", Oid),
            ("opcowner", Oid),
            ("opcfamily", Oid),
            ("opcintype", Oid),
            ("opcdefault", Bool),
            ("opckeytype", Oid),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_operator",
        columns: &[
            ("oid", Oid),
            ("oprname", Text),
            ("oprnamespace", Oid),
            ("oprowner", Oid),
            ("oprkind", Text),
            ("oprleft", Oid),
            ("oprright", Oid),
            ("oprresult", Oid),
            ("oprcode", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_cast",
        columns: &[
            ("oid", Oid),
            ("castsource", Oid),
            ("casttarget", Oid),
            ("castfunc", Oid),
            ("castcontext", Text),
            ("castmethod", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "pg_stat_activity",
        columns: &[
            ("datid", Oid),
            ("datname", Text),
            ("pid", I32),
            ("usename", Text),
            ("application_name", Text),
            ("state", Text),
            ("query", Text),
        ],
        rows: none,
    },
];

const ROLE_COLUMNS: &[(&str, Ty)] = &[
    ("oid", Oid),
    ("rolname", Text),
    ("rolsuper", Bool),
    ("rolinherit", Bool),
    ("rolcreaterole", Bool),
    ("rolcreatedb", Bool),
    ("rolcanlogin", Bool),
    ("rolreplication", Bool),
    ("rolconnlimit", I32),
    ("rolpassword", Text),
    ("rolvaliduntil", Text),
    ("rolbypassrls", Bool),
    ("rolconfig", TextArray),
];

fn roles(_: &Relations) -> Vec<Vec<V>> {
    vec![vec![
        OWNER_OID.into(),
        OWNER.into(),
        true.into(),
        true.into(),
        true.into(),
        true.into(),
        true.into(),
        false.into(),
        (-1).into(),
        "********".into(),
        V::Null,
        false.into(),
        V::Null,
    ]]
}

const INFORMATION_SCHEMA_TABLES: &[TableDef] = &[
    TableDef {
        name: "schemata",
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("schema_owner", Text),
            ("default_character_set_catalog", Text),
            ("default_character_set_schema", Text),
            ("default_character_set_name", Text),
            ("sql_path", Text),
        ],
        rows: |_| {
            [PG_CATALOG, "public", INFORMATION_SCHEMA]
                .into_iter()
                .map(|s| {
                    vec![
                        DATABASE.into(),
                        s.into(),
                        OWNER.into(),
                        V::Null,
                        V::Null,
                        V::Null,
                        V::Null,
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "tables",
        columns: &[
            ("table_catalog", Text),
            ("table_schema", Text),
            ("table_name", Text),
            ("table_type", Text),
            ("self_referencing_column_name", Text),
            ("reference_generation", Text),
            ("user_defined_type_catalog", Text),
            ("user_defined_type_schema", Text),
            ("user_defined_type_name", Text),
            ("is_insertable_into", Text),
            ("is_typed", Text),
            ("commit_action", Text),
        ],
        // PostgreSQL leaves materialized views out of information_schema;
        // tools that only read it (Grafana) would then see nothing, so views
        // are listed as VIEW.
        rows: |rels| {
            rels.0
                .iter()
                .map(|r| {
                    vec![
                        DATABASE.into(),
                        "public".into(),
                        r.name.as_str().into(),
                        "VIEW".into(),
                        V::Null,
                        V::Null,
                        V::Null,
                        V::Null,
                        V::Null,
                        "NO".into(),
                        "NO".into(),
                        V::Null,
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "views",
        columns: &[
            ("table_catalog", Text),
            ("table_schema", Text),
            ("table_name", Text),
            ("view_definition", Text),
            ("check_option", Text),
            ("is_updatable", Text),
            ("is_insertable_into", Text),
            ("is_trigger_updatable", Text),
            ("is_trigger_deletable", Text),
            ("is_trigger_insertable_into", Text),
        ],
        rows: |rels| {
            rels.0
                .iter()
                .map(|r| {
                    vec![
                        DATABASE.into(),
                        "public".into(),
                        r.name.as_str().into(),
                        r.definition.as_str().into(),
                        "NONE".into(),
                        "NO".into(),
                        "NO".into(),
                        "NO".into(),
                        "NO".into(),
                        "NO".into(),
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "columns",
        columns: &[
            ("table_catalog", Text),
            ("table_schema", Text),
            ("table_name", Text),
            ("column_name", Text),
            ("ordinal_position", I32),
            ("column_default", Text),
            ("is_nullable", Text),
            ("data_type", Text),
            ("character_maximum_length", I32),
            ("character_octet_length", I32),
            ("numeric_precision", I32),
            ("numeric_precision_radix", I32),
            ("numeric_scale", I32),
            ("datetime_precision", I32),
            ("interval_type", Text),
            ("interval_precision", I32),
            ("udt_catalog", Text),
            ("udt_schema", Text),
            ("udt_name", Text),
            ("dtd_identifier", Text),
            ("is_self_referencing", Text),
            ("is_identity", Text),
            ("identity_generation", Text),
            ("is_generated", Text),
            ("generation_expression", Text),
            ("is_updatable", Text),
        ],
        rows: |rels| {
            let mut rows = Vec::new();
            for r in &rels.0 {
                for (i, f) in r.schema.fields().iter().enumerate() {
                    let t = super::encode::pg_type(f.data_type());
                    let name =
                        format_type(i64::from(t.oid()), None).unwrap_or_else(|| t.name().into());
                    let (precision, radix, scale) = numeric_facets(f.data_type());
                    let datetime = matches!(
                        *f.data_type(),
                        DataType::Timestamp(_, _) | DataType::Time64(_) | DataType::Time32(_)
                    )
                    .then_some(6);
                    let opt = |v: Option<i64>| v.map_or(V::Null, V::I);
                    rows.push(vec![
                        DATABASE.into(),
                        "public".into(),
                        r.name.as_str().into(),
                        f.name().as_str().into(),
                        (i as i64 + 1).into(),
                        V::Null,
                        if f.is_nullable() { "YES" } else { "NO" }.into(),
                        if name.ends_with("[]") {
                            "ARRAY".into()
                        } else {
                            name.into()
                        },
                        V::Null,
                        opt((t == Type::TEXT).then_some(1_073_741_824)),
                        opt(precision),
                        opt(radix),
                        opt(scale),
                        opt(datetime),
                        V::Null,
                        V::Null,
                        DATABASE.into(),
                        PG_CATALOG.into(),
                        t.name().into(),
                        (i as i64 + 1).to_string().into(),
                        "NO".into(),
                        "NO".into(),
                        V::Null,
                        "NEVER".into(),
                        V::Null,
                        "NO".into(),
                    ]);
                }
            }
            rows
        },
    },
    TableDef {
        name: "table_constraints",
        columns: &[
            ("constraint_catalog", Text),
            ("constraint_schema", Text),
            ("constraint_name", Text),
            ("table_catalog", Text),
            ("table_schema", Text),
            ("table_name", Text),
            ("constraint_type", Text),
            ("is_deferrable", Text),
            ("initially_deferred", Text),
            ("enforced", Text),
            ("nulls_distinct", Text),
        ],
        rows: none,
    },
    TableDef {
        name: "key_column_usage",
        columns: &[
            ("constraint_catalog", Text),
            ("constraint_schema", Text),
            ("constraint_name", Text),
            ("table_catalog", Text),
            ("table_schema", Text),
            ("table_name", Text),
            ("column_name", Text),
            ("ordinal_position", I32),
            ("position_in_unique_constraint", I32),
        ],
        rows: none,
    },
];

/// information_schema's numeric_precision, _radix and _scale.
fn numeric_facets(dt: &DataType) -> (Option<i64>, Option<i64>, Option<i64>) {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Some(16), Some(2), Some(0)),
        DataType::Int32 | DataType::UInt16 => (Some(32), Some(2), Some(0)),
        DataType::Int64 | DataType::UInt32 => (Some(64), Some(2), Some(0)),
        DataType::Float16 | DataType::Float32 => (Some(24), Some(2), None),
        DataType::Float64 => (Some(53), Some(2), None),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            (Some(i64::from(*p)), Some(10), Some(i64::from(*s)))
        }
        _ => (None, None, None),
    }
}

fn register_tables(ctx: &SessionContext, rels: &Relations) -> Result<()> {
    let database = ctx
        .catalog(DATABASE)
        .ok_or_else(|| SluiceError::Internal(format!("no database '{DATABASE}' to register in")))?;
    for (schema, tables) in [
        (PG_CATALOG, TABLES),
        (INFORMATION_SCHEMA, INFORMATION_SCHEMA_TABLES),
    ] {
        database.register_schema(schema, Arc::new(MemorySchemaProvider::new()))?;
        for t in tables {
            let batch = build(t, rels)?;
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            ctx.register_table(
                TableReference::full(DATABASE, schema, t.name),
                Arc::new(table),
            )?;
        }
    }
    Ok(())
}

fn build(t: &TableDef, rels: &Relations) -> Result<RecordBatch> {
    let rows = (t.rows)(rels);
    let fields: Vec<Field> = t
        .columns
        .iter()
        .map(|(name, ty)| {
            let dt = match ty {
                Oid => DataType::Int64,
                I16 => DataType::Int16,
                I32 => DataType::Int32,
                F32 => DataType::Float32,
                Text => DataType::Utf8,
                Bool => DataType::Boolean,
                TextArray => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            };
            Field::new(*name, dt, true)
        })
        .collect();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        // Each value as a scalar of its own kind, cast to the column's type.
        let scalars = rows.iter().map(|r| {
            let value = match r.get(i).cloned().unwrap_or(V::Null) {
                V::I(n) => ScalarValue::Int64(Some(n)),
                V::F(f) => ScalarValue::Float64(Some(f)),
                V::S(s) => ScalarValue::Utf8(Some(s)),
                V::B(b) => ScalarValue::Boolean(Some(b)),
                V::Null => ScalarValue::try_from(field.data_type())?,
            };
            value
                .cast_to(field.data_type())
                .map_err(|e| SluiceError::Internal(format!("{}.{}: {e}", t.name, field.name())))
        });
        columns.push(if rows.is_empty() {
            datafusion::arrow::array::new_empty_array(field.data_type())
        } else {
            ScalarValue::iter_to_array(scalars.collect::<Result<Vec<_>>>()?)?
        });
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

// ---------------------------------------------------------------------------
// Rewriting PostgreSQL spellings

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
                    if ["unnest", "generate_subscripts", "generate_series"]
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

fn rewrite(query: &mut ast::Query, rels: &Relations) -> Result<()> {
    let _ = ast::VisitMut::visit(query, &mut Prune(rels));
    // Unqualified catalog tables live in pg_catalog (on every search path).
    // pg_catalog.unnest(…) and other functions in FROM: DataFusion's own.
    let _ = ast::visit_relations_mut(query, |name| {
        match name.0.as_slice() {
            [ObjectNamePart::Identifier(table)] => {
                let t = table.value.to_ascii_lowercase();
                if rels.by_name(&table.value).is_none() && TABLES.iter().any(|d| d.name == t) {
                    *name = ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(PG_CATALOG)),
                        ObjectNamePart::Identifier(table.clone()),
                    ]);
                }
            }
            [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(table)]
                if schema.value.eq_ignore_ascii_case(PG_CATALOG)
                    && !TABLES.iter().any(|d| d.name == table.value) =>
            {
                *name = ObjectName(vec![ObjectNamePart::Identifier(table.clone())]);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let mut failure = None;
    let _ = ast::visit_expressions_mut(query, |e| {
        if let Err(err) = rewrite_expr(e, rels) {
            failure = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

fn rewrite_expr(e: &mut Expr, rels: &Relations) -> Result<()> {
    match e {
        // ARRAY(SELECT …): psql's only use builds a relation's options,
        // and no relation here has any.
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
        }
        // Over a catalog table with no rows (defaults, collations,
        // descriptions): NULL, which DataFusion need not decorrelate.
        Expr::Subquery(q) if matches!(q.body.as_ref(), ast::SetExpr::Select(s) if joins_an_empty_table(s, rels)) => {
            *e = Expr::value(Value::Null)
        }
        Expr::Subquery(q) => at_most_one_row(q),
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
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                if let Some(std) = parts.last().and_then(|o| standard_operator(o)) {
                    *op = std;
                }
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
        let tables = match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [PG_CATALOG, t] => TABLES.iter().find(|d| d.name == *t),
            [INFORMATION_SCHEMA, t] => INFORMATION_SCHEMA_TABLES.iter().find(|d| d.name == *t),
            _ => None,
        };
        tables.is_some_and(|d| (d.rows)(rels).is_empty())
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

/// A scalar subquery returns at most one row; DataFusion plans a
/// correlated one only when an aggregate says so. `(SELECT x FROM … WHERE
/// …)` becomes `(SELECT max(x) …)`: the same value when there is one row.
fn at_most_one_row(q: &mut ast::Query) {
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
                    TABLES
                        .iter()
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
        // Functions are compared by name ('array_in'::regproc).
        "regproc" | "regprocedure" if literal.is_some() => Some(take(expr)),
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
        "oid" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "regoper" | "xid"
        | "cid" | "tid" => to(ast::DataType::BigInt(None), expr),
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

/// A call of `name` with `args`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

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

/// A type's OID from its name as `::regtype` reads it (`int4`, `integer`,
/// `pg_catalog.text`, `character varying`).
fn type_oid_by_name(name: &str) -> Option<i64> {
    let name = name
        .trim()
        .trim_start_matches("pg_catalog.")
        .trim_matches('"');
    let name = name.to_ascii_lowercase();
    TYPES.iter().map(|(t, _, _)| t).find_map(|t| {
        let oid = i64::from(t.oid());
        (t.name() == name || format_type(oid, None).as_deref() == Some(name.as_str()))
            .then_some(oid)
    })
}

// ---------------------------------------------------------------------------
// Functions

/// PostgreSQL's functions that clients call while inspecting a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Func {
    Version,
    CurrentDatabase,
    CurrentSchema,
    CurrentSchemas,
    CurrentUser,
    BackendPid,
    /// has_*_privilege, pg_*_is_visible: always true.
    True,
    /// pg_is_in_recovery and friends: always false.
    False,
    /// Descriptions, defaults, index and constraint definitions: none.
    NullText,
    UserById,
    FormatType,
    ViewDef,
    EncodingToChar,
    RelationSize,
    SizePretty,
    QuoteIdent,
    CurrentSetting,
    JsonBuildObject,
    /// `x::regtype` / `x::regclass` on a column: the OID itself.
    Identity,
    /// A LIKE pattern with another escape character, with a backslash.
    LikeEscape,
    ToRegType,
    ToRegClass,
    RelationName,
    /// `pg_typeof(x)`: the SQL name of its argument's type.
    TypeOf,
    /// `set_config(name, value, is_local)`: the value (settings are the
    /// session's, set with SET).
    SetConfig,
    /// Functions called for their effect that has none here
    /// (`pg_advisory_unlock_all`): NULL.
    Void,
    /// `pg_database_size`: the views' rows stand in for bytes, as in
    /// `pg_relation_size`.
    DatabaseSize,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgFunction {
    name: String,
    func: Func,
    signature: Signature,
    returns: DataType,
    /// View definitions by OID (`pg_get_viewdef`) and row counts
    /// (`pg_relation_size`'s stand-in).
    views: BTreeMap<i64, ViewInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewInfo {
    name: String,
    definition: String,
    rows: i64,
}

fn functions(rels: &Relations) -> Vec<PgFunction> {
    use Func::*;
    let views: BTreeMap<i64, ViewInfo> = rels
        .0
        .iter()
        .map(|r| {
            let info = ViewInfo {
                name: r.name.clone(),
                definition: r.definition.clone(),
                rows: r.rows,
            };
            (r.oid, info)
        })
        .collect();
    let any = || Signature::variadic_any(Volatility::Stable);
    let nullary = || Signature::nullary(Volatility::Stable);
    let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    let mut out = Vec::new();
    let mut add = |names: &[&str], func: Func, signature: Signature, returns: DataType| {
        for n in names {
            out.push(PgFunction {
                name: n.to_string(),
                func,
                signature: signature.clone(),
                returns: returns.clone(),
                views: if matches!(
                    func,
                    ViewDef | RelationSize | ToRegClass | RelationName | DatabaseSize
                ) {
                    views.clone()
                } else {
                    BTreeMap::new()
                },
            });
        }
    };
    add(&["version"], Version, nullary(), DataType::Utf8);
    add(
        &["current_database", "current_catalog"],
        CurrentDatabase,
        nullary(),
        DataType::Utf8,
    );
    add(
        &["current_schema"],
        CurrentSchema,
        nullary(),
        DataType::Utf8,
    );
    add(&["current_schemas"], CurrentSchemas, any(), list);
    add(
        &["current_user", "session_user", "user", "current_role"],
        CurrentUser,
        nullary(),
        DataType::Utf8,
    );
    add(&["pg_backend_pid"], BackendPid, nullary(), DataType::Int32);
    add(
        &[
            "has_table_privilege",
            "has_schema_privilege",
            "has_database_privilege",
            "has_column_privilege",
            "has_any_column_privilege",
            "has_function_privilege",
            "has_sequence_privilege",
            "has_type_privilege",
            "pg_has_role",
            "pg_table_is_visible",
            "pg_type_is_visible",
            "pg_function_is_visible",
            "pg_operator_is_visible",
            "pg_opclass_is_visible",
            "pg_collation_is_visible",
            "pg_conversion_is_visible",
        ],
        True,
        any(),
        DataType::Boolean,
    );
    add(
        &[
            "pg_is_in_recovery",
            "pg_is_other_temp_schema",
            "pg_relation_is_publishable",
        ],
        False,
        any(),
        DataType::Boolean,
    );
    add(
        &[
            "obj_description",
            "col_description",
            "shobj_description",
            "pg_get_expr",
            "pg_get_indexdef",
            "pg_get_constraintdef",
            "pg_get_triggerdef",
            "pg_get_partkeydef",
            "pg_get_function_arguments",
            "pg_get_function_result",
            "pg_get_serial_sequence",
            "pg_get_statisticsobjdef_columns",
            "pg_tablespace_location",
        ],
        NullText,
        any(),
        DataType::Utf8,
    );
    add(&["pg_get_userbyid"], UserById, any(), DataType::Utf8);
    add(&["format_type"], FormatType, any(), DataType::Utf8);
    add(&["pg_get_viewdef"], ViewDef, any(), DataType::Utf8);
    add(
        &["pg_encoding_to_char"],
        EncodingToChar,
        any(),
        DataType::Utf8,
    );
    add(
        &[
            "pg_relation_size",
            "pg_total_relation_size",
            "pg_table_size",
            "pg_indexes_size",
        ],
        RelationSize,
        any(),
        DataType::Int64,
    );
    add(&["pg_size_pretty"], SizePretty, any(), DataType::Utf8);
    add(&["quote_ident"], QuoteIdent, any(), DataType::Utf8);
    add(&["current_setting"], CurrentSetting, any(), DataType::Utf8);
    add(
        &["json_build_object"],
        JsonBuildObject,
        any(),
        DataType::Utf8,
    );
    add(
        &["regtype_oid", "regclass_oid"],
        Identity,
        any(),
        DataType::Int64,
    );
    add(&["to_regtype"], ToRegType, any(), DataType::Int64);
    add(&["like_escape"], LikeEscape, any(), DataType::Utf8);
    add(&["to_regclass"], ToRegClass, any(), DataType::Int64);
    add(&["relation_name"], RelationName, any(), DataType::Utf8);
    add(&["pg_typeof"], TypeOf, any(), DataType::Utf8);
    add(&["set_config"], SetConfig, any(), DataType::Utf8);
    add(
        &[
            "pg_advisory_unlock_all",
            "pg_advisory_lock",
            "pg_advisory_unlock",
            "pg_stat_clear_snapshot",
        ],
        Void,
        any(),
        DataType::Utf8,
    );
    add(&["pg_database_size"], DatabaseSize, any(), DataType::Int64);
    out
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        use Func::*;
        let text = |s: Option<String>| ColumnarValue::Scalar(ScalarValue::Utf8(s));
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // Argument `i` as integers (OIDs, sizes) or as text, row by row.
        let as_type = |i: usize, t: &DataType| -> datafusion::error::Result<Option<ArrayRef>> {
            Ok(arrays
                .get(i)
                .map(|a| datafusion::arrow::compute::cast(a, t))
                .transpose()?)
        };
        let ints = |i: usize| -> datafusion::error::Result<Vec<Option<i64>>> {
            Ok(match as_type(i, &DataType::Int64)? {
                Some(a) => a.as_primitive::<Int64Type>().iter().collect(),
                None => vec![None; rows],
            })
        };
        let strs = |i: usize| -> datafusion::error::Result<Vec<Option<String>>> {
            Ok(match as_type(i, &DataType::Utf8)? {
                Some(a) => a
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_string))
                    .collect(),
                None => vec![None; rows],
            })
        };
        let texts = |f: &dyn Fn(usize) -> Option<String>| -> ColumnarValue {
            let mut b = StringBuilder::new();
            for i in 0..rows {
                b.append_option(f(i));
            }
            ColumnarValue::Array(Arc::new(b.finish()))
        };
        let int_column = |values: Vec<Option<i64>>| {
            let mut b = Int64Builder::new();
            b.extend(values);
            ColumnarValue::Array(Arc::new(b.finish()))
        };
        Ok(match self.func {
            Identity => int_column(ints(0)?),
            LikeEscape => {
                let (p, e) = (strs(0)?, strs(1)?);
                texts(&|i| {
                    let esc = e[i].as_ref().and_then(|e| e.chars().next());
                    p[i].as_ref().map(|p| backslash_escaped(p, esc))
                })
            }
            ToRegType => int_column(
                strs(0)?
                    .into_iter()
                    .map(|s| s.and_then(|s| type_oid_by_name(&s)))
                    .collect(),
            ),
            ToRegClass => int_column(
                strs(0)?
                    .into_iter()
                    .map(|s| {
                        let s = s?;
                        let name = s.rsplit('.').next().unwrap_or(&s).trim_matches('"');
                        self.views
                            .iter()
                            .find(|(_, v)| v.name == name)
                            .map(|(o, _)| *o)
                    })
                    .collect(),
            ),
            RelationName => {
                let oids = ints(0)?;
                texts(&|i| {
                    oids[i].map(|o| self.views.get(&o).map_or(o.to_string(), |v| v.name.clone()))
                })
            }
            Version => text(Some(version())),
            CurrentDatabase => text(Some(DATABASE.into())),
            CurrentSchema => text(Some("public".into())),
            CurrentSchemas => {
                let mut b = ListBuilder::new(StringBuilder::new());
                b.values().append_value(PG_CATALOG);
                b.values().append_value("public");
                b.append(true);
                ColumnarValue::Scalar(ScalarValue::List(Arc::new(b.finish())))
            }
            CurrentUser => text(Some(OWNER.into())),
            BackendPid => {
                ColumnarValue::Scalar(ScalarValue::Int32(Some(std::process::id() as i32)))
            }
            True => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
            False => ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))),
            NullText => text(None),
            UserById => texts(&|_| Some(OWNER.into())),
            EncodingToChar => texts(&|_| Some("UTF8".into())),
            FormatType => {
                let (oids, mods) = (ints(0)?, ints(1)?);
                texts(&|i| oids[i].and_then(|o| format_type(o, mods[i])))
            }
            ViewDef => {
                let oids = ints(0)?;
                texts(&|i| {
                    oids[i]
                        .and_then(|o| self.views.get(&o))
                        .map(|v| v.definition.clone())
                })
            }
            RelationSize => {
                // No pages on disk: a view's size is its row count × 8 bytes,
                // enough for tools to tell empty from not.
                let oids = ints(0)?;
                let mut b = Int64Builder::new();
                for o in oids {
                    b.append_option(o.map(|o| self.views.get(&o).map_or(0, |v| v.rows * 8)));
                }
                ColumnarValue::Array(Arc::new(b.finish()))
            }
            SizePretty => {
                let sizes = ints(0)?;
                texts(&|i| sizes[i].map(pretty_size))
            }
            QuoteIdent => {
                let names = strs(0)?;
                texts(&|i| names[i].as_deref().map(quote_ident))
            }
            TypeOf => {
                let name = args
                    .arg_fields
                    .first()
                    .map(|f| match f.data_type() {
                        DataType::Null => "unknown".to_string(),
                        dt => {
                            let t = super::encode::pg_type(dt);
                            format_type(i64::from(t.oid()), None)
                                .unwrap_or_else(|| t.name().to_string())
                        }
                    })
                    .unwrap_or_else(|| "unknown".into());
                text(Some(name))
            }
            SetConfig => texts(&{
                let values = strs(1)?;
                move |i| values[i].clone()
            }),
            Void => text(None),
            DatabaseSize => ColumnarValue::Scalar(ScalarValue::Int64(Some(
                self.views.values().map(|v| v.rows).sum(),
            ))),
            CurrentSetting => {
                let names = strs(0)?;
                texts(&|i| {
                    let name = names[i].as_ref()?.to_ascii_lowercase();
                    super::session::DEFAULTS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.to_string())
                })
            }
            JsonBuildObject => {
                let strings = (0..arrays.len())
                    .map(strs)
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                texts(&|i| {
                    let mut object = serde_json::Map::new();
                    for pair in strings.chunks(2) {
                        let [k, v] = pair else { continue };
                        let Some(k) = &k[i] else { continue };
                        let value = v[i]
                            .clone()
                            .map_or(serde_json::Value::Null, serde_json::Value::String);
                        object.insert(k.clone(), value);
                    }
                    Some(serde_json::Value::Object(object).to_string())
                })
            }
        })
    }
}

/// `pattern` with escape character `esc` rewritten to escape with `\`.
fn backslash_escaped(pattern: &str, esc: Option<char>) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == esc {
            out.push('\\');
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

fn pretty_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes.abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v.abs() >= 10.0 * 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", v.round() as i64, UNITS[unit])
}

fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_operators_become_plain_ones() {
        assert_eq!(
            normalize("WHERE c.relname OPERATOR(pg_catalog.~) '^(v)$' COLLATE pg_catalog.default"),
            "WHERE c.relname ~ '^(v)$' COLLATE pg_catalog.default"
        );
        assert_eq!(normalize("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn like_patterns_escape_with_a_backslash() {
        assert_eq!(backslash_escaped("pg/_%", Some('/')), "pg\\_%");
        assert_eq!(backslash_escaped("a\\b//c", Some('/')), "a\\\\b\\/c");
        assert_eq!(backslash_escaped("x_", None), "x_");
    }

    #[test]
    fn type_names_as_postgres_formats_them() {
        assert_eq!(format_type(20, None).as_deref(), Some("bigint"));
        assert_eq!(
            format_type(1114, Some(-1)).as_deref(),
            Some("timestamp without time zone")
        );
        assert_eq!(
            format_type(1700, Some(typmod(&DataType::Decimal128(10, 2)))).as_deref(),
            Some("numeric(10,2)")
        );
        assert_eq!(format_type(1016, None).as_deref(), Some("bigint[]"));
        assert_eq!(format_type(1, None), None);
    }

    #[test]
    fn every_table_builds() {
        let rels = Relations(vec![Relation {
            oid: FIRST_RELATION_OID,
            name: "v".into(),
            schema: Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("n", DataType::Int64, true),
            ])),
            definition: "SELECT 1;".into(),
            rows: 3,
        }]);
        for t in TABLES.iter().chain(INFORMATION_SCHEMA_TABLES) {
            let b = build(t, &rels).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(b.num_columns(), t.columns.len(), "{}", t.name);
        }
    }
}
