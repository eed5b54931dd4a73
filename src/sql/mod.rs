//! SQL text → statements: the dialect, the streaming DDL, WITH options and
//! SQL → Arrow types. Depends on nothing later in the flow.

pub mod ast;
pub mod dialect;
pub mod duration;
pub mod functions;
pub mod limits;
pub mod options;
pub mod parser;
pub mod relations;
pub mod rewrite;
pub mod suggest;
pub mod types;

pub use ast::{
    CreateSink, CreateSource, CreateView, Drop, Located, ObjectKind, SinkInput, SourceColumn,
    Statement, Watermark,
};
pub use duration::parse_duration;
pub use options::Options;
pub use parser::{parse_expr, parse_one, parse_script};
