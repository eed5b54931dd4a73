//! Parses a script of statements. Standard SQL goes to sqlparser; the
//! streaming DDL is parsed here:
//!
//! ```sql
//! CREATE SOURCE [IF NOT EXISTS] name [(col type [NOT NULL] [METADATA [FROM 'key']], …)]
//!     WITH (key = value, …)
//! CREATE SINK [IF NOT EXISTS] name FROM relation WITH (…)
//! CREATE SINK [IF NOT EXISTS] name AS SELECT … WITH (…)
//! CREATE MATERIALIZED VIEW [IF NOT EXISTS] name [WITH (…)] AS SELECT … [WITH (…)]
//! SHOW SOURCES | MATERIALIZED VIEWS | SINKS | PIPELINES
//! DESCRIBE name
//! DROP SOURCE | MATERIALIZED VIEW | SINK [IF EXISTS] name [CASCADE]
//! ```

use datafusion::sql::sqlparser::ast::{self as sql_ast, Expr, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::ast::{
    CreateSink, CreateSource, CreateView, Drop, Located, ObjectKind, SinkInput, SourceColumn,
    Statement, Watermark,
};
use super::dialect::SluiceDialect;
use super::options::Options;
use super::suggest::{closest, levenshtein};
use super::types::sql_to_arrow;
use crate::error::{Result, SluiceError};

/// Parses every statement in `sql`.
pub fn parse_script(sql: &str) -> Result<Vec<Located>> {
    super::limits::check_complexity(&SluiceDialect::default(), sql)?;
    parse_statements(sql).map_err(|e| with_keyword_hint(e, sql))
}

fn parse_statements(sql: &str) -> Result<Vec<Located>> {
    match parse_in(sql, SluiceDialect::default()) {
        Ok(all) => Ok(all),
        // An alias the version clause took (`FROM t at`): as PostgreSQL
        // reads it, when that parses.
        Err(e) => parse_in(sql, SluiceDialect::without_versions()).map_err(|_| e),
    }
}

fn parse_in(sql: &str, dialect: SluiceDialect) -> Result<Vec<Located>> {
    let mut parser = Parser::new(&dialect).try_with_sql(sql)?;
    let line_starts = line_offsets(sql);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let first = parser.peek_token();
        if first.token == Token::EOF {
            break;
        }
        let statement = parse_statement(&mut parser)?;
        let last = parser.peek_token();
        if !matches!(last.token, Token::SemiColon | Token::EOF) {
            return Err(unexpected(&parser, &last, "end of statement (;)"));
        }
        let start = first.span.start;
        let end_offset = if last.token == Token::EOF {
            sql.len()
        } else {
            offset_of(
                &line_starts,
                last.span.start.line,
                last.span.start.column,
                sql,
            )
        };
        let start_offset = offset_of(&line_starts, start.line, start.column, sql);
        out.push(Located {
            statement,
            line: start.line,
            sql: sql[start_offset..end_offset.max(start_offset)]
                .trim()
                .to_string(),
        });
    }
    Ok(out)
}

/// Parses exactly one statement (a trailing semicolon is allowed).
/// One SQL expression.
pub fn parse_expr(sql: &str) -> Result<Expr> {
    let dialect = SluiceDialect::default();
    Ok(Parser::new(&dialect).try_with_sql(sql)?.parse_expr()?)
}

pub fn parse_one(sql: &str) -> Result<Statement> {
    let mut all = parse_script(sql)?;
    match all.len() {
        1 => Ok(all.remove(0).statement),
        0 => Err(SluiceError::Parse {
            message: "empty statement".into(),
            line: 1,
            column: 1,
        }),
        n => Err(SluiceError::Parse {
            message: format!("expected one statement, found {n}"),
            line: all[1].line,
            column: 1,
        }),
    }
}

fn parse_statement(p: &mut Parser) -> Result<Statement> {
    if peek_words(p, &["CREATE", "SOURCE"]) {
        p.next_token();
        p.next_token();
        return parse_create_source(p).map(|c| Statement::CreateSource(Box::new(c)));
    }
    if peek_words(p, &["CREATE", "SINK"]) {
        p.next_token();
        p.next_token();
        return parse_create_sink(p).map(Statement::CreateSink);
    }
    if peek_words(p, &["CREATE", "MATERIALIZED", "VIEW"]) {
        for _ in 0..3 {
            p.next_token();
        }
        return parse_create_view(p).map(Statement::CreateView);
    }
    if peek_words(p, &["CREATE", "FUNCTION"])
        || peek_words(p, &["CREATE", "OR", "REPLACE", "FUNCTION"])
        || peek_words(p, &["DROP", "FUNCTION"])
    {
        return parse_function_statement(p);
    }
    if peek_words(p, &["DROP"]) {
        for (words, kind) in [
            (&["SOURCE"][..], ObjectKind::Source),
            (&["SINK"][..], ObjectKind::Sink),
            (&["MATERIALIZED", "VIEW"][..], ObjectKind::View),
            (&["VIEW"][..], ObjectKind::View),
        ] {
            let mut all = vec!["DROP"];
            all.extend_from_slice(words);
            if peek_words(p, &all) {
                for _ in &all {
                    p.next_token();
                }
                return parse_drop(p, kind).map(Statement::Drop);
            }
        }
    }
    if peek_words(p, &["EXPLAIN", "ANALYZE"])
        && !peek_words(p, &["EXPLAIN", "ANALYZE", "SELECT"])
        && !peek_words(p, &["EXPLAIN", "ANALYZE", "WITH"])
    {
        p.next_token();
        p.next_token();
        if peek_words(p, &["MATERIALIZED", "VIEW"]) {
            p.next_token();
            p.next_token();
        } else if peek_words(p, &["SINK"]) {
            p.next_token();
        }
        return parse_name(p).map(Statement::ExplainAnalyze);
    }
    if peek_words(p, &["EXPLAIN"])
        && !peek_words(p, &["EXPLAIN", "ANALYZE"])
        && !peek_words(p, &["EXPLAIN", "VERBOSE"])
    {
        p.next_token();
        return Ok(Statement::Explain(Box::new(parse_statement(p)?)));
    }
    if peek_words(p, &["DESCRIBE"]) || peek_words(p, &["DESC"]) {
        p.next_token();
        return parse_name(p).map(Statement::Describe);
    }
    for (words, stmt) in [
        (&["SHOW", "MATERIALIZED", "VIEWS"][..], Statement::ShowViews),
        (&["SHOW", "VIEWS"][..], Statement::ShowViews),
        (&["SHOW", "SOURCES"][..], Statement::ShowSources),
        (&["SHOW", "SINKS"][..], Statement::ShowSinks),
        (&["SHOW", "PIPELINES"][..], Statement::ShowPipelines),
    ] {
        if peek_words(p, words) {
            for _ in words {
                p.next_token();
            }
            return Ok(stmt);
        }
    }
    let stmt = p.parse_statement()?;
    Ok(match stmt {
        datafusion::sql::sqlparser::ast::Statement::Query(q) => Statement::Query(q),
        other => Statement::Other(Box::new(other)),
    })
}

/// `CREATE FUNCTION` / `DROP FUNCTION`, read as PostgreSQL writes them:
/// the statement's tokens (to the next `;`) parsed by sqlparser's
/// PostgreSQL dialect, which knows its function syntax.
fn parse_function_statement(p: &mut Parser) -> Result<Statement> {
    let mut tokens = Vec::new();
    loop {
        let t = p.peek_token();
        if matches!(t.token, Token::SemiColon | Token::EOF) {
            break;
        }
        tokens.push(p.next_token());
    }
    let pg = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let mut inner = Parser::new(&pg).with_tokens_with_locations(tokens);
    let statement = inner.parse_statement()?;
    let rest = inner.peek_token();
    if rest.token != Token::EOF {
        return Err(unexpected(&inner, &rest, "end of statement (;)"));
    }
    match statement {
        sql_ast::Statement::CreateFunction(f) => Ok(Statement::CreateFunction(Box::new(
            super::functions::CreateFunction::from_ast(&f)?,
        ))),
        sql_ast::Statement::DropFunction(d) => Ok(Statement::DropFunction {
            names: d
                .func_desc
                .iter()
                .map(|f| {
                    super::functions::single_name(&f.name).unwrap_or_else(|| f.name.to_string())
                })
                .collect(),
            if_exists: d.if_exists,
        }),
        other => Ok(Statement::Other(Box::new(other))),
    }
}

fn parse_create_source(p: &mut Parser) -> Result<CreateSource> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parse_name(p)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    if p.consume_token(&Token::LParen) {
        loop {
            if peek_words(p, &["WATERMARK", "FOR"]) {
                let t = p.peek_token();
                p.next_token();
                p.next_token();
                if watermark.is_some() {
                    return Err(SluiceError::Parse {
                        message: "a source has at most one WATERMARK".into(),
                        line: t.span.start.line,
                        column: t.span.start.column,
                    });
                }
                let ident = p.parse_identifier()?;
                let column = if ident.quote_style.is_some() {
                    ident.value
                } else {
                    ident.value.to_ascii_lowercase()
                };
                p.expect_keyword(Keyword::AS)?;
                watermark = Some(Watermark {
                    column,
                    expr: p.parse_expr()?,
                });
            } else {
                columns.push(parse_column(p)?);
            }
            if p.consume_token(&Token::Comma) {
                if p.consume_token(&Token::RParen) {
                    break; // trailing comma
                }
                continue;
            }
            p.expect_token(&Token::RParen)?;
            break;
        }
    }
    let options = parse_with(p)?;
    Ok(CreateSource {
        name,
        if_not_exists,
        columns,
        watermark,
        options,
    })
}

fn parse_column(p: &mut Parser) -> Result<SourceColumn> {
    // Unquoted names fold to lower case, as in PostgreSQL (and as DataFusion
    // folds them in queries); quote a name to keep its case.
    let ident = p.parse_identifier()?;
    let name = if ident.quote_style.is_some() {
        ident.value
    } else {
        ident.value.to_ascii_lowercase()
    };
    // Flink's `p_time AS PROCTIME()` (no type) or RisingWave's
    // `p_time TIMESTAMPTZ AS PROCTIME()`.
    if p.parse_keyword(Keyword::AS) {
        return parse_proctime(p, name);
    }
    let ty_token = p.peek_token();
    let sql_type = p.parse_data_type()?;
    if p.parse_keyword(Keyword::AS) {
        if !matches!(
            sql_type,
            sql_ast::DataType::Timestamp(
                _,
                sql_ast::TimezoneInfo::WithTimeZone | sql_ast::TimezoneInfo::Tz
            )
        ) {
            return Err(SluiceError::NotSupported(format!(
                "column '{name}' is {sql_type} AS …: a computed column is PROCTIME(), of type TIMESTAMPTZ"
            )));
        }
        return parse_proctime(p, name);
    }
    let data_type = sql_to_arrow(&sql_type).map_err(|e| match e {
        SluiceError::NotSupported(m) => SluiceError::NotSupported(format!(
            "{m} (column '{name}' at line {}, column {})",
            ty_token.span.start.line, ty_token.span.start.column
        )),
        other => other,
    })?;
    let mut nullable = true;
    let mut metadata = None;
    loop {
        if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            nullable = false;
        } else if p.parse_keyword(Keyword::NULL) {
            nullable = true;
        } else if peek_words(p, &["METADATA"]) {
            p.next_token();
            if p.parse_keyword(Keyword::FROM) {
                metadata = Some(p.parse_literal_string()?.to_ascii_lowercase());
            } else {
                metadata = Some(name.to_ascii_lowercase());
            }
            if metadata.as_deref() == Some(crate::format::PROCTIME) {
                return Err(SluiceError::Plan(format!(
                    "column '{name}': no connector has metadata 'proctime'; for the time \
                     a record is read write `{name} AS PROCTIME()`"
                )));
            }
        } else {
            break;
        }
    }
    Ok(SourceColumn {
        name,
        data_type,
        nullable,
        metadata,
        pg_type: super::types::sql_pg_type(&sql_type),
    })
}

/// The processing-time column `name AS PROCTIME()`: the time each record
/// is read, filled by the source's decoder (see [`crate::format`]).
fn parse_proctime(p: &mut Parser, name: String) -> Result<SourceColumn> {
    let expr = p.parse_expr()?;
    let is_proctime = match &expr {
        Expr::Function(f) => {
            f.name.to_string().eq_ignore_ascii_case("proctime")
                && match &f.args {
                    sql_ast::FunctionArguments::List(l) => l.args.is_empty(),
                    sql_ast::FunctionArguments::None => true,
                    _ => false,
                }
        }
        _ => false,
    };
    if !is_proctime {
        return Err(SluiceError::NotSupported(format!(
            "computed column '{name}' AS {expr}: the only computed source column is \
             PROCTIME() (processing time); compute other values in a view"
        )));
    }
    Ok(SourceColumn {
        name,
        data_type: datafusion::arrow::datatypes::DataType::Timestamp(
            super::types::TIMESTAMP_UNIT,
            Some("+00:00".into()),
        ),
        nullable: false,
        metadata: Some(crate::format::PROCTIME.to_string()),
        pg_type: None,
    })
}

fn parse_create_view(p: &mut Parser) -> Result<CreateView> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parse_name(p)?;
    let mut options = if peek_words(p, &["WITH"]) {
        parse_with(p)?
    } else {
        Options::new()
    };
    if !p.parse_keyword(Keyword::AS) {
        let t = p.peek_token();
        return Err(unexpected(p, &t, "AS SELECT …"));
    }
    let query = parse_query_before_with(p)?;
    if peek_words(p, &["WITH"]) {
        for (k, v) in parse_with(p)?.iter() {
            options.insert(k.clone(), v.clone())?;
        }
    }
    Ok(CreateView {
        name,
        if_not_exists,
        query,
        options,
    })
}

fn parse_drop(p: &mut Parser, kind: ObjectKind) -> Result<Drop> {
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = parse_name(p)?;
    let cascade = p.parse_keyword(Keyword::CASCADE);
    if !cascade {
        let _restrict = p.parse_keyword(Keyword::RESTRICT);
    }
    Ok(Drop {
        kind,
        name,
        if_exists,
        cascade,
    })
}

fn parse_create_sink(p: &mut Parser) -> Result<CreateSink> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parse_name(p)?;
    let input = if p.parse_keyword(Keyword::FROM) {
        SinkInput::Relation(parse_name(p)?)
    } else if p.parse_keyword(Keyword::AS) {
        SinkInput::Query(parse_query_before_with(p)?)
    } else {
        let t = p.peek_token();
        return Err(unexpected(p, &t, "FROM relation or AS SELECT …"));
    };
    let options = parse_with(p)?;
    Ok(CreateSink {
        name,
        if_not_exists,
        input,
        options,
    })
}

/// Parses the query of `CREATE SINK … AS <query> WITH (…)`. The query ends
/// at the statement's last top-level `WITH (`: left to sqlparser, a trailing
/// `FROM t WITH (…)` would be read as table hints.
fn parse_query_before_with(p: &mut Parser) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    let mut depth = 0i32;
    let mut end = None;
    let mut tokens = Vec::new();
    for i in 0.. {
        let t = p.peek_nth_token(i);
        match &t.token {
            Token::EOF | Token::SemiColon => break,
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w)
                if depth == 0
                    && w.keyword == Keyword::WITH
                    && p.peek_nth_token(i + 1).token == Token::LParen =>
            {
                end = Some(i)
            }
            _ => {}
        }
        tokens.push(t);
    }
    let Some(end) = end else {
        // No options: let sqlparser report where it stops.
        return Ok(p.parse_query()?);
    };
    tokens.truncate(end);
    let dialect = SluiceDialect::default();
    let mut sub = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let query = sub.parse_query()?;
    let rest = sub.peek_token();
    if rest.token != Token::EOF {
        return Err(unexpected(&sub, &rest, "WITH (…) after the query"));
    }
    for _ in 0..end {
        p.next_token();
    }
    Ok(query)
}

/// `WITH (key = value, …)`; keys may be dotted (`properties.acks`) or quoted.
fn parse_with(p: &mut Parser) -> Result<Options> {
    let mut options = Options::new();
    if !p.parse_keyword(Keyword::WITH) {
        let t = p.peek_token();
        return Err(unexpected(p, &t, "WITH (connector = …, …)"));
    }
    p.expect_token(&Token::LParen)?;
    if p.consume_token(&Token::RParen) {
        return Ok(options);
    }
    loop {
        let key_token = p.peek_token();
        let key = parse_option_key(p)?;
        p.expect_token(&Token::Eq)?;
        let (value, from_secret) = parse_option_value(p)?;
        if from_secret {
            options.mark_secret(&key);
        }
        options.insert(key, value).map_err(|e| {
            SluiceError::Options(format!(
                "{e} (line {}, column {})",
                key_token.span.start.line, key_token.span.start.column
            ))
        })?;
        if p.consume_token(&Token::Comma) {
            continue;
        }
        p.expect_token(&Token::RParen)?;
        break;
    }
    Ok(options)
}

fn parse_option_key(p: &mut Parser) -> Result<String> {
    let t = p.next_token();
    let mut key = match t.token {
        Token::Word(w) => w.value,
        Token::SingleQuotedString(s) => return Ok(s),
        _ => return Err(unexpected(p, &t, "an option name")),
    };
    while p.consume_token(&Token::Period) {
        let t = p.next_token();
        match t.token {
            Token::Word(w) => {
                key.push('.');
                key.push_str(&w.value);
            }
            Token::Number(n, _) => {
                key.push('.');
                key.push_str(&n);
            }
            _ => return Err(unexpected(p, &t, "an option name after '.'")),
        }
    }
    Ok(key)
}

/// An option's value, and whether it came from `secret('ENV_NAME')`.
fn parse_option_value(p: &mut Parser) -> Result<(String, bool)> {
    let t = p.peek_token();
    let secret_call = matches!(&t.token, Token::Word(w)
        if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("secret"))
        && p.peek_nth_token(1).token == Token::LParen;
    if secret_call {
        p.next_token();
        p.expect_token(&Token::LParen)?;
        let name_token = p.next_token();
        let Token::SingleQuotedString(name) = name_token.token else {
            return Err(unexpected(
                p,
                &name_token,
                "the name of an environment variable: secret('NAME')",
            ));
        };
        p.expect_token(&Token::RParen)?;
        return super::options::resolve_secret(&name).map(|v| (v, true));
    }
    parse_plain_option_value(p).map(|v| (v, false))
}

fn parse_plain_option_value(p: &mut Parser) -> Result<String> {
    let t = p.peek_token();
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => {
            p.next_token();
            Ok(w.value.clone())
        }
        _ => {
            let expr = p.parse_expr()?;
            match expr {
                Expr::Value(v) => match v.value {
                    Value::SingleQuotedString(s)
                    | Value::DoubleQuotedString(s)
                    | Value::EscapedStringLiteral(s) => Ok(s),
                    Value::Number(n, _) => Ok(n),
                    Value::Boolean(b) => Ok(b.to_string()),
                    _ => Err(unexpected(
                        p,
                        &t,
                        "a string, number or boolean option value",
                    )),
                },
                Expr::UnaryOp { op, expr } => Ok(format!("{op}{expr}")),
                _ => Err(unexpected(
                    p,
                    &t,
                    "a string, number or boolean option value",
                )),
            }
        }
    }
}

fn parse_name(p: &mut Parser) -> Result<String> {
    let t = p.peek_token();
    let name = p.parse_object_name(false)?;
    if name.0.len() != 1 {
        return Err(unexpected(p, &t, "a simple name (no schema qualifier)"));
    }
    let ident = name.0[0]
        .as_ident()
        .ok_or_else(|| unexpected(p, &t, "a simple name"))?;
    // Unquoted names fold to lower case, as in PostgreSQL.
    Ok(if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    })
}

fn peek_words(p: &Parser, words: &[&str]) -> bool {
    words.iter().enumerate().all(|(i, w)| {
        matches!(&p.peek_nth_token(i).token,
                 Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
    })
}

fn unexpected(p: &Parser, t: &TokenWithSpan, expected: &str) -> SluiceError {
    // End of input has no position of its own: point just past the last token.
    let (found, at) = if t.token == Token::EOF {
        ("end of input".to_string(), p.get_current_token().span.end)
    } else {
        (format!("'{}'", t.token), t.span.start)
    };
    SluiceError::Parse {
        message: format!("expected {expected}, found {found}"),
        line: at.line,
        column: at.column,
    }
}

/// Keywords that start a clause: a near miss of one of these is the likely
/// cause of a syntax error next to it.
const CLAUSE_KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "HAVING",
    "WINDOW",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "UNION",
    "EXCEPT",
    "INTERSECT",
];

/// Words after which a name, not an alias, comes: `FROM orders` is a table
/// (which may well be called `orders`), `t orders` an alias.
const NAME_BEFORE: &[&str] = &[
    "FROM", "JOIN", "SELECT", "AS", "BY", "ON", "AND", "OR", "NOT", "WHERE", "HAVING", "DISTINCT",
    "INTO", "TABLE", "VIEW", "SOURCE", "SINK", "EXISTS", "DESCRIBE", "DESC",
];

/// Adds `did you mean GROUP?` to a syntax error next to a misspelt clause
/// keyword. sqlparser reads `FROM t GRUOP BY k` as the table `t` aliased
/// `GRUOP` and fails on `BY`, so the word before the error counts as well as
/// the one at it.
fn with_keyword_hint(error: SluiceError, sql: &str) -> SluiceError {
    let SluiceError::Parse { line, column, .. } = &error else {
        return error;
    };
    match misspelt_keyword(sql, *line, *column) {
        Some(keyword) => error.with_hint(format!("did you mean {keyword}?")),
        None => error,
    }
}

fn misspelt_keyword(sql: &str, line: u64, column: u64) -> Option<&'static str> {
    let dialect = SluiceDialect::default();
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .ok()?;
    let tokens: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    // The first token at or after the error (none: the error is at the end).
    let at = tokens
        .iter()
        .position(|t| (t.span.start.line, t.span.start.column) >= (line, column))
        .unwrap_or(tokens.len());
    let word = |i: usize| match tokens.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let near_keyword = |w: &str| {
        if w.len() < 3 || CLAUSE_KEYWORDS.contains(&w) {
            return None;
        }
        closest(w, CLAUSE_KEYWORDS).filter(|k| levenshtein(w, k) <= 2)
    };
    // The word before the error, if it was taken for an alias: it follows
    // the end of a name, an expression or a literal.
    let alias = at.checked_sub(1).and_then(|i| {
        let after_name = match tokens.get(i.checked_sub(1)?).map(|t| &t.token) {
            Some(Token::Word(w)) => {
                w.quote_style.is_some()
                    || !NAME_BEFORE.contains(&w.value.to_ascii_uppercase().as_str())
            }
            Some(
                Token::Number(..) | Token::SingleQuotedString(_) | Token::RParen | Token::RBracket,
            ) => true,
            _ => false,
        };
        if after_name {
            near_keyword(&word(i)?)
        } else {
            None
        }
    });
    alias.or_else(|| near_keyword(&word(at)?))
}

impl From<ParserError> for Box<SluiceError> {
    fn from(e: ParserError) -> Self {
        Box::new(e.into())
    }
}

fn line_offsets(sql: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Byte offset of a 1-based (line, column-in-chars) location.
fn offset_of(lines: &[usize], line: u64, column: u64, sql: &str) -> usize {
    let Some(&start) = lines.get((line.max(1) - 1) as usize) else {
        return sql.len();
    };
    sql[start..]
        .char_indices()
        .nth((column.max(1) - 1) as usize)
        .map(|(i, _)| start + i)
        .unwrap_or(sql.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    /// `FOR SYSTEM_TIME AS OF` after a table name, and an alias the version
    /// clause would otherwise take (`at`, `before`).
    #[test]
    fn table_versions_and_aliases_that_look_like_them() {
        let query = |sql: &str| match parse_one(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
            Statement::Query(q) => q.to_string(),
            other => panic!("{sql}: {other:?}"),
        };
        let q = query("SELECT * FROM s JOIN r FOR SYSTEM_TIME AS OF s.p AS x ON s.k = x.k");
        assert!(q.contains("FOR SYSTEM_TIME AS OF s.p"), "{q}");
        for sql in [
            "SELECT at.k FROM t at",
            "SELECT before.k FROM t before WHERE before.k > 1",
        ] {
            assert_eq!(query(sql), sql);
        }
    }

    #[test]
    fn create_source_with_columns_and_options() {
        let s = parse_one(
            "CREATE SOURCE Events (k TEXT NOT NULL, v BIGINT, kk TEXT METADATA FROM 'key') \
             WITH (connector = 'kafka', properties.fetch.min.bytes = 1, start_from = earliest)",
        )
        .unwrap();
        let Statement::CreateSource(c) = s else {
            panic!("{s:?}")
        };
        assert_eq!(c.name, "events");
        assert_eq!(c.columns.len(), 3);
        assert!(!c.columns[0].nullable);
        assert_eq!(c.columns[1].data_type, DataType::Int64);
        assert_eq!(c.columns[2].metadata.as_deref(), Some("key"));
        assert_eq!(c.options.get("properties.fetch.min.bytes"), Some("1"));
        assert_eq!(c.options.get("start_from"), Some("earliest"));
    }

    #[test]
    fn create_sink_as_select_with_trailing_with() {
        let stmts = parse_script(
            "CREATE SINK s AS SELECT * FROM bids WHERE price > 1000\n\
             WITH (connector = 'file', path = 'out.jsonl');\n\
             CREATE SINK t FROM bids WITH (connector = 'stdout');",
        )
        .unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1].line, 3);
        assert!(stmts[0].sql.starts_with("CREATE SINK s AS SELECT"));
        let Statement::CreateSink(s) = &stmts[0].statement else {
            panic!()
        };
        assert!(matches!(s.input, SinkInput::Query(_)));
        assert_eq!(s.options.get("path"), Some("out.jsonl"));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_script("SELECT 1;\nCREATE SOURCE x (a BIGINT WITH (connector='datagen')")
            .unwrap_err();
        let SluiceError::Parse { line, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(line, 2);
    }

    fn hint(sql: &str) -> Option<String> {
        let err = parse_script(sql).expect_err(sql);
        assert!(matches!(err.unhinted(), SluiceError::Parse { .. }), "{err}");
        err.hint().map(str::to_string)
    }

    #[test]
    fn a_misspelt_keyword_taken_for_an_alias_is_named() {
        // sqlparser reads GRUOP as t's alias and fails at BY.
        let err = parse_script("SELECT k, count(*) FROM t GRUOP BY k").unwrap_err();
        assert_eq!(err.hint(), Some("did you mean GROUP?"));
        assert!(err.to_string().contains("found 'BY'"), "{err}");
        assert!(err.to_string().ends_with(" (did you mean GROUP?)"), "{err}");
        assert_eq!(
            hint("SELECT a FORM t").as_deref(),
            Some("did you mean FROM?")
        );
        assert_eq!(
            hint("SELECT a FROM t ORDR BY a").as_deref(),
            Some("did you mean ORDER?")
        );
    }

    #[test]
    fn a_misspelt_keyword_at_the_error_is_named() {
        assert_eq!(hint("SELCT 1").as_deref(), Some("did you mean SELECT?"));
        assert_eq!(
            hint("SELECT a FROM t WHERE a > 1 GRUOP BY a").as_deref(),
            Some("did you mean GROUP?")
        );
        assert_eq!(
            hint("SELECT a FROM t\nGROUP BY a HAVNG count(*) > 1").as_deref(),
            Some("did you mean HAVING?")
        );
    }

    #[test]
    fn names_that_only_look_like_keywords_get_no_hint() {
        // A table called orders, not a misspelt ORDER.
        assert_eq!(hint("SELECT * FROM orders )"), None);
        assert_eq!(hint("SELECT * FROM t WHERE"), None);
        assert_eq!(hint("SELECT a FROM t x y"), None);
        assert_eq!(hint("CREATE SOURCE s (a BIGINT)"), None);
    }
}
