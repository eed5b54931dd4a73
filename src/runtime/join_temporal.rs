//! A temporal join in event time (`JOIN r FOR SYSTEM_TIME AS OF s.ts`):
//! the rows of the versions' side are versions of their join key, each
//! valid from its time until the next one's (of two with the same time,
//! the one that arrived last). A stream row waits until the watermark
//! passes its time — then no version that could be valid at that time is
//! still to come — and goes out once, with the version valid at its time
//! when it passes the ON filter (padded when the join keeps the stream's
//! rows and none does). Both inputs' rows are kept in the join's sides, so
//! checkpoints and compaction are the regular join's.
//!
//! A version stops mattering once the watermark passes the time of a
//! later version of its key: every stream row still to come is at or after
//! the watermark, where the later one is valid. Each side's rows wait in
//! the expiry heap by their time: a stream row is emitted as the watermark
//! passes it, a version then frees the older versions of its key.

use std::cmp::Reverse;

use datafusion::arrow::record_batch::RecordBatch;

use super::JoinOperator;
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::runtime::join_output::{gather_kept, Candidates};
use crate::stream::StreamBatch;

impl JoinOperator {
    /// Which input holds the versions.
    fn versions(&self) -> Result<usize> {
        self.temporal
            .map(|t| t.versions)
            .ok_or_else(|| SluiceError::Internal("a join that is not temporal".into()))
    }

    /// Keeps `rows` of `side` (numbered in `self.groups`, none late and
    /// none with a NULL key or time) until the watermark passes their time.
    pub(super) fn hold(&mut self, side: usize, rows: RecordBatch) -> Result<()> {
        let Some(times) = self.times(side, &rows)? else {
            return Err(SluiceError::Internal(
                "a temporal join without times".into(),
            ));
        };
        let base = self.sides[side].keep_live(rows, &self.groups);
        if side == self.versions()? {
            self.version_times.resize(base, i64::MIN);
            self.version_times.extend_from_slice(times.values());
        }
        self.schedule(side, base, &times);
        self.sides[side].merge_tail()
    }

    /// The watermark reached `w`: the stream rows before it go out with
    /// the version valid at their time, then the versions a later one
    /// before `w` replaces are freed.
    pub(super) fn settle(&mut self, w: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        let versions = self.versions()?;
        let stream = 1 - versions;
        // The stream rows the watermark passed, in arrival order.
        let mut due = Vec::new();
        while let Some(&Reverse((at, id, g))) = self.expiry[stream].peek() {
            if at >= w {
                break;
            }
            self.expiry[stream].pop();
            if !self.sides[stream].is_dead(id) {
                due.push((id, g, at));
            }
        }
        due.sort_unstable();
        if !due.is_empty() {
            let mut candidates = Candidates::default();
            for (i, &(_, g, t)) in due.iter().enumerate() {
                // The newest version at or before `t` (the chain is newest
                // first: of equal times the last arrived wins).
                let mut best: Option<(i64, usize)> = None;
                for r in self.sides[versions].live_of(g) {
                    let v = self.version_times[r];
                    if v <= t && best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, r));
                    }
                }
                if let Some((_, r)) = best {
                    candidates.probe.push(i as u32);
                    candidates.matched.push(r);
                }
            }
            let side = &self.sides[stream];
            let batches: Vec<&RecordBatch> = side.batches.iter().collect();
            let refs: Vec<(usize, usize)> = due
                .iter()
                .map(|&(id, _, _)| {
                    let (b, r) = side.locate(id);
                    (b + 1, r)
                })
                .collect();
            let columns = gather_kept(&side.schema, &batches, &refs)?;
            let rows = RecordBatch::try_new(std::sync::Arc::clone(&side.schema), columns)?;
            self.match_once(stream, &rows, &candidates, out)?;
            for &(id, _, _) in &due {
                self.sides[stream].kill(id);
            }
        }
        // Each version the watermark passed replaces the older ones of its
        // key.
        let mut freed = 0u64;
        while let Some(&Reverse((at, id, g))) = self.expiry[versions].peek() {
            if at >= w {
                break;
            }
            self.expiry[versions].pop();
            if self.sides[versions].is_dead(id) {
                continue;
            }
            let older: Vec<usize> = self.sides[versions]
                .live_of(g)
                .filter(|&r| {
                    let v = self.version_times[r];
                    r != id && (v < at || (v == at && r < id))
                })
                .collect();
            for r in older {
                self.sides[versions].kill(r);
                freed += 1;
            }
        }
        PipelineMetrics::add(&self.metrics.evicted, freed);
        self.compact()
    }
}
