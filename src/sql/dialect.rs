//! The Sluice SQL dialect: PostgreSQL's lexical rules. The streaming DDL
//! (`CREATE SOURCE`, `CREATE SINK`) is parsed by [`super::parser`] on top of
//! sqlparser's `Parser`, the way DataFusion's `DFParser` adds its own DDL.

use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect};

#[derive(Debug, Default, Clone, Copy)]
pub struct SluiceDialect {
    pg: PostgreSqlDialect,
}

impl Dialect for SluiceDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        self.pg.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.pg.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.pg.is_delimited_identifier_start(ch)
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    fn supports_unicode_string_literal(&self) -> bool {
        true
    }

    fn supports_string_escape_constant(&self) -> bool {
        true
    }

    fn supports_nested_comments(&self) -> bool {
        true
    }
}
