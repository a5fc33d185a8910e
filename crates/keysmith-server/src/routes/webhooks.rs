//! Webhook endpoints of an organization (org admins): register, list, delete, rotate
//! the signing secret, and read the delivery log. A signing secret is shown once: when
//! the endpoint is created, and when its secret is rotated.

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keysmith_app::Acting;
use keysmith_app::webhooks::{self, NewEndpoint, WithSecret, previous_secret_until};
use keysmith_store::{Delivery, Webhook};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where to POST events: an `https://` (or `http://`) URL.
    pub(crate) url: String,
    /// Which events to send (default: all): `api_key.created`, `api_key.deleted`,
    /// `api_key.rotated`, `api_key.expiring` (at each lead time before expiry),
    /// `api_key.unused` (idle for the organization's `unused_key_notice_days`),
    /// `api_key.exposed`. The former `api_key.expiring_soon` means `api_key.expiring`.
    #[serde(default)]
    pub(crate) events: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub(crate) id: i64,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) description: String,
    pub(crate) created_at: String,
    /// When the signing secret was last rotated (null: never).
    pub(crate) secret_rotated_at: Option<String>,
    /// Until when deliveries also carry a signature made with the secret before the
    /// last rotation (null: they carry the current secret's alone).
    pub(crate) previous_secret_until: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub(crate) webhook: WebhookView,
    /// The signing secret (`whsec_…`), shown only in this answer: verify each
    /// delivery's `webhook-signature` with it.
    pub(crate) secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub(crate) items: Vec<WebhookView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub(crate) id: i64,
    /// The `webhook-id` header of every attempt.
    pub(crate) message_id: String,
    pub(crate) event_type: String,
    /// `pending` (will be retried), `delivered` or `failed` (gave up).
    pub(crate) status: &'static str,
    pub(crate) attempts: i64,
    pub(crate) last_status: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_attempt_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) delivered_at: Option<String>,
    pub(crate) payload: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub(crate) items: Vec<DeliveryView>,
}

pub(crate) fn view(w: Webhook, now: i64) -> WebhookView {
    let previous_secret_until = previous_secret_until(&w, now).map(rfc3339);
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        description: w.description,
        created_at: rfc3339(w.created_at),
        secret_rotated_at: w.secret_rotated_at.map(rfc3339),
        previous_secret_until,
    }
}

/// An answer that holds a signing secret: never cached.
fn with_secret(status: StatusCode, created: WithSecret, now: i64) -> Response {
    let body = CreatedWebhook {
        webhook: view(created.webhook, now),
        secret: created.secret.expose().to_owned(),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        message_id: d.message_id,
        event_type: d.event_type,
        status: d.status.as_str(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        next_attempt_at: (d.status == keysmith_store::DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_at)),
        created_at: rfc3339(d.created_at),
        delivered_at: d.delivered_at.map(rfc3339),
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
    }
}

/// The organization's webhook endpoints.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<WebhookList>, ApiError> {
    let now = state.now();
    let items = webhooks::list(&state.app, &caller, &org)
        .await?
        .into_iter()
        .map(|w| view(w, now))
        .collect();
    Ok(Json(WebhookList { items }))
}

/// Register an endpoint for key events; the answer holds its signing secret, once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), JsonBodyRejections),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateWebhookRequest>,
) -> Result<Response, ApiError> {
    let endpoint = NewEndpoint {
        url: request.url,
        events: request.events,
        description: request.description,
    };
    let acting = Acting::new(&caller, &source, state.now());
    let created = webhooks::create(&state.app, &acting, &org, endpoint).await?;
    Ok(with_secret(StatusCode::CREATED, created, acting.now))
}

/// Rotate an endpoint's signing secret; the answer holds the new secret, once.
///
/// For 24 hours, deliveries carry two signatures, one made with the new secret and one
/// with the previous secret (`v1,<new> v1,<previous>`), so the receiver can switch
/// without missing an event; then the new one alone. Rotating again within those 24
/// hours retires the secret before the previous one at once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("org" = String, Path, description = "Organization name"), ("id" = i64, Path, description = "Webhook ID")),
    responses((status = 200, body = CreatedWebhook), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<Response, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    let rotated = webhooks::rotate_secret(&state.app, &acting, &org, id).await?;
    Ok(with_secret(StatusCode::OK, rotated, acting.now))
}

/// Remove an endpoint; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/webhooks/{id}", tag = "webhooks",
    params(("org" = String, Path, description = "Organization name"), ("id" = i64, Path, description = "Webhook ID")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    webhooks::delete(&state.app, &acting, &org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log of an endpoint, newest first (the last 100).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("org" = String, Path, description = "Organization name"), ("id" = i64, Path, description = "Webhook ID")),
    responses((status = 200, body = DeliveryList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<Json<DeliveryList>, ApiError> {
    let items = webhooks::deliveries(&state.app, &caller, &org, id)
        .await?
        .into_iter()
        .map(delivery_view)
        .collect();
    Ok(Json(DeliveryList { items }))
}
