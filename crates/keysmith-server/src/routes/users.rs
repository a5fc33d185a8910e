//! The users of an organization, managed by its admins: create or invite, change
//! roles, deactivate and reactivate, delete. Invitations are accepted without signing in.

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
use keysmith_app::Acting;
use keysmith_app::input::{self, Email};
use keysmith_app::users::{self, NewUserRequest, UserChange};
use keysmith_core::SecretString;
use keysmith_core::role::OrgRole;
use keysmith_store::OrgMember;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub(crate) username: String,
    pub(crate) email: Option<String>,
    /// `admin` or `member` in this organization.
    pub(crate) role: &'static str,
    /// A deactivated user cannot sign in and their keys do not authenticate.
    pub(crate) active: bool,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub(crate) items: Vec<UserView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(schema_with = username)]
    pub(crate) username: String,
    pub(crate) email: Option<String>,
    /// At least 12 characters. Leave out to invite: the answer then carries a one-time
    /// `invite_token` with which the user sets a password.
    #[schema(format = Password, min_length = 12, max_length = 1024)]
    pub(crate) password: Option<String>,
    /// `admin` or `member` (default).
    #[schema(pattern = "^(admin|member)$")]
    pub(crate) role: Option<String>,
}

fn username() -> utoipa::openapi::Object {
    crate::openapi::entity_name(
        "1 to 64 letters, digits, `.`, `_`, `-`, starting with a letter or digit; unique among users \
         and service accounts. Surrounding white space is dropped.",
    )
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub(crate) user: UserView,
    /// For an invitation: give this to the user (POST /api/v1/invites/accept). Shown once;
    /// valid for 7 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) invite_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// `admin` or `member`.
    #[schema(pattern = "^(admin|member)$")]
    pub(crate) role: Option<String>,
    /// false deactivates (keys stop authenticating at once), true reactivates.
    pub(crate) active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    pub(crate) token: String,
    /// 12 to 1024 characters.
    #[schema(format = Password, min_length = 12, max_length = 1024)]
    pub(crate) password: String,
}

pub(crate) fn view(member: OrgMember) -> UserView {
    UserView {
        username: member.user.username,
        email: member.user.email,
        role: member.role.as_str(),
        active: member.user.active,
        created_at: rfc3339(member.user.created_at),
    }
}

/// The users of the organization (org admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/users", tag = "users",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<UserList>, ApiError> {
    let items = users::list(&state.app, &caller, &org)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(UserList { items }))
}

/// Create a user with a password, or invite one (org admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/users", tag = "users", request_body = CreateUserRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses(
        (status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let request = NewUserRequest {
        username: input::entity_name("username", "username", &request.username)?,
        role: request
            .role
            .as_deref()
            .map(input::org_role)
            .transpose()?
            .unwrap_or(OrgRole::Member),
        email: Email::parse_optional(request.email.as_deref())?,
        password: request.password.map(SecretString::new),
    };
    let acting = Acting::new(&caller, &source, state.now());
    let created = users::create(&state.app, &acting, &org, request).await?;
    let body = CreatedUser {
        user: view(created.member),
        invite_token: created.invite_token.map(|t| t.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Change a user's role, or deactivate or reactivate them (org admins). Deactivation
/// stops the user's keys and sessions at once; reactivation restores the keys.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/users/{username}", tag = "users", request_body = UpdateUserRequest,
    params(("org" = String, Path, description = "Organization name"), ("username" = String, Path, description = "User name")),
    responses(
        (status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_admin`: the org would have no active admin"), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, username)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let change = UserChange {
        role: request.role.as_deref().map(input::org_role).transpose()?,
        active: request.active,
    };
    let acting = Acting::new(&caller, &source, state.now());
    let updated = users::update(&state.app, &acting, &org, &username, change).await?;
    Ok(Json(view(updated)))
}

/// Delete a user and every key they own (org admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/users/{username}", tag = "users",
    params(("org" = String, Path, description = "Organization name"), ("username" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Deleted, with their keys"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, username)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    users::delete(&state.app, &acting, &org, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct InviteToken {
    /// Give this to the user (POST /api/v1/invites/accept). Shown once; valid for 7 days.
    pub(crate) invite_token: String,
}

/// A new invitation for a user of the organization (org admins): for someone invited
/// through the wandb SDK's `createUser`, or who lost their password. Earlier
/// invitations of the user stop working; the current password keeps working until the
/// invitation is accepted.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/users/{username}/invite", tag = "users",
    params(("org" = String, Path, description = "Organization name"), ("username" = String, Path, description = "User name")),
    responses(
        (status = 201, body = InviteToken), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn invite_user(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, username)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    let token = users::reinvite(&state.app, &acting, &org, &username).await?;
    let body = InviteToken {
        invite_token: token.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Accept an invitation: set your password with the token an admin gave you.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = "users", request_body = AcceptInviteRequest,
    responses((status = 204, description = "Password set; sign in with it"), (status = 400, body = ErrorBody), JsonBodyRejections))]
pub async fn accept_invite(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    ApiJson(request): ApiJson<AcceptInviteRequest>,
) -> Result<StatusCode, ApiError> {
    let token = SecretString::new(request.token);
    let password = SecretString::new(request.password);
    users::accept_invitation(&state.app, &source, state.now(), &token, &password).await?;
    Ok(StatusCode::NO_CONTENT)
}
