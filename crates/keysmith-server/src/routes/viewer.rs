//! Who am I: the caller's identity, organizations and how they authenticated.

use crate::access::Authorized;
use crate::auth::AuthMethod;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Viewer {
    /// `user` or `service_account`.
    kind: &'static str,
    username: String,
    email: Option<String>,
    /// The organizations the caller belongs to, with the caller's role in each.
    orgs: Vec<ViewerOrg>,
    /// The teams the caller belongs to, with the caller's role in each.
    teams: Vec<ViewerTeam>,
    auth: ViewerAuth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerTeam {
    org: String,
    name: String,
    /// `admin` or `member`.
    role: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerOrg {
    name: String,
    /// `admin` or `member`.
    role: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerAuth {
    /// `api_key` or `session`.
    method: &'static str,
    /// The key ID of the key used, when `method` is `api_key`.
    key_id: Option<String>,
}

pub const PATH: &str = "/api/v1/viewer";

/// The caller: who the key or session belongs to.
#[utoipa::path(get, path = "/api/v1/viewer", tag = "viewer",
    responses((status = 200, body = Viewer), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_viewer(Authorized(caller): Authorized) -> Result<Json<Viewer>, ApiError> {
    // All from the caller cache when warm: no database read.
    let profile = &caller.profile;
    let teams = profile
        .teams
        .iter()
        .map(|seat| ViewerTeam {
            org: profile.org_name(seat.team.org).unwrap_or_default().to_owned(),
            name: seat.team.name.clone(),
            role: seat.role.as_str(),
        })
        .collect();
    let orgs = profile
        .orgs
        .iter()
        .map(|org| ViewerOrg {
            name: org.name.clone(),
            role: org.role.as_str(),
        })
        .collect();
    let principal = &caller.principal;
    let auth = match &principal.via {
        AuthMethod::ApiKey { key_id } => ViewerAuth {
            method: "api_key",
            key_id: Some(key_id.to_string()),
        },
        AuthMethod::Session => ViewerAuth {
            method: "session",
            key_id: None,
        },
    };
    Ok(Json(Viewer {
        kind: principal.user.kind.as_str(),
        username: principal.user.username.clone(),
        email: profile.email.clone(),
        orgs,
        teams,
        auth,
    }))
}
