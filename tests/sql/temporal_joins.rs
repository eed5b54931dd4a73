//! Temporal joins in event time (`JOIN b FOR SYSTEM_TIME AS OF a.ts`)
//! against DataFusion in batch: each stream row with the version of its key
//! valid at its time (the versions' row with the greatest time at or before
//! it), over the rows that were on time at the join. Disordered inputs
//! with far-behind rows, random batches and interleaving, a checkpoint and
//! restore at a random step. Versions of one key never share a time here
//! (with equal times the last to arrive wins, which batch SQL cannot say).

use std::collections::HashSet;

use proptest::prelude::*;

use super::joins::{join_text, time_joins_match, Kept};
use super::union::rows_strategy;
use super::windows::Row;

/// The streaming query, and the same in batch SQL: `best` finds each
/// stream row's version time.
const TEMPORAL_JOINS: &[(&str, &str)] = &[
    (
        "SELECT a.k, a.v, b.v AS bv FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts ON a.k = b.k",
        "WITH best AS (SELECT a.k, a.ts, max(b.ts) AS vts FROM a JOIN b
             ON a.k = b.k AND b.ts <= a.ts GROUP BY a.k, a.ts)
         SELECT a.k, a.v, b.v AS bv FROM a
         JOIN best ON a.k = best.k AND a.ts = best.ts
         JOIN b ON b.k = best.k AND b.ts = best.vts",
    ),
    (
        "SELECT a.k, a.v, b.v AS bv, b.ts FROM a LEFT JOIN b FOR SYSTEM_TIME AS OF a.ts
         ON a.k = b.k AND b.v > a.v",
        "WITH best AS (SELECT a.k, a.ts, max(b.ts) AS vts FROM a JOIN b
             ON a.k = b.k AND b.ts <= a.ts GROUP BY a.k, a.ts)
         SELECT a.k, a.v, b.v AS bv, b.ts FROM a
         LEFT JOIN best ON a.k = best.k AND a.ts = best.ts
         LEFT JOIN b ON b.k = best.k AND b.ts = best.vts AND b.v > a.v",
    ),
    (
        // The versions on the left, the stream on the right.
        "SELECT b.k, b.v, a.v AS av FROM a FOR SYSTEM_TIME AS OF b.ts RIGHT JOIN b ON a.k = b.k",
        "WITH best AS (SELECT b.k, b.ts, max(a.ts) AS vts FROM b JOIN a
             ON a.k = b.k AND a.ts <= b.ts GROUP BY b.k, b.ts)
         SELECT b.k, b.v, a.v AS av FROM b
         LEFT JOIN best ON b.k = best.k AND b.ts = best.ts
         LEFT JOIN a ON a.k = best.k AND a.ts = best.vts",
    ),
];

/// `rows` without a second row of the same key and time.
fn distinct_versions(rows: Vec<Row>) -> Vec<Row> {
    let mut seen = HashSet::new();
    rows.into_iter()
        .filter(|r| seen.insert((r.k, r.ts)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn temporal_joins_match_datafusion(
        a in rows_strategy(),
        b in rows_strategy(),
        cuts_a in proptest::collection::vec(0usize..200, 0..8),
        cuts_b in proptest::collection::vec(0usize..200, 0..8),
        order in proptest::collection::vec(any::<bool>(), 1..16),
        restart in 0usize..20,
        parallelism in 1usize..=2,
    ) {
        let (a, b) = (distinct_versions(a), distinct_versions(b));
        time_joins_match(
            TEMPORAL_JOINS,
            [&a, &b],
            [&cuts_a, &cuts_b],
            (&order, restart, parallelism),
            Kept::AtJoin,
            |j| j.temporal.is_some(),
        );
    }
}

/// EXPLAIN says which input holds the versions and what the state is;
/// what cannot be a temporal join is refused, naming why.
#[tokio::test]
async fn temporal_joins_explain_themselves_and_refuse_what_they_cannot_do() {
    let mut engine = super::union::engine().await;
    engine
        .execute(
            "CREATE SOURCE c (k BIGINT NOT NULL, v BIGINT, ts TIMESTAMP NOT NULL)
             WITH (connector = 'file', path = 'unused')",
        )
        .await
        .expect("source");
    engine
        .execute("CREATE MATERIALIZED VIEW cv AS SELECT k, sum(v) AS v FROM b GROUP BY k")
        .await
        .expect("view");
    let plan = engine
        .plan_select("SELECT a.k, b.v FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts ON a.k = b.k")
        .await
        .expect("plan");
    let text = join_text(&plan);
    assert!(
        text.starts_with("INNER TEMPORAL (event time) on a.k = b.k; versions: the right input's")
            && !text.contains("filter"),
        "{text}"
    );
    assert!(plan.notices().is_empty(), "its state is bounded");
    for (sql, says) in [
        (
            "SELECT a.k FROM a FULL JOIN b FOR SYSTEM_TIME AS OF a.ts ON a.k = b.k",
            "a FULL temporal join",
        ),
        (
            "SELECT a.k FROM a JOIN b FOR SYSTEM_TIME AS OF a.v ON a.k = b.k",
            "a.v is not one",
        ),
        (
            "SELECT a.k FROM a JOIN c FOR SYSTEM_TIME AS OF a.ts ON a.k = c.k",
            "c has no event time",
        ),
        (
            "SELECT a.k FROM a JOIN cv FOR SYSTEM_TIME AS OF a.ts ON a.k = cv.k",
            "of the updating input cv",
        ),
        (
            "SELECT a.k FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts + INTERVAL '1' SECOND ON a.k = b.k",
            "name the stream's event-time column",
        ),
    ] {
        let err = engine.plan_select(sql).await.expect_err(sql).to_string();
        assert!(err.contains(says), "{sql}: {err}");
    }
}
