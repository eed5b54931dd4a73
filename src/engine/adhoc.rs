//! Ad-hoc queries: a client's SELECT over the views' current state (and
//! the system tables), planned by DataFusion under the engine's read lock
//! and run without it (`AdHocPlan`), within the shared query memory.

use super::*;

impl Engine {
    /// A client's SELECT must read views that exist (a source would make it
    /// run forever).
    pub(super) fn check_ad_hoc(&self, q: &ast::Query) -> Result<()> {
        let relations = self.relations(q)?;
        for r in &relations {
            if self.is_system(r) {
                continue;
            }
            let known = in_public_schema(r) && self.catalog.relation(r.table()).is_some();
            if !known {
                return Err(self.catalog.unknown_relation(&r.to_string()));
            }
        }
        if self.only_views(&relations) {
            Ok(())
        } else {
            Err(not_a_view_query())
        }
    }

    /// Whether a SELECT reads only views (a snapshot query) rather than a
    /// source (a continuous query).
    pub(super) fn is_ad_hoc(&self, q: &ast::Query) -> Result<bool> {
        Ok(self.only_views(&self.relations(q)?))
    }

    pub(super) fn only_views(&self, relations: &[TableReference]) -> bool {
        relations.iter().all(|r| {
            self.is_system(r) || (in_public_schema(r) && self.catalog.view(r.table()).is_some())
        })
    }

    /// The relations `q` reads once the system catalog has rewritten it.
    pub(super) fn relations(&self, q: &ast::Query) -> Result<Vec<TableReference>> {
        relations_of(self.adapt(q)?.as_ref())
    }

    /// `q` as the planner's rewrites and the system catalog change it.
    pub(super) fn adapt<'q>(&self, q: &'q ast::Query) -> Result<std::borrow::Cow<'q, ast::Query>> {
        let mut q = q.clone();
        self.catalog.rewrite_query(&mut q)?;
        if let Some(system) = &self.system {
            system.rewrite(&self.catalog, &mut q)?;
        }
        Ok(std::borrow::Cow::Owned(q))
    }

    /// A relation of the system catalog, or a table function that computes
    /// rows (`generate_series`), that no view shadows.
    pub(super) fn is_system(&self, r: &TableReference) -> bool {
        if is_sluice_table(r) {
            return true;
        }
        if r.schema().is_none()
            && BATCH_TABLE_FUNCTIONS.contains(&r.table())
            && self.catalog.relation(r.table()).is_none()
        {
            return true;
        }
        let shadowed = r.schema().is_none() && self.catalog.view(r.table()).is_some();
        !shadowed && self.system.as_ref().is_some_and(|s| s.provides(r))
    }

    /// A DataFusion context with every view as a table of its snapshot, in
    /// schema `public` of database `sluice`.
    pub(super) fn ad_hoc_context(&self) -> Result<SessionContext> {
        let mut config =
            crate::plan::session_config().with_default_catalog_and_schema(DATABASE, "public");
        // TEXT is Utf8, as in views (Utf8View trips CASE over mixed inputs).
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        // Ad-hoc queries never spill: --query-memory-mb is a hard cap, so a
        // query over it fails the same way every time (53200) instead of
        // filling the temporary directory's disk on some runs.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::clone(&self.query_memory))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        crate::functions::register(&ctx);
        if let Some(database) = ctx.catalog(DATABASE) {
            database.register_schema(SYSTEM_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
            ctx.register_table(
                TableReference::partial(SYSTEM_SCHEMA, "pipelines"),
                Arc::new(crate::metrics::table::PipelinesTable(Arc::clone(
                    &self.monitor,
                ))),
            )?;
            crate::metrics::errors::register(&ctx, SYSTEM_SCHEMA, &self.monitor)?;
        }
        for (name, state) in self.coordinator.views() {
            ctx.register_table(
                name.as_str(),
                Arc::new(ViewTable {
                    state: Arc::clone(state),
                }),
            )?;
        }
        Ok(ctx)
    }

    pub(super) async fn ad_hoc_plan(
        &self,
        q: &ast::Query,
    ) -> Result<(SessionContext, LogicalPlan)> {
        let ctx = self.ad_hoc_context()?;
        if let Some(system) = &self.system {
            system.register(&ctx, &self.catalog, &|v| self.coordinator.view_rows(v))?;
        }
        let q = self.adapt(q)?;
        let plan = ctx.state().statement_to_plan(query_statement(&q)).await?;
        Ok((ctx, plan))
    }

    /// Runs a SELECT over the views' current contents.
    pub async fn run_ad_hoc(&self, q: &ast::Query) -> Result<RecordBatch> {
        self.plan_ad_hoc(q).await?.run().await
    }

    /// Plans a SELECT over the views' current contents. The plan reads the
    /// views' state, not the engine: run it without holding the engine, so
    /// no session waits on another's query.
    pub async fn plan_ad_hoc(&self, q: &ast::Query) -> Result<AdHocPlan> {
        let (ctx, plan) = self.ad_hoc_plan(q).await?;
        Ok(AdHocPlan { ctx, plan })
    }

    /// `sql` planned as a client's ad-hoc SELECT, when it is one (`None`
    /// for any other statement, which [`Engine::execute_for_client`] runs).
    pub async fn client_query(&self, sql_text: &str) -> Result<Option<AdHocPlan>> {
        let Statement::Query(q) = sql::parse_one(sql_text)? else {
            return Ok(None);
        };
        self.check_ad_hoc(&q)?;
        Ok(Some(self.plan_ad_hoc(&q).await?))
    }

    /// Futures that resolve when the pipelines feeding the views an ad-hoc
    /// query reads have ended.
    pub fn inputs_done(
        &self,
        q: &ast::Query,
    ) -> Result<Vec<impl std::future::Future<Output = PipelineState> + Send + 'static>> {
        let mut names: Vec<String> = Vec::new();
        let mut todo: Vec<String> = relations_of(q)?
            .iter()
            .map(|r| r.table().to_string())
            .collect();
        while let Some(name) = todo.pop() {
            if let Some(v) = self.catalog.view(&name) {
                if !names.contains(&name) {
                    names.push(name.clone());
                    todo.extend(v.plan.sources().into_iter().map(str::to_string));
                }
            }
        }
        Ok(self.coordinator.done_of(&names))
    }
}

/// An ad-hoc SELECT, planned against the views' state as of planning.
pub struct AdHocPlan {
    ctx: SessionContext,
    plan: LogicalPlan,
}

impl AdHocPlan {
    /// The rows it returns.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(self.plan.schema().as_arrow().clone())
    }

    /// The types of its parameters `$1`…`$n` as their use implies them
    /// (`col = $1`, `col = ANY($1)`, `$1::bigint`); `None` where nothing
    /// does (PostgreSQL then takes text).
    pub fn parameter_types(&self, n: usize) -> Result<Vec<Option<DataType>>> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::{Cast, Expr, ExprSchemable, TryCast};
        let mut types: std::collections::HashMap<String, DataType> = Default::default();
        self.plan.apply_with_subqueries(|plan| {
            // The type of an expression over this node's input.
            let type_of = |e: &Expr| {
                plan.inputs()
                    .iter()
                    .find_map(|input| e.get_type(input.schema()).ok())
            };
            plan.apply_expressions(|expr| {
                expr.apply(|e| {
                    let (id, data_type) = match e {
                        Expr::Placeholder(p) => {
                            (&p.id, p.field.as_ref().map(|f| f.data_type().clone()))
                        }
                        Expr::Cast(Cast { expr, field })
                        | Expr::TryCast(TryCast { expr, field }) => match expr.as_ref() {
                            Expr::Placeholder(p) => (&p.id, Some(field.data_type().clone())),
                            _ => return Ok(TreeNodeRecursion::Continue),
                        },
                        // `x = ANY($1)` is `array_has($1, x)`: $1 is a list
                        // of x's type.
                        Expr::ScalarFunction(f) if f.name() == "array_has" => {
                            match f.args.as_slice() {
                                [Expr::Placeholder(p), needle] => {
                                    (&p.id, type_of(needle).map(|t| DataType::new_list(t, true)))
                                }
                                _ => return Ok(TreeNodeRecursion::Continue),
                            }
                        }
                        _ => return Ok(TreeNodeRecursion::Continue),
                    };
                    if let Some(t) = data_type {
                        types.entry(id.clone()).or_insert(t);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        Ok((1..=n)
            .map(|i| types.get(&format!("${i}")).cloned())
            .collect())
    }

    /// The plan with its parameters filled in (`$1` is `values[0]`), each
    /// cast to the type its use implies.
    pub fn with_parameters(self, values: Vec<ScalarValue>) -> Result<AdHocPlan> {
        let types = self.parameter_types(values.len())?;
        let values = values
            .into_iter()
            .zip(types)
            .map(|(v, t)| match t {
                Some(t) if !v.is_null() && v.data_type() != t => v.cast_to(&t),
                Some(t) if v.is_null() => ScalarValue::try_from(&t),
                _ => Ok(v),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(AdHocPlan {
            ctx: self.ctx,
            plan: self.plan.with_param_values(values)?,
        })
    }

    /// Runs it to the end.
    pub async fn run(self) -> Result<RecordBatch> {
        let pool = Arc::clone(&self.ctx.runtime_env().memory_pool);
        let frame = self.ctx.execute_logical_plan(self.plan).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        // The result counts against the query memory too, batch by batch.
        let result = MemoryConsumer::new("ad-hoc query result").register(&pool);
        let mut stream = frame.execute_stream().await?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            result.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        Ok(concat_batches(&schema, &batches)?)
    }
}

fn not_a_view_query() -> SluiceError {
    SluiceError::NotSupported(
        "a SELECT over a source runs forever: create a materialized view and SELECT from it, \
         or stream it with COPY (SUBSCRIBE (SELECT …)) TO STDOUT"
            .into(),
    )
}

fn query_statement(q: &ast::Query) -> DFStatement {
    DFStatement::Statement(Box::new(ast::Statement::Query(Box::new(q.clone()))))
}

/// The tables a query names (CTEs excluded; window functions like TUMBLE
/// count as names, so such a query is never ad-hoc).
fn relations_of(q: &ast::Query) -> Result<Vec<TableReference>> {
    let (relations, _) = resolve_table_references(&query_statement(q), true)?;
    Ok(relations)
}

/// DataFusion's table functions that compute their rows (no stream to
/// read): a SELECT from them is ad-hoc.
const BATCH_TABLE_FUNCTIONS: &[&str] = &["generate_series", "range"];

/// Views live in schema `public` of database `sluice`: `v`, `public.v` and
/// `sluice.public.v` name the same view.
/// `sluice.pipelines` and `sluice.errors` (also as `sluice.sluice.…`).
fn is_sluice_table(r: &TableReference) -> bool {
    matches!(r.table(), "pipelines" | "errors")
        && r.schema() == Some(SYSTEM_SCHEMA)
        && r.catalog().is_none_or(|c| c == DATABASE)
}

fn in_public_schema(r: &TableReference) -> bool {
    r.schema().is_none_or(|s| s == "public") && r.catalog().is_none_or(|c| c == DATABASE)
}
