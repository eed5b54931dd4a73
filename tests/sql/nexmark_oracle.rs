//! The Nexmark queries under `queries/nexmark/` and the batch form of each:
//! the DataFusion SQL that computes what the continuous query produces.
//! Shared by the oracle test (tests/sql/nexmark.rs) and the benchmark
//! (benches/nexmark.rs).

use std::path::Path;

use sluice::sql::{parse_script, Located, SinkInput, Statement};

/// One query file: its name (`q5`), the statements before its sink (the
/// source), and the sink's continuous query.
pub struct QueryFile {
    pub name: String,
    pub setup: Vec<Located>,
    pub query: String,
}

/// Every query file, in query-number order.
pub fn query_files() -> Vec<QueryFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/nexmark");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("queries/nexmark")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    let number = |p: &Path| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        stem.trim_start_matches('q')
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    };
    files.sort_by_key(|p| number(p));
    files
        .into_iter()
        .map(|file| {
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_string();
            let text = std::fs::read_to_string(&file).expect("read");
            let mut setup = Vec::new();
            let mut query = None;
            for stmt in parse_script(&text).unwrap_or_else(|e| panic!("{name}: {e}")) {
                match &stmt.statement {
                    Statement::CreateSink(s) => {
                        query = Some(match &s.input {
                            SinkInput::Query(q) => q.to_string(),
                            SinkInput::Relation(r) => format!("SELECT * FROM {r}"),
                        })
                    }
                    _ => setup.push(stmt),
                }
            }
            let query = query.unwrap_or_else(|| panic!("{name}: no sink"));
            QueryFile { name, setup, query }
        })
        .collect()
}

/// The DataFusion query that computes what a Nexmark query file should
/// produce, over a table per source (and `w` for sessions).
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
        "q7_join" => "SELECT b.auction, b.price, b.bidder, b.date_time, b.extra FROM bid b
                 JOIN (SELECT max(price) AS maxprice,
                              date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '10 seconds' AS wend
                       FROM bid GROUP BY 2) m
                 ON b.price = m.maxprice
                 WHERE b.date_time >= m.wend - INTERVAL '10' SECOND AND b.date_time < m.wend"
            .to_string(),
        "q8" => "SELECT p.id, p.name, p.starttime
                 FROM (SELECT id, name, date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') AS starttime
                       FROM person GROUP BY 1, 2, 3) p
                 JOIN (SELECT seller, date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') AS starttime
                       FROM auction GROUP BY 1, 2) a
                 ON p.id = a.seller AND p.starttime = a.starttime"
            .to_string(),
        "q13" => "SELECT b.auction, b.bidder, b.price, b.date_time, s.value
                  FROM bid b JOIN side_input s ON b.auction % 10000 = s.key"
            .to_string(),
        "q11" => "SELECT k AS bidder, count(*) AS bid_count, ws AS window_start, we AS window_end FROM w GROUP BY k, ws, we".to_string(),
        _ => query.to_string(),
    }
}

/// Whether `oracle_sql` is plain SQL over the sources; q11's sessions need
/// a table `w` of sessions from the reference sessionizer.
pub fn has_batch_form(name: &str) -> bool {
    name != "q11"
}
