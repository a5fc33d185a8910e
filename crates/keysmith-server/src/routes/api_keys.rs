//! API keys of users and service accounts: create (the full key shown once), list by
//! role, read, rename, delete, bulk delete.
//!
//! Who may do what is decided in `keysmith_core::policy`, through `crate::access`. A
//! key the caller may not see answers 404, exactly like a key that does not exist, so
//! key IDs cannot be probed (docs/DESIGN.md §3).

use crate::access::{self, Caller};
use crate::audit::AuditContext;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::lifecycle::{Grace, MintRequest, Minted, delete_key, mint_key, rotate_key};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keysmith_core::policy::KeyAction;
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyId, KeyName, SecretString};
use keysmith_store::{KeyCursor, KeyFilter, KeyFormat, KeyListQuery, KeySort, StoredKey, Visibility};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
const MAX_BULK: usize = 100;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// The most days `expires_in_days` and `expiring_within_days` take: a hundred years.
const MAX_DAYS: u32 = 36_500;

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
    /// `deleted`, `not_found` (no such key, or not one you may see) or `forbidden`.
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
    /// When the key stops working; null: never.
    pub(crate) expires_at: Option<String>,
    /// `active`, or `expired` (past its expiry or its rotation's grace period).
    pub(crate) status: &'static str,
    /// The key this one replaced in a rotation.
    pub(crate) rotated_from: Option<String>,
    /// The key replacing this one, while a rotation is in progress.
    pub(crate) rotated_to: Option<String>,
    /// The most recent distinct sources (address, user agent): only when one key is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sources: Option<Vec<SourceView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    /// `user` or `service_account`.
    pub(crate) kind: &'static str,
    pub(crate) username: String,
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
        let last_used = match (key.last_used_at, state.usage.pending(&key.key_id)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Self {
            key_id: key.key_id.to_string(),
            display: key.display,
            format: key.format.as_str(),
            name: key.name,
            owner: OwnerView::of(key.owner),
            created_by: key.created_by.map(OwnerView::of),
            created_at: rfc3339(key.created_at),
            last_used_at: last_used.map(rfc3339),
            expires_at: key.expires_at.map(rfc3339),
            status: if key.expires_at.is_some_and(|at| at <= state.now()) {
                "expired"
            } else {
                "active"
            },
            rotated_from: key.rotated_from,
            rotated_to: key.rotated_to,
            sources: None,
        }
    }

    /// With the key's recent sources.
    pub(crate) async fn with_sources(mut self, state: &AppState) -> Result<Self, ApiError> {
        let key_id = KeyId::parse(&self.key_id).map_err(|_| ApiError::ApiKeyNotFound)?;
        let mut sources = state.store.key_sources(&key_id).await?;
        // Uses not yet written count too, so a rotation's old key shows its last use now.
        for (address, user_agent, first, last) in state.usage.pending_sources(&key_id) {
            match sources
                .iter_mut()
                .find(|s| s.address == address && s.user_agent == user_agent)
            {
                Some(s) => {
                    s.first_seen = s.first_seen.min(first);
                    s.last_seen = s.last_seen.max(last);
                }
                None => sources.push(keysmith_store::KeySource {
                    address,
                    user_agent,
                    first_seen: first,
                    last_seen: last,
                }),
            }
        }
        sources.sort_by(|a, b| (b.last_seen, &a.address, &a.user_agent).cmp(&(a.last_seen, &b.address, &b.user_agent)));
        sources.truncate(usize::try_from(keysmith_store::MAX_SOURCES_PER_KEY).unwrap_or(10));
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
        Ok(self)
    }
}

impl OwnerView {
    fn of(user: keysmith_store::UserRef) -> Self {
        Self {
            kind: user.kind.as_str(),
            username: user.username,
        }
    }
}

fn parse_name(raw: &str) -> Result<KeyName, ApiError> {
    KeyName::parse(raw).map_err(|e| ApiError::InvalidName(e.to_string()))
}

fn sort_tag(sort: KeySort) -> char {
    match sort {
        KeySort::Created => 'c',
        KeySort::LastUsed => 'u',
    }
}

fn sort_value(key: &StoredKey, sort: KeySort) -> i64 {
    match sort {
        KeySort::Created => key.created_at,
        KeySort::LastUsed => key.last_used_at.unwrap_or(-1),
    }
}

/// An opaque position: the sort, the last row's sort value and key ID.
fn encode_cursor(key: &StoredKey, sort: KeySort) -> String {
    let text = format!("{}.{}.{}", sort_tag(sort), sort_value(key, sort), key.key_id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str, sort: KeySort) -> Result<KeyCursor, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ApiError::InvalidCursor)?;
    let mut parts = text.splitn(3, '.');
    let (Some(tag), Some(value), Some(key_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::InvalidCursor);
    };
    if tag.len() != 1 || !tag.starts_with(sort_tag(sort)) {
        return Err(ApiError::InvalidCursor);
    }
    let value = value.parse().map_err(|_| ApiError::InvalidCursor)?;
    let key_id = KeyId::parse(key_id).map_err(|_| ApiError::InvalidCursor)?;
    Ok(KeyCursor {
        value,
        key_id: key_id.to_string(),
    })
}

fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    let t = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| ApiError::InvalidQuery(format!("{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::InvalidQuery(format!("{name} is out of range")))
}

/// Turns query parameters into the store's filter, resolving names within the
/// organizations the caller belongs to.
async fn filter_from(state: &AppState, caller: &Caller, params: &ListParams) -> Result<Option<KeyFilter>, ApiError> {
    if params.expiring_within_days.is_some_and(|d| d > MAX_DAYS) {
        return Err(ApiError::InvalidQuery(format!(
            "expiring_within_days must be at most {MAX_DAYS}"
        )));
    }
    let mut filter = KeyFilter {
        name_contains: params.name_contains.clone().filter(|s| !s.is_empty()),
        last_used_before: params
            .last_used_before
            .as_deref()
            .map(|v| parse_time("last_used_before", v))
            .transpose()?,
        last_used_after: params
            .last_used_after
            .as_deref()
            .map(|v| parse_time("last_used_after", v))
            .transpose()?,
        expires_after: params.expiring_within_days.map(|_| state.now()),
        expires_before: params.expiring_within_days.map(|d| state.now() + i64::from(d) * DAY_MS),
        ..KeyFilter::default()
    };
    if let Some(kind) = &params.owner_kind {
        filter.owner_kind = Some(
            PrincipalKind::parse(kind)
                .ok_or_else(|| ApiError::InvalidQuery("owner_kind must be `user` or `service_account`".into()))?,
        );
    }
    if let Some(owner) = &params.owner {
        // An unknown name lists nothing, like a name whose keys the caller may not see.
        match state.store.find_user_by_username(owner).await? {
            Some(user) => filter.owner = Some(user.id),
            None => return Ok(None),
        }
    }
    let org = match &params.org {
        Some(name) => Some(access::member_org(state, caller, name).await?),
        None => None,
    };
    filter.org = org.as_ref().map(|o| o.id);
    if let Some(team) = &params.team {
        let org = match org {
            Some(org) => org,
            None => {
                let mut orgs = state.store.memberships(caller.id()).await?;
                if orgs.len() != 1 {
                    return Err(ApiError::InvalidQuery(
                        "give `org` with `team`: you belong to several organizations".into(),
                    ));
                }
                orgs.remove(0).org
            }
        };
        filter.team = Some(access::org_team(state, &org, team).await?.id);
    }
    Ok(Some(filter))
}

/// Create a key for yourself, or for a service account you administer. The response
/// is the only time the full key is shown.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKey, description = "Created; `key` is shown only in this response"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`key_creation_disabled`, `forbidden` or `csrf_token_invalid`"),
        (status = 404, body = ErrorBody, description = "`owner_not_found`"), JsonBodyRejections,
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
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
    let expires_at = match (&request.expires_at, request.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidValue(
                "give `expires_at` or `expires_in_days`, not both".into(),
            ));
        }
        (Some(at), None) => Some(parse_time("expires_at", at).map_err(|e| ApiError::InvalidValue(e.to_string()))?),
        (None, Some(0)) => return Err(ApiError::InvalidValue("expires_in_days must be at least 1".into())),
        (None, Some(days)) if days > MAX_DAYS => {
            return Err(ApiError::InvalidValue(format!(
                "expires_in_days must be at most {MAX_DAYS}"
            )));
        }
        (None, Some(days)) => Some(state.now() + i64::from(days) * DAY_MS),
        (None, None) => None,
    };
    let mint = MintRequest {
        name: parse_name(&request.name)?,
        owner: request.owner.as_deref(),
        format,
        source,
        expires_at,
    };
    let minted = mint_key(&state, &caller, mint).await?;
    Ok(created(minted, None))
}

/// The answer that shows a new key, once.
fn created(Minted { key, generated }: Minted, previous_expires_at: Option<i64>) -> Response {
    let body = CreatedApiKey {
        key: generated.plaintext.expose().to_owned(),
        key_id: key.key_id.to_string(),
        format: key.format.as_str(),
        name: key.name,
        owner: OwnerView::of(key.owner),
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
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
    caller: Caller,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(request): ApiJson<RotateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let grace = match request.grace.as_deref() {
        None => Grace::Hours(24),
        Some(raw) => Grace::parse(raw).ok_or_else(|| {
            ApiError::InvalidValue("grace must be `now`, `1h`, `24h`, `7d` or `until_deleted`".into())
        })?,
    };
    let old = access::authorized_key(&state, &caller, &key_id, KeyAction::Delete).await?;
    let minted = rotate_key(&state, &caller, &old, grace, source).await?;
    let previous = state.store.get_key(&old.key_id).await?.and_then(|k| k.expires_at);
    Ok(created(minted, previous))
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
    crate::leak::count_report(&state, &source)?;
    let ApiJson(request) = request?;
    let key = SecretString::new(request.key);
    crate::leak::revoke(&state, key.expose(), &crate::leak::Report::Holder, &source).await?;
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
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ApiKeyList>, ApiError> {
    let params: ListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(format!("bad query parameters: {e}")))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let sort = match params.sort.as_deref() {
        None | Some("created") => KeySort::Created,
        Some("last_used") => KeySort::LastUsed,
        Some(_) => return Err(ApiError::InvalidQuery("sort must be `created` or `last_used`".into())),
    };
    let after = params.cursor.as_deref().map(|c| decode_cursor(c, sort)).transpose()?;
    let Some(filter) = filter_from(&state, &caller, &params).await? else {
        return Ok(Json(ApiKeyList {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    if sort == KeySort::LastUsed || filter.last_used_before.is_some() || filter.last_used_after.is_some() {
        // Sorting and filtering by last use happen in the database: write the times
        // still held in memory first, so the order matches what the rows show.
        state.usage.flush(state.store.as_ref()).await?;
    }
    let visibility = Visibility {
        caller: Some(caller.id()),
        admin_orgs: caller.roles.admin_of_orgs.iter().copied().collect(),
        admin_teams: caller.roles.admin_of_teams.iter().copied().collect(),
    };
    // One extra row tells whether another page follows.
    let mut keys = state
        .store
        .list_keys(&KeyListQuery {
            visibility,
            filter,
            sort,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    let next_cursor = if more {
        keys.last().map(|k| encode_cursor(k, sort))
    } else {
        None
    };
    let items = keys.into_iter().map(|k| ApiKeyView::new(k, &state)).collect();
    Ok(Json(ApiKeyList { items, next_cursor }))
}

/// One key you may see.
#[utoipa::path(get, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "The key ID")),
    responses((status = 200, body = ApiKeyView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = access::authorized_key(&state, &caller, &key_id, KeyAction::Read).await?;
    Ok(Json(ApiKeyView::new(key, &state).with_sources(&state).await?))
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
    caller: Caller,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateApiKeyRequest>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = access::authorized_key(&state, &caller, &key_id, KeyAction::Rename).await?;
    let name = parse_name(&request.name)?;
    let audit = AuditContext::new(&caller, source, state.now()).entries(
        &access::audit_orgs(&state, key.owner.id).await?,
        "api_key.renamed",
        "api_key",
        key.key_id.as_str(),
        Some(serde_json::json!({ "from": key.name, "to": name.as_str() })),
    );
    let renamed = state
        .store
        .rename_key(&key.key_id, name.as_str(), &audit)
        .await?
        .ok_or(ApiError::ApiKeyNotFound)?;
    tracing::info!(key.id = %renamed.key_id, user.id = caller.id().0, "API key renamed");
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
    caller: Caller,
    SourceAddr(source): SourceAddr,
    ApiPath(key_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let key = access::authorized_key(&state, &caller, &key_id, KeyAction::Delete).await?;
    delete_key(&state, &caller, &AuditContext::new(&caller, source, state.now()), &key).await?;
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
    caller: Caller,
    SourceAddr(source): SourceAddr,
    ApiJson(request): ApiJson<BulkDeleteRequest>,
) -> Result<Json<BulkDeleteResponse>, ApiError> {
    if request.key_ids.is_empty() || request.key_ids.len() > MAX_BULK {
        return Err(ApiError::InvalidValue(format!(
            "key_ids must hold 1 to {MAX_BULK} key IDs"
        )));
    }
    let audit = AuditContext::new(&caller, source, state.now());
    let mut results = Vec::with_capacity(request.key_ids.len());
    for key_id in request.key_ids {
        let status = match access::authorized_key(&state, &caller, &key_id, KeyAction::Delete).await {
            Ok(key) => match delete_key(&state, &caller, &audit, &key).await {
                Ok(()) => "deleted",
                Err(ApiError::ApiKeyNotFound) => "not_found",
                Err(other) => return Err(other),
            },
            Err(ApiError::ApiKeyNotFound) => "not_found",
            Err(ApiError::Forbidden(_)) => "forbidden",
            Err(other) => return Err(other),
        };
        results.push(BulkDeleteResult { key_id, status });
    }
    Ok(Json(BulkDeleteResponse { results }))
}
