//! Single sign-on's REST door: the OpenID Connect providers an organization's people
//! sign in with (org admins). The sign-in itself is the web's (`web/sso.rs`); the rules
//! are `keysmith_app::sso`'s.

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
use keysmith_app::Acting;
use keysmith_app::sso::{self, GroupRule, NewProviderRequest};
use keysmith_store::SsoProvider;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A rule from the provider's groups to a role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRuleView {
    /// A value of the groups claim, compared exactly.
    pub(crate) group: String,
    /// `admin` or `member`: the organization role of people in the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) org_role: Option<String>,
    /// A team of the organization people in the group belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) team: Option<String>,
    /// `admin` or `member` (default) in that team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) team_role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderRequest {
    /// What the sign-in button says: "Sign in with {name}". Unique in the organization.
    pub(crate) name: String,
    /// The issuer URL exactly as its ID tokens name it in `iss`: `https://…` (`http://`
    /// only on loopback).
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    /// The name of the file holding the client secret in the server's `sso_secrets_dir`
    /// (default `<data_dir>/sso-secrets`, where the operator puts it), read at each
    /// sign-in. A name, not a path; the secret itself never passes through the API.
    pub(crate) client_secret_file: String,
    /// Space-separated; must include `openid` (default `openid email profile`).
    #[serde(default)]
    pub(crate) scopes: Option<String>,
    /// The ID token claim holding the user's groups (default `groups`).
    #[serde(default)]
    pub(crate) groups_claim: Option<String>,
    /// The ID token claim holding the email people are matched by (default `email`,
    /// which must come with `email_verified: true`); another, such as Entra ID's
    /// `preferred_username`, is trusted as the provider's own account name.
    #[serde(default)]
    pub(crate) email_claim: Option<String>,
    /// Create a member at the first sign-in of a verified email no user has (default
    /// false: an admin adds people first).
    #[serde(default)]
    pub(crate) jit: bool,
    #[serde(default)]
    pub(crate) group_rules: Vec<GroupRuleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret_file: String,
    pub(crate) scopes: String,
    pub(crate) groups_claim: String,
    pub(crate) email_claim: String,
    pub(crate) jit: bool,
    pub(crate) group_rules: Vec<GroupRuleView>,
    /// Where the provider must send people back: register it with the provider.
    pub(crate) redirect_path: &'static str,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub(crate) items: Vec<ProviderView>,
}

fn view(provider: SsoProvider) -> ProviderView {
    let group_rules = sso::group_rules(&provider)
        .into_iter()
        .map(|r| GroupRuleView {
            group: r.group,
            org_role: r.org_role,
            team: r.team,
            team_role: r.team_role,
        })
        .collect();
    ProviderView {
        id: provider.id,
        name: provider.name,
        issuer: provider.issuer,
        client_id: provider.client_id,
        client_secret_file: provider.client_secret_file,
        scopes: provider.scopes,
        groups_claim: provider.groups_claim,
        email_claim: provider.email_claim,
        jit: provider.jit,
        group_rules,
        redirect_path: crate::web::sso::CALLBACK_PATH,
        created_at: rfc3339(provider.created_at),
    }
}

/// The organization's single sign-on providers (org admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/sso-providers", tag = "sso",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = ProviderList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_providers(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<ProviderList>, ApiError> {
    let items = sso::list_providers(&state.app, &caller, &org).await?;
    Ok(Json(ProviderList {
        items: items.into_iter().map(view).collect(),
    }))
}

/// Add an OpenID Connect provider: its keys are read and its client secret file
/// checked now; the sign-in page then offers "Sign in with {name}".
#[utoipa::path(post, path = "/api/v1/orgs/{org}/sso-providers", tag = "sso", request_body = CreateProviderRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 201, body = ProviderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        JsonBodyRejections),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_provider(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateProviderRequest>,
) -> Result<(StatusCode, Json<ProviderView>), ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    let request = NewProviderRequest {
        name: request.name,
        issuer: request.issuer,
        client_id: request.client_id,
        client_secret_file: request.client_secret_file,
        scopes: request.scopes,
        groups_claim: request.groups_claim,
        email_claim: request.email_claim,
        jit: request.jit,
        group_rules: request
            .group_rules
            .into_iter()
            .map(|r| GroupRule {
                group: r.group,
                org_role: r.org_role,
                team: r.team,
                team_role: r.team_role,
            })
            .collect(),
    };
    let added = sso::add_provider(&state.app, &acting, &org, request).await?;
    Ok((StatusCode::CREATED, Json(view(added))))
}

/// Remove a provider. Sessions begun through it last until they end.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/sso-providers/{id}", tag = "sso",
    params(("org" = String, Path, description = "Organization name"), ("id" = i64, Path, description = "Provider ID")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_provider(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    sso::remove_provider(&state.app, &acting, &org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
