//! The users of an organization, managed by its admins: create or invite, change
//! roles, deactivate and reactivate, delete. Invitations are accepted without signing in.

use crate::access::{self, Authorized, Caller};
use crate::auth::password::hash_password;
use crate::auth::session;
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
use keysmith_app::{Action, AuditContext};
use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_core::{EntityName, SecretString, check_password};
use keysmith_store::{NewUser, Org, OrgMember, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long an invitation can be accepted.
const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

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

fn view(user: User, role: OrgRole) -> UserView {
    UserView {
        username: user.username,
        email: user.email,
        role: role.as_str(),
        active: user.active,
        created_at: rfc3339(user.created_at),
    }
}

pub(crate) fn parse_role(raw: &str) -> Result<OrgRole, ApiError> {
    OrgRole::parse(raw).ok_or_else(|| ApiError::InvalidValue(format!("role must be `admin` or `member`, not `{raw}`")))
}

pub(crate) fn parse_entity(what: &str, raw: &str) -> Result<EntityName, ApiError> {
    EntityName::parse(raw).map_err(|e| ApiError::InvalidValue(format!("{what}: {e}")))
}

/// A user (not a service account) of `org`, or 404.
async fn org_user(state: &AppState, org: &Org, username: &str) -> Result<OrgMember, ApiError> {
    let user = state
        .store
        .find_user_by_username(username)
        .await?
        .ok_or(ApiError::UserNotFound)?;
    if user.kind != PrincipalKind::User {
        return Err(ApiError::UserNotFound);
    }
    let role = state
        .store
        .memberships(user.id)
        .await?
        .into_iter()
        .find(|m| m.org.id == org.id)
        .ok_or(ApiError::UserNotFound)?
        .role;
    Ok(OrgMember { user, role })
}

/// A user of `org` whom the caller administers as an org admin: the common start of
/// the handlers that act on one user.
async fn administered_user(
    state: &AppState,
    caller: &Caller,
    org: &str,
    username: &str,
) -> Result<(Org, OrgMember), ApiError> {
    let org = access::member_org(state, caller, org).await?;
    caller.require_org_admin(&org)?;
    let member = org_user(state, &org, username).await?;
    Ok((org, member))
}

/// Deactivation and deletion act on the whole account, which may belong to other
/// organizations too: only an admin of all of them may do it.
async fn require_admin_of_all_orgs(state: &AppState, caller: &Caller, user: &User) -> Result<(), ApiError> {
    let orgs = state.store.memberships(user.id).await?;
    if orgs.iter().all(|m| caller.roles.is_org_admin(m.org.id)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the user also belongs to an organization you do not administer",
        ))
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
    let org = access::member_org(&state, &caller, &org).await?;
    caller.require_org_admin(&org)?;
    let items = state
        .store
        .org_members(org.id)
        .await?
        .into_iter()
        .filter(|m| m.user.kind == PrincipalKind::User)
        .map(|m| view(m.user, m.role))
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
    let org = access::member_org(&state, &caller, &org).await?;
    caller.require_org_admin(&org)?;
    let username = parse_entity("username", &request.username)?;
    let role = request
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(OrgRole::Member);
    let email = request.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if email.as_ref().is_some_and(|e| !e.contains('@') || e.len() > 254) {
        return Err(ApiError::InvalidValue(
            "email must be an address such as ada@example.com".into(),
        ));
    }
    let password = request.password.map(SecretString::new);
    let password_hash = match &password {
        Some(p) => {
            check_password(p.expose()).map_err(|m| ApiError::InvalidValue(m.into()))?;
            Some(hash_password(p)?)
        }
        None => None,
    };
    let invited = password_hash.is_none();
    let now = state.now();
    let audit = AuditContext::new(&caller, source, now).entry(
        org.id,
        if invited {
            Action::UserInvited
        } else {
            Action::UserCreated
        },
        username.as_str(),
        Some(serde_json::json!({ "role": role.as_str() })),
    );
    let new_user = NewUser {
        kind: PrincipalKind::User,
        username: username.to_string(),
        email,
        password_hash,
    };
    let user = state.store.create_member(new_user, org.id, role, now, &audit).await?;
    let invite_token = if invited {
        let token = session::new_token()?;
        state
            .store
            .create_invite(user.id, &session::token_digest(&token), now, now + INVITE_TTL_MS)
            .await?;
        Some(token.expose().to_owned())
    } else {
        None
    };
    tracing::info!(user.id = user.id.0, org.id = org.id.0, invited, "user created");
    let body = CreatedUser {
        user: view(user, role),
        invite_token,
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
    let (org, member) = administered_user(&state, &caller, &org, &username).await?;
    let role = request.role.as_deref().map(parse_role).transpose()?;
    let audit = AuditContext::new(&caller, source, state.now());
    if let Some(role) = role.filter(|r| *r != member.role) {
        let entries = audit.entry(
            org.id,
            Action::UserRoleChanged,
            &member.user.username,
            Some(serde_json::json!({ "from": member.role.as_str(), "to": role.as_str() })),
        );
        state
            .store
            .set_org_role(org.id, member.user.id, role, &entries)
            .await??;
    }
    if let Some(active) = request.active.filter(|a| *a != member.user.active) {
        require_admin_of_all_orgs(&state, &caller, &member.user).await?;
        let action = if active {
            Action::UserReactivated
        } else {
            Action::UserDeactivated
        };
        let orgs = access::audit_orgs(&state, member.user.id).await?;
        let entries = audit.entries(&orgs, action, &member.user.username, None);
        state.store.set_user_active(member.user.id, active, &entries).await??;
        tracing::info!(user.id = member.user.id.0, active, "user activation changed");
    }
    let updated = org_user(&state, &org, &username).await?;
    Ok(Json(view(updated.user, updated.role)))
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
    let (_, member) = administered_user(&state, &caller, &org, &username).await?;
    require_admin_of_all_orgs(&state, &caller, &member.user).await?;
    let orgs = access::audit_orgs(&state, member.user.id).await?;
    let entries = AuditContext::new(&caller, source, state.now()).entries(
        &orgs,
        Action::UserDeleted,
        &member.user.username,
        None,
    );
    if !state.store.delete_user(member.user.id, &entries).await?? {
        return Err(ApiError::UserNotFound);
    }
    tracing::info!(user.id = member.user.id.0, "user deleted");
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
    let (_, member) = administered_user(&state, &caller, &org, &username).await?;
    require_admin_of_all_orgs(&state, &caller, &member.user).await?;
    let now = state.now();
    state.store.delete_invites(member.user.id).await?;
    let token = session::new_token()?;
    state
        .store
        .create_invite(member.user.id, &session::token_digest(&token), now, now + INVITE_TTL_MS)
        .await?;
    tracing::info!(user.id = member.user.id.0, source.address = %source, "invitation issued");
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
    check_password(password.expose()).map_err(|m| ApiError::InvalidValue(m.into()))?;
    let hash = hash_password(&password)?;
    match state
        .store
        .accept_invite(&session::token_digest(&token), &hash, state.now(), Some(&source))
        .await?
    {
        Some(user) => {
            tracing::info!(user.id = user.0, "invitation accepted");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::InvitationInvalid),
    }
}
