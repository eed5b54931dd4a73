//! PostgreSQL's types as clients see them: the types a column can have on
//! the wire, their names (`format_type`), and pg_catalog's tables about
//! types (pg_type, and the empty pg_enum, pg_range, pg_cast …).

use datafusion::arrow::datatypes::DataType;
use pgwire::api::Type;
use postgres_types::Kind;

use super::tables::{none, TableDef, Ty::*, V};
use super::{OWNER_OID, PG_CATALOG_OID};

/// The types a column can have on the wire, with what pg_type says of them:
/// (type, length, category); category `P` is a pseudo-type (typtype `p`),
/// which no column has but functions and clients name (`'trigger'::regtype`).
pub(super) const TYPES: &[(Type, i16, char)] = &[
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
    (Type::RECORD, -1, 'P'),
    (Type::TRIGGER, 4, 'P'),
    (Type::VOID, 4, 'P'),
    (Type::UNKNOWN, -2, 'P'),
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
pub(super) fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
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
pub(super) fn typmod(dt: &DataType) -> i64 {
    match dt {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *s >= 0 => {
            ((i64::from(*p) << 16) | i64::from(*s)) + 4
        }
        _ => -1,
    }
}

/// A type's OID from its name as `::regtype` reads it (`int4`, `integer`,
/// `pg_catalog.text`, `character varying`).
pub(super) fn type_oid_by_name(name: &str) -> Option<i64> {
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

pub(super) const TABLES: &[TableDef] = &[
    TableDef {
        name: "pg_type",
        columns: &[
            ("oid", Oid),
            ("typname", Text),
            ("typnamespace", Oid),
            ("typowner", Oid),
            ("typlen", I16),
            ("typbyval", Bool),
            ("typtype", Char),
            ("typcategory", Char),
            ("typispreferred", Bool),
            ("typisdefined", Bool),
            ("typdelim", Char),
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
            ("typalign", Char),
            ("typstorage", Char),
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
                        if *category == 'P' { "p" } else { "b" }.into(),
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
];

#[cfg(test)]
mod tests {
    use super::*;

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
}
