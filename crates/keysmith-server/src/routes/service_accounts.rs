//! Service accounts: principals without a password that authenticate only with their
//! keys. Team-scoped ones are created by the team's admins or org admins;
//! organization-scoped ones by org admins only. Their keys are managed through
//! `/api/v1/api-keys` with `owner`.

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keysmith_app::service_accounts::{self, NewServiceAccountRequest};
use keysmith_app::{Acting, input};
use keysmith_store::ServiceAccount;
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
    /// For an external service account (identity federation): the JWT `sub` it accepts
    /// from the organization's JWT issuers. Absent for a built-in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) external_subject: Option<String>,
    /// Where its keys may be used from (CIDR blocks); empty: wherever the organization
    /// allows.
    pub(crate) allowed_networks: Vec<String>,
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
    /// Makes it an external service account (identity federation): a JWT from one of the
    /// organization's issuers whose `sub` is this value is exchanged at `POST
    /// /oidc/token` for an access token of this service account. Compared exactly.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) external_subject: Option<String>,
    /// Where the account's keys may be used from: CIDR blocks or addresses, IPv4 and
    /// IPv6 (at most 64); used from elsewhere, every key of the account is refused
    /// (`ip_not_allowed`).
    #[serde(default)]
    #[schema(max_items = 64)]
    pub(crate) allowed_networks: Vec<String>,
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

pub(crate) fn view(account: ServiceAccount) -> ServiceAccountView {
    ServiceAccountView {
        name: account.user.username,
        description: account.description,
        scope: if account.team.is_some() { "team" } else { "organization" },
        team: account.team.map(|t| t.name),
        active: account.user.active,
        created_at: rfc3339(account.user.created_at),
        external_subject: account.external_subject,
        allowed_networks: super::api_keys::networks_view(account.allowed_networks.as_deref()),
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
    let items = service_accounts::list(&state.app, &caller, &org, params.team.as_deref())
        .await?
        .into_iter()
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
    let request = NewServiceAccountRequest {
        name: input::entity_name("name", "service account name", &request.name)?,
        description: request.description,
        team: request.team,
        external_subject: request.external_subject,
        allowed_networks: input::networks("allowed_networks", &request.allowed_networks)?,
    };
    let acting = Acting::new(&caller, &source, state.now());
    let account = service_accounts::create(&state.app, &acting, &org, request).await?;
    Ok((StatusCode::CREATED, Json(view(account))).into_response())
}

/// A change to a service account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccountRequest {
    /// Where its keys may be used from: CIDR blocks or addresses, IPv4 and IPv6 (at
    /// most 64); `[]` lifts the account's own list (the organization's still applies).
    /// Its keys follow at once, on every replica.
    #[schema(max_items = 64)]
    pub(crate) allowed_networks: Vec<String>,
}

/// Change where a service account's keys may be used from (those who manage it).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/service-accounts/{name}", tag = "service-accounts",
    request_body = UpdateServiceAccountRequest,
    params(("org" = String, Path, description = "Organization name"), ("name" = String, Path, description = "Service account name")),
    responses(
        (status = 200, body = ServiceAccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_service_account(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, name)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<UpdateServiceAccountRequest>,
) -> Result<Json<ServiceAccountView>, ApiError> {
    let networks = input::networks("allowed_networks", &request.allowed_networks)?;
    let acting = Acting::new(&caller, &source, state.now());
    let account = service_accounts::set_networks(&state.app, &acting, &org, &name, networks).await?;
    Ok(Json(view(account)))
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
    let acting = Acting::new(&caller, &source, state.now());
    service_accounts::delete(&state.app, &acting, &org, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
