//! Filter and projection: DataFusion physical expressions over whole batches.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use serde::{Deserialize, Serialize};

use super::operator::{advance_watermark, Operator};
use super::state::{to_meta, StateSnapshot};
use super::window_assign::{assign, Dropped};
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::Stage;
use crate::stream::StreamBatch;

/// Evaluates a predicate; NULL counts as false.
pub fn predicate_mask(
    predicate: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> Result<BooleanArray> {
    let value = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask = value
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| {
            SluiceError::Plan(format!(
                "WHERE condition is {}, not boolean",
                value.data_type()
            ))
        })?;
    Ok(match mask.nulls() {
        Some(_) => datafusion::arrow::compute::prep_null_mask_filter(mask),
        None => mask.clone(),
    })
}

pub fn project(
    exprs: &[Arc<dyn PhysicalExpr>],
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let columns = exprs
        .iter()
        .map(|e| Ok(e.evaluate(batch)?.into_array(batch.num_rows())?))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// Runs a chain of stateless stages on a batch.
/// Runs an aggregate's post-stages (its select list and HAVING) over its
/// rows: projections apply, and HAVING says which rows are shown (`None`:
/// all) instead of dropping them, so changelogs can tell a row that became
/// hidden.
pub fn post_stages(
    stages: &[Stage],
    mut rows: RecordBatch,
) -> Result<(RecordBatch, Option<BooleanArray>)> {
    let mut visible: Option<BooleanArray> = None;
    for stage in stages {
        match stage {
            Stage::Filter(p) => {
                let mask = predicate_mask(p, &rows)?;
                visible = Some(match visible {
                    None => mask,
                    Some(v) => datafusion::arrow::compute::and(&v, &mask)?,
                });
            }
            Stage::Project { exprs, schema } => rows = project(exprs, schema, &rows)?,
            Stage::Window { .. } => {
                return Err(SluiceError::Internal("window after aggregate".into()))
            }
        }
    }
    Ok((rows, visible))
}

/// Finds the rows `check` fails on, one row at a time, after it failed on the
/// whole batch (a division by zero, a cast of 'abc' to a number…). Returns
/// the batch without them; they are counted as errors and logged, so one bad
/// value does not stop the pipeline.
pub fn drop_failing_rows(
    batch: &StreamBatch,
    metrics: &PipelineMetrics,
    check: impl Fn(&StreamBatch) -> Result<()>,
) -> Result<StreamBatch> {
    let mut keep = Vec::with_capacity(batch.num_rows());
    let mut failed = 0u64;
    for row in 0..batch.num_rows() {
        let one = StreamBatch {
            data: batch.data.slice(row, 1),
            ops: batch.ops.as_ref().map(|o| o.slice(row, 1)),
            born: batch.born,
            port: batch.port,
        };
        match check(&one) {
            Ok(()) => keep.push(true),
            Err(e) => {
                keep.push(false);
                failed += 1;
                if failed <= 10 {
                    tracing::warn!(error = %e, "row dropped: an expression failed on it");
                }
            }
        }
    }
    if failed > 10 {
        tracing::warn!(
            rows = failed,
            "rows dropped in one batch: expressions failed on them"
        );
    }
    PipelineMetrics::add(&metrics.errors, failed);
    batch.filter(&BooleanArray::from(keep))
}

/// Checkpoint metadata of a [`StatelessOperator`] that assigns windows.
#[derive(Serialize, Deserialize)]
struct WatermarkMeta {
    watermark: Option<i64>,
}

/// Runs the plan's stages before its aggregate (if any).
pub struct StatelessOperator {
    stages: Arc<Vec<Stage>>,
    /// How far behind the watermark rows still count (ms).
    allowed_lateness: i64,
    metrics: Arc<PipelineMetrics>,
    /// The latest watermark: window assignment drops rows behind it.
    watermark: Option<i64>,
}

impl StatelessOperator {
    pub fn new(
        stages: Arc<Vec<Stage>>,
        allowed_lateness: i64,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        StatelessOperator {
            stages,
            allowed_lateness,
            metrics,
            watermark: None,
        }
    }

    /// Runs `stages` on a batch; returns what window assignment dropped.
    pub fn apply(
        stages: &[Stage],
        mut batch: StreamBatch,
        watermark: Option<i64>,
    ) -> Result<(StreamBatch, Dropped)> {
        let mut dropped = Dropped::default();
        for stage in stages {
            if batch.num_rows() == 0 {
                break;
            }
            batch = match stage {
                Stage::Window {
                    kind,
                    time_column,
                    keep,
                    schema,
                    ..
                } => {
                    let (data, d) = assign(
                        &batch.data,
                        *kind,
                        *time_column,
                        schema,
                        watermark,
                        keep.as_deref(),
                    )?;
                    dropped = d;
                    StreamBatch::append(data)
                }
                Stage::Filter(p) => {
                    let mask = predicate_mask(p, &batch.data)?;
                    if mask.true_count() == mask.len() {
                        batch
                    } else {
                        batch.filter(&mask)?
                    }
                }
                Stage::Project { exprs, schema } => StreamBatch {
                    data: project(exprs, schema, &batch.data)?,
                    ops: batch.ops,
                    born: batch.born,
                    port: batch.port,
                },
            };
        }
        Ok((batch, dropped))
    }
}

impl Operator for StatelessOperator {
    fn name(&self) -> &'static str {
        "filter/project"
    }

    fn detail(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<StreamBatch>) -> Result<()> {
        advance_watermark(&mut self.watermark, watermark);
        Ok(())
    }

    /// Only window assignment reads the watermark (to drop late rows): with
    /// it, the watermark is this operator's whole state; without, it has none.
    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let assigns_windows = self
            .stages
            .iter()
            .any(|s| matches!(s, Stage::Window { .. }));
        if !assigns_windows {
            return Ok(None);
        }
        let meta = WatermarkMeta {
            watermark: self.watermark,
        };
        Ok(Some(StateSnapshot::new(to_meta(&meta)?, Vec::new())))
    }

    /// Its state is the watermark, the same in every instance (they all
    /// see every watermark): each new instance starts from it.
    fn rescale(
        &self,
        states: Vec<StateSnapshot>,
        router: &super::rescale::Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        let watermarks = states
            .iter()
            .map(|s| Ok(s.meta_as::<WatermarkMeta>()?.watermark))
            .collect::<Result<Vec<_>>>()?;
        let Some(watermark) = super::rescale::agreed(watermarks) else {
            return Ok(None);
        };
        (0..router.parts())
            .map(|_| {
                Ok(StateSnapshot::new(
                    to_meta(&WatermarkMeta { watermark })?,
                    Vec::new(),
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.watermark = state.meta_as::<WatermarkMeta>()?.watermark;
        Ok(())
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        let stages = self.stages.as_slice();
        // Rows within the allowed lateness still count.
        let wm = self.watermark.map(|w| w - self.allowed_lateness);
        let (batch, dropped) = match Self::apply(stages, batch.clone(), wm) {
            Ok(b) => b,
            Err(_) => {
                let good = drop_failing_rows(&batch, &self.metrics, |b| {
                    Self::apply(stages, b.clone(), wm).map(|_| ())
                })?;
                Self::apply(stages, good, wm)?
            }
        };
        PipelineMetrics::add(&self.metrics.late, dropped.late);
        if dropped.no_time > 0 {
            PipelineMetrics::add(&self.metrics.errors, dropped.no_time);
            tracing::warn!(
                rows = dropped.no_time,
                "rows dropped: no event time for their window"
            );
        }
        if batch.num_rows() > 0 {
            out.push(batch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::pipeline::build_operators;
    use crate::runtime::restore_check::{check_restores, plan, script, Row, BASE};

    fn snapshots(sql: &str) -> Vec<bool> {
        let mut ops = build_operators(&plan(sql, 0), &Default::default()).expect("operators");
        ops.operators_mut()
            .map(|op| op.snapshot().expect("snapshot").is_some())
            .collect()
    }

    #[test]
    fn keeps_state_only_when_it_assigns_windows() {
        assert_eq!(
            snapshots("SELECT k, v * 2 AS w FROM t WHERE v > 0"),
            [false]
        );
        assert_eq!(
            snapshots("SELECT k, window_start FROM TUMBLE(t, ts, INTERVAL '1 second')"),
            [true]
        );
    }

    /// Window assignment drops rows behind the watermark: a restored one
    /// must drop the same.
    #[test]
    fn restores_the_watermark_that_drops_late_rows() {
        let row = |i: i64, ts: i64| Row {
            k: i,
            tag: None,
            v: Some(i),
            ts: BASE + ts,
        };
        let rows = [
            row(1, 5_000),
            row(2, 1_000),
            row(3, 2_500),
            row(4, 9_000),
            row(5, 6_000),
        ];
        let steps = script(&rows, &[1, 2, 4]);
        let sql = "SELECT k, window_start FROM TUMBLE(t, ts, INTERVAL '1 second')";
        check_restores(&plan(sql, 0), &steps, &[3]);
    }
}
