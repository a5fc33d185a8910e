//! The hot path: from a presented string to the key's owner, or a refusal.
//!
//! parse (no allocation, never panics) → checksum (a mistyped or random string is
//! refused here, without touching the database) → lookup by key ID (v1) or by digest
//! (legacy) → constant-time digest comparison → owner active → accept, and note the
//! use in memory.

use crate::error::ApiError;
use crate::state::AppState;
use keysmith_core::{KeyId, PresentedKey};
use keysmith_store::{AuthRecord, UserRef};

/// A key that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: KeyId,
    pub owner: UserRef,
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

/// Verifies a presented key against the store, and notes the use and its source.
pub async fn verify_key(state: &AppState, presented: &str, client: Client<'_>) -> Result<Verified, ApiError> {
    match check(state, presented).await? {
        Ok(verified) => {
            state.usage.record(&verified.key_id, state.now(), client);
            Ok(verified)
        }
        Err(refusal) => {
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

async fn check(state: &AppState, presented: &str) -> Result<Result<Verified, Refusal>, ApiError> {
    let record = match lookup(state, presented).await? {
        Ok(record) => record,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if !record.owner_active {
        return Ok(Err(Refusal::OwnerInactive));
    }
    if record.expires_at.is_some_and(|at| at <= state.now()) {
        return Ok(Err(Refusal::Expired));
    }
    Ok(Ok(Verified {
        key_id: record.key_id,
        owner: record.owner,
    }))
}
