//! Who is calling: an API key (as the wandb SDK sends it, or Bearer, or `X-API-Key`)
//! or a session cookie from sign-in.
//!
//! [`Authenticated`] is the extractor every authenticated handler takes. A request that
//! presents a key is judged by the key alone: a bad key is refused even when a valid
//! session cookie rides along, so a client never silently acts as someone else.
//! Requests authenticated by cookie that change state must carry the CSRF token.

pub mod credentials;
pub use keysmith_app::password;
pub mod session;
pub mod source;
pub mod verify;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;

pub use keysmith_app::{AuthMethod, Principal};

/// The extractor of an authenticated request: its [`Principal`].
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(principal) = presented_key_principal(parts, state).await? {
            return Ok(Authenticated(principal));
        }
        let Some(token) = session::token_from_cookies(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        let Some(user) = session::session_user(state, &token).await? else {
            return Err(ApiError::SessionExpired);
        };
        if changes_state(&parts.method) && !session::csrf_matches(&token, &parts.headers) {
            return Err(ApiError::CsrfTokenInvalid);
        }
        Ok(Authenticated(Principal {
            user,
            via: AuthMethod::Session,
        }))
    }
}

/// The principal of the key a request presents, once verified (from the cache when
/// warm, with its use noted); `None` when the request presents no key. A bad key is an
/// error, whatever else the request carries.
pub async fn presented_key_principal(parts: &Parts, state: &AppState) -> Result<Option<Principal>, ApiError> {
    let Some(key) = credentials::presented_key(&parts.headers)? else {
        return Ok(None);
    };
    let address = source::AddressText::of(&state.trusted_proxies, &parts.extensions, &parts.headers);
    let client = verify::Client {
        address: address.as_str(),
        user_agent: source::user_agent(&parts.headers),
        ip: address.ip(),
        write: changes_state(&parts.method),
    };
    let verified = verify::verify_key(state, key.expose(), client).await?;
    Ok(Some(key_principal(verified)))
}

/// The principal a verified key speaks for.
pub fn key_principal(verified: verify::Verified) -> Principal {
    Principal {
        user: verified.owner.user(),
        via: AuthMethod::ApiKey {
            key_id: verified.key_id,
            scope: verified.scope,
        },
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}
