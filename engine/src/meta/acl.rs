//! Explicit ACL grants (S3's `x-amz-grant-*` headers and AccessControlPolicy documents, D53):
//! who gets which permission on a bucket or an object, besides its owner (who always has full
//! control) and besides what the canned ACL grants.
//!
//! Encoding: `u8 count`, then per grant `u8 grantee` (0 a user, followed by `str` its id;
//! 1 AllUsers, 2 AuthenticatedUsers, 3 LogDelivery) and `u8 permission` (0 READ, 1 WRITE,
//! 2 READ_ACP, 3 WRITE_ACP, 4 FULL_CONTROL).

use crate::error::{Error, Result};

use super::codec::{Reader, Writer};

/// Most grants one ACL holds (S3's limit).
pub const GRANTS_MAX: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    /// A user, by its canonical id (keel: its access key).
    User(String),
    AllUsers,
    AuthenticatedUsers,
    LogDelivery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    pub const ALL: [Permission; 5] =
        [Permission::Read, Permission::Write, Permission::ReadAcp, Permission::WriteAcp, Permission::FullControl];

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether holding `self` gives `wanted` (FULL_CONTROL gives everything).
    pub fn gives(self, wanted: Permission) -> bool {
        self == wanted || self == Permission::FullControl
    }

    fn code(self) -> u8 {
        Permission::ALL.iter().position(|p| *p == self).unwrap_or(0) as u8
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An ACL's explicit grants, in the order given.
pub type Grants = Vec<Grant>;

/// Whether `grants` give `wanted` to the caller (`user`: its id when signed).
pub fn granted(grants: &[Grant], user: Option<&str>, wanted: Permission) -> bool {
    grants.iter().any(|g| {
        g.permission.gives(wanted)
            && match &g.grantee {
                Grantee::AllUsers => true,
                Grantee::AuthenticatedUsers => user.is_some(),
                Grantee::User(id) => user == Some(id.as_str()),
                Grantee::LogDelivery => false,
            }
    })
}

/// Whether `grants` give anything to everyone or to every signed caller (a public ACL).
pub fn public(grants: &[Grant]) -> bool {
    grants.iter().any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
}

pub(super) fn write_grants(w: &mut Writer, grants: &[Grant]) {
    w.u8(grants.len().min(GRANTS_MAX) as u8);
    for g in grants.iter().take(GRANTS_MAX) {
        match &g.grantee {
            Grantee::User(id) => {
                w.u8(0);
                w.bytes(id.as_bytes());
            }
            Grantee::AllUsers => w.u8(1),
            Grantee::AuthenticatedUsers => w.u8(2),
            Grantee::LogDelivery => w.u8(3),
        }
        w.u8(g.permission.code());
    }
}

pub(super) fn read_grants(r: &mut Reader<'_>) -> Result<Grants> {
    (0..r.u8()?)
        .map(|_| {
            let grantee = match r.u8()? {
                0 => Grantee::User(r.str()?),
                1 => Grantee::AllUsers,
                2 => Grantee::AuthenticatedUsers,
                3 => Grantee::LogDelivery,
                _ => return Err(Error::BadMeta("grantee")),
            };
            let permission = *Permission::ALL.get(r.u8()? as usize).ok_or(Error::BadMeta("grant permission"))?;
            Ok(Grant { grantee, permission })
        })
        .collect()
}
