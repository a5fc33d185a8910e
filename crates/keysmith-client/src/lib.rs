//! A typed async client for Keysmith's REST API, used by the `keysmith` CLI and by
//! the server's end-to-end tests.
//!
//! Errors keep the server's stable codes ([`ClientError::Api`]), so callers match on
//! `code`, never on messages. The key the client authenticates with and every key the
//! server returns are [`SecretString`]s: they print as `<redacted>`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod types;

pub use types::*;

use keysmith_core::SecretString;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error: `code` is stable, `message` is for people.
    #[error("{message} ({code}, HTTP {status})")]
    Api { status: u16, code: String, message: String },
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach the Keysmith server at {host}: {detail}")]
    Unreachable { host: String, detail: String },
    /// The server answered something that is not Keysmith's API.
    #[error("unexpected answer from {host}: {detail}; is this a Keysmith server?")]
    Unexpected { host: String, detail: String },
    #[error("not a server URL: {0}; use http(s)://host[:port]")]
    InvalidHost(String),
    /// The key holds a character that no HTTP header can carry; nothing was sent.
    #[error("the API key contains a character that cannot be sent ({0}); nothing was sent to the server")]
    UnsendableKey(UnsendableCharacter),
    /// The request could not be built (nothing was sent).
    #[error("cannot build the request to {host}: {detail}")]
    Request { host: String, detail: String },
}

/// Where a key holds a character that cannot go into an HTTP header, and what kind of
/// character it is; never the character itself, which would echo part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsendableCharacter {
    /// 1-based, in characters, after surrounding whitespace is trimmed.
    pub position: usize,
    pub kind: UnsendableKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsendableKind {
    /// A control character: a line break, a tab, an escape, DEL…
    Control,
    /// A character outside ASCII: a letter with an accent, a typographic quote, an
    /// invisible space pasted from a web page…
    NonAscii,
}

impl std::fmt::Display for UnsendableCharacter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            UnsendableKind::Control => "a control character",
            UnsendableKind::NonAscii => "a non-ASCII character",
        };
        write!(f, "{kind} at position {}", self.position)
    }
}

/// A key as people and files hand it over, ready to send: surrounding whitespace
/// (spaces, tabs, `\r`, `\n`, as a secret mounted from a file often ends) is removed.
/// Fails on the first character that no HTTP header can carry (a control character or
/// a non-ASCII one), naming its position and kind but never the key.
pub fn clean_key(raw: &str) -> Result<&str, UnsendableCharacter> {
    let key = raw.trim();
    for (i, c) in key.chars().enumerate() {
        let kind = if c.is_ascii_control() || c.is_control() {
            UnsendableKind::Control
        } else if !c.is_ascii() {
            UnsendableKind::NonAscii
        } else {
            continue;
        };
        return Err(UnsendableCharacter { position: i + 1, kind });
    }
    Ok(key)
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one server, authenticated with one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    host: String,
    key: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// A client of `host` (`http(s)://host[:port]`, trailing `/` ignored). The key is
    /// cleaned with [`clean_key`]: surrounding whitespace goes, and a key that cannot be
    /// sent is refused here rather than failing as a transport error later.
    pub fn new(host: &str, key: SecretString) -> Result<Self, ClientError> {
        let key = match clean_key(key.expose()) {
            Ok(clean) => SecretString::new(clean.to_owned()),
            Err(at) => return Err(ClientError::UnsendableKey(at)),
        };
        let host = host.trim().trim_end_matches('/').to_owned();
        let valid = (host.starts_with("http://") || host.starts_with("https://"))
            && host
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
        if !valid {
            return Err(ClientError::InvalidHost(host));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("keysmith-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                host: host.clone(),
                detail: e.to_string(),
            })?;
        Ok(Self { http, host, key })
    }

    /// A client that presents no key, for the calls that need none
    /// ([`Client::revoke_exposed`]).
    pub fn anonymous(host: &str) -> Result<Self, ClientError> {
        Self::new(host, SecretString::new(String::new()))
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.host));
        if !self.key.expose().is_empty() {
            request = request.bearer_auth(self.key.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // A request that could not be built never left this machine: it says
            // nothing about whether the server is up.
            if e.is_builder() {
                ClientError::Request {
                    host: self.host.clone(),
                    detail: without_url(e),
                }
            } else {
                ClientError::Unreachable {
                    host: self.host.clone(),
                    detail: without_url(e),
                }
            }
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Unreachable {
            host: self.host.clone(),
            detail: without_url(e),
        })?;
        if status.is_success() {
            let bytes = if status == StatusCode::NO_CONTENT {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            return serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected {
                host: self.host.clone(),
                detail: e.to_string(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(ClientError::Unexpected {
                host: self.host.clone(),
                detail: format!("HTTP {status}"),
            }),
        }
    }

    /// Who the key belongs to.
    pub async fn viewer(&self) -> Result<Viewer, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/viewer", None).await
    }

    /// One page of the keys the caller may see.
    pub async fn list_keys(&self, query: &KeyQuery) -> Result<KeyPage, ClientError> {
        let query = serde_urlencoded_query(query);
        self.call::<(), _>(Method::GET, &format!("/api/v1/api-keys{query}"), None)
            .await
    }

    /// Creates a key; the answer carries its plaintext, once.
    pub async fn create_key(&self, request: &CreateKey) -> Result<CreatedKey, ClientError> {
        self.call(Method::POST, "/api/v1/api-keys", Some(request)).await
    }

    pub async fn get_key(&self, key_id: &str) -> Result<ApiKey, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/api-keys/{}", path_segment(key_id)), None)
            .await
    }

    pub async fn rename_key(&self, key_id: &str, name: &str) -> Result<ApiKey, ClientError> {
        let body = serde_json::json!({ "name": name });
        self.call(
            Method::PATCH,
            &format!("/api/v1/api-keys/{}", path_segment(key_id)),
            Some(&body),
        )
        .await
    }

    /// Rotates a key: the answer carries the new key's plaintext, once; the old key
    /// keeps working for `grace` (`now`, `1h`, `24h`, `7d`, `until_deleted`).
    pub async fn rotate_key(&self, key_id: &str, grace: &str) -> Result<CreatedKey, ClientError> {
        let body = serde_json::json!({ "grace": grace });
        self.call(
            Method::POST,
            &format!("/api/v1/api-keys/{}/rotate", path_segment(key_id)),
            Some(&body),
        )
        .await
    }

    /// Revokes an exposed key (needs no key of one's own); the server answers the same
    /// whether or not the key existed.
    pub async fn revoke_exposed(&self, key: &SecretString) -> Result<(), ClientError> {
        let body = serde_json::json!({ "key": key.expose() });
        self.call::<_, serde_json::Value>(Method::POST, "/api/v1/api-keys/revoke-exposed", Some(&body))
            .await
            .map(|_| ())
    }

    pub async fn delete_key(&self, key_id: &str) -> Result<(), ClientError> {
        self.call::<(), ()>(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", path_segment(key_id)),
            None,
        )
        .await
    }

    /// The organizations the caller belongs to.
    pub async fn list_orgs(&self) -> Result<Vec<Org>, ClientError> {
        Ok(self
            .call::<(), Items<Org>>(Method::GET, "/api/v1/orgs", None)
            .await?
            .items)
    }

    pub async fn list_service_accounts(
        &self,
        org: &str,
        team: Option<&str>,
    ) -> Result<Vec<ServiceAccount>, ClientError> {
        let query = team
            .map(|t| format!("?team={}", t.bytes().map(encode_byte).collect::<String>()))
            .unwrap_or_default();
        let path = format!("{}/service-accounts{query}", org_path(org));
        Ok(self
            .call::<(), Items<ServiceAccount>>(Method::GET, &path, None)
            .await?
            .items)
    }

    pub async fn create_service_account(
        &self,
        org: &str,
        name: &str,
        description: &str,
        team: Option<&str>,
        external_subject: Option<&str>,
        allowed_networks: &[String],
    ) -> Result<ServiceAccount, ClientError> {
        let mut body = serde_json::json!({ "name": name, "description": description, "team": team });
        if let Some(subject) = external_subject {
            body["external_subject"] = subject.into();
        }
        if !allowed_networks.is_empty() {
            body["allowed_networks"] = allowed_networks.into();
        }
        self.call(
            Method::POST,
            &format!("{}/service-accounts", org_path(org)),
            Some(&body),
        )
        .await
    }

    pub async fn delete_service_account(&self, org: &str, name: &str) -> Result<(), ClientError> {
        let path = format!("{}/service-accounts/{}", org_path(org), path_segment(name));
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    pub async fn list_jwt_issuers(&self, org: &str) -> Result<Vec<JwtIssuer>, ClientError> {
        let path = format!("{}/jwt-issuers", org_path(org));
        Ok(self.call::<(), Items<JwtIssuer>>(Method::GET, &path, None).await?.items)
    }

    pub async fn add_jwt_issuer(
        &self,
        org: &str,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<JwtIssuer, ClientError> {
        let body = serde_json::json!({ "issuer": issuer, "audience": audience });
        self.call(Method::POST, &format!("{}/jwt-issuers", org_path(org)), Some(&body))
            .await
    }

    pub async fn remove_jwt_issuer(&self, org: &str, id: i64) -> Result<(), ClientError> {
        let path = format!("{}/jwt-issuers/{id}", org_path(org));
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    /// The organization's key report (org admins).
    pub async fn key_report(&self, org: &str) -> Result<KeyReport, ClientError> {
        self.call::<(), _>(Method::GET, &format!("{}/key-report", org_path(org)), None)
            .await
    }

    pub async fn list_teams(&self, org: &str) -> Result<Vec<Team>, ClientError> {
        Ok(self
            .call::<(), Items<Team>>(Method::GET, &format!("{}/teams", org_path(org)), None)
            .await?
            .items)
    }

    pub async fn create_team(&self, org: &str, name: &str) -> Result<Team, ClientError> {
        self.call(
            Method::POST,
            &format!("{}/teams", org_path(org)),
            Some(&serde_json::json!({ "name": name })),
        )
        .await
    }

    pub async fn get_team(&self, org: &str, team: &str) -> Result<TeamDetail, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("{}/teams/{}", org_path(org), path_segment(team)),
            None,
        )
        .await
    }

    pub async fn set_team_member(&self, org: &str, team: &str, user: &str, role: &str) -> Result<(), ClientError> {
        let path = format!(
            "{}/teams/{}/members/{}",
            org_path(org),
            path_segment(team),
            path_segment(user)
        );
        self.call(Method::PUT, &path, Some(&serde_json::json!({ "role": role })))
            .await
    }

    pub async fn remove_team_member(&self, org: &str, team: &str, user: &str) -> Result<(), ClientError> {
        let path = format!(
            "{}/teams/{}/members/{}",
            org_path(org),
            path_segment(team),
            path_segment(user)
        );
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    pub async fn list_users(&self, org: &str) -> Result<Vec<User>, ClientError> {
        Ok(self
            .call::<(), Items<User>>(Method::GET, &format!("{}/users", org_path(org)), None)
            .await?
            .items)
    }

    /// Invites a user: the answer carries the one-time invitation token.
    pub async fn invite_new_user(
        &self,
        org: &str,
        username: &str,
        email: Option<&str>,
        role: &str,
    ) -> Result<InvitedUser, ClientError> {
        let body = serde_json::json!({ "username": username, "email": email, "role": role });
        self.call(Method::POST, &format!("{}/users", org_path(org)), Some(&body))
            .await
    }

    pub async fn update_user(
        &self,
        org: &str,
        username: &str,
        role: Option<&str>,
        active: Option<bool>,
    ) -> Result<User, ClientError> {
        let body = serde_json::json!({ "role": role, "active": active });
        self.call(
            Method::PATCH,
            &format!("{}/users/{}", org_path(org), path_segment(username)),
            Some(&body),
        )
        .await
    }

    pub async fn delete_user(&self, org: &str, username: &str) -> Result<(), ClientError> {
        self.call::<(), ()>(
            Method::DELETE,
            &format!("{}/users/{}", org_path(org), path_segment(username)),
            None,
        )
        .await
    }

    /// A fresh one-time invitation for an existing user.
    pub async fn reinvite_user(&self, org: &str, username: &str) -> Result<InviteToken, ClientError> {
        let path = format!("{}/users/{}/invite", org_path(org), path_segment(username));
        self.call::<(), _>(Method::POST, &path, None).await
    }

    pub async fn audit(&self, org: &str, query: &AuditQuery) -> Result<AuditPage, ClientError> {
        let query = encode_pairs(query.pairs());
        self.call::<(), _>(Method::GET, &format!("{}/audit{query}", org_path(org)), None)
            .await
    }
}

fn org_path(org: &str) -> String {
    format!("/api/v1/orgs/{}", path_segment(org))
}

/// Error messages of the transport name the URL; ours name the host already, and a
/// URL could carry a query a user typed.
fn without_url(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    if let Some(source) = std::error::Error::source(&err) {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
}

/// Key IDs are `[A-Za-z0-9_]`; anything else is percent-encoded so a path cannot be
/// bent by the argument.
fn path_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn serde_urlencoded_query(query: &KeyQuery) -> String {
    encode_pairs(query.pairs())
}

fn encode_pairs(pairs: Vec<(&'static str, String)>) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let encoded: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", v.bytes().map(encode_byte).collect::<String>()))
        .collect();
    format!("?{}", encoded.join("&"))
}

fn encode_byte(b: u8) -> String {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
        char::from(b).to_string()
    } else {
        format!("%{b:02X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked_and_keys_never_printed() {
        assert!(Client::new("ftp://x", SecretString::new("k".into())).is_err());
        assert!(Client::new("http://", SecretString::new("k".into())).is_err());
        let c = Client::new("https://keys.example.com/", SecretString::new("secret-key".into())).unwrap();
        assert_eq!(c.host(), "https://keys.example.com");
        assert!(!format!("{c:?}").contains("secret-key"));
    }

    #[test]
    fn keys_are_trimmed_and_unsendable_characters_refused_without_echoing_the_key() {
        assert_eq!(clean_key("  abc\r\n"), Ok("abc"));
        assert_eq!(clean_key("\tabc\n\n"), Ok("abc"));
        let at = clean_key("ab\u{1b}c").unwrap_err();
        assert_eq!((at.position, at.kind), (3, UnsendableKind::Control));
        let at = clean_key("\u{a0}abcé").unwrap_err();
        assert_eq!(
            (at.position, at.kind),
            (4, UnsendableKind::NonAscii),
            "NBSP is trimmed as whitespace; é is not"
        );
        assert_eq!(clean_key("ab\u{7f}").unwrap_err().kind, UnsendableKind::Control);
        assert_eq!(clean_key("a\u{200b}b").unwrap_err().position, 2);

        let c = Client::new("http://127.0.0.1:1", SecretString::new("secret-key\n".into())).unwrap();
        assert_eq!(c.key.expose(), "secret-key");
        let err = Client::new("http://127.0.0.1:1", SecretString::new("secret\u{0}key".into())).unwrap_err();
        assert!(matches!(err, ClientError::UnsendableKey(_)));
        let text = err.to_string();
        assert!(text.contains("a control character at position 7"), "{text}");
        assert!(!text.contains("secret"), "the message never echoes the key: {text}");
    }

    #[test]
    fn path_segments_and_queries_are_encoded() {
        assert_eq!(path_segment("wandb_v1_abc"), "wandb_v1_abc");
        assert_eq!(path_segment("../x"), "%2E%2E%2Fx");
        let q = KeyQuery {
            name_contains: Some("a b&c".into()),
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(serde_urlencoded_query(&q), "?limit=5&name_contains=a%20b%26c");
    }
}
