//! Stateless node: filters, projections and window assignment over whole
//! batches, chained (one operator runs them all).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use super::{expr_text, WindowKind};

/// Runs `stages` in order on each batch.
#[derive(Debug)]
pub struct StatelessNode {
    pub stages: Arc<Vec<Stage>>,
}

impl StatelessNode {
    /// Whether it assigns SESSION windows (grouped by them): the watermark
    /// it drops late rows by is then state a restart must rebuild.
    pub fn assigns_session_windows(&self) -> bool {
        self.stages.iter().any(|s| {
            matches!(
                s,
                Stage::Window {
                    kind: WindowKind::Session { .. },
                    ..
                }
            )
        })
    }

    /// Whether it assigns windows (and so drops rows behind the watermark).
    pub fn assigns_windows(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Stage::Window { .. }))
    }

    /// Its stages, as EXPLAIN shows them.
    pub fn describe(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub enum Stage {
    /// Adds `window_start` and `window_end` (and drops late rows).
    Window {
        kind: WindowKind,
        /// The event-time column in the input.
        time_column: usize,
        /// The columns it produces, by index into the input's columns
        /// followed by `window_start` and `window_end`; `None`: all of them.
        /// The scan's projection, folded in at lowering: a HOP copies each
        /// row into every window, so copying only the columns the query
        /// reads (q5: two of seven) saves most of its work.
        keep: Option<Vec<usize>>,
        /// Every column it can produce: the input's, then `window_start`
        /// and `window_end`.
        all: SchemaRef,
        /// What it produces.
        schema: SchemaRef,
    },
    Filter(Arc<dyn PhysicalExpr>),
    Project {
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    },
}

impl Stage {
    /// Columns out of this stage, when it fixes them.
    pub fn output_width(&self) -> Option<usize> {
        match self {
            Stage::Window { schema, .. } | Stage::Project { schema, .. } => {
                Some(schema.fields().len())
            }
            Stage::Filter(_) => None,
        }
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Window {
                kind, time_column, ..
            } => write!(f, "Window({kind:?} on #{time_column})"),
            Stage::Filter(p) => write!(f, "Filter({p})"),
            Stage::Project { exprs, .. } => {
                let e: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
                write!(f, "Project({})", e.join(", "))
            }
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Window {
                kind,
                time_column,
                keep,
                all,
                schema,
            } => {
                let column = all
                    .fields()
                    .get(*time_column)
                    .map(|c| c.name().as_str())
                    .unwrap_or("?");
                write!(
                    f,
                    "window {kind} on {column}, adds window_start and window_end, drops rows behind the watermark"
                )?;
                if keep.is_some() {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|c| c.name().as_str()).collect();
                    write!(f, ", keeps {}", names.join(", "))?;
                }
                Ok(())
            }
            Stage::Filter(p) => write!(f, "filter {}", expr_text(p.as_ref())),
            Stage::Project { exprs, schema } => {
                let e: Vec<String> = exprs
                    .iter()
                    .zip(schema.fields())
                    .map(|(e, field)| {
                        let text = expr_text(e.as_ref());
                        if &text == field.name() {
                            text
                        } else {
                            format!("{text} AS {}", field.name())
                        }
                    })
                    .collect();
                write!(f, "project {}", e.join(", "))
            }
        }
    }
}
