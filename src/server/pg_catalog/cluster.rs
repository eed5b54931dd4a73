//! pg_catalog's tables about the server as a whole: the one database,
//! its settings, tablespaces, extensions, languages,
//! functions (pg_proc) and sessions.

use super::tables::{none, TableDef, Ty::*, V};
use super::{DATABASE_OID, OWNER_OID};
use crate::engine::DATABASE;

pub(super) const TABLES: &[TableDef] = &[
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
            crate::server::settings::DEFAULTS
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
        name: "pg_shdescription",
        columns: &[("objoid", Oid), ("classoid", Oid), ("description", Text)],
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
            ("prokind", Char),
            ("prosecdef", Bool),
            ("proleakproof", Bool),
            ("proisstrict", Bool),
            ("proretset", Bool),
            ("provolatile", Char),
            ("proparallel", Text),
            ("pronargs", I16),
            ("pronargdefaults", I16),
            ("prorettype", Oid),
            ("proargtypes", TextArray),
            ("proallargtypes", TextArray),
            ("proargmodes", TextArray),
            ("proargnames", TextArray),
            ("proargdefaults", Text),
            ("prosrc", Text),
            ("probin", Text),
            ("proconfig", TextArray),
            ("proacl", TextArray),
        ],
        rows: none,
    },
    // pg_get_keywords(): a function in PostgreSQL, read in FROM as a table
    // (see from_items); the SQL keywords the parser knows, those that
    // cannot name a column reserved.
    TableDef {
        name: "pg_get_keywords",
        columns: &[
            ("word", Text),
            ("catcode", Char),
            ("barelabel", Bool),
            ("catdesc", Text),
            ("baredesc", Text),
        ],
        rows: |_| {
            use datafusion::sql::sqlparser::keywords::{
                ALL_KEYWORDS, ALL_KEYWORDS_INDEX, RESERVED_FOR_COLUMN_ALIAS,
            };
            ALL_KEYWORDS
                .iter()
                .zip(ALL_KEYWORDS_INDEX)
                .map(|(word, keyword)| {
                    let reserved = RESERVED_FOR_COLUMN_ALIAS.contains(keyword);
                    let (code, description) = match reserved {
                        true => ("R", "reserved"),
                        false => ("U", "unreserved"),
                    };
                    vec![
                        word.to_ascii_lowercase().into(),
                        code.into(),
                        (!reserved).into(),
                        description.into(),
                        if reserved {
                            "requires AS"
                        } else {
                            "can be bare label"
                        }
                        .into(),
                    ]
                })
                .collect()
        },
    },
];
