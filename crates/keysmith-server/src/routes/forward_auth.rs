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
use keysmith_core::KeyScope;
use std::net::SocketAddr;
use std::time::Instant;

pub const KIND: HeaderName = HeaderName::from_static("x-keysmith-principal-kind");
pub const USER: HeaderName = HeaderName::from_static("x-keysmith-user");
pub const USER_ID: HeaderName = HeaderName::from_static("x-keysmith-user-id");
pub const ORGS: HeaderName = HeaderName::from_static("x-keysmith-orgs");
pub const KEY_ID: HeaderName = HeaderName::from_static("x-keysmith-key-id");
/// The scopes the key holds, comma-separated: `read`, `read,write` or `read,write,admin`.
pub const SCOPES: HeaderName = HeaderName::from_static("x-keysmith-scopes");
/// The teams the key is restricted to, comma-separated; `*`: not restricted. Always
/// sent, so that an upstream can tell "no restriction" from a header that went missing.
pub const TEAMS: HeaderName = HeaderName::from_static("x-keysmith-teams");
/// Set by the proxy, never by the client: the scope a request needs (`read`, `write`,
/// `admin`), or `by-method`: `read` for GET, HEAD and OPTIONS, `write` for anything
/// else, the method read from `X-Forwarded-Method` (set by Traefik, and by nginx in the
/// example configuration).
pub const REQUIRED_SCOPE: HeaderName = HeaderName::from_static("x-keysmith-required-scope");

/// A verified answer's headers for `owner`, with placeholders for the key's ID and
/// scopes (first, where each answer finds them at once and writes its own). Values a
/// header cannot carry are left out.
fn answer_headers(owner: &OwnerInfo) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8);
    h.insert(KEY_ID, HeaderValue::from_static(""));
    h.insert(SCOPES, HeaderValue::from_static(""));
    h.insert(TEAMS, HeaderValue::from_static("*"));
    h.insert(KIND, HeaderValue::from_static(owner.kind.as_str()));
    if let Ok(user) = HeaderValue::from_str(&owner.username) {
        h.insert(USER, user);
    }
    h.insert(USER_ID, HeaderValue::from(owner.id.0));
    if let Ok(orgs) = HeaderValue::from_str(&owner.orgs) {
        h.insert(ORGS, orgs);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// Verify the key the client presented (Authorization Basic/Bearer or X-API-Key).
#[utoipa::path(get, path = "/api/v1/forward-auth", tag = "forward-auth",
    responses(
        (status = 200, description = "Valid: identity in X-Keysmith-Principal-Kind (`user` or `service_account`), \
            X-Keysmith-User, X-Keysmith-User-Id, X-Keysmith-Orgs (comma-separated) and X-Keysmith-Key-Id; \
            what the key may do in X-Keysmith-Scopes (`read`, `read,write` or `read,write,admin`) and \
            X-Keysmith-Teams (`*`: not restricted to teams)"),
        (status = 400, body = ErrorBody, description = "`invalid_request`: the proxy sent an X-Keysmith-Required-Scope \
            other than `read`, `write`, `admin` or `by-method`"),
        (status = 401, body = ErrorBody, description = "No key, or not a valid one; WWW-Authenticate names the schemes"),
        (status = 403, body = ErrorBody, description = "`insufficient_scope`: a valid key whose scope does not include \
            the one the proxy asked for in X-Keysmith-Required-Scope; WWW-Authenticate names the scope needed"),
        (status = 429, body = ErrorBody, description = "Too many failed verifications from this client address \
            (`rate_limited`), or a key over its own request limit (`key_rate_limited`, with the IETF RateLimit and \
            RateLimit-Policy fields); Retry-After gives the seconds to wait. Keys in steady use are not held back \
            by others' failures",
            headers(("Retry-After" = u64, description = "Seconds until the address may try again"))),
    ))]
pub async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let peer = source::peer(request.extensions());
    answer(&state, request.headers(), peer).await
}

/// The path forward auth answers on. Proxies send the client's method; Envoy appends
/// the client's path, so everything below it is answered too.
pub const PATH: &str = "/api/v1/forward-auth";

/// Whether a request path is forward auth's: [`PATH`] or anything below it.
pub fn is_forward_auth(path: &str) -> bool {
    path.strip_prefix(PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a forward-auth request; `peer` is the connection's remote address.
pub async fn answer(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Response {
    let started = Instant::now();
    match answer_now(state, headers, peer, started) {
        Some(response) => response,
        None => answer_stored(state, headers, peer, started).await,
    }
}

/// The answer when the process can give it alone: no key, a key from the cache, a
/// malformed key, an address over its limit. `None` when the store must be read.
/// This is the whole of a warm request, with no future to allocate.
pub fn answer_now(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    started: Instant,
) -> Option<Response> {
    let result = match Caller::of(state, headers, peer) {
        Ok(caller) => verify::verify_now(state, caller.presented.expose(), caller.client())?,
        Err(e) => Err(e),
    };
    Some(respond(state, headers, result, started))
}

/// The answer after a store read, when [`answer_now`] could not give it.
pub async fn answer_stored(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    started: Instant,
) -> Response {
    let result = match Caller::of(state, headers, peer) {
        Ok(caller) => verify::verify_stored(state, caller.presented.expose(), caller.client()).await,
        Err(e) => Err(e),
    };
    respond(state, headers, result, started)
}

/// What the request presents: the key (read in place, not copied), and where it
/// comes from.
struct Caller<'r> {
    presented: credentials::Presented<'r>,
    address: AddressText,
    user_agent: &'r str,
    /// Whether the proxied request may change state: by `X-Forwarded-Method` when the
    /// proxy sends it, else assumed.
    write: bool,
}

impl<'r> Caller<'r> {
    fn of(state: &AppState, headers: &'r HeaderMap, peer: Option<SocketAddr>) -> Result<Self, ApiError> {
        let presented = credentials::presented_key(headers)?.ok_or(ApiError::Unauthenticated)?;
        Ok(Self {
            presented,
            address: AddressText::of_peer(&state.trusted_proxies, peer, headers),
            user_agent: source::user_agent(headers),
            write: headers
                .get("x-forwarded-method")
                .and_then(|m| m.to_str().ok())
                .is_none_or(verify::Client::writes),
        })
    }

    fn client(&self) -> verify::Client<'_> {
        verify::Client {
            address: self.address.as_str(),
            user_agent: self.user_agent,
            ip: self.address.ip(),
            write: self.write,
        }
    }
}

/// [`SCOPES`]' value for a key of `scope`, built at compile time: a clone of a static
/// value, no byte checked per request.
fn granted(scope: KeyScope) -> HeaderValue {
    static GRANTED: [HeaderValue; 3] = [
        HeaderValue::from_static(KeyScope::Read.granted()),
        HeaderValue::from_static(KeyScope::Write.granted()),
        HeaderValue::from_static(KeyScope::Admin.granted()),
    ];
    GRANTED[scope as usize].clone()
}

/// The scope the proxy asks the key to hold ([`REQUIRED_SCOPE`]): `read` (any key)
/// when it asks for none.
fn required_scope(request: &HeaderMap) -> Result<KeyScope, ApiError> {
    let Some(raw) = request.get(REQUIRED_SCOPE) else {
        return Ok(KeyScope::Read);
    };
    let raw = raw.as_bytes();
    if raw == b"by-method" {
        // One header only, which the proxy sets (Traefik does by itself; nginx with
        // proxy_set_header): a proxy passes the client's other headers on, so reading a
        // second name would let a client name its own method.
        let method = request.get("x-forwarded-method").map(HeaderValue::as_bytes);
        // Without a method to judge, the stricter answer.
        return Ok(match method {
            Some(m)
                if [&b"GET"[..], b"HEAD", b"OPTIONS"]
                    .iter()
                    .any(|safe| m.eq_ignore_ascii_case(safe)) =>
            {
                KeyScope::Read
            }
            _ => KeyScope::Write,
        });
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(KeyScope::parse)
        .ok_or(ApiError::InvalidRequest(
            "X-Keysmith-Required-Scope must be `read`, `write`, `admin` or `by-method` (a proxy misconfiguration)"
                .into(),
        ))
}

fn respond(
    state: &AppState,
    request: &HeaderMap,
    result: Result<verify::Verified, ApiError>,
    started: Instant,
) -> Response {
    let result = result.and_then(|v| {
        let needed = required_scope(request)?;
        if v.scope.includes(needed) {
            Ok(v)
        } else {
            Err(ApiError::InsufficientScope { needed, has: v.scope })
        }
    });
    let mut response = match result {
        Ok(v) => {
            let mut response = StatusCode::OK.into_response();
            // The owner's headers, cloned (no header name hashed, no value copied), and
            // this key's ID and scopes in the slots kept for them.
            let headers = response.headers_mut();
            *headers = match v.owner.memo(answer_headers) {
                Some(built) => built.clone(),
                None => answer_headers(&v.owner),
            };
            for (name, slot) in headers.iter_mut().take(2) {
                if name == KEY_ID {
                    if let Ok(key_id) = HeaderValue::from_str(v.key_id.as_str()) {
                        *slot = key_id;
                    }
                } else if name == SCOPES {
                    *slot = granted(v.scope);
                }
            }
            // A key with a request limit says what is left of it, for the proxy to
            // pass on.
            if let Some(quota) = &v.quota {
                crate::error::rate_limit_headers(headers, quota, false);
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
