//! Who is acting: the authenticated principal (a user or a service account, and how
//! they proved it) with the administrative roles the permission table asks about.

use crate::App;
use crate::callers::Profile;
use crate::error::{AppError, Result};
use keysmith_core::policy::{self, Roles};
use keysmith_core::{KeyId, KeyScope};
use keysmith_store::{Org, UserRef};
use std::sync::Arc;

/// An authenticated principal.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRef,
    pub via: AuthMethod,
}

/// How the principal proved who they are.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// An API key (or a federated session's access token), with what it may do at most.
    ApiKey { key_id: KeyId, scope: KeyScope },
    /// The web interface's session: the person's full power.
    Session,
}

impl Principal {
    /// What this principal may do at most: the key's scope, or everything for a session.
    pub fn scope(&self) -> KeyScope {
        match self.via {
            AuthMethod::ApiKey { scope, .. } => scope,
            AuthMethod::Session => KeyScope::Admin,
        }
    }
}

/// The principal with their roles: what every action takes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub roles: Arc<Roles>,
    /// Their organizations, teams and email, as the viewer shows them.
    pub profile: Arc<Profile>,
}

impl Caller {
    /// The caller, with their roles: from the caller cache when warm, else read from
    /// the store (and cached).
    pub async fn load(app: &App, principal: Principal) -> Result<Self> {
        let seat = app
            .callers
            .seat(app.store.as_ref(), principal.user.id, app.now())
            .await?;
        Ok(Self::seated(principal, seat))
    }

    /// The caller read from the store (and cached), after the cache missed
    /// ([`crate::callers::CallerCache::cached`]).
    pub async fn read(app: &App, principal: Principal) -> Result<Self> {
        let seat = app
            .callers
            .read(app.store.as_ref(), principal.user.id, app.now())
            .await?;
        Ok(Self::seated(principal, seat))
    }

    /// The caller in the seat the caller cache holds for them.
    pub fn seated(principal: Principal, seat: crate::callers::Seat) -> Self {
        Self {
            principal,
            roles: seat.roles,
            profile: seat.profile,
        }
    }

    /// The caller as a user record, from what is cached: no database read.
    pub fn user(&self) -> keysmith_store::User {
        keysmith_store::User {
            id: self.principal.user.id,
            kind: self.principal.user.kind,
            username: self.principal.user.username.clone(),
            email: self.profile.email.clone(),
            active: true,
            created_at: self.profile.created_at,
        }
    }

    pub fn id(&self) -> keysmith_core::UserId {
        self.principal.user.id
    }

    /// What the caller's key may do at most ([`Principal::scope`]).
    pub fn scope(&self) -> KeyScope {
        self.principal.scope()
    }

    /// Refuses a caller whose key's scope does not include `needed`.
    pub fn require_scope(&self, needed: KeyScope) -> Result<()> {
        let has = self.scope();
        if has.includes(needed) {
            Ok(())
        } else {
            Err(AppError::InsufficientScope { needed, has })
        }
    }

    pub fn require_org_admin(&self, org: &Org) -> Result<()> {
        if policy::may_administer_org(&self.roles, org.id) {
            Ok(())
        } else {
            Err(AppError::Forbidden("only organization admins may do this"))
        }
    }
}
