//! The records the store reads and writes.

use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_core::{KeyDigest, KeyId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: i64,
}

/// A principal: a person, or (later) a service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub kind: PrincipalKind,
    pub username: String,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: i64,
}

/// A user to create. The password arrives already hashed (argon2id PHC string).
#[derive(Clone)]
pub struct NewUser {
    pub kind: PrincipalKind,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org: Org,
    pub role: OrgRole,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_digest: KeyDigest,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    V1,
    Legacy,
}

impl KeyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Legacy => "legacy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1" => Some(Self::V1),
            "legacy" => Some(Self::Legacy),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub format: KeyFormat,
    pub display: String,
    pub name: String,
    pub owner: UserId,
    pub created_by: Option<UserId>,
    pub created_at: i64,
}

/// A key as lists and the API show it: never its secret, and not its digest either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: KeyId,
    pub format: KeyFormat,
    pub display: String,
    pub name: String,
    pub owner: UserRef,
    pub created_by: Option<UserId>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A user or service account, as much as verification and lists need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: UserId,
    pub kind: PrincipalKind,
    pub username: String,
}

/// What verifying a presented key needs, in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub owner: UserRef,
    pub owner_active: bool,
}

/// A page of keys, newest first. The cursor is the last row of the previous page.
#[derive(Debug, Clone)]
pub struct KeyListQuery {
    pub owner: UserId,
    pub after: Option<KeyCursor>,
    pub limit: u32,
}

/// A position in the newest-first order: `(created_at, key_id)` of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub created_at: i64,
    pub key_id: String,
}
