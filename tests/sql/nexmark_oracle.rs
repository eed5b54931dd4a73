//! The batch form of each Nexmark query under `queries/nexmark/`: the
//! DataFusion SQL that computes what the continuous query produces. Shared by
//! the oracle test (tests/sql/nexmark.rs) and the benchmark
//! (benches/nexmark.rs).

/// The DataFusion query that computes what a Nexmark query file should
/// produce, over a table `bid` (and `w` for sessions).
pub fn oracle_sql(name: &str, query: &str) -> String {
    match name {
        "q5" => {
            let shifted: Vec<String> = (0..5)
                .map(|k| {
                    format!(
                        "SELECT auction, date_bin(INTERVAL '2 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') - INTERVAL '{}' SECOND AS ws FROM bid",
                        k * 2
                    )
                })
                .collect();
            format!(
                "SELECT auction, ws AS window_start, ws + INTERVAL '10 seconds' AS window_end, count(*) AS num
                 FROM ({}) GROUP BY auction, ws HAVING count(*) > 20",
                shifted.join(" UNION ALL ")
            )
        }
        "q7" => "SELECT date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') AS window_start,
                        date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '10 seconds' AS window_end,
                        max(price) AS maxprice
                 FROM bid GROUP BY 1, 2"
            .to_string(),
        "q11" => "SELECT k AS bidder, count(*) AS bid_count, ws AS window_start, we AS window_end FROM w GROUP BY k, ws, we".to_string(),
        _ => query.to_string(),
    }
}

/// Whether `oracle_sql` is plain SQL over `bid` alone; q11's sessions need
/// a table `w` of sessions from the reference sessionizer.
pub fn has_batch_form(name: &str) -> bool {
    name != "q11"
}
