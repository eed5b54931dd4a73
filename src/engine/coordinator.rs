//! What runs. The catalog holds definitions only (what users declared, and
//! the plans made of them); the coordinator owns what those definitions
//! run as: the pipelines and the live state of every view, which the
//! pipelines that read a view and the ad-hoc queries over it share.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::metrics::PipelineMetrics;
use crate::runtime::progress::ProgressEntry;
use crate::runtime::view::ViewState;
use crate::runtime::{Pipeline, PipelineState};

#[derive(Default)]
pub struct Coordinator {
    pipelines: Vec<Pipeline>,
    views: BTreeMap<String, Arc<ViewState>>,
}

/// A pipeline's name, how it ended and its figures.
pub type Ended = (String, PipelineState, Arc<PipelineMetrics>);

impl Coordinator {
    pub fn add_pipeline(&mut self, pipeline: Pipeline) {
        self.pipelines.push(pipeline);
    }

    /// A view's state, which its pipeline fills.
    pub fn add_view(&mut self, name: &str, state: Arc<ViewState>) {
        self.views.insert(name.to_string(), state);
    }

    pub fn view(&self, name: &str) -> Option<&Arc<ViewState>> {
        self.views.get(name)
    }

    /// Every view's state, by name.
    pub fn views(&self) -> impl Iterator<Item = (&String, &Arc<ViewState>)> {
        self.views.iter()
    }

    /// How many rows view `name` holds now.
    pub fn view_rows(&self, name: &str) -> Option<usize> {
        self.views.get(name)?.row_count().ok()
    }

    /// Stops the pipelines of object `name` for good (DROP) and lets go of
    /// its state.
    pub async fn drop_object(&mut self, name: &str) {
        let mut i = 0;
        while i < self.pipelines.len() {
            if self.pipelines[i].name == name {
                let mut p = self.pipelines.remove(i);
                p.drop_now().await;
            } else {
                i += 1;
            }
        }
        self.views.remove(name);
    }

    /// What resolves as each pipeline of `names` ends.
    pub fn done_of(
        &self,
        names: &[String],
    ) -> Vec<impl std::future::Future<Output = PipelineState> + Send + 'static> {
        self.pipelines
            .iter()
            .filter(|p| names.contains(&p.name))
            .map(|p| p.done())
            .collect()
    }

    /// The pipelines started so far, for the progress display.
    pub fn progress_entries(&self) -> Vec<ProgressEntry> {
        self.pipelines
            .iter()
            .map(|p| ProgressEntry {
                name: p.name.clone(),
                metrics: Arc::clone(&p.metrics),
                resumed: p.resumed,
                bounded: p.bounded,
            })
            .collect()
    }

    /// Waits for every pipeline to finish; returns each one's final state.
    pub async fn wait_all(&mut self) -> Vec<Ended> {
        let mut out = Vec::new();
        for p in self.pipelines.iter_mut() {
            let state = p.wait().await;
            out.push((p.name.clone(), state, Arc::clone(&p.metrics)));
        }
        out
    }

    /// What ends every running pipeline where it is.
    pub fn abort_handles(&self) -> Vec<tokio::task::AbortHandle> {
        self.pipelines
            .iter()
            .flat_map(|p| p.abort_handles())
            .collect()
    }

    /// `wait_all`, giving the pipelines `grace` in all; those still running
    /// then are aborted and reported failed.
    pub async fn wait_all_within(&mut self, grace: std::time::Duration) -> Vec<Ended> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut out = Vec::new();
        for p in self.pipelines.iter_mut() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let state = p.wait_at_most(left).await;
            out.push((p.name.clone(), state, Arc::clone(&p.metrics)));
        }
        out
    }

    /// Whether every running pipeline reads a bounded source.
    pub fn all_bounded(&self) -> bool {
        self.pipelines.iter().all(|p| p.bounded)
    }
}
