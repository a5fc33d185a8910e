//! The one error of the application. Every action answers a domain result or one of
//! these; no action knows about status codes. Each door maps them to its wire shape
//! in one place: REST's `{"error": {code, message}}`, GraphQL's W&B answers, the web's
//! error page.
//!
//! The `Display` text is for people (each door makes it a sentence); the variants are
//! what doors and tests match on.

use keysmith_core::KeyScope;

/// What an action could not find. Something the caller may not see is "not found"
/// too, so that its existence is not revealed (docs/DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    ApiKey,
    Org,
    Team,
    User,
    ServiceAccount,
    /// The owner named for a new key: no such user or service account, or one the
    /// caller may not create keys for.
    Owner,
    Webhook,
    JwtIssuer,
    SsoProvider,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("{}", missing_text(*.0))]
    NotFound(Missing),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The caller's key may not do this: its scope is narrower than `needed`, though
    /// its owner may (docs/DESIGN.md §3, "Scopes").
    #[error("this API key's scope is {has}; this needs a key with scope {needed} (or wider)")]
    InsufficientScope { needed: KeyScope, has: KeyScope },
    /// A name (of a key, team, user, …) that breaks the naming rules.
    #[error("{message}")]
    InvalidName { field: &'static str, message: String },
    /// A value that is out of range or malformed.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// A listing's filters or paging that cannot be honoured.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the cursor is not one this server issued")]
    InvalidCursor,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error(
        "API key creation has been disabled by your organization administrator. You can still edit, delete, and use existing API keys."
    )]
    KeyCreationDisabled,
    #[error(
        "legacy-format keys are not allowed here; an organization admin can allow them for SDKs older than 0.22.3 (legacy_keys_allowed)"
    )]
    LegacyKeysNotAllowed,
    #[error("{0}")]
    ExpiryExceedsPolicy(String),
    #[error("this key is already being rotated; finish that rotation (delete the old key) or delete the new key first")]
    RotationInProgress,
    #[error("the API key has expired; create a new one")]
    ApiKeyExpired,
    #[error("this would leave the organization without an active admin; make another member an admin first")]
    LastAdmin,
    #[error("the invitation is unknown, used or expired; ask an admin for a new one")]
    InvitationInvalid,
    /// A sign-in that failed, for whatever reason: one answer for all.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// A right password, from a member of an organization that requires single sign-on.
    #[error("your organization signs in through its identity provider: use its button on the sign-in page")]
    SsoRequired,
    #[error("too many failed attempts; retry after {}", seconds(*retry_after_secs))]
    RateLimited { retry_after_secs: u64 },
    /// Anything the caller cannot fix. The detail is logged once, by the door that
    /// answers, and never shown.
    #[error("internal error")]
    Internal(String),
}

fn missing_text(what: Missing) -> &'static str {
    match what {
        Missing::ApiKey => "no API key with this ID",
        Missing::Org => "no organization with this name",
        Missing::Team => "no team with this name in the organization",
        Missing::User => "no user with this name in the organization",
        Missing::ServiceAccount => "no service account with this name",
        Missing::Owner => "no user or service account with this name that you may create keys for",
        Missing::Webhook => "no webhook with this ID in the organization",
        Missing::JwtIssuer => "no JWT issuer with this ID in the organization",
        Missing::SsoProvider => "no single sign-on provider with this ID in the organization",
    }
}

/// `n` seconds, in words: "1 second", "30 seconds".
fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

impl AppError {
    /// A value out of range or malformed, naming the field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<keysmith_store::StoreError> for AppError {
    fn from(err: keysmith_store::StoreError) -> Self {
        match err {
            keysmith_store::StoreError::Conflict(what) => Self::AlreadyExists(what),
            keysmith_store::StoreError::Refused(keysmith_store::Refused::LastAdmin) => Self::LastAdmin,
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
