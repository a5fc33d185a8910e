//! Who am I: the caller's identity, organizations and how they authenticated.

use crate::access::Authorized;
use crate::auth::source::{self, AddressText};
use crate::auth::{AuthMethod, Principal, credentials, key_principal, verify};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keysmith_app::Caller;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::LazyLock;
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
    // The router's middleware adds Strict-Transport-Security where it is due.
    render(&caller, false)
}

/// The viewer's answer for a caller, with every header the router would give it
/// ([`crate::routes::common_headers`]), `hsts` says whether Strict-Transport-Security
/// is among them.
///
/// The answer is [`Viewer`] as JSON, assembled rather than serialized: the part that
/// depends on the profile alone (email, organizations, teams) is rendered once per
/// cached profile ([`keysmith_app::callers::Rendering`]), so a warm request escapes
/// only the username and key ID; the headers are a clone of one prepared map instead
/// of eight inserts. A unit test holds the bytes to serde's rendering of [`Viewer`].
pub(crate) fn render(caller: &Caller, hsts: bool) -> Response {
    let profile = &caller.profile;
    let part = profile.rendered.get_or_init(|| profile_part(caller));
    let principal = &caller.principal;
    let mut body = Vec::with_capacity(part.len() + 160);
    body.extend_from_slice(b"{\"kind\":\"");
    body.extend_from_slice(principal.user.kind.as_str().as_bytes());
    body.extend_from_slice(b"\",\"username\":");
    push_json_str(&mut body, &principal.user.username);
    body.push(b',');
    body.extend_from_slice(part.as_bytes());
    match &principal.via {
        AuthMethod::ApiKey { key_id, scope } => {
            body.extend_from_slice(b",\"auth\":{\"method\":\"api_key\",\"key_id\":");
            push_json_str(&mut body, key_id.as_str());
            body.extend_from_slice(b",\"scope\":\"");
            body.extend_from_slice(scope.as_str().as_bytes());
        }
        AuthMethod::Session => {
            body.extend_from_slice(b",\"auth\":{\"method\":\"session\",\"key_id\":null,\"scope\":\"");
            body.extend_from_slice(keysmith_core::KeyScope::Admin.as_str().as_bytes());
        }
    }
    body.extend_from_slice(b"\"}}");
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = json_headers(hsts).clone();
    response
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a string into a Vec can fail neither in serde nor in the writer.
    let _ = serde_json::to_writer(out, s);
}

/// `"email":…,"orgs":[…],"teams":[…]`: the viewer's fields that come from the profile.
fn profile_part(caller: &Caller) -> String {
    #[derive(Serialize)]
    struct Part<'a> {
        email: Option<&'a str>,
        orgs: Vec<ViewerOrg<'a>>,
        teams: Vec<ViewerTeam<'a>>,
    }
    let viewer = viewer_of(caller);
    let json = serde_json::to_string(&Part {
        email: viewer.email,
        orgs: viewer.orgs,
        teams: viewer.teams,
    })
    .unwrap_or_default();
    // Without the braces: it is spliced into the viewer's object.
    json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned()
}

/// The headers of a JSON answer after [`crate::routes::common_headers`], made once.
fn json_headers(hsts: bool) -> &'static HeaderMap {
    static MAPS: LazyLock<[HeaderMap; 2]> = LazyLock::new(|| {
        [false, true].map(|hsts| {
            let response = Json(()).into_response();
            crate::routes::common_headers(hsts, response).headers().clone()
        })
    });
    &MAPS[usize::from(hsts)]
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
        Some(seat) => Lane::Done(render(&Caller::seated(principal, seat), state.hsts)),
        None => Lane::ReadCaller(principal),
    }
}

/// The viewer of a principal whose caller must be read.
pub async fn answer_caller(state: &AppState, principal: Principal) -> Response {
    match Caller::read(&state.app, principal).await {
        Ok(caller) => render(&caller, state.hsts),
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
            Ok(caller) => render(&caller, state.hsts),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keysmith_app::callers::{OrgSeat, Profile, TeamSeat};
    use keysmith_app::{AuthMethod, Principal};
    use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
    use keysmith_core::{KeyId, KeyScope, OrgId, TeamId, UserId};
    use keysmith_store::{Team, UserRef};
    use std::sync::Arc;

    fn caller(kind: PrincipalKind, username: &str, email: Option<&str>, via: AuthMethod, seats: usize) -> Caller {
        let orgs: Vec<OrgSeat> = (0..seats)
            .map(|i| OrgSeat {
                id: OrgId(i as i64 + 1),
                name: format!("org-{i} \"quoted\" \\ é\u{1}"),
                role: if i % 2 == 0 { OrgRole::Admin } else { OrgRole::Member },
            })
            .collect();
        let teams = (0..seats * 2)
            .map(|i| TeamSeat {
                team: Team {
                    id: TeamId(i as i64 + 1),
                    // One team in an organization the caller is not in: its org is "".
                    org: OrgId(i as i64 / 2 + 1),
                    name: format!("team-{i}\n<b>"),
                    created_at: 0,
                },
                role: if i % 3 == 0 { TeamRole::Admin } else { TeamRole::Member },
            })
            .collect();
        let profile = Profile {
            email: email.map(str::to_owned),
            created_at: 0,
            orgs,
            teams,
            rendered: Default::default(),
        };
        Caller {
            principal: Principal {
                user: UserRef {
                    id: UserId(7),
                    kind,
                    username: username.to_owned(),
                },
                via,
            },
            roles: Arc::new(profile.roles()),
            profile: Arc::new(profile),
        }
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    /// The assembled viewer is, byte for byte and header for header, serde's JSON of
    /// [`Viewer`] after the router's common headers; the second rendering (from the
    /// profile's kept part) is the same as the first.
    #[tokio::test]
    async fn the_assembled_viewer_is_serdes_viewer() {
        let key = || AuthMethod::ApiKey {
            key_id: KeyId::parse("wandb_v1_aBcDeFgHiJkLmNoPqRsTuVwXyZ0").unwrap(),
            scope: KeyScope::Read,
        };
        let callers = [
            caller(PrincipalKind::User, "admin", Some("a@example.com"), key(), 2),
            caller(PrincipalKind::User, "na\"me\u{7f}", None, AuthMethod::Session, 0),
            caller(PrincipalKind::ServiceAccount, "ci-bot", Some("\u{2028}@x"), key(), 3),
            caller(PrincipalKind::User, "solo", None, key(), 1),
        ];
        for caller in &callers {
            for hsts in [false, true] {
                let expected = serde_json::to_vec(&viewer_of(caller)).unwrap();
                let reference = crate::routes::common_headers(hsts, Json(viewer_of(caller)).into_response());
                for round in ["first", "kept"] {
                    let response = render(caller, hsts);
                    assert_eq!(response.status(), axum::http::StatusCode::OK);
                    assert_eq!(response.headers(), reference.headers(), "{round}");
                    let got = body(response).await;
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&expected),
                        "{round}, {caller:?}"
                    );
                }
            }
        }
    }
}
