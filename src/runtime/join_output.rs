//! A join's output rows for a batch: pairs of an arriving row with a kept
//! one, and rows padded with NULLs for the other side, gathered on whole
//! columns (`take` for the arriving rows when there is no padding,
//! `interleave` for the rest, over only the kept batches the rows are in).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, UInt32Array};
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::join_side::Side;
use crate::error::Result;
use crate::stream::Op;

/// One row of an outer join's output for an arriving batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Piece {
    /// Candidate pair `c` (arriving row `probe[c]`, kept row `matched[c]`).
    Pair(usize),
    /// Arriving row `i`, padded.
    Arrived(usize),
    /// The other side's kept row `id`, padded.
    Kept(usize),
}

/// An arriving batch's candidate pairs: arriving row `probe[c]` with the
/// other side's kept row `matched[c]`.
#[derive(Default)]
pub(super) struct Candidates {
    pub(super) probe: Vec<u32>,
    pub(super) matched: Vec<usize>,
}

/// Pairs and padded rows `pieces` of `batch`, arrived at `side`, with
/// the other side's kept rows `o`, as a batch of `schema` (the left
/// input's columns, then the right's).
pub(super) fn gather_pairs(
    side: usize,
    batch: &RecordBatch,
    o: &Side,
    candidates: &Candidates,
    pieces: &[(Piece, Op)],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    // Only the kept batches the rows are in, renumbered from 1 (0 is a
    // row of NULLs).
    let mut used: Vec<usize> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    let mut kept_at = |id: usize| -> (usize, usize) {
        let (b, r) = o.locate(id);
        let s = *slot.entry(b).or_insert_with(|| {
            used.push(b);
            used.len()
        });
        (s, r)
    };
    let mut arrived_refs = Vec::with_capacity(pieces.len());
    let mut kept_refs = Vec::with_capacity(pieces.len());
    for (piece, _) in pieces {
        match *piece {
            Piece::Pair(c) => {
                arrived_refs.push((1, candidates.probe[c] as usize));
                kept_refs.push(kept_at(candidates.matched[c]));
            }
            Piece::Arrived(i) => {
                arrived_refs.push((1, i));
                kept_refs.push((0, 0));
            }
            Piece::Kept(id) => {
                arrived_refs.push((0, 0));
                kept_refs.push(kept_at(id));
            }
        }
    }
    let padded = pieces.iter().any(|(p, _)| !matches!(p, Piece::Pair(_)));
    let arrived = if padded {
        gather(batch.columns(), &arrived_refs)?
    } else {
        // Pairs only: a plain take.
        let idx = UInt32Array::from(
            arrived_refs
                .iter()
                .map(|(_, r)| *r as u32)
                .collect::<Vec<_>>(),
        );
        batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    let kept_batches: Vec<&RecordBatch> = used.iter().map(|&b| &o.batches[b]).collect();
    let kept = gather_kept(&o.schema, &kept_batches, &kept_refs)?;
    let columns = if side == 0 {
        [arrived, kept].concat()
    } else {
        [kept, arrived].concat()
    };
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// `columns` of one batch at `refs` (batch 1 is them, batch 0 a row of
/// NULLs).
pub(super) fn gather(columns: &[ArrayRef], refs: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
    columns
        .iter()
        .map(|c| {
            let nulls = new_null_array(c.data_type(), 1);
            Ok(interleave(&[nulls.as_ref(), c.as_ref()], refs)?)
        })
        .collect()
}

/// The kept rows at `refs` (batch 0 is a row of NULLs, batch `k` is
/// `batches[k - 1]`), with `schema`'s columns.
pub(super) fn gather_kept(
    schema: &SchemaRef,
    batches: &[&RecordBatch],
    refs: &[(usize, usize)],
) -> Result<Vec<ArrayRef>> {
    (0..schema.fields().len())
        .map(|c| {
            let nulls = new_null_array(schema.field(c).data_type(), 1);
            let mut arrays: Vec<&dyn Array> = vec![nulls.as_ref()];
            arrays.extend(batches.iter().map(|b| b.column(c).as_ref()));
            Ok(interleave(&arrays, refs)?)
        })
        .collect()
}
