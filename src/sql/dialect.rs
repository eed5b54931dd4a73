//! The Sluice SQL dialect: PostgreSQL's lexical rules. The streaming DDL
//! (`CREATE SOURCE`, `CREATE SINK`) is parsed by [`super::parser`] on top of
//! sqlparser's `Parser`, the way DataFusion's `DFParser` adds its own DDL.

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

#[derive(Debug, Clone, Copy)]
pub struct SluiceDialect {
    pg: PostgreSqlDialect,
    /// Reads `FOR SYSTEM_TIME AS OF` after a table name. sqlparser then
    /// takes `AT`, `BEFORE` and `CHANGES` there as a version too, so a
    /// statement whose table has such an alias is parsed again without.
    versioning: bool,
}

impl Default for SluiceDialect {
    fn default() -> Self {
        SluiceDialect {
            pg: PostgreSqlDialect {},
            versioning: true,
        }
    }
}

impl SluiceDialect {
    /// The dialect without table versions (`FROM t at` is `t` aliased `at`).
    pub fn without_versions() -> Self {
        SluiceDialect {
            versioning: false,
            ..Self::default()
        }
    }
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

    /// `JOIN r FOR SYSTEM_TIME AS OF s.p` (a lookup join; see
    /// `plan/temporal.rs`).
    fn supports_table_versioning(&self) -> bool {
        self.versioning
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

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.pg.identifier_quote_style(identifier)
    }

    fn is_reserved_for_identifier(
        &self,
        kw: datafusion::sql::sqlparser::keywords::Keyword,
    ) -> bool {
        self.pg.is_reserved_for_identifier(kw)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.pg.is_custom_operator_part(ch)
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.pg.get_next_precedence(parser)
    }

    fn prec_value(&self, prec: datafusion::sql::sqlparser::dialect::Precedence) -> u8 {
        self.pg.prec_value(prec)
    }

    fn allow_extract_custom(&self) -> bool {
        self.pg.allow_extract_custom()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        self.pg.allow_extract_single_quotes()
    }

    /// `x::int2[]`, `'{}'::text[]`.
    fn supports_array_typedef_with_brackets(&self) -> bool {
        true
    }

    fn supports_interval_options(&self) -> bool {
        self.pg.supports_interval_options()
    }

    /// `STRUCT<name TYPE, …>` column types, as RisingWave and Flink write
    /// them.
    fn supports_struct_literal(&self) -> bool {
        true
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        true
    }

    /// `E'…\n…'` strings (psql's catalog queries use them): sqlparser reads
    /// them as values only for its own PostgreSQL dialect.
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        match parser.peek_token().token {
            Token::EscapedStringLiteral(_) => Some(parser.parse_value().map(Expr::Value)),
            _ => None,
        }
    }
}
