//! Organizations and their settings.

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::State;
use keysmith_app::{Acting, input, orgs};
use keysmith_core::role::OrgRole;
use keysmith_store::{Org, OrgSettings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub(crate) name: String,
    /// Your role: `admin` or `member`.
    pub(crate) role: &'static str,
    /// When true, users and team service accounts cannot create keys; organization
    /// service accounts still can, and existing keys keep working.
    pub(crate) key_creation_disabled: bool,
    /// When true, keys may be created in the legacy format for old SDKs.
    pub(crate) legacy_keys_allowed: bool,
    /// The longest lifetime of a new user key, in days; 0: no limit.
    pub(crate) max_user_key_lifetime_days: u32,
    /// The longest lifetime of a new service account key, in days; 0: no limit.
    pub(crate) max_service_account_key_lifetime_days: u32,
    /// When true, members sign in to the web interface through a single sign-on
    /// provider, not a password; admins keep theirs.
    pub(crate) sso_required: bool,
    /// Where the keys of the organization's members and service accounts may be used
    /// from (CIDR blocks); empty: anywhere.
    pub(crate) allowed_networks: Vec<String>,
    /// Keys not used for this many days are announced as idle (`api_key.unused`); 0:
    /// never.
    pub(crate) unused_key_notice_days: u32,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    pub(crate) items: Vec<OrgView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgRequest {
    /// Disable (true) or allow (false) the creation of keys by users and team
    /// service accounts.
    pub(crate) key_creation_disabled: Option<bool>,
    /// Let members mint legacy-format keys (40 hex characters) for wandb SDKs older
    /// than 0.22.3, whose `wandb login` rejects longer keys.
    pub(crate) legacy_keys_allowed: Option<bool>,
    /// The longest lifetime of new user keys, in days (at most 3650); 0 removes the
    /// limit. Keys without an expiry get this one; existing keys keep theirs.
    #[schema(maximum = 3650)]
    pub(crate) max_user_key_lifetime_days: Option<u32>,
    /// The same for service account keys.
    #[schema(maximum = 3650)]
    pub(crate) max_service_account_key_lifetime_days: Option<u32>,
    /// Require members to sign in through a single sign-on provider (the organization
    /// must have one); admins keep their passwords, so a provider that is down cannot
    /// lock the organization out. Keys keep working either way.
    pub(crate) sso_required: Option<bool>,
    /// Where the keys of members and service accounts may be used from: CIDR blocks or
    /// addresses, IPv4 and IPv6 (at most 64). A key used from elsewhere is refused
    /// with `ip_not_allowed`, on every replica at once. `[]` lifts the restriction.
    #[schema(max_items = 64)]
    pub(crate) allowed_networks: Option<Vec<String>>,
    /// Announce keys of members and service accounts not used for this many days
    /// (at most 3650), once per idle spell, as the webhook event `api_key.unused`;
    /// 0 turns it off.
    #[schema(maximum = 3650)]
    pub(crate) unused_key_notice_days: Option<u32>,
}

fn view(org: Org, role: OrgRole) -> OrgView {
    OrgView {
        name: org.name,
        role: role.as_str(),
        key_creation_disabled: org.key_creation_disabled,
        legacy_keys_allowed: org.legacy_keys_allowed,
        max_user_key_lifetime_days: org.max_user_key_lifetime_days,
        max_service_account_key_lifetime_days: org.max_service_account_key_lifetime_days,
        sso_required: org.sso_required,
        allowed_networks: super::api_keys::networks_view(org.allowed_networks.as_deref()),
        unused_key_notice_days: org.unused_key_notice_days,
        created_at: rfc3339(org.created_at),
    }
}

/// The organizations you belong to.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs",
    responses((status = 200, body = OrgList), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_orgs(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
) -> Result<Json<OrgList>, ApiError> {
    let items = orgs::list(&state.app, &caller)
        .await?
        .into_iter()
        .map(|(org, role)| view(org, role))
        .collect();
    Ok(Json(OrgList { items }))
}

/// One organization you belong to.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "orgs",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = OrgView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_org(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<OrgView>, ApiError> {
    let (org, role) = orgs::get(&state.app, &caller, &org).await?;
    Ok(Json(view(org, role)))
}

/// Change organization settings (org admins).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "orgs", request_body = UpdateOrgRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses(
        (status = 200, body = OrgView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_org(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateOrgRequest>,
) -> Result<Json<OrgView>, ApiError> {
    let settings = OrgSettings {
        key_creation_disabled: request.key_creation_disabled,
        legacy_keys_allowed: request.legacy_keys_allowed,
        max_user_key_lifetime_days: request.max_user_key_lifetime_days,
        max_service_account_key_lifetime_days: request.max_service_account_key_lifetime_days,
        sso_required: request.sso_required,
        allowed_networks: match &request.allowed_networks {
            None => None,
            Some(items) => Some(input::networks("allowed_networks", items)?.map(|n| n.to_string())),
        },
        unused_key_notice_days: request.unused_key_notice_days,
    };
    let acting = Acting::new(&caller, &source, state.now());
    let org = orgs::update_settings(&state.app, &acting, &org, settings).await?;
    Ok(Json(view(org, OrgRole::Admin)))
}

/// One section of the key report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportSectionView {
    /// At most 200 keys, the most urgent first.
    pub(crate) items: Vec<super::api_keys::ApiKeyView>,
    /// True when there were more than are listed.
    pub(crate) truncated: bool,
}

/// Keys to narrow or delete: those of the organization's members and service accounts
/// that still work and were never used, are idle, expire soon, or are write or admin
/// keys that made only reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyReportView {
    pub(crate) organization: String,
    pub(crate) generated_at: String,
    /// Keys never used, made at least `never_used_days` ago.
    pub(crate) never_used_days: u32,
    pub(crate) never_used: ReportSectionView,
    /// Keys not used for `idle_days` (the organization's `unused_key_notice_days`, or
    /// 90).
    pub(crate) idle_days: u32,
    pub(crate) idle: ReportSectionView,
    /// Keys that expire within `expiring_within_days`.
    pub(crate) expiring_within_days: u32,
    pub(crate) expiring: ReportSectionView,
    /// Write or admin keys used in the last `reads_only_days` whose requests all that
    /// time could not change state (GET and HEAD; GraphQL, and forward auth without
    /// `X-Forwarded-Method`, count as changes): a read key would do.
    pub(crate) reads_only_days: u32,
    pub(crate) over_privileged: ReportSectionView,
}

impl KeyReportView {
    pub(crate) fn new(report: keysmith_app::keys::KeyReport, state: &AppState) -> Self {
        let section = |s: keysmith_app::keys::ReportSection| ReportSectionView {
            items: s
                .keys
                .into_iter()
                .map(|k| super::api_keys::ApiKeyView::new(k, state))
                .collect(),
            truncated: s.truncated,
        };
        Self {
            organization: report.org.name,
            generated_at: rfc3339(report.generated_at),
            never_used_days: report.never_used_days,
            never_used: section(report.never_used),
            idle_days: report.idle_days,
            idle: section(report.idle),
            expiring_within_days: report.expiring_days,
            expiring: section(report.expiring),
            reads_only_days: report.reads_only_days,
            over_privileged: section(report.over_privileged),
        }
    }
}

/// The organization's key report (org admins): keys never used, idle, expiring soon,
/// and write or admin keys that made only reads, so they can be narrowed or deleted.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/key-report", tag = "orgs",
    params(("org" = String, Path, description = "Organization name")),
    responses(
        (status = 200, body = KeyReportView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn key_report(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<KeyReportView>, ApiError> {
    let report = keysmith_app::keys::report(&state.app, &caller, &org).await?;
    Ok(Json(KeyReportView::new(report, &state)))
}
