//! Object owners and privileges, PostgreSQL's way: who created an object
//! owns it (may drop it and grant on it); `GRANT SELECT ON v TO r` lets r
//! read v (SELECT and SUBSCRIBE); `REVOKE` takes it back. Kept in
//! `grants.json` in the data directory, one entry per object a client
//! created; an object without one (made by a script, or before passwords
//! were on) belongs to the superuser `sluice`.
//!
//! `GRANT`/`REVOKE` are read from the statement's tokens here; what a
//! statement needs is decided in [`super::access`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use datafusion::sql::sqlparser::tokenizer::Token;
use serde::{Deserialize, Serialize};

use super::auth::BOOTSTRAP_USER;
use crate::error::{Result, SluiceError};

/// A privilege on a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    // In the order aclitem text lists them.
    Insert,
    Select,
    Update,
    Delete,
}

impl Privilege {
    pub const ALL: [Privilege; 4] = [
        Privilege::Insert,
        Privilege::Select,
        Privilege::Update,
        Privilege::Delete,
    ];

    /// The letter PostgreSQL's aclitem text uses.
    fn letter(self) -> char {
        match self {
            Privilege::Select => 'r',
            Privilege::Insert => 'a',
            Privilege::Update => 'w',
            Privilege::Delete => 'd',
        }
    }

    pub fn parse(word: &str) -> Option<Privilege> {
        Some(match word {
            "select" => Privilege::Select,
            "insert" => Privilege::Insert,
            "update" => Privilege::Update,
            "delete" => Privilege::Delete,
            _ => return None,
        })
    }
}

/// What a GRANT or REVOKE is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantTarget {
    /// `ON [TABLE] v, w`.
    Relations(Vec<String>),
    /// `ON ALL TABLES IN SCHEMA public`.
    AllRelations,
    /// `ON DATABASE sluice` / `ON SCHEMA public`: CREATE lets a role make
    /// objects; CONNECT, TEMPORARY and USAGE everyone has already.
    Database,
}

/// `GRANT … TO …` or `REVOKE … FROM …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantCommand {
    Privileges {
        grant: bool,
        privileges: BTreeSet<Privilege>,
        /// `CREATE` on the database or schema.
        create: bool,
        target: GrantTarget,
        grantees: Vec<String>,
    },
    /// `GRANT role TO member` (role membership).
    Roles {
        grant: bool,
        roles: Vec<String>,
        members: Vec<String>,
    },
}

impl GrantCommand {
    pub fn tag(&self) -> &'static str {
        match self {
            GrantCommand::Privileges { grant: true, .. }
            | GrantCommand::Roles { grant: true, .. } => "GRANT",
            _ => "REVOKE",
        }
    }
}

/// Whether `words` (lower case) start a GRANT or REVOKE.
pub fn is_grant_statement(words: &[String]) -> bool {
    matches!(words.first().map(String::as_str), Some("grant" | "revoke"))
}

/// Parses `GRANT privileges ON target TO roles [WITH GRANT OPTION]`,
/// `GRANT role, … TO role, …`, and their REVOKE … FROM forms.
pub fn parse(text: &str) -> Result<GrantCommand> {
    let tokens = super::users::tokens(text)?;
    let word = |at: usize| match tokens.get(at) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_lowercase()),
        _ => None,
    };
    let grant = word(0).as_deref() == Some("grant");
    let verb = if grant { "GRANT" } else { "REVOKE" };
    let bad = |what: &str| SluiceError::Parse {
        line: 1,
        column: 1,
        message: format!("{verb}: {what}"),
    };
    let name = |at: usize| -> Option<String> {
        match tokens.get(at) {
            Some(Token::Word(w)) if w.quote_style.is_some() => Some(w.value.clone()),
            Some(Token::Word(w)) => Some(w.value.to_ascii_lowercase()),
            _ => None,
        }
    };
    let mut at = 1;
    if !grant && word(1).as_deref() == Some("grant") && word(2).as_deref() == Some("option") {
        return Err(SluiceError::NotSupported(
            "REVOKE GRANT OPTION FOR: Sluice has no grant options".into(),
        ));
    }
    // The list before ON (privileges) or before TO/FROM (roles).
    let mut items = Vec::new();
    loop {
        let Some(item) = name(at) else {
            return Err(bad("expected a privilege or role name"));
        };
        items.push(item);
        at += 1;
        // `ALL PRIVILEGES`, and column lists are not for us.
        if word(at).as_deref() == Some("privileges") {
            at += 1;
        }
        if tokens.get(at) == Some(&Token::LParen) {
            return Err(SluiceError::NotSupported(
                "column privileges: grant on the whole relation".into(),
            ));
        }
        if tokens.get(at) != Some(&Token::Comma) {
            break;
        }
        at += 1;
    }
    let to_word = if grant { "to" } else { "from" };
    let grantees_from = |mut at: usize| -> Result<Vec<String>> {
        let mut names = Vec::new();
        loop {
            if word(at).as_deref() == Some("group") {
                at += 1;
            }
            let Some(n) = name(at) else {
                return Err(bad("expected a role name"));
            };
            names.push(n);
            at += 1;
            if tokens.get(at) != Some(&Token::Comma) {
                break;
            }
            at += 1;
        }
        // WITH GRANT/ADMIN OPTION, GRANTED BY, CASCADE/RESTRICT: accepted
        // and ignored (only owners and superusers grant here).
        match word(at).as_deref() {
            None | Some("with" | "granted" | "cascade" | "restrict") => Ok(names),
            Some(other) => Err(bad(&format!("unexpected '{other}'"))),
        }
    };
    if word(at).as_deref() == Some(to_word) {
        return Ok(GrantCommand::Roles {
            grant,
            roles: items,
            members: grantees_from(at + 1)?,
        });
    }
    if word(at).as_deref() != Some("on") {
        return Err(bad(&format!(
            "expected ON object {} role, or role {} role",
            to_word.to_uppercase(),
            to_word.to_uppercase()
        )));
    }
    at += 1;
    let mut privileges = BTreeSet::new();
    let mut create = false;
    for item in &items {
        match item.as_str() {
            "all" => {
                privileges.extend(Privilege::ALL);
                create = true;
            }
            "create" => create = true,
            "connect" | "temporary" | "temp" | "usage" => {}
            "truncate" | "references" | "trigger" | "maintain" => {}
            p => match Privilege::parse(p) {
                Some(p) => {
                    privileges.insert(p);
                }
                None => return Err(bad(&format!("unknown privilege '{p}'"))),
            },
        }
    }
    let target = match word(at).as_deref() {
        Some("database") | Some("schema") => {
            at += 2;
            GrantTarget::Database
        }
        Some("all") => {
            // ALL TABLES IN SCHEMA public (views and sources are tables here).
            if !matches!(
                word(at + 1).as_deref(),
                Some("tables" | "materialized" | "views")
            ) {
                return Err(bad("expected ALL TABLES IN SCHEMA public"));
            }
            at += 1;
            while word(at).is_some_and(|w| w != to_word) {
                at += 1;
            }
            GrantTarget::AllRelations
        }
        _ => {
            if matches!(word(at).as_deref(), Some("table" | "sequence")) {
                at += 1;
            }
            if word(at).as_deref() == Some("materialized")
                && word(at + 1).as_deref() == Some("view")
            {
                at += 2;
            }
            let mut names = Vec::new();
            loop {
                // `public.v`: the one schema.
                if name(at).is_some() && tokens.get(at + 1) == Some(&Token::Period) {
                    at += 2;
                }
                let Some(n) = name(at) else {
                    return Err(bad("expected a relation name"));
                };
                names.push(n);
                at += 1;
                if tokens.get(at) != Some(&Token::Comma) {
                    break;
                }
                at += 1;
            }
            GrantTarget::Relations(names)
        }
    };
    if target == GrantTarget::Database && !privileges.is_empty() {
        return Err(bad(
            "a database or schema takes CREATE, CONNECT, TEMPORARY or USAGE",
        ));
    }
    if target != GrantTarget::Database {
        create = false;
    }
    if word(at).as_deref() != Some(to_word) {
        return Err(bad(&format!("expected {}", to_word.to_uppercase())));
    }
    Ok(GrantCommand::Privileges {
        grant,
        privileges,
        create,
        target,
        grantees: grantees_from(at + 1)?,
    })
}

/// One object's owner and the privileges granted on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ObjectGrants {
    owner: String,
    #[serde(default)]
    acl: BTreeMap<String, BTreeSet<Privilege>>,
}

/// The owners and grants of a data directory's objects.
#[derive(Debug)]
pub struct Grants {
    path: PathBuf,
    objects: RwLock<BTreeMap<String, ObjectGrants>>,
}

impl Grants {
    pub fn open(data_dir: &Path) -> Result<Grants> {
        let path = data_dir.join("grants.json");
        let objects = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                SluiceError::Catalog(format!("cannot read {}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SluiceError::io(format!("reading {}", path.display()), e)),
        };
        Ok(Grants {
            path,
            objects: RwLock::new(objects),
        })
    }

    /// Who owns `object`.
    pub fn owner(&self, object: &str) -> String {
        self.read()
            .get(object)
            .map_or_else(|| BOOTSTRAP_USER.to_string(), |o| o.owner.clone())
    }

    /// Whether one of `roles` was granted `privilege` on `object`.
    pub fn granted(&self, object: &str, roles: &BTreeSet<String>, privilege: Privilege) -> bool {
        self.read().get(object).is_some_and(|o| {
            o.acl
                .iter()
                .any(|(r, ps)| roles.contains(r) && ps.contains(&privilege))
        })
    }

    /// `object` was just created by `owner`: a new entry, whatever an
    /// object of that name had before.
    pub fn created(&self, object: &str, owner: &str) -> Result<()> {
        self.update(|o| {
            o.insert(
                object.to_string(),
                ObjectGrants {
                    owner: owner.to_string(),
                    acl: BTreeMap::new(),
                },
            );
        })
    }

    /// Forgets the entries of objects that no longer exist.
    pub fn retain(&self, exists: impl Fn(&str) -> bool) -> Result<()> {
        if self.read().keys().all(|k| exists(k)) {
            return Ok(());
        }
        self.update(|o| o.retain(|k, _| exists(k)))
    }

    pub fn grant(&self, object: &str, role: &str, privileges: &BTreeSet<Privilege>) -> Result<()> {
        self.update(|o| {
            let entry = o.entry(object.to_string()).or_insert_with(|| ObjectGrants {
                owner: BOOTSTRAP_USER.to_string(),
                acl: BTreeMap::new(),
            });
            entry
                .acl
                .entry(role.to_string())
                .or_default()
                .extend(privileges.iter().copied());
        })
    }

    pub fn revoke(&self, object: &str, role: &str, privileges: &BTreeSet<Privilege>) -> Result<()> {
        self.update(|o| {
            if let Some(entry) = o.get_mut(object) {
                if let Some(ps) = entry.acl.get_mut(role) {
                    ps.retain(|p| !privileges.contains(p));
                    if ps.is_empty() {
                        entry.acl.remove(role);
                    }
                }
            }
        })
    }

    /// A role is gone: its grants go, and what it owned passes to the
    /// superuser `sluice` (PostgreSQL would refuse; a streaming server
    /// keeps its pipelines running).
    pub fn role_dropped(&self, role: &str) -> Result<()> {
        self.update(|o| {
            for entry in o.values_mut() {
                entry.acl.remove(role);
                if entry.owner == role {
                    entry.owner = BOOTSTRAP_USER.to_string();
                }
            }
        })
    }

    /// `object`'s ACL as PostgreSQL's `relacl` shows it (`bi=r/alice`),
    /// or none while nothing was granted.
    pub fn acl_items(&self, object: &str) -> Option<Vec<String>> {
        let objects = self.read();
        let entry = objects.get(object).filter(|o| !o.acl.is_empty())?;
        let letters = |ps: &BTreeSet<Privilege>| ps.iter().map(|p| p.letter()).collect::<String>();
        let all: BTreeSet<Privilege> = Privilege::ALL.into_iter().collect();
        let mut items = vec![format!("{0}={1}/{0}", entry.owner, letters(&all))];
        for (role, ps) in &entry.acl {
            let grantee = if role == super::auth::PUBLIC {
                ""
            } else {
                role
            };
            items.push(format!("{grantee}={}/{}", letters(ps), entry.owner));
        }
        Some(items)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ObjectGrants>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, ObjectGrants>)) -> Result<()> {
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        let mut next = objects.clone();
        change(&mut next);
        let bytes = serde_json::to_vec_pretty(&next)
            .map_err(|e| SluiceError::Internal(format!("grants: {e}")))?;
        super::auth::replace_private(&self.path, &bytes)?;
        *objects = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_postgres_users_write() {
        assert_eq!(
            parse("GRANT SELECT ON v, public.w TO bi, GROUP readers").unwrap(),
            GrantCommand::Privileges {
                grant: true,
                privileges: [Privilege::Select].into(),
                create: false,
                target: GrantTarget::Relations(vec!["v".into(), "w".into()]),
                grantees: vec!["bi".into(), "readers".into()],
            }
        );
        assert_eq!(
            parse("grant all privileges on table \"V\" to bi with grant option;").unwrap(),
            GrantCommand::Privileges {
                grant: true,
                privileges: Privilege::ALL.into(),
                create: false,
                target: GrantTarget::Relations(vec!["V".into()]),
                grantees: vec!["bi".into()],
            }
        );
        assert_eq!(
            parse("GRANT CREATE, CONNECT ON DATABASE sluice TO dev").unwrap(),
            GrantCommand::Privileges {
                grant: true,
                privileges: BTreeSet::new(),
                create: true,
                target: GrantTarget::Database,
                grantees: vec!["dev".into()],
            }
        );
        assert_eq!(
            parse("REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM PUBLIC").unwrap(),
            GrantCommand::Privileges {
                grant: false,
                privileges: [Privilege::Select].into(),
                create: false,
                target: GrantTarget::AllRelations,
                grantees: vec!["public".into()],
            }
        );
        assert_eq!(
            parse("GRANT pg_read_all_data TO bi").unwrap(),
            GrantCommand::Roles {
                grant: true,
                roles: vec!["pg_read_all_data".into()],
                members: vec!["bi".into()],
            }
        );
        assert!(parse("GRANT SELECT (a) ON v TO bi").is_err());
        assert!(parse("GRANT FLY ON v TO bi").is_err());
        assert!(parse("GRANT SELECT ON v").is_err());
    }

    #[test]
    fn owners_and_grants_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let g = Grants::open(dir.path()).unwrap();
        assert_eq!(g.owner("v"), "sluice");
        g.created("v", "alice").unwrap();
        g.grant("v", "bi", &[Privilege::Select].into()).unwrap();
        let again = Grants::open(dir.path()).unwrap();
        assert_eq!(again.owner("v"), "alice");
        let bi: BTreeSet<String> = ["bi".to_string()].into();
        assert!(again.granted("v", &bi, Privilege::Select));
        assert!(!again.granted("v", &bi, Privilege::Insert));
        assert_eq!(
            again.acl_items("v").unwrap(),
            ["alice=arwd/alice", "bi=r/alice"]
        );
        again
            .revoke("v", "bi", &[Privilege::Select].into())
            .unwrap();
        assert!(!again.granted("v", &bi, Privilege::Select));
        again.created("v", "bob").unwrap();
        assert_eq!(again.owner("v"), "bob");
    }
}
