//! Forward auth for reverse proxies: nginx `auth_request`, Traefik `forwardAuth`,
//! Envoy `ext_authz` (HTTP service). The proxy passes the client's headers; a valid
//! key answers 200 with the caller's identity in headers for the proxy to hand to the
//! upstream, anything else 401. One verification, from the cache when warm; no
//! other database read.

use crate::auth::source::{self, AddressText};
use crate::auth::{credentials, verify};
use crate::cache::OwnerInfo;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const KIND: HeaderName = HeaderName::from_static("x-keysmith-principal-kind");
pub const USER: HeaderName = HeaderName::from_static("x-keysmith-user");
pub const USER_ID: HeaderName = HeaderName::from_static("x-keysmith-user-id");
pub const ORGS: HeaderName = HeaderName::from_static("x-keysmith-orgs");
pub const KEY_ID: HeaderName = HeaderName::from_static("x-keysmith-key-id");

/// A verified answer's headers for `owner`, with a placeholder key ID that each
/// answer replaces in place. Values a header cannot carry are left out.
fn answer_headers(owner: &OwnerInfo) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8);
    h.insert(KIND, HeaderValue::from_static(owner.kind.as_str()));
    if let Ok(user) = HeaderValue::from_str(&owner.username) {
        h.insert(USER, user);
    }
    h.insert(USER_ID, HeaderValue::from(owner.id.0));
    if let Ok(orgs) = HeaderValue::from_str(&owner.orgs) {
        h.insert(ORGS, orgs);
    }
    h.insert(KEY_ID, HeaderValue::from_static(""));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// Verify the key the client presented (Authorization Basic/Bearer or X-API-Key).
#[utoipa::path(get, path = "/api/v1/forward-auth", tag = "forward-auth",
    responses(
        (status = 200, description = "Valid: identity in X-Keysmith-Principal-Kind (`user` or `service_account`), \
            X-Keysmith-User, X-Keysmith-User-Id, X-Keysmith-Orgs (comma-separated) and X-Keysmith-Key-Id"),
        (status = 401, body = ErrorBody, description = "No key, or not a valid one; WWW-Authenticate names the schemes"),
        (status = 429, body = ErrorBody, description = "Too many failed verifications from this client address \
            (`rate_limited`); Retry-After gives the seconds to wait. Keys in steady use are not held back",
            headers(("Retry-After" = u64, description = "Seconds until the address may try again"))),
    ))]
pub async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    // The request is read in place: neither its headers nor its address are copied.
    let headers = request.headers();
    let presented = match credentials::presented_key(headers) {
        Ok(Some(key)) => key,
        Ok(None) => return refuse(ApiError::Unauthenticated),
        Err(e) => return refuse(e),
    };
    let address = AddressText::of(&state.trusted_proxies, request.extensions(), headers);
    let client = verify::Client {
        address: address.as_str(),
        user_agent: source::user_agent(headers),
    };
    let started = std::time::Instant::now();
    let result = verify::verify_key(&state, presented.expose(), client).await;
    let mut response = match result {
        Ok(v) => {
            let mut response = StatusCode::OK.into_response();
            // The owner's headers, cloned (no header name hashed, no value copied), and
            // this key's ID in the slot kept for it.
            *response.headers_mut() = v.owner.answer_headers(answer_headers).clone();
            if let Ok(key_id) = HeaderValue::from_str(v.key_id.as_str()) {
                response.headers_mut().insert(KEY_ID, key_id);
            }
            response
        }
        Err(e) => refuse(e),
    };
    // The fast lane skips the application's middleware and its metric. Its answers go
    // to a proxy, not a browser: of the browser-facing headers only no-store matters
    // (already among a verified answer's headers).
    if !response.status().is_success() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    state
        .metrics
        .forward_auth_request(response.status().as_u16(), started.elapsed());
    response
}

fn refuse(e: ApiError) -> Response {
    let mut response = e.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"keysmith\", Basic realm=\"keysmith\""),
        );
    }
    response
}
