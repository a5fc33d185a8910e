//! Sign-in sessions: a random token in an HttpOnly cookie, stored only as its SHA-256.
//!
//! The CSRF token is derived from the session token (SHA-256 with a domain label), so
//! it needs no storage, changes with every session, and cannot be computed by a page
//! that cannot read the HttpOnly cookie.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use base64::Engine;
use keysmith_core::UserId;
use keysmith_core::{KeyDigest, SecretString};
use keysmith_store::{NewSession, UserRef};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const COOKIE_NAME: &str = "keysmith_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh session token: 43 base62 characters (about 256 bits).
pub fn new_token() -> Result<SecretString, ApiError> {
    keysmith_core::base62::random_string(43)
        .map(SecretString::new)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// What the store keeps instead of the token.
pub fn token_digest(token: &SecretString) -> KeyDigest {
    KeyDigest::of(token.expose().as_bytes())
}

/// The CSRF token that goes with a session token.
pub fn csrf_token(token: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(b"keysmith-csrf-v1:");
    h.update(token.expose().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Whether the request carries the right CSRF token for this session.
pub fn csrf_matches(token: &SecretString, headers: &HeaderMap) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let expected = csrf_token(token);
    sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of the cookie `name` in the `Cookie` headers, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// The session token from the `Cookie` headers, if any.
pub fn token_from_cookies(headers: &HeaderMap) -> Option<SecretString> {
    cookie(headers, COOKIE_NAME)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::new(t.to_owned()))
}

/// A session just started: the token for the cookie, the cookie itself, and when it ends.
pub struct Started {
    pub token: SecretString,
    pub cookie: String,
    pub expires_at: i64,
}

/// Starts a session for `user`: stores the token's digest and builds the cookie.
pub async fn start(state: &AppState, user: UserId, secure: bool) -> Result<Started, ApiError> {
    let now = state.now();
    let token = new_token()?;
    let expires_at = now + state.session_ttl_ms;
    state
        .store
        .create_session(NewSession {
            token_digest: token_digest(&token),
            user_id: user,
            created_at: now,
            expires_at,
        })
        .await?;
    let cookie = set_cookie(&token, state.session_ttl_ms / 1000, secure);
    Ok(Started {
        token,
        cookie,
        expires_at,
    })
}

/// The active user a session token belongs to, or `None` for a token that is unknown,
/// expired, signed out, or whose user was deactivated. From the session cache when warm.
pub async fn session_user(state: &AppState, token: &SecretString) -> Result<Option<UserRef>, ApiError> {
    Ok(keysmith_app::sessions::user(&state.app, &token_digest(token)).await?)
}

/// Whether the session cookie must be `Secure`: always when configured, and whenever
/// a TLS-terminating proxy says the browser came over HTTPS.
pub fn secure_for(state: &AppState, headers: &HeaderMap) -> bool {
    state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(token: &SecretString, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        token.expose(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_cookie_is_found_among_others_and_csrf_is_checked() {
        let token = new_token().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={}; c=d", token.expose())).unwrap(),
        );
        let found = token_from_cookies(&h).unwrap();
        assert_eq!(found, token);
        assert!(!csrf_matches(&token, &h), "no header");
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf_token(&token)).unwrap());
        assert!(csrf_matches(&token, &h));
        let other = new_token().unwrap();
        assert!(!csrf_matches(&other, &h), "another session's token");
    }

    #[test]
    fn cookies_are_http_only_and_same_site() {
        let token = new_token().unwrap();
        let c = set_cookie(&token, 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("; Secure"));
        assert!(!set_cookie(&token, 60, false).contains("Secure"));
    }
}
