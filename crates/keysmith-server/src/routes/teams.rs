//! Teams of an organization and their members. Org admins create teams and set
//! members; team admins and org admins see a team's members and service accounts.

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keysmith_app::{Acting, input, teams};
use keysmith_store::Team;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub(crate) name: String,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamList {
    pub(crate) items: Vec<TeamView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamDetail {
    pub(crate) name: String,
    pub(crate) created_at: String,
    pub(crate) members: Vec<TeamMemberView>,
    /// Service accounts scoped to this team.
    pub(crate) service_accounts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMemberView {
    pub(crate) username: String,
    /// `admin` or `member`.
    pub(crate) role: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    #[schema(schema_with = team_name)]
    pub(crate) name: String,
}

fn team_name() -> utoipa::openapi::Object {
    crate::openapi::entity_name(
        "1 to 64 letters, digits, `.`, `_`, `-`, starting with a letter or digit; unique in the \
         organization. Surrounding white space is dropped.",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTeamMemberRequest {
    /// `admin` or `member`.
    #[schema(pattern = "^(admin|member)$")]
    pub(crate) role: String,
}

pub(crate) fn view(team: Team) -> TeamView {
    TeamView {
        name: team.name,
        created_at: rfc3339(team.created_at),
    }
}

/// The organization's teams (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/teams", tag = "teams",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = TeamList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_teams(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<TeamList>, ApiError> {
    let items = teams::list(&state.app, &caller, &org)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(TeamList { items }))
}

/// Create a team (org admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/teams", tag = "teams", request_body = CreateTeamRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses(
        (status = 201, body = TeamView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateTeamRequest>,
) -> Result<Response, ApiError> {
    let name = input::entity_name("name", "team name", &request.name)?;
    let acting = Acting::new(&caller, &source, state.now());
    let team = teams::create(&state.app, &acting, &org, name, None).await?;
    Ok((StatusCode::CREATED, Json(view(team))).into_response())
}

/// A team's members and service accounts (its team admins and org admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/teams/{team}", tag = "teams",
    params(("org" = String, Path, description = "Organization name"), ("team" = String, Path, description = "Team name")),
    responses((status = 200, body = TeamDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_team(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath((org, team)): ApiPath<(String, String)>,
) -> Result<Json<TeamDetail>, ApiError> {
    let detail = teams::show(&state.app, &caller, &org, &team).await?;
    Ok(Json(TeamDetail {
        name: detail.team.name,
        created_at: rfc3339(detail.team.created_at),
        members: detail
            .members
            .into_iter()
            .map(|m| TeamMemberView {
                username: m.user.username,
                role: m.role.as_str(),
            })
            .collect(),
        service_accounts: detail.service_accounts.into_iter().map(|a| a.user.username).collect(),
    }))
}

/// Add a member to a team or change their team role (org admins).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/teams/{team}/members/{username}", tag = "teams", request_body = SetTeamMemberRequest,
    params(("org" = String, Path, description = "Organization name"), ("team" = String, Path, description = "Team name"),
        ("username" = String, Path, description = "A user of the organization")),
    responses(
        (status = 204, description = "The user is a member with this role"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn set_team_member(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, team, username)): ApiPath<(String, String, String)>,
    ApiJson(request): ApiJson<SetTeamMemberRequest>,
) -> Result<StatusCode, ApiError> {
    let role = input::team_role(&request.role)?;
    let acting = Acting::new(&caller, &source, state.now());
    teams::set_member(&state.app, &acting, &org, &team, &username, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member from a team (org admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/teams/{team}/members/{username}", tag = "teams",
    params(("org" = String, Path, description = "Organization name"), ("team" = String, Path, description = "Team name"),
        ("username" = String, Path, description = "A member of the team")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn remove_team_member(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, team, username)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    teams::remove_member(&state.app, &acting, &org, &team, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
