//! The one error type of the HTTP layer. Every failure a client sees has the shape
//! `{"error": {"code": "stable_snake_case", "message": "…"}}` (docs/DESIGN.md §4); codes are
//! part of the API and never change meaning.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials were presented.
    #[error("authentication required: send an API key (Authorization: Bearer or Basic, or X-API-Key) or sign in")]
    Unauthenticated,
    /// An API key was presented and is not valid: malformed, unknown, deleted, or its
    /// owner is deactivated. One code for all, so a caller learns nothing about which.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// A genuine key past its expiry (or the end of its rotation's grace period).
    #[error("the API key has expired; create a new one")]
    ApiKeyExpired,
    #[error("the Authorization header is malformed: {0}")]
    MalformedAuthorization(&'static str),
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("your organization signs in through its identity provider: use its button on the sign-in page")]
    SsoRequired,
    #[error("the session has expired or was signed out; sign in again")]
    SessionExpired,
    #[error(
        "missing or wrong X-CSRF-Token header; send the csrf_token from sign-in with every change made with a session cookie"
    )]
    CsrfTokenInvalid,
    #[error("too many failed attempts; retry after {}", seconds(*retry_after_secs))]
    RateLimited { retry_after_secs: u64 },
    #[error("no API key with this ID")]
    ApiKeyNotFound,
    #[error("{0}")]
    ExpiryExceedsPolicy(String),
    #[error("this key is already being rotated; finish that rotation (delete the old key) or delete the new key first")]
    RotationInProgress,
    #[error("secret scanning reports are not accepted here: no GitHub public keys are configured")]
    SecretScanningNotConfigured,
    #[error("the request signature does not verify: {0}")]
    SignatureInvalid(&'static str),
    #[error("no webhook with this ID in the organization")]
    WebhookNotFound,
    #[error("no JWT issuer with this ID in the organization")]
    JwtIssuerNotFound,
    #[error("no single sign-on provider with this ID in the organization")]
    SsoProviderNotFound,
    #[error("no organization with this name")]
    OrgNotFound,
    #[error("no team with this name in the organization")]
    TeamNotFound,
    #[error("no user with this name in the organization")]
    UserNotFound,
    #[error("no service account with this name")]
    ServiceAccountNotFound,
    #[error("no user or service account with this name that you may create keys for")]
    OwnerNotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    /// A genuine key over its own request limit.
    #[error(
        "this API key's request limit ({} a minute) is used up; retry after {}",
        .0.per_minute,
        seconds(.0.reset_secs)
    )]
    KeyRateLimited(keysmith_app::key_limit::Quota),
    /// A genuine key used from an address outside an allowlist that applies to it.
    #[error("this API key may not be used from your network (its own or its organization's allowlist)")]
    IpNotAllowed,
    /// The key's owner may, but the key's scope does not allow it.
    #[error("this API key's scope is {has}; this needs a key with scope {needed} (or wider)")]
    InsufficientScope {
        needed: keysmith_core::KeyScope,
        has: keysmith_core::KeyScope,
    },
    #[error(
        "API key creation has been disabled by your organization administrator. You can still edit, delete, and use existing API keys."
    )]
    KeyCreationDisabled,
    #[error(
        "legacy-format keys are not allowed here; an organization admin can allow them for SDKs older than 0.22.3 (legacy_keys_allowed)"
    )]
    LegacyKeysNotAllowed,
    #[error("this would leave the organization without an active admin; make another member an admin first")]
    LastAdmin,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0}")]
    InvalidValue(String),
    #[error("the invitation is unknown, used or expired; ask an admin for a new one")]
    InvitationInvalid,
    #[error("{0}")]
    InvalidName(String),
    #[error("the cursor is not one this server issued")]
    InvalidCursor,
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("send the request body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("no route for this path")]
    RouteNotFound,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("The server is not ready: {0}")]
    NotReady(&'static str),
    /// Anything the client cannot fix. The detail is logged once, where it is turned
    /// into a response, and never sent.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; match on this, not on the message.
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
}

/// `n` seconds, in words: "1 second", "30 seconds".
fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

/// `text` as a sentence: capitalized, with its full stop. Messages are built from
/// parts (validators' texts, the store's, `Display` of errors that chain), so this is
/// the one place they become sentences for people, in the API and on pages alike.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with(['.', '?', '!']) {
        out.push('.');
    }
    out
}

impl ApiError {
    /// What a person reads: the message as a sentence.
    pub fn message(&self) -> String {
        sentence(&self.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ApiKeyExpired => "api_key_expired",
            Self::MalformedAuthorization(_) => "malformed_authorization",
            Self::InvalidCredentials => "invalid_credentials",
            Self::SsoRequired => "sso_required",
            Self::SessionExpired => "session_expired",
            Self::CsrfTokenInvalid => "csrf_token_invalid",
            Self::RateLimited { .. } => "rate_limited",
            Self::ApiKeyNotFound => "api_key_not_found",
            Self::ExpiryExceedsPolicy(_) => "expiry_exceeds_policy",
            Self::RotationInProgress => "rotation_in_progress",
            Self::SecretScanningNotConfigured => "secret_scanning_not_configured",
            Self::SignatureInvalid(_) => "signature_invalid",
            Self::WebhookNotFound => "webhook_not_found",
            Self::JwtIssuerNotFound => "jwt_issuer_not_found",
            Self::SsoProviderNotFound => "sso_provider_not_found",
            Self::OrgNotFound => "org_not_found",
            Self::TeamNotFound => "team_not_found",
            Self::UserNotFound => "user_not_found",
            Self::ServiceAccountNotFound => "service_account_not_found",
            Self::OwnerNotFound => "owner_not_found",
            Self::Forbidden(_) => "forbidden",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::KeyRateLimited(_) => "key_rate_limited",
            Self::KeyCreationDisabled => "key_creation_disabled",
            Self::LegacyKeysNotAllowed => "legacy_keys_not_allowed",
            Self::LastAdmin => "last_admin",
            Self::AlreadyExists(_) => "already_exists",
            Self::InvalidValue(_) => "invalid_value",
            Self::InvitationInvalid => "invitation_invalid",
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidQuery(_) => "invalid_query",
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotReady(_) => "not_ready",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated
            | Self::InvalidApiKey
            | Self::ApiKeyExpired
            | Self::MalformedAuthorization(_)
            | Self::InvalidCredentials
            | Self::SignatureInvalid(_)
            | Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::ExpiryExceedsPolicy(_) => StatusCode::BAD_REQUEST,
            Self::RotationInProgress => StatusCode::CONFLICT,
            Self::SecretScanningNotConfigured
            | Self::WebhookNotFound
            | Self::JwtIssuerNotFound
            | Self::SsoProviderNotFound => StatusCode::NOT_FOUND,
            Self::CsrfTokenInvalid
            | Self::Forbidden(_)
            | Self::InsufficientScope { .. }
            | Self::IpNotAllowed
            | Self::KeyCreationDisabled
            | Self::LegacyKeysNotAllowed
            | Self::SsoRequired => StatusCode::FORBIDDEN,
            Self::LastAdmin | Self::AlreadyExists(_) => StatusCode::CONFLICT,
            Self::OrgNotFound
            | Self::TeamNotFound
            | Self::UserNotFound
            | Self::ServiceAccountNotFound
            | Self::OwnerNotFound => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } | Self::KeyRateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ApiKeyNotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::InvalidName(_)
            | Self::InvalidCursor
            | Self::InvalidQuery(_)
            | Self::MalformedJson(_)
            | Self::InvalidRequest(_)
            | Self::InvalidValue(_)
            | Self::InvitationInvalid => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The application's errors on the REST wire: one mapping, for every handler.
impl From<keysmith_app::AppError> for ApiError {
    fn from(err: keysmith_app::AppError) -> Self {
        use keysmith_app::{AppError as E, Missing as M};
        match err {
            E::NotFound(M::ApiKey) => Self::ApiKeyNotFound,
            E::NotFound(M::Org) => Self::OrgNotFound,
            E::NotFound(M::Team) => Self::TeamNotFound,
            E::NotFound(M::User) => Self::UserNotFound,
            E::NotFound(M::ServiceAccount) => Self::ServiceAccountNotFound,
            E::NotFound(M::Owner) => Self::OwnerNotFound,
            E::NotFound(M::Webhook) => Self::WebhookNotFound,
            E::NotFound(M::JwtIssuer) => Self::JwtIssuerNotFound,
            E::NotFound(M::SsoProvider) => Self::SsoProviderNotFound,
            E::Forbidden(why) => Self::Forbidden(why),
            E::InsufficientScope { needed, has } => Self::InsufficientScope { needed, has },
            E::InvalidName { message, .. } => Self::InvalidName(message),
            E::Invalid { message, .. } => Self::InvalidValue(message),
            E::InvalidQuery(message) => Self::InvalidQuery(message),
            E::InvalidCursor => Self::InvalidCursor,
            E::AlreadyExists(what) => Self::AlreadyExists(what),
            E::KeyCreationDisabled => Self::KeyCreationDisabled,
            E::LegacyKeysNotAllowed => Self::LegacyKeysNotAllowed,
            E::ExpiryExceedsPolicy(message) => Self::ExpiryExceedsPolicy(message),
            E::RotationInProgress => Self::RotationInProgress,
            E::ApiKeyExpired => Self::ApiKeyExpired,
            E::LastAdmin => Self::LastAdmin,
            E::InvitationInvalid => Self::InvitationInvalid,
            E::InvalidCredentials => Self::InvalidCredentials,
            E::SsoRequired => Self::SsoRequired,
            E::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}

/// The store's errors mean what the application says they mean.
impl From<keysmith_store::StoreError> for ApiError {
    fn from(err: keysmith_store::StoreError) -> Self {
        keysmith_app::AppError::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(detail) = &self {
            // The one place an internal failure is logged; the client gets no detail.
            tracing::error!(error.detail = %detail, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keysmith\""),
            );
        }
        // RFC 6750 §3.1: the scope a bearer token lacks.
        if let Self::InsufficientScope { needed, .. } = self
            && let Ok(v) = HeaderValue::from_str(&format!(
                "Bearer realm=\"keysmith\", error=\"insufficient_scope\", scope=\"{needed}\""
            ))
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Self::KeyRateLimited(quota) = &self {
            rate_limit_headers(headers, quota, true);
        }
        if let Self::RateLimited { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11) of a key with a
/// request limit: the policy (`q` requests in `w` = 60 seconds) and what is left (`r`,
/// and `t` seconds until the next request is back); with `Retry-After` on a refusal.
pub fn rate_limit_headers(headers: &mut axum::http::HeaderMap, quota: &keysmith_app::key_limit::Quota, refused: bool) {
    let policy = format!("\"per-key\";q={};w=60", quota.per_minute);
    let left = format!("\"per-key\";r={};t={}", quota.remaining, quota.reset_secs);
    if let (Ok(policy), Ok(left)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&left)) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), policy);
        headers.insert(HeaderName::from_static("ratelimit"), left);
    }
    if refused {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(quota.reset_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("the invitation is unknown, used or expired; ask an admin for a new one"),
            "The invitation is unknown, used or expired; ask an admin for a new one."
        );
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
        assert_eq!(
            ApiError::RateLimited { retry_after_secs: 1 }.message(),
            "Too many failed attempts; retry after 1 second."
        );
        assert_eq!(
            ApiError::RateLimited { retry_after_secs: 30 }.message(),
            "Too many failed attempts; retry after 30 seconds."
        );
        assert_eq!(ApiError::InvalidApiKey.message(), "The API key is not valid.");
        assert_eq!(
            ApiError::InvalidValue("name must not be empty".into()).message(),
            "Name must not be empty."
        );
    }
}
