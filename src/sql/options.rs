//! `WITH (key = 'value', …)` options. Connectors take options out of the map
//! as they read them; whatever is left over is reported as unknown, naming
//! the valid options (and the closest one, for typos).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use super::suggest::closest;
use crate::error::{Result, SluiceError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    entries: BTreeMap<String, String>,
    /// Keys whose value came from `secret('ENV_NAME')`.
    secrets: BTreeSet<String>,
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an option; a key given twice is an error.
    pub fn insert(&mut self, key: String, value: String) -> Result<()> {
        let key = key.to_ascii_lowercase();
        if self.entries.contains_key(&key) {
            return Err(SluiceError::Options(format!(
                "option '{key}' is given twice"
            )));
        }
        self.entries.insert(key, value);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key` comes from `secret(…)`.
    pub fn mark_secret(&mut self, key: &str) {
        self.secrets.insert(key.to_ascii_lowercase());
    }

    /// Whether any value came from `secret(…)`.
    pub fn uses_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.entries.iter()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        self.entries.remove(key)
    }

    pub fn require(&mut self, key: &str, what: &str, valid: &[&str]) -> Result<String> {
        self.take(key).ok_or_else(|| {
            SluiceError::Options(format!(
                "missing required option '{key}' for {what}; valid options are: {}",
                valid.join(", ")
            ))
        })
    }

    /// Takes and parses an option; a value that does not parse names the key.
    pub fn take_parsed<T: FromStr>(&mut self, key: &str, expected: &str) -> Result<Option<T>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<T>().map(Some).map_err(|_| {
                SluiceError::Options(format!("option '{key}' must be {expected}, got '{v}'"))
            }),
        }
    }

    /// A duration option (`'5 seconds'`, `'100ms'`), if given.
    pub fn take_duration(&mut self, key: &str) -> Result<Option<std::time::Duration>> {
        self.take(key)
            .map(|t| super::parse_duration(key, &t))
            .transpose()
    }

    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Ok(Some(true)),
                "false" | "off" | "no" | "0" => Ok(Some(false)),
                _ => Err(SluiceError::Options(format!(
                    "option '{key}' must be true or false, got '{v}'"
                ))),
            },
        }
    }

    /// Takes an option whose value must be one of `allowed` (case-insensitive).
    pub fn take_choice(&mut self, key: &str, allowed: &[&str]) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                let lower = v.to_ascii_lowercase();
                if allowed.contains(&lower.as_str()) {
                    Ok(Some(lower))
                } else {
                    Err(SluiceError::Options(format!(
                        "option '{key}' must be one of {}, got '{v}'",
                        allowed
                            .iter()
                            .map(|a| format!("'{a}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    }

    /// Takes every option whose key starts with `prefix`, returning the keys
    /// with the prefix removed.
    pub fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .map(|k| {
                let v = self.entries.remove(&k).unwrap_or_default();
                (k[prefix.len()..].to_string(), v)
            })
            .collect()
    }

    /// Fails if any option was not taken: names it, the closest valid option
    /// and the full list of valid options.
    pub fn finish(self, what: &str, valid: &[&str]) -> Result<()> {
        let Some(key) = self.entries.keys().next() else {
            return Ok(());
        };
        let hint = closest(key, valid)
            .map(|c| format!(" (did you mean '{c}'?)"))
            .unwrap_or_default();
        Err(SluiceError::Options(format!(
            "unknown option '{key}' for {what}{hint}; valid options are: {}",
            valid.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_option_is_named_with_suggestion() {
        let mut o = Options::new();
        o.insert("topc".into(), "x".into()).unwrap();
        let err = o
            .finish("the kafka source", &["topic", "group_id"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown option 'topc' for the kafka source (did you mean 'topic'?); \
             valid options are: topic, group_id"
        );
    }

    #[test]
    fn prefixed_options_are_taken() {
        let mut o = Options::new();
        o.insert("properties.acks".into(), "all".into()).unwrap();
        o.insert("topic".into(), "t".into()).unwrap();
        assert_eq!(
            o.take_prefixed("properties."),
            vec![("acks".to_string(), "all".to_string())]
        );
        assert_eq!(o.take("topic").as_deref(), Some("t"));
        assert!(o.is_empty());
    }
}

/// `secret('NAME')` in a WITH list: the value of environment variable
/// NAME, so that the secret never appears in the statement, the catalog or
/// the logs (the catalog keeps `secret('NAME')` and resolves it again on
/// every start).
pub fn resolve_secret(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(SluiceError::Options(format!(
            "secret('{name}'): environment variable {name} is not set in the server's environment"
        ))),
    }
}

/// Whether an option's value is a secret by its name (passwords, keys,
/// tokens, JAAS configs): such values are shown as `********`.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "credential",
        "private_key",
        "access_key",
        "api_key",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// `sql` with the values of secret options replaced by `'********'`: what
/// pg_stat_activity and the logs show of a statement.
pub fn redact(sql: &str) -> String {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        // Not even tokens: nothing to find the options in; show nothing
        // that could be one.
        return if sql.contains('\'') {
            "<statement not shown: it does not tokenize>".into()
        } else {
            sql.to_string()
        };
    };
    let mut out = String::with_capacity(sql.len());
    // The option key read so far (`properties.sasl.password`), and whether
    // an `=` followed it.
    let mut key = String::new();
    let mut after_eq = false;
    for t in &tokens {
        match t {
            Token::SingleQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::DollarQuotedString(_)
                if after_eq && is_secret_key(&key) =>
            {
                out.push_str("'********'");
                key.clear();
                after_eq = false;
                continue;
            }
            Token::Whitespace(_) => {}
            // `CREATE USER … PASSWORD 'x'`: no `=`.
            Token::Word(w) if !after_eq && w.value.eq_ignore_ascii_case("password") => {
                key = "password".into();
                after_eq = true;
            }
            Token::Word(w) if !after_eq => {
                if !key.is_empty() && !key.ends_with('.') {
                    key.clear();
                }
                key.push_str(&w.value);
            }
            Token::Period if !after_eq && !key.is_empty() => key.push('.'),
            Token::SingleQuotedString(s) if !after_eq => key = s.clone(),
            Token::Eq if !key.is_empty() => after_eq = true,
            _ => {
                key.clear();
                after_eq = false;
            }
        }
        out.push_str(&t.to_string());
    }
    out
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_wherever_they_are() {
        assert_eq!(
            redact("CREATE SOURCE s (a INT) WITH (connector = 'kafka', properties.sasl.password = 'hunter2', topic = 't')"),
            "CREATE SOURCE s (a INT) WITH (connector = 'kafka', properties.sasl.password = '********', topic = 't')"
        );
        assert_eq!(
            redact("create sink k from v with (aws_secret_access_key='x', \"password\" = 'y', path = 'p')"),
            "create sink k from v with (aws_secret_access_key='********', \"password\" = '********', path = 'p')"
        );
        assert_eq!(
            redact("ALTER USER bi WITH PASSWORD 'pw'"),
            "ALTER USER bi WITH PASSWORD 'pw'".replace("'pw'", "'********'")
        );
        assert_eq!(redact("SELECT 'password'"), "SELECT 'password'");
        assert_eq!(redact("SELECT a = 'x' FROM t"), "SELECT a = 'x' FROM t");
    }
}
