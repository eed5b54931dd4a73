//! The server's sessions: `pg_stat_activity` (one row per session, with its
//! statement and state), `pg_backend_pid()`, `pg_cancel_backend(pid)` and
//! `pg_terminate_backend(pid)`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{AsArray, BooleanBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::tables::{TableDef, Ty::*, V};
use super::{Relations, DATABASE_OID};
use crate::server::activity::{self, Activity};

pub(super) const TABLES: &[TableDef] = &[STAT_ACTIVITY, STAT_SSL];

/// `pg_stat_ssl`: whether each session is encrypted.
const STAT_SSL: TableDef = TableDef {
    name: "pg_stat_ssl",
    columns: &[
        ("pid", I32),
        ("ssl", Bool),
        ("version", Text),
        ("cipher", Text),
        ("bits", I32),
        ("client_dn", Text),
        ("client_serial", Text),
        ("issuer_dn", Text),
    ],
    rows: |rels| {
        rels.1
            .iter()
            .map(|r| {
                vec![
                    i64::from(r.pid).into(),
                    r.ssl.into(),
                    // The negotiated version and cipher are not kept (TLS
                    // 1.2 or 1.3, rustls's safe defaults).
                    V::Null,
                    V::Null,
                    V::Null,
                    V::Null,
                    V::Null,
                    V::Null,
                ]
            })
            .collect()
    },
};

const STAT_ACTIVITY: TableDef = TableDef {
    name: "pg_stat_activity",
    columns: &[
        ("datid", Oid),
        ("datname", Text),
        ("pid", I32),
        ("leader_pid", I32),
        ("usesysid", Oid),
        ("usename", Text),
        ("application_name", Text),
        ("client_addr", Text),
        ("client_hostname", Text),
        ("client_port", I32),
        ("backend_start", TimestampTz),
        ("xact_start", TimestampTz),
        ("query_start", TimestampTz),
        ("state_change", TimestampTz),
        ("wait_event_type", Text),
        ("wait_event", Text),
        ("state", Text),
        ("backend_xid", Text),
        ("backend_xmin", Text),
        ("query_id", I64),
        ("query", Text),
        ("backend_type", Text),
    ],
    rows: activity_rows,
};

fn micros(at: SystemTime) -> V {
    at.duration_since(UNIX_EPOCH)
        .map_or(V::Null, |d| V::I(d.as_micros() as i64))
}

fn activity_rows(rels: &Relations) -> Vec<Vec<V>> {
    rels.1
        .iter()
        .map(|r| {
            vec![
                DATABASE_OID.into(),
                r.database.as_str().into(),
                i64::from(r.pid).into(),
                V::Null,
                super::OWNER_OID.into(),
                r.user.as_str().into(),
                r.application_name.as_str().into(),
                r.client_addr.as_str().into(),
                V::Null,
                i64::from(r.client_port).into(),
                micros(r.backend_start),
                V::Null,
                r.query_start.map_or(V::Null, micros),
                micros(r.state_change),
                V::Null,
                V::Null,
                r.state.into(),
                V::Null,
                V::Null,
                V::Null,
                r.query.as_str().into(),
                "client backend".into(),
            ]
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pid,
    Cancel,
    Terminate,
}

/// A function that reaches the server's sessions.
pub(super) struct BackendFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
    activity: Arc<Activity>,
}

impl std::fmt::Debug for BackendFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for BackendFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.activity, &other.activity)
    }
}

impl Eq for BackendFunction {}

impl std::hash::Hash for BackendFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

pub(super) fn functions(activity: &Arc<Activity>) -> Vec<BackendFunction> {
    [
        ("pg_backend_pid", Kind::Pid),
        ("pg_cancel_backend", Kind::Cancel),
        ("pg_terminate_backend", Kind::Terminate),
    ]
    .into_iter()
    .map(|(name, kind)| BackendFunction {
        name,
        kind,
        signature: match kind {
            Kind::Pid => Signature::nullary(Volatility::Stable),
            // pg_terminate_backend(pid, timeout) is accepted too.
            _ => Signature::variadic_any(Volatility::Volatile),
        },
        activity: Arc::clone(activity),
    })
    .collect()
}

impl ScalarUDFImpl for BackendFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.kind {
            Kind::Pid => DataType::Int32,
            _ => DataType::Boolean,
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        if self.kind == Kind::Pid {
            // Outside a session's statement (never, from a client): the
            // process's own id, as before sessions had theirs.
            let pid = activity::current_pid().unwrap_or(std::process::id() as i32);
            return Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(pid))));
        }
        let Some(pids) = args.args.first() else {
            return datafusion::common::plan_err!("{}(pid) needs a pid", self.name);
        };
        let scalar = matches!(pids, ColumnarValue::Scalar(_));
        let pids = cast(&pids.to_array(args.number_rows)?, &DataType::Int64)?;
        let mut out = BooleanBuilder::new();
        for pid in pids.as_primitive::<Int64Type>().iter() {
            let pid = pid.and_then(|p| i32::try_from(p).ok());
            out.append_option(pid.map(|pid| match self.kind {
                Kind::Cancel => self.activity.cancel(pid),
                _ => self.activity.terminate(pid),
            }));
        }
        let out = out.finish();
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}
