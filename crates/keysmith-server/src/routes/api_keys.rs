//! API keys of users and service accounts: create (the full key shown once), list by
//! role, read, rename, delete, bulk delete.
//!
//! Who may do what is decided in `keysmith_core::policy`, through `crate::access`. A
//! key the caller may not see answers 404, exactly like a key that does not exist, so
//! key IDs cannot be probed (docs/DESIGN.md §3).

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keysmith_app::Acting;
use keysmith_app::keys::{self, Grace, KeyStatus, Minted, NewKeyRequest};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyName, KeyScope, SecretString};
use keysmith_store::{KeyFormat, KeySort, StoredKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(schema_with = new_key_name)]
    pub(crate) name: String,
    /// The service account (or yourself) who will own the key, by name; default: you.
    #[serde(default)]
    pub(crate) owner: Option<String>,
    /// `v1` (86 characters, the default) or `legacy` (40 hex characters, for wandb SDKs
    /// older than 0.22.3; the organization must allow it).
    #[serde(default)]
    #[schema(pattern = "^(v1|legacy)$")]
    pub(crate) format: Option<String>,
    /// When the key stops working (RFC 3339). Without it (and without
    /// `expires_in_days`) the key gets the organization's maximum lifetime, if any.
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
    /// The same, as a number of days from now: 1 to 36500.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36500)]
    pub(crate) expires_in_days: Option<u32>,
    /// What the key may do at most: `read` (read only), `write` (also manage its
    /// owner's own keys) or `admin` (the owner's full power). Default: the scope of
    /// the key making the request (`admin` from a session); never wider than it.
    #[serde(default)]
    #[schema(pattern = "^(read|write|admin)$")]
    pub(crate) scope: Option<String>,
    /// Where the key may be used from: CIDR blocks or addresses, IPv4 and IPv6 (at
    /// most 64). Used from elsewhere it is refused (`ip_not_allowed`). Default: the
    /// allowlist of the key making the request (none from a session); never wider.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub(crate) allowed_networks: Option<Vec<String>>,
    /// At most this many requests a minute with the key (1 to 60000), as a token
    /// bucket on each replica; over it, `429 key_rate_limited` with Retry-After and the
    /// IETF RateLimit fields. Default: the limit of the key making the request (none
    /// from a session); never above it.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 60000)]
    pub(crate) requests_per_minute: Option<u32>,
}

/// A stored allowlist as the API shows it: its blocks, or none.
pub(crate) fn networks_view(stored: Option<&str>) -> Vec<String> {
    stored
        .map(|n| n.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A scope named in a request: `read`, `write` or `admin`.
pub(crate) fn parse_scope(raw: Option<&str>) -> Result<Option<KeyScope>, ApiError> {
    raw.map(|s| {
        KeyScope::parse(s)
            .ok_or_else(|| ApiError::InvalidValue(format!("scope must be `read`, `write` or `admin`, not `{s}`")))
    })
    .transpose()
}

fn new_key_name() -> utoipa::openapi::Object {
    crate::openapi::key_name(
        "A descriptive name: 1 to 128 characters, such as where the key is used. Surrounding white \
         space is dropped; control characters are refused.",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working: `now`, `1h`, `24h`, `7d` or
    /// `until_deleted` (default `24h`).
    #[serde(default)]
    #[schema(pattern = "^(now|1h|24h|7d|until_deleted)$")]
    pub(crate) grace: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeExposedRequest {
    /// The exposed key, in full.
    #[schema(format = Password)]
    pub(crate) key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeExposedResponse {
    /// Always `received`, whether or not the key existed.
    pub(crate) status: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// 1 to 100 key IDs.
    #[schema(min_items = 1, max_items = 100)]
    pub(crate) key_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDeleteResponse {
    /// One result per requested key ID, in request order.
    pub(crate) results: Vec<BulkDeleteResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDeleteResult {
    pub(crate) key_id: String,
    /// `deleted`, `not_found` (no such key, or not one you may see), `forbidden`, or
    /// `insufficient_scope` (you may, but the key making the request may not).
    pub(crate) status: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    #[schema(schema_with = new_name)]
    pub(crate) name: String,
}

fn new_name() -> utoipa::openapi::Object {
    crate::openapi::key_name("The new name: 1 to 128 characters, as for a new key.")
}

/// The answer to a create: the only response that ever carries the full key.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The full key. Shown exactly once: store it now.
    pub(crate) key: String,
    /// The key ID of a v1 key; for a legacy key, the handle that names it in this API.
    pub(crate) key_id: String,
    /// `v1` or `legacy`.
    pub(crate) format: &'static str,
    pub(crate) name: String,
    pub(crate) owner: OwnerView,
    pub(crate) created_at: String,
    pub(crate) expires_at: Option<String>,
    /// `read`, `write` or `admin`.
    pub(crate) scope: &'static str,
    /// Where the key may be used from (CIDR blocks); empty: wherever its owner's
    /// organizations allow.
    pub(crate) allowed_networks: Vec<String>,
    /// Its request limit per minute (per replica); null: none.
    pub(crate) requests_per_minute: Option<u32>,
    /// For a rotation: the key this one replaces, which keeps working until
    /// `previous_expires_at` (absent: until it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rotated_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_expires_at: Option<String>,
}

/// A place a key was used from.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    pub(crate) address: String,
    pub(crate) user_agent: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

/// A key as lists show it: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The public first part of the key, used to refer to it.
    pub(crate) key_id: String,
    /// What to show people: the key ID, or a legacy key's first six characters.
    pub(crate) display: String,
    /// `v1` (86 characters) or `legacy` (40 characters).
    pub(crate) format: &'static str,
    pub(crate) name: String,
    pub(crate) owner: OwnerView,
    /// Who created the key; absent when that principal was deleted or for imported keys.
    pub(crate) created_by: Option<OwnerView>,
    pub(crate) created_at: String,
    pub(crate) last_used_at: Option<String>,
    /// The last request that could have changed state (anything but GET and HEAD).
    pub(crate) last_write_at: Option<String>,
    /// When the key stops working; null: never.
    pub(crate) expires_at: Option<String>,
    /// What the key may do at most: `read`, `write` or `admin`.
    pub(crate) scope: &'static str,
    /// Where the key may be used from (CIDR blocks); empty: wherever its owner's
    /// organizations allow.
    pub(crate) allowed_networks: Vec<String>,
    /// Its request limit per minute (per replica); null: none.
    pub(crate) requests_per_minute: Option<u32>,
    /// `active`, or `expired` (past its expiry or its rotation's grace period).
    #[serde(serialize_with = "status_text")]
    #[schema(value_type = String)]
    pub(crate) status: KeyStatus,
    /// The key this one replaced in a rotation.
    pub(crate) rotated_from: Option<String>,
    /// The key replacing this one, while a rotation is in progress.
    pub(crate) rotated_to: Option<String>,
    /// `api_key`, or `federated_session`: an access token a JWT was exchanged for at
    /// `POST /oidc/token` (it lives at most an hour, cannot be rotated or renamed, and
    /// ends at once when deleted).
    pub(crate) kind: &'static str,
    /// For a federated session: the issuer of the JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) federated_issuer: Option<String>,
    /// The most recent distinct sources (address, user agent): only when one key is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sources: Option<Vec<SourceView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    /// `user` or `service_account`.
    #[serde(serialize_with = "kind_text")]
    #[schema(value_type = String)]
    pub(crate) kind: PrincipalKind,
    pub(crate) username: String,
}

fn status_text<S: serde::Serializer>(status: &KeyStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

fn kind_text<S: serde::Serializer>(kind: &PrincipalKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub(crate) items: Vec<ApiKeyView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page (with the same `sort`).
    pub(crate) cursor: Option<String>,
    /// `created` (newest first, the default) or `last_used` (most recent first).
    #[param(pattern = "^(created|last_used)$")]
    pub(crate) sort: Option<String>,
    /// Only keys of this user or service account (by name).
    pub(crate) owner: Option<String>,
    /// `user` or `service_account`.
    #[param(pattern = "^(user|service_account)$")]
    pub(crate) owner_kind: Option<String>,
    /// Only keys of this organization's members and service accounts.
    pub(crate) org: Option<String>,
    /// Only keys of this team's members and service accounts (needs `org` when you
    /// belong to several organizations).
    pub(crate) team: Option<String>,
    /// Case-insensitive part of the key's name.
    pub(crate) name_contains: Option<String>,
    /// RFC 3339 time: keys last used before it.
    pub(crate) last_used_before: Option<String>,
    /// RFC 3339 time: keys last used after it.
    pub(crate) last_used_after: Option<String>,
    /// Keys that expire within this many days (and have not expired yet): 0 to 36500.
    #[param(maximum = 36500)]
    pub(crate) expiring_within_days: Option<u32>,
}

impl ApiKeyView {
    pub(crate) fn new(key: StoredKey, state: &AppState) -> Self {
        let last_used = keys::last_used(&state.app, &key);
        let last_write = keys::last_write(&state.app, &key);
        let status = KeyStatus::of(&key, state.now());
        Self {
            key_id: key.key_id.to_string(),
            display: key.display,
            format: key.format.as_str(),
            name: key.name,
            owner: OwnerView::of(key.owner),
            created_by: key.created_by.map(OwnerView::of),
            created_at: rfc3339(key.created_at),
            last_used_at: last_used.map(rfc3339),
            last_write_at: last_write.map(rfc3339),
            expires_at: key.expires_at.map(rfc3339),
            scope: key.scope.as_str(),
            allowed_networks: networks_view(key.allowed_networks.as_deref()),
            requests_per_minute: key.requests_per_minute,
            status,
            rotated_from: key.rotated_from,
            rotated_to: key.rotated_to,
            kind: if key.federated_issuer.is_some() {
                "federated_session"
            } else {
                "api_key"
            },
            federated_issuer: key.federated_issuer,
            sources: None,
        }
    }

    /// With the key's recent sources.
    pub(crate) fn with_sources(mut self, sources: Vec<keysmith_store::KeySource>) -> Self {
        self.sources = Some(
            sources
                .into_iter()
                .map(|s| SourceView {
                    address: s.address,
                    user_agent: s.user_agent,
                    first_seen: rfc3339(s.first_seen),
                    last_seen: rfc3339(s.last_seen),
                })
                .collect(),
        );
        self
    }
}

impl OwnerView {
    fn of(user: keysmith_store::UserRef) -> Self {
        Self {
            kind: user.kind,
            username: user.username,
        }
    }
}

fn parse_name(raw: &str) -> Result<KeyName, ApiError> {
    KeyName::parse(raw).map_err(|e| ApiError::InvalidName(e.to_string()))
}

fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    let t = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| ApiError::InvalidQuery(format!("{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::InvalidQuery(format!("{name} is out of range")))
}

/// Turns query parameters into the application's list request.
fn list_request(params: ListParams) -> Result<keys::ListRequest, ApiError> {
    let sort = match params.sort.as_deref() {
        None | Some("created") => KeySort::Created,
        Some("last_used") => KeySort::LastUsed,
        Some(_) => return Err(ApiError::InvalidQuery("sort must be `created` or `last_used`".into())),
    };
    let owner_kind = match &params.owner_kind {
        None => None,
        Some(kind) => Some(
            PrincipalKind::parse(kind)
                .ok_or_else(|| ApiError::InvalidQuery("owner_kind must be `user` or `service_account`".into()))?,
        ),
    };
    let time = |name: &str, value: &Option<String>| value.as_deref().map(|v| parse_time(name, v)).transpose();
    Ok(keys::ListRequest {
        filter: keys::ListFilter {
            owner: params.owner,
            owner_kind,
            org: params.org,
            team: params.team,
            name_contains: params.name_contains,
            last_used_before: time("last_used_before", &params.last_used_before)?,
            last_used_after: time("last_used_after", &params.last_used_after)?,
            expiring_within_days: params.expiring_within_days,
        },
        sort,
        cursor: params.cursor,
        limit: params.limit,
    })
}

/// Create a key for yourself, or for a service account you administer. The response
/// is the only time the full key is shown.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKey, description = "Created; `key` is shown only in this response"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`key_creation_disabled`, `forbidden`, `insufficient_scope` or `csrf_token_invalid`"),
        (status = 404, body = ErrorBody, description = "`owner_not_found`"), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let format = match request.format.as_deref() {
        None | Some("v1") => KeyFormat::V1,
        Some("legacy") => KeyFormat::Legacy,
        Some(other) => {
            return Err(ApiError::InvalidValue(format!(
                "format must be `v1` or `legacy`, not `{other}`"
            )));
        }
    };
    let now = state.now();
    let expires_at = match (&request.expires_at, request.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidValue(
                "give `expires_at` or `expires_in_days`, not both".into(),
            ));
        }
        (Some(at), None) => Some(parse_time("expires_at", at).map_err(|e| ApiError::InvalidValue(e.to_string()))?),
        (None, Some(days)) => Some(keys::expiry_in_days(now, days)?),
        (None, None) => None,
    };
    let request = NewKeyRequest {
        name: parse_name(&request.name)?,
        owner: request.owner,
        format,
        expires_at,
        scope: parse_scope(request.scope.as_deref())?,
        allowed_networks: match &request.allowed_networks {
            Some(items) => keysmith_app::input::networks("allowed_networks", items)?,
            None => None,
        },
        requests_per_minute: request.requests_per_minute,
    };
    let minted = keys::mint(&state.app, &Acting::new(&caller, &source, now), request).await?;
    Ok(created(minted))
}

/// The answer that shows a new key, once.
fn created(
    Minted {
        key,
        generated,
        previous_expires_at,
    }: Minted,
) -> Response {
    let body = CreatedApiKey {
        key: generated.plaintext.expose().to_owned(),
        key_id: key.key_id.to_string(),
        format: key.format.as_str(),
        name: key.name,
        owner: OwnerView::of(key.owner),
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
        scope: key.scope.as_str(),
        allowed_networks: networks_view(key.allowed_networks.as_deref()),
        requests_per_minute: key.requests_per_minute,
        rotated_from: key.rotated_from,
        previous_expires_at: previous_expires_at.map(rfc3339),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Rotate a key: a new key for the same owner with the same name, shown once in this
/// answer; the old key keeps working for the grace period, then stops by itself.
/// Watch both keys' `last_used_at` and `sources`; finish the rotation by deleting the
/// old key.
#[utoipa::path(post, path = "/api/v1/api-keys/{key_id}/rotate", tag = "api-keys", request_body = RotateApiKeyRequest,
    params(("key_id" = String, Path, description = "The key to rotate out")),
    responses(
        (status = 201, body = CreatedApiKey, description = "The new key, shown only in this response"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`rotation_in_progress`"), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn rotate_api_key(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(request): ApiJson<RotateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let grace = match request.grace.as_deref() {
        None => Grace::default(),
        Some(raw) => Grace::parse(raw)?,
    };
    let acting = Acting::new(&caller, &source, state.now());
    Ok(created(keys::rotate(&state.app, &acting, &key_id, grace).await?))
}

/// Revoke a key that was exposed: whoever holds a key may revoke it, without signing
/// in. The answer is the same whether or not the key existed, so this cannot be used
/// to test keys. Every report counts against the client's address: after
/// `exposure_reports_per_minute` (30) in a minute it gets 429 until the minute ends.
#[utoipa::path(post, path = "/api/v1/api-keys/revoke-exposed", tag = "api-keys", request_body = RevokeExposedRequest,
    responses(
        (status = 202, body = RevokeExposedResponse, description = "Received; a genuine key no longer works"),
        (status = 400, body = ErrorBody), JsonBodyRejections,
        (status = 429, body = ErrorBody,
            description = "`rate_limited`: too many reports from this address in the last minute; retry after Retry-After",
            headers(("Retry-After" = u64, description = "Seconds until the address may report again"))),
    ))]
pub async fn revoke_exposed(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    request: Result<ApiJson<RevokeExposedRequest>, ApiError>,
) -> Result<Response, ApiError> {
    // Counted before the body is judged: every request from the address counts.
    keysmith_app::leaks::count_report(&state.app, &source)?;
    let ApiJson(request) = request?;
    let key = SecretString::new(request.key);
    keysmith_app::leaks::revoke(&state.app, key.expose(), &keysmith_app::leaks::Report::Holder, &source).await?;
    let body = RevokeExposedResponse { status: "received" };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// List the keys you may see: your own; as a team admin, also those of your teams'
/// service accounts; as an org admin, every key of the organization.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ListParams),
    responses((status = 200, body = ApiKeyList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`org_not_found` or `team_not_found` for a filter")),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    RawQuery(query): RawQuery,
) -> Result<Json<ApiKeyList>, ApiError> {
    let params: ListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(format!("bad query parameters: {e}")))?;
    let page = keys::list(&state.app, &caller, &list_request(params)?, state.now()).await?;
    let items = page.items.into_iter().map(|k| ApiKeyView::new(k, &state)).collect();
    Ok(Json(ApiKeyList {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One key you may see.
#[utoipa::path(get, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "The key ID")),
    responses((status = 200, body = ApiKeyView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_api_key(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let (key, sources) = keys::get(&state.app, &caller, &key_id).await?;
    Ok(Json(ApiKeyView::new(key, &state).with_sources(sources)))
}

/// Rename a key: your own, or one of a service account you administer.
#[utoipa::path(patch, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", request_body = UpdateApiKeyRequest,
    params(("key_id" = String, Path, description = "The key ID")),
    responses(
        (status = 200, body = ApiKeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_api_key(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateApiKeyRequest>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let name = parse_name(&request.name)?;
    let acting = Acting::new(&caller, &source, state.now());
    let renamed = keys::rename(&state.app, &acting, &key_id, name).await?;
    Ok(Json(ApiKeyView::new(renamed, &state)))
}

/// Delete a key you may delete. It stops working with the very next request.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "The key ID")),
    responses(
        (status = 204, description = "Deleted; the key no longer authenticates"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    keys::delete(&state.app, &Acting::new(&caller, &source, state.now()), &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete several keys at once. Each is allowed or refused by the same rules as a
/// single delete; the answer has one result per key.
#[utoipa::path(post, path = "/api/v1/api-keys/bulk-delete", tag = "api-keys", request_body = BulkDeleteRequest,
    responses(
        (status = 200, body = BulkDeleteResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn bulk_delete_api_keys(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiJson(request): ApiJson<BulkDeleteRequest>,
) -> Result<Json<BulkDeleteResponse>, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    let outcomes = keys::delete_many(&state.app, &acting, &request.key_ids).await?;
    let results = request
        .key_ids
        .into_iter()
        .zip(outcomes)
        .map(|(key_id, outcome)| BulkDeleteResult {
            key_id,
            status: outcome.as_str(),
        })
        .collect();
    Ok(Json(BulkDeleteResponse { results }))
}
