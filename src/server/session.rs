//! A connection's own state: its settings (time zone, statement timeout,
//! what SHOW reports) and its cursors.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::ClientInfo;

use super::cursor::Cursor;
use super::settings::DEFAULTS;
use crate::error::{Result, SluiceError};

#[derive(Default)]
pub struct Session {
    settings: Mutex<BTreeMap<String, String>>,
    cursors: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cursor>>>>,
    /// Cursors that end with the transaction they were declared in.
    transactional: Mutex<Vec<String>>,
    /// NOTICEs the current statement raised, sent before its completion.
    notices: Mutex<Vec<String>>,
}

pub fn of<C: ClientInfo>(client: &C) -> Arc<Session> {
    client
        .session_extensions()
        .get_or_insert_with(Session::default)
}

/// A zone name as PostgreSQL takes it: IANA (`Europe/Paris`), `UTC`, or
/// an ISO offset (`+02:00`).
fn parse_zone(name: &str) -> Option<Tz> {
    let upper = name.to_ascii_uppercase();
    let name = match upper.as_str() {
        "UTC" | "GMT" | "Z" | "ZULU" | "UCT" | "ETC/UTC" | "ETC/GMT" => "+00:00",
        _ => name,
    };
    name.parse().ok()
}

/// `statement_timeout` as PostgreSQL reads it: a number is milliseconds,
/// otherwise a duration with its unit; 0 turns it off.
fn statement_timeout_of(value: &str) -> Result<Option<Duration>> {
    let value = value.trim();
    let timeout = match value.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => crate::sql::parse_duration("statement_timeout", value)?,
    };
    Ok((!timeout.is_zero()).then_some(timeout))
}

/// The value a `SET TIME ZONE` stores: `LOCAL` and `DEFAULT` are the
/// server's zone (UTC); anything else must name a zone.
fn time_zone_setting(value: &str) -> Result<String> {
    if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
        return Ok("UTC".into());
    }
    match parse_zone(value) {
        Some(_) => Ok(value.to_string()),
        None => Err(SluiceError::Options(format!(
            "invalid value for parameter \"TimeZone\": \"{value}\""
        ))),
    }
}

pub fn show_schema(name: &str) -> SchemaRef {
    let column = match name {
        "all" => {
            return Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
            ]))
        }
        "transaction isolation level" => "transaction_isolation",
        "time zone" | "timezone" => "TimeZone",
        n => n,
    };
    Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]))
}

impl Session {
    /// Queues a NOTICE for the statement running now.
    pub fn notice(&self, text: String) {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }

    /// The NOTICEs queued so far, taken.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `SET name = value`; a TimeZone must name a zone (IANA, or an offset
    /// like `+02:00`).
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        let value = match name.as_str() {
            "timezone" | "time zone" => time_zone_setting(value)?,
            _ => value.to_string(),
        };
        let name = if name == "time zone" {
            "timezone".to_string()
        } else {
            name
        };
        if name == "statement_timeout" {
            statement_timeout_of(&value)?;
        }
        if let Ok(mut s) = self.settings.lock() {
            s.insert(name, value);
        }
        Ok(())
    }

    /// How long a statement may run (`statement_timeout`; `None`: no
    /// limit).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.setting("statement_timeout")
            .and_then(|v| statement_timeout_of(&v).ok())
            .flatten()
    }

    /// Where `timestamptz` values are shown: the TimeZone setting.
    pub fn time_zone(&self) -> Tz {
        self.setting("timezone")
            .and_then(|z| parse_zone(&z))
            .unwrap_or_else(super::encode::utc)
    }

    /// `application_name` once the session has SET it.
    fn setting(&self, name: &str) -> Option<String> {
        let set = self.settings.lock().ok()?.get(name).cloned();
        set.or_else(|| {
            DEFAULTS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn show(&self, name: &str) -> Result<RecordBatch> {
        let mut name = name.to_ascii_lowercase();
        if name == "time zone" {
            name = "timezone".into();
        }
        let schema = show_schema(&name);
        if name == "all" {
            let mut all: BTreeMap<String, String> = DEFAULTS
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            if let Ok(s) = self.settings.lock() {
                all.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let (names, values): (Vec<String>, Vec<String>) = all.into_iter().unzip();
            return Ok(RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(StringArray::from(values)),
                ],
            )?);
        }
        let value = self.setting(&name).ok_or_else(|| {
            SluiceError::Catalog(format!("unrecognized configuration parameter \"{name}\""))
        })?;
        Ok(RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![value]))],
        )?)
    }

    /// The transaction ended: its cursors (those declared in it without
    /// HOLD) are closed, as in PostgreSQL.
    pub fn end_transaction(&self) {
        let names = self
            .transactional
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for name in names {
            self.close(Some(&name));
        }
    }

    /// Declares a cursor; `transactional`: it closes when the current
    /// transaction ends.
    pub fn declare(&self, name: String, cursor: Cursor, transactional: bool) -> Result<()> {
        let mut c = self
            .cursors
            .lock()
            .map_err(|_| SluiceError::Internal("session cursors poisoned".into()))?;
        if c.contains_key(&name) {
            return Err(SluiceError::Duplicate(format!(
                "cursor \"{name}\" already exists"
            )));
        }
        if transactional {
            if let Ok(mut t) = self.transactional.lock() {
                t.push(name.clone());
            }
        }
        c.insert(name, Arc::new(tokio::sync::Mutex::new(cursor)));
        Ok(())
    }

    pub fn cursor(&self, name: &str) -> Result<Arc<tokio::sync::Mutex<Cursor>>> {
        self.cursors
            .lock()
            .ok()
            .and_then(|c| c.get(name).cloned())
            .ok_or_else(|| SluiceError::Catalog(format!("cursor \"{name}\" does not exist")))
    }

    /// Closing a cursor stops its subscription.
    pub fn close(&self, name: Option<&str>) {
        if let Ok(mut c) = self.cursors.lock() {
            match name {
                Some(n) => {
                    c.remove(n);
                }
                None => c.clear(),
            }
        }
    }
}

impl super::activity::LiveSettings for Session {
    fn application_name(&self) -> Option<String> {
        self.settings.lock().ok()?.get("application_name").cloned()
    }
}
