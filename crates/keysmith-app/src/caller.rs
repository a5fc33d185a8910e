//! Who is acting: the authenticated principal (a user or a service account, and how
//! they proved it) with the administrative roles the permission table asks about.

use crate::App;
use crate::error::{AppError, Result};
use keysmith_core::KeyId;
use keysmith_core::policy::{self, Roles};
use keysmith_store::{Org, UserRef};

/// An authenticated principal.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRef,
    pub via: AuthMethod,
}

/// How the principal proved who they are.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    ApiKey { key_id: KeyId },
    Session,
}

/// The principal with their roles: what every action takes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub roles: Roles,
}

impl Caller {
    /// The caller, with their roles read from the store.
    pub async fn load(app: &App, principal: Principal) -> Result<Self> {
        let roles = app.store.roles(principal.user.id).await?;
        Ok(Self { principal, roles })
    }

    pub fn id(&self) -> keysmith_core::UserId {
        self.principal.user.id
    }

    pub fn require_org_admin(&self, org: &Org) -> Result<()> {
        if policy::may_administer_org(&self.roles, org.id) {
            Ok(())
        } else {
            Err(AppError::Forbidden("only organization admins may do this"))
        }
    }
}
