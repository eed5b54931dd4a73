//! Non-windowed `GROUP BY` over an unbounded stream, emitted as a changelog.
//!
//! Groups are interned by DataFusion's vectorized `GroupValues`. The
//! aggregate calls keep their state in one of two ways:
//!
//! * **Vectorized** (append-only input, and every call one whose state
//!   goes back in exactly: `count`, `sum`, `min`, `max`, `avg`, the bool and
//!   bit aggregates, without DISTINCT or ORDER BY): one DataFusion
//!   `GroupsAccumulator` per call over every group, updated for a whole
//!   batch at once. The groups a batch changed become *pending*; a flush
//!   evaluates them all at once (the state is drained with `state` and
//!   merged straight back, since `evaluate` drains, which costs time in the
//!   number of groups held). So the operator flushes once the pending rows
//!   are at least as many as its groups (a small table: every batch), at
//!   the end of input, and when the pipeline asks it to: when
//!   [`FLUSH_INTERVAL`] has passed since it started holding changes back,
//!   or the input goes quiet for that long.
//! * **Per group** (anything else: DISTINCT, ORDER BY, user-defined
//!   aggregates, an updating input whose rows are taken back): one
//!   DataFusion `Accumulator` per group and call. Per batch the rows are
//!   sorted by group with one counting sort and one `take` per argument,
//!   and each touched group's accumulators get a zero-copy slice; every
//!   batch's changes are emitted at once.
//!
//! Either way, each changed group's row is evaluated, passed through the
//! post-aggregate stages (select list, HAVING) and compared with what was
//! emitted last for that group (kept in Arrow's row format): a new visible
//! row is an `insert`, a changed one an `update`, and a row that HAVING now
//! hides a `delete` of the last emitted row. Unchanged rows emit nothing.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array, UInt8Array};
use datafusion::arrow::compute::{cast, interleave, take, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::key_table::key_table;
use super::operator::Operator;
use super::state::{keep_groups_states, StateSnapshot};
use super::stateless::{drop_failing_rows, post_stages, predicate_mask};
use super::window_calls::groups_accumulator;
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::AggregatePlan;
use crate::stream::{Op, StreamBatch};

mod checkpoint;

const NO_SLOT: u32 = u32::MAX;

/// How long an operator may hold changes back before the pipeline flushes
/// it (see [`Operator::holds_back`]).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Aggregate functions whose intermediate state, merged into a fresh
/// accumulator, gives back exactly the same state (no floating-point
/// re-derivation, as variance's merge formula has): the vectorized path
/// round-trips its state on every flush.
const EXACT_STATE: &[&str] = &[
    "count", "sum", "min", "max", "avg", "bool_and", "bool_or", "bit_and", "bit_or", "bit_xor",
];

/// Where the aggregate calls keep their state.
enum Calls {
    /// One `Accumulator` per group and call: `[group][call]`.
    PerGroup(Vec<Vec<Box<dyn Accumulator>>>),
    /// One `GroupsAccumulator` per call, over every group.
    Vectorized(Vec<Box<dyn GroupsAccumulator>>),
}

/// The groups the vectorized path changed since it last emitted, in the
/// order they were first changed, and where to find each one's key.
#[derive(Default)]
struct Pending {
    groups: Vec<usize>,
    /// `(batch, row)` in `keys` of a row of each pending group.
    key_at: Vec<(usize, usize)>,
    /// The group key columns of the batches since the last flush.
    keys: Vec<Vec<ArrayRef>>,
    rows: usize,
}

/// A batch's group keys, aggregate arguments and FILTER masks, evaluated.
struct Inputs {
    group_cols: Vec<ArrayRef>,
    /// `[call][argument]`
    args: Vec<Vec<ArrayRef>>,
    /// `[call]`
    filters: Vec<Option<BooleanArray>>,
}

pub struct ChangelogAggregate {
    agg: Arc<AggregatePlan>,
    output_schema: SchemaRef,
    /// `None` for a global aggregate (no GROUP BY): every row is group 0.
    groups: Option<Box<dyn GroupValues>>,
    calls: Calls,
    /// The row last emitted per group, `None` while the group is not shown.
    last: Vec<Option<OwnedRow>>,
    /// Input rows per group (an updating input can take them away again).
    counts: Vec<i64>,
    /// The input is an updating view: rows may be taken back.
    retracting: bool,
    /// An update goes out as the old row (`UpdateBefore`) then the new,
    /// for a reader that matches whole rows (a join), not keys.
    old_rows: bool,
    converter: RowConverter,
    metrics: Arc<PipelineMetrics>,
    /// A group's position among this batch's groups (per group), or among
    /// the pending groups (vectorized).
    slot: Vec<u32>,
    group_indices: Vec<usize>,
    pending: Pending,
    /// A global aggregate (no GROUP BY) shows its one row before any input,
    /// as in PostgreSQL (`count(*)` 0, `sum` NULL): due at the next flush
    /// while it has no group.
    first_row_due: bool,
    /// That row as shown, until its group exists (and updates it).
    first_row: Option<OwnedRow>,
}

/// Aggregate call `call`'s accumulator for one group; `retracting`: one
/// that can take rows back.
fn new_accumulator(
    agg: &AggregatePlan,
    retracting: bool,
    call: usize,
) -> Result<Box<dyn Accumulator>> {
    let func = &agg.calls[call].func;
    Ok(if retracting {
        func.create_sliding_accumulator()?
    } else {
        func.create_accumulator()?
    })
}

/// One group's accumulators, one per call.
fn new_accumulators(agg: &AggregatePlan, retracting: bool) -> Result<Vec<Box<dyn Accumulator>>> {
    (0..agg.calls.len())
        .map(|c| new_accumulator(agg, retracting, c))
        .collect()
}

/// Whether every call can run vectorized over an input that only adds rows.
fn vectorizable(agg: &AggregatePlan, retracting: bool) -> bool {
    !retracting
        && agg.calls.iter().all(|c| {
            let f = &c.func;
            !f.is_distinct()
                && f.order_bys().is_empty()
                && EXACT_STATE.contains(&f.fun().name())
                && f.groups_accumulator_supported()
        })
}

impl ChangelogAggregate {
    /// `output_schema`: its rows after the aggregate's own stages (HAVING,
    /// the select list); `retracting`: its input is updating.
    pub fn new(
        agg: Arc<AggregatePlan>,
        output_schema: SchemaRef,
        retracting: bool,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<Self> {
        let groups = if agg.group_exprs.is_empty() {
            None
        } else {
            Some(key_table(&agg.group_schema, 0)?)
        };
        let converter = RowConverter::new(
            output_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let calls = if vectorizable(&agg, retracting) {
            Calls::Vectorized(
                agg.calls
                    .iter()
                    .map(groups_accumulator)
                    .collect::<Result<_>>()?,
            )
        } else {
            Calls::PerGroup(Vec::new())
        };
        let first_row_due = groups.is_none();
        Ok(ChangelogAggregate {
            agg,
            output_schema,
            groups,
            calls,
            last: Vec::new(),
            counts: Vec::new(),
            retracting,
            old_rows: false,
            converter,
            metrics,
            slot: Vec::new(),
            group_indices: Vec::new(),
            pending: Pending::default(),
            first_row_due,
            first_row: None,
        })
    }

    /// Sends each update as the old row, then the new.
    pub fn with_old_rows(mut self, old_rows: bool) -> Self {
        self.old_rows = old_rows;
        self
    }

    /// A global aggregate with no group yet: its row over no input,
    /// evaluated by fresh accumulators, shown on the next flush.
    fn flush_first_row(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        if !self.first_row_due || !self.counts.is_empty() {
            return Ok(());
        }
        self.first_row_due = false;
        let agg = Arc::clone(&self.agg);
        let columns = agg
            .calls
            .iter()
            .zip(agg.schema.fields())
            .map(|(call, field)| {
                let value = call.func.create_accumulator()?.evaluate()?.to_array()?;
                Ok(if value.data_type() == field.data_type() {
                    value
                } else {
                    cast(&value, field.data_type())?
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = RecordBatch::try_new(agg.schema.clone(), columns)?;
        let (rows, visible) = post_stages(&agg.post, rows)?;
        if visible.as_ref().is_some_and(|v| !v.value(0)) {
            return Ok(());
        }
        let shown = self.converter.convert_columns(rows.columns())?;
        self.first_row = Some(shown.row(0).owned());
        out.push(StreamBatch::changelog(
            rows,
            UInt8Array::from(vec![Op::Insert as u8]),
        ));
        Ok(())
    }

    /// Number of groups held.
    pub fn group_count(&self) -> usize {
        self.counts.len()
    }

    /// Evaluates the group, argument and FILTER expressions on `batch`.
    fn inputs(&self, batch: &RecordBatch) -> Result<Inputs> {
        let n = batch.num_rows();
        let eval = |e: &Arc<dyn datafusion::physical_expr::PhysicalExpr>| -> Result<ArrayRef> {
            Ok(e.evaluate(batch)?.into_array(n)?)
        };
        let agg = &self.agg;
        Ok(Inputs {
            group_cols: agg.group_exprs.iter().map(eval).collect::<Result<_>>()?,
            args: agg
                .calls
                .iter()
                .map(|c| c.args.iter().map(eval).collect())
                .collect::<Result<_>>()?,
            filters: agg
                .calls
                .iter()
                .map(|c| {
                    c.filter
                        .as_ref()
                        .map(|f| predicate_mask(f, batch))
                        .transpose()
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Interns the batch's groups into `group_indices`, making room for
    /// new ones; the number of groups.
    fn intern(&mut self, group_cols: &[ArrayRef], rows: usize) -> Result<usize> {
        self.group_indices.clear();
        let group_count = match self.groups.as_mut() {
            Some(groups) => {
                groups.intern(group_cols, &mut self.group_indices)?;
                groups.len()
            }
            None => {
                self.group_indices.resize(rows, 0);
                1
            }
        };
        while self.counts.len() < group_count {
            if let Calls::PerGroup(per_group) = &mut self.calls {
                per_group.push(new_accumulators(&self.agg, self.retracting)?);
            }
            // A global aggregate's group updates the row shown without it.
            self.last.push(self.first_row.take());
            self.counts.push(0);
            self.slot.push(NO_SLOT);
        }
        Ok(group_count)
    }

    /// Vectorized: adds the batch's rows to their groups, which become
    /// pending.
    fn update_vectorized(&mut self, inputs: Inputs, rows: usize) -> Result<()> {
        let group_count = self.intern(&inputs.group_cols, rows)?;
        let Calls::Vectorized(accs) = &mut self.calls else {
            return Err(SluiceError::Internal("not a vectorized aggregate".into()));
        };
        for ((acc, args), filter) in accs.iter_mut().zip(&inputs.args).zip(&inputs.filters) {
            acc.update_batch(args, &self.group_indices, filter.as_ref(), group_count)?;
        }
        let batch = self.pending.keys.len();
        for (row, &g) in self.group_indices.iter().enumerate() {
            self.counts[g] += 1;
            if self.slot[g] == NO_SLOT {
                self.slot[g] = self.pending.groups.len() as u32;
                self.pending.groups.push(g);
                self.pending.key_at.push((batch, row));
            }
        }
        self.pending.keys.push(inputs.group_cols);
        self.pending.rows += rows;
        Ok(())
    }

    /// Vectorized: emits the changes of the pending groups.
    fn flush_pending(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        if self.pending.groups.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        for &g in &pending.groups {
            self.slot[g] = NO_SLOT;
        }
        let agg = Arc::clone(&self.agg);
        let mut columns = (0..agg.group_exprs.len())
            .map(|k| {
                let arrays: Vec<&dyn Array> = pending.keys.iter().map(|b| b[k].as_ref()).collect();
                Ok(interleave(&arrays, &pending.key_at)?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let Calls::Vectorized(accs) = &mut self.calls else {
            return Err(SluiceError::Internal("not a vectorized aggregate".into()));
        };
        let n = self.counts.len();
        let touched = UInt32Array::from_iter_values(pending.groups.iter().map(|&g| g as u32));
        let local: Vec<usize> = (0..pending.groups.len()).collect();
        let states = keep_groups_states(accs, n)?;
        for (ci, (state, call)) in states.iter().zip(&agg.calls).enumerate() {
            let of_touched = state
                .iter()
                .map(|s| Ok(take(s, &touched, None)?))
                .collect::<Result<Vec<_>>>()?;
            let mut copy = groups_accumulator(call)?;
            copy.merge_batch(&of_touched, &local, local.len())?;
            let values = copy.evaluate(EmitTo::All)?;
            let want = agg.schema.field(agg.group_exprs.len() + ci).data_type();
            columns.push(if values.data_type() == want {
                values
            } else {
                cast(&values, want)?
            });
        }
        let rows = RecordBatch::try_new(agg.schema.clone(), columns)?;
        let (rows, visible) = post_stages(&agg.post, rows)?;
        self.diff(&rows, visible.as_ref(), &pending.groups, out)
    }

    /// Per group: adds the batch's rows to their groups; rows where
    /// `retract` is true are taken away instead.
    fn update_per_group(
        &mut self,
        inputs: &Inputs,
        rows: usize,
        retract: Option<&BooleanArray>,
        touched: &mut Vec<usize>,
        first_row: &mut Vec<u32>,
    ) -> Result<()> {
        self.intern(&inputs.group_cols, rows)?;
        for (row, &g) in self.group_indices.iter().enumerate() {
            if self.slot[g] == NO_SLOT {
                self.slot[g] = touched.len() as u32;
                touched.push(g);
                first_row.push(row as u32);
            }
            self.counts[g] += if retract.is_some_and(|r| r.value(row)) {
                -1
            } else {
                1
            };
        }
        let unfiltered = self.sort_by_group(touched.len(), None, retract);
        for (ci, args) in inputs.args.iter().enumerate() {
            let filtered;
            let (perm, offsets) = match &inputs.filters[ci] {
                None => (&unfiltered.0, &unfiltered.1),
                Some(mask) => {
                    filtered = self.sort_by_group(touched.len(), Some(mask), retract);
                    (&filtered.0, &filtered.1)
                }
            };
            let args = args
                .iter()
                .map(|a| Ok(take(a, perm, None)?))
                .collect::<Result<Vec<_>>>()?;
            let Calls::PerGroup(per_group) = &mut self.calls else {
                return Err(SluiceError::Internal("not a per-group aggregate".into()));
            };
            for (s, &g) in touched.iter().enumerate() {
                for (bucket, take_back) in [(2 * s, false), (2 * s + 1, true)] {
                    let (start, end) = (offsets[bucket] as usize, offsets[bucket + 1] as usize);
                    if start == end {
                        continue;
                    }
                    let slices: Vec<ArrayRef> =
                        args.iter().map(|a| a.slice(start, end - start)).collect();
                    let acc = &mut per_group[g][ci];
                    if take_back {
                        acc.retract_batch(&slices)?;
                    } else {
                        acc.update_batch(&slices)?;
                    }
                }
            }
        }
        // A group whose rows have all been taken back starts afresh.
        if let Calls::PerGroup(per_group) = &mut self.calls {
            for &g in touched.iter() {
                if self.counts[g] <= 0 {
                    self.counts[g] = 0;
                    per_group[g] = new_accumulators(&self.agg, self.retracting)?;
                }
            }
        }
        Ok(())
    }

    /// Row indices ordered by their group's slot, added rows before taken
    /// back ones, and where each (slot, added / taken back) bucket starts:
    /// slot `s` has buckets `2s` and `2s + 1`.
    fn sort_by_group(
        &self,
        slots: usize,
        mask: Option<&BooleanArray>,
        retract: Option<&BooleanArray>,
    ) -> (UInt32Array, Vec<u32>) {
        let keep = |row: usize| mask.is_none_or(|m| m.value(row));
        let bucket = |row: usize, g: usize| {
            2 * self.slot[g] as usize + retract.is_some_and(|r| r.value(row)) as usize
        };
        let buckets = 2 * slots;
        let mut offsets = vec![0u32; buckets + 1];
        for (row, &g) in self.group_indices.iter().enumerate() {
            if keep(row) {
                offsets[bucket(row, g) + 1] += 1;
            }
        }
        for i in 0..buckets {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut perm = vec![0u32; offsets[buckets] as usize];
        for (row, &g) in self.group_indices.iter().enumerate() {
            if keep(row) {
                let b = bucket(row, g);
                perm[next[b] as usize] = row as u32;
                next[b] += 1;
            }
        }
        (UInt32Array::from(perm), offsets)
    }

    /// Per group: the current output rows of `touched` groups and whether
    /// each is shown.
    fn current_rows(
        &mut self,
        group_cols: &[ArrayRef],
        touched: &[usize],
        first_row: Vec<u32>,
    ) -> Result<(RecordBatch, Option<BooleanArray>)> {
        let agg = Arc::clone(&self.agg);
        let first = UInt32Array::from(first_row);
        let mut columns = group_cols
            .iter()
            .map(|c| Ok(take(c, &first, None)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let Calls::PerGroup(per_group) = &mut self.calls else {
            return Err(SluiceError::Internal("not a per-group aggregate".into()));
        };
        let value_fields = &agg.schema.fields()[group_cols.len()..];
        for (ci, field) in value_fields.iter().enumerate() {
            let values = touched
                .iter()
                .map(|&g| Ok(per_group[g][ci].evaluate()?))
                .collect::<Result<Vec<ScalarValue>>>()?;
            let array = ScalarValue::iter_to_array(values)?;
            let want = field.data_type();
            columns.push(if array.data_type() == want {
                array
            } else {
                cast(&array, want)?
            });
        }
        let rows = RecordBatch::try_new(agg.schema.clone(), columns)?;
        post_stages(&agg.post, rows)
    }

    fn diff(
        &mut self,
        rows: &RecordBatch,
        visible: Option<&BooleanArray>,
        touched: &[usize],
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let converted = self.converter.convert_columns(rows.columns())?;
        let mut emit = Vec::new();
        let mut ops = Vec::new();
        let mut deleted = Vec::new();
        let mut before = Vec::new();
        let grouped = self.groups.is_some();
        for (i, &g) in touched.iter().enumerate() {
            let shown = visible.is_none_or(|v| v.value(i)) && (!grouped || self.counts[g] > 0);
            let row = converted.row(i);
            match (&self.last[g], shown) {
                (Some(prev), true) if prev.row() == row => {}
                (prev, true) => {
                    ops.push(if prev.is_some() {
                        Op::Update
                    } else {
                        Op::Insert
                    } as u8);
                    emit.push(i as u32);
                    if self.old_rows {
                        before.extend(self.last[g].take());
                    }
                    self.last[g] = Some(row.owned());
                }
                (Some(_), false) => deleted.extend(self.last[g].take()),
                (None, false) => {}
            }
        }
        if !before.is_empty() {
            let columns = self
                .converter
                .convert_rows(before.iter().map(|r| r.row()))?;
            let data = RecordBatch::try_new(self.output_schema.clone(), columns)?;
            let ops = UInt8Array::from(vec![Op::UpdateBefore as u8; before.len()]);
            out.push(StreamBatch::changelog(data, ops));
        }
        if !emit.is_empty() {
            let data = take_record_batch(rows, &UInt32Array::from(emit))?;
            out.push(StreamBatch::changelog(data, UInt8Array::from(ops)));
        }
        if !deleted.is_empty() {
            let columns = self
                .converter
                .convert_rows(deleted.iter().map(|r| r.row()))?;
            let data = RecordBatch::try_new(self.output_schema.clone(), columns)?;
            let ops = UInt8Array::from(vec![Op::Delete as u8; deleted.len()]);
            out.push(StreamBatch::changelog(data, ops));
        }
        Ok(())
    }
}

impl Operator for ChangelogAggregate {
    fn name(&self) -> &'static str {
        "changelog aggregate"
    }

    fn detail(&self) -> String {
        let mut text = format!(
            "{}; emits an insert, update or delete per changed group",
            self.agg.describe()
        );
        if self.retracting {
            text.push_str("; input is an updating view (its old rows are retracted)");
        }
        if let Calls::Vectorized(_) = self.calls {
            text.push_str(&format!(
                "; vectorized, changed groups emitted together within {} ms",
                FLUSH_INTERVAL.as_millis()
            ));
        }
        text
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let groups = self.counts.len();
        let mut bytes = self.groups.as_ref().map_or(0, |g| g.size());
        bytes += match &self.calls {
            Calls::PerGroup(per_group) => per_group.iter().flatten().map(|a| a.size()).sum(),
            Calls::Vectorized(accs) => accs.iter().map(|a| a.size()).sum::<usize>(),
        };
        bytes += self
            .last
            .iter()
            .flatten()
            .map(|r| r.row().as_ref().len())
            .sum::<usize>();
        Some((groups as u64, bytes as u64))
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        self.snapshot_state().map(Some)
    }

    fn rescale(
        &self,
        states: Vec<StateSnapshot>,
        router: &super::rescale::Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        self.rescale_states(states, router)
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.restore_state(state)
    }

    fn holds_back(&self) -> bool {
        !self.pending.groups.is_empty() || (self.first_row_due && self.counts.is_empty())
    }

    fn flush(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.flush_first_row(out)?;
        self.flush_pending(out)
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.flush(out)
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Evaluate every input expression first, so a value that makes one
        // fail drops its row instead of leaving the groups half updated.
        let (batch, inputs) = match self.inputs(&batch.data) {
            Ok(inputs) => (batch, inputs),
            Err(_) => {
                let batch =
                    drop_failing_rows(&batch, &self.metrics, |b| self.inputs(&b.data).map(|_| ()))?;
                if batch.num_rows() == 0 {
                    return Ok(());
                }
                let inputs = self.inputs(&batch.data)?;
                (batch, inputs)
            }
        };
        let rows = batch.num_rows();
        if let Calls::Vectorized(_) = self.calls {
            self.update_vectorized(inputs, rows)?;
            // A flush costs time in the groups held: one once the pending
            // rows are as many costs at most about as much as adding them.
            if self.pending.rows >= self.counts.len() {
                self.flush_pending(out)?;
            }
            return Ok(());
        }
        let retract = batch.ops.as_ref().map(|_| {
            (0..rows)
                .map(|i| Some(!batch.is_addition(i)))
                .collect::<BooleanArray>()
        });
        let mut touched = Vec::new();
        let mut first_row = Vec::new();
        let result = self
            .update_per_group(
                &inputs,
                rows,
                retract.as_ref(),
                &mut touched,
                &mut first_row,
            )
            .and_then(|()| self.current_rows(&inputs.group_cols, &touched, first_row))
            .and_then(|(rows, visible)| self.diff(&rows, visible.as_ref(), &touched, out));
        for &g in &touched {
            self.slot[g] = NO_SLOT;
        }
        result
    }
}

impl std::fmt::Debug for ChangelogAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChangelogAggregate({} groups)", self.group_count())
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::restore_check::{batch, plan, Row, BASE};
    use crate::stream::Op;

    /// The vectorized path holds the changes of a batch smaller than its
    /// table of groups back until it is flushed (by the pipeline, after a
    /// while) or the input ends, then emits each changed group once.
    #[test]
    fn vectorized_changes_wait_for_a_flush() {
        use crate::runtime::pipeline::{build_operators, finish, flush, push};
        use crate::stream::{Message, StreamBatch};
        let p = plan("SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k", 0);
        let mut ops = build_operators(&p, &Default::default()).expect("operators");
        let detail = ops
            .operators()
            .map(|o| o.detail())
            .collect::<Vec<_>>()
            .join("; ");
        assert!(detail.contains("vectorized"), "{detail}");
        let holds_back = |ops: &crate::runtime::graph::OperatorGraph| ops.holds_back();
        let row = |k: i64, v: i64| Row {
            k,
            tag: None,
            v: Some(v),
            ts: BASE,
        };
        let rows_of = |out: &[StreamBatch]| -> usize { out.iter().map(|b| b.num_rows()).sum() };
        let send = |ops: &mut crate::runtime::graph::OperatorGraph,
                    rows: &[Row],
                    out: &mut Vec<StreamBatch>| {
            push(ops, Message::Batch(StreamBatch::append(batch(rows))), out).expect("batch")
        };
        // Four groups in one batch: as many rows as groups, emitted at once.
        let mut out = Vec::new();
        let first: Vec<Row> = (0..4).map(|k| row(k, 1)).collect();
        send(&mut ops, &first, &mut out);
        assert_eq!(rows_of(&out), 4);
        assert!(!holds_back(&ops));
        // Then one row at a time, fewer than the groups: held back.
        out.clear();
        send(&mut ops, &[row(1, 2)], &mut out);
        send(&mut ops, &[row(1, 3)], &mut out);
        assert!(out.is_empty() && holds_back(&ops));
        flush(&mut ops, &mut out).expect("flush");
        assert!(!holds_back(&ops));
        assert_eq!(rows_of(&out), 1, "group 1 changed twice: one update");
        assert_eq!(
            out[0].ops.as_ref().map(|o| o.value(0)),
            Some(Op::Update as u8)
        );
        let s = out[0].data.column_by_name("s").expect("s");
        let s = s
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .expect("BIGINT");
        assert_eq!(s.value(0), 6);
        // The end of input emits what is held.
        out.clear();
        send(&mut ops, &[row(9, 5)], &mut out);
        assert!(out.is_empty());
        finish(&mut ops, &mut out).expect("end");
        assert_eq!(rows_of(&out), 1);
        assert_eq!(
            out[0].ops.as_ref().map(|o| o.value(0)),
            Some(Op::Insert as u8)
        );
    }
}
