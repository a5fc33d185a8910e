//! The API's requests and answers, as the server documents them in its OpenAPI
//! document (`docs/openapi.json`).

use keysmith_core::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Viewer {
    pub kind: String,
    pub username: String,
    pub email: Option<String>,
    pub orgs: Vec<ViewerOrg>,
    #[serde(default)]
    pub teams: Vec<ViewerTeam>,
    pub auth: ViewerAuth,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewerOrg {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewerTeam {
    pub org: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewerAuth {
    pub method: String,
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub username: String,
}

/// A key as lists show it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: String,
    pub display: String,
    pub format: String,
    pub name: String,
    pub owner: Owner,
    pub created_by: Option<Owner>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// The last request that could have changed state (absent from older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `read`, `write` or `admin` (absent from servers before scopes).
    #[serde(default)]
    pub scope: Option<String>,
    /// CIDR blocks the key may be used from; empty: no list of its own.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    /// Its request limit per minute; none: no limit.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// `active` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub rotated_from: Option<String>,
    #[serde(default)]
    pub rotated_to: Option<String>,
    /// Recent sources; only when one key is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<KeySource>>,
}

/// Where a key was used from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySource {
    pub address: String,
    pub user_agent: String,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyPage {
    pub items: Vec<ApiKey>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateKey {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
    /// `read`, `write` or `admin`; default: the scope of the key that asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// CIDR blocks the key may be used from; default: the asking key's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_networks: Option<Vec<String>>,
    /// At most this many requests a minute; default: the asking key's limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
}

/// The answer to a create: the only time the key's plaintext is shown.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedKey {
    #[serde(deserialize_with = "secret")]
    pub key: SecretString,
    pub key_id: String,
    pub format: String,
    pub name: String,
    pub owner: Owner,
    pub created_at: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `read`, `write` or `admin` (absent from servers before scopes).
    #[serde(default)]
    pub scope: Option<String>,
    /// For a rotation: the key this one replaces…
    #[serde(default)]
    pub rotated_from: Option<String>,
    /// …which keeps working until then (none: until deleted).
    #[serde(default)]
    pub previous_expires_at: Option<String>,
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::new)
}

/// Filters and paging of `GET /api/v1/api-keys`.
#[derive(Debug, Clone, Default)]
pub struct KeyQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub sort: Option<String>,
    pub owner: Option<String>,
    pub owner_kind: Option<String>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub name_contains: Option<String>,
    pub last_used_before: Option<String>,
    pub last_used_after: Option<String>,
    pub expiring_within_days: Option<u32>,
}

impl KeyQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(limit) = self.limit {
            out.push(("limit", limit.to_string()));
        }
        if let Some(days) = self.expiring_within_days {
            out.push(("expiring_within_days", days.to_string()));
        }
        for (name, value) in [
            ("cursor", &self.cursor),
            ("sort", &self.sort),
            ("owner", &self.owner),
            ("owner_kind", &self.owner_kind),
            ("org", &self.org),
            ("team", &self.team),
            ("name_contains", &self.name_contains),
            ("last_used_before", &self.last_used_before),
            ("last_used_after", &self.last_used_after),
        ] {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub name: String,
    pub role: String,
    pub key_creation_disabled: bool,
    #[serde(default)]
    pub legacy_keys_allowed: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub name: String,
    pub description: String,
    pub team: Option<String>,
    pub scope: String,
    pub active: bool,
    pub created_at: String,
    /// For an external service account (identity federation): the JWT `sub` it accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_subject: Option<String>,
    /// CIDR blocks its keys may be used from; empty: wherever the organization allows.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
}

/// A JWT issuer an organization trusts (identity federation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtIssuer {
    pub id: i64,
    pub issuer: String,
    pub audience: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Team {
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamMember {
    pub username: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamDetail {
    pub name: String,
    pub created_at: String,
    pub members: Vec<TeamMember>,
    pub service_accounts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub active: bool,
    pub created_at: String,
}

/// A user created by invitation, with the one-time token to pass on.
#[derive(Debug, Clone, Deserialize)]
pub struct InvitedUser {
    #[serde(flatten)]
    pub user: User,
    #[serde(default, deserialize_with = "optional_secret")]
    pub invite_token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InviteToken {
    #[serde(deserialize_with = "secret")]
    pub invite_token: SecretString,
}

fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(SecretString::new))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target: String,
    pub source_address: Option<String>,
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl AuditQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(limit) = self.limit {
            out.push(("limit", limit.to_string()));
        }
        for (name, value) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        out
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

/// One section of an organization's key report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportSection {
    pub items: Vec<ApiKey>,
    /// More keys than are listed.
    pub truncated: bool,
}

/// `GET /api/v1/orgs/{org}/key-report`: keys to narrow or delete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyReport {
    pub organization: String,
    pub generated_at: String,
    pub never_used_days: u32,
    pub never_used: ReportSection,
    pub idle_days: u32,
    pub idle: ReportSection,
    pub expiring_within_days: u32,
    pub expiring: ReportSection,
    pub reads_only_days: u32,
    pub over_privileged: ReportSection,
}
