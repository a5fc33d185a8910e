//! Service accounts: principals without a password that authenticate only with their
//! keys. Team-scoped ones are managed by the team's admins and org admins;
//! organization-scoped ones by org admins only (docs/DESIGN.md §3). Their keys are
//! minted and deleted with [`crate::keys`], naming the account as the owner.

use crate::access::{caller_team, member_org, org_team};
use crate::audit::{Action, AuditContext};
use crate::caller::Caller;
use crate::error::{AppError, Missing, Result};
use crate::{Acting, App};
use keysmith_core::policy::{self, Roles};
use keysmith_core::{EntityName, Networks};
use keysmith_store::{NewServiceAccount, Org, ServiceAccount, Team};

/// The longest description, in characters, once trimmed.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Whether `roles` may manage (see, create keys for, delete) this service account.
fn may_manage(roles: &Roles, account: &ServiceAccount) -> bool {
    match &account.team {
        Some(team) => policy::may_create_team_service_account(roles, account.org, team.id),
        None => policy::may_create_org_service_account(roles, account.org),
    }
}

/// The service accounts the caller manages: all of the organization's for org admins,
/// their teams' for team admins, none for other members; with `team`, only that
/// team's.
pub async fn list(app: &App, caller: &Caller, org: &str, team: Option<&str>) -> Result<Vec<ServiceAccount>> {
    let org = member_org(app, caller, org).await?;
    let team = match team {
        Some(name) => Some(org_team(app, &org, name).await?.id),
        None => None,
    };
    Ok(app
        .store
        .list_service_accounts(org.id, team)
        .await?
        .into_iter()
        .filter(|a| may_manage(&caller.roles, a))
        .collect())
}

/// The team named `name` (in `org`, when given) whose service accounts the caller
/// manages: for pages that address a team by name. A member of the organization who
/// does not manage it is refused; anyone else is told there is no such team.
pub async fn managed_team(app: &App, caller: &Caller, name: &str, org: Option<&str>) -> Result<(Org, Team)> {
    let (org, team) = caller_team(app, caller, name, org).await?;
    if !policy::may_create_team_service_account(&caller.roles, org.id, team.id) {
        return Err(AppError::Forbidden(
            "only the team's admins and organization admins can manage its service accounts",
        ));
    }
    Ok((org, team))
}

/// A service account to create.
#[derive(Debug, Clone)]
pub struct NewServiceAccountRequest {
    pub name: EntityName,
    /// Free text; surrounding white space is dropped, and at most
    /// [`MAX_DESCRIPTION_CHARS`] characters remain, or the account is refused (never
    /// cut short).
    pub description: String,
    /// The team to scope it to; `None` for an organization service account.
    pub team: Option<String>,
    /// For an external service account (identity federation): the JWT `sub` it
    /// accepts from the organization's issuers. `None`: a built-in one.
    pub external_subject: Option<String>,
    /// Where its keys may be used from; `None`: wherever the organization allows.
    pub allowed_networks: Option<Networks>,
}

/// The longest external subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 255;

fn subject(text: Option<&str>) -> Result<Option<String>> {
    let Some(text) = text else { return Ok(None) };
    // Compared exactly with a JWT's `sub`; nothing else is asked of it.
    if text.is_empty() || text.chars().count() > MAX_SUBJECT_CHARS {
        return Err(AppError::invalid(
            "external_subject",
            format!("external_subject: 1 to {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Creates a service account: scoped to a team (its team admins or org admins) or to
/// the whole organization (org admins).
pub async fn create(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    request: NewServiceAccountRequest,
) -> Result<ServiceAccount> {
    acting.administrator()?;
    let caller = acting.caller;
    let org = member_org(app, caller, org).await?;
    let description = request.description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::invalid(
            "description",
            format!("description: at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let external_subject = subject(request.external_subject.as_deref())?;
    let team = match &request.team {
        Some(team) => {
            let team = org_team(app, &org, team).await?;
            if !policy::may_create_team_service_account(&caller.roles, org.id, team.id) {
                return Err(AppError::Forbidden(
                    "only the team's admins and organization admins may create its service accounts",
                ));
            }
            Some(team)
        }
        None => {
            if !policy::may_create_org_service_account(&caller.roles, org.id) {
                return Err(AppError::Forbidden(
                    "only organization admins may create organization service accounts",
                ));
            }
            None
        }
    };
    let mut detail = serde_json::json!({ "team": team.as_ref().map(|t| t.name.as_str()) });
    if let Some(subject) = &external_subject {
        detail["external_subject"] = subject.as_str().into();
    }
    let allowed_networks = request.allowed_networks.map(|n| n.to_string());
    if let Some(networks) = &allowed_networks {
        detail["allowed_networks"] = networks.as_str().into();
    }
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::ServiceAccountCreated,
        request.name.as_str(),
        Some(detail),
    );
    let account = app
        .store
        .create_service_account(
            NewServiceAccount {
                org: org.id,
                team: team.map(|t| t.id),
                username: request.name.to_string(),
                description: description.to_owned(),
                created_by: Some(caller.id()),
                external_subject,
                allowed_networks,
            },
            acting.now,
            &audit,
        )
        .await?;
    tracing::info!(
        user.id = account.user.id.0,
        org.id = org.id.0,
        "service account created"
    );
    Ok(account)
}

/// The service account `name` of `org`, if the caller (with an administering scope)
/// manages it; "not found" otherwise.
async fn managed(app: &App, acting: &Acting<'_>, org: &str, name: &str) -> Result<(Org, ServiceAccount)> {
    acting.administrator()?;
    let not_found = AppError::NotFound(Missing::ServiceAccount);
    let org = member_org(app, acting.caller, org).await?;
    let user = app.store.find_user_by_username(name).await?.ok_or(not_found.clone())?;
    let account = app.store.get_service_account(user.id).await?.ok_or(not_found.clone())?;
    if account.org != org.id || !may_manage(&acting.caller.roles, &account) {
        return Err(not_found);
    }
    Ok((org, account))
}

/// Deletes a service account the caller manages, and all its keys. One they may not
/// manage is "not found".
pub async fn delete(app: &App, acting: &Acting<'_>, org: &str, name: &str) -> Result<ServiceAccount> {
    let (org, account) = managed(app, acting, org, name).await?;
    let not_found = AppError::NotFound(Missing::ServiceAccount);
    let audit = AuditContext::of(acting).entry(org.id, Action::ServiceAccountDeleted, &account.user.username, None);
    if !app.store.delete_user(account.user.id, &audit).await? {
        return Err(not_found);
    }
    tracing::info!(user.id = account.user.id.0, "service account deleted");
    Ok(account)
}

/// Sets where a service account's keys may be used from (`None` lifts its own list;
/// the organization's still applies), for those who manage it. Its keys follow at
/// once, on every replica. One they may not manage is "not found".
pub async fn set_networks(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    name: &str,
    networks: Option<keysmith_core::Networks>,
) -> Result<ServiceAccount> {
    let (org, account) = managed(app, acting, org, name).await?;
    let not_found = AppError::NotFound(Missing::ServiceAccount);
    let text = networks.map(|n| n.to_string());
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::ServiceAccountNetworksChanged,
        &account.user.username,
        Some(serde_json::json!({ "allowed_networks": text })),
    );
    if !app
        .store
        .set_service_account_networks(account.user.id, text, &audit)
        .await?
    {
        return Err(not_found);
    }
    tracing::info!(user.id = account.user.id.0, "service account networks changed");
    app.store.get_service_account(account.user.id).await?.ok_or(not_found)
}
