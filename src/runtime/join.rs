//! Regular join: each input's rows are kept, chained by key, and a row
//! that arrives on one side is matched against every live row of the
//! other. An input's taken-back row (a delete, or the old row of an
//! update) takes back every match it made.
//!
//! On whole batches: keys are hashed by one key table for both sides (the
//! compact one for a single integer key, DataFusion's otherwise), which
//! numbers each distinct key; each side keeps its rows as they came, in
//! batches, with a chain per key number through them. Matches are
//! gathered with `take` (the arriving rows) and `interleave` (the kept
//! ones), and the ON filter runs on the joined batch.
//!
//! Kept batches that are next to each other are merged as they grow (as a
//! binary counter: a row is copied O(log n) times), so a side holds few
//! batches whatever its input's batch sizes; rows taken back are dropped
//! when they outnumber the live ones.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    make_comparator, Array, ArrayRef, BooleanArray, DynComparator, UInt32Array, UInt8Array,
};
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{
    concat_batches, filter, filter_record_batch, interleave, is_not_null, take,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use serde::{Deserialize, Serialize};

use super::key_table::key_table;
use super::operator::Operator;
use super::state::{damaged, to_meta, StateSnapshot};
use crate::error::{Result, SluiceError};
use crate::plan::JoinNode;
use crate::stream::{Op, StreamBatch};

const NONE: usize = usize::MAX;

/// Rows taken back are dropped once there are more of them than live rows
/// and at least this many.
const COMPACT_AT: usize = 4096;

/// One input's kept rows.
struct Side {
    schema: SchemaRef,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    batches: Vec<RecordBatch>,
    /// The id of each batch's first row (ids count rows over all batches).
    starts: Vec<usize>,
    /// Per row: the row kept before it with the same key, or `NONE`.
    next: Vec<usize>,
    /// Per row: taken back (or never live: a taking-back row itself).
    dead: Vec<bool>,
    /// Per key number: its last kept row, or `NONE`.
    head: Vec<usize>,
    live: usize,
}

impl Side {
    fn new(schema: SchemaRef, keys: Vec<Arc<dyn PhysicalExpr>>) -> Side {
        Side {
            schema,
            keys,
            batches: Vec::new(),
            starts: Vec::new(),
            next: Vec::new(),
            dead: Vec::new(),
            head: Vec::new(),
            live: 0,
        }
    }

    fn rows(&self) -> usize {
        self.next.len()
    }

    /// Row `id` as (batch, row in it).
    fn locate(&self, id: usize) -> (usize, usize) {
        let b = self.starts.partition_point(|&s| s <= id) - 1;
        (b, id - self.starts[b])
    }

    /// Keeps `batch` (its rows start as dead; `link` makes them live).
    fn keep(&mut self, batch: RecordBatch) -> usize {
        let base = self.rows();
        let n = batch.num_rows();
        self.starts.push(base);
        self.batches.push(batch);
        self.next.resize(base + n, NONE);
        self.dead.resize(base + n, true);
        base
    }

    fn link(&mut self, id: usize, group: usize) {
        self.next[id] = self.head[group];
        self.dead[id] = false;
        self.head[group] = id;
        self.live += 1;
    }

    /// Merges the last kept batches while the last is as long as the one
    /// before it. Ids do not change: the batches are next to each other.
    fn merge_tail(&mut self) -> Result<()> {
        while let [.., a, b] = self.batches.as_slice() {
            if b.num_rows() < a.num_rows() {
                break;
            }
            let merged = concat_batches(&self.schema, [a, b])?;
            self.batches.truncate(self.batches.len() - 2);
            self.starts.pop();
            self.batches.push(merged);
        }
        Ok(())
    }

    /// Its live rows, in one batch.
    fn live_rows(&self) -> Result<RecordBatch> {
        let mut parts = Vec::with_capacity(self.batches.len());
        for (b, batch) in self.batches.iter().enumerate() {
            let start = self.starts[b];
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|r| Some(!self.dead[start + r]))
                .collect();
            parts.push(filter_record_batch(batch, &keep)?);
        }
        Ok(concat_batches(&self.schema, &parts)?)
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.starts.clear();
        self.next.clear();
        self.dead.clear();
        self.head.iter_mut().for_each(|h| *h = NONE);
        self.live = 0;
    }

    fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self.next.len() * (std::mem::size_of::<usize>() + 1)
            + self.head.len() * std::mem::size_of::<usize>()
    }
}

/// The input ops a row has: whether it adds a row (insert, update) or
/// takes one back (delete, the old row of an update).
fn adds(ops: Option<&UInt8Array>, row: usize) -> bool {
    ops.is_none_or(|o| matches!(Op::from_u8(o.value(row)), Op::Insert | Op::Update))
}

pub struct JoinOperator {
    join: JoinNode,
    schema: SchemaRef,
    /// Numbers each distinct key, for both sides.
    keys: Box<dyn GroupValues>,
    sides: [Side; 2],
    /// The output is a changelog (an input is updating).
    updating: bool,
    groups: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct JoinMeta {
    left: usize,
    right: usize,
}

impl JoinOperator {
    /// `inputs`: the left and right input's columns; `schema` the joined
    /// rows'; `updating`: an input is updating.
    pub fn new(
        join: JoinNode,
        inputs: [SchemaRef; 2],
        schema: SchemaRef,
        updating: bool,
    ) -> Result<Self> {
        let [left, right] = inputs;
        let key_fields = join
            .left_keys
            .iter()
            .enumerate()
            .map(|(i, k)| Ok(Field::new(format!("k{i}"), k.data_type(&left)?, true)))
            .collect::<Result<Vec<_>>>()?;
        let keys = key_table(&Arc::new(Schema::new(key_fields)), 0)?;
        let sides = [
            Side::new(left, join.left_keys.clone()),
            Side::new(right, join.right_keys.clone()),
        ];
        Ok(JoinOperator {
            join,
            schema,
            keys,
            sides,
            updating,
            groups: Vec::new(),
        })
    }

    /// The rows of `batch` whose keys can match, with their key numbers in
    /// `self.groups` (NULL keys match nothing unless `nulls_equal`).
    fn number(
        &mut self,
        side: usize,
        batch: RecordBatch,
        ops: Option<UInt8Array>,
    ) -> Result<(RecordBatch, Option<UInt8Array>)> {
        let mut keys = self.sides[side]
            .keys
            .iter()
            .map(|k| k.evaluate(&batch)?.into_array(batch.num_rows()))
            .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
        let (batch, ops) = match self.matchable(&keys)? {
            None => (batch, ops),
            Some(mask) => {
                keys = keys
                    .iter()
                    .map(|k| filter(k, &mask))
                    .collect::<std::result::Result<_, _>>()?;
                let ops = ops.map(|o| filter(&o, &mask)).transpose()?;
                let ops = ops.map(|o| UInt8Array::from(o.to_data()));
                (filter_record_batch(&batch, &mask)?, ops)
            }
        };
        self.groups.clear();
        self.keys.intern(&keys, &mut self.groups)?;
        let n = self.keys.len();
        for s in &mut self.sides {
            s.head.resize(n, NONE);
        }
        Ok((batch, ops))
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

    /// Kept row `id` of side `side` equal (every column) to row `row` of
    /// `batch`; `cmp` caches comparators per kept batch.
    fn same_row(
        side: &Side,
        id: usize,
        batch: &RecordBatch,
        row: usize,
        cmp: &mut HashMap<usize, Vec<DynComparator>>,
    ) -> Result<bool> {
        let (b, r) = side.locate(id);
        if let std::collections::hash_map::Entry::Vacant(slot) = cmp.entry(b) {
            let kept = &side.batches[b];
            let made = batch
                .columns()
                .iter()
                .zip(kept.columns())
                .map(|(a, k)| make_comparator(a.as_ref(), k.as_ref(), SortOptions::default()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            slot.insert(made);
        }
        Ok(cmp[&b].iter().all(|c| c(row, r).is_eq()))
    }

    /// Rows of `batch` (ops `ops`) arrive at input `side`: their matches
    /// go to `out`, then they are kept (or take back what they name).
    fn arrive(
        &mut self,
        side: usize,
        batch: RecordBatch,
        ops: Option<UInt8Array>,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let (batch, ops) = self.number(side, batch, ops)?;
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let other = 1 - side;
        let base = self.sides[side].keep(batch.clone());
        let mut probe: Vec<u32> = Vec::new();
        let mut matched: Vec<usize> = Vec::new();
        let mut pair_ops: Vec<u8> = Vec::new();
        let mut cmp = HashMap::new();
        for i in 0..n {
            let g = self.groups[i];
            let add = adds(ops.as_ref(), i);
            let o = &self.sides[other];
            let mut r = o.head[g];
            while r != NONE {
                if !o.dead[r] {
                    probe.push(i as u32);
                    matched.push(r);
                    pair_ops.push(if add { Op::Insert } else { Op::Delete } as u8);
                }
                r = o.next[r];
            }
            let own = &mut self.sides[side];
            if add {
                own.link(base + i, g);
                continue;
            }
            // Take back the newest live row equal to this one.
            let mut r = own.head[g];
            while r != NONE {
                if !own.dead[r] && Self::same_row(own, r, &batch, i, &mut cmp)? {
                    own.dead[r] = true;
                    own.live -= 1;
                    break;
                }
                r = own.next[r];
            }
        }
        self.sides[side].merge_tail()?;
        if !probe.is_empty() {
            self.emit(side, &batch, probe, &matched, pair_ops, out)?;
        }
        self.compact(side)
    }

    /// The joined rows of `batch`'s rows `probe` (arrived at `side`) with
    /// the other side's kept rows `matched`, through the ON filter.
    fn emit(
        &self,
        side: usize,
        batch: &RecordBatch,
        probe: Vec<u32>,
        matched: &[usize],
        pair_ops: Vec<u8>,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let o = &self.sides[1 - side];
        // Only the kept batches the matches are in, renumbered.
        let mut used: Vec<usize> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let refs: Vec<(usize, usize)> = matched
            .iter()
            .map(|&id| {
                let (b, r) = o.locate(id);
                let s = *slot.entry(b).or_insert_with(|| {
                    used.push(b);
                    used.len() - 1
                });
                (s, r)
            })
            .collect();
        let probe = UInt32Array::from(probe);
        let arrived = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &probe, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let kept = (0..o.schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = used
                    .iter()
                    .map(|&b| o.batches[b].column(c).as_ref())
                    .collect();
                interleave(&arrays, &refs)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let columns = if side == 0 {
            [arrived, kept].concat()
        } else {
            [kept, arrived].concat()
        };
        let mut data = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut ops = UInt8Array::from(pair_ops);
        if let Some(f) = &self.join.filter {
            let pass = f.evaluate(&data)?.into_array(data.num_rows())?;
            let pass = pass
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| SluiceError::Internal("a join filter that is not boolean".into()))?;
            data = filter_record_batch(&data, pass)?;
            ops = UInt8Array::from(filter(&ops, pass)?.to_data());
        }
        if data.num_rows() == 0 {
            return Ok(());
        }
        out.push(if self.updating {
            StreamBatch::changelog(data, ops)
        } else {
            StreamBatch::append(data)
        });
        Ok(())
    }

    /// Drops side `side`'s dead rows once they outnumber its live ones.
    fn compact(&mut self, side: usize) -> Result<()> {
        let s = &self.sides[side];
        let dead = s.rows() - s.live;
        if dead < COMPACT_AT || dead <= s.live {
            return Ok(());
        }
        let live = s.live_rows()?;
        self.sides[side].clear();
        self.load(side, live)
    }

    /// Keeps `rows` at side `side` as live rows, matching nothing (a
    /// restore, a compaction).
    fn load(&mut self, side: usize, rows: RecordBatch) -> Result<()> {
        let (rows, _) = self.number(side, rows, None)?;
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let base = self.sides[side].keep(rows);
        for (i, &g) in self.groups.iter().enumerate() {
            self.sides[side].link(base + i, g);
        }
        self.sides[side].merge_tail()
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
        let born = batch.born;
        let from = out.len();
        self.arrive(port, batch.data, batch.ops, out)?;
        for b in &mut out[from..] {
            b.born = born;
        }
        Ok(())
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let rows = self.sides.iter().map(|s| s.live as u64).sum();
        let bytes =
            self.sides.iter().map(|s| s.bytes() as u64).sum::<u64>() + self.keys.size() as u64;
        Some((rows, bytes))
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let [left, right] = [self.sides[0].live_rows()?, self.sides[1].live_rows()?];
        let meta = to_meta(&JoinMeta {
            left: left.num_rows(),
            right: right.num_rows(),
        })?;
        Ok(Some(StateSnapshot::new(meta, vec![left, right])))
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        let meta: JoinMeta = state.meta_as()?;
        let mut batches = state.into_batches();
        for (side, expected) in [(0, meta.left), (1, meta.right)] {
            let rows = batches.next(if side == 0 {
                "the join's left rows"
            } else {
                "the join's right rows"
            })?;
            if rows.num_rows() != expected
                || rows.schema().fields() != self.sides[side].schema.fields()
            {
                return Err(damaged("join rows"));
            }
            self.load(side, rows)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    use datafusion::physical_expr::expressions::Column;

    use super::*;

    fn schema(names: [&str; 2]) -> SchemaRef {
        Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn rows(schema: &SchemaRef, rows: &[(i64, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            ],
        )
        .expect("batch")
    }

    fn join() -> (JoinOperator, SchemaRef, SchemaRef) {
        let (left, right) = (schema(["k", "x"]), schema(["k", "y"]));
        let out = Arc::new(Schema::new(
            [left.fields().to_vec(), right.fields().to_vec()].concat(),
        ));
        let node = JoinNode {
            kind: crate::plan::JoinKind::Inner,
            left_keys: vec![Arc::new(Column::new("k", 0))],
            right_keys: vec![Arc::new(Column::new("k", 0))],
            filter: None,
            nulls_equal: false,
            text: String::new(),
        };
        let op = JoinOperator::new(node, [Arc::clone(&left), Arc::clone(&right)], out, true)
            .expect("join");
        (op, left, right)
    }

    fn changes(batch: RecordBatch, op: Op) -> StreamBatch {
        let ops = UInt8Array::from(vec![op as u8; batch.num_rows()]);
        StreamBatch::changelog(batch, ops)
    }

    /// Taken-back rows are dropped once they outnumber the live ones, and
    /// the one-row batches an input sends are merged as they come: the
    /// join still finds every live row, and only those.
    #[test]
    fn a_side_stays_small_under_churn() {
        let (mut op, left, right) = join();
        let mut out = Vec::new();
        for i in 0..3 * COMPACT_AT as i64 {
            let row = rows(&left, &[(i % 5, i)]);
            op.process_batch_at(0, changes(row.clone(), Op::Insert), &mut out)
                .expect("insert");
            if i % 10 != 0 {
                op.process_batch_at(0, changes(row, Op::Delete), &mut out)
                    .expect("delete");
            }
        }
        assert!(out.is_empty(), "nothing on the right yet");
        let side = &op.sides[0];
        let live = (3 * COMPACT_AT).div_ceil(10);
        assert_eq!(side.live, live);
        assert!(
            side.rows() - side.live <= side.live.max(COMPACT_AT),
            "dead rows dropped"
        );
        assert!(
            side.batches.len() <= 16,
            "{} batches kept",
            side.batches.len()
        );
        op.process_batch_at(1, changes(rows(&right, &[(0, -1)]), Op::Insert), &mut out)
            .expect("probe");
        let matched: usize = out.iter().map(StreamBatch::num_rows).sum();
        // The live rows are those with x % 10 = 0, all of key 0.
        assert_eq!(matched, live);
        for b in &out {
            let x = b.data.column(1).as_primitive::<Int64Type>();
            assert!(x.values().iter().all(|v| v % 10 == 0));
        }
    }
}
