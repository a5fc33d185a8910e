//! Service accounts: principals without a password that authenticate only with their
//! keys. Team-scoped ones are created by the team's admins or org admins;
//! organization-scoped ones by org admins only. Their keys are managed through
//! `/api/v1/api-keys` with `owner`.

use crate::access::{self, Authorized};
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::routes::users::parse_entity;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keysmith_app::{Action, AuditContext};
use keysmith_core::policy::{self, Roles};
use keysmith_store::{NewServiceAccount, ServiceAccount};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountView {
    pub(crate) name: String,
    pub(crate) description: String,
    /// The team it is scoped to; absent for an organization-scoped service account.
    pub(crate) team: Option<String>,
    /// `team` or `organization`.
    pub(crate) scope: &'static str,
    pub(crate) active: bool,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountList {
    pub(crate) items: Vec<ServiceAccountView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccountRequest {
    #[schema(schema_with = service_account_name)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    /// The team to scope it to; leave out for an organization-scoped service account.
    pub(crate) team: Option<String>,
}

fn service_account_name() -> utoipa::openapi::Object {
    crate::openapi::entity_name(
        "1 to 64 letters, digits, `.`, `_`, `-`, starting with a letter or digit; unique among users \
         and service accounts. Surrounding white space is dropped.",
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListServiceAccountsParams {
    /// Only this team's service accounts.
    pub(crate) team: Option<String>,
}

fn view(account: ServiceAccount) -> ServiceAccountView {
    ServiceAccountView {
        name: account.user.username,
        description: account.description,
        scope: if account.team.is_some() { "team" } else { "organization" },
        team: account.team.map(|t| t.name),
        active: account.user.active,
        created_at: rfc3339(account.user.created_at),
    }
}

/// Whether `roles` may manage (see, create keys for, delete) this service account.
fn may_manage(roles: &Roles, account: &ServiceAccount) -> bool {
    match &account.team {
        Some(team) => policy::may_create_team_service_account(roles, account.org, team.id),
        None => policy::may_create_org_service_account(roles, account.org),
    }
}

/// The service accounts you manage: all of the org's for org admins, your teams' for
/// team admins, none for other members.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/service-accounts", tag = "service-accounts",
    params(("org" = String, Path, description = "Organization name"), ListServiceAccountsParams),
    responses((status = 200, body = ServiceAccountList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_service_accounts(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ServiceAccountList>, ApiError> {
    let params: ListServiceAccountsParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(format!("bad query parameters: {e}")))?;
    let org = access::member_org(&state, &caller, &org).await?;
    let team = match &params.team {
        Some(name) => Some(access::org_team(&state, &org, name).await?.id),
        None => None,
    };
    let items = state
        .store
        .list_service_accounts(org.id, team)
        .await?
        .into_iter()
        .filter(|a| may_manage(&caller.roles, a))
        .map(view)
        .collect();
    Ok(Json(ServiceAccountList { items }))
}

/// Create a service account: scoped to a team (its team admins or org admins) or to
/// the whole organization (org admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/service-accounts", tag = "service-accounts", request_body = CreateServiceAccountRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses(
        (status = 201, body = ServiceAccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_service_account(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateServiceAccountRequest>,
) -> Result<Response, ApiError> {
    let org = access::member_org(&state, &caller, &org).await?;
    let name = parse_entity("service account name", &request.name)?;
    if request.description.chars().count() > 1024 {
        return Err(ApiError::InvalidValue("description: at most 1024 characters".into()));
    }
    let team = match &request.team {
        Some(team) => {
            let team = access::org_team(&state, &org, team).await?;
            if !policy::may_create_team_service_account(&caller.roles, org.id, team.id) {
                return Err(ApiError::Forbidden(
                    "only the team's admins and organization admins may create its service accounts",
                ));
            }
            Some(team)
        }
        None => {
            if !policy::may_create_org_service_account(&caller.roles, org.id) {
                return Err(ApiError::Forbidden(
                    "only organization admins may create organization service accounts",
                ));
            }
            None
        }
    };
    let now = state.now();
    let audit = AuditContext::new(&caller, source, now).entry(
        org.id,
        Action::ServiceAccountCreated,
        name.as_str(),
        Some(serde_json::json!({ "team": team.as_ref().map(|t| t.name.as_str()) })),
    );
    let account = state
        .store
        .create_service_account(
            NewServiceAccount {
                org: org.id,
                team: team.map(|t| t.id),
                username: name.to_string(),
                description: request.description.trim().to_owned(),
                created_by: Some(caller.id()),
            },
            now,
            &audit,
        )
        .await?;
    tracing::info!(
        user.id = account.user.id.0,
        org.id = org.id.0,
        "service account created"
    );
    Ok((StatusCode::CREATED, Json(view(account))).into_response())
}

/// Delete a service account and all its keys.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/service-accounts/{name}", tag = "service-accounts",
    params(("org" = String, Path, description = "Organization name"), ("name" = String, Path, description = "Service account name")),
    responses((status = 204, description = "Deleted, with its keys"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_service_account(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = access::member_org(&state, &caller, &org).await?;
    let user = state
        .store
        .find_user_by_username(&name)
        .await?
        .ok_or(ApiError::ServiceAccountNotFound)?;
    let account = state
        .store
        .get_service_account(user.id)
        .await?
        .ok_or(ApiError::ServiceAccountNotFound)?;
    if account.org != org.id || !may_manage(&caller.roles, &account) {
        return Err(ApiError::ServiceAccountNotFound);
    }
    let audit =
        AuditContext::new(&caller, source, state.now()).entry(org.id, Action::ServiceAccountDeleted, &name, None);
    state.store.delete_user(account.user.id, &audit).await??;
    tracing::info!(user.id = account.user.id.0, "service account deleted");
    Ok(StatusCode::NO_CONTENT)
}
