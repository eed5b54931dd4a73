//! PostgreSQL's functions that clients call while inspecting a database
//! (`format_type`, `pg_get_viewdef`, `has_table_privilege`, `version()`…),
//! as DataFusion scalar functions over the catalog of the moment.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Builder, ListArray, ListBuilder, StringBuilder,
    StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::roles::Who;
use super::types::{format_type, type_oid_by_name};
use super::{strings, tables, version, Relations, OWNER, PG_CATALOG, SYSTEM_TABLE_OIDS};
use crate::engine::DATABASE;

/// PostgreSQL's functions that clients call while inspecting a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Func {
    Version,
    CurrentDatabase,
    CurrentSchema,
    CurrentSchemas,
    CurrentUser,
    /// has_*_privilege, pg_*_is_visible: always true.
    True,
    /// pg_is_in_recovery and friends: always false.
    False,
    /// Descriptions, defaults, index and constraint definitions: none.
    NullText,
    UserById,
    /// `has_table_privilege([role,] relation, privileges)`: from the
    /// grants (relations that are not views: true).
    HasTablePrivilege,
    FormatType,
    ViewDef,
    EncodingToChar,
    RelationSize,
    SizePretty,
    QuoteIdent,
    CurrentSetting,
    JsonBuildObject,
    /// `x::regclass`: an OID as it is, a name (a parameter, Metabase's
    /// `format('%I.%I', …)::regclass`) the relation's OID.
    RegClassOid,
    /// `x::regtype`: an OID as it is, a name the type's OID.
    RegTypeOid,
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
    /// `format(template, args…)`: %s, %I, %L and %%.
    Format,
    /// `array_upper(a, 1)` / `array_lower(a, 1)`: arrays start at 1.
    ArrayUpper,
    ArrayLower,
    /// `parse_ident('a."B".c')`: the names of a qualified identifier.
    ParseIdent,
    /// information_schema's `_pg_expandarray(a)`: each element with its
    /// position, as a list of (x, n) the rewrite unnests.
    ExpandArray,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct PgFunction {
    name: String,
    func: Func,
    signature: Signature,
    returns: DataType,
    /// View definitions by OID (`pg_get_viewdef`) and row counts
    /// (`pg_relation_size`'s stand-in).
    views: BTreeMap<i64, ViewInfo>,
    /// Who is asking, and what each role may do.
    who: Who,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewInfo {
    name: String,
    definition: String,
    rows: i64,
}

pub(super) fn functions(rels: &Relations, who: &Who) -> Vec<PgFunction> {
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
                    ViewDef
                        | RelationSize
                        | ToRegClass
                        | RelationName
                        | DatabaseSize
                        | RegClassOid
                        | HasTablePrivilege
                ) {
                    views.clone()
                } else {
                    BTreeMap::new()
                },
                who: if matches!(func, CurrentUser | UserById | HasTablePrivilege) {
                    who.clone()
                } else {
                    Who::default()
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
    add(&["current_schemas"], CurrentSchemas, any(), list.clone());
    add(
        &["current_user", "session_user", "user", "current_role"],
        CurrentUser,
        nullary(),
        DataType::Utf8,
    );
    add(
        &["has_table_privilege", "has_any_column_privilege"],
        HasTablePrivilege,
        any(),
        DataType::Boolean,
    );
    add(
        &[
            "has_schema_privilege",
            "has_database_privilege",
            "has_column_privilege",
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
    add(&["regclass_oid"], RegClassOid, any(), DataType::Int64);
    add(&["regtype_oid"], RegTypeOid, any(), DataType::Int64);
    add(&["format"], Format, any(), DataType::Utf8);
    // int4 in PostgreSQL; bigint here, as generate_series takes.
    add(&["array_upper"], ArrayUpper, any(), DataType::Int64);
    add(&["array_lower"], ArrayLower, any(), DataType::Int64);
    add(&["parse_ident"], ParseIdent, any(), list);
    // Its element type is the argument's (see return_type).
    add(&["_pg_expandarray"], ExpandArray, any(), DataType::Null);
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
        Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Volatile,
        ),
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

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match (self.func, args.first()) {
            (Func::ExpandArray, Some(DataType::List(element))) => {
                expanded_type(element.data_type().clone())
            }
            (Func::ExpandArray, _) => expanded_type(DataType::Int64),
            _ => self.returns.clone(),
        })
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
        // The first argument, which the functions below need.
        let first = || {
            arrays.first().ok_or_else(|| {
                DataFusionError::Plan(format!("function {} takes an argument", self.name))
            })
        };
        let int_column = |values: Vec<Option<i64>>| {
            let mut b = Int64Builder::new();
            b.extend(values);
            ColumnarValue::Array(Arc::new(b.finish()))
        };
        Ok(match self.func {
            RegClassOid if is_text(first()?) => {
                let names = strs(0)?;
                let mut oids = Vec::with_capacity(rows);
                for name in names {
                    oids.push(match name {
                        Some(n) => Some(self.relation_oid(&n).ok_or_else(|| {
                            DataFusionError::Execution(format!("relation \"{n}\" does not exist"))
                        })?),
                        None => None,
                    });
                }
                int_column(oids)
            }
            RegTypeOid if is_text(first()?) => {
                let names = strs(0)?;
                let mut oids = Vec::with_capacity(rows);
                for name in names {
                    oids.push(match name {
                        Some(n) => Some(type_oid_by_name(&n).ok_or_else(|| {
                            DataFusionError::Execution(format!("type \"{n}\" does not exist"))
                        })?),
                        None => None,
                    });
                }
                int_column(oids)
            }
            RegClassOid | RegTypeOid => int_column(ints(0)?),
            Format => {
                let columns = (0..arrays.len())
                    .map(strs)
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                let mut b = StringBuilder::new();
                for i in 0..rows {
                    let Some(Some(template)) = columns.first().map(|c| &c[i]) else {
                        b.append_null();
                        continue;
                    };
                    let values: Vec<Option<&str>> =
                        columns[1..].iter().map(|c| c[i].as_deref()).collect();
                    b.append_value(
                        strings::format(template, &values)
                            .map_err(|e| DataFusionError::Execution(e.to_string()))?,
                    );
                }
                ColumnarValue::Array(Arc::new(b.finish()))
            }
            ArrayUpper | ArrayLower => {
                let lists = list_arg(first()?)?;
                let dims = ints(1)?;
                let mut b = Int64Builder::new();
                for (i, dim) in dims.into_iter().enumerate() {
                    let len = (!lists.is_null(i)).then(|| i64::from(lists.value_length(i)));
                    b.append_option(match (len, dim) {
                        (Some(n), Some(1)) if n > 0 => {
                            Some(if self.func == ArrayUpper { n } else { 1 })
                        }
                        _ => None,
                    });
                }
                ColumnarValue::Array(Arc::new(b.finish()))
            }
            ParseIdent => {
                let names = strs(0)?;
                let mut b = ListBuilder::new(StringBuilder::new());
                for name in names {
                    match name {
                        Some(n) => {
                            for part in strings::parse_ident(&n)
                                .map_err(|e| DataFusionError::Execution(e.to_string()))?
                            {
                                b.values().append_value(part);
                            }
                            b.append(true);
                        }
                        None => b.append(false),
                    }
                }
                ColumnarValue::Array(Arc::new(b.finish()))
            }
            ExpandArray => ColumnarValue::Array(expand_array(list_arg(first()?)?)),
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
            CurrentUser => text(Some(self.who.current.clone())),
            True => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
            False => ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))),
            NullText => text(None),
            UserById => {
                let oids = ints(0)?;
                texts(&|i| {
                    oids[i].map(|o| {
                        self.who
                            .names
                            .get(&o)
                            .cloned()
                            .unwrap_or_else(|| OWNER.into())
                    })
                })
            }
            HasTablePrivilege => {
                let (roles, relations, privileges) = match arrays.len() {
                    n if n >= 3 => (Some(strs(0)?), strs(1)?, strs(2)?),
                    _ => (None, strs(0)?, strs(1)?),
                };
                let mut b = datafusion::arrow::array::BooleanBuilder::new();
                for i in 0..rows {
                    let role = match &roles {
                        None => Some(self.who.current.clone()),
                        Some(r) => r[i].as_ref().map(|r| match r.parse::<i64>() {
                            Ok(oid) => self.who.names.get(&oid).cloned().unwrap_or_default(),
                            Err(_) => r.clone(),
                        }),
                    };
                    let relation = relations[i].as_ref().map(|t| match t.parse::<i64>() {
                        Ok(oid) => self.views.get(&oid).map(|v| v.name.clone()),
                        Err(_) => {
                            let name = t.rsplit('.').next().unwrap_or(t);
                            let name =
                                match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                                    Some(quoted) => quoted.to_string(),
                                    None => name.to_ascii_lowercase(),
                                };
                            self.views.values().any(|v| v.name == name).then_some(name)
                        }
                    });
                    b.append_option(match (role, relation, &privileges[i]) {
                        (Some(role), Some(Some(rel)), Some(p)) => {
                            self.who.has_privilege(&role, &rel, p)
                        }
                        // Not a view: a system table, readable by all.
                        (Some(_), Some(None), Some(_)) => Some(true),
                        _ => None,
                    });
                }
                ColumnarValue::Array(Arc::new(b.finish()))
            }
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
                texts(&|i| names[i].as_deref().map(strings::quote_ident))
            }
            TypeOf => {
                let name = args
                    .arg_fields
                    .first()
                    .map(|f| match f.data_type() {
                        DataType::Null => "unknown".to_string(),
                        _ => {
                            let t = crate::server::encode::field_pg_type(f);
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
                    crate::server::settings::DEFAULTS
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

impl PgFunction {
    /// The OID of the relation `name` (a view, or an emulated catalog
    /// table), optionally schema-qualified and quoted.
    fn relation_oid(&self, name: &str) -> Option<i64> {
        let parts = strings::parse_ident(name).ok()?;
        let table = parts.last()?;
        self.views
            .iter()
            .find(|(_, v)| &v.name == table)
            .map(|(o, _)| *o)
            .or_else(|| {
                tables::pg_catalog()
                    .position(|t| t.name == table)
                    .map(|i| SYSTEM_TABLE_OIDS + i as i64)
            })
    }
}

fn is_text(a: &ArrayRef) -> bool {
    matches!(
        a.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// An argument that must be an array (a list).
fn list_arg(a: &ArrayRef) -> datafusion::error::Result<ListArray> {
    match a.data_type() {
        DataType::List(_) => Ok(a.as_list::<i32>().clone()),
        DataType::Null => Ok(ListArray::new_null(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            a.len(),
        )),
        other => Err(DataFusionError::Plan(format!(
            "function takes an array, not {other}"
        ))),
    }
}

/// `_pg_expandarray`'s result: a list of (x element, n position).
fn expanded_type(element: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(expanded_fields(element)),
        true,
    )))
}

fn expanded_fields(element: DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element, true),
        Field::new("n", DataType::Int32, false),
    ])
}

/// Each list of `lists` as the list of its (element, 1-based position).
fn expand_array(lists: ListArray) -> ArrayRef {
    let values = lists.values().clone();
    let mut positions = vec![0i32; values.len()];
    let offsets = lists.offsets();
    for w in offsets.windows(2) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        for (n, p) in positions[start..end].iter_mut().enumerate() {
            *p = n as i32 + 1;
        }
    }
    let fields = expanded_fields(values.data_type().clone());
    let pairs = StructArray::new(
        fields.clone(),
        vec![values, Arc::new(Int32Array::from(positions))],
        None,
    );
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        offsets.clone(),
        Arc::new(pairs),
        lists.nulls().cloned(),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_with_a_backslash() {
        assert_eq!(backslash_escaped("pg/_%", Some('/')), "pg\\_%");
        assert_eq!(backslash_escaped("a\\b//c", Some('/')), "a\\\\b\\/c");
        assert_eq!(backslash_escaped("x_", None), "x_");
    }
}
