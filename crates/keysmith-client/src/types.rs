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
}

impl KeyQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(limit) = self.limit {
            out.push(("limit", limit.to_string()));
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
