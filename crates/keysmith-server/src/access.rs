//! Applying the permission table (`keysmith_core::policy`) to requests: who the caller
//! is with their roles, and the lookups that answer "not found" rather than "forbidden"
//! wherever a refusal would reveal that something exists (docs/DESIGN.md §3).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keysmith_core::policy::{self, KeyAction, Owner, Roles};
use keysmith_core::{KeyId, OrgId};
use keysmith_store::{Org, StoredKey, Team};

/// The authenticated caller with their administrative roles.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub roles: Roles,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        Caller::with_roles(state, principal).await
    }
}

impl Caller {
    /// The caller, with their roles loaded.
    pub async fn with_roles(state: &AppState, principal: Principal) -> Result<Self, ApiError> {
        let roles = state.store.roles(principal.user.id).await?;
        Ok(Caller { principal, roles })
    }

    pub fn id(&self) -> keysmith_core::UserId {
        self.principal.user.id
    }

    pub fn require_org_admin(&self, org: &Org) -> Result<(), ApiError> {
        if policy::may_administer_org(&self.roles, org.id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only organization admins may do this"))
        }
    }
}

/// An organization the caller belongs to; any other answers 404, whether or not it
/// exists.
pub async fn member_org(state: &AppState, caller: &Caller, name: &str) -> Result<Org, ApiError> {
    let org = state.store.find_org(name).await?.ok_or(ApiError::OrgNotFound)?;
    let member = state
        .store
        .memberships(caller.id())
        .await?
        .iter()
        .any(|m| m.org.id == org.id);
    if member { Ok(org) } else { Err(ApiError::OrgNotFound) }
}

/// A team of `org`.
pub async fn org_team(state: &AppState, org: &Org, name: &str) -> Result<Team, ApiError> {
    state.store.find_team(org.id, name).await?.ok_or(ApiError::TeamNotFound)
}

/// How the rules see the owner of a principal's keys, from the caller's seat.
pub async fn owner_as_seen_by(
    state: &AppState,
    caller: &Caller,
    owner: keysmith_core::UserId,
) -> Result<Option<Owner>, ApiError> {
    Ok(state
        .store
        .owner_scope(owner)
        .await?
        .map(|scope| scope.as_owner(owner == caller.id())))
}

/// The key with this ID if the caller may do `action` to it. A key the caller may not
/// even read answers 404, exactly like a key that does not exist.
pub async fn authorized_key(
    state: &AppState,
    caller: &Caller,
    key_id: &str,
    action: KeyAction,
) -> Result<StoredKey, ApiError> {
    let key_id = KeyId::parse(key_id).map_err(|_| ApiError::ApiKeyNotFound)?;
    let key = state.store.get_key(&key_id).await?.ok_or(ApiError::ApiKeyNotFound)?;
    let owner = owner_as_seen_by(state, caller, key.owner.id)
        .await?
        .ok_or(ApiError::ApiKeyNotFound)?;
    if !policy::may_act_on_key(&caller.roles, KeyAction::Read, &owner) {
        return Err(ApiError::ApiKeyNotFound);
    }
    if !policy::may_act_on_key(&caller.roles, action, &owner) {
        return Err(ApiError::Forbidden("you may see this key but not change it"));
    }
    Ok(key)
}

/// The organizations whose audit logs record an event about `owner`'s keys.
pub async fn audit_orgs(state: &AppState, owner: keysmith_core::UserId) -> Result<Vec<OrgId>, ApiError> {
    Ok(state
        .store
        .owner_scope(owner)
        .await?
        .map(|s| s.orgs())
        .unwrap_or_default())
}
