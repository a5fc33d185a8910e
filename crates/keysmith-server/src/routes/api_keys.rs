//! API keys of users and service accounts: create (the full key shown once), list by
//! role, read, rename, delete, bulk delete.
//!
//! Who may do what is decided in `keysmith_core::policy`, through `crate::access`. A
//! key the caller may not see answers 404, exactly like a key that does not exist, so
//! key IDs cannot be probed (DESIGN §3).

use crate::access::{self, Caller};
use crate::audit::AuditContext;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::lifecycle::{MintRequest, Minted, delete_key, mint_key};
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keysmith_core::policy::KeyAction;
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyId, KeyName};
use keysmith_store::{KeyCursor, KeyFilter, KeyFormat, KeyListQuery, KeySort, StoredKey, Visibility};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
const MAX_BULK: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// A descriptive name: 1 to 128 characters, such as where the key is used.
    pub(crate) name: String,
    /// The service account (or yourself) who will own the key, by name; default: you.
    #[serde(default)]
    pub(crate) owner: Option<String>,
    /// `v1` (86 characters, the default) or `legacy` (40 hex characters, for wandb SDKs
    /// older than 0.22.3; the organization must allow it).
    #[serde(default)]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// 1 to 100 key IDs.
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
    /// The new name: 1 to 128 characters.
    pub(crate) name: String,
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
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page (with the same `sort`).
    pub(crate) cursor: Option<String>,
    /// `created` (newest first, the default) or `last_used` (most recent first).
    pub(crate) sort: Option<String>,
    /// Only keys of this user or service account (by name).
    pub(crate) owner: Option<String>,
    /// `user` or `service_account`.
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
}

impl ApiKeyView {
    fn new(key: StoredKey, state: &AppState) -> Self {
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
        }
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
        (status = 404, body = ErrorBody, description = "`owner_not_found`"),
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
    let mint = MintRequest {
        name: parse_name(&request.name)?,
        owner: request.owner.as_deref(),
        format,
        source,
    };
    let Minted { key, generated } = mint_key(&state, &caller, mint).await?;
    let body = CreatedApiKey {
        key: generated.plaintext.expose().to_owned(),
        key_id: key.key_id.to_string(),
        format: key.format.as_str(),
        name: key.name,
        owner: OwnerView::of(key.owner),
        created_at: rfc3339(key.created_at),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
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
    Path(key_id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = access::authorized_key(&state, &caller, &key_id, KeyAction::Read).await?;
    Ok(Json(ApiKeyView::new(key, &state)))
}

/// Rename a key: your own, or one of a service account you administer.
#[utoipa::path(patch, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", request_body = UpdateApiKeyRequest,
    params(("key_id" = String, Path, description = "The key ID")),
    responses(
        (status = 200, body = ApiKeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_api_key(
    State(state): State<AppState>,
    caller: Caller,
    SourceAddr(source): SourceAddr,
    Path(key_id): Path<String>,
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
    Path(key_id): Path<String>,
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
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
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
