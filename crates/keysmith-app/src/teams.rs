//! Teams of an organization and their members. Any member sees the team names; org
//! admins create teams and decide who is in a team and who administers it; a team's
//! admins and org admins see its members and service accounts.
//!
//! Only organization admins change team membership and team roles, from every door
//! (docs/DESIGN.md §10): a team admin sees and manages the keys of the team's service
//! accounts, so making someone a team admin grants that sight, and only those who may
//! grant it (org admins) may.

use crate::access::{admin_org, member_org, org_team};
use crate::audit::{Action, AuditContext};
use crate::caller::Caller;
use crate::error::{AppError, Missing, Result};
use crate::input::Email;
use crate::users::{self, NewUserRequest};
use crate::{Acting, App};
use keysmith_core::EntityName;
use keysmith_core::policy;
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_store::{Org, ServiceAccount, Team, TeamMember, User};

/// The organization's teams (any member).
pub async fn list(app: &App, caller: &Caller, org: &str) -> Result<Vec<Team>> {
    let org = member_org(app, caller, org).await?;
    Ok(app.store.list_teams(org.id).await?)
}

/// Creates a team (org admins). With `first_admin` (W&B's `createTeam`), that user of
/// the organization becomes its first team admin; they are checked before the team is
/// made.
pub async fn create(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    name: EntityName,
    first_admin: Option<&str>,
) -> Result<Team> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    create_in(app, acting, &org, name, first_admin).await
}

/// [`create`] in an organization the caller administers.
pub(crate) async fn create_in(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    name: EntityName,
    first_admin: Option<&str>,
) -> Result<Team> {
    let first_admin = match first_admin {
        Some(username) => Some(users::org_person(app, org, username).await?.user),
        None => None,
    };
    let audit = AuditContext::of(acting);
    let team = app
        .store
        .create_team(
            org.id,
            name.as_str(),
            acting.now,
            &audit.entry(org.id, Action::TeamCreated, name.as_str(), None),
        )
        .await?;
    tracing::info!(team.id = team.id.0, org.id = org.id.0, "team created");
    if let Some(admin) = first_admin {
        set_found_member(app, acting, org, &team, &admin, TeamRole::Admin).await?;
    }
    Ok(team)
}

/// A team with its members and the service accounts scoped to it.
#[derive(Debug, Clone)]
pub struct TeamDetail {
    pub team: Team,
    pub members: Vec<TeamMember>,
    /// Oldest first.
    pub service_accounts: Vec<ServiceAccount>,
}

/// A team's members and service accounts (its team admins and org admins).
pub async fn show(app: &App, caller: &Caller, org: &str, team: &str) -> Result<TeamDetail> {
    let org = member_org(app, caller, org).await?;
    let team = org_team(app, &org, team).await?;
    detail(app, caller, team).await
}

/// [`show`] for a team the door already holds (from [`crate::access::caller_team`] or
/// the caller's own teams).
pub async fn detail(app: &App, caller: &Caller, team: Team) -> Result<TeamDetail> {
    if !policy::may_view_team(&caller.roles, team.org, team.id) {
        return Err(AppError::Forbidden(
            "only the team's admins and organization admins may see its members",
        ));
    }
    let members = app.store.team_members(team.id).await?;
    let mut service_accounts = app.store.list_service_accounts(team.org, Some(team.id)).await?;
    service_accounts.sort_by_key(|a| (a.user.created_at, a.user.id));
    Ok(TeamDetail {
        team,
        members,
        service_accounts,
    })
}

/// Adds a user of the organization to a team or changes their team role (org admins).
pub async fn set_member(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    team: &str,
    username: &str,
    role: TeamRole,
) -> Result<User> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let team = org_team(app, &org, team).await?;
    let user = users::org_person(app, &org, username).await?.user;
    set_found_member(app, acting, &org, &team, &user, role).await?;
    Ok(user)
}

pub(crate) async fn set_found_member(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    team: &Team,
    user: &User,
    role: TeamRole,
) -> Result<()> {
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::TeamMemberSet,
        &team.name,
        Some(serde_json::json!({ "user": user.username, "role": role.as_str() })),
    );
    app.store
        .set_team_member(team.id, user.id, role, acting.now, &audit)
        .await?;
    tracing::info!(
        team.id = team.id.0,
        user.id = user.id.0,
        role = role.as_str(),
        "team member set"
    );
    Ok(())
}

/// Removes a member from a team (org admins). Someone who is not a member is "not
/// found", and nothing is recorded.
pub async fn remove_member(app: &App, acting: &Acting<'_>, org: &str, team: &str, username: &str) -> Result<User> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let team = org_team(app, &org, team).await?;
    let user = app
        .store
        .find_user_by_username(username)
        .await?
        .ok_or(AppError::NotFound(Missing::User))?;
    remove_found_member(app, acting, &org, &team, user).await
}

/// [`remove_member`] of a team the caller administers as an org admin.
pub(crate) async fn remove_found_member(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    team: &Team,
    user: User,
) -> Result<User> {
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::TeamMemberRemoved,
        &team.name,
        Some(serde_json::json!({ "user": user.username })),
    );
    if !app.store.remove_team_member(team.id, user.id, &audit).await? {
        return Err(AppError::NotFound(Missing::User));
    }
    tracing::info!(team.id = team.id.0, user.id = user.id.0, "team member removed");
    Ok(user)
}

/// Whom W&B's `createInvite` names: a username, an email, or both.
#[derive(Debug, Clone, Default)]
pub struct Invitee {
    pub username: Option<String>,
    pub email: Option<String>,
}

/// W&B's invitation to a team (org admins): a user of the organization, by username
/// or email, joins the team with `role`; an email nobody has becomes an invited user of
/// the organization first (a member, exactly as [`users::create`] invites one).
pub async fn invite(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    team: &str,
    invitee: Invitee,
    role: TeamRole,
) -> Result<User> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let team = org_team(app, &org, team).await?;
    let Some(login) = invitee.username.as_deref().or(invitee.email.as_deref()) else {
        return Err(AppError::invalid(
            "username",
            "give the username or email of the person to invite",
        ));
    };
    let user = match app.store.find_user_for_sign_in(login).await? {
        Some((user, _)) => {
            let in_org = app.store.memberships(user.id).await?.iter().any(|m| m.org.id == org.id);
            if !in_org || user.kind != PrincipalKind::User {
                return Err(AppError::NotFound(Missing::User));
            }
            user
        }
        None => {
            let Some(email) = invitee.email.as_deref() else {
                return Err(AppError::NotFound(Missing::User));
            };
            let email = Email::parse(email)?;
            let username = users::unused_name(app, email.local_part(), "user").await?;
            let request = NewUserRequest {
                username,
                email: Some(email),
                role: OrgRole::Member,
                password: None,
            };
            users::create_in(app, acting, &org, request).await?.member.user
        }
    };
    set_found_member(app, acting, &org, &team, &user, role).await?;
    Ok(user)
}
