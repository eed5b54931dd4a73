//! The catalog: sources, materialized views and sinks by name, with the SQL
//! that created each, in creation order. [`store`] keeps that list in the
//! data directory so a restart can recreate everything.

pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connectors::{SinkConnector, SourceDef};
use crate::error::{Result, SluiceError};
use crate::plan::StreamPlan;
use crate::sql::functions::SqlFunction;

pub use store::{Definition, Kind};

#[derive(Debug, Clone)]
pub struct SinkDef {
    pub name: String,
    pub connector_name: &'static str,
    pub plan: Arc<StreamPlan>,
    pub connector: Arc<dyn SinkConnector>,
}

#[derive(Debug, Clone)]
pub struct ViewDef {
    pub name: String,
    pub plan: Arc<StreamPlan>,
    /// The view as the input of other pipelines.
    pub input: SourceDef,
}

#[derive(Debug, Default)]
pub struct Catalog {
    sources: BTreeMap<String, SourceDef>,
    views: BTreeMap<String, ViewDef>,
    sinks: BTreeMap<String, SinkDef>,
    /// SQL functions users defined, inlined where they are called.
    functions: BTreeMap<String, SqlFunction>,
    /// What created each object, in order.
    definitions: Vec<Definition>,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources.get(name)
    }

    /// A relation a query can read: a source or a view.
    pub fn relation(&self, name: &str) -> Option<&SourceDef> {
        self.sources
            .get(name)
            .or_else(|| self.views.get(name).map(|v| &v.input))
    }

    /// The event-time column of source `name` (its WATERMARK FOR).
    pub fn event_time(&self, name: &str) -> Option<String> {
        self.relation(name)
            .and_then(|s| s.watermark.as_ref().map(|w| w.column.clone()))
    }

    pub fn relations(&self) -> impl Iterator<Item = &SourceDef> {
        self.sources
            .values()
            .chain(self.views.values().map(|v| &v.input))
    }

    pub fn sources(&self) -> impl Iterator<Item = &SourceDef> {
        self.sources.values()
    }

    pub fn view(&self, name: &str) -> Option<&ViewDef> {
        self.views.get(name)
    }

    pub fn views(&self) -> impl Iterator<Item = &ViewDef> {
        self.views.values()
    }

    pub fn sink(&self, name: &str) -> Option<&SinkDef> {
        self.sinks.get(name)
    }

    pub fn sinks(&self) -> impl Iterator<Item = &SinkDef> {
        self.sinks.values()
    }

    pub fn definitions(&self) -> &[Definition] {
        &self.definitions
    }

    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.name == name)
    }

    /// What kind of object `name` is, if it exists.
    pub fn kind_of(&self, name: &str) -> Option<Kind> {
        if self.sources.contains_key(name) {
            Some(Kind::Source)
        } else if self.views.contains_key(name) {
            Some(Kind::View)
        } else if self.sinks.contains_key(name) {
            Some(Kind::Sink)
        } else if self.functions.contains_key(name) {
            Some(Kind::Function)
        } else {
            None
        }
    }

    fn check_free(&self, name: &str) -> Result<()> {
        match self.kind_of(name) {
            None => Ok(()),
            Some(kind) => Err(SluiceError::Duplicate(format!(
                "{} '{name}' already exists",
                kind.noun()
            ))),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.kind_of(name).is_some()
    }

    pub fn add_source(&mut self, def: SourceDef, sql: &str) -> Result<()> {
        self.check_free(&def.name)?;
        self.definitions
            .push(Definition::new(Kind::Source, &def.name, sql));
        self.sources.insert(def.name.clone(), def);
        Ok(())
    }

    pub fn add_view(&mut self, def: ViewDef, sql: &str) -> Result<()> {
        self.check_free(&def.name)?;
        self.definitions
            .push(Definition::new(Kind::View, &def.name, sql));
        self.views.insert(def.name.clone(), def);
        Ok(())
    }

    pub fn add_sink(&mut self, def: SinkDef, sql: &str) -> Result<()> {
        self.check_free(&def.name)?;
        self.definitions
            .push(Definition::new(Kind::Sink, &def.name, sql));
        self.sinks.insert(def.name.clone(), def);
        Ok(())
    }

    /// `query` in the shape the planner takes: user SQL functions inlined,
    /// then the spellings `sql::rewrite` knows (windows over each source's
    /// event time, Flink/Arroyo group windows, JSON operators …). The one
    /// place continuous and ad-hoc queries are prepared.
    pub fn rewrite_query(&self, query: &mut datafusion::sql::sqlparser::ast::Query) -> Result<()> {
        crate::sql::functions::inline(query, &self.functions)?;
        crate::sql::rewrite::rewrite_query(query, &|source| self.event_time(source))
    }

    /// The SQL functions, by name.
    pub fn functions(&self) -> &BTreeMap<String, SqlFunction> {
        &self.functions
    }

    /// Adds a function, or (`replace`) replaces the one of its name.
    pub fn add_function(&mut self, f: SqlFunction, sql: &str, replace: bool) -> Result<()> {
        if replace && self.functions.contains_key(&f.name) {
            for d in self.definitions.iter_mut().filter(|d| d.name == f.name) {
                *d = Definition::new(Kind::Function, &f.name, sql);
            }
        } else {
            self.check_free(&f.name)?;
            self.definitions
                .push(Definition::new(Kind::Function, &f.name, sql));
        }
        self.functions.insert(f.name.clone(), f);
        Ok(())
    }

    /// The views and sinks whose SQL calls the function `name`.
    pub fn function_users(&self, name: &str) -> Vec<String> {
        // A lower-case name is written in any case; another only quoted.
        let call = |sql: &str| {
            let hay = if name == name.to_lowercase() {
                sql.to_lowercase()
            } else {
                sql.to_string()
            };
            hay.match_indices(name).any(|(at, _)| {
                let before = hay[..at].chars().next_back();
                let after = hay[at + name.len()..].trim_start_matches('"').trim_start();
                after.starts_with('(') && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        };
        self.definitions
            .iter()
            .filter(|d| {
                d.name != name && matches!(d.kind, Kind::View | Kind::Sink | Kind::Function)
            })
            .filter(|d| call(&d.sql))
            .map(|d| format!("{} '{}'", d.kind.noun(), d.name))
            .collect()
    }

    /// The views and sinks that read `name` directly.
    pub fn dependents(&self, name: &str) -> Vec<(Kind, String)> {
        let views = self
            .views
            .values()
            .filter(|v| v.plan.reads(name))
            .map(|v| (Kind::View, v.name.clone()));
        let sinks = self
            .sinks
            .values()
            .filter(|s| s.plan.reads(name))
            .map(|s| (Kind::Sink, s.name.clone()));
        views.chain(sinks).collect()
    }

    /// `name` and everything that reads it, transitively, dependents first.
    pub fn dependents_closure(&self, name: &str) -> Vec<(Kind, String)> {
        let mut out = Vec::new();
        for (kind, dep) in self.dependents(name) {
            for d in self.dependents_closure(&dep) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
            if !out.contains(&(kind, dep.clone())) {
                out.push((kind, dep));
            }
        }
        out
    }

    /// Removes one object (its dependents must be gone already).
    pub fn remove(&mut self, name: &str) {
        self.sources.remove(name);
        self.views.remove(name);
        self.sinks.remove(name);
        self.functions.remove(name);
        self.definitions.retain(|d| d.name != name);
    }

    /// The error for a relation that is not there, listing what is.
    pub fn unknown_relation(&self, name: &str) -> SluiceError {
        let known: Vec<&str> = self
            .sources
            .keys()
            .chain(self.views.keys())
            .map(String::as_str)
            .collect();
        SluiceError::Catalog(if known.is_empty() {
            format!("relation '{name}' does not exist; no sources are defined yet")
        } else {
            format!(
                "relation '{name}' does not exist; sources and views are: {}",
                known.join(", ")
            )
        })
    }
}
