//! How long what is over stays: expired keys and finished webhook deliveries, each
//! removed a configured number of days after it ended (0 keeps them for ever, the
//! default). A removed key is audited as `api_key.purged` in its owner's organizations;
//! the audit log itself is never purged.

use crate::App;
use crate::access::audit_orgs;
use crate::audit::{Action, AuditContext};
use crate::error::Result;
use crate::time::{DAY_MS, rfc3339};

/// Keys one pass removes at most; the rest wait for the next pass.
const BATCH: u32 = 500;

/// Days after which what is over is removed; 0 keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Days after a key's expiry (or its rotation's grace period) until it is removed.
    pub expired_key_days: u32,
    /// Days after a webhook delivery was made until it leaves the delivery log, once
    /// delivered or failed.
    pub delivery_days: u32,
}

/// What a pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub keys: usize,
    pub deliveries: u64,
}

/// Removes what is past its retention.
pub async fn purge(app: &App) -> Result<Purged> {
    let now = app.now();
    let mut purged = Purged::default();
    let settings = app.retention;
    if settings.expired_key_days > 0 {
        let before = now - i64::from(settings.expired_key_days) * DAY_MS;
        for key in app.store.keys_expired_before(before, BATCH).await? {
            let orgs = audit_orgs(app, key.owner.id).await?;
            let detail = serde_json::json!({
                "name": key.name,
                "owner": key.owner.username,
                "expired_at": key.expires_at.map(rfc3339),
                "retention_days": settings.expired_key_days,
            });
            let audit =
                AuditContext::operator(now).entries(&orgs, Action::ApiKeyPurged, key.key_id.as_str(), Some(detail));
            if app.store.delete_key(&key.key_id, &audit).await? {
                purged.keys += 1;
            }
        }
    }
    if settings.delivery_days > 0 {
        purged.deliveries = app
            .store
            .purge_deliveries(now - i64::from(settings.delivery_days) * DAY_MS)
            .await?;
    }
    Ok(purged)
}
