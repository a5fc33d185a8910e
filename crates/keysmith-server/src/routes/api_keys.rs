//! Personal API keys: create (the full key shown once), list, read, rename, delete.
//!
//! A key that is not the caller's answers 404, exactly like a key that does not
//! exist, so key IDs cannot be probed (DESIGN §3).

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keysmith_core::{KeyId, KeyName, generate_v1};
use keysmith_store::{KeyCursor, KeyFormat, KeyListQuery, NewKey, StoredKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// A descriptive name: 1 to 128 characters, such as where the key is used.
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    /// The new name: 1 to 128 characters.
    name: String,
}

/// The answer to a create: the only response that ever carries the full key.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The full key. Shown exactly once: store it now.
    key: String,
    key_id: String,
    name: String,
    owner: OwnerView,
    created_at: String,
}

/// A key as lists show it: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The public first part of the key, used to refer to it.
    key_id: String,
    /// What to show people: the key ID, or a legacy key's first six characters.
    display: String,
    /// `v1` (86 characters) or `legacy` (40 characters).
    format: &'static str,
    name: String,
    owner: OwnerView,
    created_at: String,
    last_used_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    /// `user` or `service_account`.
    kind: &'static str,
    username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    items: Vec<ApiKeyView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
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
            owner: OwnerView {
                kind: key.owner.kind.as_str(),
                username: key.owner.username,
            },
            created_at: rfc3339(key.created_at),
            last_used_at: last_used.map(rfc3339),
        }
    }
}

fn parse_name(raw: &str) -> Result<KeyName, ApiError> {
    KeyName::parse(raw).map_err(|e| ApiError::InvalidName(e.to_string()))
}

/// The caller's key with this ID, or 404 for anything else.
async fn own_key(
    state: &AppState,
    principal: &Principal,
    key_id: &str,
) -> Result<StoredKey, ApiError> {
    let key_id = KeyId::parse(key_id).map_err(|_| ApiError::ApiKeyNotFound)?;
    match state.store.get_key(&key_id).await? {
        Some(key) if key.owner.id == principal.user.id => Ok(key),
        _ => Err(ApiError::ApiKeyNotFound),
    }
}

fn encode_cursor(key: &StoredKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}.{}", key.created_at, key.key_id))
}

fn decode_cursor(cursor: &str) -> Result<KeyCursor, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ApiError::InvalidCursor)?;
    let (created_at, key_id) = text.split_once('.').ok_or(ApiError::InvalidCursor)?;
    let created_at = created_at.parse().map_err(|_| ApiError::InvalidCursor)?;
    let key_id = KeyId::parse(key_id).map_err(|_| ApiError::InvalidCursor)?;
    Ok(KeyCursor {
        created_at,
        key_id: key_id.to_string(),
    })
}

/// Create a personal API key. The response is the only time the full key is shown.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKey, description = "Created; `key` is shown only in this response"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let name = parse_name(&request.name)?;
    let generated =
        generate_v1(&state.key_prefix).map_err(|e| ApiError::Internal(e.to_string()))?;
    let stored = state
        .store
        .insert_key(NewKey {
            key_id: generated.key_id,
            digest: generated.digest,
            format: KeyFormat::V1,
            display: generated.display,
            name: name.into_string(),
            owner: principal.user.id,
            created_by: Some(principal.user.id),
            created_at: state.now(),
        })
        .await?;
    tracing::info!(key.id = %stored.key_id, user.id = principal.user.id.0, "API key created");
    let body = CreatedApiKey {
        key: generated.plaintext.expose().to_owned(),
        key_id: stored.key_id.to_string(),
        name: stored.name,
        owner: OwnerView {
            kind: stored.owner.kind.as_str(),
            username: stored.owner.username,
        },
        created_at: rfc3339(stored.created_at),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// List the caller's keys, newest first.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ListParams),
    responses((status = 200, body = ApiKeyList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
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
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    // One extra row tells whether another page follows.
    let mut keys = state
        .store
        .list_keys(&KeyListQuery {
            owner: principal.user.id,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    let next_cursor = if more {
        keys.last().map(encode_cursor)
    } else {
        None
    };
    let items = keys
        .into_iter()
        .map(|k| ApiKeyView::new(k, &state))
        .collect();
    Ok(Json(ApiKeyList { items, next_cursor }))
}

/// One of the caller's keys.
#[utoipa::path(get, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "The key ID")),
    responses((status = 200, body = ApiKeyView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn get_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = own_key(&state, &principal, &key_id).await?;
    Ok(Json(ApiKeyView::new(key, &state)))
}

/// Rename one of the caller's keys.
#[utoipa::path(patch, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", request_body = UpdateApiKeyRequest,
    params(("key_id" = String, Path, description = "The key ID")),
    responses(
        (status = 200, body = ApiKeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn update_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
    ApiJson(request): ApiJson<UpdateApiKeyRequest>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = own_key(&state, &principal, &key_id).await?;
    let name = parse_name(&request.name)?;
    let renamed = state
        .store
        .rename_key(&key.key_id, name.as_str())
        .await?
        .ok_or(ApiError::ApiKeyNotFound)?;
    tracing::info!(key.id = %renamed.key_id, user.id = principal.user.id.0, "API key renamed");
    Ok(Json(ApiKeyView::new(renamed, &state)))
}

/// Delete one of the caller's keys. It stops working with the very next request.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "The key ID")),
    responses(
        (status = 204, description = "Deleted; the key no longer authenticates"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = own_key(&state, &principal, &key_id).await?;
    if !state.store.delete_key(&key.key_id).await? {
        return Err(ApiError::ApiKeyNotFound);
    }
    tracing::info!(key.id = %key.key_id, user.id = principal.user.id.0, "API key deleted");
    Ok(StatusCode::NO_CONTENT)
}
