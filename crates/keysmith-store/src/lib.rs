//! Keysmith's storage: the [`Store`] trait, and its SQLite (embedded default) and
//! PostgreSQL implementations.
//!
//! Both backends run the same SQL where the dialects agree (`$N` placeholders,
//! `RETURNING`, `ON CONFLICT`), generated once by the `sql_store!` macro, and keep
//! their own migrations for the DDL where they do not. One conformance suite
//! (`tests/conformance.rs`) runs against both. Nothing from sqlx crosses the trait:
//! errors become [`StoreError`], rows become the records in [`model`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
pub mod model;
mod open;
mod postgres;
mod sql_store;
mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use open::{Backend, open};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use keysmith_core::{KeyDigest, KeyId};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything Keysmith persists. Implementations must be safe to share between tasks
/// and replicas: every method is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> Backend;

    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;

    /// On an empty database, creates the first organization and its admin and returns
    /// them; on a database that has any user, does nothing and returns `None`.
    async fn bootstrap(
        &self,
        org_name: &str,
        admin: NewUser,
        now: i64,
    ) -> Result<Option<(Org, User)>>;

    async fn create_user(&self, user: NewUser, now: i64) -> Result<User>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    /// Finds a user by username or email, case-insensitively, with the password hash.
    async fn find_user_for_sign_in(&self, login: &str) -> Result<Option<(User, Option<String>)>>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn add_org_member(
        &self,
        org: OrgId,
        user: UserId,
        role: keysmith_core::role::OrgRole,
        now: i64,
    ) -> Result<()>;
    /// The organizations a user belongs to, with the user's role in each, oldest first.
    async fn memberships(&self, user: UserId) -> Result<Vec<Membership>>;

    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session with this token digest, if it exists and has not expired at `now`.
    async fn find_session(&self, token_digest: &KeyDigest, now: i64) -> Result<Option<Session>>;
    async fn delete_session(&self, token_digest: &KeyDigest) -> Result<()>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64>;

    async fn insert_key(&self, key: NewKey) -> Result<StoredKey>;
    /// What verification needs for a v1 key: its digest and its owner's state.
    async fn find_key_for_auth(&self, key_id: &KeyId) -> Result<Option<AuthRecord>>;
    /// What verification needs for a legacy key, found by the digest of the whole key.
    async fn find_legacy_key_for_auth(&self, digest: &KeyDigest) -> Result<Option<AuthRecord>>;
    async fn get_key(&self, key_id: &KeyId) -> Result<Option<StoredKey>>;
    async fn list_keys(&self, query: &KeyListQuery) -> Result<Vec<StoredKey>>;
    async fn rename_key(&self, key_id: &KeyId, name: &str) -> Result<Option<StoredKey>>;
    /// Deletes a key; `false` if there was none. Once this returns, the key is gone for
    /// every reader of the database.
    async fn delete_key(&self, key_id: &KeyId) -> Result<bool>;
    /// Records last-use times in one transaction; a time never moves backwards.
    async fn record_key_use(&self, uses: &[(KeyId, i64)]) -> Result<()>;
}
