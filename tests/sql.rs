//! SQL behaviour: the `.slt` files under `tests/slt/` (parsing, planning,
//! expressions, aggregates, error messages), and the changelog aggregate
//! checked against DataFusion's batch result on random data.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use sluice::runtime::pipeline::build_operators;
use sluice::runtime::split::SplitGraph;
use sluice::stream::{Message, Op, StreamBatch};
use sluice::{Engine, Outcome, SluiceError};
use sqllogictest::{DBOutput, DefaultColumnType};

#[path = "sql/explain.rs"]
mod explain;
#[path = "sql/joins.rs"]
mod joins;
#[path = "sql/nexmark.rs"]
mod nexmark;
#[path = "sql/nexmark_oracle.rs"]
mod nexmark_oracle;
#[path = "sql/temporal_joins.rs"]
mod temporal_joins;
#[path = "sql/union.rs"]
mod union;
#[path = "sql/views.rs"]
mod views;
#[path = "sql/windows.rs"]
mod windows;

/// Runs statements on an engine; a SELECT runs its (bounded) pipeline to the
/// end and returns the final result.
struct SltEngine {
    engine: Engine,
}

fn rows_of(batch: &RecordBatch) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
        .collect();
    (0..batch.num_rows())
        .map(|r| {
            formatters
                .iter()
                .map(|f| {
                    let s = f.value(r).to_string();
                    if s.is_empty() {
                        "(empty)".to_string()
                    } else {
                        s
                    }
                })
                .collect()
        })
        .collect()
}

#[async_trait]
impl sqllogictest::AsyncDB for SltEngine {
    type Error = SluiceError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let trimmed = sql.trim_start().to_ascii_lowercase();
        if trimmed.starts_with("select") || trimmed.starts_with("with") {
            let batch = self.engine.select(sql).await?;
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; batch.num_columns()],
                rows: rows_of(&batch),
            });
        }
        match self.engine.execute(sql).await? {
            Outcome::Rows(batch) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; batch.num_columns()],
                rows: rows_of(&batch),
            }),
            _ => Ok(DBOutput::StatementComplete(0)),
        }
    }

    async fn shutdown(&mut self) {
        self.engine.shutdown_token().cancel();
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async {
            Ok(SltEngine {
                engine: Engine::new(),
            })
        });
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
        println!("slt: {}", file.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---- The changelog aggregate against DataFusion's batch result ----

const QUERIES: &[&str] = &[
    "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM t GROUP BY k",
    "SELECT k, round(avg(v), 6) AS a, round(stddev(v), 6) AS sd, round(var_pop(v), 6) AS vp FROM t GROUP BY k",
    "SELECT k, count(DISTINCT v) AS d, bool_and(v > 0) AS all_pos, bool_or(v > 40) AS any_big FROM t GROUP BY k",
    "SELECT k, sum(v) FILTER (WHERE v % 2 = 0) AS even_sum, count(tag) AS tags FROM t GROUP BY k",
    "SELECT k, sum(v * 2) AS total FROM t WHERE v > 10 GROUP BY k",
    "SELECT k, count(*) AS n FROM t GROUP BY k HAVING sum(v) > 50",
    "SELECT tag, k % 3 AS bucket, count(*) AS n, max(v) AS hi FROM t GROUP BY tag, k % 3",
    "SELECT k, string_agg(tag, ',' ORDER BY tag) AS tags, median(v) AS med, approx_distinct(v) AS ad FROM t GROUP BY k",
    "SELECT k, first_value(v ORDER BY v DESC) AS top, array_agg(DISTINCT tag ORDER BY tag) AS ts FROM t GROUP BY k",
    "SELECT count(*) AS n, sum(v) AS s FROM t",
];

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("tag", DataType::Utf8, true),
    ]))
}

fn batch_of(rows: &[(i64, Option<i64>, Option<String>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.2.clone()).collect::<StringArray>()),
        ],
    )
    .expect("batch")
}

/// Sorted rendered rows of DataFusion's batch answer.
async fn oracle(sql: &str, data: &RecordBatch) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema(), vec![vec![data.clone()]]).expect("table");
    ctx.register_table("t", Arc::new(table)).expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .expect("oracle plan")
        .collect()
        .await
        .expect("oracle run");
    let mut rows: Vec<Vec<String>> = batches.iter().flat_map(rows_of).collect();
    rows.sort();
    rows
}

/// Runs the plan's operators over `data` cut at `cuts`, applies the
/// changelog, checks its ops are consistent, and returns the sorted rows.
async fn streaming(
    engine: &Engine,
    sql: &str,
    data: &RecordBatch,
    cuts: &[usize],
    parallelism: usize,
) -> Vec<Vec<String>> {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    // On `parallelism` cores: the groups split across that many instances.
    let mut operators =
        SplitGraph::build(&plan, &Default::default(), parallelism).expect("operators");
    let mut state: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.num_rows() + 1)).collect();
    bounds.push(0);
    bounds.push(data.num_rows());
    bounds.sort();
    let apply = |state: &mut HashMap<Vec<String>, Vec<String>>, out: Vec<StreamBatch>| {
        for b in out {
            let rows = rows_of(&b.data);
            for (i, row) in rows.into_iter().enumerate() {
                let key: Vec<String> = plan.key_columns.iter().map(|&c| row[c].clone()).collect();
                match b.op(i) {
                    Op::Insert => {
                        assert!(state.insert(key, row).is_none(), "insert of a shown key")
                    }
                    Op::Update => {
                        let old = state.insert(key, row.clone());
                        assert!(
                            old.is_some_and(|o| o != row),
                            "update of an unknown key or no-op update"
                        );
                    }
                    Op::Delete => {
                        assert_eq!(state.remove(&key), Some(row), "delete of a row not shown")
                    }
                    Op::UpdateBefore => panic!("an aggregate emits no old rows"),
                }
            }
        }
    };
    for (n, w) in bounds.windows(2).enumerate() {
        let batch = StreamBatch::append(data.slice(w[0], w[1] - w[0]));
        let mut out = Vec::new();
        operators
            .push_input(0, Message::Batch(batch), &mut out)
            .expect("process");
        // What a vectorized aggregate holds back, the pipeline flushes
        // after a while: here after every other batch.
        if n % 2 == 1 {
            operators.flush(&mut out).expect("flush");
        }
        apply(&mut state, out);
    }
    let mut out = Vec::new();
    operators.finish(&mut out).expect("end of input");
    apply(&mut state, out);
    let mut rows: Vec<Vec<String>> = state.into_values().collect();
    rows.sort();
    rows
}

fn row_strategy() -> impl Strategy<Value = (i64, Option<i64>, Option<String>)> {
    (
        0i64..6,
        proptest::option::weighted(0.9, -20i64..60),
        proptest::option::weighted(
            0.8,
            proptest::sample::select(vec!["x", "y", "z"]).prop_map(String::from),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn changelog_aggregate_matches_datafusion(
        rows in proptest::collection::vec(row_strategy(), 1..300),
        cuts in proptest::collection::vec(0usize..300, 0..12),
        parallelism in 1usize..=2,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let mut engine = Engine::new();
            engine
                .execute("CREATE SOURCE t (k BIGINT NOT NULL, v BIGINT, tag TEXT) WITH (connector = 'file', path = 'unused.jsonl')")
                .await
                .expect("source");
            let data = batch_of(&rows);
            for sql in QUERIES {
                let expected = oracle(sql, &data).await;
                let actual = streaming(&engine, sql, &data, &cuts, parallelism).await;
                prop_assert_eq!(actual, expected, "query: {}", sql);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn having_turns_updates_into_deletes() {
    let mut engine = Engine::new();
    engine
        .execute("CREATE SOURCE t (k BIGINT NOT NULL, v BIGINT, tag TEXT) WITH (connector = 'file', path = 'unused.jsonl')")
        .await
        .expect("source");
    let plan = Arc::new(
        engine
            .plan_select("SELECT k, min(v) AS lo FROM t GROUP BY k HAVING min(v) > 0")
            .await
            .expect("plan"),
    );
    let mut ops = build_operators(&plan, &Default::default()).expect("operators");
    let mut run = |rows: &[(i64, Option<i64>, Option<String>)]| {
        let mut out = Vec::new();
        let mut pending = vec![StreamBatch::append(batch_of(rows))];
        for op in ops.operators_mut() {
            let mut next = Vec::new();
            for b in pending {
                op.process_batch(b, &mut next).expect("process");
            }
            pending = next;
        }
        for b in pending {
            for (i, r) in rows_of(&b.data).into_iter().enumerate() {
                out.push((b.op(i), r.join(",")));
            }
        }
        out
    };
    assert_eq!(
        run(&[(1, Some(5), None)]),
        vec![(Op::Insert, "1,5".to_string())]
    );
    assert_eq!(
        run(&[(1, Some(3), None)]),
        vec![(Op::Update, "1,3".to_string())]
    );
    assert_eq!(
        run(&[(1, Some(7), None)]),
        vec![],
        "min unchanged: nothing emitted"
    );
    assert_eq!(
        run(&[(1, Some(-1), None)]),
        vec![(Op::Delete, "1,3".to_string())]
    );
    assert_eq!(run(&[(1, Some(-2), None)]), vec![], "still hidden");
}
