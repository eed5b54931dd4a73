//! Barrier checkpoints across every pipeline of an engine.
//!
//! Every `interval` the coordinator starts epoch N: each pipeline that reads
//! a source injects a barrier into its stream, between two batches, carrying
//! its source positions and watermark state. Operators snapshot their state
//! as the barrier passes them; a view passes the barrier on to the pipelines
//! that follow it, so their state lines up with the view's. When the barrier
//! reaches a pipeline's sink, the sink makes its output durable (`prepare`)
//! and the pipeline's whole state is written as one object,
//! `checkpoints/<N>/<pipeline>.state`. Once every pipeline has written its
//! object, the manifest `checkpoints/manifest-<N>.json` (each object's size
//! and xxHash64) is written last: it is what makes epoch N complete. Only
//! then do transactional sinks make epoch N's output visible (`commit`).
//!
//! On start, the newest manifest whose objects are all present and intact
//! is restored (a damaged one is skipped with a warning); older checkpoints
//! beyond the last `keep` are deleted.
//!
//! State goes through `object_store` (the local data directory).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::state::StateSnapshot;
use crate::error::{Result, SluiceError};

/// Complete checkpoints kept; older ones are deleted.
const KEEP: usize = 3;
/// A checkpoint not complete after this long is abandoned (a pipeline is
/// stuck behind an unreachable broker, say); the next one starts afresh.
const MIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one pipeline wrote for one epoch, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub epoch: u64,
    pub object: String,
    pub size: u64,
    pub xxh64: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    epoch: u64,
    /// Wall-clock time the checkpoint completed (epoch ms).
    completed_ms: i64,
    pipelines: BTreeMap<String, Entry>,
}

/// A pipeline's state as restored from a checkpoint.
#[derive(Debug, Clone)]
pub struct Restored {
    pub epoch: u64,
    /// Source positions and watermark state, as the sources recorded them
    /// (with several inputs, each under its source node's id).
    pub source: serde_json::Value,
    /// Operator states by their node's key (`graph.rs`).
    pub operators: std::collections::BTreeMap<String, StateSnapshot>,
    /// A checkpoint from before operators were keyed by node: their states
    /// by position.
    pub positional: Option<Vec<Option<StateSnapshot>>>,
    pub sink: Option<StateSnapshot>,
}

/// The coordinator's signal to sources: start epoch `epoch`; `stop` means
/// it is the last one (the engine is shutting down): stop reading after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trigger {
    pub epoch: u64,
    pub stop: bool,
}

/// How a checkpoint ended, as sinks waiting on it see it.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    completed: u64,
    abandoned: u64,
}

struct Pending {
    epoch: u64,
    waiting: HashSet<String>,
    entries: BTreeMap<String, Entry>,
    started: Instant,
}

#[derive(Default)]
struct Coord {
    next_epoch: u64,
    pending: Option<Pending>,
    /// Pipelines running now: each must report an epoch for it to complete.
    members: HashSet<String>,
    /// The newest entry of every pipeline, running or ended (a pipeline that
    /// read a bounded input to its end keeps its final state here).
    latest: BTreeMap<String, Entry>,
    /// A pipeline asked for a checkpoint as soon as possible.
    requested: bool,
}

pub struct Checkpointer {
    store: Arc<dyn ObjectStore>,
    /// Shown in messages: where checkpoints are kept.
    location: String,
    pub interval: Duration,
    /// Names this engine's transactional Kafka producers (stable across
    /// restarts of the same data directory).
    pub instance: String,
    coord: Mutex<Coord>,
    triggered: watch::Sender<Trigger>,
    outcome: watch::Sender<Outcome>,
    restored: Mutex<HashMap<String, Restored>>,
    /// Why the newest checkpoint could not be restored, when recovery fell
    /// back to an older one (sinks that already committed a later epoch
    /// name it in their refusal to start).
    damaged: Mutex<Option<String>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpointer({})", self.location)
    }
}

fn manifest_path(epoch: u64) -> ObjectPath {
    ObjectPath::from(format!("checkpoints/manifest-{epoch:020}.json"))
}

fn object_path(epoch: u64, pipeline: &str) -> ObjectPath {
    ObjectPath::from(format!("checkpoints/{epoch:020}/{pipeline}.state"))
}

fn xxh64(bytes: &[u8]) -> String {
    let mut h = twox_hash::XxHash64::with_seed(0);
    h.write(bytes);
    format!("{:016x}", h.finish())
}

fn store_error(what: String) -> impl FnOnce(object_store::Error) -> SluiceError {
    move |e| SluiceError::Connector(format!("checkpoint storage: {what}: {e}"))
}

/// How an engine checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub interval: Duration,
    /// Where checkpoints go (`s3://bucket/prefix`, `file:///path`); `None`:
    /// the data directory.
    pub state_url: Option<String>,
}

/// The store checkpoints go to, and its name for messages. Objects are
/// `checkpoints/...` under it.
fn open_store(
    data_dir: &std::path::Path,
    state_url: Option<&str>,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    let local = |root: &std::path::Path| -> Result<(Arc<dyn ObjectStore>, String)> {
        let dir = root.join("checkpoints");
        std::fs::create_dir_all(&dir).map_err(|e| {
            SluiceError::io(
                format!("creating checkpoint directory {}", dir.display()),
                e,
            )
        })?;
        // Deleting a checkpoint's last object removes its directory too.
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(store_error(format!("opening {}", root.display())))?
            .with_automatic_cleanup(true);
        Ok((Arc::new(store), dir.display().to_string()))
    };
    let Some(url) = state_url else {
        return local(data_dir);
    };
    if let Some(path) = url.strip_prefix("file://") {
        return local(std::path::Path::new(path));
    }
    let Some(rest) = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3a://"))
    else {
        return Err(SluiceError::Options(format!(
            "--state-url '{url}': expected s3://BUCKET[/PREFIX] or file:///PATH"
        )));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(SluiceError::Options(format!(
            "--state-url '{url}' names no bucket"
        )));
    }
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(store_error(format!("configuring {url}")))?;
    let prefix = prefix.trim_matches('/');
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
    };
    Ok((store, format!("{}/checkpoints", url.trim_end_matches('/'))))
}

/// Deletes every checkpoint (under `data_dir`, or at `state_url`), so that
/// the next start restores nothing. What names this engine's Kafka
/// transactions stays: the instance id, which fences the producers of the
/// runs before, and the epoch count, which goes on from the newest epoch
/// (an empty checkpoint of it is left), since a Kafka sink tells whether a
/// commit was finished by comparing epochs.
pub async fn discard(data_dir: &std::path::Path, state_url: Option<&str>) -> Result<()> {
    let (store, location) = open_store(data_dir, state_url)?;
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&ObjectPath::from("checkpoints")))
        .try_collect()
        .await
        .map_err(store_error(format!("listing {location}")))?;
    let mut newest = 0;
    for meta in listed {
        let name = meta.location.filename().unwrap_or_default();
        if name == INSTANCE {
            continue;
        }
        if let Some(epoch) = name
            .strip_prefix("manifest-")
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            newest = newest.max(epoch);
        }
        store
            .delete(&meta.location)
            .await
            .map_err(store_error(format!("deleting {}", meta.location)))?;
    }
    if newest > 0 {
        let empty = Manifest {
            epoch: newest,
            completed_ms: chrono::Utc::now().timestamp_millis(),
            pipelines: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec_pretty(&empty)
            .map_err(|e| SluiceError::Internal(format!("encoding a manifest: {e}")))?;
        store
            .put(&manifest_path(newest), PutPayload::from(bytes))
            .await
            .map_err(store_error(format!("writing {location}")))?;
    }
    Ok(())
}

impl Checkpointer {
    /// Opens the checkpoints (under `data_dir`, or at the configured URL)
    /// and loads the newest complete one for the pipelines to restore from.
    pub async fn open(
        data_dir: &std::path::Path,
        config: &Checkpoints,
    ) -> Result<Arc<Checkpointer>> {
        let interval = config.interval;
        let (store, location) = open_store(data_dir, config.state_url.as_deref())?;
        std::fs::create_dir_all(data_dir.join("checkpoints")).map_err(|e| {
            SluiceError::io(
                format!("creating {}", data_dir.join("checkpoints").display()),
                e,
            )
        })?;
        let instance = instance_id(data_dir)?;
        let (triggered, _) = watch::channel(Trigger::default());
        let (outcome, _) = watch::channel(Outcome::default());
        let cp = Checkpointer {
            store,
            location,
            interval,
            instance,
            coord: Mutex::new(Coord::default()),
            triggered,
            outcome,
            restored: Mutex::default(),
            damaged: Mutex::default(),
        };
        cp.load().await?;
        Ok(Arc::new(cp))
    }

    /// Finds the newest intact manifest and reads its pipelines' state.
    async fn load(&self) -> Result<()> {
        let mut manifests: Vec<u64> = self
            .store
            .list(Some(&ObjectPath::from("checkpoints")))
            .try_filter_map(|meta| async move {
                Ok(meta
                    .location
                    .filename()
                    .and_then(|f| f.strip_prefix("manifest-"))
                    .and_then(|f| f.strip_suffix(".json"))
                    .and_then(|n| n.parse::<u64>().ok()))
            })
            .try_collect()
            .await
            .map_err(store_error(format!("listing {}", self.location)))?;
        manifests.sort_unstable();
        let newest = manifests.last().copied().unwrap_or(0);
        for &epoch in manifests.iter().rev() {
            match self.read_checkpoint(epoch).await {
                Ok((manifest, restored)) => {
                    let mut coord = self.lock();
                    coord.next_epoch = newest + 1;
                    coord.latest = manifest.pipelines;
                    drop(coord);
                    *self.restored.lock().map_err(poisoned)? = restored;
                    self.outcome.send_modify(|o| o.completed = epoch);
                    tracing::info!(epoch, location = %self.location, "restoring from checkpoint");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(epoch, error = %e, "checkpoint is damaged or incomplete; trying the one before it");
                    let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
                    if damaged.is_none() {
                        *damaged = Some(format!(
                            "checkpoint {epoch} in {} is damaged: {e}",
                            self.location
                        ));
                    }
                }
            }
        }
        self.lock().next_epoch = newest + 1;
        Ok(())
    }

    async fn read_checkpoint(&self, epoch: u64) -> Result<(Manifest, HashMap<String, Restored>)> {
        let bytes = self.get(&manifest_path(epoch)).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            SluiceError::Connector(format!(
                "manifest of checkpoint {epoch} does not parse: {e}"
            ))
        })?;
        let mut restored = HashMap::new();
        for (name, entry) in &manifest.pipelines {
            let bytes = self.get(&ObjectPath::from(entry.object.as_str())).await?;
            if bytes.len() as u64 != entry.size || xxh64(&bytes) != entry.xxh64 {
                return Err(SluiceError::Connector(format!(
                    "state of pipeline '{name}' ({}) does not match its checksum",
                    entry.object
                )));
            }
            restored.insert(name.clone(), decode_pipeline(entry.epoch, &bytes)?);
        }
        Ok((manifest, restored))
    }

    async fn get(&self, path: &ObjectPath) -> Result<bytes::Bytes> {
        let got = self
            .store
            .get(path)
            .await
            .map_err(store_error(format!("reading {path}")))?;
        got.bytes()
            .await
            .map_err(store_error(format!("reading {path}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Coord> {
        // A panic while holding the lock cannot leave it half-updated in a
        // way later steps depend on; carry on with what is there.
        self.coord.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest complete checkpoint's epoch (0 before the first).
    pub fn completed(&self) -> u64 {
        self.outcome.borrow().completed
    }

    /// Why recovery fell back past the newest checkpoint, if it did.
    pub fn damaged(&self) -> Option<String> {
        self.damaged.lock().ok()?.clone()
    }

    /// The state `pipeline` had at the restored checkpoint (taken once).
    pub fn take_restored(&self, pipeline: &str) -> Option<Restored> {
        self.restored.lock().ok()?.remove(pipeline)
    }

    pub fn triggers(&self) -> watch::Receiver<Trigger> {
        self.triggered.subscribe()
    }

    /// Whether epoch `epoch` is under way and waits for `pipeline`'s
    /// barrier.
    pub fn waits_for(&self, pipeline: &str, epoch: u64) -> bool {
        self.lock()
            .pending
            .as_ref()
            .is_some_and(|p| p.epoch == epoch && p.waiting.contains(pipeline))
    }

    /// A pipeline started: later checkpoints wait for it.
    pub fn join(&self, pipeline: &str) {
        self.lock().members.insert(pipeline.to_string());
    }

    /// A pipeline ended. Its newest state stays in later manifests (a
    /// bounded input read to its end is not read again) unless `dropped`.
    pub async fn leave(&self, pipeline: &str, dropped: bool) {
        let done = {
            let mut coord = self.lock();
            coord.members.remove(pipeline);
            if dropped {
                coord.latest.remove(pipeline);
            }
            match &mut coord.pending {
                Some(p) => {
                    p.waiting.remove(pipeline);
                    if dropped {
                        p.entries.remove(pipeline);
                    }
                    p.waiting.is_empty()
                }
                None => false,
            }
        };
        if done {
            self.complete().await;
        }
    }

    /// Starts the next epoch now, unless one is under way (then the next
    /// starts as soon as it ends).
    pub async fn request(&self) {
        self.start(false).await;
    }

    async fn start(&self, stop: bool) -> bool {
        let (epoch, empty) = {
            let mut coord = self.lock();
            if coord.pending.is_some() {
                coord.requested = true;
                return false;
            }
            coord.requested = false;
            let epoch = coord.next_epoch.max(1);
            coord.next_epoch = epoch + 1;
            let waiting = coord.members.clone();
            let empty = waiting.is_empty();
            coord.pending = Some(Pending {
                epoch,
                waiting,
                entries: BTreeMap::new(),
                started: Instant::now(),
            });
            (epoch, empty)
        };
        tracing::debug!(epoch, "checkpoint started");
        self.triggered.send_replace(Trigger { epoch, stop });
        if empty {
            self.complete().await;
        }
        true
    }

    /// Runs checkpoints every `interval` until `shutdown`; then takes a
    /// final one, after which sources stop.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let timeout = (self.interval * 6).max(MIN_TIMEOUT);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.abandon_older_than(timeout);
            self.start(false).await;
        }
        // The final checkpoint starts once the one under way has ended, so
        // that every source stops exactly at the barrier it injects.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.lock().pending.is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.abandon_older_than(Duration::ZERO);
        self.start(true).await;
    }

    fn abandon_older_than(&self, age: Duration) {
        let abandoned = {
            let mut coord = self.lock();
            match &coord.pending {
                Some(p) if p.started.elapsed() >= age => {
                    let p = coord.pending.take();
                    p.map(|p| (p.epoch, p.waiting))
                }
                _ => None,
            }
        };
        if let Some((epoch, waiting)) = abandoned {
            let mut waiting: Vec<String> = waiting.into_iter().collect();
            waiting.sort();
            tracing::warn!(epoch, waiting_for = %waiting.join(", "), "checkpoint abandoned: not every pipeline reached it in time; the previous checkpoint stays valid");
            self.outcome
                .send_modify(|o| o.abandoned = o.abandoned.max(epoch));
        }
    }

    /// A pipeline's state at `epoch`: written now; the epoch completes when
    /// the last pipeline has reported. A failed write abandons the epoch
    /// (the previous checkpoint stays valid) and is returned.
    pub async fn report(&self, pipeline: &str, epoch: u64, state: Vec<u8>) -> Result<()> {
        let path = object_path(epoch, pipeline);
        let entry = Entry {
            epoch,
            object: path.to_string(),
            size: state.len() as u64,
            xxh64: xxh64(&state),
        };
        if let Err(e) = self
            .store
            .put(&path, PutPayload::from(state))
            .await
            .map_err(store_error(format!("writing {}/{path}", self.location)))
        {
            self.abandon(epoch, &e);
            return Err(e);
        }
        let done = {
            let mut coord = self.lock();
            match &mut coord.pending {
                Some(p) if p.epoch == epoch => {
                    p.waiting.remove(pipeline);
                    p.entries.insert(pipeline.to_string(), entry);
                    p.waiting.is_empty()
                }
                _ => false,
            }
        };
        if done {
            self.complete().await;
        }
        Ok(())
    }

    fn abandon(&self, epoch: u64, error: &SluiceError) {
        let mut coord = self.lock();
        if coord.pending.as_ref().is_some_and(|p| p.epoch == epoch) {
            coord.pending = None;
            drop(coord);
            tracing::error!(epoch, %error, "checkpoint failed; the previous checkpoint stays valid and the next one will retry");
            self.outcome
                .send_modify(|o| o.abandoned = o.abandoned.max(epoch));
        }
    }

    /// Writes the manifest of the pending epoch (every pipeline reported).
    async fn complete(&self) {
        let (epoch, started, pipelines) = {
            let mut coord = self.lock();
            let Some(p) = coord.pending.take() else {
                return;
            };
            for (name, entry) in p.entries {
                coord.latest.insert(name, entry);
            }
            (p.epoch, p.started, coord.latest.clone())
        };
        let manifest = Manifest {
            epoch,
            completed_ms: chrono::Utc::now().timestamp_millis(),
            pipelines,
        };
        let written = match serde_json::to_vec_pretty(&manifest) {
            Ok(bytes) => self
                .store
                .put(&manifest_path(epoch), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(store_error(format!(
                    "writing the manifest of checkpoint {epoch}"
                ))),
            Err(e) => Err(SluiceError::Internal(format!("encoding a manifest: {e}"))),
        };
        match written {
            Ok(()) => {
                let took = started.elapsed();
                // One every interval: detail, not news (`RUST_LOG=sluice=debug`).
                tracing::debug!(
                    epoch,
                    pipelines = manifest.pipelines.len(),
                    took_ms = took.as_millis() as u64,
                    "checkpoint complete"
                );
                self.outcome
                    .send_modify(|o| o.completed = o.completed.max(epoch));
                self.collect_garbage(epoch).await;
            }
            Err(e) => {
                tracing::error!(epoch, error = %e, "checkpoint failed; the previous checkpoint stays valid and the next one will retry");
                self.outcome
                    .send_modify(|o| o.abandoned = o.abandoned.max(epoch));
            }
        }
        let again = std::mem::take(&mut self.lock().requested);
        if again {
            Box::pin(self.start(false)).await;
        }
    }

    /// Waits until `epoch` is complete (`true`) or abandoned (`false`).
    pub async fn wait(&self, epoch: u64) -> bool {
        let mut rx = self.outcome.subscribe();
        let done = rx
            .wait_for(|o| o.completed >= epoch || o.abandoned >= epoch)
            .await
            .map(|o| o.completed >= epoch)
            .unwrap_or(false);
        done
    }

    /// Deletes checkpoints older than the last `KEEP`, except objects a kept
    /// manifest still lists (the final state of an ended pipeline).
    async fn collect_garbage(&self, newest: u64) {
        let Some(oldest_kept) = newest.checked_sub(KEEP as u64 - 1) else {
            return;
        };
        let mut keep: HashSet<String> = HashSet::new();
        for epoch in oldest_kept..=newest {
            if let Ok(bytes) = self.get(&manifest_path(epoch)).await {
                if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                    keep.extend(m.pipelines.into_values().map(|e| e.object));
                }
            }
        }
        let listed: Vec<object_store::ObjectMeta> = match self
            .store
            .list(Some(&ObjectPath::from("checkpoints")))
            .try_collect()
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list old checkpoints to delete them");
                return;
            }
        };
        for meta in listed {
            let name = meta.location.to_string();
            let epoch = name
                .strip_prefix("checkpoints/")
                .and_then(|rest| {
                    rest.strip_prefix("manifest-")
                        .and_then(|m| m.strip_suffix(".json"))
                        .or_else(|| rest.split('/').next())
                })
                .and_then(|n| n.parse::<u64>().ok());
            let old = epoch.is_some_and(|e| e < oldest_kept);
            if old && !keep.contains(&name) {
                if let Err(e) = self.store.delete(&meta.location).await {
                    tracing::warn!(object = %name, error = %e, "cannot delete an old checkpoint");
                }
            }
        }
    }
}

fn poisoned<T>(_: T) -> SluiceError {
    SluiceError::Internal("checkpoint lock poisoned".into())
}

/// A name for this data directory, made once and kept in it.
/// The file naming this data directory's engine (see `Checkpointer::instance`).
const INSTANCE: &str = "INSTANCE";

fn instance_id(data_dir: &std::path::Path) -> Result<String> {
    let path = data_dir.join("checkpoints").join(INSTANCE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SluiceError::io(format!("reading {}", path.display()), e)),
    }
    let id = format!("{:016x}", fastrand::u64(..));
    std::fs::write(&path, &id)
        .map_err(|e| SluiceError::io(format!("writing {}", path.display()), e))?;
    Ok(id)
}

/// One pipeline's state at a barrier, as one object: the sources' part as
/// JSON, each operator's (by its node's key) and the sink's snapshot as a
/// blob.
pub fn encode_pipeline(
    epoch: u64,
    source: serde_json::Value,
    operators: &[(String, Option<Vec<u8>>)],
    sink: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    use datafusion::arrow::array::{BinaryArray, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let mut parts: Vec<String> = Vec::new();
    let mut blobs: Vec<Option<&[u8]>> = Vec::new();
    for (key, op) in operators {
        parts.push(format!("node:{key}"));
        blobs.push(op.as_deref());
    }
    parts.push("sink".into());
    blobs.push(sink.as_deref());
    let schema = Arc::new(Schema::new(vec![
        Field::new("part", DataType::Utf8, false),
        Field::new("state", DataType::Binary, true),
    ]));
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(parts)),
            Arc::new(BinaryArray::from(blobs)),
        ],
    )?;
    StateSnapshot::new(
        serde_json::json!({"epoch": epoch, "source": source, "format": 2}),
        vec![batch],
    )
    .encode()
}

pub(super) fn decode_pipeline(epoch: u64, bytes: &[u8]) -> Result<Restored> {
    use datafusion::arrow::array::{Array, AsArray};
    let snap = StateSnapshot::decode(bytes)?;
    // Format 1 counted its operators and named them by position.
    let mut positional = match snap.meta.get("format") {
        None => Some(vec![
            None;
            snap.meta["operators"].as_u64().unwrap_or(0) as usize
        ]),
        Some(_) => None,
    };
    let mut operators = std::collections::BTreeMap::new();
    let mut sink = None;
    if let Some(batch) = snap.batches.first() {
        let parts = batch.column(0).as_string::<i32>();
        let blobs = batch.column(1).as_binary::<i32>();
        for i in 0..batch.num_rows() {
            if blobs.is_null(i) {
                continue;
            }
            let state = StateSnapshot::decode(blobs.value(i))?;
            let part = parts.value(i);
            if part == "sink" {
                sink = Some(state);
            } else if let Some(key) = part.strip_prefix("node:") {
                operators.insert(key.to_string(), state);
            } else if let Some(slot) = part
                .strip_prefix("operator:")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| positional.as_mut()?.get_mut(n))
            {
                *slot = Some(state);
            }
        }
    }
    Ok(Restored {
        epoch,
        source: snap.meta["source"].clone(),
        operators,
        positional,
        sink,
    })
}
