//! Single-core throughput of Sluice's hot paths on in-memory data, next to
//! DataFusion running the same query in batch over the same batches.
//!
//!   cargo bench --bench throughput            # 5 million rows, release build
//!   cargo bench --bench throughput -- 20000000
//!
//! Under `cargo test --benches` it runs once on a small input, as a smoke
//! test. Results and how to read them: docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use sluice::format::{Format, FormatKind, RawBatch, RecordDecoder};
use sluice::runtime::pipeline::{build_operators, finish, push};
use sluice::sql::SourceColumn;
use sluice::stream::{Message, StreamBatch};
use sluice::Engine;

const BATCH: usize = 8192;
const BASE: i64 = 1_772_366_400_000;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("bidder", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

fn data(rows: usize) -> Vec<RecordBatch> {
    let mut rng = fastrand::Rng::with_seed(7);
    let channels = ["apple", "google", "facebook", "baidu"];
    (0..rows)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(rows - start);
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(
                        (0..n)
                            .map(|_| rng.i64(1000..11_000))
                            .collect::<Int64Array>(),
                    ),
                    Arc::new((0..n).map(|_| rng.i64(0..100_000)).collect::<Int64Array>()),
                    Arc::new((0..n).map(|_| rng.i64(1..10_000)).collect::<Int64Array>()),
                    Arc::new(
                        (0..n)
                            .map(|_| Some(channels[rng.usize(..4)]))
                            .collect::<StringArray>(),
                    ),
                    // 1,000 events per second of event time, 1 s of disorder.
                    Arc::new(
                        (start..start + n)
                            .map(|i| Some(BASE + i as i64 - rng.i64(0..1000)))
                            .collect::<TimestampMillisecondArray>(),
                    ),
                ],
            )
            .expect("batch")
        })
        .collect()
}

fn report(name: &str, rows: usize, seconds: f64) -> f64 {
    let rate = rows as f64 / seconds;
    println!(
        "{name:<44} {rows:>10} rows {seconds:>8.3} s {:>12.0} rows/s",
        rate
    );
    rate
}

/// Runs `sql` through Sluice's operators, each batch followed by a
/// watermark 1 s behind its newest event time.
async fn streaming(engine: &Engine, sql: &str, batches: &[RecordBatch]) -> f64 {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    let mut operators = build_operators(&plan, &Default::default()).expect("operators");
    let started = Instant::now();
    let mut out = Vec::new();
    let mut out_rows = 0;
    for (i, b) in batches.iter().enumerate() {
        push(
            &mut operators,
            Message::Batch(StreamBatch::append(b.clone())),
            &mut out,
        )
        .expect("batch");
        let watermark = BASE + ((i + 1) * BATCH) as i64 - 1000;
        push(&mut operators, Message::Watermark(watermark), &mut out).expect("watermark");
        out_rows += out.drain(..).map(|p| p.num_rows()).sum::<usize>();
    }
    finish(&mut operators, &mut out).expect("end of input");
    out_rows += out.iter().map(|p| p.num_rows()).sum::<usize>();
    std::hint::black_box(out_rows);
    started.elapsed().as_secs_f64()
}

async fn batch(sql: &str, batches: &[RecordBatch]) -> f64 {
    let ctx = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(1),
    );
    let table = MemTable::try_new(schema(), vec![batches.to_vec()]).expect("table");
    ctx.register_table("bids", Arc::new(table))
        .expect("register");
    let started = Instant::now();
    let out = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    std::hint::black_box(out);
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let rows: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 5_000_000 } else { 50_000 });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut engine = Engine::new();
        engine
            .execute("CREATE SOURCE bids (auction BIGINT NOT NULL, bidder BIGINT NOT NULL, price BIGINT NOT NULL, channel TEXT NOT NULL, date_time TIMESTAMP NOT NULL) WITH (connector = 'file', path = 'unused')")
            .await
            .expect("source");
        let batches = data(rows);
        println!("rows: {rows}, batch size {BATCH}, one core");
        let queries = [
            ("filter + project", "SELECT auction, price * 908 / 1000 AS euros FROM bids WHERE price > 5000"),
            (
                "changelog aggregate, 10k groups",
                "SELECT auction, count(*) AS n, sum(price) AS total, max(price) AS top FROM bids GROUP BY auction",
            ),
            (
                "changelog aggregate, 4 groups",
                "SELECT channel, count(*) AS n, sum(price) AS total FROM bids GROUP BY channel",
            ),
        ];
        let tumble = (
            "tumble 10 s window aggregate, 10k keys",
            "SELECT auction, window_start, window_end, count(*) AS n, max(price) AS top FROM TUMBLE(bids, date_time, INTERVAL '10 seconds') GROUP BY auction, window_start, window_end",
            "SELECT auction, date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01 00:00:00') AS window_start, count(*) AS n, max(price) AS top FROM bids GROUP BY 1, 2",
        );
        let all = queries.iter().map(|(n, q)| (*n, *q, *q)).chain(std::iter::once(tumble));
        for (name, sql, batch_sql) in all {
            let s = report(&format!("sluice: {name}"), rows, streaming(&engine, sql, &batches).await);
            let b = report(&format!("datafusion batch: {name}"), rows, batch(batch_sql, &batches).await);
            println!("{:<44} {:>10.2}", "  ratio sluice / batch", s / b);
        }

        // JSON lines → Arrow: Sluice's decoder (with bad-record isolation)
        // against arrow-json alone on the same bytes.
        let columns: Vec<SourceColumn> = schema()
            .fields()
            .iter()
            .map(|f| SourceColumn { name: f.name().clone(), data_type: f.data_type().clone(), nullable: false, metadata: None, pg_type: None })
            .collect();
        let format = Format { kind: FormatKind::Json, csv_header: false, csv_delimiter: b',' };
        let decoder = RecordDecoder::new(format, &columns, schema(), 1 << 20).expect("decoder");
        let mut raws = Vec::new();
        for b in &batches {
            let mut lines = Vec::new();
            sluice::format::json::encode(b, &mut lines).expect("encode");
            let mut raw = RawBatch::with_capacity(b.num_rows(), lines.len());
            for (i, l) in lines.split(|c| *c == b'\n').filter(|l| !l.is_empty()).enumerate() {
                raw.push(l, i as u64);
            }
            raws.push(raw);
        }
        let bytes: usize = raws.iter().map(|r| r.byte_len()).sum();
        let started = Instant::now();
        for raw in &raws {
            std::hint::black_box(decoder.decode(raw).expect("decode"));
        }
        let s = report("sluice: JSON decode", rows, started.elapsed().as_secs_f64());
        let started = Instant::now();
        for raw in &raws {
            std::hint::black_box(sluice::format::json::decode(&schema(), raw.bytes(), raw.len()).expect("decode"));
        }
        let a = report("arrow-json alone: JSON decode", rows, started.elapsed().as_secs_f64());
        println!("{:<44} {:>10.2}  ({:.1} MB)", "  ratio sluice / arrow-json", s / a, bytes as f64 / 1e6);
    });
}
