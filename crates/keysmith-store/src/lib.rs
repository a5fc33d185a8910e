//! Keysmith's storage: the [`Store`] trait, and its SQLite (embedded default) and
//! PostgreSQL implementations.
//!
//! Both backends run the same SQL where the dialects agree (`$N` placeholders,
//! `RETURNING`, `ON CONFLICT`), generated once by the `sql_store!` macro, and keep
//! their own migrations for the DDL where they do not. One conformance suite
//! (`tests/conformance.rs`) runs against both. Nothing from sqlx crosses the trait:
//! errors become [`StoreError`], rows become the records in [`model`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod copy;
mod error;
pub mod model;
mod open;
mod postgres;
mod schema;
mod sql_store;
mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use open::{Backend, migrate_database, open, sqlite_path};
pub use postgres::PostgresStore;
pub use postgres::{INVALIDATION_CHANNEL, LISTENER_APPLICATION_NAME};
pub use sqlite::{SqliteStore, inspect_backup, restore_backup};

/// Every table of Keysmith's schema (not the migrations' own), in an order that keeps
/// references valid.
pub const TABLES: &[&str] = &[
    "orgs",
    "users",
    "org_members",
    "teams",
    "team_members",
    "service_accounts",
    "api_keys",
    "key_sources",
    "key_notices",
    "sessions",
    "invites",
    "audit_log",
    "audit_chain",
    "schema_compat",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_outbox",
    "email_outbox",
    "jwt_issuers",
    "sso_providers",
];

use keysmith_core::role::{OrgRole, TeamRole};
use keysmith_core::{KeyDigest, KeyId};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything Keysmith persists. Implementations must be safe to share between tasks
/// and replicas: every method is one transaction, and a method that takes audit
/// entries appends them in the same transaction as its change, so a crash never keeps
/// a change without its record or a record without its change.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> Backend;

    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;

    /// Whether this process may write: starts a write and rolls it back, so nothing
    /// is written. A file the process cannot write (SQLite) or a read-only server or
    /// transaction mode (PostgreSQL) fails here, not on a user's first change.
    async fn check_writable(&self) -> Result<()>;

    /// On an empty database, creates the first organization and its admin and returns
    /// them; on a database that has any user, does nothing and returns `None`.
    async fn bootstrap(&self, org_name: &str, admin: NewUser, now: i64) -> Result<Option<(Org, User)>>;

    // ------------------------------------------------------------ organizations
    async fn create_org(&self, name: &str, now: i64) -> Result<Org>;
    async fn get_org(&self, id: OrgId) -> Result<Option<Org>>;
    async fn find_org(&self, name: &str) -> Result<Option<Org>>;
    async fn update_org_settings(&self, org: OrgId, settings: OrgSettings, audit: &[NewAuditEntry]) -> Result<Org>;
    /// Every principal of the org (users and service accounts) with its role.
    async fn org_members(&self, org: OrgId) -> Result<Vec<OrgMember>>;
    /// Adds `user` to `org`; a conflict if already a member.
    async fn add_org_member(
        &self,
        org: OrgId,
        user: UserId,
        role: OrgRole,
        now: i64,
        audit: &[NewAuditEntry],
    ) -> Result<()>;
    /// Changes a member's role; refuses to demote the org's last active admin.
    async fn set_org_role(&self, org: OrgId, user: UserId, role: OrgRole, audit: &[NewAuditEntry]) -> Result<bool>;
    /// Removes a member (and their team memberships in the org); refuses to remove the
    /// last active admin (`StoreError::Refused`). `Ok(false)` if not a member.
    async fn remove_org_member(&self, org: OrgId, user: UserId, audit: &[NewAuditEntry]) -> Result<bool>;
    /// The organizations a user belongs to, with the user's role in each, oldest first.
    async fn memberships(&self, user: UserId) -> Result<Vec<Membership>>;

    // ------------------------------------------------------------ users
    /// Creates a principal that belongs to no organization yet.
    async fn create_user(&self, user: NewUser, now: i64) -> Result<User>;
    /// Creates a user and makes them a member of `org` with `role`, in one transaction.
    async fn create_member(
        &self,
        user: NewUser,
        org: OrgId,
        role: OrgRole,
        now: i64,
        audit: &[NewAuditEntry],
    ) -> Result<User>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    /// Finds a user by username or email, case-insensitively, with the password hash.
    async fn find_user_for_sign_in(&self, login: &str) -> Result<Option<(User, Option<String>)>>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<bool>;
    /// An operator's password reset: sets the password, ends every session of the
    /// user (announcing `Invalidation::Owner`), clears their sign-in throttle (`sign_in_unlocked_at = now`) and appends
    /// `audit`, in one transaction. `false` when there is no such user (with a
    /// password: service accounts have none).
    async fn reset_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: i64,
        audit: &[NewAuditEntry],
    ) -> Result<bool>;
    /// Clears a user's sign-in throttle on every server (`sign_in_unlocked_at = now`)
    /// and appends `audit`. `false` when there is no such user.
    async fn unlock_sign_in(&self, user: UserId, now: i64, audit: &[NewAuditEntry]) -> Result<bool>;
    /// When an operator last cleared the user's sign-in throttle, if ever.
    async fn sign_in_unlocked_at(&self, user: UserId) -> Result<Option<i64>>;
    /// Deactivates or reactivates; refuses to deactivate an org's last active admin.
    async fn set_user_active(&self, user: UserId, active: bool, audit: &[NewAuditEntry]) -> Result<bool>;
    /// Deletes a user or service account with its keys, sessions and memberships;
    /// refuses to delete an org's last active admin.
    async fn delete_user(&self, user: UserId, audit: &[NewAuditEntry]) -> Result<bool>;
    /// The caller's administrative roles (ignores nothing: the caller checks `active`).
    async fn roles(&self, user: UserId) -> Result<keysmith_core::policy::Roles>;
    /// Where a principal belongs: a user's orgs, or a service account's scope.
    async fn owner_scope(&self, user: UserId) -> Result<Option<keysmith_core::policy::OwnerScope>>;

    // ------------------------------------------------------------ teams
    async fn create_team(&self, org: OrgId, name: &str, now: i64, audit: &[NewAuditEntry]) -> Result<Team>;
    async fn find_team(&self, org: OrgId, name: &str) -> Result<Option<Team>>;
    async fn list_teams(&self, org: OrgId) -> Result<Vec<Team>>;
    /// Adds a member or changes their role.
    async fn set_team_member(
        &self,
        team: TeamId,
        user: UserId,
        role: TeamRole,
        now: i64,
        audit: &[NewAuditEntry],
    ) -> Result<()>;
    async fn remove_team_member(&self, team: TeamId, user: UserId, audit: &[NewAuditEntry]) -> Result<bool>;
    async fn team_members(&self, team: TeamId) -> Result<Vec<TeamMember>>;
    /// The teams a user belongs to in an org, with the user's role in each.
    async fn user_teams(&self, user: UserId) -> Result<Vec<(Team, TeamRole)>>;

    // ------------------------------------------------------------ service accounts
    async fn create_service_account(
        &self,
        account: NewServiceAccount,
        now: i64,
        audit: &[NewAuditEntry],
    ) -> Result<ServiceAccount>;
    async fn get_service_account(&self, user: UserId) -> Result<Option<ServiceAccount>>;
    /// Sets where a service account's keys may be used from (`None`: wherever its
    /// organization allows), with the audit entry; every cached key of the account is
    /// stale at once, on every replica. `false` if there is no such account.
    async fn set_service_account_networks(
        &self,
        user: UserId,
        networks: Option<String>,
        audit: &[NewAuditEntry],
    ) -> Result<bool>;
    /// The org's service accounts; with `team`, only that team's.
    async fn list_service_accounts(&self, org: OrgId, team: Option<TeamId>) -> Result<Vec<ServiceAccount>>;

    // ------------------------------------------------------------ invitations
    /// Records a one-time invitation for a user without a password.
    async fn create_invite(&self, user: UserId, token_digest: &KeyDigest, now: i64, expires_at: i64) -> Result<()>;
    /// Sets the password of the invited user and consumes the invitation, if it exists
    /// and has not expired; returns the user.
    /// Sets the invited user's password and uses the invitation up, recording
    /// `user.invitation_accepted` in each of the user's organizations, in one
    /// transaction. `None` (nothing changed) for an unknown, expired or used
    /// invitation, or a deactivated user.
    async fn accept_invite(
        &self,
        token_digest: &KeyDigest,
        password_hash: &str,
        now: i64,
        source_address: Option<&str>,
    ) -> Result<Option<UserId>>;
    /// Withdraws every open invitation of a user; returns how many.
    async fn delete_invites(&self, user: UserId) -> Result<u64>;

    // ------------------------------------------------------------ sessions
    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session with this token digest, if it exists and has not expired at `now`.
    async fn find_session(&self, token_digest: &KeyDigest, now: i64) -> Result<Option<Session>>;
    /// Ends a session, and announces `Invalidation::Session` so that no replica's
    /// cache keeps it.
    async fn delete_session(&self, token_digest: &KeyDigest) -> Result<()>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64>;
    /// Keys (and federated sessions) that expired at or before `before`, the oldest
    /// expiry first.
    async fn keys_expired_before(&self, before: i64, limit: u32) -> Result<Vec<StoredKey>>;
    /// Removes webhook deliveries that are done (delivered or failed) and were made
    /// before `before`; how many.
    async fn purge_deliveries(&self, before: i64) -> Result<u64>;

    // ------------------------------------------------------------ keys
    async fn insert_key(&self, key: NewKey, audit: &[NewAuditEntry]) -> Result<StoredKey>;
    /// Appends audit entries that record no change (a refusal worth keeping).
    async fn append_audit_entries(&self, audit: &[NewAuditEntry]) -> Result<()>;
    /// What verification needs for a v1 key: its digest and its owner's state.
    async fn find_key_for_auth(&self, key_id: &KeyId) -> Result<Option<AuthRecord>>;
    /// What verification needs for a legacy key, found by the digest of the whole key.
    async fn find_legacy_key_for_auth(&self, digest: &KeyDigest) -> Result<Option<AuthRecord>>;
    async fn get_key(&self, key_id: &KeyId) -> Result<Option<StoredKey>>;
    async fn list_keys(&self, query: &KeyListQuery) -> Result<Vec<StoredKey>>;
    async fn rename_key(&self, key_id: &KeyId, name: &str, audit: &[NewAuditEntry]) -> Result<Option<StoredKey>>;
    /// Deletes a key; `false` if there was none. Once this returns, the key is gone for
    /// every reader of the database.
    async fn delete_key(&self, key_id: &KeyId, audit: &[NewAuditEntry]) -> Result<bool>;
    /// Records last-use times in one transaction; a time never moves backwards.
    async fn record_key_use(&self, uses: &[(KeyId, i64)]) -> Result<()>;
    /// Records when keys last made a request that may change state, in one
    /// transaction; a time never moves backwards.
    async fn record_key_writes(&self, writes: &[(KeyId, i64)]) -> Result<()>;
    /// One section of an organization's key report, at most `limit` keys.
    async fn key_report(&self, query: &KeyReportQuery) -> Result<Vec<StoredKey>>;
    /// Records where keys were used from, in one transaction, keeping the
    /// [`MAX_SOURCES_PER_KEY`] most recent distinct sources of each key.
    async fn record_key_sources(&self, uses: &[KeySourceUse]) -> Result<()>;
    /// A key's recent sources, most recent first.
    async fn key_sources(&self, key_id: &KeyId) -> Result<Vec<KeySource>>;
    /// Rotation: inserts `new` (which names `old` in `rotated_from`) and lets `old`
    /// expire at `old_expires_at` (`None` leaves its expiry as it is), in one
    /// transaction. `None` if `old` no longer exists.
    async fn rotate_key(
        &self,
        old: &KeyId,
        new: NewKey,
        old_expires_at: Option<i64>,
        audit: &[NewAuditEntry],
    ) -> Result<Option<StoredKey>>;
    /// Keys (not federated) that expire after `now` and by `until` and have no notice
    /// `kind` about that expiry yet.
    async fn keys_expiring(&self, now: i64, until: i64, kind: &str, limit: u32) -> Result<Vec<StoredKey>>;
    /// Keys of `org`'s members and service accounts (not federated, not expired at
    /// `now`) last used, or made and never used, at or before `idle_since`, with no
    /// notice `kind` about that last activity yet.
    async fn idle_keys(&self, org: OrgId, idle_since: i64, now: i64, kind: &str, limit: u32) -> Result<Vec<StoredKey>>;
    /// Organizations that announce idle keys (`unused_key_notice_days` > 0).
    async fn orgs_announcing_idle_keys(&self) -> Result<Vec<Org>>;
    /// Records the notices `kinds` about `key_id`'s `due_at` (the first is the one
    /// given; the others are recorded as no longer needed) with the notice's audit
    /// entries and messages, in one transaction; `false`, writing nothing, if the
    /// first was already given (by another replica) or the key is gone.
    async fn claim_key_notice(
        &self,
        key_id: &KeyId,
        kinds: &[String],
        due_at: i64,
        at: i64,
        audit: &[NewAuditEntry],
        emails: &[NewEmail],
    ) -> Result<bool>;
    /// Pending messages due by `now` that no replica holds, each now held by this one
    /// until `lease_until`, oldest first.
    async fn claim_emails(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<Email>>;
    /// Records an attempt to send a message, and releases it.
    async fn finish_email(&self, id: i64, attempt: &EmailAttempt) -> Result<()>;
    /// The most recent messages, newest first.
    async fn list_emails(&self, limit: u32) -> Result<Vec<Email>>;
    /// Removes messages sent or given up on before `before`; how many.
    async fn purge_emails(&self, before: i64) -> Result<u64>;

    // ------------------------------------------------------------ operations
    /// A consistent copy of the whole database at one moment, written to `path` (which
    /// must not exist; made readable by its owner alone, and removed if the copy fails),
    /// while others go on writing. SQLite only: PostgreSQL is backed
    /// up with its own `pg_dump` (docs/OPERATIONS.md).
    async fn backup_to(&self, path: &std::path::Path) -> Result<()>;
    /// Rows per table, for summaries and checks: `(table, rows)`, by table name.
    async fn table_counts(&self) -> Result<Vec<(String, i64)>>;

    // ------------------------------------------------------------ invalidations
    /// Registers a hook called after each committed change that makes cached
    /// verification results stale.
    fn on_invalidation(&self, hook: InvalidationHook);
    /// The other replicas' invalidations (PostgreSQL `LISTEN`); `None` for a store that
    /// only this process uses (SQLite).
    async fn subscribe_invalidations(&self) -> Result<Option<Box<dyn InvalidationFeed>>>;

    // ------------------------------------------------------------ audit
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Every organization's entries after ID `after`, oldest first, up to `limit`
    /// read and up to the first ID still missing at `now` (as the webhook outbox
    /// reads them); with the ID to resume after.
    async fn audit_after(&self, after: i64, now: i64, limit: u32) -> Result<(i64, Vec<AuditEntry>)>;
    /// The export cursor from which the entries at or after `at` follow: one less than
    /// the lowest ID among them; the newest ID when there are none yet.
    async fn audit_cursor_at(&self, at: i64) -> Result<i64>;
    /// The audit hash chain's head: the newest sealed entry's ID and hash (0 and 64
    /// zeros before any).
    async fn audit_chain_head(&self) -> Result<(i64, String)>;
    /// Seals entries: stores each `(id, hash)` and moves the chain's head from entry
    /// `from` to the last of them, in one transaction; `false` (nothing written) when
    /// the head was no longer at `from` (another replica sealed them first).
    async fn seal_audit(&self, from: i64, hashes: &[(i64, String)]) -> Result<bool>;

    // ------------------------------------------------------------ webhooks
    async fn create_webhook(&self, webhook: NewWebhook, audit: &[NewAuditEntry]) -> Result<Webhook>;
    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>>;
    async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>>;
    async fn delete_webhook(&self, id: i64, audit: &[NewAuditEntry]) -> Result<bool>;
    /// Rotates an endpoint's signing secret at `at`: `secret_version` goes up by one and
    /// the version it had becomes `previous_secret_version`, with the audit entries, in
    /// one transaction. `None` if the endpoint is gone.
    async fn rotate_webhook_secret(&self, id: i64, at: i64, audit: &[NewAuditEntry]) -> Result<Option<Webhook>>;
    /// The outbox cursor and up to `limit` audit entries after it, oldest first, up
    /// to the first ID still missing at `now` (a transaction that took it may still
    /// commit; docs/RELIABILITY.md).
    async fn outbox_batch(&self, now: i64, limit: u32) -> Result<(i64, Vec<AuditEntry>)>;
    /// Moves the outbox cursor from `from` to `to` and queues `deliveries`, in one
    /// transaction; `false` (nothing written) if the cursor was no longer at `from`.
    async fn commit_outbox(&self, from: i64, to: i64, deliveries: &[NewDelivery]) -> Result<bool>;
    /// Claims up to `limit` pending deliveries due at `now` until `lease_until`, so that
    /// no other replica sends them meanwhile; with their endpoints.
    async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<(Delivery, Webhook)>>;
    /// Records an attempt's outcome.
    async fn finish_attempt(&self, delivery: i64, result: &AttemptResult) -> Result<()>;
    /// Trusts a JWT issuer for an organization. `Conflict` when it already does.
    async fn create_jwt_issuer(&self, issuer: NewJwtIssuer, audit: &[NewAuditEntry]) -> Result<JwtIssuer>;
    async fn list_jwt_issuers(&self, org: OrgId) -> Result<Vec<JwtIssuer>>;
    /// Every organization's registration of the issuer `iss` (several organizations
    /// may trust one issuer; the audience tells their JWTs apart).
    async fn jwt_issuers_named(&self, iss: &str) -> Result<Vec<JwtIssuer>>;
    async fn delete_jwt_issuer(&self, org: OrgId, id: i64, audit: &[NewAuditEntry]) -> Result<Option<JwtIssuer>>;
    /// Who a JWT subject names in `org`: the external service account configured with
    /// it, else the member user whose email it is (case-insensitive).
    async fn find_federated_identity(&self, org: OrgId, subject: &str) -> Result<Option<User>>;

    /// An endpoint's deliveries, newest first.
    async fn list_deliveries(&self, endpoint: i64, limit: u32) -> Result<Vec<Delivery>>;

    // ------------------------------------------------------------ single sign-on
    /// Adds an OpenID Connect provider. `Conflict` when the organization has one of that
    /// name (without case).
    async fn create_sso_provider(&self, provider: NewSsoProvider, audit: &[NewAuditEntry]) -> Result<SsoProvider>;
    /// The providers of `org`, or of every organization (the sign-in page), by ID.
    async fn list_sso_providers(&self, org: Option<OrgId>) -> Result<Vec<SsoProvider>>;
    async fn get_sso_provider(&self, id: i64) -> Result<Option<SsoProvider>>;
    async fn delete_sso_provider(&self, org: OrgId, id: i64, audit: &[NewAuditEntry]) -> Result<Option<SsoProvider>>;

    // ------------------------------------------------------------ SCIM
    /// The SCIM records of the organization's members that have one.
    async fn scim_user_records(&self, org: OrgId) -> Result<Vec<(UserId, ScimRecord)>>;
    /// Records what SCIM wrote about a member of `org` and, when `email` is given,
    /// sets their email (`Some(None)` clears it; a conflict when another principal has
    /// it). `false` when the user is not a member.
    async fn set_scim_user(
        &self,
        org: OrgId,
        user: UserId,
        record: &ScimRecord,
        email: Option<Option<&str>>,
        audit: &[NewAuditEntry],
    ) -> Result<bool>;
    /// The SCIM records of the organization's teams that have one.
    async fn scim_team_records(&self, org: OrgId) -> Result<Vec<(TeamId, ScimRecord)>>;
    /// Records what SCIM wrote about a team. `false` when there is no such team.
    async fn set_scim_team(&self, team: TeamId, record: &ScimRecord, audit: &[NewAuditEntry]) -> Result<bool>;
    /// Deletes a team that has no service accounts (their keys would lose their
    /// scope); its members leave it. `false` when there is no such team or it has
    /// service accounts.
    async fn delete_team(&self, team: TeamId, audit: &[NewAuditEntry]) -> Result<bool>;
}

/// A live subscription to other replicas' invalidations.
#[async_trait::async_trait]
pub trait InvalidationFeed: Send {
    /// The next invalidation; an error means the connection was lost and notices may
    /// have been missed.
    async fn next(&mut self) -> Result<Notice>;
}

/// The hooks a store calls after each invalidating commit.
#[derive(Default)]
pub(crate) struct Hooks(std::sync::RwLock<Vec<InvalidationHook>>);

impl Hooks {
    pub(crate) fn add(&self, hook: InvalidationHook) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).push(hook);
    }

    pub(crate) fn fire(&self, invalidation: &Invalidation) {
        for hook in self.0.read().unwrap_or_else(|p| p.into_inner()).iter() {
            hook(invalidation);
        }
    }
}
