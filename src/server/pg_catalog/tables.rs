//! The emulated tables' machinery: a table is its columns and a function
//! from the catalog to its rows, built into a `MemTable` per query.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::{
    backends, cluster, information_schema, relations, roles, types, Relations, INFORMATION_SCHEMA,
    PG_CATALOG,
};
use crate::engine::DATABASE;
use crate::error::{Result, SluiceError};
use Ty::{Bool, Char, I16Array, Oid, Text, TextArray, TimestampTz, F32, I16, I32, I64};

/// Column types of the emulated tables.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Oid,
    I64,
    I16,
    I32,
    F32,
    Text,
    /// PostgreSQL's one-byte `"char"` (relkind, typtype …): text here,
    /// sent as type `char` (binary clients such as asyncpg read a byte).
    Char,
    Bool,
    TextArray,
    /// int2vector (pg_index.indkey): subscripted and expanded by clients.
    I16Array,
    /// Microseconds since the epoch, in UTC.
    TimestampTz,
}

/// A value in a row of an emulated table.
#[derive(Clone)]
pub(super) enum V {
    I(i64),
    F(f64),
    S(String),
    B(bool),
    /// A text array.
    L(Vec<String>),
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

/// An emulated table: its columns, and its rows for the catalog now.
pub(super) struct TableDef {
    pub(super) name: &'static str,
    pub(super) columns: &'static [(&'static str, Ty)],
    pub(super) rows: fn(&Relations) -> Vec<Vec<V>>,
}

/// The rows of a table no object here fills.
pub(super) fn none(_: &Relations) -> Vec<Vec<V>> {
    Vec::new()
}

/// pg_catalog's tables, in the order their OIDs are numbered
/// ([`super::SYSTEM_TABLE_OIDS`] on).
pub(super) fn pg_catalog() -> impl Iterator<Item = &'static TableDef> {
    relations::TABLES
        .iter()
        .chain(types::TABLES)
        .chain(cluster::TABLES)
        .chain(roles::TABLES)
        .chain(backends::TABLES)
}

/// The emulated table `schema.name`, if there is one.
pub(super) fn find(schema: &str, name: &str) -> Option<&'static TableDef> {
    match schema {
        PG_CATALOG => pg_catalog().find(|t| t.name == name),
        INFORMATION_SCHEMA => information_schema::TABLES.iter().find(|t| t.name == name),
        _ => None,
    }
}

/// Whether `column` is a boolean column of the catalog, and of no other
/// type in any table (so a literal compared with it is a boolean).
pub(super) fn is_boolean_column(column: &str) -> bool {
    let mut kinds = pg_catalog()
        .chain(information_schema::TABLES)
        .flat_map(|t| t.columns.iter())
        .filter(|(name, _)| *name == column)
        .map(|(_, ty)| matches!(ty, Bool));
    kinds.next() == Some(true) && kinds.all(|b| b)
}

/// The values (as text) of `column` in `table`, if it has that column.
pub(super) fn column_values(
    table: &TableDef,
    column: &str,
    rels: &Relations,
) -> Option<Vec<Option<String>>> {
    let at = table.columns.iter().position(|(c, _)| *c == column)?;
    let values = (table.rows)(rels)
        .into_iter()
        .map(|row| match row.get(at) {
            Some(V::S(s)) => Some(s.clone()),
            Some(V::I(n)) => Some(n.to_string()),
            Some(V::F(f)) => Some(f.to_string()),
            Some(V::B(b)) => Some(if *b { "t" } else { "f" }.to_string()),
            Some(V::L(items)) => Some(format!("{{{}}}", items.join(","))),
            Some(V::Null) | None => None,
        })
        .collect();
    Some(values)
}

/// Registers every table, built from `rels`, in `ctx`.
pub(super) fn register(ctx: &SessionContext, rels: Arc<Relations>) -> Result<()> {
    let database = ctx
        .catalog(DATABASE)
        .ok_or_else(|| SluiceError::Internal(format!("no database '{DATABASE}' to register in")))?;
    let schemas: [(&str, Vec<&'static TableDef>); 2] = [
        (PG_CATALOG, pg_catalog().collect()),
        (
            INFORMATION_SCHEMA,
            information_schema::TABLES.iter().collect(),
        ),
    ];
    for (schema, tables) in schemas {
        database.register_schema(
            schema,
            Arc::new(LazySchema {
                tables,
                rels: Arc::clone(&rels),
                built: Mutex::default(),
            }),
        )?;
    }
    Ok(())
}

/// A schema of emulated tables, each built when a query first names it:
/// most queries name none, and building them all took most of a simple
/// query's time.
struct LazySchema {
    tables: Vec<&'static TableDef>,
    rels: Arc<Relations>,
    built: Mutex<std::collections::HashMap<&'static str, Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for LazySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazySchema({} tables)", self.tables.len())
    }
}

#[async_trait::async_trait]
impl SchemaProvider for LazySchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let Some(def) = self.tables.iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(table) = built.get(def.name) {
            return Ok(Some(Arc::clone(table)));
        }
        let batch = build(def, &self.rels)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let table: Arc<dyn TableProvider> =
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?);
        built.insert(def.name, Arc::clone(&table));
        Ok(Some(table))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name)
    }
}

pub(super) fn build(t: &TableDef, rels: &Relations) -> Result<RecordBatch> {
    let rows = (t.rows)(rels);
    let fields: Vec<Field> = t
        .columns
        .iter()
        .map(|(name, ty)| {
            let dt = match ty {
                Oid | I64 => DataType::Int64,
                I16 => DataType::Int16,
                I32 => DataType::Int32,
                F32 => DataType::Float32,
                Text | Char => DataType::Utf8,
                Bool => DataType::Boolean,
                TextArray => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                I16Array => DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true))),
                TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            };
            let field = Field::new(*name, dt, true);
            match ty {
                Char => crate::server::encode::as_pg_char(field),
                _ => field,
            }
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
                V::L(items) => {
                    let items: Vec<ScalarValue> = items
                        .into_iter()
                        .map(|s| ScalarValue::Utf8(Some(s)))
                        .collect();
                    ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Utf8))
                }
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

#[cfg(test)]
mod tests {
    use super::super::{Relation, FIRST_RELATION_OID};
    use super::*;

    #[test]
    fn every_table_builds() {
        let rels = Relations(
            vec![Relation {
                oid: FIRST_RELATION_OID,
                name: "v".into(),
                schema: Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Utf8, false),
                    Field::new("n", DataType::Int64, true),
                ])),
                definition: "SELECT 1;".into(),
                rows: 3,
                owner_oid: 10,
                acl: Some(vec!["sluice=arwd/sluice".into(), "bi=r/sluice".into()]),
            }],
            vec![crate::server::activity::Row {
                pid: 100_000,
                user: "sluice".into(),
                database: "sluice".into(),
                application_name: "psql".into(),
                client_addr: "127.0.0.1".into(),
                client_port: 50_000,
                backend_start: std::time::SystemTime::now(),
                query_start: None,
                state_change: std::time::SystemTime::now(),
                state: "idle",
                query: String::new(),
                ssl: false,
            }],
            roles::Roles::default(),
        );
        for t in pg_catalog().chain(information_schema::TABLES) {
            let b = build(t, &rels).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(b.num_columns(), t.columns.len(), "{}", t.name);
        }
    }
}
