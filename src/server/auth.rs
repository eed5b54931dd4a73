//! Who may connect to `sluice serve`, PostgreSQL's way.
//!
//! `--auth trust` lets any user name in (the default, and only allowed
//! without saying so on a loopback address); `--auth password` asks for a
//! password by SCRAM-SHA-256, as PostgreSQL does by default, and checks it
//! against the users kept in the data directory (`users.json`): per user a
//! random salt, the iteration count and the salted password (PBKDF2), never
//! the password itself. The file is written owner-only.
//!
//! The first start with `SLUICE_PASSWORD` set creates the superuser
//! `sluice` with that password (as the PostgreSQL image does with
//! `POSTGRES_PASSWORD`). Superusers manage users with `CREATE USER name
//! WITH PASSWORD '…' [SUPERUSER]`, `ALTER USER name WITH PASSWORD '…'` and
//! `DROP USER name`; any user may change their own password.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::gen_salted_password;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};

/// PBKDF2 iterations for new verifiers (PostgreSQL's default).
const ITERATIONS: usize = 4096;

/// The superuser the first start creates from `SLUICE_PASSWORD`.
pub const BOOTSTRAP_USER: &str = "sluice";

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Any user name is accepted, without a password.
    Trust,
    /// SCRAM-SHA-256 against the stored users.
    Password,
}

impl AuthMode {
    pub fn parse(text: &str) -> Result<AuthMode> {
        match text {
            "trust" => Ok(AuthMode::Trust),
            "password" | "scram-sha-256" => Ok(AuthMode::Password),
            other => Err(SluiceError::Options(format!(
                "--auth {other}: use trust or password"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    /// Hex.
    salt: String,
    iterations: usize,
    /// PBKDF2-SHA-256 of the password, hex.
    salted_password: String,
    superuser: bool,
    /// May connect (`CREATE USER`, `CREATE ROLE … LOGIN`); a role without
    /// it only groups privileges.
    #[serde(default = "yes")]
    login: bool,
    /// May create objects (`GRANT CREATE ON DATABASE`).
    #[serde(default)]
    create: bool,
    /// The roles whose privileges this one has (`GRANT role TO this`).
    #[serde(default)]
    member_of: BTreeSet<String>,
}

fn yes() -> bool {
    true
}

/// What the catalog tables and access checks see of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    pub create: bool,
    pub member_of: BTreeSet<String>,
}

/// Predefined roles, as PostgreSQL has them: members of
/// `pg_read_all_data` may read (SELECT, SUBSCRIBE) every relation.
pub const READ_ALL_DATA: &str = "pg_read_all_data";
/// Everyone is a member of PUBLIC.
pub const PUBLIC: &str = "public";

/// The users of one data directory.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    users: RwLock<BTreeMap<String, StoredUser>>,
}

impl Users {
    /// The users kept in `data_dir` (none if there is no file yet).
    pub fn open(data_dir: &Path) -> Result<Users> {
        let path = data_dir.join("users.json");
        let users = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                SluiceError::Catalog(format!("cannot read {}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SluiceError::io(format!("reading {}", path.display()), e)),
        };
        Ok(Users {
            path,
            users: RwLock::new(users),
        })
    }

    /// Creates the superuser `sluice` with `password` if there are no users
    /// yet; whether it did.
    pub fn bootstrap(&self, password: Option<&str>) -> Result<bool> {
        match password {
            Some(p) if self.is_empty() => {
                self.create(BOOTSTRAP_USER, p, true)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    pub fn is_superuser(&self, name: &str) -> bool {
        self.read().get(name).is_some_and(|u| u.superuser)
    }

    /// `CREATE USER name WITH PASSWORD '…'` (a role that can log in needs
    /// a password; one that cannot has none).
    pub fn create(&self, name: &str, password: &str, superuser: bool) -> Result<()> {
        self.create_role(name, Some(password), superuser, true)
    }

    /// `CREATE ROLE name [LOGIN] [PASSWORD '…'] [SUPERUSER]`.
    pub fn create_role(
        &self,
        name: &str,
        password: Option<&str>,
        superuser: bool,
        login: bool,
    ) -> Result<()> {
        if self.exists(name) || is_predefined(name) {
            return Err(SluiceError::Duplicate(format!(
                "role \"{name}\" already exists"
            )));
        }
        let user = match password {
            Some(p) => verifier(p, superuser)?,
            None => StoredUser {
                salt: String::new(),
                iterations: 0,
                salted_password: String::new(),
                superuser,
                login,
                create: false,
                member_of: BTreeSet::new(),
            },
        };
        let user = StoredUser { login, ..user };
        self.update(|users| {
            users.insert(name.to_string(), user);
        })
    }

    /// `ALTER USER name WITH PASSWORD '…'`.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let Some(old) = self.read().get(name).cloned() else {
            return Err(no_such_role(name));
        };
        let fresh = verifier(password, old.superuser)?;
        let user = StoredUser {
            salt: fresh.salt,
            iterations: fresh.iterations,
            salted_password: fresh.salted_password,
            ..old
        };
        self.update(|users| {
            users.insert(name.to_string(), user);
        })
    }

    /// `ALTER ROLE name [NO]LOGIN`.
    pub fn set_login(&self, name: &str, login: bool) -> Result<()> {
        self.change(name, |u| u.login = login)
    }

    /// `GRANT|REVOKE CREATE ON DATABASE … TO|FROM name`.
    pub fn set_create(&self, name: &str, create: bool) -> Result<()> {
        self.change(name, |u| u.create = create)
    }

    /// `GRANT role TO member` / `REVOKE role FROM member`.
    pub fn set_member(&self, role: &str, member: &str, is_member: bool) -> Result<()> {
        if !self.exists(role) && !is_predefined(role) {
            return Err(no_such_role(role));
        }
        if is_member && self.roles_of(role).contains(member) {
            return Err(SluiceError::Options(format!(
                "role \"{member}\" is a member of role \"{role}\": granting would make a loop"
            )));
        }
        self.change(member, |u| {
            if is_member {
                u.member_of.insert(role.to_string());
            } else {
                u.member_of.remove(role);
            }
        })
    }

    fn change(&self, name: &str, f: impl FnOnce(&mut StoredUser)) -> Result<()> {
        let Some(mut user) = self.read().get(name).cloned() else {
            return Err(no_such_role(name));
        };
        f(&mut user);
        self.update(|users| {
            users.insert(name.to_string(), user);
        })
    }

    /// `name` and every role it is a member of, directly or through
    /// others, and PUBLIC.
    pub fn roles_of(&self, name: &str) -> BTreeSet<String> {
        let users = self.read();
        let mut out = BTreeSet::from([name.to_string(), PUBLIC.to_string()]);
        let mut todo = vec![name.to_string()];
        while let Some(r) = todo.pop() {
            if let Some(u) = users.get(&r) {
                for m in &u.member_of {
                    if out.insert(m.clone()) {
                        todo.push(m.clone());
                    }
                }
            }
        }
        out
    }

    pub fn role(&self, name: &str) -> Option<RoleInfo> {
        self.read().get(name).map(|u| RoleInfo {
            name: name.to_string(),
            superuser: u.superuser,
            login: u.login,
            create: u.create,
            member_of: u.member_of.clone(),
        })
    }

    /// Every role, for pg_roles.
    pub fn roles(&self) -> Vec<RoleInfo> {
        let names: Vec<String> = self.read().keys().cloned().collect();
        names.iter().filter_map(|n| self.role(n)).collect()
    }

    /// `DROP USER name`.
    pub fn drop_user(&self, name: &str) -> Result<()> {
        if !self.exists(name) {
            return Err(no_such_role(name));
        }
        self.update(|users| {
            users.remove(name);
            for u in users.values_mut() {
                u.member_of.remove(name);
            }
        })
    }

    /// The user names, with whether each is a superuser.
    pub fn list(&self) -> Vec<(String, bool)> {
        self.read()
            .iter()
            .map(|(n, u)| (n.clone(), u.superuser))
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, StoredUser>> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` and writes the file (owner-only, replaced whole).
    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, StoredUser>)) -> Result<()> {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        let mut next = users.clone();
        change(&mut next);
        let bytes = serde_json::to_vec_pretty(&next)
            .map_err(|e| SluiceError::Internal(format!("users: {e}")))?;
        replace_private(&self.path, &bytes)?;
        *users = next;
        Ok(())
    }
}

/// Replaces `path` whole with `bytes`, owner-only and synced (a temporary
/// file renamed over it): the data directory's users and grants.
pub(super) fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| SluiceError::io(format!("creating {}", dir.display()), e))?;
    }
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| SluiceError::io(format!("replacing {}", path.display()), e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| SluiceError::io(format!("writing {}", path.display()), e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| SluiceError::io(format!("writing {}", path.display()), e))
}

/// Roles every server has, PostgreSQL's predefined ones.
pub fn is_predefined(name: &str) -> bool {
    name == READ_ALL_DATA || name == PUBLIC
}

fn no_such_role(name: &str) -> SluiceError {
    SluiceError::UndefinedObject(format!("role \"{name}\" does not exist"))
}

fn verifier(password: &str, superuser: bool) -> Result<StoredUser> {
    if password.is_empty() {
        return Err(SluiceError::Options("a password must not be empty".into()));
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| SluiceError::Internal(format!("no random salt: {e}")))?;
    Ok(StoredUser {
        salt: hex(&salt),
        iterations: ITERATIONS,
        salted_password: hex(&gen_salted_password(password, &salt, ITERATIONS)),
        superuser,
        login: true,
        create: false,
        member_of: BTreeSet::new(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let stored = self.read().get(user).cloned();
        // An unknown user fails exactly as a wrong password does.
        // A role that may not log in, or has no password, fails the same
        // way: nothing tells a client which roles exist.
        let Some(stored) = stored.filter(|u| u.login && !u.salt.is_empty()) else {
            return Err(PgWireError::InvalidPassword(user.to_string()));
        };
        match (unhex(&stored.salt), unhex(&stored.salted_password)) {
            (Some(salt), Some(salted)) if stored.iterations == ITERATIONS => {
                Ok(Password::new(Some(salt), salted))
            }
            _ => Err(PgWireError::InvalidPassword(user.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_kept_as_verifiers_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        assert!(users.bootstrap(Some("s3cret")).unwrap());
        assert!(
            !users.bootstrap(Some("other")).unwrap(),
            "only the first start"
        );
        users.create("bi", "readonly", false).unwrap();
        assert!(users
            .create("bi", "x", false)
            .unwrap_err()
            .to_string()
            .contains("already exists"));
        let text = std::fs::read_to_string(dir.path().join("users.json")).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("readonly"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("users.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Users::open(dir.path()).unwrap();
        assert!(again.is_superuser("sluice") && !again.is_superuser("bi"));
        again.set_password("bi", "new").unwrap();
        again.drop_user("bi").unwrap();
        assert!(again
            .drop_user("bi")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert_eq!(again.list(), vec![("sluice".to_string(), true)]);
    }
}
