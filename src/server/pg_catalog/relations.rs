//! pg_catalog's tables about relations: namespaces, classes (every
//! materialized view is one, of kind `m`), their columns, and the tables of
//! what relations here never have (indexes, constraints, triggers,
//! policies, publications), kept empty so that queries joining them run.

use postgres_types::Kind;

use super::tables::{none, TableDef, Ty::*, V};
use super::types::{typmod, TYPES};
use super::{
    INFORMATION_SCHEMA, INFORMATION_SCHEMA_OID, OWNER, OWNER_OID, PG_CATALOG, PG_CATALOG_OID,
    PUBLIC_OID,
};

pub(super) const TABLES: &[TableDef] = &[
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
            ("relpersistence", Char),
            ("relkind", Char),
            ("relnatts", I16),
            ("relchecks", I16),
            ("relhasrules", Bool),
            ("relhastriggers", Bool),
            ("relhassubclass", Bool),
            ("relrowsecurity", Bool),
            ("relforcerowsecurity", Bool),
            ("relispopulated", Bool),
            ("relreplident", Char),
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
                        r.owner_oid.into(),
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
                        r.acl.clone().map_or(V::Null, V::L),
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
            ("attalign", Char),
            ("attstorage", Char),
            ("attcompression", Text),
            ("attnotnull", Bool),
            ("atthasdef", Bool),
            ("atthasmissing", Bool),
            ("attidentity", Char),
            ("attgenerated", Char),
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
                    let t = crate::server::encode::field_pg_type(f);
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
            ("indkey", I16Array),
            ("indcollation", Text),
            ("indclass", Text),
            ("indoption", I16Array),
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
        name: "pg_constraint",
        columns: &[
            ("oid", Oid),
            ("conname", Text),
            ("connamespace", Oid),
            ("contype", Char),
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
    // The statistics views tools read for row counts (Metabase's
    // estimated_row_count): a view's rows are its live tuples.
    TableDef {
        name: "pg_stat_user_tables",
        columns: &[
            ("relid", Oid),
            ("schemaname", Text),
            ("relname", Text),
            ("seq_scan", I64),
            ("seq_tup_read", I64),
            ("idx_scan", I64),
            ("idx_tup_fetch", I64),
            ("n_tup_ins", I64),
            ("n_tup_upd", I64),
            ("n_tup_del", I64),
            ("n_tup_hot_upd", I64),
            ("n_live_tup", I64),
            ("n_dead_tup", I64),
            ("n_mod_since_analyze", I64),
            ("n_ins_since_vacuum", I64),
            ("last_vacuum", Text),
            ("last_autovacuum", Text),
            ("last_analyze", Text),
            ("last_autoanalyze", Text),
            ("vacuum_count", I64),
            ("autovacuum_count", I64),
            ("analyze_count", I64),
            ("autoanalyze_count", I64),
        ],
        rows: |rels| {
            rels.0
                .iter()
                .map(|r| {
                    let mut row: Vec<V> =
                        vec![r.oid.into(), "public".into(), r.name.as_str().into()];
                    row.extend([0, 0].map(V::from));
                    row.extend([V::Null, V::Null]);
                    row.extend([0, 0, 0, 0, r.rows, 0, 0, 0].map(V::from));
                    row.extend([V::Null, V::Null, V::Null, V::Null]);
                    row.extend([0, 0, 0, 0].map(V::from));
                    row
                })
                .collect()
        },
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
];
