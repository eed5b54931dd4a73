//! The introspection SQL real clients send, copied from their source into
//! tests/clients/introspection/ (psql, pgcli, asyncpg, pgJDBC, psqlODBC,
//! Metabase, Grafana), run over each client's protocol against views of
//! every shape: each statement succeeds and the answers name the views and
//! their columns, once each, with their types. pgcli runs in a terminal
//! and completes the views' names; pgJDBC's DatabaseMetaData reads interval
//! and jsonb columns.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{client, define, python, run_client, Server, T};
use crate::common::wait_for;

/// `define`'s views, and two more: one created with odd spacing and IF NOT
/// EXISTS whose columns are interval and jsonb, one windowed with WITH
/// options after its query.
fn define_shapes(server: &Server, dir: &Path) {
    define(server, dir);
    let clicks: String = ["00:01", "00:02", "00:13", "00:35"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{{\"k\": \"{}\", \"ts\": \"2026-01-01T00:{t}\"}}\n",
                ["a", "b"][i % 2]
            )
        })
        .collect();
    std::fs::write(dir.join("clicks.jsonl"), clicks).expect("clicks");
    server.psql_ok(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS   shaped\n  AS\n    SELECT k, INTERVAL '90 minutes' AS span,\n      named_struct('k', k, 'top', max(v)) AS doc\n    FROM ev GROUP BY k;
         CREATE SOURCE clicks (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2 seconds')
             WITH (connector = 'file', path = 'clicks.jsonl');
         CREATE MATERIALIZED VIEW windowed AS
         SELECT k, window_start, window_end, count(*) AS n
         FROM TUMBLE(clicks, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end
         WITH (allowed_lateness = '5 seconds');",
    );
    wait_for("the views to fill", T, || {
        let out =
            server.psql_ok("SELECT count(*) FROM shaped UNION ALL SELECT count(*) FROM windowed;");
        (out.contains(" 3\n") && out.contains(" 4\n")).then_some(())
    });
}

const VIEWS: [&str; 4] = ["counts", "live", "shaped", "windowed"];

#[test]
fn clients_introspection_sql_runs_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define_shapes(&server, dir.path());

    // Every statement of every client, over its client's protocol.
    let out = run_client(
        &server,
        Command::new(python())
            .arg(client("introspection/run.py"))
            .arg(server.port.to_string()),
    );
    let got: Value = serde_json::from_str(&out).expect("json");
    let rows = |name: &str| -> Vec<Vec<String>> {
        got[name]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("no answer for {name}: {out}"))
            .iter()
            .map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| v.as_str().unwrap_or("NULL").to_string())
                    .collect()
            })
            .collect()
    };
    let column = |name: &str, i: usize| -> Vec<String> {
        rows(name).into_iter().map(|r| r[i].clone()).collect()
    };

    // psql: the relations, a view's columns and its SELECT whatever its
    // CREATE looked like, the database, no user functions.
    let psql = |name: &str| rows(&format!("psql/{name}"))[0][0].clone();
    for v in VIEWS {
        assert!(
            psql("relations").contains(&format!(" public | {v} ")),
            "{}",
            psql("relations")
        );
        assert!(psql("materialized_views").contains(&format!(" {v} ")));
    }
    let shaped = psql("describe_view");
    for line in [" span   | interval ", " doc    | jsonb ", "View definition:\nSELECT k, INTERVAL '90 minutes' AS span, named_struct('k', k, 'top', max(v)) AS doc FROM ev GROUP BY k;"] {
        assert!(shaped.contains(line), "{line}: {shaped}");
    }
    assert!(
        psql("describe_view_with_options").contains(
            "View definition:\nSELECT k, window_start, window_end, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end;\n"
        ),
        "{}",
        psql("describe_view_with_options")
    );
    assert!(psql("databases").contains(" sluice | sluice | UTF8 "));
    assert!(psql("functions").contains("(0 rows)"));

    // pgcli: the views it completes, with their columns' types; the
    // search path; a view's definition (\ev).
    let views: Vec<String> = column("pgcli/views", 1);
    assert_eq!(views, VIEWS, "{out}");
    assert!(rows("pgcli/tables").is_empty());
    let view_columns = rows("pgcli/view_columns");
    for (v, c, t) in [
        ("counts", "n", "bigint"),
        ("shaped", "span", "interval"),
        ("shaped", "doc", "jsonb"),
        ("windowed", "window_start", "timestamp without time zone"),
    ] {
        assert!(
            view_columns
                .iter()
                .any(|r| r[1] == v && r[2] == c && r[3] == t),
            "{v}.{c} {t}: {view_columns:?}"
        );
    }
    assert_eq!(column("pgcli/search_path", 0), ["pg_catalog", "public"]);
    assert_eq!(
        column("pgcli/search_path_fallback", 0),
        ["{pg_catalog,public}"]
    );
    assert_eq!(
        rows("pgcli/view_definition")[0][..4],
        [
            "public",
            "counts",
            "m",
            "SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k;"
        ]
    );

    // asyncpg: types by name, and the type tree of an array (once the
    // server reads its oid[] parameter: see asyncpg.sql).
    assert_eq!(rows("asyncpg/type_by_name"), [["3802", "0", "b"]]);
    assert_eq!(rows("asyncpg/type_by_name_array"), [["1016", "20", "b"]]);
    if got.get("asyncpg/lookup_types").is_some() {
        let types = rows("asyncpg/lookup_types");
        for (oid, name) in [
            ("1016", "_int8"),
            ("20", "int8"),
            ("3802", "jsonb"),
            ("1186", "interval"),
        ] {
            assert!(
                types.iter().any(|r| r[0] == oid && r[2] == name),
                "{oid}: {types:?}"
            );
        }
    }

    // pgJDBC: the views as MATERIALIZED VIEWs, typed columns, no keys.
    let tables: Vec<(String, String)> = rows("pgjdbc/tables")
        .into_iter()
        .map(|r| (r[2].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        tables,
        VIEWS.map(|v| (v.to_string(), "MATERIALIZED VIEW".to_string()))
    );
    assert_eq!(
        rows("pgjdbc/columns_interval_jsonb")
            .iter()
            .map(|r| (r[2].as_str(), r[3].as_str()))
            .collect::<Vec<_>>(),
        [("k", "25"), ("span", "1186"), ("doc", "3802")]
    );
    assert!(rows("pgjdbc/primary_keys").is_empty() && rows("pgjdbc/index_info").is_empty());
    let sql_types = rows("pgjdbc/type_info_sql_types");
    assert!(
        sql_types.iter().any(|r| r[0] == "t" && r[2] == "_jsonb"),
        "{sql_types:?}"
    );

    // psqlODBC: a materialized view has no primary key.
    assert!(rows("psqlodbc/primary_keys").is_empty());

    // Metabase: the views with their row counts; every column once, typed.
    let tables = rows("metabase/tables");
    assert_eq!(
        tables.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        VIEWS,
        "{tables:?}"
    );
    assert!(
        tables.iter().any(|r| r[1] == "counts" && r[4] == "3"),
        "{tables:?}"
    );
    let fields: Vec<(String, String, String)> = rows("metabase/fields")
        .into_iter()
        .map(|r| (r[4].clone(), r[0].clone(), r[1].clone()))
        .collect();
    let mut unique = fields.clone();
    unique.dedup();
    assert_eq!(unique, fields, "each column once");
    for (v, c, t) in [
        ("counts", "k", "text"),
        ("counts", "n", "int8"),
        ("shaped", "span", "interval"),
        ("shaped", "doc", "jsonb"),
        ("windowed", "window_end", "timestamp"),
    ] {
        assert!(
            fields.contains(&(v.into(), c.into(), t.into())),
            "{v}.{c}: {fields:?}"
        );
    }
    assert_eq!(fields.len(), 3 + 2 + 3 + 4, "{fields:?}");
    assert_eq!(column("metabase/table_privileges", 2).len(), VIEWS.len());

    // Grafana: its table picker and column picker.
    assert_eq!(column("grafana/tables", 0), VIEWS);
    assert_eq!(column("grafana/tables_in_schema", 0), VIEWS);
    for picker in ["grafana/columns", "grafana/columns_qualified"] {
        assert_eq!(
            rows(picker),
            [["k", "text"], ["n", "bigint"], ["s", "bigint"]],
            "{picker}"
        );
    }

    // pgcli itself, in a terminal: it completes the views' names.
    let out = run_client(
        &server,
        Command::new(python())
            .arg(client("pgcli_check.py"))
            .arg(server.port.to_string())
            .args(VIEWS),
    );
    assert!(
        out.contains("pgcli completes: counts live shaped windowed"),
        "{out}"
    );

    // pgJDBC's DatabaseMetaData through the driver, interval and jsonb
    // values read the first times and once server-prepared.
    let jar = std::env::var("SLUICE_JDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    let out = run_client(
        &server,
        Command::new("java")
            .arg("-cp")
            .arg(&jar)
            .arg(client("JdbcCheck.java"))
            .arg(server.port.to_string())
            .arg("counts")
            .arg("shaped"),
    );
    let facts: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let of = |kind: &str| -> Vec<Vec<&str>> {
        facts
            .iter()
            .filter(|f| f[0] == kind)
            .map(|f| f[1..].to_vec())
            .collect()
    };
    // java.sql.Types.OTHER (1111), as PostgreSQL's driver says of both.
    assert_eq!(
        of("typed column"),
        [
            vec!["k", "text", "12"],
            vec!["span", "interval", "1111"],
            vec!["doc", "jsonb", "1111"]
        ],
        "{out}"
    );
    let values = of("typed value");
    assert_eq!(values.len(), 7, "{out}");
    for v in &values {
        assert_eq!(
            v[1..],
            [
                "k1",
                "PGInterval",
                "0 years 0 mons 0 days 1 hours 30 mins 0.0 secs",
                "PGobject",
                "{\"k\":\"k1\",\"top\":298}"
            ],
            "{out}"
        );
    }
    assert!(
        of("primary key").is_empty() && of("index").is_empty(),
        "{out}"
    );
    let type_info = of("type info");
    for t in [
        vec!["int8", "-5"],
        vec!["interval", "1111"],
        vec!["jsonb", "1111"],
        vec!["text", "12"],
    ] {
        assert!(type_info.contains(&t), "{t:?}: {out}");
    }
    server.stop();
}
