//! Source node: the rows of a catalog relation (a source, or a view the
//! query reads), as the relation's connector delivers them.

/// Reads relation `name`.
#[derive(Debug, Clone)]
pub struct SourceNode {
    pub name: String,
}
