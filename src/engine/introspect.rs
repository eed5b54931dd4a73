//! Introspection: DESCRIBE, SHOW, EXPLAIN and EXPLAIN ANALYZE.

use super::ddl::select_all;
use super::*;

impl Engine {
    pub(super) fn describe(&self, name: &str) -> Result<RecordBatch> {
        let schema = if let Some(s) = self.catalog.relation(name) {
            s.schema.clone()
        } else if let Some(s) = self.catalog.sink(name) {
            s.plan.output_schema.clone()
        } else {
            return Err(self.catalog.unknown_relation(name));
        };
        let keys = self
            .catalog
            .relation(name)
            .and_then(|r| r.changelog.clone())
            .unwrap_or_default();
        text_table(
            &["column", "type", "nullable", "key"],
            vec![
                schema.fields().iter().map(|f| f.name().clone()).collect(),
                schema
                    .fields()
                    .iter()
                    .map(|f| sql::types::field_to_sql(f))
                    .collect(),
                schema
                    .fields()
                    .iter()
                    .map(|f| f.is_nullable().to_string())
                    .collect(),
                (0..schema.fields().len())
                    .map(|i| keys.contains(&i).to_string())
                    .collect(),
            ],
        )
    }

    pub(super) fn show_views(&self) -> Result<RecordBatch> {
        let views: Vec<_> = self.catalog.views().collect();
        let shape = |v: &ViewDef| match self.coordinator.view(&v.name).map(|s| &s.mode) {
            Some(ViewMode::Append) => "append-only",
            Some(ViewMode::Keyed(_)) => "one row per key",
            Some(ViewMode::Multiset) => "updating rows",
            None => "",
        };
        text_table(
            &["name", "reads", "kind", "rows"],
            vec![
                views.iter().map(|v| v.name.clone()).collect(),
                views.iter().map(|v| v.plan.sources().join(", ")).collect(),
                views.iter().map(|v| shape(v).to_string()).collect(),
                views
                    .iter()
                    .map(|v| {
                        self.coordinator
                            .view_rows(&v.name)
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    })
                    .collect(),
            ],
        )
    }

    /// `EXPLAIN`: DataFusion's plan for an ad-hoc query; the logical plan
    /// and the streaming stages for a continuous one.
    pub(super) async fn explain(&self, inner: Statement) -> Result<RecordBatch> {
        let (query, sink_kind, lateness, ttl) = match inner {
            Statement::Query(q) if self.is_ad_hoc(&q)? => {
                let (ctx, plan) = self.ad_hoc_plan(&q).await?;
                let frame = ctx.execute_logical_plan(plan).await?.explain(false, false)?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let batches = frame.collect().await?;
                return Ok(concat_batches(&schema, &batches)?);
            }
            Statement::Query(q) => (q, "stdout", None, None),
            Statement::CreateView(mut c) => {
                let lateness = c.options.take_duration("allowed_lateness")?;
                let ttl = c.options.take_duration("state_ttl")?;
                (c.query, "materialized view", lateness, ttl)
            }
            Statement::CreateSink(mut c) => {
                let lateness = c.options.take_duration("allowed_lateness")?;
                let ttl = c.options.take_duration("state_ttl")?;
                // Validated as CREATE SINK would (nothing is opened).
                let kind = connectors::create_sink(&mut c.options)?.1.kind();
                match c.input {
                    SinkInput::Query(q) => (q, kind, lateness, ttl),
                    SinkInput::Relation(name) => (select_all(&name)?, kind, lateness, ttl),
                }
            }
            _ => {
                return Err(SluiceError::NotSupported(
                    "EXPLAIN of this statement; EXPLAIN takes a SELECT, CREATE MATERIALIZED VIEW or CREATE SINK".into(),
                ))
            }
        };
        let plan = Arc::new(
            self.planner
                .plan_query(&self.catalog, &query)
                .await?
                .with_allowed_lateness(lateness.unwrap_or_default())?
                .with_state_ttl(ttl)?,
        );
        let nodes = self.stream_nodes(&plan, sink_kind)?;
        text_table(
            &["plan_type", "plan"],
            vec![
                vec!["logical_plan".into(), "streaming_plan".into()],
                vec![
                    plan.logical.clone(),
                    crate::metrics::table::plan_tree(&nodes, None),
                ],
            ],
        )
    }

    /// The stages a pipeline running `plan` into a `sink_kind` sink has.
    pub(super) fn stream_nodes(
        &self,
        plan: &Arc<StreamPlan>,
        sink_kind: &str,
    ) -> Result<Vec<Arc<crate::metrics::NodeMetrics>>> {
        let metrics = Arc::new(PipelineMetrics::default());
        let sources: Vec<_> = self.sources_of(plan)?.into_iter().cloned().collect();
        // As it runs on several cores: with the exchange, if it has one.
        crate::runtime::pipeline::stages(plan, &sources, sink_kind, &metrics, 2)?;
        Ok(metrics.nodes())
    }

    /// `EXPLAIN ANALYZE name`: the running pipeline's plan with its figures.
    pub(super) fn explain_analyze(&self, name: &str) -> Result<RecordBatch> {
        let Some(p) = self
            .monitor
            .pipelines()
            .into_iter()
            .find(|p| p.name == name)
        else {
            return Err(match self.catalog.kind_of(name) {
                Some(kind) => SluiceError::Catalog(format!(
                    "{} '{name}' has no running pipeline to analyze",
                    kind.noun()
                )),
                None => {
                    SluiceError::Catalog(format!("no materialized view or sink named '{name}'"))
                }
            });
        };
        let stats = p.stats();
        text_table(
            &["plan_type", "plan"],
            vec![
                vec!["streaming_plan".into()],
                vec![crate::metrics::table::plan_tree(&p.nodes(), Some(&stats))],
            ],
        )
    }

    /// The relations `plan` reads, one per source node, in its order.
    pub(super) fn show_sources(&self) -> Result<RecordBatch> {
        let rows: Vec<_> = self.catalog.sources().collect();
        text_table(
            &["name", "connector", "columns"],
            vec![
                rows.iter().map(|s| s.name.clone()).collect(),
                rows.iter().map(|s| s.connector_name.to_string()).collect(),
                rows.iter()
                    .map(|s| {
                        s.schema
                            .fields()
                            .iter()
                            .map(|f| {
                                // As CREATE SOURCE spells the column (and
                                // DESCRIBE its type), not as Arrow does.
                                let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                                let ty = sql::types::field_to_sql(f);
                                format!("{} {ty}{not_null}", f.name())
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .collect(),
            ],
        )
    }

    pub(super) fn show_sinks(&self) -> Result<RecordBatch> {
        let rows: Vec<_> = self.catalog.sinks().collect();
        text_table(
            &["name", "connector", "reads", "changelog"],
            vec![
                rows.iter().map(|s| s.name.clone()).collect(),
                rows.iter().map(|s| s.connector_name.to_string()).collect(),
                rows.iter().map(|s| s.plan.sources().join(", ")).collect(),
                rows.iter().map(|s| s.plan.changelog.to_string()).collect(),
            ],
        )
    }

    pub(super) fn show_pipelines(&self) -> Result<RecordBatch> {
        crate::metrics::table::pipelines(&self.monitor)
    }
}

pub(super) fn text_table(names: &[&str], columns: Vec<Vec<String>>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}
