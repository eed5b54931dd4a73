//! Sluice's statements. Standard SQL (queries, SHOW, SET …) stays a
//! sqlparser statement; the streaming DDL has types of its own.

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast;

use super::options::Options;

#[derive(Debug, Clone)]
pub enum Statement {
    CreateSource(Box<CreateSource>),
    CreateSink(CreateSink),
    /// A bare continuous `SELECT`: in a script its rows go to stdout.
    Query(Box<ast::Query>),
    ShowSources,
    ShowSinks,
    ShowPipelines,
    /// Any other statement sqlparser understands; planning decides.
    Other(Box<ast::Statement>),
}

#[derive(Debug, Clone)]
pub struct CreateSource {
    pub name: String,
    pub if_not_exists: bool,
    pub columns: Vec<SourceColumn>,
    /// `WATERMARK FOR column AS expr`
    pub watermark: Option<Watermark>,
    pub options: Options,
}

#[derive(Debug, Clone)]
pub struct Watermark {
    pub column: String,
    pub expr: ast::Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumn {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// `METADATA FROM 'key'`: filled by the connector (Kafka key, timestamp…)
    /// instead of decoded from the payload.
    pub metadata: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CreateSink {
    pub name: String,
    pub if_not_exists: bool,
    pub input: SinkInput,
    pub options: Options,
}

#[derive(Debug, Clone)]
pub enum SinkInput {
    /// `CREATE SINK s FROM relation`
    Relation(String),
    /// `CREATE SINK s AS SELECT …`
    Query(Box<ast::Query>),
}

/// A statement with where it starts in the script, for error messages.
#[derive(Debug, Clone)]
pub struct Located {
    pub statement: Statement,
    pub line: u64,
    pub sql: String,
}
