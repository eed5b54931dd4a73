//! `sluice.errors`: each pipeline's most recent bad records — where they
//! came from, why they were refused and how they began — for clients that
//! do not see the server's log. Bounded: the newest [`KEPT`] per pipeline,
//! each record cut to [`RECORD_PREFIX`] bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;

use super::Monitor;
use crate::error::Result;

/// Bad records kept per pipeline.
pub const KEPT: usize = 100;
/// Bytes of a bad record shown.
pub const RECORD_PREFIX: usize = 200;

/// One bad record as `sluice.errors` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenError {
    /// When it was refused (epoch ms).
    pub at: i64,
    pub source: String,
    /// `file:line`, or topic, partition and offset.
    pub position: String,
    pub reason: String,
    /// The record's first bytes, as text (invalid UTF-8 replaced).
    pub record: String,
}

/// A pipeline's newest bad records, oldest first.
#[derive(Debug, Default)]
pub struct RecentErrors(Mutex<VecDeque<SeenError>>);

impl RecentErrors {
    pub fn push(&self, source: &str, position: &str, reason: &str, record: &[u8]) {
        let seen = SeenError {
            at: chrono::Utc::now().timestamp_millis(),
            source: source.to_string(),
            position: position.to_string(),
            reason: reason.to_string(),
            record: prefix(record),
        };
        // A poisoned lock only loses the listing, never the pipeline.
        if let Ok(mut errors) = self.0.lock() {
            if errors.len() == KEPT {
                errors.pop_front();
            }
            errors.push_back(seen);
        }
    }

    pub fn list(&self) -> Vec<SeenError> {
        self.0
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The first [`RECORD_PREFIX`] bytes of `record` as text, cut on a
/// character boundary, with `…` when there is more.
fn prefix(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(&record[..record.len().min(RECORD_PREFIX + 4)]);
    if record.len() <= RECORD_PREFIX {
        return text.into_owned();
    }
    let mut end = RECORD_PREFIX.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The columns, in order.
pub fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("pipeline"),
        text("source"),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        text("position"),
        text("reason"),
        text("record"),
    ]))
}

/// Every pipeline's recent bad records, pipeline by pipeline, oldest first.
pub fn errors(monitor: &Monitor) -> Result<RecordBatch> {
    let rows: Vec<(String, SeenError)> = monitor
        .pipelines()
        .iter()
        .flat_map(|p| {
            p.recent_errors
                .list()
                .into_iter()
                .map(|e| (p.name.clone(), e))
        })
        .collect();
    let text = |f: fn(&(String, SeenError)) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns = vec![
        text(|(p, _)| p),
        text(|(_, e)| &e.source),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            rows.iter().map(|(_, e)| e.at),
        )) as ArrayRef,
        text(|(_, e)| &e.position),
        text(|(_, e)| &e.reason),
        text(|(_, e)| &e.record),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Registers `sluice.errors` (`schema` is the system schema) for ad-hoc
/// queries.
pub fn register(ctx: &SessionContext, schema: &str, monitor: &Arc<Monitor>) -> Result<()> {
    ctx.register_table(
        TableReference::partial(schema, "errors"),
        Arc::new(ErrorsTable(Arc::clone(monitor))),
    )?;
    Ok(())
}

/// `sluice.errors` for ad-hoc queries, read when a query scans it.
#[derive(Debug)]
pub struct ErrorsTable(pub Arc<Monitor>);

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for ErrorsTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let batch = errors(&self.0)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let table = datafusion::catalog::MemTable::try_new(schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PipelineMetrics;

    #[test]
    fn the_newest_errors_are_kept_per_pipeline() {
        let monitor = Arc::new(Monitor::default());
        let p = Arc::new(PipelineMetrics::new("p", "events"));
        monitor.register(Arc::clone(&p));
        for i in 0..KEPT + 5 {
            p.recent_errors
                .push("events", &format!("in.jsonl:{i}"), "bad", b"{}");
        }
        let batch = errors(&monitor).expect("batch");
        assert_eq!(batch.num_rows(), KEPT);
        let positions = batch.column(3).as_any().downcast_ref::<StringArray>();
        let positions = positions.expect("position column");
        assert_eq!(positions.value(0), "in.jsonl:5", "the oldest are dropped");
        assert_eq!(positions.value(KEPT - 1), format!("in.jsonl:{}", KEPT + 4));
    }

    #[test]
    fn records_are_cut_on_a_character_boundary() {
        assert_eq!(prefix(b"{\"a\": 1}"), "{\"a\": 1}");
        let long = "é".repeat(RECORD_PREFIX);
        let cut = prefix(long.as_bytes());
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.len() <= RECORD_PREFIX + '…'.len_utf8(), "{}", cut.len());
        assert_eq!(prefix(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    }
}
