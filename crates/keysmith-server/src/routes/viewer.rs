//! Who am I: the caller's identity, organizations and how they authenticated.

use crate::auth::{AuthMethod, Authenticated};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
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

/// The caller: who the key or session belongs to.
#[utoipa::path(get, path = "/api/v1/viewer", tag = "viewer",
    responses((status = 200, body = Viewer), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_viewer(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Viewer>, ApiError> {
    let email = state.store.get_user(principal.user.id).await?.and_then(|u| u.email);
    let memberships = state.store.memberships(principal.user.id).await?;
    let teams = state
        .store
        .user_teams(principal.user.id)
        .await?
        .into_iter()
        .map(|(team, role)| ViewerTeam {
            org: memberships
                .iter()
                .find(|m| m.org.id == team.org)
                .map(|m| m.org.name.clone())
                .unwrap_or_default(),
            name: team.name,
            role: role.as_str(),
        })
        .collect();
    let orgs = memberships
        .into_iter()
        .map(|m| ViewerOrg {
            name: m.org.name,
            role: m.role.as_str(),
        })
        .collect();
    let auth = match principal.via {
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
        username: principal.user.username,
        email,
        orgs,
        teams,
        auth,
    }))
}
