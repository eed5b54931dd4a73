//! Who may do what, decided before a statement runs.
//!
//! A superuser may do anything. Any other role may read (SELECT, SUBSCRIBE,
//! COPY, EXPLAIN) a relation it owns, was granted SELECT on (itself, through
//! a role it is a member of, or through PUBLIC), or every relation as a
//! member of `pg_read_all_data`; may create objects with CREATE on the
//! database; may drop, replace and grant on what it owns. Refusals answer
//! 42501 as PostgreSQL words them ("permission denied for materialized view
//! v", "must be owner of source s").
//!
//! Under `--auth trust` a user name that is not a role is a superuser (any
//! client is trusted); a role's own privileges still apply to it.

use std::collections::BTreeSet;
use std::sync::Arc;

use pgwire::error::PgWireResult;

use super::auth::{AuthMode, Users, READ_ALL_DATA};
use super::errors::{pg_error, pg_error_code};
use super::grants::{GrantCommand, GrantTarget, Grants, Privilege};
use super::statements::{Command, CursorBody};
use super::users::UserCommand;
use crate::catalog::Catalog;
use crate::error::SluiceError;
use crate::sql::relations::relations_read;
use crate::sql::{ObjectKind, Statement};

/// The users, roles and grants of the server, and how clients log in.
pub struct Access {
    pub users: Arc<Users>,
    pub grants: Arc<Grants>,
    pub mode: AuthMode,
}

/// The role a session acts as, with what it inherits.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub superuser: bool,
    /// Itself, every role it is a member of, and PUBLIC.
    pub roles: BTreeSet<String>,
}

/// What a statement asks of its principal.
#[derive(Debug, Default)]
pub struct Needs {
    /// Relations it reads.
    read: BTreeSet<String>,
    /// The object it creates (CREATE on the database).
    create: Option<String>,
    /// Objects it drops or replaces.
    own: Vec<String>,
    /// Relations it writes (INSERT, UPDATE, DELETE), with the privilege.
    write: Option<(Privilege, BTreeSet<String>)>,
    /// Something only a superuser may do, and what.
    superuser: Option<String>,
}

impl Needs {
    /// The object this statement creates, if any: it becomes the
    /// principal's when the statement succeeds.
    pub fn creates(&self) -> Option<&str> {
        self.create.as_deref()
    }

    /// Whether the statement changes the catalog (owners may need
    /// updating afterwards).
    pub fn is_ddl(&self) -> bool {
        self.create.is_some() || !self.own.is_empty()
    }
}

impl Access {
    pub fn principal(&self, user: &str) -> Principal {
        match self.users.role(user) {
            Some(role) => Principal {
                name: user.to_string(),
                superuser: role.superuser,
                roles: self.users.roles_of(user),
            },
            None => Principal {
                name: user.to_string(),
                superuser: self.mode == AuthMode::Trust,
                roles: BTreeSet::from([user.to_string()]),
            },
        }
    }

    /// Whether `p` may read `relation`.
    pub fn may_read(&self, p: &Principal, relation: &str) -> bool {
        p.superuser
            || p.roles.contains(&self.grants.owner(relation))
            || p.roles.contains(READ_ALL_DATA)
            || self.grants.granted(relation, &p.roles, Privilege::Select)
    }

    pub fn owns(&self, p: &Principal, object: &str) -> bool {
        p.superuser || p.roles.contains(&self.grants.owner(object))
    }

    pub fn may_create(&self, p: &Principal) -> bool {
        p.superuser
            || p.roles
                .iter()
                .any(|r| self.users.role(r).is_some_and(|r| r.create))
    }

    /// Refuses `needs` with 42501 unless `p` has every privilege in it.
    pub fn check(&self, p: &Principal, needs: &Needs, catalog: &Catalog) -> PgWireResult<()> {
        if p.superuser {
            return Ok(());
        }
        if let Some(what) = &needs.superuser {
            return Err(denied(&format!(
                "permission denied: {what} needs a superuser"
            )));
        }
        for name in &needs.own {
            if let Some(kind) = catalog.kind_of(name) {
                if !self.owns(p, name) {
                    return Err(denied(&format!("must be owner of {} {name}", kind.noun())));
                }
            }
        }
        if let Some(name) = &needs.create {
            if catalog.kind_of(name).is_none() && !self.may_create(p) {
                return Err(denied(&format!(
                    "permission denied for database {} (creating {name} needs GRANT CREATE ON DATABASE)",
                    crate::engine::DATABASE
                )));
            }
        }
        if let Some((privilege, names)) = &needs.write {
            for name in names {
                if let Some(kind) = catalog.kind_of(name) {
                    if !self.owns(p, name) && !self.grants.granted(name, &p.roles, *privilege) {
                        return Err(denied(&format!(
                            "permission denied for {} {name}",
                            kind.noun()
                        )));
                    }
                }
            }
        }
        for name in &needs.read {
            match catalog.kind_of(name) {
                Some(kind @ (ObjectKind::Source | ObjectKind::View)) if !self.may_read(p, name) => {
                    return Err(denied(&format!(
                        "permission denied for {} {name}",
                        kind.noun()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// After a statement that changed the catalog: a new object is its
    /// creator's, and dropped objects lose their grants.
    pub fn after_ddl(&self, p: &Principal, needs: &Needs, existed: bool, catalog: &Catalog) {
        let result = match needs.creates() {
            Some(name) if !existed && catalog.kind_of(name).is_some() => {
                self.grants.created(name, &p.name)
            }
            _ => Ok(()),
        }
        .and_then(|_| self.grants.retain(|n| catalog.kind_of(n).is_some()));
        if let Err(e) = result {
            tracing::error!(error = %e, "recording an object's owner failed");
        }
    }

    /// `CREATE|ALTER|DROP USER|ROLE`: superusers manage roles; any user may
    /// change their own password.
    pub fn run_user_command(&self, p: &Principal, command: &UserCommand) -> PgWireResult<()> {
        use UserCommand::*;
        let own_password = matches!(command,
            Alter { name, superuser: None, login: None, .. } if *name == p.name);
        if !p.superuser && !own_password {
            return Err(denied(
                "permission denied to manage roles: only a superuser may (a user may change their own password)",
            ));
        }
        let users = &self.users;
        match command {
            Create {
                name,
                password,
                superuser,
                login,
            } => {
                if *login && password.is_none() {
                    return Err(pg_error_code(
                        "28P01",
                        "a user needs a password: CREATE USER name WITH PASSWORD '…'",
                    ));
                }
                users
                    .create_role(name, password.as_deref(), *superuser, *login)
                    .map_err(pg_error)
            }
            Alter {
                name,
                password,
                superuser: make_superuser,
                login,
            } => {
                if make_superuser.is_some() {
                    return Err(pg_error(SluiceError::NotSupported(
                        "ALTER USER … SUPERUSER: drop the user and create it again".into(),
                    )));
                }
                if let Some(login) = login {
                    users.set_login(name, *login).map_err(pg_error)?;
                }
                match password {
                    Some(pw) => users.set_password(name, pw).map_err(pg_error),
                    None => Ok(()),
                }
            }
            Drop { names, if_exists } => {
                for name in names {
                    if *name == p.name {
                        return Err(pg_error_code("55006", "current user cannot be dropped"));
                    }
                    if !users.exists(name) && *if_exists {
                        continue;
                    }
                    users.drop_user(name).map_err(pg_error)?;
                    self.grants.role_dropped(name).map_err(pg_error)?;
                }
                Ok(())
            }
        }
    }

    /// `GRANT` / `REVOKE`: owners grant on their objects; superusers grant
    /// CREATE on the database and role membership.
    pub fn run_grant(
        &self,
        p: &Principal,
        command: &GrantCommand,
        catalog: &Catalog,
    ) -> PgWireResult<()> {
        let known = |role: &str| -> PgWireResult<()> {
            if self.users.exists(role) || super::auth::is_predefined(role) {
                Ok(())
            } else {
                Err(pg_error(SluiceError::UndefinedObject(format!(
                    "role \"{role}\" does not exist"
                ))))
            }
        };
        match command {
            GrantCommand::Roles {
                grant,
                roles,
                members,
            } => {
                if !p.superuser {
                    return Err(denied(
                        "permission denied to grant roles: only a superuser may",
                    ));
                }
                for member in members {
                    known(member)?;
                    for role in roles {
                        self.users
                            .set_member(role, member, *grant)
                            .map_err(pg_error)?;
                    }
                }
                Ok(())
            }
            GrantCommand::Privileges {
                grant,
                privileges,
                create,
                target,
                grantees,
            } => {
                for g in grantees {
                    known(g)?;
                }
                if *target == GrantTarget::Database {
                    if !*create {
                        return Ok(());
                    }
                    if !p.superuser {
                        return Err(denied(&format!(
                            "permission denied for database {}: only a superuser grants CREATE",
                            crate::engine::DATABASE
                        )));
                    }
                    for g in grantees {
                        self.users.set_create(g, *grant).map_err(pg_error)?;
                    }
                    return Ok(());
                }
                let relations: Vec<String> = match target {
                    GrantTarget::Relations(names) => {
                        for name in names {
                            match catalog.kind_of(name) {
                                Some(ObjectKind::Source | ObjectKind::View) => {}
                                Some(kind) => {
                                    return Err(pg_error(SluiceError::NotSupported(format!(
                                        "privileges on a {}: grant on the relations it reads",
                                        kind.noun()
                                    ))))
                                }
                                None => {
                                    return Err(pg_error(SluiceError::Catalog(format!(
                                        "relation \"{name}\" does not exist"
                                    ))))
                                }
                            }
                            if !self.owns(p, name) {
                                let kind = catalog.kind_of(name).map_or("relation", |k| k.noun());
                                return Err(denied(&format!("must be owner of {kind} {name}")));
                            }
                        }
                        names.clone()
                    }
                    // Those of the principal's relations a superuser's
                    // `ALL TABLES` would cover.
                    _ => catalog
                        .definitions()
                        .iter()
                        .filter(|d| matches!(d.kind, ObjectKind::Source | ObjectKind::View))
                        .map(|d| d.name.clone())
                        .filter(|n| self.owns(p, n))
                        .collect(),
                };
                for name in &relations {
                    for g in grantees {
                        let r = if *grant {
                            self.grants.grant(name, g, privileges)
                        } else {
                            self.grants.revoke(name, g, privileges)
                        };
                        r.map_err(pg_error)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// What `command` needs, from its text (a statement that does not parse
/// needs nothing: running it reports the syntax error).
pub fn needs(command: &Command) -> Needs {
    // What reading `sql` (a query) needs; only a query's needs count.
    let query = |sql: &str| -> Needs {
        match crate::sql::parse_one(sql) {
            Ok(s @ Statement::Query(_)) => statement_needs(&s),
            Ok(_) | Err(_) => Needs::default(),
        }
    };
    match command {
        Command::Subscribe(spec) | Command::CopySubscribe(spec) => query(&spec.query),
        Command::Declare { body, .. } => match body {
            CursorBody::Subscribe(spec) => query(&spec.query),
            CursorBody::Query(sql) => query(sql),
        },
        Command::CopyQuery(spec) => query(&spec.query),
        Command::Engine(sql) => match crate::sql::parse_one(sql) {
            Ok(statement) => statement_needs(&statement),
            Err(_) => Needs::default(),
        },
        _ => Needs::default(),
    }
}

fn statement_needs(statement: &Statement) -> Needs {
    if crate::sql::relations::reads_errors_table(statement) {
        return Needs {
            superuser: Some("reading sluice.errors, which holds records of every source,".into()),
            ..Needs::default()
        };
    }
    let read = relations_read(statement);
    match statement {
        Statement::CreateSource(s) => Needs {
            create: Some(s.name.clone()),
            superuser: superuser_options(&s.options),
            ..Needs::default()
        },
        Statement::CreateView(v) => Needs {
            read,
            create: Some(v.name.clone()),
            ..Needs::default()
        },
        Statement::CreateSink(s) => Needs {
            read,
            create: Some(s.name.clone()),
            superuser: superuser_options(&s.options),
            ..Needs::default()
        },
        Statement::CreateFunction(f) => Needs {
            create: Some(f.function.name.clone()),
            own: if f.or_replace {
                vec![f.function.name.clone()]
            } else {
                Vec::new()
            },
            ..Needs::default()
        },
        Statement::Drop(d) => Needs {
            own: vec![d.name.clone()],
            ..Needs::default()
        },
        Statement::DropFunction { names, .. } => Needs {
            own: names.clone(),
            ..Needs::default()
        },
        Statement::Describe(_)
        | Statement::ShowSources
        | Statement::ShowViews
        | Statement::ShowSinks
        | Statement::ShowPipelines => Needs::default(),
        Statement::Other(s) => {
            use datafusion::sql::sqlparser::ast::Statement as Sql;
            let privilege = match s.as_ref() {
                Sql::Insert(_) => Privilege::Insert,
                Sql::Update { .. } => Privilege::Update,
                Sql::Delete(_) => Privilege::Delete,
                _ => {
                    return Needs {
                        read,
                        ..Needs::default()
                    }
                }
            };
            Needs {
                write: Some((privilege, read)),
                ..Needs::default()
            }
        }
        _ => Needs {
            read,
            ..Needs::default()
        },
    }
}

/// Options only a superuser may give: values from the server's
/// environment (`secret('…')`), and librdkafka properties that name local
/// files or run commands (`ssl.key.location`, `sasl.kerberos.kinit.cmd`,
/// `plugin.library.paths`).
fn superuser_options(options: &crate::sql::Options) -> Option<String> {
    if options.uses_secrets() {
        return Some("secret(…), which reads the server's environment,".into());
    }
    options
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("properties.") && crate::connectors::sandbox::is_file_property(k))
        .map(|k| format!("option {k}"))
}

fn denied(message: &str) -> pgwire::error::PgWireError {
    pg_error_code("42501", message)
}
