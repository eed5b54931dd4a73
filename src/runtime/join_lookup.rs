//! A lookup join (`FOR SYSTEM_TIME AS OF` processing time): a stream row
//! is matched once, against the looked-up input's rows of that moment, and
//! not kept; against a bounded looked-up input, stream rows wait (kept in
//! their side, so a checkpoint holds them) until it was read whole.

use datafusion::arrow::record_batch::RecordBatch;

use super::JoinOperator;
use crate::error::Result;
use crate::runtime::join_output::{Candidates, Piece};
use crate::stream::{Op, StreamBatch};

impl JoinOperator {
    /// A lookup join's stream rows `batch` (numbered, all adding) arrive
    /// at `side`: each is matched against the looked-up side's current
    /// rows, once, and not kept; one without a match goes out padded when
    /// the join keeps the stream's rows (LEFT).
    pub(super) fn look_up(
        &self,
        side: usize,
        batch: &RecordBatch,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let other = 1 - side;
        let mut candidates = Candidates::default();
        for (i, &g) in self.groups.iter().enumerate() {
            for r in self.sides[other].live_of(g) {
                candidates.probe.push(i as u32);
                candidates.matched.push(r);
            }
        }
        self.match_once(side, batch, &candidates, out)
    }

    /// Stream rows `batch` at `side` with their `candidates` (in row
    /// order) among the other side's kept rows: each goes out with those
    /// that pass the ON filter, or padded when none does and the join
    /// keeps the stream's rows.
    pub(super) fn match_once(
        &self,
        side: usize,
        batch: &RecordBatch,
        candidates: &Candidates,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let pass = self.pass(side, batch, candidates)?;
        let mut pieces = Vec::with_capacity(candidates.probe.len());
        let mut c = 0;
        for i in 0..batch.num_rows() {
            let mut found = false;
            while c < candidates.probe.len() && candidates.probe[c] as usize == i {
                if pass.as_ref().is_none_or(|p| p.value(c)) {
                    pieces.push((Piece::Pair(c), Op::Insert));
                    found = true;
                }
                c += 1;
            }
            if !found && self.preserve[side] {
                pieces.push((Piece::Arrived(i), Op::Insert));
            }
        }
        if !pieces.is_empty() {
            out.push(self.assemble(side, batch, candidates, &pieces)?);
        }
        Ok(())
    }

    /// A bounded looked-up input was read whole: the stream's rows that
    /// waited are matched against it, once.
    pub(super) fn loaded(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        self.loading = false;
        let Some(looked_up) = self.lookup else {
            return Ok(());
        };
        let stream = 1 - looked_up;
        let (rows, _) = self.sides[stream].live_rows()?;
        self.sides[stream].clear();
        if rows.num_rows() > 0 {
            self.arrive(stream, rows, None, out)?;
        }
        self.compact()
    }
}
