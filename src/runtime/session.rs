//! SESSION aggregates, kept incrementally: per group key, its open sessions,
//! each with one DataFusion `Accumulator` per aggregate call. A batch's rows
//! are sorted by (key, time) and cut into runs no more than `gap` apart;
//! each run is aggregated on a zero-copy slice, then merged with the key's
//! sessions it overlaps (their accumulators merged through their
//! intermediate state). A session is emitted once, when the watermark passes
//! its last event plus the gap, and its state is dropped: memory is bounded
//! by the open sessions, not by the rows in them.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, TimestampMillisecondArray, UInt32Array,
    UInt64Array, UInt8Array,
};
use datafusion::arrow::compute::{cast, concat, concat_batches, filter, take, take_record_batch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use serde::{Deserialize, Serialize};

use super::operator::{advance_watermark, Operator};
use super::rescale::{agreed, Router};
use super::state::{
    column, concat_rows, damaged, intern_group_keys, merge_states, state_batch, states_of,
    take_states, to_meta, StateSnapshot,
};
use super::window_assign::millis;
use super::window_calls::{build_rows, intern, window_detail, CallInputs, Keys};
use crate::error::{Result, SluiceError};
use crate::plan::{AggregatePlan, WindowGrouping, WindowKind};
use crate::stream::{Op, StreamBatch};

struct Session {
    start: i64,
    end: i64,
    accs: Vec<Box<dyn Accumulator>>,
    /// The watermark has passed its end and it was emitted (or hidden by
    /// HAVING).
    emitted: bool,
    /// Its last emitted row is shown downstream.
    shown: bool,
}

/// A row to emit: a closed session to show (op decided by HAVING and what
/// was shown before), or a merged-away session to delete.
struct Change {
    key: usize,
    start: i64,
    end: i64,
    values: Vec<ScalarValue>,
    delete: bool,
}

pub struct SessionAggregate {
    agg: Arc<AggregatePlan>,
    grouping: WindowGrouping,
    gap: i64,
    /// `allowed_lateness` in ms: closed sessions are kept this long so late
    /// rows can still extend or merge them (output is then a changelog).
    lateness: i64,
    keys: Keys,
    table: Option<Box<dyn GroupValues>>,
    /// Per key id: the key as one-row arrays.
    key_values: Vec<Vec<ArrayRef>>,
    /// Per key id: open sessions, ordered by start (they never overlap).
    sessions: Vec<Vec<Session>>,
    watermark: Option<i64>,
    scratch: Vec<usize>,
}

impl SessionAggregate {
    pub fn new(agg: Arc<AggregatePlan>, lateness: i64) -> Result<Self> {
        let grouping = agg
            .window
            .ok_or_else(|| SluiceError::Internal("session aggregate without window".into()))?;
        let WindowKind::Session { gap } = grouping.kind else {
            return Err(SluiceError::Internal(
                "session aggregate over another window".into(),
            ));
        };
        let keys = Keys::new(&agg, &grouping);
        Ok(SessionAggregate {
            table: keys.table()?,
            keys,
            agg,
            grouping,
            gap,
            lateness,
            key_values: Vec::new(),
            sessions: Vec::new(),
            watermark: None,
            scratch: Vec::new(),
        })
    }

    /// Sessions currently held.
    pub fn open_sessions(&self) -> usize {
        self.sessions.iter().map(Vec::len).sum()
    }

    /// A new session over `rows` (indices into the batch's inputs).
    fn aggregate(
        &self,
        inputs: &CallInputs,
        rows: &UInt32Array,
        start: i64,
        end: i64,
    ) -> Result<Session> {
        let mut accs = Vec::with_capacity(self.agg.calls.len());
        for (c, call) in self.agg.calls.iter().enumerate() {
            let mut acc = call.func.create_accumulator()?;
            let mask = inputs.filters[c]
                .as_ref()
                .map(|f| Ok::<_, SluiceError>(take(f, rows, None)?.as_boolean().clone()))
                .transpose()?;
            let args = inputs.args[c]
                .iter()
                .map(|a| {
                    let taken = take(a, rows, None)?;
                    Ok(match &mask {
                        Some(m) => filter(&taken, m)?,
                        None => taken,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            acc.update_batch(&args)?;
            accs.push(acc);
        }
        Ok(Session {
            start,
            end,
            accs,
            emitted: false,
            shown: false,
        })
    }

    fn values(s: &mut Session) -> Result<Vec<ScalarValue>> {
        s.accs.iter_mut().map(|a| Ok(a.evaluate()?)).collect()
    }

    /// Adds `new` to key `id`'s sessions, merging every session it overlaps.
    /// A merged-away session that was shown is deleted, unless the merged one
    /// keeps its bounds (then the merged one is its update). If the merged
    /// session is already closed, it is shown again at once.
    fn merge_in(&mut self, id: usize, mut new: Session, changes: &mut Vec<Change>) -> Result<()> {
        let list = std::mem::take(&mut self.sessions[id]);
        let mut kept = Vec::with_capacity(list.len() + 1);
        let mut merged_away = Vec::new();
        for mut old in list {
            if old.start < new.end && new.start < old.end {
                new.start = new.start.min(old.start);
                new.end = new.end.max(old.end);
                if old.shown {
                    merged_away.push((old.start, old.end, Self::values(&mut old)?));
                }
                for (into, mut from) in new.accs.iter_mut().zip(old.accs) {
                    let state = from
                        .state()?
                        .into_iter()
                        .map(|v| v.to_array())
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    into.merge_batch(&state)?;
                }
            } else {
                kept.push(old);
            }
        }
        for (start, end, values) in merged_away {
            if (start, end) == (new.start, new.end) {
                new.shown = true; // same key: the new row is its update
            } else {
                changes.push(Change {
                    key: id,
                    start,
                    end,
                    values,
                    delete: true,
                });
            }
        }
        if self.watermark.is_some_and(|w| new.end <= w) {
            // Late rows changed a closed session: show it again now.
            new.emitted = true;
            changes.push(Change {
                key: id,
                start: new.start,
                end: new.end,
                values: Self::values(&mut new)?,
                delete: false,
            });
        }
        let at = kept.partition_point(|s| s.start < new.start);
        kept.insert(at, new);
        self.sessions[id] = kept;
        Ok(())
    }

    /// Emits the sessions that end at or before `until` (all when `None`),
    /// and drops those past the allowed lateness.
    fn close(&mut self, until: Option<i64>, out: &mut Vec<StreamBatch>) -> Result<()> {
        let mut changes = Vec::new();
        for (id, list) in self.sessions.iter_mut().enumerate() {
            // Sessions do not overlap, so ordered by start they are ordered
            // by end too.
            for s in list.iter_mut() {
                if until.is_some_and(|w| s.end > w) {
                    break;
                }
                if !s.emitted {
                    s.emitted = true;
                    changes.push(Change {
                        key: id,
                        start: s.start,
                        end: s.end,
                        values: Self::values(s)?,
                        delete: false,
                    });
                }
            }
        }
        self.emit(changes, out)?;
        let lateness = self.lateness;
        for list in self.sessions.iter_mut() {
            let gone = list.partition_point(|s| until.is_none_or(|w| s.end + lateness <= w));
            list.drain(..gone);
        }
        Ok(())
    }

    /// Turns changes into rows: append-only without allowed lateness, else a
    /// changelog against what each session showed before.
    fn emit(&mut self, mut changes: Vec<Change>, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.drop_superseded(&mut changes);
        if changes.is_empty() {
            return Ok(());
        }
        let ids: Vec<usize> = changes.iter().map(|c| c.key).collect();
        let key_columns = self.keys_of(&ids)?;
        let mut values: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(changes.len()); self.agg.calls.len()];
        for c in &changes {
            for (i, v) in c.values.iter().enumerate() {
                values[i].push(v.clone());
            }
        }
        let values = values
            .into_iter()
            .map(|v| Ok(ScalarValue::iter_to_array(v)?))
            .collect::<Result<Vec<_>>>()?;
        let starts: ArrayRef = Arc::new(TimestampMillisecondArray::from(
            changes.iter().map(|c| c.start).collect::<Vec<_>>(),
        ));
        let ends: ArrayRef = Arc::new(TimestampMillisecondArray::from(
            changes.iter().map(|c| c.end).collect::<Vec<_>>(),
        ));
        let (rows, visible) =
            build_rows(&self.agg, &self.grouping, starts, ends, key_columns, values)?;
        let mut pick = Vec::new();
        let mut ops = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let now = visible.as_ref().is_none_or(|v| v.value(i));
            if c.delete {
                pick.push(i as u32);
                ops.push(Op::Delete as u8);
                continue;
            }
            let list = &mut self.sessions[c.key];
            let at = list.partition_point(|s| s.start < c.start);
            let Some(s) = list.get_mut(at).filter(|s| s.start == c.start) else {
                return Err(SluiceError::Internal("emitted session not found".into()));
            };
            let op = match (s.shown, now) {
                (false, true) => Op::Insert,
                (true, true) => Op::Update,
                (true, false) => Op::Delete,
                (false, false) => continue,
            };
            s.shown = now;
            pick.push(i as u32);
            ops.push(op as u8);
        }
        if pick.is_empty() {
            return Ok(());
        }
        let rows = take_record_batch(&rows, &UInt32Array::from(pick))?;
        out.push(if self.lateness > 0 {
            StreamBatch::changelog(rows, UInt8Array::from(ops))
        } else {
            StreamBatch::append(rows)
        });
        Ok(())
    }

    /// Within one batch, late rows can change a closed session more than
    /// once: its first change is then superseded by a later one for the same
    /// session, or the session was merged into another (its bounds are gone).
    /// Only the last change of each session still held is kept; deletes are
    /// of sessions shown before this batch and always stay.
    fn drop_superseded(&self, changes: &mut Vec<Change>) {
        let mut seen = std::collections::HashSet::new();
        let mut keep = vec![true; changes.len()];
        for (i, c) in changes.iter().enumerate().rev() {
            if c.delete {
                continue;
            }
            let list = &self.sessions[c.key];
            let at = list.partition_point(|s| s.start < c.start);
            let held = list
                .get(at)
                .is_some_and(|s| s.start == c.start && s.end == c.end);
            keep[i] = held && seen.insert((c.key, c.start));
        }
        let mut keep = keep.into_iter();
        changes.retain(|_| keep.next().unwrap_or(true));
    }

    /// The key columns for a list of key ids.
    fn keys_of(&self, ids: &[usize]) -> Result<Vec<ArrayRef>> {
        let columns = self.keys.exprs_len();
        (0..columns)
            .map(|c| {
                let parts: Vec<&dyn Array> = ids
                    .iter()
                    .map(|&id| self.key_values[id][c].as_ref())
                    .collect();
                Ok(concat(&parts)?)
            })
            .collect()
    }
}

/// Checkpoint metadata. The batches are the keys (when the query has keys
/// besides the window; one row per key id) and the sessions held, a row
/// each: its key id, bounds, flags and accumulators' states, in key id then
/// start order.
#[derive(Serialize, Deserialize)]
struct SessionMeta {
    watermark: Option<i64>,
    keys: usize,
}

impl SessionAggregate {
    fn snapshot_state(&mut self) -> Result<StateSnapshot> {
        let keys = self.key_values.len();
        let mut batches = Vec::with_capacity(2);
        if self.keys.exprs_len() > 0 {
            // The keys as first seen, not as the table stores them: the
            // same arrays a fresh run would hold.
            batches.push(match keys {
                0 => RecordBatch::new_empty(self.keys.schema()),
                _ => RecordBatch::try_new(
                    self.keys.schema(),
                    self.keys_of(&(0..keys).collect::<Vec<_>>())?,
                )?,
            });
        }
        let held = || {
            self.sessions
                .iter()
                .enumerate()
                .flat_map(|(id, l)| l.iter().map(move |s| (id, s)))
        };
        let key: ArrayRef = Arc::new(held().map(|(id, _)| id as u64).collect::<UInt64Array>());
        let start: ArrayRef = Arc::new(held().map(|(_, s)| s.start).collect::<Int64Array>());
        let end: ArrayRef = Arc::new(held().map(|(_, s)| s.end).collect::<Int64Array>());
        let emitted: ArrayRef = Arc::new(
            held()
                .map(|(_, s)| Some(s.emitted))
                .collect::<BooleanArray>(),
        );
        let shown: ArrayRef =
            Arc::new(held().map(|(_, s)| Some(s.shown)).collect::<BooleanArray>());
        let rows = key.len();
        let agg = Arc::clone(&self.agg);
        let states = take_states(
            self.sessions.iter_mut().flatten().map(|s| &mut s.accs),
            agg.calls.len(),
            |c| Ok(agg.calls[c].func.create_accumulator()?),
        )?;
        let columns = vec![
            ("key".into(), key),
            ("start".into(), start),
            ("end".into(), end),
            ("emitted".into(), emitted),
            ("shown".into(), shown),
        ];
        batches.push(state_batch(columns, states, rows)?);
        let meta = SessionMeta {
            watermark: self.watermark,
            keys,
        };
        Ok(StateSnapshot::new(to_meta(&meta)?, batches))
    }

    fn restore_state(&mut self, state: StateSnapshot) -> Result<()> {
        let meta: SessionMeta = state.meta_as()?;
        let mut batches = state.into_batches();
        match self.table.as_mut() {
            Some(table) => {
                let keys = batches.next("session keys")?;
                intern_group_keys(table.as_mut(), &keys)?;
                self.key_values = (0..keys.num_rows())
                    .map(|row| keys.columns().iter().map(|k| k.slice(row, 1)).collect())
                    .collect();
            }
            None => self.key_values = vec![Vec::new(); meta.keys],
        }
        if self.key_values.len() != meta.keys {
            return Err(damaged("session key count"));
        }
        self.sessions = (0..meta.keys).map(|_| Vec::new()).collect();
        let held = batches.next("sessions")?;
        let states = states_of(&held, self.agg.calls.len())?;
        let key = column::<UInt64Array>(&held, "key")?;
        let start = column::<Int64Array>(&held, "start")?;
        let end = column::<Int64Array>(&held, "end")?;
        let emitted = column::<BooleanArray>(&held, "emitted")?;
        let shown = column::<BooleanArray>(&held, "shown")?;
        for row in 0..held.num_rows() {
            let mut accs = self
                .agg
                .calls
                .iter()
                .map(|c| Ok(c.func.create_accumulator()?))
                .collect::<Result<Vec<_>>>()?;
            merge_states(&states, row, &mut accs)?;
            let list = usize::try_from(key.value(row))
                .ok()
                .and_then(|id| self.sessions.get_mut(id))
                .ok_or_else(|| damaged("session of an unknown key"))?;
            list.push(Session {
                start: start.value(row),
                end: end.value(row),
                accs,
                emitted: emitted.value(row),
                shown: shown.value(row),
            });
        }
        self.watermark = meta.watermark;
        Ok(())
    }
}

impl SessionAggregate {
    /// Every instance's keys and sessions, the keys re-split by the
    /// exchange's hash (`rescale.rs`) and renumbered per part, each key's
    /// sessions going with it in their order. Instances see the same
    /// watermarks; if theirs differed, the state is left unsplit.
    fn rescale_states(
        &self,
        states: Vec<StateSnapshot>,
        router: &Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        if self.keys.exprs_len() == 0 || states.is_empty() {
            return Ok(None);
        }
        let metas = states
            .iter()
            .map(|s| s.meta_as::<SessionMeta>())
            .collect::<Result<Vec<_>>>()?;
        let Some(watermark) = agreed(metas.iter().map(|m| m.watermark)) else {
            return Ok(None);
        };
        let (mut keys, mut held) = (Vec::new(), Vec::new());
        let mut offset = 0u64;
        for (state, meta) in states.into_iter().zip(metas) {
            let mut batches = state.into_batches();
            let k = batches.next("session keys")?;
            let h = batches.next("sessions")?;
            if k.num_rows() != meta.keys {
                return Err(damaged("session key count"));
            }
            // Key ids across all instances: this instance's, shifted.
            // Each session's key is one of its own instance's keys.
            let ids = column::<UInt64Array>(&h, "key")?;
            if ids.null_count() > 0 || ids.values().iter().any(|&id| id >= k.num_rows() as u64) {
                return Err(damaged("session of an unknown key"));
            }
            let ids = UInt64Array::from_iter_values(ids.values().iter().map(|id| id + offset));
            held.push(with_key_ids(&h, ids)?);
            offset += k.num_rows() as u64;
            keys.push(k);
        }
        let keys = concat_rows(keys)?;
        let held = concat_rows(held)?;
        let ids = column::<UInt64Array>(&held, "key")?;
        let mut sessions_of: Vec<Vec<u32>> = vec![Vec::new(); keys.num_rows()];
        for row in 0..held.num_rows() {
            sessions_of
                .get_mut(ids.value(row) as usize)
                .ok_or_else(|| damaged("session of an unknown key"))?
                .push(row as u32);
        }
        router
            .split(keys.columns())?
            .into_iter()
            .map(|part| {
                let mut rows: Vec<u32> = Vec::new();
                let mut new_ids = Vec::new();
                for (new, &old) in part.iter().enumerate() {
                    rows.extend(&sessions_of[old as usize]);
                    new_ids.extend(std::iter::repeat_n(
                        new as u64,
                        sessions_of[old as usize].len(),
                    ));
                }
                let sessions = take_record_batch(&held, &UInt32Array::from(rows))?;
                let meta = SessionMeta {
                    watermark,
                    keys: part.len(),
                };
                Ok(StateSnapshot::new(
                    to_meta(&meta)?,
                    vec![
                        take_record_batch(&keys, &UInt32Array::from(part))?,
                        with_key_ids(&sessions, UInt64Array::from(new_ids))?,
                    ],
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// `sessions` with its key id column replaced by `ids`.
fn with_key_ids(sessions: &RecordBatch, ids: UInt64Array) -> Result<RecordBatch> {
    let at = sessions
        .schema()
        .index_of("key")
        .map_err(|_| damaged("column key"))?;
    let mut columns = sessions.columns().to_vec();
    columns[at] = Arc::new(ids);
    Ok(RecordBatch::try_new(sessions.schema(), columns)?)
}

impl Operator for SessionAggregate {
    fn name(&self) -> &'static str {
        "session aggregate"
    }

    fn detail(&self) -> String {
        window_detail(&self.agg, self.lateness)
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let sessions = self.open_sessions() as u64;
        let accs: usize = self
            .sessions
            .iter()
            .flatten()
            .flat_map(|s| s.accs.iter().map(|a| a.size()))
            .sum();
        let keys = self.table.as_ref().map_or(0, |t| t.size());
        Some((sessions, (accs + keys) as u64))
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
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let mut changes = Vec::new();
        // A row's proto-window starts at its event time.
        let ts = millis(
            &self.agg.group_exprs[self.grouping.start]
                .evaluate(batch)?
                .into_array(n)?,
        )?;
        let ts = ts.as_primitive::<Int64Type>();
        let keys = self.keys.evaluate(batch)?;
        let count = intern(&mut self.table, &keys, n, &mut self.scratch)?;
        let ids = std::mem::take(&mut self.scratch);
        for (row, &id) in ids.iter().enumerate() {
            if id == self.key_values.len() {
                self.key_values
                    .push(keys.iter().map(|k| k.slice(row, 1)).collect());
                self.sessions.push(Vec::new());
            }
        }
        debug_assert_eq!(count.max(self.key_values.len()), self.key_values.len());
        let inputs = CallInputs::evaluate(&self.agg.calls, batch)?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| (ids[i as usize], ts.value(i as usize)));
        let mut i = 0;
        while i < order.len() {
            let id = ids[order[i] as usize];
            let start = ts.value(order[i] as usize);
            let mut end = start + self.gap;
            let mut j = i + 1;
            while j < order.len()
                && ids[order[j] as usize] == id
                && ts.value(order[j] as usize) < end
            {
                end = end.max(ts.value(order[j] as usize) + self.gap);
                j += 1;
            }
            let session = self.aggregate(
                &inputs,
                &UInt32Array::from(order[i..j].to_vec()),
                start,
                end,
            )?;
            self.merge_in(id, session, &mut changes)?;
            i = j;
        }
        self.scratch = ids;
        self.emit(changes, out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        if !advance_watermark(&mut self.watermark, watermark) {
            return Ok(());
        }
        self.close(Some(watermark), out)
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.close(None, out)
    }
}

/// SESSION without a GROUP BY on its window: rows are held until the global
/// session they belong to closes, then sent on with its bounds in
/// `window_start` / `window_end`. (The rows are the output, so they must be
/// held.)
pub struct SessionRows {
    gap: i64,
    start_col: usize,
    end_col: usize,
    held: Vec<RecordBatch>,
    watermark: Option<i64>,
}

impl SessionRows {
    pub fn new(gap: i64, start_col: usize, end_col: usize) -> Self {
        SessionRows {
            gap,
            start_col,
            end_col,
            held: Vec::new(),
            watermark: None,
        }
    }

    fn close(&mut self, until: Option<i64>, out: &mut Vec<StreamBatch>) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let all = concat_batches(&self.held[0].schema(), &self.held)?;
        self.held.clear();
        let ts = millis(all.column(self.start_col))?;
        let ts = ts.as_primitive::<Int64Type>();
        let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
        order.sort_unstable_by_key(|&i| ts.value(i as usize));
        let (mut emit, mut starts, mut ends, mut keep) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut i = 0;
        while i < order.len() {
            let start = ts.value(order[i] as usize);
            let mut end = start + self.gap;
            let mut j = i + 1;
            while j < order.len() && ts.value(order[j] as usize) < end {
                end = end.max(ts.value(order[j] as usize) + self.gap);
                j += 1;
            }
            if until.is_none_or(|w| end <= w) {
                emit.extend_from_slice(&order[i..j]);
                starts.extend(std::iter::repeat_n(start, j - i));
                ends.extend(std::iter::repeat_n(end, j - i));
            } else {
                keep.extend_from_slice(&order[i..j]);
            }
            i = j;
        }
        if !keep.is_empty() {
            self.held
                .push(take_record_batch(&all, &UInt32Array::from(keep))?);
        }
        if emit.is_empty() {
            return Ok(());
        }
        let rows = take_record_batch(&all, &UInt32Array::from(emit))?;
        let mut columns = rows.columns().to_vec();
        let want = rows.schema().field(self.start_col).data_type().clone();
        columns[self.start_col] = cast(
            &(Arc::new(TimestampMillisecondArray::from(starts)) as ArrayRef),
            &want,
        )?;
        columns[self.end_col] = cast(
            &(Arc::new(TimestampMillisecondArray::from(ends)) as ArrayRef),
            &want,
        )?;
        out.push(StreamBatch::append(RecordBatch::try_new(
            rows.schema(),
            columns,
        )?));
        Ok(())
    }
}

/// Checkpoint metadata; the batches are the rows held.
#[derive(Serialize, Deserialize)]
struct HeldMeta {
    watermark: Option<i64>,
}

impl Operator for SessionRows {
    fn name(&self) -> &'static str {
        "session rows"
    }

    fn detail(&self) -> String {
        format!(
            "holds rows until their SESSION(gap {}) closes on the watermark, then adds window_start and window_end",
            crate::plan::show_ms(self.gap)
        )
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let rows: usize = self.held.iter().map(|b| b.num_rows()).sum();
        let bytes: usize = self.held.iter().map(|b| b.get_array_memory_size()).sum();
        Some((rows as u64, bytes as u64))
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let meta = HeldMeta {
            watermark: self.watermark,
        };
        Ok(Some(StateSnapshot::new(to_meta(&meta)?, self.held.clone())))
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.watermark = state.meta_as::<HeldMeta>()?.watermark;
        self.held = state.batches;
        Ok(())
    }

    fn process_batch(&mut self, batch: StreamBatch, _out: &mut Vec<StreamBatch>) -> Result<()> {
        if batch.num_rows() > 0 {
            self.held.push(batch.data);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        if !advance_watermark(&mut self.watermark, watermark) {
            return Ok(());
        }
        self.close(Some(watermark), out)
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.close(None, out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::runtime::restore_check::{check_restores, plan, rows_strategy, script, AGGS};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Open sessions per key, closed ones kept for allowed lateness
        /// (late rows extend and merge them), and the watermark.
        #[test]
        fn restores_sessions(
            rows in rows_strategy(137),
            cuts in proptest::collection::vec(0usize..250, 0..12),
            at in proptest::collection::vec(0usize..40, 1..4),
        ) {
            let steps = script(&rows, &cuts);
            for lateness in [0, 4_000] {
                for sql in [
                    format!("SELECT k, tag, window_start, window_end, {AGGS} \
                             FROM SESSION(t, ts, INTERVAL '900 milliseconds') GROUP BY k, tag, window_start, window_end"),
                    "SELECT window_start, window_end, count(*) AS n, sum(v) AS s \
                     FROM SESSION(t, ts, INTERVAL '300 milliseconds') GROUP BY window_start, window_end \
                     HAVING count(*) > 1".into(),
                ] {
                    check_restores(&plan(&sql, lateness), &steps, &at);
                }
            }
        }

        /// SESSION without GROUP BY: the rows held until their session
        /// closes.
        #[test]
        fn restores_held_rows(
            rows in rows_strategy(400),
            cuts in proptest::collection::vec(0usize..250, 0..12),
            at in proptest::collection::vec(0usize..40, 1..4),
        ) {
            let steps = script(&rows, &cuts);
            let sql = "SELECT k, v, window_start, window_end FROM SESSION(t, ts, INTERVAL '300 milliseconds') WHERE v > 0";
            check_restores(&plan(sql, 0), &steps, &at);
        }
    }
}
