//! Regular join: each input's rows are kept (`join_side.rs`), chained by
//! key, and a row that arrives on one side is matched against every live
//! row of the other. An input's taken-back row (a delete, or the old row
//! of an update) takes back every match it made.
//!
//! On whole batches: keys are hashed by one key table for both sides (the
//! compact one for a single integer key, DataFusion's otherwise), which
//! numbers each distinct key. An arriving batch's candidate pairs are
//! gathered with `take` (its rows) and `interleave` (the kept ones, only
//! over the kept batches they touch), and the ON filter runs on them as
//! one joined batch.
//!
//! An outer join also emits a preserved side's row that matches nothing,
//! with NULLs for the other side's columns (a padded row), and takes it
//! back when the row's first match arrives (and emits it again when its
//! last match goes). Each preserved row counts its matches for that; a
//! preserved row whose key is NULL matches nothing and passes padded.
//!
//! An interval join (the ON bounds the inputs' event times against each
//! other) frees a row once the watermark shows nothing still to come can
//! match it, and only then emits a preserved row that never matched,
//! padded: its output is append-only. A row behind the watermark when it
//! arrives is late: dropped and counted, as a window drops it.
//!
//! This file holds the matching; `join_time.rs` the times (late rows,
//! freeing, an interval's bounds), `join_temporal.rs` the temporal join,
//! `join_lookup.rs` the lookup join, `join_rescale.rs` re-splitting the
//! state for another parallelism.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array, UInt8Array};
use datafusion::arrow::compute::kernels::boolean::{and, not};
use datafusion::arrow::compute::{filter, filter_record_batch, is_not_null, take};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use serde::{Deserialize, Serialize};

use super::join_output::{gather_kept, gather_pairs, Candidates, Piece};
use super::join_side::{Side, NONE};
use super::key_table::key_table;
use super::operator::Operator;
use super::state::{damaged, to_meta, StateSnapshot};
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::{Interval, JoinKind, JoinNode, Temporal};
use crate::stream::{Op, StreamBatch};

/// A side's rows taken back are dropped once there are more of them than
/// live rows and at least this many.
const COMPACT_AT: usize = 4096;

/// Whether row `row` adds a row (insert, update) rather than taking one
/// back (delete, the old row of an update).
fn adds(ops: Option<&UInt8Array>, row: usize) -> bool {
    ops.is_none_or(|o| matches!(Op::from_u8(o.value(row)), Op::Insert | Op::Update))
}

fn op_of(add: bool) -> Op {
    if add {
        Op::Insert
    } else {
        Op::Delete
    }
}

pub struct JoinOperator {
    join: JoinNode,
    schema: SchemaRef,
    /// Numbers each distinct key, for both sides.
    keys: Box<dyn GroupValues>,
    sides: [Side; 2],
    /// Which sides an outer join preserves (left, right).
    preserve: [bool; 2],
    /// A semi or anti join: the side it emits, and whether it is anti.
    exists: Option<(usize, bool)>,
    /// A candidate pair's columns (the left input's, then the right's),
    /// which the ON filter reads.
    pairs: SchemaRef,
    /// The output is a changelog (an input is updating, or the join is
    /// outer).
    updating: bool,
    groups: Vec<usize>,
    key_schema: SchemaRef,
    /// An interval join: its bounds, the watermark, and per side its kept
    /// rows `(at, id)` by when the watermark frees them, in buckets of
    /// `BUCKET_MS`.
    interval: Option<Interval>,
    watermark: Option<i64>,
    buckets: [BTreeMap<i64, Vec<(i64, usize)>>; 2],
    /// An interval join that checks its bounds itself
    /// (`Interval::checked`): each kept row's time, by id.
    kept_times: [Vec<i64>; 2],
    /// A temporal join's kept rows by when the watermark passes their time
    /// `(at, id, key number)`.
    expiry: [BinaryHeap<Reverse<(i64, usize, usize)>>; 2],
    /// A temporal join in event time (`join_temporal.rs`), and the time of
    /// each kept row of its versions' side.
    temporal: Option<Temporal>,
    version_times: Vec<i64>,
    metrics: Arc<PipelineMetrics>,
    /// A lookup join: the input that is looked up (see `JoinNode::lookup`).
    lookup: Option<usize>,
    /// A lookup join whose looked-up input is bounded, until it ended: the
    /// stream's rows wait in their side.
    loading: bool,
    /// `state_ttl`: per side, the kept rows' ids by when they are
    /// forgotten — one entry per kept batch `(deadline, first id, end)`,
    /// in arrival order (ids grow with arrival).
    ttl: Option<Duration>,
    forget: [VecDeque<(Instant, usize, usize)>; 2],
}

#[derive(Serialize, Deserialize)]
struct JoinMeta {
    left: usize,
    right: usize,
    /// Match counts follow the rows (an outer join).
    #[serde(default)]
    counted: bool,
    /// An interval join's watermark.
    #[serde(default)]
    watermark: Option<i64>,
}

impl JoinOperator {
    /// `inputs`: the left and right input's columns; `schema` the joined
    /// rows'; `updating`: its output is a changelog.
    pub fn new(
        join: JoinNode,
        inputs: [SchemaRef; 2],
        schema: SchemaRef,
        updating: bool,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<Self> {
        let [left, right] = inputs;
        let key_fields = join
            .left_keys
            .iter()
            .enumerate()
            .map(|(i, k)| Ok(Field::new(format!("k{i}"), k.data_type(&left)?, true)))
            .collect::<Result<Vec<_>>>()?;
        let key_schema = Arc::new(Schema::new(key_fields));
        let keys = key_table(&key_schema, 0)?;
        let preserve = match join.kind {
            JoinKind::Left => [true, false],
            JoinKind::Right => [false, true],
            JoinKind::Full => [true, true],
            _ => [false, false],
        };
        let exists = join.kind.exists();
        let interval = join.interval;
        let temporal = join.temporal;
        let lookup = join.lookup;
        let loading = lookup.is_some() && join.lookup_loads_first;
        let ttl = join
            .state_ttl
            .map(|ms| Duration::from_millis(ms.max(0) as u64));
        // Which sides count their matches.
        let counted = match exists {
            Some((side, _)) => [side == 0, side == 1],
            None if temporal.is_some() => [false, false],
            None => preserve,
        };
        let pairs = Arc::new(Schema::new(
            [left.fields().to_vec(), right.fields().to_vec()].concat(),
        ));
        let sides = [
            Side::new(left, join.left_keys.clone(), counted[0]),
            Side::new(right, join.right_keys.clone(), counted[1]),
        ];
        Ok(JoinOperator {
            join,
            schema,
            keys,
            sides,
            preserve,
            exists,
            pairs,
            updating,
            groups: Vec::new(),
            key_schema,
            interval,
            watermark: None,
            buckets: [BTreeMap::new(), BTreeMap::new()],
            kept_times: [Vec::new(), Vec::new()],
            expiry: [BinaryHeap::new(), BinaryHeap::new()],
            temporal,
            version_times: Vec::new(),
            metrics,
            ttl,
            forget: [VecDeque::new(), VecDeque::new()],
            lookup,
            loading,
        })
    }

    /// `state_ttl`: kept rows `first..end` of `side` are forgotten `ttl`
    /// from now.
    fn remember(&mut self, side: usize, first: usize, end: usize) {
        if let (Some(ttl), true) = (self.ttl, first < end) {
            self.forget[side].push_back((Instant::now() + ttl, first, end));
        }
    }

    /// `state_ttl`: forgets the kept rows whose time is up (nothing is
    /// emitted for them).
    fn forget_expired(&mut self) -> Result<()> {
        if self.ttl.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let mut forgot = false;
        for side in 0..2 {
            while let Some(&(deadline, first, end)) = self.forget[side].front() {
                if deadline > now {
                    break;
                }
                self.forget[side].pop_front();
                let live = self.sides[side].live;
                for id in first..end {
                    self.sides[side].kill(id);
                }
                PipelineMetrics::add(&self.metrics.evicted, (live - self.sides[side].live) as u64);
                forgot = true;
            }
        }
        if forgot {
            self.compact()?;
        }
        Ok(())
    }

    /// Rows `pieces` (all `Piece::Kept`) of `side`: padded, or as they are
    /// (an anti join).
    fn emit_kept(
        &self,
        side: usize,
        pieces: &[(Piece, Op)],
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        if pieces.is_empty() {
            return Ok(());
        }
        // As if they met an empty batch of the other side.
        let other = 1 - side;
        let none = RecordBatch::new_empty(Arc::clone(&self.sides[other].schema));
        out.push(self.assemble(other, &none, &Candidates::default(), pieces)?);
        Ok(())
    }

    /// Whether it counts matches (an outer, semi or anti join; not a
    /// temporal one, whose stream rows are matched once).
    fn counts(&self) -> bool {
        self.temporal.is_none() && (self.preserve.iter().any(|p| *p) || self.exists.is_some())
    }

    /// Whether rows of `side` that match nothing are emitted as they are
    /// (padded, for an outer join): an outer join's preserved side, an
    /// anti join's.
    fn emits_unmatched(&self, side: usize) -> bool {
        self.preserve[side] || self.exists == Some((side, true))
    }

    /// The rows of `batch` whose keys can match, with their key numbers in
    /// `self.groups`; and the rows whose key is NULL (they match nothing,
    /// unless `nulls_equal`), with their ops.
    #[allow(clippy::type_complexity)]
    fn number(
        &mut self,
        side: usize,
        batch: RecordBatch,
        ops: Option<UInt8Array>,
    ) -> Result<(
        RecordBatch,
        Option<UInt8Array>,
        Option<(RecordBatch, Option<UInt8Array>)>,
    )> {
        let mut keys = self.sides[side]
            .keys
            .iter()
            .map(|k| k.evaluate(&batch)?.into_array(batch.num_rows()))
            .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
        let ops_where = |ops: &Option<UInt8Array>, mask: &BooleanArray| -> Result<_> {
            Ok(ops
                .as_ref()
                .map(|o| filter(o, mask))
                .transpose()?
                .map(|o| UInt8Array::from(o.to_data())))
        };
        let mut matchable = self.matchable(&keys)?;
        if let Some(times) = self.times(side, &batch)?.filter(|t| t.null_count() > 0) {
            let valid = is_not_null(&times)?;
            matchable = Some(match matchable {
                None => valid,
                Some(m) => and(&m, &valid)?,
            });
        }
        let (batch, ops, unkeyed) = match matchable {
            None => (batch, ops, None),
            Some(mask) => {
                keys = keys
                    .iter()
                    .map(|k| filter(k, &mask))
                    .collect::<std::result::Result<_, _>>()?;
                let nulls = not(&mask)?;
                let unkeyed = (
                    filter_record_batch(&batch, &nulls)?,
                    ops_where(&ops, &nulls)?,
                );
                let ops = ops_where(&ops, &mask)?;
                (filter_record_batch(&batch, &mask)?, ops, Some(unkeyed))
            }
        };
        self.groups.clear();
        self.keys.intern(&keys, &mut self.groups)?;
        let n = self.keys.len();
        for s in &mut self.sides {
            s.head.resize(n, NONE);
        }
        Ok((batch, ops, unkeyed))
    }

    /// Which rows have no NULL key, when some have one.
    fn matchable(&self, keys: &[ArrayRef]) -> Result<Option<BooleanArray>> {
        if self.join.nulls_equal {
            return Ok(None);
        }
        let mut mask: Option<BooleanArray> = None;
        for k in keys.iter().filter(|k| k.null_count() > 0) {
            let valid = is_not_null(k.as_ref())?;
            mask = Some(match mask {
                None => valid,
                Some(m) => and(&m, &valid)?,
            });
        }
        Ok(mask)
    }

    /// Rows of `batch` (ops `ops`) arrive at input `side`: they are kept
    /// (or take back what they name), and their matches go to `out`.
    fn arrive(
        &mut self,
        side: usize,
        batch: RecordBatch,
        ops: Option<UInt8Array>,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let (batch, ops) = self.on_time(side, batch, ops)?;
        let (batch, ops, unkeyed) = self.number(side, batch, ops)?;
        if let Some((rows, ops)) =
            unkeyed.filter(|(r, _)| self.emits_unmatched(side) && r.num_rows() > 0)
        {
            // Rows that match nothing: as they are (padded for an outer
            // join), with their own ops.
            let pieces: Vec<(Piece, Op)> = (0..rows.num_rows())
                .map(|i| (Piece::Arrived(i), op_of(adds(ops.as_ref(), i))))
                .collect();
            out.push(self.assemble(side, &rows, &Candidates::default(), &pieces)?);
        }
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let other = 1 - side;
        if self.lookup == Some(other) {
            if self.loading {
                // Kept until the looked-up input is read whole.
                self.sides[side].keep_live(batch, &self.groups);
                return self.sides[side].merge_tail();
            }
            return self.look_up(side, &batch, out);
        }
        if self.temporal.is_some() {
            // Nothing is matched before the watermark passes it.
            self.hold(side, batch)?;
            return self.compact();
        }
        let base = self.sides[side].keep(batch.clone());
        let times = self.times(side, &batch)?;
        if let Some(times) = &times {
            self.schedule(side, base, times);
        }
        self.remember(side, base, base + n);
        let mut candidates = Candidates::default();
        // Per arriving row: whether it adds, and (taking back) which kept
        // row it took back.
        let mut added = Vec::with_capacity(n);
        let mut took = Vec::with_capacity(n);
        let mut cmp = HashMap::new();
        // The looked-up side of a lookup join is kept, and emits nothing.
        let emits = self.lookup != Some(side);
        for i in 0..n {
            let g = self.groups[i];
            let add = adds(ops.as_ref(), i);
            added.push(add);
            if add {
                self.sides[side].link(base + i, g);
                took.push(NONE);
            } else {
                match self.sides[side].take_back(g, &batch, i, &mut cmp)? {
                    Some(id) => took.push(id),
                    // It takes back a row it never sent: nothing to undo.
                    None => {
                        took.push(NONE);
                        continue;
                    }
                }
            }
            if !emits {
                continue;
            }
            for r in self.sides[other].live_of(g) {
                candidates.probe.push(i as u32);
                candidates.matched.push(r);
            }
        }
        self.sides[side].merge_tail()?;
        if !emits {
            return self.compact();
        }
        if let (Some(i), Some(times)) = (self.interval.filter(|i| i.checked), &times) {
            candidates = self.within(side, i, times, candidates);
        }
        if !candidates.probe.is_empty() || self.counts() {
            let pass = self.pass(side, &batch, &candidates)?;
            if self.counts() {
                let pieces = self.count(side, base, &added, &took, &candidates, &pass);
                if !pieces.is_empty() {
                    out.push(self.assemble(side, &batch, &candidates, &pieces)?);
                }
            } else {
                let pieces: Vec<(Piece, Op)> = (0..candidates.probe.len())
                    .filter(|&c| pass.as_ref().is_none_or(|p| p.value(c)))
                    .map(|c| (Piece::Pair(c), op_of(added[candidates.probe[c] as usize])))
                    .collect();
                if !pieces.is_empty() {
                    out.push(self.assemble(side, &batch, &candidates, &pieces)?);
                }
            }
        }
        self.compact()
    }

    /// Which candidate pairs pass the ON filter (`None`: all of them).
    fn pass(
        &self,
        side: usize,
        batch: &RecordBatch,
        candidates: &Candidates,
    ) -> Result<Option<BooleanArray>> {
        let Some(f) = &self.join.filter else {
            return Ok(None);
        };
        if candidates.probe.is_empty() {
            return Ok(None);
        }
        let pieces: Vec<(Piece, Op)> = (0..candidates.probe.len())
            .map(|c| (Piece::Pair(c), Op::Insert))
            .collect();
        let joined = gather_pairs(
            side,
            batch,
            &self.sides[1 - side],
            candidates,
            &pieces,
            &self.pairs,
        )?;
        let pass = f.evaluate(&joined)?.into_array(joined.num_rows())?;
        let pass = pass
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| SluiceError::Internal("a join filter that is not boolean".into()))?;
        // NULL is not a match.
        Ok(Some(match pass.nulls() {
            Some(_) => pass.iter().map(|v| Some(v == Some(true))).collect(),
            None => pass.clone(),
        }))
    }

    /// Whether a row of `side` with `count` matches is emitted on its own
    /// (padded with NULLs for an outer join): an outer join's preserved or
    /// an anti join's row without a match, a semi join's row with one.
    fn shown(&self, side: usize, count: u32) -> bool {
        if self.interval.is_some() {
            // A row without a match is emitted once, when freed; a semi
            // join's row at its first match (matches only come).
            self.exists == Some((side, false)) && count > 0
        } else if self.emits_unmatched(side) {
            count == 0
        } else {
            self.exists == Some((side, false)) && count > 0
        }
    }

    /// An outer, semi or anti join's output for an arriving batch, in
    /// order: for each arriving row, its matches (joins that emit pairs),
    /// and the rows of either side that start or stop being shown on their
    /// own as their match counts change (kept up to date here).
    fn count(
        &mut self,
        side: usize,
        base: usize,
        added: &[bool],
        took: &[usize],
        candidates: &Candidates,
        pass: &Option<BooleanArray>,
    ) -> Vec<(Piece, Op)> {
        let other = 1 - side;
        let pairs = self.exists.is_none();
        let mut pieces = Vec::new();
        let mut c = 0;
        for (i, &add) in added.iter().enumerate() {
            let mut found = 0u32;
            while c < candidates.probe.len() && candidates.probe[c] as usize == i {
                if pass.as_ref().is_none_or(|p| p.value(c)) {
                    let r = candidates.matched[c];
                    // The kept row's own line, when its count changes it:
                    // a row taken back goes before the pair, one brought
                    // back after it.
                    let mut change = None;
                    if self.sides[other].counted() {
                        let before = self.sides[other].matches[r];
                        let after = if add {
                            before + 1
                        } else {
                            before.saturating_sub(1)
                        };
                        self.sides[other].matches[r] = after;
                        let (was, now) = (self.shown(other, before), self.shown(other, after));
                        if was != now {
                            change = Some((Piece::Kept(r), op_of(now)));
                        }
                    }
                    if let Some(x @ (_, Op::Delete)) = change {
                        pieces.push(x);
                    }
                    if pairs {
                        pieces.push((Piece::Pair(c), op_of(add)));
                    }
                    if let Some(x @ (_, Op::Insert)) = change {
                        pieces.push(x);
                    }
                    found += 1;
                }
                c += 1;
            }
            if !self.sides[side].counted() {
                continue;
            }
            if add {
                self.sides[side].matches[base + i] = found;
                if self.shown(side, found) {
                    pieces.push((Piece::Arrived(i), Op::Insert));
                }
            } else if took[i] != NONE && self.shown(side, self.sides[side].matches[took[i]]) {
                pieces.push((Piece::Arrived(i), Op::Delete));
            }
        }
        pieces
    }

    /// The output rows `pieces` of a batch arrived at `side`: pairs of
    /// candidates and padded rows of either side, or (a semi or anti
    /// join) rows of the side it emits.
    fn assemble(
        &self,
        side: usize,
        batch: &RecordBatch,
        candidates: &Candidates,
        pieces: &[(Piece, Op)],
    ) -> Result<StreamBatch> {
        let columns = match self.exists {
            Some((emitted, _)) => {
                let rows = &self.sides[emitted];
                let refs: Vec<(usize, usize)> = pieces
                    .iter()
                    .map(|(p, _)| match *p {
                        Piece::Kept(id) => rows.locate(id),
                        Piece::Arrived(i) | Piece::Pair(i) => (i, 0),
                    })
                    .collect();
                if emitted == side {
                    let idx =
                        UInt32Array::from(refs.iter().map(|r| r.0 as u32).collect::<Vec<_>>());
                    batch
                        .columns()
                        .iter()
                        .map(|c| take(c.as_ref(), &idx, None))
                        .collect::<std::result::Result<Vec<_>, _>>()?
                } else {
                    let batches: Vec<&RecordBatch> = rows.batches.iter().collect();
                    let refs: Vec<(usize, usize)> = refs.iter().map(|(b, r)| (b + 1, *r)).collect();
                    gather_kept(&rows.schema, &batches, &refs)?
                }
            }
            None => gather_pairs(
                side,
                batch,
                &self.sides[1 - side],
                candidates,
                pieces,
                &self.schema,
            )?
            .columns()
            .to_vec(),
        };
        let data = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(if self.updating {
            let ops = UInt8Array::from(pieces.iter().map(|(_, op)| *op as u8).collect::<Vec<_>>());
            StreamBatch::changelog(data, ops)
        } else {
            StreamBatch::append(data)
        })
    }

    /// Drops the dead rows once they outnumber the live ones: both sides
    /// are rebuilt from their live rows, with a fresh key table (keys no
    /// live row has are forgotten).
    fn compact(&mut self) -> Result<()> {
        let live: usize = self.sides.iter().map(|s| s.live).sum();
        let rows: usize = self.sides.iter().map(|s| s.rows()).sum();
        if rows - live < COMPACT_AT || rows - live <= live {
            return Ok(());
        }
        let kept = [self.sides[0].live_rows()?, self.sides[1].live_rows()?];
        // Live rows keep their order: renumbered, a batch's are still
        // next to each other.
        for side in 0..2 {
            let mut next = 0;
            let s = &self.sides[side];
            self.forget[side] = self.forget[side]
                .iter()
                .filter_map(|&(deadline, first, end)| {
                    let live = (first..end).filter(|&id| !s.is_dead(id)).count();
                    let renumbered = (deadline, next, next + live);
                    next += live;
                    (live > 0).then_some(renumbered)
                })
                .collect();
        }
        self.keys = key_table(&self.key_schema, 0)?;
        self.version_times.clear();
        for side in 0..2 {
            self.sides[side].clear();
            self.sides[side].head.clear();
            self.expiry[side].clear();
            self.buckets[side].clear();
            self.kept_times[side].clear();
        }
        for (side, (rows, counts)) in kept.into_iter().enumerate() {
            self.load(side, rows, counts)?;
        }
        Ok(())
    }

    /// Keeps `rows` at side `side` as live rows (with their match counts),
    /// matching nothing: a restore, a compaction.
    fn load(&mut self, side: usize, rows: RecordBatch, counts: Option<UInt32Array>) -> Result<()> {
        let (rows, _, unkeyed) = self.number(side, rows, None)?;
        if unkeyed.is_some_and(|(r, _)| r.num_rows() > 0) {
            return Err(damaged("join rows with a NULL key"));
        }
        if rows.num_rows() == 0 {
            return Ok(());
        }
        if self.temporal.is_some() {
            return self.hold(side, rows);
        }
        let times = self.times(side, &rows)?;
        let base = self.sides[side].keep_live(rows, &self.groups);
        if let Some(times) = times {
            self.schedule(side, base, &times);
        }
        let s = &mut self.sides[side];
        if let (true, Some(counts)) = (s.counted(), counts) {
            if counts.len() != s.rows() - base {
                return Err(damaged("join match counts"));
            }
            s.matches[base..].copy_from_slice(counts.values());
        }
        s.merge_tail()
    }
}

impl Operator for JoinOperator {
    fn name(&self) -> &'static str {
        "join"
    }

    fn detail(&self) -> String {
        self.join.text.clone()
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.process_batch_at(0, batch, out)
    }

    fn process_batch_at(
        &mut self,
        port: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        if port > 1 {
            return Err(SluiceError::Internal(format!("a join has no input {port}")));
        }
        self.forget_expired()?;
        let born = batch.born;
        let from = out.len();
        self.arrive(port, batch.data, batch.ops, out)?;
        for b in &mut out[from..] {
            b.born = born;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.forget_expired()?;
        if (self.interval.is_none() && self.temporal.is_none())
            || self.watermark.is_some_and(|w| watermark <= w)
        {
            return Ok(());
        }
        self.watermark = Some(watermark);
        if self.temporal.is_some() {
            return self.settle(watermark, out);
        }
        self.expire(watermark, out)
    }

    fn on_input_end(&mut self, port: usize, out: &mut Vec<StreamBatch>) -> Result<()> {
        if self.loading && self.lookup == Some(port) {
            self.loaded(out)?;
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        if self.loading {
            self.loaded(out)?;
        }
        // Nothing more comes: an interval join's preserved rows that never
        // matched are final, a temporal join's versions too.
        if self.temporal.is_some() {
            self.settle(i64::MAX, out)?;
        } else if self.interval.is_some() {
            self.expire(i64::MAX, out)?;
        }
        Ok(())
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let rows = self.sides.iter().map(|s| s.live as u64).sum();
        let bytes =
            self.sides.iter().map(|s| s.bytes() as u64).sum::<u64>() + self.keys.size() as u64;
        Some((rows, bytes))
    }

    fn input_state(&self) -> Vec<(u64, u64)> {
        self.sides
            .iter()
            .map(|s| (s.live as u64, s.bytes() as u64))
            .collect()
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let (left, left_counts) = self.sides[0].live_rows()?;
        let (right, right_counts) = self.sides[1].live_rows()?;
        let meta = to_meta(&JoinMeta {
            left: left.num_rows(),
            right: right.num_rows(),
            counted: self.counts(),
            watermark: self.watermark,
        })?;
        let mut batches = vec![left, right];
        for counts in [left_counts, right_counts] {
            let counts = counts.unwrap_or_else(|| UInt32Array::from(Vec::<u32>::new()));
            batches.push(RecordBatch::try_from_iter([(
                "matches",
                Arc::new(counts) as ArrayRef,
            )])?);
        }
        Ok(Some(StateSnapshot::new(meta, batches)))
    }

    fn rescale(
        &self,
        states: Vec<StateSnapshot>,
        router: &super::rescale::Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        self.resplit(states, router)
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        let meta: JoinMeta = state.meta_as()?;
        if meta.counted != self.counts() {
            return Err(damaged("join kind"));
        }
        self.watermark = meta.watermark;
        let mut batches = state.into_batches();
        let left = batches.next("the join's left rows")?;
        let right = batches.next("the join's right rows")?;
        let mut counts = [None, None];
        for c in &mut counts {
            let b = batches.next("the join's match counts")?;
            *c = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .filter(|a| !a.is_empty())
                .cloned();
        }
        let [left_counts, right_counts] = counts;
        for (side, rows, expected, counts) in [
            (0, left, meta.left, left_counts),
            (1, right, meta.right, right_counts),
        ] {
            if rows.num_rows() != expected
                || rows.schema().fields() != self.sides[side].schema.fields()
            {
                return Err(damaged("join rows"));
            }
            self.load(side, rows, counts)?;
            // `state_ttl` starts afresh for restored rows.
            let end = self.sides[side].rows();
            self.remember(side, 0, end);
        }
        Ok(())
    }
}

#[path = "join_lookup.rs"]
mod lookup;
#[path = "join_rescale.rs"]
mod rescale;
#[path = "join_temporal.rs"]
mod temporal;
#[path = "join_time.rs"]
mod time;

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
