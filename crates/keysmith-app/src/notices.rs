//! Warnings before a key lapses (`api_key.expiring`, at each lead time) and about
//! keys nobody uses (`api_key.unused`, after an organization's number of days).
//!
//! A notice is an audit entry in each organization of the key's owner, and so a webhook
//! event. Each is given once per key, per lead time (or organization) and per expiry
//! (or last use): the store records it in `key_notices` in the transaction that
//! appends the entries, and the replica whose insert lands is the one that gives it.
//! A changed expiry, or a key used again, arms its notices anew.

use crate::App;
use crate::access::audit_orgs;
use crate::audit::{Action, AuditContext};
use crate::error::Result;
use crate::time::{DAY_MS, rfc3339};
use keysmith_store::StoredKey;

/// Keys each announcement pass takes per lead time or organization; the rest wait
/// for the next pass.
const BATCH: u32 = 200;
/// The longest lead time and idle period, in days.
pub const MAX_DAYS: u32 = 3650;

/// When keys are warned about before they expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSettings {
    /// Lead times in days, shortest first, without repeats; empty: no warnings.
    expiry_lead_days: Vec<u32>,
}

impl Default for NoticeSettings {
    /// A week ahead and a day ahead.
    fn default() -> Self {
        Self {
            expiry_lead_days: vec![1, 7],
        }
    }
}

impl NoticeSettings {
    /// Lead times as written in the configuration: days, comma-separated (`7,1`); an
    /// empty list or `off` gives no warnings.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(Self {
                expiry_lead_days: Vec::new(),
            });
        }
        let mut days = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            match part.parse::<u32>() {
                Ok(d) if (1..=MAX_DAYS).contains(&d) => days.push(d),
                _ => {
                    return Err(format!(
                        "`{part}` is not a lead time: give days from 1 to {MAX_DAYS}, comma-separated (7,1), or off"
                    ));
                }
            }
        }
        days.sort_unstable();
        days.dedup();
        Ok(Self { expiry_lead_days: days })
    }

    /// The lead times, shortest first.
    pub fn expiry_lead_days(&self) -> &[u32] {
        &self.expiry_lead_days
    }
}

/// The notice kind of a lead time (`expiring:7`).
fn expiring_kind(days: u32) -> String {
    format!("expiring:{days}")
}

/// Warns about keys that reach a lead time before their expiry. A key that crosses
/// several at once (made 12 hours before it expires, or a server stopped for a week)
/// gets the warning of the shortest only; the longer ones are recorded as done.
/// Returns how many warnings this replica gave.
pub async fn announce_expiring(app: &App) -> Result<usize> {
    let now = app.now();
    let leads = app.notices.expiry_lead_days();
    let mut given = 0;
    for (i, &days) in leads.iter().enumerate() {
        let kinds: Vec<String> = leads[i..].iter().map(|&d| expiring_kind(d)).collect();
        for key in app
            .store
            .keys_expiring(now, now + i64::from(days) * DAY_MS, &kinds[0], BATCH)
            .await?
        {
            let Some(expires_at) = key.expires_at else {
                continue;
            };
            let detail = serde_json::json!({
                "name": key.name,
                "owner": key.owner.username,
                "expires_at": rfc3339(expires_at),
                "lead_time_days": days,
            });
            if give(app, &key, Action::ApiKeyExpiring, &kinds, expires_at, detail, None).await? {
                given += 1;
            }
        }
    }
    Ok(given)
}

/// Announces keys not used (or, never used, not made) for as many days as their
/// organization's `unused_key_notice_days`, once per period of idleness. Returns how
/// many notices this replica gave.
pub async fn announce_idle(app: &App) -> Result<usize> {
    let now = app.now();
    let mut given = 0;
    for org in app.store.orgs_announcing_idle_keys().await? {
        let days = org.unused_key_notice_days;
        let kind = format!("unused:{}", org.id.0);
        let idle_since = now - i64::from(days) * DAY_MS;
        for key in app.store.idle_keys(org.id, idle_since, now, &kind, BATCH).await? {
            let last_activity = key.last_used_at.unwrap_or(key.created_at);
            let detail = serde_json::json!({
                "name": key.name,
                "owner": key.owner.username,
                "last_used_at": key.last_used_at.map(rfc3339),
                "created_at": rfc3339(key.created_at),
                "unused_days": days,
            });
            let kinds = [kind.clone()];
            if give(
                app,
                &key,
                Action::ApiKeyUnused,
                &kinds,
                last_activity,
                detail,
                Some(org.id),
            )
            .await?
            {
                given += 1;
            }
        }
    }
    Ok(given)
}

/// Records one notice with its audit entries: in `org`, or in each organization of
/// the key's owner.
async fn give(
    app: &App,
    key: &StoredKey,
    action: Action,
    kinds: &[String],
    due_at: i64,
    detail: serde_json::Value,
    org: Option<keysmith_core::OrgId>,
) -> Result<bool> {
    let now = app.now();
    let orgs = match org {
        Some(org) => vec![org],
        None => audit_orgs(app, key.owner.id).await?,
    };
    let entries = AuditContext::operator(now).entries(&orgs, action, key.key_id.as_str(), Some(detail));
    Ok(app
        .store
        .claim_key_notice(&key.key_id, kinds, due_at, now, &entries)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_times_are_days_sorted_without_repeats() {
        assert_eq!(NoticeSettings::parse("7,1").unwrap().expiry_lead_days(), [1, 7]);
        assert_eq!(
            NoticeSettings::parse(" 30, 7 ,7,1").unwrap().expiry_lead_days(),
            [1, 7, 30]
        );
        assert_eq!(NoticeSettings::parse("off").unwrap().expiry_lead_days(), [] as [u32; 0]);
        assert_eq!(NoticeSettings::parse("").unwrap().expiry_lead_days(), [] as [u32; 0]);
        assert_eq!(NoticeSettings::default().expiry_lead_days(), [1, 7]);
        for bad in ["0", "7,,1", "-1", "1.5", "3651", "week"] {
            let e = NoticeSettings::parse(bad).unwrap_err();
            assert!(e.contains("lead time"), "{bad}: {e}");
        }
    }
}
