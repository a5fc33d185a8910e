//! Passwords: argon2id with the crate's defaults (OWASP's recommended parameters),
//! hashed and verified on the blocking pool so a sign-in never stalls the runtime.

use crate::error::ApiError;
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
