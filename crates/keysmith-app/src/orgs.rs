//! Organizations and their settings. Any member sees the organization and their own
//! role in it; only its admins change the settings.

use crate::access::{admin_org, member_org};
use crate::audit::{Action, AuditContext};
use crate::caller::Caller;
use crate::error::{AppError, Result};
use crate::{Acting, App};
use keysmith_core::role::OrgRole;
use keysmith_store::{Org, OrgSettings};

/// The longest key lifetime a policy may set: ten years.
pub const MAX_LIFETIME_DAYS: u32 = 3650;

/// The organizations the caller belongs to, with their role in each.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<(Org, OrgRole)>> {
    Ok(app
        .store
        .memberships(caller.id())
        .await?
        .into_iter()
        .map(|m| (m.org, m.role))
        .collect())
}

/// One organization the caller belongs to, with their role in it.
pub async fn get(app: &App, caller: &Caller, org: &str) -> Result<(Org, OrgRole)> {
    let org = member_org(app, caller, org).await?;
    let role = if caller.roles.is_org_admin(org.id) {
        OrgRole::Admin
    } else {
        OrgRole::Member
    };
    Ok((org, role))
}

/// Changes the settings given (org admins). Nothing given changes nothing and writes
/// no audit entry; a lifetime over [`MAX_LIFETIME_DAYS`] is refused whole.
pub async fn update_settings(app: &App, acting: &Acting<'_>, org: &str, mut settings: OrgSettings) -> Result<Org> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    // The allowlist as it is already (the web form sends it every time) is no change:
    // a change makes every cached key of the organization's members stale.
    if settings.allowed_networks.as_ref() == Some(&org.allowed_networks) {
        settings.allowed_networks = None;
    }
    let lifetimes = [
        ("max_user_key_lifetime_days", settings.max_user_key_lifetime_days),
        (
            "max_service_account_key_lifetime_days",
            settings.max_service_account_key_lifetime_days,
        ),
    ];
    for (field, days) in lifetimes {
        if days.is_some_and(|d| d > MAX_LIFETIME_DAYS) {
            return Err(AppError::invalid(
                field,
                format!("a key lifetime is at most {MAX_LIFETIME_DAYS} days (0 for no limit)"),
            ));
        }
    }
    if settings
        .unused_key_notice_days
        .is_some_and(|d| d > crate::notices::MAX_DAYS)
    {
        return Err(AppError::invalid(
            "unused_key_notice_days",
            format!(
                "keys are announced as idle (unused_key_notice_days) after at most {} days (0 for never)",
                crate::notices::MAX_DAYS
            ),
        ));
    }
    if settings == OrgSettings::default() {
        return Ok(org);
    }
    if settings.sso_required == Some(true)
        && !org.sso_required
        && app.store.list_sso_providers(Some(org.id)).await?.is_empty()
    {
        return Err(AppError::invalid(
            "sso_required",
            "to require single sign-on (sso_required), add a single sign-on provider to the organization first",
        ));
    }
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::OrgSettingsChanged,
        &org.name,
        Some(serde_json::json!({
            "key_creation_disabled": settings.key_creation_disabled,
            "legacy_keys_allowed": settings.legacy_keys_allowed,
            "max_user_key_lifetime_days": settings.max_user_key_lifetime_days,
            "max_service_account_key_lifetime_days": settings.max_service_account_key_lifetime_days,
            "sso_required": settings.sso_required,
            "allowed_networks": settings.allowed_networks,
            "unused_key_notice_days": settings.unused_key_notice_days,
        })),
    );
    let org = app.store.update_org_settings(org.id, settings, &audit).await?;
    tracing::info!(org.id = org.id.0, "organization settings changed");
    Ok(org)
}
