//! Verification as the doors see it: the application's verifier
//! (`keysmith_app::verification`), with its refusals mapped to the API's errors in one
//! place: `invalid_api_key`, `api_key_expired` for a genuine key past its expiry, and
//! `rate_limited` for an address over its failure limit.

use crate::error::ApiError;
use crate::state::AppState;
use keysmith_app::verification::Denied;

pub use keysmith_app::usage::Client;
/// Why a key was refused (the application's vocabulary).
pub use keysmith_app::verification::{Refusal, Verified, limit_key};

/// Verifies a presented key, from the cache when it can, and notes the use and its
/// source.
pub async fn verify_key(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    match verify_now(state, presented, client) {
        Some(done) => done,
        None => verify_stored(state, presented, client).await,
    }
}

/// Everything verification can decide without the database (a warm key, a malformed
/// one, an address over its limit); `None` when the store must be asked.
#[inline]
pub fn verify_now(state: &AppState, presented: &str, client: Client<'_>) -> Option<Result<Verified, ApiError>> {
    let done = state.app.verifier.verify_now(presented, client, state.now())?;
    Some(done.map_err(denied))
}

/// The rest of [`verify_key`] after [`verify_now`] answered `None`: the store read,
/// which also fills the cache.
pub async fn verify_stored(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    let done = state
        .app
        .verifier
        .verify_stored(&*state.store, presented, client, state.now())
        .await?;
    done.map_err(denied)
}

/// The API's error for a key not accepted.
fn denied(denied: Denied) -> ApiError {
    match denied {
        Denied::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
        Denied::KeyRateLimited(quota) => ApiError::KeyRateLimited(quota),
        Denied::Refused(Refusal::Expired) => ApiError::ApiKeyExpired,
        // Only the key's holder can present it, as for an expired key.
        Denied::Refused(Refusal::AddressNotAllowed) => ApiError::IpNotAllowed,
        Denied::Refused(_) => ApiError::InvalidApiKey,
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, Denied, Refusal, denied};

    #[test]
    fn only_a_genuine_expired_key_is_told_so() {
        for refusal in [
            Refusal::Malformed,
            Refusal::BadChecksum,
            Refusal::Unknown,
            Refusal::WrongSecret,
            Refusal::OwnerInactive,
        ] {
            assert!(matches!(denied(Denied::Refused(refusal)), ApiError::InvalidApiKey));
        }
        assert!(matches!(
            denied(Denied::Refused(Refusal::Expired)),
            ApiError::ApiKeyExpired
        ));
        assert!(matches!(
            denied(Denied::Refused(Refusal::AddressNotAllowed)),
            ApiError::IpNotAllowed
        ));
        assert!(matches!(
            denied(Denied::RateLimited { retry_after_secs: 7 }),
            ApiError::RateLimited { retry_after_secs: 7 }
        ));
    }
}
