//! The batch answer (DataFusion over the input topic's events) and how the
//! sinks' and views' contents differ from it, in words a failure message
//! can use: which window or key, expected against found.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;

use super::{Event, Received, TOTALS, WINDOWED_ORACLE};

pub(super) fn input_problems(sent: &[Event], topic: &[Event]) -> Vec<String> {
    let by_partition = |events: &[Event]| {
        let mut m: BTreeMap<i32, Vec<Event>> = BTreeMap::new();
        for e in events {
            m.entry(e.partition).or_default().push(e.clone());
        }
        m
    };
    let (sent, held) = (by_partition(sent), by_partition(topic));
    if sent == held {
        return Vec::new();
    }
    let counts = |m: &BTreeMap<i32, Vec<Event>>| -> Vec<(i32, usize)> {
        m.iter().map(|(p, e)| (*p, e.len())).collect()
    };
    vec![format!(
        "the broker's copy of the input differs from what was produced (a broker or \
         producer problem, not sluice's; the expected output is computed from the \
         broker's copy): events per partition produced {:?}, held {:?}",
        counts(&sent),
        counts(&held)
    )]
}

pub(super) type Window = (String, i64);

pub(super) struct Oracle {
    /// (k, window_start ms) → (n, s), over the on-time events.
    pub(super) windows: BTreeMap<Window, (i64, i64)>,
    /// k → (n, s), over every event.
    pub(super) totals: BTreeMap<String, (i64, i64)>,
}

impl Oracle {
    pub(super) async fn of(events: &[Event]) -> Oracle {
        let ctx = SessionContext::new();
        let on_time: Vec<Event> = events.iter().filter(|e| e.is_on_time()).cloned().collect();
        for (name, events) in [("ev", events), ("on_time", &on_time[..])] {
            let batch = batch(events);
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("table");
            ctx.register_table(name, Arc::new(table)).expect("register");
        }
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(sql)
                    .await
                    .unwrap_or_else(|e| panic!("oracle {sql}: {e}"))
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("oracle {sql}: {e}"))
            }
        };
        let mut windows = BTreeMap::new();
        for b in run(WINDOWED_ORACLE).await {
            let (k, start, n, s) = (
                strings(b.column(0)),
                millis(b.column(1)),
                int64s(b.column(2)),
                int64s(b.column(3)),
            );
            for i in 0..b.num_rows() {
                windows.insert(
                    (k.value(i).to_string(), start.value(i)),
                    (n.value(i), s.value(i)),
                );
            }
        }
        let mut totals = BTreeMap::new();
        for b in run(TOTALS).await {
            let (k, n, s) = (
                strings(b.column(0)),
                int64s(b.column(1)),
                int64s(b.column(2)),
            );
            for i in 0..b.num_rows() {
                totals.insert(k.value(i).to_string(), (n.value(i), s.value(i)));
            }
        }
        Oracle { windows, totals }
    }
}

fn batch(events: &[Event]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| &e.k))),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.v))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                events.iter().map(|e| e.ts),
            )),
        ],
    )
    .expect("batch")
}

fn strings(a: &Arc<dyn Array>) -> StringArray {
    cast(a, &DataType::Utf8)
        .expect("text")
        .as_string::<i32>()
        .clone()
}

fn int64s(a: &Arc<dyn Array>) -> Int64Array {
    cast(a, &DataType::Int64)
        .expect("integer")
        .as_primitive::<Int64Type>()
        .clone()
}

fn millis(a: &Arc<dyn Array>) -> Int64Array {
    let ms = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None)).expect("timestamp");
    int64s(&ms)
}

/// A `window_start` as the sink writes it or the view prints it.
fn parse_time(text: &str) -> i64 {
    let t = text.trim_end_matches('Z');
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
        .unwrap_or_else(|e| panic!("window_start {text:?}: {e}"))
        .and_utc()
        .timestamp_millis()
}

fn show_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn windows_of_messages(messages: &[Received]) -> Vec<(Window, (i64, i64))> {
    messages
        .iter()
        .map(|m| {
            let v = m.json();
            let start = match &v["window_start"] {
                serde_json::Value::Number(n) => n.as_i64().expect("window_start"),
                other => parse_time(other.as_str().expect("window_start")),
            };
            (
                (v["k"].as_str().expect("k").to_string(), start),
                (v["n"].as_i64().expect("n"), v["s"].as_i64().expect("s")),
            )
        })
        .collect()
}

pub(super) fn windows_of_rows(rows: &[Vec<String>]) -> Vec<(Window, (i64, i64))> {
    rows.iter()
        .map(|r| {
            let int = |i: usize| r[i].parse::<i64>().unwrap_or_else(|e| panic!("{r:?}: {e}"));
            ((r[0].clone(), parse_time(&r[1])), (int(2), int(3)))
        })
        .collect()
}

pub(super) fn totals_of_rows(rows: &[Vec<String>]) -> BTreeMap<String, (i64, i64)> {
    rows.iter()
        .map(|r| {
            let int = |i: usize| r[i].parse::<i64>().unwrap_or_else(|e| panic!("{r:?}: {e}"));
            (r[0].clone(), (int(1), int(2)))
        })
        .collect()
}

/// At most this many lines of each kind of problem in the failure message.
const SHOWN: usize = 8;

/// `lines` under a heading saying how many there are, at most `SHOWN` of
/// them (a crash that repeats everything would otherwise print thousands).
fn findings(heading: String, lines: Vec<String>) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    let more = lines.len().saturating_sub(SHOWN);
    let mut out = vec![heading];
    out.extend(lines.into_iter().take(SHOWN).map(|l| format!("    {l}")));
    if more > 0 {
        out.push(format!("    … and {more} more"));
    }
    out
}

fn show((n, s): &(i64, i64)) -> String {
    format!("n={n} s={s}")
}

/// Several rows' figures, each distinct one once with how often it came.
fn show_all(rows: &[(i64, i64)]) -> String {
    let mut counts: BTreeMap<&(i64, i64), usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(r).or_default() += 1;
    }
    let shown: Vec<String> = counts
        .into_iter()
        .map(|(r, times)| match times {
            1 => show(r),
            _ => format!("{} ×{times}", show(r)),
        })
        .collect();
    shown.join(", ")
}

/// Each window exactly once, with the batch answer's count and sum.
pub(super) fn window_problems(
    what: &str,
    got: &[(Window, (i64, i64))],
    want: &BTreeMap<Window, (i64, i64)>,
) -> Vec<String> {
    let mut seen: BTreeMap<&Window, Vec<(i64, i64)>> = BTreeMap::new();
    for (w, ns) in got {
        seen.entry(w).or_default().push(*ns);
    }
    let name = |(k, start): &Window| format!("{k} @ {}", show_time(*start));
    let (mut lost, mut repeated, mut wrong, mut unexpected) = (vec![], vec![], vec![], vec![]);
    for (w, ns) in want {
        match seen.get(w).map(Vec::as_slice) {
            None | Some([]) => lost.push(format!("{}: want {}", name(w), show(ns))),
            Some([one]) if one == ns => {}
            Some([one]) => wrong.push(format!("{}: want {}, got {}", name(w), show(ns), show(one))),
            Some(many) => repeated.push(format!(
                "{}: want {} once, got {}",
                name(w),
                show(ns),
                show_all(many)
            )),
        }
    }
    for (w, ns) in &seen {
        if !want.contains_key(*w) {
            unexpected.push(format!("{}: {}", name(w), show_all(ns)));
        }
    }
    let count = |v: &Vec<String>| v.len();
    let mut problems = Vec::new();
    if lost.len() + repeated.len() + wrong.len() + unexpected.len() > 0 {
        problems.push(format!(
            "{what}: {} windows in the batch answer, {} rows: {} lost, {} written more than \
             once, {} with wrong figures, {} unexpected",
            want.len(),
            got.len(),
            count(&lost),
            count(&repeated),
            count(&wrong),
            count(&unexpected)
        ));
    }
    problems.extend(findings(
        format!("  {what}, lost (window: expected):"),
        lost,
    ));
    problems.extend(findings(
        format!("  {what}, written more than once:"),
        repeated,
    ));
    problems.extend(findings(format!("  {what}, wrong figures:"), wrong));
    problems.extend(findings(
        format!("  {what}, not in the batch answer:"),
        unexpected,
    ));
    problems
}

/// Per key an insert, then updates whose count only grows (output written
/// again after a restart would start over or go back), ending at the batch
/// answer.
pub(super) fn upsert_problems(
    what: &str,
    messages: &[Received],
    want: &BTreeMap<String, (i64, i64)>,
) -> Vec<String> {
    let mut bad = Vec::new();
    let mut last: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        let Some(key) = m.key.clone() else {
            bad.push(format!("message {i} has no key"));
            continue;
        };
        if m.payload.is_empty() {
            bad.push(format!("message {i} is a tombstone for {key}"));
            continue;
        }
        let v = m.json();
        let ns = (v["n"].as_i64().expect("n"), v["s"].as_i64().expect("s"));
        let op = v["op"].as_str().unwrap_or("(none)");
        let prev = last.insert(key.clone(), ns);
        match prev {
            None if op != "insert" => bad.push(format!("{key}: first message is an {op}: {v}")),
            Some(_) if op != "update" => bad.push(format!(
                "{key}: a later message (#{i}) is an {op} again: {v}"
            )),
            _ => {}
        }
        if let Some((n, _)) = prev.filter(|(n, _)| ns.0 <= *n) {
            bad.push(format!(
                "{key}: count went from {n} to {} at message #{i}: output repeated",
                ns.0
            ));
        }
    }
    let mut problems = findings(
        format!(
            "{what}: {} messages; per key an insert, then updates with a growing count:",
            messages.len()
        ),
        bad,
    );
    problems.extend(total_problems(
        &format!("{what}, last message per key"),
        &last,
        want,
    ));
    problems
}

pub(super) fn total_problems(
    what: &str,
    got: &BTreeMap<String, (i64, i64)>,
    want: &BTreeMap<String, (i64, i64)>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let text = |v: Option<&(i64, i64)>| v.map(show).unwrap_or_else(|| "nothing".into());
    let lines = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("{k}: want {}, got {}", text(want.get(k)), text(got.get(k))))
        .collect();
    findings(format!("{what} differs from the batch answer:"), lines)
}
