//! Sign-in and sign-out with username (or email) and password.

use crate::auth::password::check_password;
use crate::auth::session;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keysmith_core::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Username or email address.
    username: String,
    #[schema(format = Password)]
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInResponse {
    /// Send as `X-CSRF-Token` with every state-changing request made with the session
    /// cookie.
    csrf_token: String,
    username: String,
    expires_at: String,
}

/// Sign in; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignInRequest,
    responses(
        (status = 200, body = SignInResponse, description = "Signed in; the `keysmith_session` cookie is set"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many failed sign-ins; see Retry-After"), JsonBodyRejections,
    ))]
pub async fn create_session(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    ApiJson(request): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let password = SecretString::new(request.password);
    let user = check_password(&state.app, &request.username, password, &source, state.now()).await?;
    let started = session::start(&state, user.id, state.secure_cookies).await?;
    tracing::info!(user.id = user.id.0, source.address = %source, "signed in");
    let (token, cookie, expires_at) = (started.token, started.cookie, started.expires_at);
    let body = SignInResponse {
        csrf_token: session::csrf_token(&token),
        username: user.username,
        expires_at: rfc3339(expires_at),
    };
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Sign out: ends the session of the cookie sent, if any.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    params(("X-CSRF-Token" = Option<String>, Header,
        description = "The csrf_token from sign-in; needed when the session cookie is sent")),
    responses((status = 204, description = "Signed out; the cookie is cleared"), (status = 403, body = ErrorBody)))]
pub async fn delete_session(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session::token_from_cookies(&headers) {
        if !session::csrf_matches(&token, &headers) {
            return Err(ApiError::CsrfTokenInvalid);
        }
        keysmith_app::sessions::end(&state.app, &session::token_digest(&token)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(state.secure_cookies)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}
