//! The users of an organization, managed by its admins: list and search, create with
//! a password or invite, issue a new invitation, change the organization role,
//! deactivate and reactivate, delete. An invited user accepts the invitation without
//! signing in, by setting a password with its one-time token.

use crate::access::{self, admin_org};
use crate::audit::{Action, AuditContext};
use crate::caller::Caller;
use crate::error::{AppError, Missing, Result};
use crate::input::Email;
use crate::password::hash_password;
use crate::time::DAY_MS;
use crate::{Acting, App};
use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_core::{EntityName, KeyDigest, SecretString, UserId, check_password};
use keysmith_store::{NewUser, Org, OrgMember, Team, User};

/// How long an invitation can be accepted.
pub const INVITE_TTL_MS: i64 = 7 * DAY_MS;

/// The characters of an invitation token (base62, about 256 bits).
const INVITE_TOKEN_CHARS: usize = 43;

/// The users (not service accounts) of an organization, for its admins.
pub async fn list(app: &App, caller: &Caller, org: &str) -> Result<Vec<OrgMember>> {
    let org = admin_org(app, caller, org).await?;
    Ok(app
        .store
        .org_members(org.id)
        .await?
        .into_iter()
        .filter(|m| m.user.kind == PrincipalKind::User)
        .collect())
}

/// The users of every organization the caller administers whose username or email
/// contains `query` (case-insensitively; all of them for an empty query), each once.
/// Nobody for a caller who administers no organization.
pub async fn search(app: &App, caller: &Caller, query: &str) -> Result<Vec<User>> {
    let needle = query.to_lowercase();
    let mut seen = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    for org in &caller.roles.admin_of_orgs {
        for member in app.store.org_members(*org).await? {
            let user = member.user;
            let matches = user.username.to_lowercase().contains(&needle)
                || user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&needle));
            if user.kind == PrincipalKind::User && matches && seen.insert(user.id) {
                found.push(user);
            }
        }
    }
    Ok(found)
}

/// The teams of `user` that the caller may see: all of their own; of someone else,
/// those in organizations the caller administers (nothing of another organization,
/// docs/DESIGN.md §3).
pub async fn teams_of(app: &App, caller: &Caller, user: UserId) -> Result<Vec<Team>> {
    if user == caller.id() {
        // The caller's own teams come from the caller cache: no database read.
        return Ok(caller.profile.teams.iter().map(|seat| seat.team.clone()).collect());
    }
    let teams = app.store.user_teams(user).await?.into_iter().map(|(team, _)| team);
    Ok(teams.filter(|t| caller.roles.is_org_admin(t.org)).collect())
}

/// Whether `user` administers an organization, as the caller may know it: any, for
/// themselves; one the caller administers too, for someone else.
pub async fn is_org_admin(app: &App, caller: &Caller, user: UserId) -> Result<bool> {
    if user == caller.id() {
        return Ok(!caller.roles.admin_of_orgs.is_empty());
    }
    let roles = app.store.roles(user).await?;
    Ok(roles.admin_of_orgs.iter().any(|o| caller.roles.is_org_admin(*o)))
}

/// A user to create in an organization.
pub struct NewUserRequest {
    pub username: EntityName,
    pub email: Option<Email>,
    pub role: OrgRole,
    /// The first password; `None` to invite: the user then sets one with the
    /// invitation's token.
    pub password: Option<SecretString>,
}

/// A new user, and for an invitation its token, to be shown once.
pub struct CreatedUser {
    pub member: OrgMember,
    pub invite_token: Option<SecretString>,
}

/// Creates a user of the organization with a password, or invites one (org admins).
pub async fn create(app: &App, acting: &Acting<'_>, org: &str, request: NewUserRequest) -> Result<CreatedUser> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    create_in(app, acting, &org, request).await
}

pub(crate) async fn create_in(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    request: NewUserRequest,
) -> Result<CreatedUser> {
    create_with(app, acting, org, request, None).await
}

/// [`create_in`]; with `provisioned_by`, a user without a password gets no invitation
/// (they sign in through the identity provider that provisioned them) and the audit
/// entry says which door made them (`scim`).
pub(crate) async fn create_with(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    request: NewUserRequest,
    provisioned_by: Option<&str>,
) -> Result<CreatedUser> {
    let password_hash = match &request.password {
        Some(password) => {
            check_password(password.expose()).map_err(|m| AppError::invalid("password", m))?;
            Some(hash_password(password)?)
        }
        None => None,
    };
    let invited = password_hash.is_none() && provisioned_by.is_none();
    let role = request.role;
    let detail = match provisioned_by {
        Some(door) => serde_json::json!({ "role": role.as_str(), "via": door }),
        None => serde_json::json!({ "role": role.as_str() }),
    };
    let audit = AuditContext::of(acting).entry(
        org.id,
        if invited {
            Action::UserInvited
        } else {
            Action::UserCreated
        },
        request.username.as_str(),
        Some(detail),
    );
    let new_user = NewUser {
        kind: PrincipalKind::User,
        username: request.username.to_string(),
        email: request.email.map(Email::into_string),
        password_hash,
    };
    let user = app
        .store
        .create_member(new_user, org.id, role, acting.now, &audit)
        .await?;
    let invite_token = if invited {
        Some(issue_invitation(app, user.id, acting.now).await?)
    } else {
        None
    };
    tracing::info!(user.id = user.id.0, org.id = org.id.0, invited, "user created");
    Ok(CreatedUser {
        member: OrgMember { user, role },
        invite_token,
    })
}

/// A new one-time invitation for `user`, valid for [`INVITE_TTL_MS`].
async fn issue_invitation(app: &App, user: UserId, now: i64) -> Result<SecretString> {
    let token = keysmith_core::base62::random_string(INVITE_TOKEN_CHARS)
        .map(SecretString::new)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    app.store
        .create_invite(user, &token_digest(&token), now, now + INVITE_TTL_MS)
        .await?;
    Ok(token)
}

/// What the store keeps instead of an invitation token.
fn token_digest(token: &SecretString) -> KeyDigest {
    KeyDigest::of(token.expose().as_bytes())
}

/// A new invitation for a user of the organization (org admins): for someone invited
/// through W&B's `createUser`, or who lost their password. Earlier invitations of the
/// user stop working; the current password keeps working until the invitation is
/// accepted.
pub async fn reinvite(app: &App, acting: &Acting<'_>, org: &str, username: &str) -> Result<SecretString> {
    acting.administrator()?;
    let (_, member) = administered_user(app, acting.caller, org, username).await?;
    require_admin_of_all_orgs(app, acting.caller, &member.user).await?;
    app.store.delete_invites(member.user.id).await?;
    let token = issue_invitation(app, member.user.id, acting.now).await?;
    tracing::info!(user.id = member.user.id.0, source.address = %acting.source, "invitation issued");
    Ok(token)
}

/// A change to a user of an organization: their role, and whether they are active.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange {
    pub role: Option<OrgRole>,
    /// `false` deactivates (their keys and sessions stop at once), `true` reactivates.
    pub active: Option<bool>,
}

/// Changes a user's organization role, then deactivates or reactivates them (org
/// admins); what is already so is left alone. Deactivation acts on the whole account,
/// so it needs an admin of every organization the user belongs to.
pub async fn update(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    username: &str,
    change: UserChange,
) -> Result<OrgMember> {
    acting.administrator()?;
    let (org, member) = administered_user(app, acting.caller, org, username).await?;
    update_in(app, acting, &org, &member, change).await?;
    org_person(app, &org, username).await
}

/// [`update`] of a user the caller administers in `org` as an org admin.
pub(crate) async fn update_in(
    app: &App,
    acting: &Acting<'_>,
    org: &Org,
    member: &OrgMember,
    change: UserChange,
) -> Result<()> {
    let audit = AuditContext::of(acting);
    if let Some(role) = change.role.filter(|r| *r != member.role) {
        let entries = audit.entry(
            org.id,
            Action::UserRoleChanged,
            &member.user.username,
            Some(serde_json::json!({ "from": member.role.as_str(), "to": role.as_str() })),
        );
        app.store.set_org_role(org.id, member.user.id, role, &entries).await?;
    }
    if let Some(active) = change.active.filter(|a| *a != member.user.active) {
        require_admin_of_all_orgs(app, acting.caller, &member.user).await?;
        let action = if active {
            Action::UserReactivated
        } else {
            Action::UserDeactivated
        };
        let orgs = access::audit_orgs(app, member.user.id).await?;
        let entries = audit.entries(&orgs, action, &member.user.username, None);
        app.store.set_user_active(member.user.id, active, &entries).await?;
        tracing::info!(user.id = member.user.id.0, active, "user activation changed");
    }
    Ok(())
}

/// Deletes a user and every key they own (org admins of every organization the user
/// belongs to).
pub async fn delete(app: &App, acting: &Acting<'_>, org: &str, username: &str) -> Result<User> {
    acting.administrator()?;
    let (_, member) = administered_user(app, acting.caller, org, username).await?;
    delete_in(app, acting, member).await
}

/// [`delete`] of a user the caller administers as an org admin.
pub(crate) async fn delete_in(app: &App, acting: &Acting<'_>, member: OrgMember) -> Result<User> {
    require_admin_of_all_orgs(app, acting.caller, &member.user).await?;
    let orgs = access::audit_orgs(app, member.user.id).await?;
    let entries = AuditContext::of(acting).entries(&orgs, Action::UserDeleted, &member.user.username, None);
    if !app.store.delete_user(member.user.id, &entries).await? {
        return Err(AppError::NotFound(Missing::User));
    }
    tracing::info!(user.id = member.user.id.0, "user deleted");
    Ok(member.user)
}

/// Accepts an invitation: sets the password of the user it was issued to, without
/// signing in. Audited as the user, from `source`.
pub async fn accept_invitation(
    app: &App,
    source: &str,
    now: i64,
    token: &SecretString,
    password: &SecretString,
) -> Result<UserId> {
    check_password(password.expose()).map_err(|m| AppError::invalid("password", m))?;
    let hash = hash_password(password)?;
    // Surrounding white space is dropped, as from a key: it is pasted.
    let token = SecretString::new(token.expose().trim().to_owned());
    match app
        .store
        .accept_invite(&token_digest(&token), &hash, now, Some(source))
        .await?
    {
        Some(user) => {
            tracing::info!(user.id = user.0, "invitation accepted");
            Ok(user)
        }
        None => Err(AppError::InvitationInvalid),
    }
}

/// A person (not a service account) of `org`, with their role there; anyone else is
/// "not found".
pub(crate) async fn org_person(app: &App, org: &Org, username: &str) -> Result<OrgMember> {
    let not_found = AppError::NotFound(Missing::User);
    let user = app
        .store
        .find_user_by_username(username)
        .await?
        .ok_or(not_found.clone())?;
    if user.kind != PrincipalKind::User {
        return Err(not_found);
    }
    let role = app
        .store
        .memberships(user.id)
        .await?
        .into_iter()
        .find(|m| m.org.id == org.id)
        .ok_or(not_found)?
        .role;
    Ok(OrgMember { user, role })
}

/// A user of `org` whom the caller administers as an org admin.
async fn administered_user(app: &App, caller: &Caller, org: &str, username: &str) -> Result<(Org, OrgMember)> {
    let org = admin_org(app, caller, org).await?;
    let member = org_person(app, &org, username).await?;
    Ok((org, member))
}

/// Deactivation, deletion and new invitations act on the whole account, which may
/// belong to other organizations too: only an admin of all of them may do it.
async fn require_admin_of_all_orgs(app: &App, caller: &Caller, user: &User) -> Result<()> {
    let orgs = app.store.memberships(user.id).await?;
    if orgs.iter().all(|m| caller.roles.is_org_admin(m.org.id)) {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "the user also belongs to an organization you do not administer",
        ))
    }
}

/// A name no user or service account has yet, made from free text (an email's local
/// part, a description): lowercase letters, digits, `.`, `_` and `-`, with a number
/// added when taken (`-1`, `-2`, …); `fallback` when the text gives nothing usable. For W&B's
/// mutations, which name people by email and service accounts by description.
pub async fn unused_name(app: &App, base: &str, fallback: &str) -> Result<EntityName> {
    for candidate in name_candidates(base, fallback) {
        if app.store.find_user_by_username(&candidate).await?.is_none() {
            return EntityName::parse(&candidate).map_err(|e| AppError::Internal(e.to_string()));
        }
    }
    Err(AppError::AlreadyExists("a principal with this name"))
}

/// The names [`unused_name`] tries, in order: the slug of `base` (lowercase letters,
/// digits, `.`, `_` and `-`; `fallback` when it gives nothing usable), then the slug
/// with `-1`, `-2`, … up to `-99`.
pub(crate) fn name_candidates(base: &str, fallback: &str) -> impl Iterator<Item = String> {
    let slug: String = base
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-') {
                ch.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|ch: char| !ch.is_ascii_alphanumeric())
        .chars()
        .take(40)
        .collect();
    let slug = if EntityName::parse(&slug).is_ok() {
        slug
    } else {
        fallback.to_owned()
    };
    (0..100u32).map(move |n| if n == 0 { slug.clone() } else { format!("{slug}-{n}") })
}
