//! The information_schema views Grafana, Metabase and others read:
//! schemata, tables, views, columns, and the (empty) constraints.

use datafusion::arrow::datatypes::DataType;
use pgwire::api::Type;

use super::tables::{none, TableDef, Ty::*, V};
use super::types::format_type;
use super::{INFORMATION_SCHEMA, OWNER, PG_CATALOG};
use crate::engine::DATABASE;

pub(super) const TABLES: &[TableDef] = &[
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
                    let t = crate::server::encode::field_pg_type(f);
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
