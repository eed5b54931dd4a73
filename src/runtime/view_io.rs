//! A view's two ends outside its state (`view.rs`): the chained sink its
//! own pipeline writes through ([`ViewSink`]), and how others read it: as
//! another pipeline's input, described in the catalog ([`ViewSource`]),
//! and as a DataFusion table for ad-hoc queries ([`ViewTable`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::view::ViewState;
use crate::connectors::{SinkConnector, SinkSchema, SinkWriter, SourceConnector, SourceContext};
use crate::error::{Result, SluiceError};
use crate::snapshot::StateSnapshot;
use crate::stream::{Message, StreamBatch};

/// The sink end of a view's pipeline.
#[derive(Debug)]
pub struct ViewSink {
    pub state: Arc<ViewState>,
}

#[async_trait]
impl SinkConnector for ViewSink {
    fn kind(&self) -> &'static str {
        "materialized view"
    }

    fn chained(&self) -> bool {
        true
    }

    async fn open(&self, _schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(ViewWriter {
            state: Arc::clone(&self.state),
        }))
    }
}

struct ViewWriter {
    state: Arc<ViewState>,
}

/// However the view's pipeline ends (closed, failed, aborted), the
/// pipelines reading the view see its input end rather than wait for
/// changes that will never come.
impl Drop for ViewWriter {
    fn drop(&mut self) {
        if let Err(e) = self.state.finish() {
            tracing::warn!(view = %self.state.name, error = %e, "view not finished");
        }
    }
}

#[async_trait]
impl SinkWriter for ViewWriter {
    async fn write(&mut self, batch: &StreamBatch) -> Result<u64> {
        self.state.apply(batch).await?;
        Ok(batch.data.get_array_memory_size() as u64)
    }

    async fn watermark(&mut self, watermark: i64) -> Result<()> {
        self.state.advance(watermark).await
    }

    async fn caught_up(&mut self) -> Result<()> {
        self.state.caught_up().await
    }

    /// The view's contents go into the checkpoint, and the barrier on to
    /// the pipelines that follow the view: their state lines up with it.
    async fn prepare(&mut self, epoch: u64) -> Result<Option<StateSnapshot>> {
        let (snapshot, subscribers) = self.state.checkpoint_and_subscribers()?;
        self.state
            .broadcast(subscribers, || {
                Message::Barrier(crate::stream::Barrier {
                    epoch,
                    ..Default::default()
                })
            })
            .await?;
        Ok(Some(snapshot))
    }

    async fn recover(&mut self, _epoch: u64, state: Option<StateSnapshot>) -> Result<()> {
        match state {
            Some(s) => self.state.restore(s),
            None => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<()> {
        self.state.finish()
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        self.state.size().ok()
    }
}

/// A view as the input of another pipeline, as the catalog describes it.
/// A pipeline reads the view straight from its dispatcher (the
/// [`ViewState`] its own pipeline applies to, `runtime/input.rs`), not
/// through a source task.
#[derive(Debug)]
pub struct ViewSource {
    pub view: String,
    pub bounded: bool,
    /// The view's own input is resumable (so it replays, and says when it
    /// has caught up).
    pub resumable: bool,
}

impl ViewSource {
    /// The view `view`, filled by a pipeline reading `upstream`.
    pub fn new(view: &str, upstream: &[&dyn SourceConnector]) -> ViewSource {
        ViewSource {
            view: view.to_string(),
            bounded: upstream.iter().all(|u| u.is_bounded()),
            resumable: upstream.iter().all(|u| u.resumable()),
        }
    }
}

#[async_trait]
impl SourceConnector for ViewSource {
    async fn run(&self, _ctx: SourceContext) -> Result<()> {
        Err(SluiceError::Internal(format!(
            "view '{}' is read from its dispatcher, not by a source task",
            self.view
        )))
    }

    fn is_bounded(&self) -> bool {
        self.bounded
    }

    fn resumable(&self) -> bool {
        self.resumable
    }
}

/// A view as a DataFusion table: each scan reads one consistent snapshot.
#[derive(Debug)]
pub struct ViewTable {
    pub state: Arc<ViewState>,
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.state.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let batches = self
            .state
            .snapshot()
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let table = MemTable::try_new(self.state.schema.clone(), vec![batches])?;
        table.scan(state, projection, filters, limit).await
    }
}
