//! Source watermarks. Each partition of a source (a Kafka partition, a file,
//! a socket connection) tracks the highest value of the source's
//! `WATERMARK FOR col AS expr` over the rows it has sent; the source's
//! watermark is the minimum over its active partitions. A partition that has
//! sent nothing for `idle_timeout` stops holding it back; a registered
//! partition that has sent nothing yet holds it back until then. The
//! watermark never goes backwards.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;
use serde::Deserialize;

use crate::error::{Result, SluiceError};

/// Default for the `idle_timeout` source option.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct WatermarkSpec {
    /// The event-time column the watermark is for.
    pub column: String,
    /// `WATERMARK FOR column AS <expr>`, evaluated on each row.
    pub expr: Arc<dyn PhysicalExpr>,
    /// Zero: partitions never count as idle.
    pub idle_timeout: Duration,
}

impl fmt::Debug for WatermarkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WATERMARK FOR {} AS {} (idle after {:?})",
            self.column, self.expr, self.idle_timeout
        )
    }
}

struct Partition {
    watermark: Option<i64>,
    last_active: Instant,
}

/// Partitions by name, and the watermark last sent.
type TrackerState = (HashMap<String, Partition>, Option<i64>);

/// What [`WatermarkTracker::checkpoint`] keeps.
#[derive(Deserialize)]
struct TrackerCheckpoint {
    partitions: Vec<PartitionCheckpoint>,
    /// The watermark last sent.
    watermark: Option<i64>,
}

#[derive(Deserialize)]
struct PartitionCheckpoint {
    name: String,
    /// Its highest value so far.
    watermark: Option<i64>,
    /// How long it had sent nothing (an idle partition stays idle).
    silent_ms: u64,
}

/// Whether `expr` is `column`, or `column + constant` / `column -
/// constant`: never lower for a higher `column` (adding an interval of
/// months or days to a later time gives a time no earlier).
fn non_decreasing_in(expr: &Arc<dyn PhysicalExpr>, column: &str) -> bool {
    let is_column = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>()
            .is_some_and(|c| c.name() == column)
    };
    if is_column(expr) {
        return true;
    }
    expr.downcast_ref::<BinaryExpr>().is_some_and(|b| {
        matches!(b.op(), Operator::Plus | Operator::Minus)
            && is_column(b.left())
            && b.right().is::<Literal>()
    })
}

pub struct WatermarkTracker {
    spec: WatermarkSpec,
    /// The expression never decreases as the column grows.
    monotone: bool,
    state: Mutex<TrackerState>,
}

impl WatermarkTracker {
    pub fn new(spec: WatermarkSpec) -> Self {
        WatermarkTracker {
            monotone: non_decreasing_in(&spec.expr, &spec.column),
            spec,
            state: Mutex::new((HashMap::new(), None)),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, TrackerState>> {
        self.state
            .lock()
            .map_err(|_| SluiceError::Internal("watermark state poisoned".into()))
    }

    /// A partition that exists but may not have sent anything yet.
    pub fn register(&self, partition: &str) -> Result<()> {
        self.lock()?
            .0
            .entry(partition.to_string())
            .or_insert(Partition {
                watermark: None,
                last_active: Instant::now(),
            });
        Ok(())
    }

    /// A partition that has ended: it no longer holds the watermark back.
    pub fn close(&self, partition: &str) -> Result<Option<i64>> {
        let mut st = self.lock()?;
        st.0.remove(partition);
        Ok(self.advance(&mut st))
    }

    /// Accounts for rows `partition` sent; returns the source's new
    /// watermark when it advanced.
    pub fn observe(&self, partition: &str, batch: &RecordBatch) -> Result<Option<i64>> {
        let highest = self.highest(batch)?;
        let mut st = self.lock()?;
        // Look up before inserting: no key allocation per batch.
        if !st.0.contains_key(partition) {
            st.0.insert(
                partition.to_string(),
                Partition {
                    watermark: None,
                    last_active: Instant::now(),
                },
            );
        }
        let Some(p) = st.0.get_mut(partition) else {
            return Err(SluiceError::Internal("watermark partition vanished".into()));
        };
        p.last_active = Instant::now();
        if let Some(h) = highest {
            p.watermark = Some(p.watermark.map_or(h, |w| w.max(h)));
        }
        Ok(self.advance(&mut st))
    }

    /// The highest value of the watermark expression over `batch`'s rows.
    /// For `column ± constant` (or the column itself), which never
    /// decreases as the column grows, that is its value on the row with the
    /// highest column value: one row is evaluated, not the batch.
    fn highest(&self, batch: &RecordBatch) -> Result<Option<i64>> {
        let on_max_row = match (self.monotone, batch.schema().index_of(&self.spec.column)) {
            (true, Ok(i)) => match cast(batch.column(i), &DataType::Int64) {
                Ok(times) => {
                    let times = times.as_primitive::<Int64Type>();
                    let mut best: Option<(usize, i64)> = None;
                    for (row, t) in times.iter().enumerate() {
                        if let Some(t) = t {
                            if best.is_none_or(|(_, b)| t > b) {
                                best = Some((row, t));
                            }
                        }
                    }
                    match best {
                        Some((row, _)) => Some(batch.slice(row, 1)),
                        None => return Ok(None),
                    }
                }
                Err(_) => None,
            },
            _ => None,
        };
        let rows = on_max_row.as_ref().unwrap_or(batch);
        let values = self.spec.expr.evaluate(rows)?.into_array(rows.num_rows())?;
        let values = cast(&values, &DataType::Int64)?;
        Ok(max(values.as_primitive::<Int64Type>()))
    }

    /// The state a checkpoint keeps: each partition's highest value and how
    /// long it has been silent, and the watermark last sent.
    pub fn checkpoint(&self) -> serde_json::Value {
        // A poisoned lock still guards whole values: read them.
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut partitions: Vec<(&String, &Partition)> = st.0.iter().collect();
        partitions.sort_by_key(|(name, _)| *name);
        let partitions: Vec<serde_json::Value> = partitions
            .into_iter()
            .map(|(name, p)| {
                serde_json::json!({
                    "name": name,
                    "watermark": p.watermark,
                    "silent_ms": p.last_active.elapsed().as_millis() as u64,
                })
            })
            .collect();
        serde_json::json!({"partitions": partitions, "watermark": st.1})
    }

    /// Continues from a checkpoint: the watermark never goes back behind
    /// the one sent before it, and the restored partitions hold it back as
    /// they did (each keeps its highest value when it registers again, and
    /// a partition that was idle stays idle until it sends). Partitions
    /// registered already stay too.
    pub fn restore(&self, state: &serde_json::Value) -> Result<()> {
        let checkpoint = TrackerCheckpoint::deserialize(state).map_err(|e| {
            SluiceError::Connector(format!("checkpoint state is damaged: watermarks: {e}"))
        })?;
        let now = Instant::now();
        let mut st = self.lock()?;
        for p in checkpoint.partitions {
            let last_active = now
                .checked_sub(Duration::from_millis(p.silent_ms))
                .unwrap_or(now);
            let entry = st.0.entry(p.name).or_insert(Partition {
                watermark: None,
                last_active,
            });
            entry.watermark = entry.watermark.max(p.watermark);
            entry.last_active = entry.last_active.max(last_active);
        }
        st.1 = st.1.max(checkpoint.watermark);
        Ok(())
    }

    fn advance(&self, st: &mut TrackerState) -> Option<i64> {
        let idle = self.spec.idle_timeout;
        let mut lowest: Option<i64> = None;
        for p in st.0.values() {
            if !idle.is_zero() && p.last_active.elapsed() >= idle {
                continue;
            }
            // An active partition with no rows yet holds everything back.
            let w = p.watermark?;
            lowest = Some(lowest.map_or(w, |l| l.min(w)));
        }
        let w = lowest?;
        if st.1.is_some_and(|cur| w <= cur) {
            return None;
        }
        st.1 = Some(w);
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::physical_expr::expressions::Column;

    fn tracker(idle: Duration) -> WatermarkTracker {
        WatermarkTracker::new(WatermarkSpec {
            column: "ts".into(),
            expr: Arc::new(Column::new("ts", 0)),
            idle_timeout: idle,
        })
    }

    fn batch(ts: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        )]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(
                ts.iter()
                    .map(|t| Some(*t))
                    .collect::<TimestampMillisecondArray>(),
            )],
        )
        .unwrap()
    }

    /// `ts - INTERVAL '4 seconds'` is evaluated on the batch's latest row
    /// only, with the same result as over every row; an expression that is
    /// not `column ± constant` is evaluated over every row.
    #[test]
    fn a_column_minus_a_constant_is_evaluated_on_the_latest_row() {
        use datafusion::common::ScalarValue;
        let ts: Arc<dyn PhysicalExpr> = Arc::new(Column::new("ts", 0));
        let four_seconds = Arc::new(Literal::new(ScalarValue::new_interval_mdn(
            0,
            0,
            4_000_000_000,
        )));
        let minus: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::clone(&ts),
            Operator::Minus,
            four_seconds,
        ));
        assert!(non_decreasing_in(&minus, "ts"));
        assert!(!non_decreasing_in(&minus, "other"));
        let negated: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Literal::new(ScalarValue::TimestampMillisecond(
                Some(0),
                None,
            ))),
            Operator::Minus,
            Arc::clone(&ts),
        ));
        assert!(!non_decreasing_in(&negated, "ts"));
        let t = WatermarkTracker::new(WatermarkSpec {
            column: "ts".into(),
            expr: minus,
            idle_timeout: Duration::ZERO,
        });
        assert!(t.monotone);
        let b = batch(&[10_000, 30_000, 20_000]);
        assert_eq!(t.highest(&b).unwrap(), Some(26_000));
        let every_row = t.spec.expr.evaluate(&b).unwrap().into_array(3).unwrap();
        let every_row = cast(&every_row, &DataType::Int64).unwrap();
        assert_eq!(max(every_row.as_primitive::<Int64Type>()), Some(26_000));
    }

    #[test]
    fn minimum_over_partitions_never_backwards() {
        let t = tracker(Duration::ZERO);
        assert_eq!(t.observe("a", &batch(&[10, 30, 20])).unwrap(), Some(30));
        // b is behind a: the watermark cannot move back, so nothing is sent.
        assert_eq!(t.observe("b", &batch(&[5])).unwrap(), None);
        assert_eq!(
            t.observe("a", &batch(&[50])).unwrap(),
            None,
            "held back by b"
        );
        assert_eq!(t.observe("b", &batch(&[40])).unwrap(), Some(40));
        assert_eq!(
            t.close("b").unwrap(),
            Some(50),
            "a closed partition holds nothing back"
        );
    }

    /// A fresh tracker restored from `t`'s checkpoint (through its text).
    fn restored(t: &WatermarkTracker, idle: Duration) -> WatermarkTracker {
        let text = t.checkpoint().to_string();
        let fresh = tracker(idle);
        fresh
            .restore(&serde_json::from_str(&text).unwrap())
            .unwrap();
        fresh
    }

    #[test]
    fn restored_continues_exactly() {
        let t = tracker(Duration::ZERO);
        t.observe("a", &batch(&[30])).unwrap();
        t.observe("b", &batch(&[40])).unwrap();
        t.register("c").unwrap();
        let r = restored(&t, Duration::ZERO);
        for p in [&t, &r] {
            assert_eq!(p.observe("c", &batch(&[35])).unwrap(), None, "30 was sent");
            assert_eq!(p.observe("a", &batch(&[45])).unwrap(), Some(35));
            assert_eq!(p.close("c").unwrap(), Some(40));
        }
    }

    #[test]
    fn restored_partitions_hold_back_before_they_register() {
        let t = tracker(Duration::ZERO);
        t.register("b").unwrap();
        assert_eq!(t.observe("a", &batch(&[50])).unwrap(), None);
        assert_eq!(t.observe("b", &batch(&[20])).unwrap(), Some(20));
        let r = restored(&t, Duration::ZERO);
        // a has not spoken since the restore: its maximum still counts.
        assert_eq!(r.observe("b", &batch(&[60])).unwrap(), Some(50));
        // Registering again keeps the restored maximum.
        r.register("a").unwrap();
        assert_eq!(r.observe("b", &batch(&[70])).unwrap(), None);
        assert_eq!(r.observe("a", &batch(&[55])).unwrap(), Some(55));
    }

    #[test]
    fn restored_never_goes_back() {
        let t = tracker(Duration::ZERO);
        assert_eq!(t.observe("a", &batch(&[100])).unwrap(), Some(100));
        t.close("a").unwrap();
        let r = restored(&t, Duration::ZERO);
        assert_eq!(r.observe("new", &batch(&[60])).unwrap(), None, "behind 100");
        assert_eq!(r.observe("new", &batch(&[120])).unwrap(), Some(120));
    }

    #[test]
    fn an_idle_partition_stays_idle_when_restored() {
        let t = tracker(Duration::from_millis(200));
        t.register("quiet").unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let r = restored(&t, Duration::from_millis(200));
        assert_eq!(r.observe("busy", &batch(&[100])).unwrap(), Some(100));
    }

    #[test]
    fn damaged_state_is_an_error() {
        let err = tracker(Duration::ZERO)
            .restore(&serde_json::json!({"partitions": 3}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn a_registered_silent_partition_holds_back_until_idle() {
        let t = tracker(Duration::from_millis(200));
        t.register("quiet").unwrap();
        assert_eq!(
            t.observe("busy", &batch(&[100])).unwrap(),
            None,
            "quiet has sent nothing yet"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            t.observe("busy", &batch(&[120])).unwrap(),
            Some(120),
            "quiet went idle"
        );
        // Once quiet speaks again it counts, but the watermark never goes back.
        assert_eq!(t.observe("quiet", &batch(&[90])).unwrap(), None);
        assert_eq!(
            t.observe("quiet", &batch(&[200])).unwrap(),
            None,
            "busy, at 120, holds it"
        );
    }
}
