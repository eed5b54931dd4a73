//! The operator trait: one required method; end-of-input is a defaulted hook.

use crate::error::Result;
use crate::stream::StreamBatch;

pub trait Operator: Send {
    fn name(&self) -> &'static str;

    /// Handles one batch, pushing any output batches to `out`.
    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()>;

    /// The watermark advanced to `watermark` (epoch ms): emit what it closes.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }

    /// The input ended: emit whatever is still held.
    fn on_end(&mut self, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }
}

/// Moves an operator's watermark forward; `false` when `watermark` is not
/// ahead of it (watermarks never go backwards).
pub fn advance_watermark(current: &mut Option<i64>, watermark: i64) -> bool {
    if current.is_some_and(|w| watermark <= w) {
        return false;
    }
    *current = Some(watermark);
    true
}
