//! Sluice's statements. Standard SQL (queries, SHOW, SET …) stays a
//! sqlparser statement; the streaming DDL has types of its own.

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::sql::sqlparser::ast;
use serde::{Deserialize, Serialize};

use super::options::Options;

#[derive(Debug, Clone)]
pub enum Statement {
    CreateSource(Box<CreateSource>),
    CreateSink(CreateSink),
    /// A bare continuous `SELECT`: in a script its rows go to stdout.
    Query(Box<ast::Query>),
    CreateView(CreateView),
    ShowSources,
    ShowViews,
    ShowSinks,
    ShowPipelines,
    /// `DESCRIBE name`
    Describe(String),
    Drop(Drop),
    /// `EXPLAIN` of a query, view or sink.
    Explain(Box<Statement>),
    /// `EXPLAIN ANALYZE [MATERIALIZED VIEW | SINK] name`: a running
    /// pipeline's plan with its live figures.
    ExplainAnalyze(String),
    /// `CREATE [OR REPLACE] FUNCTION … LANGUAGE sql`.
    CreateFunction(Box<super::functions::CreateFunction>),
    /// `DROP FUNCTION [IF EXISTS] f[(types)], …`.
    DropFunction {
        names: Vec<String>,
        if_exists: bool,
    },
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
    /// The PostgreSQL type when the Arrow type does not say it: `jsonb` and
    /// `json` columns are text (see [`super::types::PG_TYPE_KEY`]).
    pub pg_type: Option<&'static str>,
}

impl SourceColumn {
    /// The column as a schema field.
    pub fn field(&self) -> Field {
        let field = Field::new(&self.name, self.data_type.clone(), self.nullable);
        match self.pg_type {
            Some(pg_type) => super::types::with_pg_type(field, pg_type),
            None => field,
        }
    }
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

/// `CREATE MATERIALIZED VIEW name [WITH (…)] AS query [WITH (…)]`
#[derive(Debug, Clone)]
pub struct CreateView {
    pub name: String,
    pub if_not_exists: bool,
    pub query: Box<ast::Query>,
    pub options: Options,
}

/// `DROP SOURCE | MATERIALIZED VIEW | SINK [IF EXISTS] name [CASCADE]`
#[derive(Debug, Clone)]
pub struct Drop {
    pub kind: ObjectKind,
    pub name: String,
    pub if_exists: bool,
    pub cascade: bool,
}

/// The kinds of catalog object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Source,
    #[serde(rename = "materialized_view")]
    View,
    Sink,
    Function,
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Source => "source",
            ObjectKind::View => "materialized view",
            ObjectKind::Sink => "sink",
            ObjectKind::Function => "function",
        }
    }

    /// The keyword after DROP / CREATE.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Source => "SOURCE",
            ObjectKind::View => "MATERIALIZED VIEW",
            ObjectKind::Sink => "SINK",
            ObjectKind::Function => "FUNCTION",
        }
    }
}
