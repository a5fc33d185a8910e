//! Leak response: revoking keys that were exposed, reported by whoever holds them
//! (`POST /api/v1/api-keys/revoke-exposed`) or by GitHub's secret scanning
//! ([`github`]). A genuine key is deleted at once; the audit log records who reported
//! it and where it was found (`api_key.exposed`), which also announces it by webhook.
//! Reports from holders need no credentials, so they are limited per client address
//! ([`count_report`]).

pub mod github;

use crate::auth::verify::{self, Refusal};
use crate::error::ApiError;
use crate::state::AppState;
use keysmith_core::{KeyId, PresentedKey};
use keysmith_store::{AuditQuery, NewAuditEntry};

/// Who reported the exposure, and what they said about it.
#[derive(Debug, Clone)]
pub enum Report {
    /// Someone holding the key revoked it.
    Holder,
    /// GitHub's secret scanning found it.
    GitHub {
        url: Option<String>,
        source: Option<String>,
    },
}

impl Report {
    fn detail(&self) -> serde_json::Value {
        match self {
            Self::Holder => serde_json::json!({ "reporter": "holder" }),
            Self::GitHub { url, source } => serde_json::json!({ "reporter": "github", "url": url, "source": source }),
        }
    }
}

/// What a report came to, for one presented string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// A genuine key; it no longer works.
    Revoked,
    /// A genuine key that had already been deleted.
    AlreadyRevoked,
    /// Not a key of this server.
    NotOurs,
}

/// Counts one report from someone holding a key (`revoke-exposed`, the API or the web
/// page) against the client's address, or refuses it with 429 once the address has
/// sent `exposure_reports_per_minute` in the current minute. Every report counts,
/// whatever it came to: counting only keys that were not found would let the limit
/// tell which keys exist, which the answer never does. An IPv6 /64 counts as one
/// address, as for failed verifications.
pub fn count_report(state: &AppState, address: &str) -> Result<(), ApiError> {
    let limiter = &state.exposure_reports_by_address;
    if limiter.max_failures() == 0 {
        return Ok(());
    }
    let key = verify::limit_key(address);
    let now = state.now();
    limiter
        .check(&key, now)
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    if limiter.record_failure(&key, now) == limiter.max_failures() {
        tracing::warn!(
            source.address = address,
            "too many exposed-key reports from this address; refusing it for a minute"
        );
    }
    Ok(())
}

/// Revokes `presented` if it is a genuine key. Never says more than [`Finding`].
pub async fn revoke(state: &AppState, presented: &str, report: &Report, source: &str) -> Result<Finding, ApiError> {
    // Pasted from a file or a terminal, a key often ends in a newline.
    let presented = presented.trim();
    let record = match verify::lookup(state, presented).await? {
        Ok(record) => record,
        Err(Refusal::Unknown) => return was_deleted(state, presented).await,
        Err(_) => return Ok(Finding::NotOurs),
    };
    let Some(key) = state.store.get_key(&record.key_id).await? else {
        return Ok(Finding::AlreadyRevoked);
    };
    let orgs = crate::access::audit_orgs(state, key.owner.id).await?;
    let mut detail = report.detail();
    detail["name"] = serde_json::json!(key.name);
    detail["owner"] = serde_json::json!(key.owner.username);
    let now = state.now();
    let entries: Vec<NewAuditEntry> = orgs
        .iter()
        .map(|org| NewAuditEntry {
            org: *org,
            at: now,
            actor: None,
            action: "api_key.exposed".to_owned(),
            target_kind: "api_key".to_owned(),
            target: key.key_id.to_string(),
            source_address: Some(source.to_owned()),
            detail: Some(detail.to_string()),
        })
        .collect();
    if !state.store.delete_key(&key.key_id, &entries).await? {
        return Ok(Finding::AlreadyRevoked);
    }
    tracing::warn!(key.id = %key.key_id, owner.id = key.owner.id.0, reporter = ?report_name(report), "exposed API key revoked");
    Ok(Finding::Revoked)
}

fn report_name(report: &Report) -> &'static str {
    match report {
        Report::Holder => "holder",
        Report::GitHub { .. } => "github",
    }
}

/// A well-formed v1 key whose ID is no longer stored: genuine if the audit log
/// remembers the key ID being deleted (the secret cannot be checked any more, but
/// the checksum and the key ID together make a coincidence vanishingly unlikely).
async fn was_deleted(state: &AppState, presented: &str) -> Result<Finding, ApiError> {
    let Ok(PresentedKey::V1(v1)) = PresentedKey::parse(presented) else {
        return Ok(Finding::NotOurs);
    };
    let key_id = KeyId::from(v1);
    let query = AuditQuery {
        target: Some(key_id.to_string()),
        limit: 20,
        ..AuditQuery::default()
    };
    let gone = state
        .store
        .list_audit(&query)
        .await?
        .iter()
        .any(|e| e.action == "api_key.deleted" || e.action == "api_key.exposed");
    Ok(if gone {
        Finding::AlreadyRevoked
    } else {
        Finding::NotOurs
    })
}
