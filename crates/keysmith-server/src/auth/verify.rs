//! The hot path: from a presented string to the key's owner, or a refusal.
//!
//! parse (no allocation, never panics) → checksum (a mistyped or random string is
//! refused here, without touching the database) → the cache by key ID (v1), else the
//! store by key ID or (legacy) by digest, filling the cache → constant-time digest
//! comparison → owner active, key not expired → accept, and note the use and its
//! source in memory.

use crate::cache::Entry;
use crate::error::ApiError;
use crate::state::AppState;
use keysmith_core::{KeyDigest, KeyId, PresentedKey};
use keysmith_store::{AuthRecord, UserRef};

/// A key that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: KeyId,
    pub owner: UserRef,
    /// The owner's organizations, comma-separated.
    pub orgs: Box<str>,
}

/// Where a request came from, for a key's recent sources.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub address: &'a str,
    pub user_agent: &'a str,
}

/// Why a key was refused. The client sees `invalid_api_key`, or `api_key_expired` for
/// a genuine key past its expiry (only its holder can present it, so telling them
/// reveals nothing); the reason is for logs and metrics, and names no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadChecksum,
    Unknown,
    WrongSecret,
    OwnerInactive,
    Expired,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadChecksum => "bad_checksum",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::OwnerInactive => "owner_inactive",
            Self::Expired => "expired",
        }
    }
}

/// Verifies a presented key, from the cache when it can, and notes the use and its
/// source.
pub async fn verify_key(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    let result = match verify_cached(state, presented) {
        Some(result) => result,
        None => check(state, presented).await?,
    };
    finish(state, result, client)
}

/// The part of verification that needs no database: a malformed key, a bad checksum,
/// or a key in the cache. `None` when the store must be asked.
pub fn verify_cached(state: &AppState, presented: &str) -> Option<Result<Verified, Refusal>> {
    let parsed = match PresentedKey::parse(presented) {
        Ok(p) => p,
        Err(keysmith_core::KeyFormatError::BadChecksum) => return Some(Err(Refusal::BadChecksum)),
        Err(_) => return Some(Err(Refusal::Malformed)),
    };
    let PresentedKey::V1(v1) = parsed else {
        return None;
    };
    let now = state.now();
    let entry = state.cache.get(v1.key_id(), now)?;
    Some(judge(KeyId::from(v1), &entry, &parsed.digest(), now))
}

/// Records the outcome: the use and its source when accepted, the metric either way.
pub fn finish(state: &AppState, result: Result<Verified, Refusal>, client: Client<'_>) -> Result<Verified, ApiError> {
    match result {
        Ok(verified) => {
            state.usage.record(&verified.key_id, state.now(), client);
            state.metrics.verified("accepted");
            Ok(verified)
        }
        Err(refusal) => {
            state.metrics.verified(refusal.as_str());
            tracing::info!(auth.refusal = refusal.as_str(), "API key refused");
            Err(if refusal == Refusal::Expired {
                ApiError::ApiKeyExpired
            } else {
                ApiError::InvalidApiKey
            })
        }
    }
}

/// The stored record of a genuine key (the right secret for a known key ID, or a
/// known legacy key), whatever its state; or why the string is not one.
pub async fn lookup(state: &AppState, presented: &str) -> Result<Result<AuthRecord, Refusal>, ApiError> {
    let parsed = match PresentedKey::parse(presented) {
        Ok(p) => p,
        Err(keysmith_core::KeyFormatError::BadChecksum) => return Ok(Err(Refusal::BadChecksum)),
        Err(_) => return Ok(Err(Refusal::Malformed)),
    };
    let record = match parsed {
        PresentedKey::V1(v1) => state.store.find_key_for_auth(&KeyId::from(v1)).await?,
        PresentedKey::Legacy(legacy) => state.store.find_legacy_key_for_auth(&legacy.digest()).await?,
    };
    let Some(record) = record else {
        return Ok(Err(Refusal::Unknown));
    };
    if !record.digest.ct_eq(&parsed.digest()) {
        return Ok(Err(Refusal::WrongSecret));
    }
    Ok(Ok(record))
}

/// The miss path: read the store, and fill the cache.
async fn check(state: &AppState, presented: &str) -> Result<Result<Verified, Refusal>, ApiError> {
    let parsed = match PresentedKey::parse(presented) {
        Ok(p) => p,
        Err(keysmith_core::KeyFormatError::BadChecksum) => return Ok(Err(Refusal::BadChecksum)),
        Err(_) => return Ok(Err(Refusal::Malformed)),
    };
    let now = state.now();
    let (key_id, entry) = match parsed {
        PresentedKey::V1(v1) => {
            let key_id = KeyId::from(v1);
            // Taken before the read: an invalidation meanwhile voids the fill.
            let ticket = state.cache.ticket();
            let Some(record) = state.store.find_key_for_auth(&key_id).await? else {
                return Ok(Err(Refusal::Unknown));
            };
            let entry = Entry::from_record(&record, now);
            state.cache.fill(ticket, v1.key_id(), entry.clone());
            (key_id, entry)
        }
        PresentedKey::Legacy(legacy) => match state.store.find_legacy_key_for_auth(&legacy.digest()).await? {
            Some(record) => (record.key_id.clone(), Entry::from_record(&record, now)),
            None => return Ok(Err(Refusal::Unknown)),
        },
    };
    Ok(judge(key_id, &entry, &parsed.digest(), now))
}

/// The checks after the lookup, the same for a cached and a freshly read key.
fn judge(key_id: KeyId, entry: &Entry, digest: &KeyDigest, now: i64) -> Result<Verified, Refusal> {
    if !entry.digest.ct_eq(digest) {
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
        owner: entry.user(),
        orgs: entry.owner.orgs.clone(),
    })
}
