//! Every query under `queries/nexmark/` runs on the built-in generator and
//! its result is checked against DataFusion in batch over the same rows of
//! each of its sources: the same SQL for the unwindowed queries (the joins
//! among them), `date_bin` for TUMBLE, shifted
//! `date_bin`s for HOP, and the reference sessionizer for SESSION.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use sluice::sql::Statement;
use sluice::Engine;

use super::nexmark_oracle::{has_batch_form, oracle_sql, query_files, QueryFile};
use super::rows_of;
use super::windows::{sessions, windowed_batch, Row};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexmark_queries_match_datafusion() {
    let files = query_files();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert!(files.len() >= 15, "{names:?}");
    for QueryFile { name, setup, query } in files {
        let mut engine = Engine::new();
        // On three cores: an exchange splits the keyed aggregates across
        // three instances (one core is what the views' test also runs).
        engine.set_parallelism(3);
        let sources: Vec<String> = setup
            .iter()
            .filter_map(|s| match &s.statement {
                Statement::CreateSource(c) => Some(c.name.clone()),
                _ => None,
            })
            .collect();
        for stmt in setup {
            engine
                .prepare(stmt.statement, &stmt.sql)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let got = engine
            .query_to_end(&query)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got = rows_of(&got);
        got.sort();

        // The same generated rows of every source, in batch.
        let ctx = SessionContext::new();
        // PostgreSQL's to_char, as the queries use it.
        sluice::functions::register(&ctx);
        for source in &sources {
            let rows = engine
                .query_to_end(&format!("SELECT * FROM {source}"))
                .await
                .unwrap_or_else(|e| panic!("{name}: {source}: {e}"));
            ctx.register_table(
                source.as_str(),
                Arc::new(MemTable::try_new(rows.schema(), vec![vec![rows]]).expect("table")),
            )
            .expect("register");
        }
        if !has_batch_form(&name) {
            let bids = engine
                .query_to_end("SELECT * FROM bid")
                .await
                .expect("bids");
            let bidder = bids
                .column_by_name("bidder")
                .expect("bidder")
                .as_primitive::<Int64Type>();
            let ts = bids
                .column_by_name("date_time")
                .expect("ts")
                .as_primitive::<TimestampMillisecondType>();
            let rows: Vec<Row> = (0..bids.num_rows())
                .map(|i| Row {
                    k: bidder.value(i),
                    v: 0,
                    ts: ts.value(i),
                })
                .collect();
            let w = windowed_batch(&sessions(&rows, 10_000));
            ctx.register_table(
                "w",
                Arc::new(MemTable::try_new(w.schema(), vec![vec![w]]).expect("table")),
            )
            .expect("register");
        }
        let batches = ctx
            .sql(&oracle_sql(&name, &query))
            .await
            .expect("oracle plan")
            .collect()
            .await
            .expect("oracle");
        let mut want: Vec<Vec<String>> = batches.iter().flat_map(rows_of).collect();
        want.sort();
        assert!(!got.is_empty(), "{name}: no rows");
        assert_eq!(got.len(), want.len(), "{name}: row count");
        assert!(got == want, "{name}: results differ from DataFusion's");
        println!("{name}: {} rows, equal to DataFusion's", got.len());
    }
}
