//! DDL: CREATE SOURCE / SINK / MATERIALIZED VIEW / FUNCTION and DROP,
//! planned into catalog definitions and the pipelines that run them.

use super::*;

impl Engine {
    pub(super) fn create_source(&mut self, c: CreateSource, sql: &str) -> Result<Outcome> {
        if self.already_restored(ObjectKind::Source, &c.name, sql)? {
            return Ok(Outcome::Done("CREATE SOURCE"));
        }
        if self.catalog.contains(&c.name) {
            if c.if_not_exists {
                return Ok(Outcome::Done("CREATE SOURCE"));
            }
            return Err(SluiceError::Duplicate(format!(
                "source '{}' already exists",
                c.name
            )));
        }
        let mut c = c;
        if c.columns.is_empty() {
            let fixed = c
                .options
                .get("connector")
                .and_then(|n| connectors::connector(&n.to_ascii_lowercase()).ok())
                .and_then(|e| e.columns);
            if let Some(columns_of) = fixed {
                c.columns = columns_of(&c.options)?;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for col in &c.columns {
            if !seen.insert(col.name.to_ascii_lowercase()) {
                return Err(SluiceError::Plan(format!(
                    "column '{}' is declared twice in source '{}'",
                    col.name, c.name
                )));
            }
        }
        let decodes = c
            .options
            .get("connector")
            .and_then(|n| connectors::connector(&n.to_ascii_lowercase()).ok())
            .is_some_and(|e| e.source_decodes);
        if decodes && c.columns.iter().all(|col| col.metadata.is_some()) {
            return Err(SluiceError::Plan(format!(
                "source '{}' needs a column list naming the fields of its records, \
                 e.g. CREATE SOURCE {} (key TEXT, value BIGINT) WITH (…)",
                c.name, c.name
            )));
        }
        let schema = Arc::new(Schema::new(
            c.columns.iter().map(|col| col.field()).collect::<Vec<_>>(),
        ));
        let watermark = match &c.watermark {
            None => None,
            Some(w) => {
                let Ok(field) = schema.field_with_name(&w.column) else {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {}: source '{}' has no such column",
                        w.column, c.name
                    )));
                };
                if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {}: the column must be a TIMESTAMP, not {}",
                        w.column,
                        field.data_type()
                    )));
                }
                let expr = self.planner.physical_expr(&schema, &w.expr)?;
                let ty = expr.data_type(&schema)?;
                if !matches!(ty, DataType::Timestamp(_, _)) {
                    return Err(SluiceError::Plan(format!(
                        "WATERMARK FOR {} AS {}: the expression must be a TIMESTAMP, not {ty}",
                        w.column, w.expr
                    )));
                }
                Some((w.column.clone(), expr))
            }
        };
        let watermark_sql = c
            .watermark
            .as_ref()
            .map(|w| format!("{} AS {}", w.column, w.expr));
        self.check_files(&c.options)?;
        let mut def = connectors::create_source(&c.name, c.columns, schema, c.options, watermark)?;
        def.watermark_sql = watermark_sql;
        self.catalog.add_source(def, sql)?;
        Ok(Outcome::Done("CREATE SOURCE"))
    }

    pub(super) async fn create_sink(&mut self, mut c: CreateSink, sql: &str) -> Result<Outcome> {
        if self.already_restored(ObjectKind::Sink, &c.name, sql)? {
            return Ok(Outcome::Done("CREATE SINK"));
        }
        if self.catalog.contains(&c.name) {
            if c.if_not_exists {
                return Ok(Outcome::Done("CREATE SINK"));
            }
            return Err(SluiceError::Duplicate(format!(
                "sink '{}' already exists",
                c.name
            )));
        }
        let lateness = c
            .options
            .take_duration("allowed_lateness")?
            .unwrap_or_default();
        let ttl = c.options.take_duration("state_ttl")?;
        let parallelism = take_parallelism(&mut c.options)?;
        self.check_files(&c.options)?;
        let (connector_name, sink) = connectors::create_sink(&mut c.options)?;
        let query = match c.input {
            SinkInput::Query(q) => q,
            SinkInput::Relation(name) => {
                if self.catalog.relation(&name).is_none() {
                    return Err(self.catalog.unknown_relation(&name));
                }
                select_all(&name)?
            }
        };
        let plan = self
            .planner
            .plan_query(&self.catalog, &query)
            .await?
            .with_allowed_lateness(lateness)?
            .with_state_ttl(ttl)?;
        let mut spec = self.pipeline_spec(c.name.clone(), plan, Arc::clone(&sink))?;
        if let Some(n) = parallelism {
            spec.parallelism = n;
        }
        self.catalog.add_sink(
            SinkDef {
                name: c.name,
                connector_name,
                plan: Arc::clone(&spec.plan),
                connector: sink,
            },
            sql,
        )?;
        Ok(Outcome::Start(Box::new(spec)))
    }

    pub(super) async fn create_view(&mut self, mut c: CreateView, sql: &str) -> Result<Outcome> {
        if self.already_restored(ObjectKind::View, &c.name, sql)? {
            return Ok(Outcome::Done("CREATE MATERIALIZED VIEW"));
        }
        if self.catalog.contains(&c.name) {
            if c.if_not_exists {
                return Ok(Outcome::Done("CREATE MATERIALIZED VIEW"));
            }
            return Err(SluiceError::Duplicate(format!(
                "{} '{}' already exists",
                self.catalog
                    .kind_of(&c.name)
                    .map(|k| k.noun())
                    .unwrap_or("relation"),
                c.name
            )));
        }
        let retention = c.options.take_duration("retention")?;
        let lateness = c
            .options
            .take_duration("allowed_lateness")?
            .unwrap_or_default();
        let ttl = c.options.take_duration("state_ttl")?;
        let parallelism = take_parallelism(&mut c.options)?;
        std::mem::take(&mut c.options).finish(
            &format!("materialized view '{}'", c.name),
            &["retention", "allowed_lateness", "parallelism", "state_ttl"],
        )?;
        let plan = self
            .planner
            .plan_query(&self.catalog, &c.query)
            .await?
            .with_allowed_lateness(lateness)?
            .with_state_ttl(ttl)?;
        let mode = match (plan.changelog, plan.key_columns.is_empty()) {
            (false, _) => ViewMode::Append,
            (true, false) => ViewMode::Keyed(plan.key_columns.clone()),
            // A global aggregate: one row, updated in place.
            (true, true) if plan.is_global_aggregate() => ViewMode::Keyed(vec![]),
            (true, true) => ViewMode::Multiset,
        };
        let upstream = self.sources_of(&plan)?;
        let retention = match retention {
            None => None,
            Some(_) if mode != ViewMode::Append => {
                return Err(SluiceError::Plan(format!(
                    "retention applies to views that only add rows (windowed aggregates, filters); \
                     '{}' keeps one current row per group, so nothing ages out",
                    c.name
                )))
            }
            Some(d) => {
                let schema = &plan.output_schema;
                let time_column = upstream
                    .iter()
                    .find_map(|u| u.watermark.as_ref())
                    .map(|w| w.column.as_str());
                let column = schema
                    .index_of(WINDOW_END)
                    .ok()
                    .or_else(|| time_column.and_then(|t| schema.index_of(t).ok()))
                    .ok_or_else(|| {
                        SluiceError::Plan(format!(
                            "retention needs a window_end column or the source's event-time \
                             column ({}) in the output of '{}'",
                            time_column.unwrap_or("declare one with WATERMARK FOR"),
                            c.name
                        ))
                    })?;
                Some(Retention {
                    column,
                    ms: d.as_millis() as i64,
                })
            }
        };
        let schema = plan.output_schema.clone();
        let state = ViewState::new(&c.name, schema.clone(), mode.clone(), retention)?;
        let input = connectors::SourceDef {
            name: c.name.clone(),
            connector_name: "materialized view",
            schema: schema.clone(),
            columns: schema
                .fields()
                .iter()
                .map(|f| sql::SourceColumn {
                    name: f.name().clone(),
                    data_type: f.data_type().clone(),
                    nullable: f.is_nullable(),
                    metadata: None,
                    pg_type: sql::types::pg_type_of(f).and_then(sql::types::known_pg_type),
                })
                .collect(),
            connector: Arc::new(ViewSource::new(
                &c.name,
                &upstream
                    .iter()
                    .map(|s| s.connector.as_ref())
                    .collect::<Vec<_>>(),
            )),
            decoding: None,
            dead_letter: None,
            watermark: None,
            watermark_sql: None,
            changelog: match &mode {
                ViewMode::Append => None,
                ViewMode::Keyed(k) => Some(k.clone()),
                ViewMode::Multiset => Some(vec![]),
            },
        };
        let sink = Arc::new(ViewSink {
            state: Arc::clone(&state),
        });
        let mut spec = self.pipeline_spec(c.name.clone(), plan, sink)?;
        if let Some(n) = parallelism {
            spec.parallelism = n;
        }
        // A view's state is in memory: restored from the last checkpoint,
        // or (without checkpoints) rebuilt from its input on every start,
        // and always applied (what its subscribers skip is theirs to skip).
        spec.replay = self.checkpoints.is_none();
        spec.resume = false;
        self.catalog.add_view(
            ViewDef {
                name: c.name.clone(),
                plan: Arc::clone(&spec.plan),
                input,
            },
            sql,
        )?;
        self.coordinator.add_view(&c.name, state);
        Ok(Outcome::Start(Box::new(spec)))
    }

    pub(super) fn create_function(
        &mut self,
        c: sql::functions::CreateFunction,
        sql: &str,
    ) -> Result<Outcome> {
        let name = c.function.name.clone();
        if self.already_restored(ObjectKind::Function, &name, sql)? {
            return Ok(Outcome::Done("CREATE FUNCTION"));
        }
        if self.is_builtin_function(&name)? {
            return Err(SluiceError::Duplicate(format!(
                "function {name} already exists as a built-in function; choose another name"
            )));
        }
        match self.catalog.kind_of(&name) {
            Some(ObjectKind::Function) if c.if_not_exists => {
                return Ok(Outcome::Done("CREATE FUNCTION"))
            }
            Some(ObjectKind::Function) if c.or_replace => {
                let users = self.catalog.function_users(&name);
                if !users.is_empty() {
                    return Err(SluiceError::Catalog(format!(
                        "cannot replace function '{name}': {} inlined it when created; \
                         drop them first",
                        users.join(", ")
                    )));
                }
            }
            _ => {}
        }
        self.catalog.add_function(c.function, sql, c.or_replace)?;
        Ok(Outcome::Done("CREATE FUNCTION"))
    }

    /// Whether `name` is a function DataFusion, Sluice or the system
    /// catalog (psql's `format_type` …) already has.
    pub(super) fn is_builtin_function(&self, name: &str) -> Result<bool> {
        let ctx = self.ad_hoc_context()?;
        if let Some(system) = &self.system {
            system.register(&ctx, &self.catalog, &|v| self.coordinator.view_rows(v))?;
        }
        let state = ctx.state();
        Ok(state.scalar_functions().contains_key(name)
            || state.aggregate_functions().contains_key(name)
            || state.window_functions().contains_key(name))
    }

    pub(super) fn drop_functions(&mut self, names: &[String], if_exists: bool) -> Result<Outcome> {
        // Every name is checked before any is dropped.
        let mut dropping = Vec::new();
        for name in names {
            match self.catalog.kind_of(name) {
                Some(ObjectKind::Function) => {}
                None if if_exists => continue,
                None => {
                    return Err(SluiceError::Catalog(format!(
                        "function {name} does not exist"
                    )))
                }
                Some(other) => {
                    return Err(SluiceError::Catalog(format!(
                        "'{name}' is a {}, not a function",
                        other.noun()
                    )))
                }
            }
            let users = self.catalog.function_users(name);
            if !users.is_empty() {
                return Err(SluiceError::Catalog(format!(
                    "cannot drop function '{name}': {} use{} it; drop {} first",
                    users.join(", "),
                    if users.len() == 1 { "s" } else { "" },
                    if users.len() == 1 { "it" } else { "them" }
                )));
            }
            dropping.push(name);
        }
        for name in dropping {
            self.catalog.remove(name);
        }
        Ok(Outcome::Done("DROP FUNCTION"))
    }

    pub(super) async fn drop_object(&mut self, d: sql::Drop) -> Result<Outcome> {
        let tag = match d.kind {
            ObjectKind::Source => "DROP SOURCE",
            ObjectKind::View => "DROP MATERIALIZED VIEW",
            ObjectKind::Sink => "DROP SINK",
            ObjectKind::Function => "DROP FUNCTION",
        };
        let Some(kind) = self.catalog.kind_of(&d.name) else {
            if d.if_exists {
                return Ok(Outcome::Done(tag));
            }
            return Err(SluiceError::Catalog(format!(
                "{} '{}' does not exist",
                d.kind.noun(),
                d.name
            )));
        };
        if kind != d.kind {
            return Err(SluiceError::Catalog(format!(
                "'{}' is a {}, not a {}; use DROP {} {}",
                d.name,
                kind.noun(),
                d.kind.noun(),
                kind.keyword(),
                d.name
            )));
        }
        let dependents = self.catalog.dependents_closure(&d.name);
        if !dependents.is_empty() && !d.cascade {
            let list: Vec<String> = dependents
                .iter()
                .map(|(k, n)| format!("{} '{n}'", k.noun()))
                .collect();
            return Err(SluiceError::Dependents(format!(
                "cannot drop {} '{}': {} {} on it; drop {} first, or use DROP {} {} CASCADE",
                kind.noun(),
                d.name,
                list.join(", "),
                if list.len() == 1 { "depends" } else { "depend" },
                if list.len() == 1 { "it" } else { "them" },
                kind.keyword(),
                d.name
            )));
        }
        let mut doomed: Vec<String> = dependents.into_iter().map(|(_, n)| n).collect();
        doomed.push(d.name.clone());
        for name in &doomed {
            self.monitor.remove(name);
            self.coordinator.drop_object(name).await;
            self.catalog.remove(name);
            self.restored.remove(name);
            if let Some(store) = &self.store {
                connectors::position::remove(store.dir(), name);
            }
        }
        Ok(Outcome::Done(tag))
    }
}

/// A view's or sink's `parallelism` option: how many cores its pipeline
/// may keep busy (at least 1).
fn take_parallelism(options: &mut sql::Options) -> Result<Option<usize>> {
    match options.take_parsed::<usize>("parallelism", "a number of cores")? {
        Some(0) => Err(SluiceError::Options(
            "option 'parallelism' must be at least 1".into(),
        )),
        n => Ok(n),
    }
}

pub(super) fn select_all(name: &str) -> Result<Box<ast::Query>> {
    let quoted = format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""));
    match sql::parse_one(&quoted)? {
        Statement::Query(q) => Ok(q),
        _ => Err(SluiceError::Internal(
            "SELECT * did not parse as a query".into(),
        )),
    }
}
