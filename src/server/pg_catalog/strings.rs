//! PostgreSQL's string functions that build and take apart names:
//! `format`, `quote_ident`, `quote_literal` and `parse_ident`, as plain
//! functions on text (the scalar functions in `functions` call them).

/// `quote_ident(s)`: `s`, double-quoted unless it is a plain lowercase
/// name.
pub(super) fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `quote_literal(s)`: a string literal (with `E''` when it holds a
/// backslash).
pub(super) fn quote_literal(s: &str) -> String {
    let quoted = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// `format(template, args…)` as PostgreSQL formats: `%s` the argument's
/// text (NULL is empty), `%I` a quoted identifier, `%L` a quoted literal
/// (NULL is `NULL`), `%%` a percent sign; `%n$s` takes argument n.
pub(super) fn format(template: &str, args: &[Option<&str>]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // An explicit position: digits then `$`.
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        if !digits.is_empty() {
            if chars.next() != Some('$') {
                return Err("unrecognized format() type specifier: width is not supported".into());
            }
            let n: usize = digits
                .parse()
                .map_err(|_| "argument number is out of range")?;
            if n == 0 {
                return Err(
                    "format specifies argument 0, but arguments are numbered from 1".into(),
                );
            }
            next = n - 1;
        }
        let kind = chars.next().ok_or("unterminated format() type specifier")?;
        if kind == '%' {
            out.push('%');
            continue;
        }
        let arg = *args.get(next).ok_or("too few arguments for format()")?;
        next += 1;
        match kind {
            's' => out.push_str(arg.unwrap_or("")),
            'I' => out.push_str(&quote_ident(
                arg.ok_or("null values cannot be formatted as an SQL identifier")?,
            )),
            'L' => out.push_str(&arg.map_or_else(|| "NULL".to_string(), quote_literal)),
            other => return Err(format!("unrecognized format() type specifier \"{other}\"")),
        }
    }
    Ok(out)
}

/// `parse_ident('a."B c".d')`: the names in a qualified identifier,
/// unquoted names folded to lowercase.
pub(super) fn parse_ident(s: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("string is not a valid identifier: \"{s}\"");
    let mut parts = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next().ok_or_else(invalid)? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().filter(|c| **c != '.') {
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return Err(invalid());
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_as_postgres_does() {
        assert_eq!(
            format("%I.%I", &[Some("public"), Some("Counts")]).as_deref(),
            Ok("public.\"Counts\"")
        );
        assert_eq!(
            format("%s = %L, %L, 100%%", &[Some("k"), Some("it's"), None]).as_deref(),
            Ok("k = 'it''s', NULL, 100%")
        );
        assert_eq!(
            format("%2$s %1$s", &[Some("a"), Some("b")]).as_deref(),
            Ok("b a")
        );
        assert_eq!(format("%s", &[None]).as_deref(), Ok(""));
        assert!(format("%s %s", &[Some("a")]).is_err());
        assert!(format("%I", &[None]).is_err());
    }

    #[test]
    fn identifiers_split_and_fold() {
        assert_eq!(
            parse_ident("public.Counts"),
            Ok(vec!["public".into(), "counts".into()])
        );
        assert_eq!(
            parse_ident("\"My\"\"Schema\".\"a.b\""),
            Ok(vec!["My\"Schema".into(), "a.b".into()])
        );
        assert!(parse_ident("a..b").is_err());
        assert!(parse_ident("\"open").is_err());
    }
}
