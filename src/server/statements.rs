//! The statements the server answers itself (SET, SHOW, COPY, DECLARE,
//! FETCH, SUBSCRIBE, transaction control), recognised before the engine
//! sees the text, and how a query string splits into statements.

use std::time::Duration;

use crate::error::{Result, SluiceError};

/// What a statement asks of the server.
#[derive(Debug, Clone)]
pub enum Command {
    Empty,
    Begin,
    Commit,
    Rollback,
    /// Accepted and answered with this tag (DISCARD, DEALLOCATE, RESET …).
    Tag(&'static str),
    Set(String, String),
    Show(String),
    Subscribe(SubscribeSpec),
    CopySubscribe(SubscribeSpec),
    Declare {
        name: String,
        body: CursorBody,
        /// `WITH HOLD`: the cursor outlives its transaction.
        hold: bool,
    },
    /// `COPY (SELECT …) TO STDOUT`, `COPY view TO STDOUT`.
    CopyQuery(CopySpec),
    Fetch {
        name: String,
        count: usize,
        timeout: Option<Duration>,
    },
    /// CLOSE name, or CLOSE ALL (`None`).
    Close(Option<String>),
    /// `CREATE|ALTER|DROP USER|ROLE`.
    User(super::users::UserCommand),
    /// `GRANT` / `REVOKE`.
    Grant(super::grants::GrantCommand),
    /// Anything else: the engine's SQL.
    Engine(String),
}

/// What a cursor reads.
#[derive(Debug, Clone)]
pub enum CursorBody {
    Subscribe(SubscribeSpec),
    /// A SELECT, run when the cursor is declared.
    Query(String),
}

/// How `COPY … TO STDOUT` writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// `COPY (query) | relation [(columns)] TO STDOUT [WITH (options)]`.
#[derive(Debug, Clone)]
pub struct CopySpec {
    pub query: String,
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: Option<String>,
    pub null: Option<String>,
}

/// `SUBSCRIBE [TO] view | (query) [WITH (snapshot = false,
/// slow_reader_timeout = '30s')]`.
#[derive(Debug, Clone)]
pub struct SubscribeSpec {
    /// The continuous query whose changes are streamed.
    pub query: String,
    pub snapshot: bool,
    /// How long the subscription may wait on a client that reads nothing
    /// while its buffer is full, before it is closed with an error (so one
    /// slow client never holds the view back for long).
    pub slow_reader_timeout: Duration,
}

/// The default `slow_reader_timeout`.
pub const SLOW_READER_TIMEOUT: Duration = Duration::from_secs(30);

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

/// Strips a leading keyword (case-insensitive) and the space after it.
fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let t = text.trim_start();
    // `get`: the keyword's length may fall inside a multi-byte character.
    if t.get(..keyword.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(keyword))
        && t[keyword.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_')
    {
        Some(t[keyword.len()..].trim_start())
    } else {
        None
    }
}

/// psql writes `a OPERATOR(pg_catalog.~) b`, psqlODBC
/// `a operator(pg_catalog.=) b`; only PostgreSQL's own parser reads that,
/// so it becomes `a ~ b` before parsing.
pub fn normalize(sql: &str) -> std::borrow::Cow<'_, str> {
    const OPERATOR: &str = "operator(pg_catalog.";
    // ASCII lowercase keeps every byte offset of `sql`.
    let lower = sql.to_ascii_lowercase();
    if !lower.contains(OPERATOR) {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut from = 0;
    while let Some(at) = lower[from..].find(OPERATOR).map(|i| i + from) {
        let after = at + OPERATOR.len();
        let Some(end) = lower[after..].find(')').map(|i| i + after) else {
            break;
        };
        out.push_str(&sql[from..at]);
        out.push_str(sql[after..end].trim());
        from = end + 1;
    }
    out.push_str(&sql[from..]);
    out.into()
}

pub fn classify(text: &str) -> Result<Command> {
    if without_comments(text)
        .trim()
        .trim_matches(';')
        .trim()
        .is_empty()
    {
        return Ok(Command::Empty);
    }
    let text = normalize(text);
    let text = text.trim().trim_end_matches(';').trim();
    let w = words(text);
    let first = w.first().map(String::as_str).unwrap_or("");
    let second = w.get(1).map(String::as_str).unwrap_or("");
    if super::users::is_user_statement(&w) {
        return Ok(Command::User(super::users::parse(text)?));
    }
    if super::grants::is_grant_statement(&w) {
        return Ok(Command::Grant(super::grants::parse(text)?));
    }
    Ok(match first {
        "" => Command::Empty,
        "begin" | "start" => Command::Begin,
        "commit" | "end" => Command::Commit,
        "rollback" | "abort" => Command::Rollback,
        "discard" => Command::Tag("DISCARD ALL"),
        // Savepoints in a read-only transaction: nothing to keep or undo.
        "savepoint" => Command::Tag("SAVEPOINT"),
        "release" => Command::Tag("RELEASE"),
        "deallocate" => Command::Tag("DEALLOCATE"),
        "reset" => Command::Tag("RESET"),
        "listen" | "unlisten" => Command::Tag("LISTEN"),
        "set" => parse_set(text)?,
        "show"
            if !matches!(
                second,
                "sources" | "sinks" | "materialized" | "views" | "pipelines"
            ) =>
        {
            Command::Show(w[1..].join(" "))
        }
        "subscribe" => Command::Subscribe(parse_subscribe(text)?),
        "copy" => parse_copy(text)?,
        "declare" => parse_declare(text)?,
        "fetch" => parse_fetch(text)?,
        "close" => Command::Close(match second {
            "all" => None,
            _ => Some(cursor_name(text.split_whitespace().nth(1).unwrap_or(""))),
        }),
        _ => Command::Engine(text.to_string()),
    })
}

fn parse_set(text: &str) -> Result<Command> {
    let rest = strip_keyword(text, "set").unwrap_or("");
    let rest = strip_keyword(rest, "session")
        .or_else(|| strip_keyword(rest, "local"))
        .unwrap_or(rest);
    if let Some(tz) = strip_keyword(rest, "time").and_then(|r| strip_keyword(r, "zone")) {
        return Ok(Command::Set("timezone".into(), unquote(tz)));
    }
    let (name, value) = match rest.find('=') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => {
            let mut parts = rest.splitn(2, char::is_whitespace);
            let name = parts.next().unwrap_or("");
            let value = parts.next().unwrap_or("");
            (name, strip_keyword(value, "to").unwrap_or(value))
        }
    };
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(SluiceError::Parse {
            line: 1,
            column: 1,
            message: "SET needs a setting name: SET name = value".into(),
        });
    }
    Ok(Command::Set(name, unquote(value)))
}

/// A SET value as written: a string literal or a quoted identifier
/// (pgcli's `set time zone "Europe/Paris"`) stands for its text.
fn unquote(v: &str) -> String {
    let v = v.trim();
    let quoted = |q: char| {
        v.strip_prefix(q)
            .and_then(|s| s.strip_suffix(q))
            .map(|s| s.replace(&format!("{q}{q}"), &q.to_string()))
    };
    quoted('\'')
        .or_else(|| quoted('"'))
        .unwrap_or_else(|| v.to_string())
}

/// The text inside the parentheses that open `text`, and what follows.
fn parenthesized(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if !text.starts_with('(') {
        return None;
    }
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some((&text[1..i], &text[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `WITH (a = x, b = 'y')` → pairs, names lower-cased.
fn with_options(text: &str) -> Result<Vec<(String, String)>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let bad = || SluiceError::Parse {
        line: 1,
        column: 1,
        message: format!("expected WITH (option = value, …), found '{text}'"),
    };
    let inner = strip_keyword(text, "with")
        .and_then(parenthesized)
        .filter(|(_, rest)| rest.trim().is_empty())
        .ok_or_else(bad)?
        .0;
    inner
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            Ok((k.trim().to_ascii_lowercase(), unquote(v)))
        })
        .collect()
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(SluiceError::Options(format!(
            "option '{name}' must be true or false, not '{v}'"
        ))),
    }
}

pub fn parse_subscribe(text: &str) -> Result<SubscribeSpec> {
    let rest = strip_keyword(text, "subscribe").unwrap_or(text);
    let rest = strip_keyword(rest, "to").unwrap_or(rest);
    let (query, options) = match parenthesized(rest) {
        Some((q, after)) => (q.trim().to_string(), after),
        None => {
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() {
                return Err(SluiceError::Parse {
                    line: 1,
                    column: 1,
                    message: "SUBSCRIBE needs a view: SUBSCRIBE TO v, or SUBSCRIBE (SELECT …)"
                        .into(),
                });
            }
            (format!("SELECT * FROM {name}"), &rest[end..])
        }
    };
    let mut snapshot = true;
    let mut slow_reader_timeout = SLOW_READER_TIMEOUT;
    for (k, v) in with_options(options)? {
        match k.as_str() {
            "snapshot" => snapshot = parse_bool(&k, &v)?,
            "slow_reader_timeout" => {
                slow_reader_timeout = crate::sql::parse_duration("slow_reader_timeout", &v)?;
                if slow_reader_timeout.is_zero() {
                    return Err(SluiceError::Options(
                        "slow_reader_timeout must be longer than 0".into(),
                    ));
                }
            }
            _ => {
                return Err(SluiceError::Options(format!(
                    "unknown SUBSCRIBE option '{k}'; it has: snapshot, slow_reader_timeout"
                )))
            }
        }
    }
    Ok(SubscribeSpec {
        query,
        snapshot,
        slow_reader_timeout,
    })
}

fn parse_copy(text: &str) -> Result<Command> {
    let rest = strip_keyword(text, "copy").unwrap_or(text);
    let (query, after) = match parenthesized(rest) {
        Some((inner, after)) => {
            if strip_keyword(inner, "subscribe").is_some() {
                if !is_to_stdout(after) {
                    return Err(SluiceError::NotSupported(
                        "COPY (SUBSCRIBE …) only goes TO STDOUT".into(),
                    ));
                }
                return Ok(Command::CopySubscribe(parse_subscribe(inner)?));
            }
            (inner.trim().to_string(), after)
        }
        None => {
            // COPY relation [(a, b)] TO STDOUT
            let rest = rest.trim_start();
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(rest.len());
            let name = &rest[..end];
            let (columns, after) = match parenthesized(&rest[end..]) {
                Some((cols, after)) => (cols.trim().to_string(), after),
                None => ("*".to_string(), &rest[end..]),
            };
            if name.is_empty() {
                return Err(copy_syntax());
            }
            (format!("SELECT {columns} FROM {name}"), after)
        }
    };
    let w = words(after);
    if w.first().map(String::as_str) == Some("from") {
        return Err(SluiceError::NotSupported(
            "COPY … FROM: Sluice's relations are filled by their pipelines; \
             read from a file with a file source instead"
                .into(),
        ));
    }
    if !is_to_stdout(after) {
        return Err(SluiceError::NotSupported(
            "COPY … TO a server file: use COPY … TO STDOUT (psql: \\copy … TO 'file')".into(),
        ));
    }
    let options = strip_keyword(after, "to")
        .and_then(|r| strip_keyword(r, "stdout"))
        .unwrap_or("");
    let mut spec = CopySpec {
        query,
        format: CopyFormat::Text,
        header: false,
        delimiter: None,
        null: None,
    };
    copy_options(options, &mut spec)?;
    Ok(Command::CopyQuery(spec))
}

fn copy_syntax() -> SluiceError {
    SluiceError::Parse {
        line: 1,
        column: 1,
        message: "expected COPY (SELECT …) TO STDOUT or COPY relation TO STDOUT".into(),
    }
}

fn is_to_stdout(after: &str) -> bool {
    let w = words(after);
    w.first().map(String::as_str) == Some("to") && w.get(1).map(String::as_str) == Some("stdout")
}

/// COPY's options, new style (`WITH (FORMAT csv, HEADER)`) or old
/// (`WITH CSV HEADER`, `BINARY`, `DELIMITER ','`).
fn copy_options(text: &str, spec: &mut CopySpec) -> Result<()> {
    let text = strip_keyword(text, "with").unwrap_or(text).trim();
    let items: Vec<String> = match parenthesized(text) {
        Some((inner, rest)) if rest.trim().is_empty() => {
            inner.split(',').map(|s| s.trim().to_string()).collect()
        }
        _ => {
            // Old style: keywords, some with a value after them.
            let mut items = Vec::new();
            let mut tokens = text.split_whitespace().peekable();
            while let Some(t) = tokens.next() {
                let t = t.to_ascii_lowercase();
                match t.as_str() {
                    "delimiter" | "null" | "quote" | "escape" | "encoding" => {
                        let value = tokens.next().unwrap_or("");
                        items.push(format!("{t} {value}"));
                    }
                    "as" => {}
                    _ => items.push(t),
                }
            }
            items
        }
    };
    for item in items.iter().filter(|i| !i.is_empty()) {
        let (key, value) = match item.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_ascii_lowercase(), unquote(v)),
            None => (item.to_ascii_lowercase(), String::new()),
        };
        match (key.as_str(), value.to_ascii_lowercase().as_str()) {
            ("format", "text") => spec.format = CopyFormat::Text,
            ("format", "csv") | ("csv", "") => spec.format = CopyFormat::Csv,
            ("format", "binary") | ("binary", "") => spec.format = CopyFormat::Binary,
            ("header", v) => spec.header = v.is_empty() || parse_bool("header", v)?,
            ("delimiter", _) if value.chars().count() == 1 => spec.delimiter = Some(value),
            ("null", _) => spec.null = Some(value),
            ("encoding", "utf8" | "utf-8") => {}
            ("quote" | "escape", "\"") => {}
            _ => {
                return Err(SluiceError::Options(format!(
                    "COPY option '{item}' is not supported; COPY takes FORMAT text|csv|binary, \
                     HEADER, DELIMITER 'c' and NULL 'text'"
                )))
            }
        }
    }
    Ok(())
}

fn parse_declare(text: &str) -> Result<Command> {
    let rest = strip_keyword(text, "declare").unwrap_or(text);
    let mut parts = rest.splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or("").to_string();
    let mut rest = parts.next().unwrap_or("");
    let mut hold = false;
    // DECLARE name [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR SUBSCRIBE …
    loop {
        let next = [
            "no",
            "scroll",
            "binary",
            "insensitive",
            "cursor",
            "with",
            "without",
            "hold",
        ]
        .iter()
        .find_map(|k| strip_keyword(rest, k).map(|r| (*k, r)));
        match next {
            Some((keyword, r)) => {
                // WITH HOLD, not WITHOUT HOLD.
                hold |= keyword == "with" && strip_keyword(r, "hold").is_some();
                rest = r
            }
            None => break,
        }
    }
    let Some(body) = strip_keyword(rest, "for") else {
        return Err(SluiceError::Parse {
            line: 1,
            column: 1,
            message: "expected DECLARE name CURSOR FOR SUBSCRIBE …".into(),
        });
    };
    let body = if strip_keyword(body, "subscribe").is_some() {
        CursorBody::Subscribe(parse_subscribe(body)?)
    } else {
        CursorBody::Query(body.trim().to_string())
    };
    Ok(Command::Declare {
        name: cursor_name(&name),
        body,
        hold,
    })
}

/// A cursor's name: `"Name"` keeps its case, a bare name is lower-cased.
fn cursor_name(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => word.to_ascii_lowercase(),
    }
}

fn parse_fetch(text: &str) -> Result<Command> {
    let rest = strip_keyword(text, "fetch").unwrap_or(text);
    let (body, options) = match rest.to_ascii_lowercase().find(" with") {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let bad = || SluiceError::Parse {
        line: 1,
        column: 1,
        message:
            "expected FETCH [FORWARD] [count | ALL | NEXT] [FROM] cursor [WITH (timeout = '1s')]"
                .into(),
    };
    let mut w: Vec<&str> = body.split_whitespace().collect();
    let name = cursor_name(w.pop().ok_or_else(bad)?);
    let direction: Vec<String> = w
        .iter()
        .map(|x| x.to_ascii_lowercase())
        .filter(|x| x != "from" && x != "in" && x != "forward")
        .collect();
    let count = match direction.as_slice() {
        [] => 1,
        [one] if one == "next" => 1,
        [all] if all == "all" => usize::MAX,
        [n] => n.parse::<usize>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let mut timeout = None;
    for (k, v) in with_options(options)? {
        match k.as_str() {
            "timeout" => timeout = Some(crate::sql::parse_duration("timeout", &v)?),
            _ => {
                return Err(SluiceError::Options(format!(
                    "unknown FETCH option '{k}'; it has: timeout"
                )))
            }
        }
    }
    Ok(Command::Fetch {
        name,
        count,
        timeout,
    })
}

/// Splits a simple-protocol query string at top-level semicolons (not
/// those in quotes, parentheses or comments). Pieces that are only
/// comments are dropped; a string of nothing but comments is one empty
/// statement (Grafana's `-- ping` is answered like `;`).
pub fn split_statements(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '-') if chars.peek().is_some_and(|&(_, n)| n == '-') => {
                // A line comment runs to the end of the line.
                for (_, n) in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            (None, '/') if chars.peek().is_some_and(|&(_, n)| n == '*') => {
                chars.next();
                let mut prev = ' ';
                for (_, n) in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ';') if depth <= 0 => {
                out.push(query[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(query[start..].to_string());
    out.retain(|s| !without_comments(s).trim().is_empty());
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// `sql` with its comments (`-- …` to the end of a line, `/* … */`)
/// blanked, quoted text left alone.
pub fn without_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// Settings and cursors of one connection.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_operators_become_plain_ones() {
        assert_eq!(
            normalize("WHERE c.relname OPERATOR(pg_catalog.~) '^(v)$' COLLATE pg_catalog.default"),
            "WHERE c.relname ~ '^(v)$' COLLATE pg_catalog.default"
        );
        assert_eq!(
            normalize(
                "where tc.relname operator(pg_catalog.=) 'v' AND x operator(pg_catalog.<=) 2"
            ),
            "where tc.relname = 'v' AND x <= 2"
        );
        assert_eq!(normalize("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn statements_are_split_outside_quotes_and_comments() {
        assert_eq!(
            split_statements("SET a = 1; SELECT ';'; "),
            vec!["SET a = 1", " SELECT ';'"]
        );
        assert_eq!(
            split_statements("SELECT 1; -- a; b\n/* c; */ SELECT 2; -- end"),
            vec!["SELECT 1", " -- a; b\n/* c; */ SELECT 2"]
        );
        assert_eq!(split_statements("-- ping"), vec![""]);
        assert!(matches!(classify("-- ping").unwrap(), Command::Empty));
        assert!(matches!(classify("/* x */ ;").unwrap(), Command::Empty));
    }

    #[test]
    fn statements_are_classified() {
        assert!(matches!(classify("BEGIN").unwrap(), Command::Begin));
        assert!(matches!(
            classify("SET extra_float_digits = 3").unwrap(),
            Command::Set(n, v) if n == "extra_float_digits" && v == "3"
        ));
        assert!(matches!(
            classify("SET application_name TO 'x y'").unwrap(),
            Command::Set(n, v) if n == "application_name" && v == "x y"
        ));
        assert!(
            matches!(classify("SHOW TRANSACTION ISOLATION LEVEL").unwrap(), Command::Show(n) if n == "transaction isolation level")
        );
        assert!(matches!(
            classify("SHOW SOURCES").unwrap(),
            Command::Engine(_)
        ));
        match classify("COPY (SUBSCRIBE TO v WITH (snapshot = false)) TO STDOUT").unwrap() {
            Command::CopySubscribe(s) => {
                assert_eq!(s.query, "SELECT * FROM v");
                assert!(!s.snapshot);
            }
            c => panic!("{c:?}"),
        }
        match classify("DECLARE c CURSOR FOR SUBSCRIBE (SELECT a FROM v WHERE a > ')')").unwrap() {
            Command::Declare {
                name,
                body: CursorBody::Subscribe(subscribe),
                ..
            } => {
                assert_eq!(name, "c");
                assert_eq!(subscribe.query, "SELECT a FROM v WHERE a > ')'");
            }
            c => panic!("{c:?}"),
        }
        match classify("DECLARE \"Big\" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1").unwrap() {
            Command::Declare {
                name,
                body: CursorBody::Query(q),
                hold,
            } => assert_eq!(
                (name.as_str(), q.as_str(), hold),
                ("Big", "SELECT 1", false)
            ),
            c => panic!("{c:?}"),
        }
        for (sql, want) in [
            ("FETCH FORWARD 100 FROM _psql_cursor", (100, "_psql_cursor")),
            ("FETCH ALL IN c", (usize::MAX, "c")),
            ("FETCH NEXT FROM \"Big\"", (1, "Big")),
            ("FETCH c", (1, "c")),
        ] {
            match classify(sql).unwrap() {
                Command::Fetch { name, count, .. } => {
                    assert_eq!((count, name.as_str()), want, "{sql}")
                }
                c => panic!("{c:?}"),
            }
        }
        match classify("COPY (SELECT a FROM v) TO STDOUT WITH (FORMAT csv, HEADER)").unwrap() {
            Command::CopyQuery(c) => {
                assert_eq!(c.query, "SELECT a FROM v");
                assert_eq!((c.format, c.header), (CopyFormat::Csv, true));
            }
            c => panic!("{c:?}"),
        }
        match classify("COPY v (a, b) TO STDOUT CSV HEADER DELIMITER ';'").unwrap() {
            Command::CopyQuery(c) => {
                assert_eq!(c.query, "SELECT a, b FROM v");
                assert_eq!(
                    (c.format, c.header, c.delimiter.as_deref()),
                    (CopyFormat::Csv, true, Some(";"))
                );
            }
            c => panic!("{c:?}"),
        }
        match classify("COPY v TO STDOUT (FORMAT binary)").unwrap() {
            Command::CopyQuery(c) => assert_eq!(c.format, CopyFormat::Binary),
            c => panic!("{c:?}"),
        }
        match classify("FETCH 100 c WITH (timeout = '1s')").unwrap() {
            Command::Fetch {
                name,
                count,
                timeout,
            } => {
                assert_eq!((name.as_str(), count), ("c", 100));
                assert_eq!(timeout, Some(Duration::from_secs(1)));
            }
            c => panic!("{c:?}"),
        }
        assert!(classify("COPY t FROM STDIN").is_err());
        assert!(classify("COPY t TO '/tmp/x'").is_err());
    }
}
