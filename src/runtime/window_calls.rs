//! What windowed aggregates (`window.rs`) and session aggregates
//! (`session.rs`) share: the group keys besides the window, interning them,
//! the aggregate calls' evaluated inputs, and assembling output rows in the
//! GROUP BY order through the post-aggregate select list and HAVING.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{cast, filter_record_batch, take};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::GroupsAccumulator;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::key_table::key_table;
use super::stateless::{post_stages, predicate_mask};
use crate::error::{Result, SluiceError};
use crate::plan::{AggregateCall, AggregatePlan, WindowGrouping};
use crate::stream::StreamBatch;

pub(crate) fn groups_accumulator(call: &AggregateCall) -> Result<Box<dyn GroupsAccumulator>> {
    if call.func.groups_accumulator_supported() {
        return Ok(call.func.create_groups_accumulator()?);
    }
    let func = Arc::clone(&call.func);
    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
        func.create_accumulator()
    })))
}

/// The group expressions that are not the window's, and their schema.
pub(crate) struct Keys {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Keys {
    pub(crate) fn new(agg: &AggregatePlan, w: &WindowGrouping) -> Keys {
        let mut exprs = Vec::new();
        let mut fields = Vec::new();
        for (i, e) in agg.group_exprs.iter().enumerate() {
            if i != w.start && i != w.end {
                exprs.push(Arc::clone(e));
                fields.push(agg.group_schema.field(i).clone());
            }
        }
        Keys {
            exprs,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    pub(crate) fn exprs_len(&self) -> usize {
        self.exprs.len()
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// A key table (`None` without keys).
    pub(crate) fn table(&self) -> Result<Option<Box<dyn GroupValues>>> {
        if self.exprs.is_empty() {
            return Ok(None);
        }
        Ok(Some(key_table(&self.schema, 0)?))
    }

    pub(crate) fn evaluate(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        eval_all(&self.exprs, batch)
    }
}

pub(crate) fn eval_all(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| Ok(e.evaluate(batch)?.into_array(batch.num_rows())?))
        .collect()
}

/// Interns `keys` into `table` (or group 0 when there are no keys).
pub(crate) fn intern(
    table: &mut Option<Box<dyn GroupValues>>,
    keys: &[ArrayRef],
    rows: usize,
    out: &mut Vec<usize>,
) -> Result<usize> {
    out.clear();
    match table {
        Some(t) => {
            t.intern(keys, out)?;
            Ok(t.len())
        }
        None => {
            out.resize(rows, 0);
            Ok(usize::from(rows > 0))
        }
    }
}

/// Assembles an aggregate's output rows (group columns in their GROUP BY
/// order, then aggregate values), runs the post-aggregate select list, and
/// says which rows `HAVING` shows (`None`: all).
pub(crate) fn build_rows(
    agg: &AggregatePlan,
    w: &WindowGrouping,
    starts: ArrayRef,
    ends: ArrayRef,
    mut keys: Vec<ArrayRef>,
    values: Vec<ArrayRef>,
) -> Result<(RecordBatch, Option<BooleanArray>)> {
    keys.reverse();
    let mut columns = Vec::with_capacity(agg.schema.fields().len());
    for i in 0..agg.group_exprs.len() {
        let column = if i == w.start {
            Arc::clone(&starts)
        } else if i == w.end {
            Arc::clone(&ends)
        } else {
            keys.pop()
                .ok_or_else(|| SluiceError::Internal("window key count".into()))?
        };
        let want = agg.schema.field(i).data_type();
        columns.push(if column.data_type() == want {
            column
        } else {
            cast(&column, want)?
        });
    }
    for (i, v) in values.into_iter().enumerate() {
        let want = agg.schema.field(agg.group_exprs.len() + i).data_type();
        columns.push(if v.data_type() == want {
            v
        } else {
            cast(&v, want)?
        });
    }
    let rows = RecordBatch::try_new(agg.schema.clone(), columns)?;
    post_stages(&agg.post, rows)
}

/// The append-only output: the rows HAVING shows.
pub(crate) fn finish_rows(
    agg: &AggregatePlan,
    w: &WindowGrouping,
    starts: ArrayRef,
    ends: ArrayRef,
    keys: Vec<ArrayRef>,
    values: Vec<ArrayRef>,
) -> Result<Option<StreamBatch>> {
    let (rows, visible) = build_rows(agg, w, starts, ends, keys, values)?;
    let rows = match visible {
        Some(v) => filter_record_batch(&rows, &v)?,
        None => rows,
    };
    Ok((rows.num_rows() > 0).then(|| StreamBatch::append(rows)))
}

/// Evaluated inputs of every aggregate call over a batch.
#[derive(Clone)]
pub(crate) struct CallInputs {
    pub(crate) args: Vec<Vec<ArrayRef>>,
    pub(crate) filters: Vec<Option<BooleanArray>>,
}

impl CallInputs {
    pub(crate) fn evaluate(calls: &[AggregateCall], batch: &RecordBatch) -> Result<CallInputs> {
        let mut args = Vec::with_capacity(calls.len());
        let mut filters = Vec::with_capacity(calls.len());
        for c in calls {
            args.push(eval_all(&c.args, batch)?);
            filters.push(
                c.filter
                    .as_ref()
                    .map(|f| predicate_mask(f, batch))
                    .transpose()?,
            );
        }
        Ok(CallInputs { args, filters })
    }

    pub(crate) fn take(&self, idx: &UInt32Array) -> Result<CallInputs> {
        let args = self
            .args
            .iter()
            .map(|a| {
                a.iter()
                    .map(|x| Ok(take(x, idx, None)?))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let filters = self
            .filters
            .iter()
            .map(|f| {
                f.as_ref()
                    .map(|f| Ok(take(f, idx, None)?.as_boolean().clone()))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CallInputs { args, filters })
    }

    pub(crate) fn update(
        &self,
        accs: &mut [Box<dyn GroupsAccumulator>],
        groups: &[usize],
        total: usize,
    ) -> Result<()> {
        for (i, acc) in accs.iter_mut().enumerate() {
            acc.update_batch(&self.args[i], groups, self.filters[i].as_ref(), total)?;
        }
        Ok(())
    }
}

/// A windowed aggregate's settings, as EXPLAIN shows them.
pub(crate) fn window_detail(agg: &AggregatePlan, lateness: i64) -> String {
    let kind = agg.window.map(|w| w.kind.to_string()).unwrap_or_default();
    let mut text = format!(
        "{kind}; {}; emits each window once the watermark passes its end",
        agg.describe()
    );
    if lateness > 0 {
        text.push_str(&format!(
            "; allowed lateness {}: late rows update emitted windows (changelog)",
            crate::plan::show_ms(lateness)
        ));
    }
    text
}
