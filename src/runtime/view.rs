//! Materialized views: a pipeline's output kept in memory as Arrow data,
//! read as consistent snapshots (ad-hoc `SELECT`) and followed by
//! downstream pipelines (views over views, sinks from views), which read
//! its dispatcher directly (`runtime/input.rs`). The view's own pipeline
//! applies its output here on its last operator task (its sink is chained,
//! `view_io.rs`), so a view is a node of the dataflow, not a sink task
//! feeding a second source task.
//!
//! A view holds one of three shapes, fixed by its query:
//! * append-only (filters, projections, windowed aggregates): the rows, in
//!   batches, optionally trimmed by `retention` behind the watermark;
//! * keyed (non-windowed aggregates): the latest row per group key;
//! * a multiset (a stateless query over an updating view): rows with counts.
//!
//! Every change is applied under one lock, so a reader sees a batch either
//! wholly or not at all. Subscribers get the snapshot and then every later
//! change, taken under the same lock, so none is missed or seen twice.
//! Updates reach subscribers as the old row (`UpdateBefore`) followed by the
//! new (`Update`), so a downstream aggregate can retract what it counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, Int64Array, UInt64Array, UInt8Array,
};
use datafusion::arrow::compute::kernels::cmp::gt_eq;
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::state::{column, damaged, to_meta, StateSnapshot};
use crate::error::{Result, SluiceError};
use crate::stream::{Message, Op, StreamBatch};

/// How many messages a subscriber may lag behind before the view waits.
const SUBSCRIBER_CAPACITY: usize = 16;
/// Append-only views merge their small batches once they hold this many.
const MAX_BATCHES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewMode {
    Append,
    /// The latest row per key (the key's column indices).
    Keyed(Vec<usize>),
    /// Rows with multiplicity: inserts add one, deletes take one away.
    Multiset,
}

/// Checkpoint metadata of a view; its rows are the batches.
#[derive(Serialize, Deserialize)]
struct ViewMeta {
    /// The view's shape, checked on restore.
    mode: String,
    watermark: Option<i64>,
    caught_up: bool,
}

/// `retention`: rows whose `column` is older than the watermark minus `ms`
/// are dropped (append-only views).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub column: usize,
    pub ms: i64,
}

pub struct ViewState {
    pub name: String,
    pub schema: SchemaRef,
    pub mode: ViewMode,
    retention: Option<Retention>,
    rows: RowConverter,
    keys: Option<RowConverter>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    batches: Vec<RecordBatch>,
    keyed: HashMap<OwnedRow, OwnedRow>,
    multiset: HashMap<OwnedRow, usize>,
    /// The keyed / multiset contents as a batch, until the next change.
    cached: Option<RecordBatch>,
    subscribers: Vec<mpsc::Sender<Message>>,
    watermark: Option<i64>,
    /// The view's pipeline has replayed up to where its last run stopped.
    caught_up: bool,
    finished: bool,
}

/// What a new subscriber gets: the view's contents, its watermark, whether
/// it has caught up with its last run, then (unless the view has ended) every
/// later change.
pub struct Subscription {
    pub snapshot: Vec<StreamBatch>,
    pub watermark: Option<i64>,
    pub caught_up: bool,
    pub changes: Option<mpsc::Receiver<Message>>,
    /// The changes' channel, to watch its depth.
    pub queue: Option<mpsc::WeakSender<Message>>,
}

/// The key columns of `data`; a NULL column for an empty key.
fn key_arrays(key_columns: &[usize], data: &RecordBatch) -> Vec<ArrayRef> {
    if key_columns.is_empty() {
        return vec![new_null_array(&DataType::Null, data.num_rows())];
    }
    key_columns
        .iter()
        .map(|&i| data.column(i).clone())
        .collect()
}

impl std::fmt::Debug for ViewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ViewState({}, {:?})", self.name, self.mode)
    }
}

impl ViewState {
    pub fn new(
        name: &str,
        schema: SchemaRef,
        mode: ViewMode,
        retention: Option<Retention>,
    ) -> Result<Arc<ViewState>> {
        let fields = |idx: &mut dyn Iterator<Item = usize>| -> Vec<SortField> {
            idx.map(|i| SortField::new(schema.field(i).data_type().clone()))
                .collect()
        };
        let rows = RowConverter::new(fields(&mut (0..schema.fields().len())))?;
        let keys = match &mode {
            // An empty key (a global aggregate): every row has the same
            // key, a NULL, so the view holds one row.
            ViewMode::Keyed(k) if k.is_empty() => {
                Some(RowConverter::new(vec![SortField::new(DataType::Null)])?)
            }
            ViewMode::Keyed(k) => Some(RowConverter::new(fields(&mut k.iter().copied()))?),
            _ => None,
        };
        Ok(Arc::new(ViewState {
            name: name.to_string(),
            schema,
            mode,
            retention,
            rows,
            keys,
            inner: Mutex::new(Inner::default()),
        }))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| {
            SluiceError::Internal(format!("view '{}': state lock poisoned", self.name))
        })
    }

    /// Whether the view's rows carry changelog ops for its subscribers.
    pub fn is_changelog(&self) -> bool {
        self.mode != ViewMode::Append
    }

    /// The view's current contents.
    pub fn snapshot(&self) -> Result<Vec<RecordBatch>> {
        let mut inner = self.lock()?;
        self.snapshot_locked(&mut inner)
    }

    /// Number of rows held.
    pub fn row_count(&self) -> Result<usize> {
        let inner = self.lock()?;
        Ok(match self.mode {
            ViewMode::Append => inner.batches.iter().map(|b| b.num_rows()).sum(),
            ViewMode::Keyed(_) => inner.keyed.len(),
            ViewMode::Multiset => inner.multiset.values().sum(),
        })
    }

    /// Rows held and their approximate bytes (Arrow buffers for an
    /// append-only view, row-format keys and values for the others).
    pub fn size(&self) -> Result<(u64, u64)> {
        let inner = self.lock()?;
        let rows = |r: &OwnedRow| r.row().as_ref().len();
        Ok(match self.mode {
            ViewMode::Append => (
                inner.batches.iter().map(|b| b.num_rows()).sum::<usize>() as u64,
                inner
                    .batches
                    .iter()
                    .map(|b| b.get_array_memory_size())
                    .sum::<usize>() as u64,
            ),
            ViewMode::Keyed(_) => (
                inner.keyed.len() as u64,
                inner
                    .keyed
                    .iter()
                    .map(|(k, v)| rows(k) + rows(v))
                    .sum::<usize>() as u64,
            ),
            ViewMode::Multiset => (
                inner.multiset.values().sum::<usize>() as u64,
                inner
                    .multiset
                    .keys()
                    .map(|k| rows(k) + std::mem::size_of::<usize>())
                    .sum::<usize>() as u64,
            ),
        })
    }

    /// The watermark the view's input has reached, if any.
    pub fn watermark(&self) -> Result<Option<i64>> {
        Ok(self.lock()?.watermark)
    }

    /// The view's contents at a checkpoint, taken under its lock: an
    /// append-only view's batches; a keyed view's rows; a multiset's distinct
    /// rows, then their counts. Subscribers are not state: they follow again.
    pub fn checkpoint(&self) -> Result<StateSnapshot> {
        let inner = self.lock()?;
        self.checkpoint_locked(&inner)
    }

    fn checkpoint_locked(&self, inner: &Inner) -> Result<StateSnapshot> {
        let rows = |rows: &mut dyn Iterator<Item = &OwnedRow>| -> Result<RecordBatch> {
            let columns = self.rows.convert_rows(rows.map(|r| r.row()))?;
            Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
        };
        let batches = match self.mode {
            ViewMode::Append => inner.batches.clone(),
            ViewMode::Keyed(_) => vec![rows(&mut inner.keyed.values())?],
            ViewMode::Multiset => {
                let counts =
                    UInt64Array::from_iter_values(inner.multiset.values().map(|&n| n as u64));
                let counts = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new(
                        "count",
                        DataType::UInt64,
                        false,
                    )])),
                    vec![Arc::new(counts)],
                )?;
                vec![rows(&mut inner.multiset.keys())?, counts]
            }
        };
        let meta = ViewMeta {
            mode: self.mode_name().into(),
            watermark: inner.watermark,
            caught_up: inner.caught_up,
        };
        Ok(StateSnapshot::new(to_meta(&meta)?, batches))
    }

    /// Replaces the view's contents, watermark and caught-up flag with a
    /// checkpoint's; subscribers stay.
    pub fn restore(&self, state: StateSnapshot) -> Result<()> {
        let meta: ViewMeta = state.meta_as()?;
        if meta.mode != self.mode_name() {
            return Err(damaged(&format!(
                "view '{}' holds {}, the checkpoint {}",
                self.name,
                self.mode_name(),
                meta.mode
            )));
        }
        let width = self.schema.fields().len();
        let mut keyed = HashMap::new();
        let mut multiset = HashMap::new();
        let mut batches = Vec::new();
        match &self.mode {
            ViewMode::Append => batches = state.batches,
            ViewMode::Keyed(key_columns) => {
                let data = state.into_batches().next("view rows")?;
                if data.num_columns() != width {
                    return Err(damaged("view row width"));
                }
                let key_converter = self
                    .keys
                    .as_ref()
                    .ok_or_else(|| SluiceError::Internal("keyed view without a key".into()))?;
                let keys = key_converter.convert_columns(&key_arrays(key_columns, &data))?;
                let rows = self.rows.convert_columns(data.columns())?;
                keyed = keys
                    .iter()
                    .zip(rows.iter())
                    .map(|(k, r)| (k.owned(), r.owned()))
                    .collect();
            }
            ViewMode::Multiset => {
                let mut parts = state.into_batches();
                let data = parts.next("view rows")?;
                let counts = parts.next("view row counts")?;
                let counts = column::<UInt64Array>(&counts, "count")?;
                if data.num_columns() != width || counts.len() != data.num_rows() {
                    return Err(damaged("view rows and counts"));
                }
                let rows = self.rows.convert_columns(data.columns())?;
                multiset = rows
                    .iter()
                    .zip(counts.values().iter())
                    .map(|(r, &n)| (r.owned(), n as usize))
                    .collect();
            }
        }
        let mut inner = self.lock()?;
        inner.batches = batches;
        inner.keyed = keyed;
        inner.multiset = multiset;
        inner.cached = None;
        inner.watermark = meta.watermark;
        inner.caught_up = meta.caught_up;
        Ok(())
    }

    fn mode_name(&self) -> &'static str {
        match self.mode {
            ViewMode::Append => "append",
            ViewMode::Keyed(_) => "keyed",
            ViewMode::Multiset => "multiset",
        }
    }

    fn snapshot_locked(&self, inner: &mut Inner) -> Result<Vec<RecordBatch>> {
        if self.mode == ViewMode::Append {
            return Ok(inner.batches.clone());
        }
        if inner.cached.is_none() {
            let columns = match self.mode {
                ViewMode::Keyed(_) => self
                    .rows
                    .convert_rows(inner.keyed.values().map(|r| r.row())),
                _ => self.rows.convert_rows(
                    inner
                        .multiset
                        .iter()
                        .flat_map(|(r, n)| std::iter::repeat_n(r.row(), *n)),
                ),
            }?;
            inner.cached = Some(if columns.is_empty() {
                RecordBatch::new_empty(self.schema.clone())
            } else {
                RecordBatch::try_new(self.schema.clone(), columns)?
            });
        }
        Ok(inner.cached.iter().cloned().collect())
    }

    /// Follows the view: its current contents as inserts, the watermark, and
    /// then every change. `None` for the channel once the view has ended.
    pub fn subscribe(&self) -> Result<Subscription> {
        let mut inner = self.lock()?;
        let snapshot = self
            .snapshot_locked(&mut inner)?
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                if self.is_changelog() {
                    let ops = UInt8Array::from(vec![Op::Insert as u8; b.num_rows()]);
                    StreamBatch::changelog(b, ops)
                } else {
                    StreamBatch::append(b)
                }
            })
            .collect();
        let (rx, queue) = if inner.finished {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
            let queue = tx.downgrade();
            inner.subscribers.push(tx);
            (Some(rx), Some(queue))
        };
        Ok(Subscription {
            snapshot,
            watermark: inner.watermark,
            caught_up: inner.caught_up,
            changes: rx,
            queue,
        })
    }

    /// The view's pipeline caught up with its last run: so have its
    /// subscribers, once they have what came before.
    pub async fn caught_up(&self) -> Result<()> {
        let subscribers = {
            let mut inner = self.lock()?;
            inner.caught_up = true;
            inner.subscribers.clone()
        };
        self.broadcast(subscribers, || Message::CaughtUp).await
    }

    /// Applies a batch of the view's output (upserts for a keyed view).
    pub async fn apply(&self, batch: &StreamBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (message, subscribers) = {
            let mut inner = self.lock()?;
            let following = !inner.subscribers.is_empty();
            let message = match &self.mode {
                ViewMode::Append => {
                    inner.batches.push(batch.data.clone());
                    if inner.batches.len() > MAX_BATCHES {
                        let tail = inner.batches.split_off(MAX_BATCHES / 2);
                        let merged = concat_batches(&self.schema, &tail)?;
                        inner.batches.push(merged);
                    }
                    following.then(|| StreamBatch::append(batch.data.clone()))
                }
                ViewMode::Keyed(key_columns) => {
                    self.apply_keyed(&mut inner, key_columns, batch, following)?
                }
                ViewMode::Multiset => {
                    let rows = self.rows.convert_columns(batch.data.columns())?;
                    for i in 0..batch.num_rows() {
                        let row = rows.row(i).owned();
                        if batch.is_addition(i) {
                            *inner.multiset.entry(row).or_insert(0) += 1;
                        } else if let Some(n) = inner.multiset.get_mut(&row) {
                            *n -= 1;
                            if *n == 0 {
                                inner.multiset.remove(&row);
                            }
                        }
                    }
                    following.then(|| batch.clone())
                }
            };
            inner.cached = None;
            (message, inner.subscribers.clone())
        };
        if let Some(m) = message.filter(|m| m.num_rows() > 0) {
            self.broadcast(subscribers, || Message::Batch(m.clone()))
                .await?;
        }
        Ok(())
    }

    fn apply_keyed(
        &self,
        inner: &mut Inner,
        key_columns: &[usize],
        batch: &StreamBatch,
        following: bool,
    ) -> Result<Option<StreamBatch>> {
        let key_converter = self
            .keys
            .as_ref()
            .ok_or_else(|| SluiceError::Internal("keyed view without a key".into()))?;
        let keys = key_converter.convert_columns(&key_arrays(key_columns, &batch.data))?;
        let rows = self.rows.convert_columns(batch.data.columns())?;
        let mut changes: Vec<(Op, OwnedRow)> = Vec::new();
        for i in 0..batch.num_rows() {
            let key = keys.row(i).owned();
            match batch.op(i) {
                Op::Delete => {
                    if let Some(old) = inner.keyed.remove(&key) {
                        changes.push((Op::Delete, old));
                    }
                }
                Op::UpdateBefore => {}
                Op::Insert | Op::Update => {
                    let new = rows.row(i).owned();
                    match inner.keyed.insert(key, new.clone()) {
                        Some(old) => {
                            changes.push((Op::UpdateBefore, old));
                            changes.push((Op::Update, new));
                        }
                        None => changes.push((Op::Insert, new)),
                    }
                }
            }
        }
        if !following || changes.is_empty() {
            return Ok(None);
        }
        let columns = self
            .rows
            .convert_rows(changes.iter().map(|(_, r)| r.row()))?;
        let data = RecordBatch::try_new(self.schema.clone(), columns)?;
        let ops = UInt8Array::from(changes.iter().map(|(o, _)| *o as u8).collect::<Vec<_>>());
        Ok(Some(StreamBatch::changelog(data, ops)))
    }

    /// The input is complete up to `watermark`: trims by retention and tells
    /// the subscribers.
    pub async fn advance(&self, watermark: i64) -> Result<()> {
        let subscribers = {
            let mut inner = self.lock()?;
            if inner.watermark.is_some_and(|w| w >= watermark) {
                return Ok(());
            }
            inner.watermark = Some(watermark);
            if let Some(r) = self.retention {
                let cutoff = watermark.saturating_sub(r.ms);
                let mut kept = Vec::with_capacity(inner.batches.len());
                for b in inner.batches.drain(..) {
                    let times = event_millis(b.column(r.column))?;
                    let mask = gt_eq(&times, &Int64Array::new_scalar(cutoff))?;
                    let b = if mask.true_count() == b.num_rows() {
                        b
                    } else {
                        filter_record_batch(&b, &mask)?
                    };
                    if b.num_rows() > 0 {
                        kept.push(b);
                    }
                }
                inner.batches = kept;
            }
            inner.subscribers.clone()
        };
        self.broadcast(subscribers, || Message::Watermark(watermark))
            .await
    }

    /// Its contents for a checkpoint, and the subscribers to pass the
    /// barrier to, taken under one lock (no change slips between them).
    pub(super) fn checkpoint_and_subscribers(
        &self,
    ) -> Result<(StateSnapshot, Vec<mpsc::Sender<Message>>)> {
        let inner = self.lock()?;
        Ok((self.checkpoint_locked(&inner)?, inner.subscribers.clone()))
    }

    /// The view's input ended: subscribers see the end of their input.
    pub fn finish(&self) -> Result<()> {
        let mut inner = self.lock()?;
        inner.finished = true;
        inner.subscribers.clear();
        Ok(())
    }

    pub(super) async fn broadcast(
        &self,
        subscribers: Vec<mpsc::Sender<Message>>,
        message: impl Fn() -> Message,
    ) -> Result<()> {
        let mut gone = false;
        for s in &subscribers {
            // Waits while a subscriber is behind: back-pressure reaches the
            // view's own pipeline, and through it the source.
            gone |= s.send(message()).await.is_err();
        }
        if gone {
            self.lock()?.subscribers.retain(|s| !s.is_closed());
        }
        Ok(())
    }
}

/// A timestamp (or integer) column as epoch milliseconds.
fn event_millis(column: &Arc<dyn Array>) -> Result<Int64Array> {
    let ms = match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, None) => column.clone(),
        DataType::Timestamp(_, _) => {
            cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?
        }
        _ => column.clone(),
    };
    let ints = cast(&ms, &DataType::Int64)?;
    ints.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| SluiceError::Internal("retention column".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::restore_check::render;
    use datafusion::arrow::array::StringArray;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    /// `(op, k, n)` rows as one batch (a changelog unless every op is an
    /// insert of an append-only view).
    fn rows(changelog: bool, rows: &[(Op, &str, i64)]) -> StreamBatch {
        let data = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| Some(r.2)).collect::<Int64Array>()),
            ],
        )
        .expect("batch");
        match changelog {
            true => StreamBatch::changelog(
                data,
                UInt8Array::from(rows.iter().map(|r| r.0 as u8).collect::<Vec<_>>()),
            ),
            false => StreamBatch::append(data),
        }
    }

    fn contents(view: &ViewState) -> Vec<String> {
        let batches = view.snapshot().expect("snapshot");
        render(
            &batches
                .into_iter()
                .map(StreamBatch::append)
                .collect::<Vec<_>>(),
        )
    }

    /// A fresh view of the same shape, restored from `view`'s checkpoint
    /// through its encoded bytes.
    fn restored(view: &ViewState) -> Arc<ViewState> {
        let bytes = view
            .checkpoint()
            .expect("checkpoint")
            .encode()
            .expect("encode");
        let fresh = ViewState::new("v", view.schema.clone(), view.mode.clone(), view.retention)
            .expect("view");
        fresh
            .restore(StateSnapshot::decode(&bytes).expect("decode"))
            .expect("restore");
        fresh
    }

    /// Fills a view, restores a copy, then applies the same later changes
    /// to both: contents, watermark, caught-up flag and what a subscriber
    /// receives must agree.
    async fn check(mode: ViewMode, before: &[StreamBatch], after: &[StreamBatch]) {
        let view = ViewState::new("v", schema(), mode, None).expect("view");
        for b in before {
            view.apply(b).await.expect("apply");
        }
        view.advance(42).await.expect("watermark");
        view.caught_up().await.expect("caught up");
        let copy = restored(&view);
        assert_eq!(contents(&copy), contents(&view));
        assert_eq!(copy.watermark().expect("watermark"), Some(42));
        assert!(copy.subscribe().expect("subscribe").caught_up);
        let mut followers = Vec::new();
        for v in [&view, &copy] {
            let changes = v.subscribe().expect("subscribe").changes.expect("live");
            followers.push(changes);
            for b in after {
                v.apply(b).await.expect("apply");
            }
        }
        let mut seen = Vec::new();
        for rx in followers.iter_mut() {
            let mut batches = Vec::new();
            while let Ok(Message::Batch(b)) = rx.try_recv() {
                batches.push(b);
            }
            seen.push(render(&batches));
        }
        assert_eq!(seen[1], seen[0], "what a subscriber receives");
        assert_eq!(contents(&copy), contents(&view));
    }

    #[tokio::test]
    async fn restores_an_append_only_view() {
        let before = [
            rows(false, &[(Op::Insert, "a", 1), (Op::Insert, "b", 2)]),
            rows(false, &[(Op::Insert, "a", 3)]),
        ];
        check(
            ViewMode::Append,
            &before,
            &[rows(false, &[(Op::Insert, "c", 4)])],
        )
        .await;
    }

    #[tokio::test]
    async fn restores_a_keyed_view() {
        let before = [
            rows(
                true,
                &[
                    (Op::Insert, "a", 1),
                    (Op::Insert, "b", 2),
                    (Op::Insert, "c", 3),
                ],
            ),
            rows(true, &[(Op::Update, "a", 5), (Op::Delete, "b", 2)]),
        ];
        // Updating a restored key sends its old row first: the key is back.
        let after = [rows(
            true,
            &[
                (Op::Update, "a", 6),
                (Op::Insert, "b", 7),
                (Op::Delete, "c", 3),
            ],
        )];
        check(ViewMode::Keyed(vec![0]), &before, &after).await;
    }

    #[tokio::test]
    async fn restores_a_multiset_view_with_counts() {
        let before = [
            rows(
                true,
                &[
                    (Op::Insert, "a", 1),
                    (Op::Insert, "a", 1),
                    (Op::Insert, "b", 2),
                ],
            ),
            rows(true, &[(Op::Delete, "b", 2), (Op::Insert, "c", 3)]),
        ];
        let after = [rows(true, &[(Op::Delete, "a", 1), (Op::Insert, "c", 3)])];
        check(ViewMode::Multiset, &before, &after).await;
    }

    #[tokio::test]
    async fn restore_replaces_contents_and_keeps_subscribers() {
        let view = ViewState::new("v", schema(), ViewMode::Keyed(vec![0]), None).expect("view");
        view.apply(&rows(true, &[(Op::Insert, "a", 1)]))
            .await
            .expect("apply");
        let checkpoint = view.checkpoint().expect("checkpoint");
        let mut rx = view.subscribe().expect("subscribe").changes.expect("live");
        view.apply(&rows(true, &[(Op::Insert, "z", 9)]))
            .await
            .expect("apply");
        view.restore(checkpoint).expect("restore");
        assert_eq!(contents(&view), ["insert: a | 1"]);
        view.apply(&rows(true, &[(Op::Update, "a", 2)]))
            .await
            .expect("apply");
        let mut got = Vec::new();
        while let Ok(Message::Batch(b)) = rx.try_recv() {
            got.extend(render(&[b]));
        }
        assert_eq!(
            got,
            ["insert: z | 9", "update: a | 2", "update_before: a | 1"]
        );
    }

    #[tokio::test]
    async fn refuses_a_checkpoint_of_another_shape() {
        let keyed = ViewState::new("v", schema(), ViewMode::Keyed(vec![0]), None).expect("view");
        let append = ViewState::new("v", schema(), ViewMode::Append, None).expect("view");
        let err = append
            .restore(keyed.checkpoint().expect("checkpoint"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds append, the checkpoint keyed"), "{err}");
    }
}
