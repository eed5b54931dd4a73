//! The catalog: sources and sinks by name. (Persistence in the data
//! directory comes with materialized views.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connectors::{SinkConnector, SourceDef};
use crate::error::{Result, SluiceError};
use crate::plan::StreamPlan;

#[derive(Debug, Clone)]
pub struct SinkDef {
    pub name: String,
    pub connector_name: &'static str,
    pub plan: Arc<StreamPlan>,
    pub connector: Arc<dyn SinkConnector>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    sources: BTreeMap<String, SourceDef>,
    sinks: BTreeMap<String, SinkDef>,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources.get(name)
    }

    pub fn sources(&self) -> impl Iterator<Item = &SourceDef> {
        self.sources.values()
    }

    pub fn sinks(&self) -> impl Iterator<Item = &SinkDef> {
        self.sinks.values()
    }

    fn check_free(&self, name: &str) -> Result<()> {
        let kind = if self.sources.contains_key(name) {
            "source"
        } else if self.sinks.contains_key(name) {
            "sink"
        } else {
            return Ok(());
        };
        Err(SluiceError::Catalog(format!(
            "{kind} '{name}' already exists"
        )))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.check_free(name).is_err()
    }

    pub fn add_source(&mut self, def: SourceDef) -> Result<()> {
        self.check_free(&def.name)?;
        self.sources.insert(def.name.clone(), def);
        Ok(())
    }

    pub fn add_sink(&mut self, def: SinkDef) -> Result<()> {
        self.check_free(&def.name)?;
        self.sinks.insert(def.name.clone(), def);
        Ok(())
    }

    /// The error for a relation that is not there, listing what is.
    pub fn unknown_relation(&self, name: &str) -> SluiceError {
        let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
        SluiceError::Catalog(if known.is_empty() {
            format!("relation '{name}' does not exist; no sources are defined yet")
        } else {
            format!(
                "relation '{name}' does not exist; sources are: {}",
                known.join(", ")
            )
        })
    }
}
