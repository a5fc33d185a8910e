//! The records the store reads and writes.

use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{KeyDigest, KeyId, KeyScope};

pub use keysmith_core::{OrgId, TeamId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: i64,
    /// "Disable API key creation": users and team service accounts cannot create keys.
    pub key_creation_disabled: bool,
    /// Members may mint legacy-format keys (40 hex) for SDKs older than 0.22.3.
    pub legacy_keys_allowed: bool,
    /// Longest lifetime of a new user key, in days; 0: no limit.
    pub max_user_key_lifetime_days: u32,
    /// Longest lifetime of a new service account key, in days; 0: no limit.
    pub max_service_account_key_lifetime_days: u32,
    /// Members sign in to the web interface through a single sign-on provider, not a
    /// password (admins keep theirs).
    pub sso_required: bool,
    /// Where its members' and service accounts' keys may be used from (canonical
    /// CIDR blocks, comma-separated); `None`: anywhere.
    pub allowed_networks: Option<String>,
    /// Keys not used for this many days are announced as idle (`api_key.unused`); 0:
    /// never.
    pub unused_key_notice_days: u32,
}

/// A change to an organization's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgSettings {
    pub key_creation_disabled: Option<bool>,
    pub legacy_keys_allowed: Option<bool>,
    pub max_user_key_lifetime_days: Option<u32>,
    pub max_service_account_key_lifetime_days: Option<u32>,
    pub sso_required: Option<bool>,
    /// `Some(None)` lifts the organization's allowlist; `Some(Some(list))` sets it
    /// (canonical text).
    pub allowed_networks: Option<Option<String>>,
    /// Keys not used for this many days are announced as idle; 0: never.
    pub unused_key_notice_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub org: OrgId,
    pub name: String,
    pub created_at: i64,
}

/// What an identity provider wrote through SCIM about a user of an organization or a
/// team: a JSON object of the attributes as it wrote them, and when it last did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRecord {
    pub attributes: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub user: UserRef,
    pub role: TeamRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgMember {
    pub user: User,
    pub role: OrgRole,
}

/// A service account: a principal without a password, scoped to one team or to its
/// whole organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub user: User,
    pub org: OrgId,
    /// `None` for an organization-scoped service account.
    pub team: Option<Team>,
    pub description: String,
    /// For an external service account: the JWT `sub` it accepts from the
    /// organization's issuers (identity federation). `None`: a built-in one.
    pub external_subject: Option<String>,
    /// Where its keys may be used from (canonical CIDR blocks); `None`: anywhere its
    /// organization allows.
    pub allowed_networks: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewServiceAccount {
    pub org: OrgId,
    pub team: Option<TeamId>,
    pub username: String,
    pub description: String,
    pub created_by: Option<UserId>,
    pub external_subject: Option<String>,
    pub allowed_networks: Option<String>,
}

/// Why a change to roles or users was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The change would leave an organization without an active admin.
    LastAdmin,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LastAdmin => f.write_str("this would leave an organization without an active admin"),
        }
    }
}

/// An audit entry to append, in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub org: OrgId,
    pub at: i64,
    pub actor: Option<UserRef>,
    pub action: String,
    pub target_kind: String,
    pub target: String,
    pub source_address: Option<String>,
    /// Extra facts as JSON text (never a secret).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub org: OrgId,
    pub at: i64,
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    pub action: String,
    pub target_kind: String,
    pub target: String,
    pub source_address: Option<String>,
    pub detail: Option<String>,
    /// Its hash in the audit chain, hex; `None` until sealed.
    pub chain_hash: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub org: Option<OrgId>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The `id` of the last entry of the previous page.
    pub before_id: Option<i64>,
    pub limit: u32,
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
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
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
    /// When the key stops authenticating; `None`: never.
    pub expires_at: Option<i64>,
    /// The key this one replaces (rotation).
    pub rotated_from: Option<KeyId>,
    /// For a federated session (an access token a JWT was exchanged for): the JWT's
    /// issuer. `None`: an API key.
    pub federated_issuer: Option<String>,
    /// What the key may do at most (never more than its owner).
    pub scope: KeyScope,
    /// Where the key may be used from (canonical CIDR blocks); `None`: anywhere its
    /// owner's organizations allow.
    pub allowed_networks: Option<String>,
    /// At most this many requests a minute (per replica); `None`: no limit.
    pub requests_per_minute: Option<u32>,
}

/// A key as lists and the API show it: never its secret, and not its digest either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: KeyId,
    pub format: KeyFormat,
    pub display: String,
    pub name: String,
    pub owner: UserRef,
    pub created_by: Option<UserRef>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The last request that may have changed state (not GET or HEAD).
    pub last_write_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// The key this one replaced, if it came from a rotation.
    pub rotated_from: Option<String>,
    /// The key that replaces this one, if it is being rotated out.
    pub rotated_to: Option<String>,
    /// For a federated session: the issuer of the JWT it was exchanged for.
    pub federated_issuer: Option<String>,
    pub scope: KeyScope,
    pub allowed_networks: Option<String>,
    pub requests_per_minute: Option<u32>,
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
    pub expires_at: Option<i64>,
    pub scope: KeyScope,
    /// The key's own allowlist.
    pub key_networks: Option<String>,
    /// The key's request limit, per minute.
    pub requests_per_minute: Option<u32>,
    /// The allowlist of the service account that owns the key.
    pub account_networks: Option<String>,
    /// The allowlists of the owner's organizations that have one: each applies.
    pub org_networks: Vec<String>,
    /// The organizations of the owner, by name (for forward auth's identity headers).
    pub orgs: Vec<String>,
}

/// A page of keys: those the caller may see, filtered, in the chosen order.
#[derive(Debug, Clone)]
pub struct KeyListQuery {
    pub visibility: Visibility,
    pub filter: KeyFilter,
    pub sort: KeySort,
    pub after: Option<KeyCursor>,
    pub limit: u32,
}

/// Whose keys a caller may list (docs/DESIGN.md §3): their own; every key of a principal in
/// an org they administer; the keys of service accounts of teams they administer.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    pub caller: Option<UserId>,
    pub admin_orgs: Vec<OrgId>,
    pub admin_teams: Vec<TeamId>,
}

impl Visibility {
    /// Only the caller's own keys.
    pub fn own(caller: UserId) -> Self {
        Self {
            caller: Some(caller),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub owner: Option<UserId>,
    pub owner_kind: Option<PrincipalKind>,
    /// Keys of the team's service accounts and of its members.
    pub team: Option<TeamId>,
    /// Keys of principals in this organization.
    pub org: Option<OrgId>,
    /// Case-insensitive substring of the key's name.
    pub name_contains: Option<String>,
    pub last_used_before: Option<i64>,
    pub last_used_after: Option<i64>,
    /// Keys that expire after this time…
    pub expires_after: Option<i64>,
    /// …and by this one.
    pub expires_before: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySort {
    /// Newest first.
    #[default]
    Created,
    /// Most recently used first; never-used keys last.
    LastUsed,
}

/// A position in the order: the sort value and key ID of the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub value: i64,
    pub key_id: String,
}

/// One use of a key from a source, as the usage recorder batches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySourceUse {
    pub key_id: KeyId,
    pub address: String,
    pub user_agent: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A recent distinct source of a key: where it was used from, first and last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    pub address: String,
    pub user_agent: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// How many distinct sources the store keeps per key (the most recent).
pub const MAX_SOURCES_PER_KEY: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub org: OrgId,
    /// Public random ID; with the server's secret and `secret_version` it derives the
    /// signing secret, which is never stored.
    pub uid: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub created_at: i64,
    pub created_by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub org: OrgId,
    pub uid: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub secret_version: i64,
    /// The version before the last rotation (`None`: never rotated). Deliveries are
    /// signed with it as well for a grace period after `secret_rotated_at`.
    pub previous_secret_version: Option<i64>,
    /// When the signing secret was last rotated.
    pub secret_rotated_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub endpoint_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// What an attempt to deliver came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub status: DeliveryStatus,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub at: i64,
    /// When to try again (pending only).
    pub next_attempt_at: i64,
}

/// A section of an organization's key report: keys of its members and service
/// accounts that still work (not expired, not rotated away, not federated sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Never used, and made at or before the threshold.
    NeverUsed,
    /// Last used at or before the threshold.
    Idle,
    /// Expiring at or before the threshold.
    Expiring,
    /// A write or admin key used after the threshold that made no request that may
    /// change state since then (and was made before it): it could be a read key.
    ReadsOnly,
}

#[derive(Debug, Clone)]
pub struct KeyReportQuery {
    pub org: OrgId,
    pub kind: ReportKind,
    pub now: i64,
    pub threshold: i64,
    pub limit: u32,
}

/// A message to queue: written with the notice it tells of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// One message per notice and recipient; a second with the same text is not queued.
    pub dedupe: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailStatus {
    Pending,
    Sent,
    Failed,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A queued message and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub status: EmailStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// The mail server's last refusal, or why it could not be reached.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// What an attempt to send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAttempt {
    pub status: EmailStatus,
    pub error: Option<String>,
    pub at: i64,
    /// When to try again (pending only).
    pub next_attempt_at: i64,
}

/// A change that makes cached verification results stale. The store announces it
/// after the change commits: to hooks in this process, and (PostgreSQL) to every
/// replica through `LISTEN/NOTIFY`, sent inside the changing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// One key: deleted, or its expiry changed.
    Key(String),
    /// A principal: deactivated, deleted, or its organizations, teams or roles
    /// changed. Every cached key of theirs and their cached roles are stale.
    Owner(UserId),
    /// A sign-in session, by its token's digest: signed out.
    Session(KeyDigest),
}

impl Invalidation {
    /// `k:<key id>`, `u:<user id>` or `s:<session token digest, hex>`.
    pub fn encode(&self) -> String {
        match self {
            Self::Key(k) => format!("k:{k}"),
            Self::Owner(u) => format!("u:{}", u.0),
            Self::Session(d) => format!("s:{}", d.to_hex()),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        match s.split_once(':')? {
            ("k", k) if !k.is_empty() => Some(Self::Key(k.to_owned())),
            ("u", u) => u.parse().ok().map(|id| Self::Owner(UserId(id))),
            ("s", d) => KeyDigest::from_hex(d).map(Self::Session),
            _ => None,
        }
    }
}

/// An invalidation from another replica, with when the database sent it (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub invalidation: Invalidation,
    pub sent_at_ms: i64,
}

/// Called with every invalidation this process's store commits.
pub type InvalidationHook = Box<dyn Fn(&Invalidation) + Send + Sync>;

/// A JWT issuer an organization trusts (identity federation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIssuer {
    pub id: i64,
    pub org: OrgId,
    /// The issuer URL, exactly as JWTs name it in `iss`.
    pub issuer: String,
    /// The `aud` a JWT must carry; `None`: the organization's name.
    pub audience: Option<String>,
    pub created_at: i64,
}

/// An OpenID Connect provider an organization's people sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProvider {
    pub id: i64,
    pub org: OrgId,
    /// What the sign-in button says: "Sign in with {name}".
    pub name: String,
    /// The issuer URL, exactly as its ID tokens name it in `iss`.
    pub issuer: String,
    pub client_id: String,
    /// The file the client secret is read from at each sign-in; never the secret.
    pub client_secret_file: String,
    /// Space-separated, `openid` first.
    pub scopes: String,
    /// The claim holding the user's groups.
    pub groups_claim: String,
    /// The claim holding the email people are matched by (`email`: it must be verified).
    pub email_claim: String,
    /// Whether a verified email no user has creates a member (just in time).
    pub jit: bool,
    /// JSON: `[{"group", "org_role"?, "team"?, "team_role"?}]`.
    pub group_rules: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSsoProvider {
    pub org: OrgId,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_file: String,
    pub scopes: String,
    pub groups_claim: String,
    pub email_claim: String,
    pub jit: bool,
    pub group_rules: String,
    pub created_at: i64,
    pub created_by: Option<UserId>,
}

#[derive(Debug, Clone)]
pub struct NewJwtIssuer {
    pub org: OrgId,
    pub issuer: String,
    pub audience: Option<String>,
    pub created_at: i64,
    pub created_by: Option<UserId>,
}
