//! pg_catalog's roles (pg_roles, pg_authid, pg_user, pg_auth_members), who
//! is asking (`current_user`), and what each role may read
//! (`has_table_privilege`, `relacl`), from the server's users and grants.

use std::collections::{BTreeMap, BTreeSet};

use super::tables::{TableDef, Ty, Ty::*, V};
use super::{Relations, OWNER, OWNER_OID};
use crate::server::access::Access;
use crate::server::auth::READ_ALL_DATA;

/// PostgreSQL's OID of `pg_read_all_data`.
const READ_ALL_DATA_OID: i64 = 6181;
/// Roles other than the two above are numbered from here, by name.
const FIRST_ROLE_OID: i64 = 20_000;

/// One role as the catalog shows it.
#[derive(Debug, Clone)]
pub(super) struct RoleRow {
    pub oid: i64,
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    pub create: bool,
    pub member_of: Vec<String>,
}

/// The roles, and who is asking.
#[derive(Debug, Clone)]
pub(super) struct Roles {
    pub list: Vec<RoleRow>,
    pub current: String,
}

impl Default for Roles {
    /// Without users (a script, tests): the one superuser.
    fn default() -> Roles {
        Roles {
            list: vec![RoleRow {
                oid: OWNER_OID,
                name: OWNER.into(),
                superuser: true,
                login: true,
                create: true,
                member_of: Vec::new(),
            }],
            current: OWNER.into(),
        }
    }
}

impl Roles {
    pub fn of(access: &Access, current: Option<String>) -> Roles {
        let mut list = Roles::default().list;
        let mut others = access.users.roles();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, r) in others.into_iter().enumerate() {
            let row = RoleRow {
                oid: FIRST_ROLE_OID + i as i64,
                name: r.name.clone(),
                superuser: r.superuser,
                login: r.login,
                create: r.create || r.superuser,
                member_of: r.member_of.into_iter().collect(),
            };
            if r.name == OWNER {
                list[0] = RoleRow {
                    oid: OWNER_OID,
                    ..row
                };
            } else {
                list.push(row);
            }
        }
        list.push(RoleRow {
            oid: READ_ALL_DATA_OID,
            name: READ_ALL_DATA.into(),
            superuser: false,
            login: false,
            create: false,
            member_of: Vec::new(),
        });
        Roles {
            list,
            current: current.unwrap_or_else(|| OWNER.into()),
        }
    }

    pub fn oid(&self, name: &str) -> i64 {
        self.list
            .iter()
            .find(|r| r.name == name)
            .map_or(OWNER_OID, |r| r.oid)
    }
}

/// What `current_user`, `pg_get_userbyid` and `has_table_privilege` need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(super) struct Who {
    pub current: String,
    pub names: BTreeMap<i64, String>,
    /// (role, relation) pairs where the role may read the relation.
    pub readable: BTreeSet<(String, String)>,
    /// (role, relation) pairs where the role owns the relation (or is a
    /// superuser): every privilege.
    pub owned: BTreeSet<(String, String)>,
}

impl Who {
    pub fn of(rels: &Relations, access: Option<&Access>) -> Who {
        let roles = &rels.2;
        let mut who = Who {
            current: roles.current.clone(),
            names: roles.list.iter().map(|r| (r.oid, r.name.clone())).collect(),
            ..Who::default()
        };
        let mut names: Vec<String> = roles.list.iter().map(|r| r.name.clone()).collect();
        if !names.contains(&roles.current) {
            names.push(roles.current.clone());
        }
        for role in names {
            for rel in &rels.0 {
                let key = (role.clone(), rel.name.clone());
                match access {
                    Some(a) => {
                        let p = a.principal(&role);
                        if a.owns(&p, &rel.name) {
                            who.owned.insert(key.clone());
                        }
                        if a.may_read(&p, &rel.name) {
                            who.readable.insert(key);
                        }
                    }
                    None => {
                        who.owned.insert(key.clone());
                        who.readable.insert(key);
                    }
                }
            }
        }
        who
    }

    /// `has_table_privilege([role,] relation, 'SELECT[, INSERT…]')`.
    pub fn has_privilege(&self, role: &str, relation: &str, privileges: &str) -> Option<bool> {
        let key = (role.to_string(), relation.to_string());
        let wanted: Vec<String> = privileges
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        // Any one of a list is enough, as in PostgreSQL.
        Some(wanted.iter().any(|p| {
            let p = p.trim_end_matches(" with grant option");
            self.owned.contains(&key) || (p == "select" && self.readable.contains(&key))
        }))
    }
}

pub(super) const TABLES: &[TableDef] = &[
    TableDef {
        name: "pg_roles",
        columns: ROLE_COLUMNS,
        rows: roles,
    },
    TableDef {
        name: "pg_authid",
        columns: ROLE_COLUMNS,
        rows: roles,
    },
    TableDef {
        name: "pg_user",
        columns: &[
            ("usename", Text),
            ("usesysid", Oid),
            ("usecreatedb", Bool),
            ("usesuper", Bool),
            ("userepl", Bool),
            ("usebypassrls", Bool),
            ("passwd", Text),
            ("valuntil", Text),
            ("useconfig", TextArray),
        ],
        rows: |rels| {
            rels.2
                .list
                .iter()
                .filter(|r| r.login)
                .map(|r| {
                    vec![
                        r.name.as_str().into(),
                        r.oid.into(),
                        r.create.into(),
                        r.superuser.into(),
                        false.into(),
                        false.into(),
                        "********".into(),
                        V::Null,
                        V::Null,
                    ]
                })
                .collect()
        },
    },
    TableDef {
        name: "pg_auth_members",
        columns: &[
            ("roleid", Oid),
            ("member", Oid),
            ("grantor", Oid),
            ("admin_option", Bool),
        ],
        rows: |rels| {
            let roles = &rels.2;
            roles
                .list
                .iter()
                .flat_map(|member| {
                    member.member_of.iter().map(move |role| {
                        vec![
                            roles.oid(role).into(),
                            member.oid.into(),
                            OWNER_OID.into(),
                            false.into(),
                        ]
                    })
                })
                .collect()
        },
    },
];

const ROLE_COLUMNS: &[(&str, Ty)] = &[
    ("oid", Oid),
    ("rolname", Text),
    ("rolsuper", Bool),
    ("rolinherit", Bool),
    ("rolcreaterole", Bool),
    ("rolcreatedb", Bool),
    ("rolcanlogin", Bool),
    ("rolreplication", Bool),
    ("rolconnlimit", I32),
    ("rolpassword", Text),
    ("rolvaliduntil", Text),
    ("rolbypassrls", Bool),
    ("rolconfig", TextArray),
];

fn roles(rels: &Relations) -> Vec<Vec<V>> {
    rels.2
        .list
        .iter()
        .map(|r| {
            vec![
                r.oid.into(),
                r.name.as_str().into(),
                r.superuser.into(),
                true.into(),
                r.superuser.into(),
                r.create.into(),
                r.login.into(),
                false.into(),
                (-1).into(),
                "********".into(),
                V::Null,
                r.superuser.into(),
                V::Null,
            ]
        })
        .collect()
}
