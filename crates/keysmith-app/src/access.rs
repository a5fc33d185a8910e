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

/// An organization the caller administers: a member who does not is refused; anyone
/// else is told it does not exist.
pub async fn admin_org(app: &App, caller: &Caller, name: &str) -> Result<Org> {
    let org = member_org(app, caller, name).await?;
    caller.require_org_admin(&org)?;
    Ok(org)
}

/// The first organization the caller administers, for W&B's mutations that name none
/// (`createUser`, `createTeam`).
pub async fn first_admin_org(app: &App, caller: &Caller) -> Result<Org> {
    for org in &caller.roles.admin_of_orgs {
        if let Some(org) = app.store.get_org(*org).await? {
            return Ok(org);
        }
    }
    Err(AppError::Forbidden("only organization admins may do this"))
}

/// A team of `org`.
pub async fn org_team(app: &App, org: &Org, name: &str) -> Result<Team> {
    app.store
        .find_team(org.id, name)
        .await?
        .ok_or(AppError::NotFound(Missing::Team))
}

/// The team named `name` in the caller's organizations (only in the one named `org`,
/// when given), for doors that address a team by its name alone (W&B's entities, the
/// web's `/<team>/service-accounts`). With the same name in several organizations, a
/// team the caller administers (as its admin or an org admin) comes first.
pub async fn caller_team(app: &App, caller: &Caller, name: &str, org: Option<&str>) -> Result<(Org, Team)> {
    let mut found = Vec::new();
    for m in app.store.memberships(caller.id()).await? {
        if org.is_some_and(|o| o != m.org.name) {
            continue;
        }
        if let Some(team) = app.store.find_team(m.org.id, name).await? {
            found.push((m.org, team));
        }
    }
    found.sort_by_key(|(o, t)| !policy::may_view_team(&caller.roles, o.id, t.id));
    found.into_iter().next().ok_or(AppError::NotFound(Missing::Team))
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
    caller.require_scope(policy::scope_for_key_action(action, &owner))?;
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
