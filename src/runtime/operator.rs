//! The operator trait: one required method; end-of-input is a defaulted hook.

use std::sync::Arc;
use std::time::Instant;

use super::state::StateSnapshot;
use crate::error::{Result, SluiceError};
use crate::metrics::{NodeMetrics, StateSize};
use crate::stream::StreamBatch;

pub trait Operator: Send {
    fn name(&self) -> &'static str;

    /// Handles one batch, pushing any output batches to `out`.
    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()>;

    /// Handles one batch that arrived at input `port` (an operator with
    /// several inputs, such as a join, tells them apart; the others need
    /// not).
    fn process_batch_at(
        &mut self,
        _port: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        self.process_batch(batch, out)
    }

    /// The watermark advanced to `watermark` (epoch ms): emit what it closes.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }

    /// The input ended: emit whatever is still held.
    fn on_end(&mut self, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }

    /// Input `port` of an operator with several ended while others go on.
    fn on_input_end(&mut self, _port: usize, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }

    /// Whether it holds back changes it has not emitted yet, to batch its
    /// work (a vectorized changelog aggregate's pending groups). The
    /// pipeline calls [`Operator::flush`] once it has held them for
    /// `FLUSH_INTERVAL` or the input goes quiet that long.
    fn holds_back(&self) -> bool {
        false
    }

    /// Emits what it holds back.
    fn flush(&mut self, _out: &mut Vec<StreamBatch>) -> Result<()> {
        Ok(())
    }

    /// Its settings (window, grouping, emit policy), as EXPLAIN shows them.
    fn detail(&self) -> String {
        String::new()
    }

    /// Rows and bytes of state it holds, when it holds any.
    fn state_size(&self) -> Option<(u64, u64)> {
        None
    }

    /// With several inputs (a join): per input, the rows and bytes of its
    /// state that input's rows are.
    fn input_state(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// Its whole state at a checkpoint barrier (everything before the
    /// barrier applied, nothing after); `None` when it keeps none. Must not
    /// change what it will emit later.
    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        Ok(None)
    }

    /// Re-splits the states `snapshot` gave in each of the instances of a
    /// keyed part (split by key across `states.len()` instances) into
    /// `router.parts()` states, part `i` holding the keys the exchange
    /// sends to instance `i`: a restore at another parallelism loads
    /// them. `None` when its state cannot be re-split; the pipeline then
    /// keeps the checkpoint's parallelism.
    fn rescale(
        &self,
        _states: Vec<StateSnapshot>,
        _router: &super::rescale::Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        Ok(None)
    }

    /// Loads what `snapshot` of the same operator (same plan) returned,
    /// into a fresh operator before it sees any input.
    fn restore(&mut self, _state: StateSnapshot) -> Result<()> {
        Err(SluiceError::Internal(format!(
            "operator {} keeps no state to restore",
            self.name()
        )))
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

/// An operator with its figures: rows in and out, time spent, state held.
/// The time is its own: what it emits runs through the next operator after
/// it returns.
pub struct Measured {
    inner: Box<dyn Operator>,
    node: Arc<NodeMetrics>,
    /// Which of the stage's instances it is (they share the stage).
    instance: usize,
}

impl Measured {
    pub fn new(inner: Box<dyn Operator>, node: Arc<NodeMetrics>) -> Self {
        Measured {
            inner,
            node,
            instance: 0,
        }
    }

    /// Instance `i` of `n` sharing its stage.
    pub fn instance(mut self, instance: Option<(usize, usize)>) -> Self {
        if let Some((i, n)) = instance {
            self.instance = i;
            self.node.set_instances(n);
        }
        self
    }

    fn account(&mut self, started: Instant, rows: u64, bytes: u64, out: &[StreamBatch]) {
        let emitted = out.iter().map(|b| b.num_rows() as u64).sum();
        self.node.record(started, rows, bytes, emitted);
        self.refresh(false);
    }

    fn refresh(&self, now: bool) {
        self.node.refresh_state_of(self.instance, now, || {
            let (rows, bytes) = self.inner.state_size()?;
            Some(StateSize {
                rows,
                bytes,
                inputs: self.inner.input_state(),
            })
        });
    }
}

impl Operator for Measured {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        let started = Instant::now();
        let rows = batch.num_rows() as u64;
        let bytes = batch.data.get_array_memory_size() as u64;
        let from = out.len();
        self.inner.process_batch(batch, out)?;
        self.account(started, rows, bytes, &out[from..]);
        Ok(())
    }

    fn process_batch_at(
        &mut self,
        port: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let started = Instant::now();
        let rows = batch.num_rows() as u64;
        let bytes = batch.data.get_array_memory_size() as u64;
        let from = out.len();
        self.inner.process_batch_at(port, batch, out)?;
        self.account(started, rows, bytes, &out[from..]);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> Result<()> {
        let started = Instant::now();
        let from = out.len();
        self.inner.on_watermark(watermark, out)?;
        self.account(started, 0, 0, &out[from..]);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        let started = Instant::now();
        let from = out.len();
        self.inner.on_end(out)?;
        self.account(started, 0, 0, &out[from..]);
        self.refresh(true);
        Ok(())
    }

    fn on_input_end(&mut self, port: usize, out: &mut Vec<StreamBatch>) -> Result<()> {
        let started = Instant::now();
        let from = out.len();
        self.inner.on_input_end(port, out)?;
        self.account(started, 0, 0, &out[from..]);
        Ok(())
    }

    fn holds_back(&self) -> bool {
        self.inner.holds_back()
    }

    fn flush(&mut self, out: &mut Vec<StreamBatch>) -> Result<()> {
        let started = Instant::now();
        let from = out.len();
        self.inner.flush(out)?;
        self.account(started, 0, 0, &out[from..]);
        Ok(())
    }

    fn detail(&self) -> String {
        self.inner.detail()
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        self.inner.state_size()
    }

    fn input_state(&self) -> Vec<(u64, u64)> {
        self.inner.input_state()
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        self.inner.snapshot()
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.inner.restore(state)
    }
}
