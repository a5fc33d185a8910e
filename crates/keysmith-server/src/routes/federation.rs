//! Identity federation's doors: the JWT issuers an organization trusts (org admins),
//! and `POST /oidc/token`, where the wandb SDK (`WANDB_IDENTITY_TOKEN_FILE`) exchanges
//! a JWT for an access token (RFC 7523). The rules are `keysmith_app::federation`'s.

use crate::access::Authorized;
use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, JsonBodyRejections};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keysmith_app::Acting;
use keysmith_app::federation::{self, GrantError, NewIssuerRequest};
use keysmith_store::JwtIssuer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssuerRequest {
    /// The issuer URL exactly as its JWTs name it in `iss`: `https://…` (`http://` only
    /// on loopback). Its `/.well-known/openid-configuration` must name a `jwks_uri`.
    pub(crate) issuer: String,
    /// The `aud` its JWTs must carry (default: the organization's name).
    #[serde(default)]
    pub(crate) audience: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerView {
    pub(crate) id: i64,
    pub(crate) issuer: String,
    /// The `aud` its JWTs must carry.
    pub(crate) audience: String,
    pub(crate) created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerList {
    pub(crate) items: Vec<IssuerView>,
}

fn view(issuer: JwtIssuer, org: &str) -> IssuerView {
    IssuerView {
        id: issuer.id,
        audience: issuer.audience.unwrap_or_else(|| org.to_owned()),
        issuer: issuer.issuer,
        created_at: rfc3339(issuer.created_at),
    }
}

/// The JWT issuers the organization trusts (org admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/jwt-issuers", tag = "federation",
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 200, body = IssuerList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_issuers(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<IssuerList>, ApiError> {
    let items = federation::list_issuers(&state.app, &caller, &org).await?;
    let items = items.into_iter().map(|i| view(i, &org)).collect();
    Ok(Json(IssuerList { items }))
}

/// Trust a JWT issuer: its discovery document and keys are read now, and JWTs it signs
/// for this organization's audience can then be exchanged at `POST /oidc/token`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/jwt-issuers", tag = "federation", request_body = CreateIssuerRequest,
    params(("org" = String, Path, description = "Organization name")),
    responses((status = 201, body = IssuerView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        JsonBodyRejections),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn create_issuer(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath(org): ApiPath<String>,
    ApiJson(request): ApiJson<CreateIssuerRequest>,
) -> Result<(StatusCode, Json<IssuerView>), ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    let request = NewIssuerRequest {
        issuer: request.issuer,
        audience: request.audience,
    };
    let added = federation::add_issuer(&state.app, &acting, &org, request).await?;
    Ok((StatusCode::CREATED, Json(view(added, &org))))
}

/// Stop trusting an issuer. Access tokens it was exchanged for end at their own expiry
/// (within the hour); delete them from their owner's key list to end them now.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/jwt-issuers/{id}", tag = "federation",
    params(("org" = String, Path, description = "Organization name"), ("id" = i64, Path, description = "Issuer ID")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn delete_issuer(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    SourceAddr(source): SourceAddr,
    ApiPath((org, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let acting = Acting::new(&caller, &source, state.now());
    federation::remove_issuer(&state.app, &acting, &org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The form of RFC 7523 §2.1 (documentation only: the body is read by hand, so that
/// any malformed body gets OAuth's error shape).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`
    grant_type: String,
    /// The JWT, signed by an issuer an organization trusts.
    assertion: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// Use it as a key: `Authorization: Bearer <access_token>` (or Basic `api:<token>`).
    access_token: String,
    token_type: &'static str,
    /// Seconds until it stops working: at most an hour, never past the JWT's `exp`.
    expires_in: i64,
}

/// RFC 6749 §5.2's error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `unsupported_grant_type`, `invalid_grant`, `slow_down` or
    /// `server_error`.
    error: &'static str,
    error_description: &'static str,
}

/// Exchange a JWT for an access token (identity federation, RFC 7523 JWT bearer grant).
///
/// The JWT must be signed by a key of an issuer an organization registered, name that
/// issuer in `iss`, carry the organization's audience in `aud`, be unexpired, and name
/// in `sub` a member's email or an external service account's subject. Every refusal
/// of a JWT is the same `invalid_grant`, and counts against the address's failure
/// limit like a wrong key.
#[utoipa::path(post, path = "/oidc/token", tag = "federation",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenAnswer), (status = 400, body = OAuthError), (status = 429, body = OAuthError),
        (status = 500, body = OAuthError)))]
pub async fn token(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return oauth_error(
            &state,
            GrantError::InvalidRequest("send the grant as application/x-www-form-urlencoded"),
        );
    }
    let (mut grant_type, mut assertion) = (None, None);
    for (name, value) in form_urlencoded::parse(&body) {
        let slot = match &*name {
            "grant_type" => &mut grant_type,
            "assertion" => &mut assertion,
            _ => continue,
        };
        if slot.is_some() {
            // RFC 6749 §3.2: parameters must not be repeated.
            return oauth_error(&state, GrantError::InvalidRequest("a parameter is repeated"));
        }
        *slot = Some(value);
    }
    let now = state.now();
    match federation::exchange(&state.app, grant_type.as_deref(), assertion.as_deref(), &source, now).await {
        Ok(grant) => {
            let answer = TokenAnswer {
                access_token: grant.access_token.expose().to_owned(),
                token_type: "Bearer",
                expires_in: grant.expires_in,
            };
            state.metrics.jwt_grant("issued");
            let mut response = Json(answer).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => oauth_error(&state, e),
    }
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// RFC 6749 §5.2's error answer, counted by its code.
fn oauth_error(state: &AppState, e: GrantError) -> Response {
    let (status, error, error_description) = match &e {
        GrantError::UnsupportedGrantType => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only urn:ietf:params:oauth:grant-type:jwt-bearer is supported",
        ),
        GrantError::InvalidRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", *why),
        GrantError::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the assertion was not accepted",
        ),
        GrantError::SlowDown { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many refused grants from this address; retry later",
        ),
        GrantError::Internal(detail) => {
            tracing::error!(error = %detail, "JWT bearer grant failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
        }
    };
    let mut response = (
        status,
        Json(OAuthError {
            error,
            error_description,
        }),
    )
        .into_response();
    state.metrics.jwt_grant(error);
    no_store(&mut response);
    if let GrantError::SlowDown { retry_after_secs } = e {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}
