//! Who am I: the caller's identity, organizations and how they authenticated.

use crate::access::Authorized;
use crate::auth::source::{self, AddressText};
use crate::auth::{AuthMethod, Principal, credentials, key_principal, verify};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keysmith_app::Caller;
use serde::Serialize;
use std::net::SocketAddr;
use utoipa::ToSchema;

// Borrowed from the caller (the cache's entry): rendering copies no string.
#[derive(Debug, Serialize, ToSchema)]
pub struct Viewer<'a> {
    /// `user` or `service_account`.
    kind: &'static str,
    username: &'a str,
    email: Option<&'a str>,
    /// The organizations the caller belongs to, with the caller's role in each.
    orgs: Vec<ViewerOrg<'a>>,
    /// The teams the caller belongs to, with the caller's role in each.
    teams: Vec<ViewerTeam<'a>>,
    auth: ViewerAuth<'a>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerTeam<'a> {
    org: &'a str,
    name: &'a str,
    /// `admin` or `member`.
    role: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerOrg<'a> {
    name: &'a str,
    /// `admin` or `member`.
    role: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerAuth<'a> {
    /// `api_key` or `session`.
    method: &'static str,
    /// The key ID of the key used, when `method` is `api_key`.
    key_id: Option<&'a str>,
    /// What this request may do at most: the key's scope (`read`, `write` or `admin`),
    /// `admin` for a session.
    scope: &'static str,
}

pub const PATH: &str = "/api/v1/viewer";

/// The caller: who the key or session belongs to.
#[utoipa::path(get, path = "/api/v1/viewer", tag = "viewer",
    responses((status = 200, body = Viewer), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_viewer(Authorized(caller): Authorized) -> Response {
    render(&caller)
}

/// The viewer's answer for a caller.
fn render(caller: &Caller) -> Response {
    Json(viewer_of(caller)).into_response()
}

/// What the viewer shows of a caller: all from the caller cache when warm, no
/// database read.
fn viewer_of(caller: &Caller) -> Viewer<'_> {
    let profile = &caller.profile;
    let teams = profile
        .teams
        .iter()
        .map(|seat| ViewerTeam {
            org: profile.org_name(seat.team.org).unwrap_or_default(),
            name: &seat.team.name,
            role: seat.role.as_str(),
        })
        .collect();
    let orgs = profile
        .orgs
        .iter()
        .map(|org| ViewerOrg {
            name: &org.name,
            role: org.role.as_str(),
        })
        .collect();
    let principal = &caller.principal;
    let auth = match &principal.via {
        AuthMethod::ApiKey { key_id, scope } => ViewerAuth {
            method: "api_key",
            key_id: Some(key_id.as_str()),
            scope: scope.as_str(),
        },
        AuthMethod::Session => ViewerAuth {
            method: "session",
            key_id: None,
            scope: keysmith_core::KeyScope::Admin.as_str(),
        },
    };
    Viewer {
        kind: principal.user.kind.as_str(),
        username: &principal.user.username,
        email: profile.email.as_deref(),
        orgs,
        teams,
        auth,
    }
}

/// How the connection answers `GET /api/v1/viewer` ([`answer_now`]).
pub enum Lane {
    /// Answered without a future: a warm key and a warm caller, or a refusal.
    Done(Response),
    /// A key verified from the cache whose caller the cache does not hold.
    ReadCaller(Principal),
    /// A key the verification cache does not hold: [`answer_stored`].
    ReadKey,
    /// No key (a session cookie, or nothing): the route's own extractor.
    Extractor,
}

/// The viewer as far as memory can answer it. The same steps as the route's
/// extractor and handler: a test holds both answers to each other.
pub fn answer_now(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Lane {
    let presented = match credentials::presented_key(headers) {
        Ok(Some(presented)) => presented,
        Ok(None) => return Lane::Extractor,
        Err(e) => return Lane::Done(e.into_response()),
    };
    let address = AddressText::of_peer(&state.trusted_proxies, Some(peer), headers);
    let client = verify::Client {
        address: address.as_str(),
        user_agent: source::user_agent(headers),
        ip: address.ip(),
        write: false,
    };
    let principal = match verify::verify_now(state, presented.expose(), client) {
        Some(Ok(verified)) => key_principal(verified),
        Some(Err(e)) => return Lane::Done(e.into_response()),
        None => return Lane::ReadKey,
    };
    match state.app.callers.cached(principal.user.id, state.now()) {
        Some(seat) => Lane::Done(render(&Caller::seated(principal, seat))),
        None => Lane::ReadCaller(principal),
    }
}

/// The viewer of a principal whose caller must be read.
pub async fn answer_caller(state: &AppState, principal: Principal) -> Response {
    match Caller::read(&state.app, principal).await {
        Ok(caller) => render(&caller),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The viewer for a key the verification cache does not hold: the store read.
pub async fn answer_stored(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Response {
    let verified = async {
        let presented = credentials::presented_key(headers)?.ok_or(ApiError::Unauthenticated)?;
        let address = AddressText::of_peer(&state.trusted_proxies, Some(peer), headers);
        let client = verify::Client {
            address: address.as_str(),
            user_agent: source::user_agent(headers),
            ip: address.ip(),
            write: false,
        };
        verify::verify_stored(state, presented.expose(), client).await
    };
    match verified.await {
        Ok(verified) => match Caller::load(&state.app, key_principal(verified)).await {
            Ok(caller) => render(&caller),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}
