//! The REST door's view of the application's access rules: the [`Authorized`]
//! extractor (who is calling, with their roles) and the lookups of
//! `keysmith_app::access`, answered as [`ApiError`]s (docs/DESIGN.md §3).

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keysmith_core::policy::KeyAction;
use keysmith_core::{OrgId, UserId};
use keysmith_store::{Org, StoredKey};

pub use keysmith_app::Caller;

/// The extractor of an authenticated request with the caller's roles.
#[derive(Debug, Clone)]
pub struct Authorized(pub Caller);

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Self(Caller::load(&state.app, principal).await?))
    }
}

/// An organization the caller belongs to; any other answers 404, whether or not it
/// exists.
pub async fn member_org(state: &AppState, caller: &Caller, name: &str) -> Result<Org, ApiError> {
    Ok(keysmith_app::access::member_org(&state.app, caller, name).await?)
}

/// How the rules see the owner of a principal's keys, from the caller's seat.
pub async fn owner_as_seen_by(
    state: &AppState,
    caller: &Caller,
    owner: UserId,
) -> Result<Option<keysmith_core::policy::Owner>, ApiError> {
    Ok(keysmith_app::access::owner_as_seen_by(&state.app, caller, owner).await?)
}

/// The key with this ID if the caller may do `action` to it. A key the caller may not
/// even read answers 404, exactly like a key that does not exist.
pub async fn authorized_key(
    state: &AppState,
    caller: &Caller,
    key_id: &str,
    action: KeyAction,
) -> Result<StoredKey, ApiError> {
    Ok(keysmith_app::access::authorized_key(&state.app, caller, key_id, action).await?)
}

/// The organizations whose audit logs record an event about `owner`'s keys.
pub async fn audit_orgs(state: &AppState, owner: UserId) -> Result<Vec<OrgId>, ApiError> {
    Ok(keysmith_app::access::audit_orgs(&state.app, owner).await?)
}
