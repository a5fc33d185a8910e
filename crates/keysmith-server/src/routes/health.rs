//! Liveness and readiness, for load balancers and orchestrators.

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The process is up and its database answers and accepts writes. The write check
/// starts a change and rolls it back, so probing writes nothing to disk.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error.detail = %e, "readiness check failed: the database does not answer");
        return Err(ApiError::NotReady("the database does not answer"));
    }
    if let Err(e) = state.store.check_writable().await {
        tracing::warn!(error.detail = %e, "readiness check failed: the database refuses writes");
        return Err(ApiError::NotReady("the database refuses writes"));
    }
    Ok(Json(Health { status: "ready" }))
}
