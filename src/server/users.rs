//! `CREATE USER` / `CREATE ROLE … LOGIN`, `ALTER USER … PASSWORD` and
//! `DROP USER`, as PostgreSQL spells them, read from the statement's
//! tokens (see [`super::auth`] for where users are kept).

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Result, SluiceError};

/// A statement about users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    Create {
        name: String,
        password: Option<String>,
        superuser: bool,
        /// `CREATE USER` and `CREATE ROLE … LOGIN` can connect; a plain
        /// `CREATE ROLE` only groups privileges.
        login: bool,
    },
    Alter {
        name: String,
        password: Option<String>,
        superuser: Option<bool>,
        login: Option<bool>,
    },
    Drop {
        names: Vec<String>,
        if_exists: bool,
    },
}

impl UserCommand {
    /// The command tag PostgreSQL answers with.
    pub fn tag(&self) -> &'static str {
        match self {
            UserCommand::Create { .. } => "CREATE ROLE",
            UserCommand::Alter { .. } => "ALTER ROLE",
            UserCommand::Drop { .. } => "DROP ROLE",
        }
    }
}

/// Whether `words` (lower case) start a statement about users.
pub fn is_user_statement(words: &[String]) -> bool {
    matches!(
        (
            words.first().map(String::as_str),
            words.get(1).map(String::as_str)
        ),
        (Some("create" | "alter" | "drop"), Some("user" | "role"))
    )
}

/// A statement's tokens without whitespace and semicolons: what the
/// server's own statements (users, grants) are read from.
pub(super) fn tokens(text: &str) -> Result<Vec<Token>> {
    Ok(Tokenizer::new(&PostgreSqlDialect {}, text)
        .tokenize()
        .map_err(|e| SluiceError::Parse {
            line: 1,
            column: 1,
            message: e.to_string(),
        })?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
        .collect())
}

/// Parses a `CREATE|ALTER|DROP USER|ROLE` statement.
pub fn parse(text: &str) -> Result<UserCommand> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let word = |t: Option<&Token>| match t {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_lowercase()),
        _ => None,
    };
    let verb = word(tokens.get(at)).unwrap_or_default();
    let is_user = word(tokens.get(at + 1)).as_deref() == Some("user");
    at += 2; // USER | ROLE
    let bad = |what: &str| SluiceError::Parse {
        line: 1,
        column: 1,
        message: format!("{verb} user: {what}"),
    };
    let name_at = |at: usize| -> Result<String> {
        match tokens.get(at) {
            Some(Token::Word(w)) if w.quote_style.is_some() => Ok(w.value.clone()),
            Some(Token::Word(w)) => Ok(w.value.to_lowercase()),
            Some(Token::SingleQuotedString(s)) => Ok(s.clone()),
            _ => Err(bad("expected a user name")),
        }
    };
    if verb == "drop" {
        let mut if_exists = false;
        if word(tokens.get(at)).as_deref() == Some("if")
            && word(tokens.get(at + 1)).as_deref() == Some("exists")
        {
            if_exists = true;
            at += 2;
        }
        let mut names = vec![name_at(at)?];
        at += 1;
        while tokens.get(at) == Some(&Token::Comma) {
            names.push(name_at(at + 1)?);
            at += 2;
        }
        if at != tokens.len() {
            return Err(bad("expected DROP USER [IF EXISTS] name, …"));
        }
        return Ok(UserCommand::Drop { names, if_exists });
    }
    let name = name_at(at)?;
    at += 1;
    let mut password = None;
    let mut superuser = None;
    let mut login = None;
    while at < tokens.len() {
        match word(tokens.get(at)).as_deref() {
            Some(
                "with" | "inherit" | "noinherit" | "nocreatedb" | "nocreaterole" | "noreplication"
                | "nobypassrls",
            ) => {}
            Some("login") => login = Some(true),
            Some("nologin") => login = Some(false),
            Some("superuser" | "createdb" | "createrole") => superuser = Some(true),
            Some("nosuperuser") => superuser = Some(false),
            Some("encrypted") if word(tokens.get(at + 1)).as_deref() == Some("password") => {}
            Some("password") => {
                at += 1;
                password = match tokens.get(at) {
                    Some(Token::SingleQuotedString(s)) => Some(s.clone()),
                    Some(Token::DollarQuotedString(d)) => Some(d.value.clone()),
                    Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("null") => None,
                    _ => return Err(bad("PASSWORD takes a quoted string")),
                };
            }
            _ => {
                return Err(SluiceError::NotSupported(format!(
                    "{verb} user option '{}': Sluice takes PASSWORD, [NO]LOGIN and [NO]SUPERUSER",
                    tokens[at]
                )))
            }
        }
        at += 1;
    }
    Ok(match verb.as_str() {
        "create" => UserCommand::Create {
            name,
            password,
            superuser: superuser.unwrap_or(false),
            login: login.unwrap_or(is_user),
        },
        _ => UserCommand::Alter {
            name,
            password,
            superuser,
            login,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_postgres_users_write() {
        assert_eq!(
            parse("CREATE USER bi WITH PASSWORD 'it''s'").unwrap(),
            UserCommand::Create {
                name: "bi".into(),
                password: Some("it's".into()),
                superuser: false,
                login: true,
            }
        );
        assert_eq!(
            parse("create role \"Ops\" with login superuser encrypted password 'x';").unwrap(),
            UserCommand::Create {
                name: "Ops".into(),
                password: Some("x".into()),
                superuser: true,
                login: true,
            }
        );
        assert_eq!(
            parse("ALTER USER bi PASSWORD 'new'").unwrap(),
            UserCommand::Alter {
                name: "bi".into(),
                password: Some("new".into()),
                superuser: None,
                login: None,
            }
        );
        assert_eq!(
            parse("DROP ROLE IF EXISTS a, b").unwrap(),
            UserCommand::Drop {
                names: vec!["a".into(), "b".into()],
                if_exists: true
            }
        );
        assert_eq!(
            parse("CREATE ROLE readers").unwrap(),
            UserCommand::Create {
                name: "readers".into(),
                password: None,
                superuser: false,
                login: false,
            }
        );
        assert!(parse("CREATE USER x VALID UNTIL 'never'").is_err());
        assert!(parse("CREATE USER x PASSWORD 42").is_err());
    }
}
