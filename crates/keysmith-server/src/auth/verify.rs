//! The hot path: from a presented string to the key's owner, or a refusal.
//!
//! parse (no allocation, never panics) → checksum (a mistyped or random string is
//! refused here, without touching the database) → the cache by key ID (v1), else the
//! store by key ID or (legacy) by digest, filling the cache → constant-time digest
//! comparison → owner active, key not expired → accept, and note the use and its
//! source in memory.

use crate::cache::{Entry, OwnerInfo};
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::state::AppState;
use keysmith_core::{KeyDigest, KeyId, PresentedKey};
use std::sync::Arc;

/// A key that verified, and what is known about its owner (shared with the cache).
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: KeyId,
    pub owner: Arc<OwnerInfo>,
}

/// Where a request came from, for a key's recent sources.
pub use keysmith_app::usage::Client;

use keysmith_app::verification::parse;
/// Why a key was refused (the application's vocabulary).
pub use keysmith_app::verification::{Refusal, limit_key};

/// Verifies a presented key, from the cache when it can, and notes the use and its
/// source.
///
/// A key accepted from the cache is never held back. Anything else may be someone
/// guessing, so it counts against its source address: after
/// `key_failures_per_minute` failures the address gets 429 with `Retry-After` until
/// the minute is over, without a database read, while the keys it holds that are
/// in the cache (keys in steady use) keep working.
pub async fn verify_key(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    match verify_now(state, presented, client) {
        Some(done) => done,
        None => verify_stored(state, presented, client).await,
    }
}

/// Everything verification can decide without the database: a key in the cache, a
/// malformed key or a bad checksum, an address over its failure limit. `None` when
/// the store must be asked; then [`verify_stored`] finishes the job.
pub fn verify_now(state: &AppState, presented: &str, client: Client<'_>) -> Option<Result<Verified, ApiError>> {
    let now = state.now();
    let cached = match verify_cached(state, presented, now) {
        Some(Ok(verified)) => return Some(finish(state, Ok(verified), client, now)),
        other => other,
    };
    if let Err(retry_after_secs) = state.key_failures_by_address.check(&limit_key(client.address), now) {
        state.metrics.verified(Outcome::RateLimited);
        return Some(Err(ApiError::RateLimited { retry_after_secs }));
    }
    cached.map(|result| finish_counted(state, result, client, now))
}

/// The rest of [`verify_key`] after [`verify_now`] answered `None`: the store read,
/// which also fills the cache.
pub async fn verify_stored(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    let result = check(state, presented).await?;
    finish_counted(state, result, client, state.now())
}

/// [`finish`], counting a refusal against the client's address.
fn finish_counted(
    state: &AppState,
    result: Result<Verified, Refusal>,
    client: Client<'_>,
    now: i64,
) -> Result<Verified, ApiError> {
    let limiter = &state.key_failures_by_address;
    if result.is_err() && limiter.record_failure(&limit_key(client.address), now) == limiter.max_failures() {
        tracing::warn!(
            source.address = client.address,
            "too many failed API key verifications from this address; refusing it for a minute"
        );
    }
    finish(state, result, client, now)
}

/// The part of verification that needs no database: a malformed key, a bad checksum,
/// or a key in the cache. `None` when the store must be asked.
fn verify_cached(state: &AppState, presented: &str, now: i64) -> Option<Result<Verified, Refusal>> {
    let parsed = match parse(presented) {
        Ok(p) => p,
        Err(refusal) => return Some(Err(refusal)),
    };
    match parsed {
        PresentedKey::V1(v1) => {
            let entry = state.cache.get(v1.key_id(), now)?;
            Some(judge(KeyId::from(v1), &entry, &parsed.digest(), now))
        }
        PresentedKey::Legacy(legacy) => {
            let digest = legacy.digest();
            let (key_id, entry) = state.cache.get_legacy(&digest, now)?;
            Some(judge(key_id, &entry, &digest, now))
        }
    }
}

/// Records the outcome: the use and its source when accepted, the metric either way.
fn finish(
    state: &AppState,
    result: Result<Verified, Refusal>,
    client: Client<'_>,
    now: i64,
) -> Result<Verified, ApiError> {
    match result {
        Ok(verified) => {
            state.usage.record(&verified.key_id, now, client);
            state.metrics.verified(Outcome::Accepted);
            Ok(verified)
        }
        Err(refusal) => {
            state.metrics.verified(Outcome::from(refusal));
            tracing::info!(auth.refusal = refusal.as_str(), "API key refused");
            Err(if refusal == Refusal::Expired {
                ApiError::ApiKeyExpired
            } else {
                ApiError::InvalidApiKey
            })
        }
    }
}

/// The miss path: read the store, and fill the cache.
async fn check(state: &AppState, presented: &str) -> Result<Result<Verified, Refusal>, ApiError> {
    let parsed = match parse(presented) {
        Ok(p) => p,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // One SHA-256: a legacy key is looked up by it, and every key is judged by it.
    let digest = parsed.digest();
    let now = state.now();
    let (key_id, entry) = match parsed {
        PresentedKey::V1(v1) => {
            let key_id = KeyId::from(v1);
            // Taken before the read: an invalidation meanwhile voids the fill.
            let ticket = state.cache.ticket();
            let entry = match state.store.find_key_for_auth(&key_id).await? {
                Some(record) => Entry::from_record(&record, now),
                None => Entry::absent(now),
            };
            state.cache.fill(ticket, v1.key_id(), entry.clone());
            (key_id, entry)
        }
        PresentedKey::Legacy(_) => {
            let ticket = state.cache.ticket();
            match state.store.find_legacy_key_for_auth(&digest).await? {
                Some(record) => {
                    let entry = Entry::from_record(&record, now);
                    state.cache.fill_legacy(ticket, &record.key_id, digest, entry.clone());
                    (record.key_id, entry)
                }
                None => return Ok(Err(Refusal::Unknown)),
            }
        }
    };
    Ok(judge(key_id, &entry, &digest, now))
}

/// The checks after the lookup, the same for a cached and a freshly read key.
/// The digest is compared whatever the entry holds, so that an unknown key, a wrong
/// secret and a deleted key take the same time.
fn judge(key_id: KeyId, entry: &Entry, digest: &KeyDigest, now: i64) -> Result<Verified, Refusal> {
    let matches = entry.digest.ct_eq(digest);
    if entry.is_absent() {
        return Err(Refusal::Unknown);
    }
    if !matches {
        return Err(Refusal::WrongSecret);
    }
    if !entry.owner.active {
        return Err(Refusal::OwnerInactive);
    }
    if entry.expires_at.is_some_and(|at| at <= now) {
        return Err(Refusal::Expired);
    }
    Ok(Verified {
        key_id,
        owner: entry.owner.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::{Outcome, Refusal};

    #[test]
    fn refusals_are_named_by_their_metric_labels() {
        for (refusal, name) in [
            (Refusal::Malformed, "malformed"),
            (Refusal::BadChecksum, "bad_checksum"),
            (Refusal::Unknown, "unknown"),
            (Refusal::WrongSecret, "wrong_secret"),
            (Refusal::OwnerInactive, "owner_inactive"),
            (Refusal::Expired, "expired"),
        ] {
            assert_eq!(refusal.as_str(), name);
            assert_eq!(Outcome::from(refusal).as_str(), name);
        }
        assert_eq!(crate::metrics::Outcome::Accepted.as_str(), "accepted");
        assert_eq!(crate::metrics::Outcome::RateLimited.as_str(), "rate_limited");
    }
}
