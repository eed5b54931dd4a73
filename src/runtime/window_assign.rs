//! Window assignment: [`assign`] adds `window_start` / `window_end` to
//! rows (one row per window for HOP; the row's own `[ts, ts + gap)` for
//! SESSION, merged later by `session.rs`) and drops rows behind the
//! watermark or without an event time. It runs as a stateless stage, before
//! an exchange when there is one, so HOP copies rows after the split.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::Result;
use crate::plan::WindowKind;

/// Rows dropped while assigning windows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Behind the watermark.
    pub late: u64,
    /// Without an event time.
    pub no_time: u64,
}

pub(crate) fn millis(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Int64)?)
}

/// Adds the window columns to `batch` (whose schema is the source's), keeping
/// only rows at or after `watermark`; with `keep`, produces just those of
/// its columns and the window's (`schema`: what it produces).
pub fn assign(
    batch: &RecordBatch,
    kind: WindowKind,
    time_column: usize,
    schema: &SchemaRef,
    watermark: Option<i64>,
    keep: Option<&[usize]>,
) -> Result<(RecordBatch, Dropped)> {
    let ts = millis(batch.column(time_column))?;
    let ts = ts.as_primitive::<Int64Type>();
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut starts = Vec::with_capacity(batch.num_rows());
    let mut ends = Vec::with_capacity(batch.num_rows());
    let mut dropped = Dropped::default();
    for (i, t) in ts.iter().enumerate() {
        let Some(t) = t else {
            dropped.no_time += 1;
            continue;
        };
        if watermark.is_some_and(|w| t < w) {
            dropped.late += 1;
            continue;
        }
        match kind {
            WindowKind::Tumble { size } => {
                let s = t - t.rem_euclid(size);
                rows.push(i as u32);
                starts.push(s);
                ends.push(s + size);
            }
            WindowKind::Hop { slide, size } => {
                let mut s = t - t.rem_euclid(slide);
                while s > t - size {
                    rows.push(i as u32);
                    starts.push(s);
                    ends.push(s + size);
                    s -= slide;
                }
            }
            WindowKind::Session { gap } => {
                rows.push(i as u32);
                starts.push(t);
                ends.push(t + gap);
            }
        }
    }
    // Every row once, in order (a tumbling window or a session with
    // nothing dropped): the batch's own columns, not a copy.
    let copy = rows.len() != batch.num_rows() || matches!(kind, WindowKind::Hop { .. });
    let rows = UInt32Array::from(rows);
    let width = batch.num_columns();
    let column = |c: usize| -> Result<ArrayRef> {
        let source = batch.column(c);
        Ok(if copy {
            take(source, &rows, None)?
        } else {
            Arc::clone(source)
        })
    };
    let starts: ArrayRef = Arc::new(TimestampMillisecondArray::from(starts));
    let ends: ArrayRef = Arc::new(TimestampMillisecondArray::from(ends));
    let columns = match keep {
        None => {
            let mut columns = (0..width).map(column).collect::<Result<Vec<_>>>()?;
            columns.push(starts);
            columns.push(ends);
            columns
        }
        Some(keep) => keep
            .iter()
            .map(|&c| match c.checked_sub(width) {
                None => column(c),
                Some(0) => Ok(Arc::clone(&starts)),
                Some(_) => Ok(Arc::clone(&ends)),
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok((
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)?,
        dropped,
    ))
}
