//! Applying the permission table (`keysmith_core::policy`) to the store's records: the
//! lookups that answer "not found" rather than "forbidden" wherever a refusal would
//! reveal that something exists (docs/DESIGN.md §3).

use crate::App;
use crate::caller::Caller;
use crate::error::{AppError, Missing, Result};
use keysmith_core::policy::{self, KeyAction, Owner};
use keysmith_core::{KeyId, OrgId, UserId};
use keysmith_store::{Org, StoredKey, Team};

/// An organization the caller belongs to; any other answers "not found", whether or
/// not it exists.
pub async fn member_org(app: &App, caller: &Caller, name: &str) -> Result<Org> {
    let org = app
        .store
        .find_org(name)
        .await?
        .ok_or(AppError::NotFound(Missing::Org))?;
    let member = app
        .store
        .memberships(caller.id())
        .await?
        .iter()
        .any(|m| m.org.id == org.id);
    if member {
        Ok(org)
    } else {
        Err(AppError::NotFound(Missing::Org))
    }
}

/// A team of `org`.
pub async fn org_team(app: &App, org: &Org, name: &str) -> Result<Team> {
    app.store
        .find_team(org.id, name)
        .await?
        .ok_or(AppError::NotFound(Missing::Team))
}

/// How the rules see the owner of a principal's keys, from the caller's seat.
pub async fn owner_as_seen_by(app: &App, caller: &Caller, owner: UserId) -> Result<Option<Owner>> {
    Ok(app
        .store
        .owner_scope(owner)
        .await?
        .map(|scope| scope.as_owner(owner == caller.id())))
}

/// The key with this ID if the caller may do `action` to it. A key the caller may not
/// even read answers "not found", exactly like a key that does not exist.
pub async fn authorized_key(app: &App, caller: &Caller, key_id: &str, action: KeyAction) -> Result<StoredKey> {
    let not_found = AppError::NotFound(Missing::ApiKey);
    let key_id = KeyId::parse(key_id).map_err(|_| not_found.clone())?;
    let key = app.store.get_key(&key_id).await?.ok_or(not_found.clone())?;
    let owner = owner_as_seen_by(app, caller, key.owner.id)
        .await?
        .ok_or(not_found.clone())?;
    if !policy::may_act_on_key(&caller.roles, KeyAction::Read, &owner) {
        return Err(not_found);
    }
    if !policy::may_act_on_key(&caller.roles, action, &owner) {
        return Err(AppError::Forbidden("you may see this key but not change it"));
    }
    Ok(key)
}

/// The organizations whose audit logs record an event about `owner`'s keys.
pub async fn audit_orgs(app: &App, owner: UserId) -> Result<Vec<OrgId>> {
    Ok(app
        .store
        .owner_scope(owner)
        .await?
        .map(|s| s.orgs())
        .unwrap_or_default())
}
