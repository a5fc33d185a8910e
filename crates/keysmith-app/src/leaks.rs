//! Leak response: revoking keys that were exposed, reported by whoever holds them
//! (the API's and the web's `revoke-exposed`) or by GitHub's secret scanning (whose
//! signed requests the server checks). A genuine key is deleted at once; the audit log
//! records who reported it and where it was found (`api_key.exposed`), which also
//! announces it by webhook. Reports from holders need no credentials, so they are
//! limited per client address ([`count_report`]).

use crate::App;
use crate::access::audit_orgs;
use crate::audit::{Action, AuditContext};
use crate::error::{AppError, Result};
use crate::verification::{self, Lookup, Refusal};
use keysmith_core::{KeyId, PresentedKey};
use keysmith_store::AuditQuery;

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

    fn name(&self) -> &'static str {
        match self {
            Self::Holder => "holder",
            Self::GitHub { .. } => "github",
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

/// Counts one report from someone holding a key against the client's address, or
/// refuses it once the address has sent `exposure_reports_per_minute` in the current
/// minute. Every report counts, whatever it came to: counting only keys that were not
/// found would let the limit tell which keys exist, which the answer never does. An
/// IPv6 /64 counts as one address, as for failed verifications.
pub fn count_report(app: &App, address: &str) -> Result<()> {
    let limiter = &app.exposure_reports;
    if limiter.max_failures() == 0 {
        return Ok(());
    }
    let key = verification::limit_key(address);
    let now = app.now();
    limiter
        .check(&key, now)
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
    if limiter.record_failure(&key, now) == limiter.max_failures() {
        tracing::warn!(
            source.address = address,
            "too many exposed-key reports from this address; refusing it for a minute"
        );
    }
    Ok(())
}

/// Revokes `presented` if it is a genuine key. Never says more than [`Finding`].
pub async fn revoke(app: &App, presented: &str, report: &Report, source: &str) -> Result<Finding> {
    // Pasted from a file or a terminal, a key often ends in a newline.
    let presented = presented.trim();
    let record = match verification::lookup(app, presented).await? {
        Lookup::Genuine(record) => record,
        Lookup::Refused(Refusal::Unknown) => return was_deleted(app, presented).await,
        Lookup::Refused(_) => return Ok(Finding::NotOurs),
    };
    let Some(key) = app.store.get_key(&record.key_id).await? else {
        return Ok(Finding::AlreadyRevoked);
    };
    let orgs = audit_orgs(app, key.owner.id).await?;
    let mut detail = report.detail();
    detail["name"] = serde_json::json!(key.name);
    detail["owner"] = serde_json::json!(key.owner.username);
    let entries = AuditContext::reported(app.now(), source).entries(
        &orgs,
        Action::ApiKeyExposed,
        key.key_id.as_str(),
        Some(detail),
    );
    if !app.store.delete_key(&key.key_id, &entries).await? {
        return Ok(Finding::AlreadyRevoked);
    }
    tracing::warn!(key.id = %key.key_id, owner.id = key.owner.id.0, reporter = report.name(), "exposed API key revoked");
    Ok(Finding::Revoked)
}

/// A well-formed v1 key whose ID is no longer stored: genuine if the audit log
/// remembers the key ID being deleted (the secret cannot be checked any more, but
/// the checksum and the key ID together make a coincidence vanishingly unlikely).
async fn was_deleted(app: &App, presented: &str) -> Result<Finding> {
    let Ok(PresentedKey::V1(v1)) = PresentedKey::parse(presented) else {
        return Ok(Finding::NotOurs);
    };
    let key_id = KeyId::from(v1);
    let query = AuditQuery {
        target: Some(key_id.to_string()),
        limit: 20,
        ..AuditQuery::default()
    };
    let gone = app
        .store
        .list_audit(&query)
        .await?
        .iter()
        .any(|e| e.action == Action::ApiKeyDeleted.as_str() || e.action == Action::ApiKeyExposed.as_str());
    Ok(if gone {
        Finding::AlreadyRevoked
    } else {
        Finding::NotOurs
    })
}
