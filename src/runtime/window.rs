//! TUMBLE and HOP aggregates (windows are assigned by `window_assign.rs`).
//!
//! [`WindowAggregate`] keeps one set of
//! DataFusion `GroupsAccumulator`s per open TUMBLE / HOP window and emits a
//! window's rows exactly once, when the watermark passes its end, then frees
//! its state. A TUMBLE window has its own key table; HOP windows overlap, so
//! they share one (`window_keys.rs`). SESSION aggregates are in `session.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, TimestampMillisecondArray, UInt32Array, UInt8Array,
};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use serde::{Deserialize, Serialize};

use super::operator::{advance_watermark, Operator};
use super::rescale::{agreed, Router};
use super::state::{
    column, concat_rows, damaged, intern_group_keys, keep_group_keys, keep_groups_states,
    state_batch, states_of, to_meta, StateSnapshot,
};
use super::window_assign::millis;
use super::window_calls::{
    build_rows, finish_rows, groups_accumulator, window_detail, CallInputs, Keys,
};
use super::window_keys::{SharedKeys, SlotMap};
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::{AggregateCall, AggregatePlan, WindowGrouping, WindowKind};
use crate::stream::{Op, StreamBatch};

/// A window's group keys.
enum Groups {
    /// No keys besides the window: one group.
    None,
    /// Its own table (TUMBLE: windows do not share keys).
    Own(Box<dyn GroupValues>),
    /// Ids in the operator's shared table (HOP).
    Shared(SlotMap),
}

impl Groups {
    fn size(&self) -> usize {
        match self {
            Groups::None => 0,
            Groups::Own(g) => g.size(),
            Groups::Shared(s) => s.size(),
        }
    }
}

struct WindowState {
    groups: Groups,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    count: usize,
    /// Emitted once already (only kept after that with allowed lateness).
    emitted: bool,
    /// Per group: shown by the last emission.
    shown: Vec<bool>,
}

impl WindowState {
    fn new(keys: &Keys, shared: bool, calls: &[AggregateCall]) -> Result<WindowState> {
        let groups = if shared && keys.exprs_len() > 0 {
            Groups::Shared(SlotMap::default())
        } else {
            keys.table()?.map_or(Groups::None, Groups::Own)
        };
        Ok(WindowState {
            groups,
            accs: calls
                .iter()
                .map(groups_accumulator)
                .collect::<Result<_>>()?,
            count: 0,
            emitted: false,
            shown: Vec::new(),
        })
    }

    /// The keys and current values of every group, leaving the state as it
    /// was (`GroupValues::emit` and `GroupsAccumulator::evaluate` drain, so
    /// the keys are interned again and the accumulators rebuilt from their
    /// intermediate state).
    fn peek(
        &mut self,
        calls: &[AggregateCall],
        shared: Option<&[ArrayRef]>,
    ) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let n = self.count;
        let keys = self.keys(shared)?;
        let ids: Vec<usize> = (0..n).collect();
        let mut values = Vec::with_capacity(calls.len());
        for (state, call) in keep_groups_states(&mut self.accs, n)?.iter().zip(calls) {
            let mut copy = groups_accumulator(call)?;
            copy.merge_batch(state, &ids, n)?;
            values.push(copy.evaluate(EmitTo::All)?);
        }
        Ok((keys, values))
    }

    /// Every group's keys, in group order, leaving the table as it was;
    /// `shared` holds the shared table's keys by id.
    fn keys(&mut self, shared: Option<&[ArrayRef]>) -> Result<Vec<ArrayRef>> {
        match &mut self.groups {
            Groups::None => Ok(vec![]),
            Groups::Own(g) => keep_group_keys(g.as_mut()),
            Groups::Shared(slots) => shared_keys(shared, slots),
        }
    }

    /// Every group's keys, in group order, draining the window's own table.
    fn take_keys(&mut self, shared: Option<&[ArrayRef]>) -> Result<Vec<ArrayRef>> {
        match &mut self.groups {
            Groups::Own(g) => Ok(g.emit(EmitTo::All)?),
            _ => self.keys(shared),
        }
    }

    /// Its group numbers for `ids` (shared ids of rows `rows`, or of every
    /// row when `rows` is `None`), or for `keys` in its own table.
    fn intern(
        &mut self,
        keys: impl FnOnce() -> Result<Vec<ArrayRef>>,
        ids: &[usize],
        rows: Option<&[u32]>,
        len: usize,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match &mut self.groups {
            Groups::None => {
                out.clear();
                out.resize(len, 0);
                self.count = self.count.max(usize::from(len > 0));
            }
            Groups::Own(g) => {
                out.clear();
                g.intern(&keys()?, out)?;
                self.count = g.len();
            }
            Groups::Shared(slots) => {
                match rows {
                    Some(rows) => slots.map(rows.iter().map(|&r| ids[r as usize]), out),
                    None => slots.map(ids.iter().copied(), out),
                }
                self.count = slots.len();
            }
        }
        Ok(())
    }
}

/// A window's keys, in group order, from the shared keys by id.
fn shared_keys(shared: Option<&[ArrayRef]>, slots: &SlotMap) -> Result<Vec<ArrayRef>> {
    let all = shared.ok_or_else(|| SluiceError::Internal("shared window keys".into()))?;
    let ids = slots.ids();
    all.iter().map(|k| Ok(take(k, &ids, None)?)).collect()
}

/// Checkpoint metadata. The batches are, per window in this order, its
/// group keys (when the query has keys besides the window) and a row per
/// group: what the last emission showed of it and its accumulators' states.
#[derive(Serialize, Deserialize)]
struct WindowMeta {
    watermark: Option<i64>,
    windows: Vec<WindowEntry>,
}

#[derive(Serialize, Deserialize)]
struct WindowEntry {
    start: i64,
    end: i64,
    groups: usize,
    emitted: bool,
}

/// TUMBLE and HOP aggregates: state per open window, emitted on close.
pub struct WindowAggregate {
    agg: Arc<AggregatePlan>,
    grouping: WindowGrouping,
    keys: Keys,
    /// Open windows by (end, start): the first one closes first.
    windows: BTreeMap<(i64, i64), WindowState>,
    watermark: Option<i64>,
    /// `allowed_lateness` in ms: emitted windows are kept this long past
    /// their end, and late rows within it update them.
    lateness: i64,
    metrics: Arc<PipelineMetrics>,
    /// HOP with keys: one key table for every open window.
    shared: Option<SharedKeys>,
    /// Shared key ids of the batch in hand.
    ids: Vec<usize>,
    scratch: Vec<usize>,
}

impl WindowAggregate {
    pub fn new(
        agg: Arc<AggregatePlan>,
        lateness: i64,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<Self> {
        let grouping = agg
            .window
            .ok_or_else(|| SluiceError::Internal("window aggregate without window".into()))?;
        let keys = Keys::new(&agg, &grouping);
        let shared = match grouping.kind {
            WindowKind::Hop { .. } if keys.exprs_len() > 0 => Some(SharedKeys::new(keys.schema())?),
            _ => None,
        };
        Ok(WindowAggregate {
            keys,
            shared,
            ids: Vec::new(),
            agg,
            grouping,
            windows: BTreeMap::new(),
            watermark: None,
            lateness,
            metrics,
            scratch: Vec::new(),
        })
    }

    /// Emits the current rows of a kept window's groups (`ids`, or all) as a
    /// changelog against what was shown before: insert, update or delete.
    fn emit_changes(
        &self,
        (end, start): (i64, i64),
        state: &mut WindowState,
        ids: Option<Vec<usize>>,
        shared: Option<&[ArrayRef]>,
    ) -> Result<Option<StreamBatch>> {
        let (keys, values) = state.peek(&self.agg.calls, shared)?;
        let n = state.count;
        let starts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![start; n]));
        let ends: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![end; n]));
        let (rows, visible) = build_rows(&self.agg, &self.grouping, starts, ends, keys, values)?;
        state.shown.resize(n, false);
        let ids = ids.unwrap_or_else(|| (0..n).collect());
        let mut pick = Vec::with_capacity(ids.len());
        let mut ops = Vec::with_capacity(ids.len());
        for id in ids {
            let now = visible.as_ref().is_none_or(|v| v.value(id));
            let op = match (state.shown[id], now) {
                (false, true) => Op::Insert,
                (true, true) => Op::Update,
                (true, false) => Op::Delete,
                (false, false) => continue,
            };
            state.shown[id] = now;
            pick.push(id as u32);
            ops.push(op as u8);
        }
        if pick.is_empty() {
            return Ok(None);
        }
        let rows = take_record_batch(&rows, &UInt32Array::from(pick))?;
        Ok(Some(StreamBatch::changelog(rows, UInt8Array::from(ops))))
    }

    /// Open windows (for tests and metrics).
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    fn snapshot_state(&mut self) -> Result<StateSnapshot> {
        let mut entries = Vec::with_capacity(self.windows.len());
        let mut batches = Vec::new();
        let shared = self.shared.as_mut().map(|s| s.keys()).transpose()?;
        for (&(end, start), w) in self.windows.iter_mut() {
            if !matches!(w.groups, Groups::None) {
                batches.push(RecordBatch::try_new(
                    self.keys.schema(),
                    w.keys(shared.as_deref())?,
                )?);
            }
            let shown: ArrayRef = Arc::new(
                (0..w.count)
                    .map(|g| Some(w.shown.get(g).copied().unwrap_or(false)))
                    .collect::<BooleanArray>(),
            );
            let states = keep_groups_states(&mut w.accs, w.count)?;
            batches.push(state_batch(vec![("shown".into(), shown)], states, w.count)?);
            entries.push(WindowEntry {
                start,
                end,
                groups: w.count,
                emitted: w.emitted,
            });
        }
        let meta = WindowMeta {
            watermark: self.watermark,
            windows: entries,
        };
        Ok(StateSnapshot::new(to_meta(&meta)?, batches))
    }

    fn restore_state(&mut self, state: StateSnapshot) -> Result<()> {
        let meta: WindowMeta = state.meta_as()?;
        let mut batches = state.into_batches();
        for entry in meta.windows {
            let mut w = WindowState::new(&self.keys, self.shared.is_some(), &self.agg.calls)?;
            match (&mut w.groups, &mut self.shared) {
                (Groups::None, _) => {}
                (Groups::Own(groups), _) => {
                    intern_group_keys(groups.as_mut(), &batches.next("window keys")?)?
                }
                (Groups::Shared(slots), Some(shared)) => {
                    let keys = batches.next("window keys")?;
                    shared.intern(keys.columns(), &mut self.ids)?;
                    slots.map(self.ids.iter().copied(), &mut self.scratch);
                    if self.scratch.iter().enumerate().any(|(i, &g)| i != g) {
                        return Err(damaged("window keys repeat"));
                    }
                }
                (Groups::Shared(_), None) => {
                    return Err(SluiceError::Internal("shared window keys".into()))
                }
            }
            let per_group = batches.next("window groups")?;
            if per_group.num_rows() != entry.groups {
                return Err(damaged("window group count"));
            }
            let ids: Vec<usize> = (0..entry.groups).collect();
            let states = states_of(&per_group, w.accs.len())?;
            for (acc, state) in w.accs.iter_mut().zip(&states) {
                acc.merge_batch(state, &ids, entry.groups)?;
            }
            let shown = column::<BooleanArray>(&per_group, "shown")?;
            w.shown = shown.iter().map(|s| s == Some(true)).collect();
            w.count = entry.groups;
            w.emitted = entry.emitted;
            self.windows.insert((entry.end, entry.start), w);
        }
        self.watermark = meta.watermark;
        Ok(())
    }

    /// Every instance's open (and kept) windows, each window's groups
    /// re-split by the exchange's hash of their keys (`rescale.rs`).
    /// Instances see the same watermarks, so their watermark and which
    /// windows they emitted agree; if they did not, the state is left
    /// unsplit.
    fn rescale_states(
        &self,
        states: Vec<StateSnapshot>,
        router: &Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        if self.keys.exprs_len() == 0 {
            return Ok(None);
        }
        type Window = (bool, Vec<RecordBatch>, Vec<RecordBatch>);
        let metas = states
            .iter()
            .map(|s| s.meta_as::<WindowMeta>())
            .collect::<Result<Vec<_>>>()?;
        let Some(watermark) = agreed(metas.iter().map(|m| m.watermark)) else {
            return Ok(None);
        };
        let mut windows: BTreeMap<(i64, i64), Window> = BTreeMap::new();
        for (state, meta) in states.into_iter().zip(metas) {
            let mut batches = state.into_batches();
            for entry in meta.windows {
                let keys = batches.next("window keys")?;
                let groups = batches.next("window groups")?;
                if keys.num_rows() != entry.groups || groups.num_rows() != entry.groups {
                    return Err(damaged("window group count"));
                }
                let w = windows
                    .entry((entry.end, entry.start))
                    .or_insert_with(|| (entry.emitted, Vec::new(), Vec::new()));
                if w.0 != entry.emitted {
                    return Ok(None);
                }
                w.1.push(keys);
                w.2.push(groups);
            }
        }
        let mut parts: Vec<(Vec<WindowEntry>, Vec<RecordBatch>)> =
            (0..router.parts()).map(|_| Default::default()).collect();
        for ((end, start), (emitted, keys, groups)) in windows {
            let keys = concat_rows(keys)?;
            let groups = concat_rows(groups)?;
            for (part, rows) in router.split(keys.columns())?.into_iter().enumerate() {
                if rows.is_empty() {
                    continue;
                }
                let rows = UInt32Array::from(rows);
                let (entries, batches) = &mut parts[part];
                entries.push(WindowEntry {
                    start,
                    end,
                    groups: rows.len(),
                    emitted,
                });
                batches.push(take_record_batch(&keys, &rows)?);
                batches.push(take_record_batch(&groups, &rows)?);
            }
        }
        parts
            .into_iter()
            .map(|(windows, batches)| {
                Ok(StateSnapshot::new(
                    to_meta(&WindowMeta { watermark, windows })?,
                    batches,
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn emit(
        &self,
        (end, start): (i64, i64),
        mut state: WindowState,
        shared: Option<&[ArrayRef]>,
    ) -> Result<Option<StreamBatch>> {
        let keys = state.take_keys(shared)?;
        let values = state
            .accs
            .iter_mut()
            .map(|a| Ok(a.evaluate(EmitTo::All)?))
            .collect::<Result<Vec<_>>>()?;
        let n = state.count;
        let starts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![start; n]));
        let ends: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![end; n]));
        finish_rows(&self.agg, &self.grouping, starts, ends, keys, values)
    }

    /// Before windows close: the shared table's keys by id, leaving it
    /// empty for [`compact`](Self::compact).
    fn drain_shared(&mut self) -> Result<Option<Vec<ArrayRef>>> {
        self.shared.as_mut().map(|s| s.drain()).transpose()
    }

    /// After windows closed: refills the shared table with the keys the
    /// open windows still hold, and renumbers them.
    fn compact(&mut self, all: Option<Vec<ArrayRef>>) -> Result<()> {
        let (Some(shared), Some(all)) = (self.shared.as_mut(), all) else {
            return Ok(());
        };
        let mut live = vec![false; all.first().map_or(0, |k| k.len())];
        for w in self.windows.values() {
            if let Groups::Shared(slots) = &w.groups {
                slots.mark(&mut live);
            }
        }
        let new_of_old = shared.refill(&all, &live)?;
        for w in self.windows.values_mut() {
            if let Groups::Shared(slots) = &mut w.groups {
                slots.remap(&new_of_old);
            }
        }
        Ok(())
    }
}

impl Operator for WindowAggregate {
    fn name(&self) -> &'static str {
        "window aggregate"
    }

    fn detail(&self) -> String {
        window_detail(&self.agg, self.lateness)
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let (mut rows, mut bytes) = (0usize, 0usize);
        bytes += self.shared.as_ref().map_or(0, |s| s.size());
        for w in self.windows.values() {
            rows += w.count;
            bytes += w.groups.size();
            bytes += w.accs.iter().map(|a| a.size()).sum::<usize>();
        }
        Some((rows as u64, bytes as u64))
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        self.snapshot_state().map(Some)
    }

    fn rescale(
        &self,
        states: Vec<StateSnapshot>,
        router: &Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        self.rescale_states(states, router)
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.restore_state(state)
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        let batch = &batch.data;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let g = &self.agg.group_exprs;
        let starts = millis(
            &g[self.grouping.start]
                .evaluate(batch)?
                .into_array(batch.num_rows())?,
        )?;
        let ends = millis(
            &g[self.grouping.end]
                .evaluate(batch)?
                .into_array(batch.num_rows())?,
        )?;
        let (starts, ends) = (
            starts.as_primitive::<Int64Type>(),
            ends.as_primitive::<Int64Type>(),
        );
        // A batch touches a few windows, and neighbouring rows mostly share
        // one: a short list searched from the last hit beats hashing every
        // row (SipHash was 5 % of a TUMBLE query).
        let mut by_window: Vec<((i64, i64), Vec<u32>)> = Vec::new();
        let mut last = 0;
        let mut late = 0;
        for i in 0..batch.num_rows() {
            let window = (ends.value(i), starts.value(i));
            if self
                .watermark
                .is_some_and(|w| window.0 + self.lateness <= w)
            {
                late += 1; // its window is gone
                continue;
            }
            if by_window.get(last).is_none_or(|(w, _)| *w != window) {
                last = match by_window.iter().position(|(w, _)| *w == window) {
                    Some(at) => at,
                    None => {
                        by_window.push((window, Vec::new()));
                        by_window.len() - 1
                    }
                };
            }
            by_window[last].1.push(i as u32);
        }
        PipelineMetrics::add(&self.metrics.late, late);
        let keys = self.keys.evaluate(batch)?;
        // HOP: every row's key hashed once, into the table all windows share.
        let mut ids = std::mem::take(&mut self.ids);
        if let Some(shared) = self.shared.as_mut() {
            shared.intern(&keys, &mut ids)?;
        }
        let inputs = CallInputs::evaluate(&self.agg.calls, batch)?;
        // The shared table's keys, read (a drain and re-intern) at most once
        // per batch: the batch's keys are all in it already.
        let mut shared_keys: Option<Vec<ArrayRef>> = None;
        let result = (|| {
            for (window, rows) in by_window {
                // Every row in one window (a TUMBLE batch, mostly): no copy.
                let whole = rows.len() == batch.num_rows();
                let idx = UInt32Array::from(rows);
                let inputs = if whole {
                    inputs.clone()
                } else {
                    inputs.take(&idx)?
                };
                let state =
                    match self.windows.entry(window) {
                        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::btree_map::Entry::Vacant(v) => v.insert(
                            WindowState::new(&self.keys, self.shared.is_some(), &self.agg.calls)?,
                        ),
                    };
                let window_keys = || {
                    if whole {
                        return Ok(keys.clone());
                    }
                    keys.iter().map(|k| Ok(take(k, &idx, None)?)).collect()
                };
                let rows = (!whole).then(|| idx.values().as_ref());
                state.intern(window_keys, &ids, rows, idx.len(), &mut self.scratch)?;
                inputs.update(&mut state.accs, &self.scratch, state.count)?;
                if state.emitted {
                    // A late row inside the allowance: emit the groups it changed.
                    let mut dirty = self.scratch.clone();
                    dirty.sort_unstable();
                    dirty.dedup();
                    let mut state = self
                        .windows
                        .remove(&window)
                        .ok_or_else(|| SluiceError::Internal("window state".into()))?;
                    if let (None, Some(table)) = (&shared_keys, self.shared.as_mut()) {
                        shared_keys = Some(table.keys()?);
                    }
                    let changes =
                        self.emit_changes(window, &mut state, Some(dirty), shared_keys.as_deref());
                    self.windows.insert(window, state);
                    out.extend(changes?);
                }
            }
            Ok(())
        })();
        self.ids = ids;
        result
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        if !advance_watermark(&mut self.watermark, watermark) {
            return Ok(());
        }
        // Windows the watermark closes; with allowed lateness, those it
        // closes for the first time (they are kept until it passes end +
        // lateness).
        let lateness = self.lateness;
        let closes = |(end, _): &(i64, i64), s: &WindowState| {
            *end <= watermark && (lateness == 0 || !s.emitted)
        };
        let freed = |(end, _): &(i64, i64)| *end + lateness <= watermark;
        if !self
            .windows
            .iter()
            .take_while(|(w, _)| w.0 <= watermark)
            .any(|(w, s)| closes(w, s) || freed(w))
        {
            return Ok(());
        }
        let shared = self.drain_shared()?;
        let result = (|| {
            if lateness == 0 {
                while let Some(entry) = self.windows.first_entry() {
                    if entry.key().0 > watermark {
                        break;
                    }
                    let (window, state) = entry.remove_entry();
                    out.extend(self.emit(window, state, shared.as_deref())?);
                }
                return Ok(());
            }
            let closing: Vec<(i64, i64)> = self
                .windows
                .range(..=(watermark, i64::MAX))
                .filter(|(w, s)| closes(w, s))
                .map(|(k, _)| *k)
                .collect();
            for window in closing {
                let mut state = self
                    .windows
                    .remove(&window)
                    .ok_or_else(|| SluiceError::Internal("window state".into()))?;
                let changes = self.emit_changes(window, &mut state, None, shared.as_deref());
                state.emitted = true;
                self.windows.insert(window, state);
                out.extend(changes?);
            }
            while let Some(entry) = self.windows.first_entry() {
                if !freed(entry.key()) {
                    break;
                }
                entry.remove();
            }
            Ok(())
        })();
        // The shared keys go back whether or not emitting failed.
        let compacted = self.compact(shared);
        result.and(compacted)
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        let shared = self.drain_shared()?;
        while let Some((window, mut state)) = self.windows.pop_first() {
            if self.lateness == 0 {
                out.extend(self.emit(window, state, shared.as_deref())?);
            } else if !state.emitted {
                out.extend(self.emit_changes(window, &mut state, None, shared.as_deref())?);
            }
        }
        self.compact(shared)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::runtime::restore_check::{check_restores, plan, rows_strategy, script, AGGS};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Open windows, the watermark (late rows are dropped by it, both
        /// when windows are assigned and here), and with allowed lateness
        /// the emitted windows kept and what each of their groups showed.
        #[test]
        fn restores_open_and_kept_windows(
            rows in rows_strategy(137),
            cuts in proptest::collection::vec(0usize..250, 0..12),
            at in proptest::collection::vec(0usize..40, 1..4),
        ) {
            let steps = script(&rows, &cuts);
            for lateness in [0, 4_000] {
                for sql in [
                    format!("SELECT k, tag, window_start, window_end, {AGGS} \
                             FROM TUMBLE(t, ts, INTERVAL '3 seconds') GROUP BY k, tag, window_start, window_end"),
                    "SELECT window_end, count(*) AS n, max(v) AS hi \
                     FROM HOP(t, ts, INTERVAL '2 seconds', INTERVAL '6 seconds') \
                     GROUP BY window_start, window_end HAVING count(*) % 4 <> 1".into(),
                    // Keys shared by overlapping windows.
                    format!("SELECT k, tag, window_start, window_end, {AGGS} \
                             FROM HOP(t, ts, INTERVAL '1 second', INTERVAL '3 seconds') \
                             GROUP BY k, tag, window_start, window_end HAVING count(*) % 3 <> 1"),
                ] {
                    check_restores(&plan(&sql, lateness), &steps, &at);
                }
            }
        }
    }
}
