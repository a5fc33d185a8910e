//! What an operator does from the server's own machine, without signing in
//! (`keysmith admin reset-password`, `keysmith admin unlock`): the way back for an admin
//! who forgot their password or whose sign-in is held back. Whoever can run these can
//! read the database already, so they need no other credential; they work on a running
//! server, since they change only the database, and they are audited in every
//! organization the user belongs to, with no actor (an operator, not a user).

use crate::audit::{Action, AuditContext};
use crate::password::hash_password;
use keysmith_core::SecretString;
use keysmith_store::{NewAuditEntry, Store, StoreError, User};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error("`{0}` is a service account; service accounts have no password and use only their keys")]
    ServiceAccount(String),
    #[error("{0}")]
    WeakPassword(&'static str),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the command changed, for its message.
#[derive(Debug)]
pub struct Done {
    pub user: User,
}

async fn find_person(store: &dyn Store, username: &str) -> Result<User, OperatorError> {
    let user = store
        .find_user_by_username(username)
        .await?
        .ok_or_else(|| OperatorError::NoSuchUser(username.to_owned()))?;
    if user.kind != keysmith_core::role::PrincipalKind::User {
        return Err(OperatorError::ServiceAccount(user.username));
    }
    Ok(user)
}

async fn audit(
    store: &dyn Store,
    user: &User,
    action: Action,
    command: &str,
    now: i64,
) -> Result<Vec<NewAuditEntry>, OperatorError> {
    let orgs: Vec<_> = store
        .memberships(user.id)
        .await?
        .into_iter()
        .map(|m| m.org.id)
        .collect();
    Ok(AuditContext::operator(now).entries(
        &orgs,
        action,
        &user.username,
        Some(serde_json::json!({ "via": command })),
    ))
}

/// Sets `username`'s password, ends their sessions and clears their sign-in throttle.
pub async fn reset_password(
    store: &dyn Store,
    username: &str,
    password: &SecretString,
    now: i64,
) -> Result<Done, OperatorError> {
    keysmith_core::check_password(password.expose()).map_err(OperatorError::WeakPassword)?;
    let user = find_person(store, username).await?;
    let hash = hash_password(password).map_err(|e| OperatorError::Hash(e.to_string()))?;
    let entries = audit(
        store,
        &user,
        Action::UserPasswordReset,
        "keysmith admin reset-password",
        now,
    )
    .await?;
    if !store.reset_password(user.id, &hash, now, &entries).await? {
        return Err(OperatorError::NoSuchUser(username.to_owned()));
    }
    Ok(Done { user })
}

/// Clears `username`'s sign-in throttle on every server.
pub async fn unlock(store: &dyn Store, username: &str, now: i64) -> Result<Done, OperatorError> {
    let user = find_person(store, username).await?;
    let entries = audit(store, &user, Action::UserSignInUnlocked, "keysmith admin unlock", now).await?;
    if !store.unlock_sign_in(user.id, now, &entries).await? {
        return Err(OperatorError::NoSuchUser(username.to_owned()));
    }
    Ok(Done { user })
}
