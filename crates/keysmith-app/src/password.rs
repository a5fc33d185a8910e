//! Passwords and signing in with one: argon2id with the crate's defaults (OWASP's recommended parameters),
//! hashed and verified on the blocking pool so a sign-in never stalls the runtime.

use crate::error::AppError as ApiError;
use crate::sign_in_throttle::Account;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use keysmith_core::SecretString;
use std::sync::OnceLock;

/// Hashes a password into a PHC string.
pub fn hash_password(password: &SecretString) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), ApiError> {
    getrandom::fill(buf).map_err(|e| ApiError::Internal(format!("random source: {e}")))
}

/// Checks `password` against `hash` on the blocking pool. With no hash (an unknown
/// user, a service account), checks against a fixed dummy hash so that the answer
/// takes as long as for a real account.
pub async fn verify_password(password: SecretString, hash: Option<String>) -> bool {
    let has_hash = hash.is_some();
    let result = tokio::task::spawn_blocking(move || {
        let hash = match &hash {
            Some(h) => h.as_str(),
            None => dummy_hash(),
        };
        match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    })
    .await;
    has_hash && result.unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&SecretString::new("keysmith-dummy-password".into())).unwrap_or_default())
}

/// Longest username or password considered; longer input fails like a wrong password
/// without costing an argon2 run on megabytes.
const MAX_LOGIN_CHARS: usize = 256;
const MAX_PASSWORD_CHARS: usize = 1024;

/// Checks a sign-in (username or email, and password) under the sign-in throttle
/// ([`crate::sign_in_throttle`]) and returns the user. Every failure looks the same to
/// the client: unknown user, wrong password, deactivated user, service account.
pub async fn check_password(
    app: &crate::App,
    login: &str,
    password: SecretString,
    source: &str,
    now: i64,
) -> Result<keysmith_store::User, ApiError> {
    let login = login.trim().to_lowercase();
    let state = app;
    let throttle = &app.sign_in_throttle;
    let refused = |retry_after_secs: u64| {
        tracing::warn!(source.address = %source, "sign-in refused: too many failures");
        ApiError::RateLimited { retry_after_secs }
    };
    throttle.check_address(source, now).map_err(refused)?;
    let plausible = !login.is_empty()
        && login.chars().count() <= MAX_LOGIN_CHARS
        && password.expose().chars().count() <= MAX_PASSWORD_CHARS;
    let found = if plausible {
        state.store.find_user_for_sign_in(&login).await?
    } else {
        None
    };
    let account = match &found {
        Some((user, _)) => Account::User(user.id.0),
        None => Account::Unknown(login),
    };
    // Only an account with remembered failures needs to know whether an operator
    // has cleared them since.
    let unlocked_at = match &found {
        Some((user, _)) if throttle.knows(&account, now) => state.store.sign_in_unlocked_at(user.id).await?,
        _ => None,
    };
    throttle
        .check_account(&account, source, now, unlocked_at)
        .map_err(refused)?;
    let (user, hash) = match found {
        Some((user, hash)) if user.active && user.kind == keysmith_core::role::PrincipalKind::User => {
            (Some(user), hash)
        }
        _ => (None, None),
    };
    let verified = verify_password(password, hash).await;
    let Some(user) = user.filter(|_| verified) else {
        throttle.record_failure(&account, source, now, unlocked_at);
        tracing::info!(source.address = %source, "sign-in failed");
        return Err(ApiError::InvalidCredentials);
    };
    throttle.record_success(&account, source);
    // Only now, with the password right, may the person learn that their organization
    // wants single sign-on: a stranger learns nothing from this answer.
    let memberships = state.store.memberships(user.id).await?;
    if memberships
        .iter()
        .any(|m| m.org.sso_required && m.role != keysmith_core::role::OrgRole::Admin)
    {
        tracing::info!(
            user.id = user.id.0,
            "password sign-in refused: the organization requires single sign-on"
        );
        return Err(ApiError::SsoRequired);
    }
    Ok(user)
}

/// A password for the first admin when none is configured: 24 base62 characters
/// (about 143 bits).
pub fn generate_password() -> Result<SecretString, ApiError> {
    keysmith_core::base62::random_string(24)
        .map(SecretString::new)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let pw = SecretString::new("correct horse battery staple".into());
        let hash = hash_password(&pw).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(pw.clone(), Some(hash.clone())).await);
        assert!(!verify_password(SecretString::new("wrong".into()), Some(hash)).await);
        assert!(!verify_password(pw, None).await, "no hash never verifies");
    }
}
