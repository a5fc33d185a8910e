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
use keysmith_core::role::PrincipalKind;
use keysmith_store::{NewEmail, StoredKey, User};

/// Keys each announcement pass takes per lead time or organization; the rest wait
/// for the next pass.
const BATCH: u32 = 200;
/// The longest lead time and idle period, in days.
pub const MAX_DAYS: u32 = 3650;

/// When keys are warned about before they expire, and whether by email too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSettings {
    /// Lead times in days, shortest first, without repeats; empty: no warnings.
    expiry_lead_days: Vec<u32>,
    /// Queue an email for each notice (the server sends them when SMTP is set up).
    pub email: bool,
    /// Where people reach the web interface (`https://keys.example.com`), for links
    /// in emails; `None`: no link.
    pub public_origin: Option<String>,
}

impl Default for NoticeSettings {
    /// A week ahead and a day ahead; no email.
    fn default() -> Self {
        Self {
            expiry_lead_days: vec![1, 7],
            email: false,
            public_origin: None,
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
                ..Self::default()
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
        Ok(Self {
            expiry_lead_days: days,
            ..Self::default()
        })
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
            let notice = Notice::Expiring { expires_at };
            if give(app, &key, &notice, &kinds, expires_at, detail, None).await? {
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
            let notice = Notice::Unused { days, org: &org.name };
            if give(app, &key, &notice, &kinds, last_activity, detail, Some(org.id)).await? {
                given += 1;
            }
        }
    }
    Ok(given)
}

/// What a notice tells of.
enum Notice<'a> {
    Expiring { expires_at: i64 },
    Unused { days: u32, org: &'a str },
}

impl Notice<'_> {
    fn action(&self) -> Action {
        match self {
            Self::Expiring { .. } => Action::ApiKeyExpiring,
            Self::Unused { .. } => Action::ApiKeyUnused,
        }
    }
}

/// Records one notice with its audit entries (in `org`, or in each organization of
/// the key's owner) and, when email is on, its messages.
async fn give(
    app: &App,
    key: &StoredKey,
    notice: &Notice<'_>,
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
    let entries = AuditContext::operator(now).entries(&orgs, notice.action(), key.key_id.as_str(), Some(detail));
    let mut emails = Vec::new();
    if app.notices.email {
        for (to, name) in recipients(app, key).await? {
            let (subject, body) = message(app, key, notice, &name, now);
            emails.push(NewEmail {
                dedupe: format!("{}:{}:{due_at}:{to}", kinds[0], key.key_id.as_str()),
                to,
                subject,
                body,
                created_at: now,
            });
        }
    }
    Ok(app
        .store
        .claim_key_notice(&key.key_id, kinds, due_at, now, &entries, &emails)
        .await?)
}

/// Who hears of a key by email, with the name to greet them by: its owner, or for a
/// service account's key the person who made it; only an active account with an
/// address.
async fn recipients(app: &App, key: &StoredKey) -> Result<Vec<(String, String)>> {
    let person = match key.owner.kind {
        PrincipalKind::User => Some(key.owner.id),
        PrincipalKind::ServiceAccount => key.created_by.as_ref().map(|u| u.id),
    };
    let Some(person) = person else {
        return Ok(Vec::new());
    };
    Ok(match app.store.get_user(person).await? {
        Some(User {
            email: Some(email),
            active: true,
            kind: PrincipalKind::User,
            username,
            ..
        }) => vec![(email, username)],
        _ => Vec::new(),
    })
}

/// Text that came from people (names), with every control character taken out, so
/// no line break ever reaches a header or starts a line of its own.
fn plain(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// "in 7 days", "in 5 hours", "within the hour": the time left, to the nearest hour
/// and, from a day on, to the nearest day.
fn within(ms: i64) -> String {
    let hours = (ms + crate::time::HOUR_MS / 2) / crate::time::HOUR_MS;
    match hours {
        ..=0 => "within the hour".to_owned(),
        1 => "in 1 hour".to_owned(),
        2..=23 => format!("in {hours} hours"),
        _ => match (hours + 12) / 24 {
            1 => "in 1 day".to_owned(),
            days => format!("in {days} days"),
        },
    }
}

/// The subject and plain-text body of a notice's email. It names the key by its ID,
/// never its secret.
fn message(app: &App, key: &StoredKey, notice: &Notice<'_>, greet: &str, now: i64) -> (String, String) {
    let name = plain(&key.name);
    let owner = plain(&key.owner.username);
    let id = key.key_id.as_str();
    let whose = match key.owner.kind {
        PrincipalKind::User => format!("your API key \"{name}\""),
        PrincipalKind::ServiceAccount => format!("the API key \"{name}\" of the service account {owner}"),
    };
    // The page of the action the message suggests.
    let link = |action: &str, label: &str| {
        app.notices
            .public_origin
            .as_deref()
            .map(|origin| format!("\n{label} in the web interface: {origin}/keys/{id}/{action}\n"))
            .unwrap_or_default()
    };
    let (subject, body) = match notice {
        Notice::Expiring { expires_at, .. } => {
            let when = within(expires_at - now);
            (
                format!("Keysmith: {whose} expires {when}"),
                format!(
                    "Hello {greet},\n\n\
                     {Whose} ({id}) expires {when}, at {at}. Requests with it will be refused from then on.\n\n\
                     To keep what uses it working, rotate it before then and put the new key where the old one was:\n\n\
                     \x20   keysmith keys rotate {id}\n\n\
                     If nothing uses it any more, let it expire, or delete it now.\n{link}",
                    link = link("rotate", "Rotate it"),
                    greet = plain(greet),
                    Whose = capitalized(&whose),
                    at = rfc3339(*expires_at),
                ),
            )
        }
        Notice::Unused { days, org } => {
            let since = match key.last_used_at {
                Some(t) => format!("has not been used since {}", rfc3339(t)),
                None => format!("has never been used since it was made, at {}", rfc3339(key.created_at)),
            };
            (
                format!("Keysmith: {whose} has not been used for {days} days"),
                format!(
                    "Hello {greet},\n\n\
                     {Whose} ({id}) {since}. The organization {org} announces keys unused for {days} days.\n\n\
                     A key nobody uses can only leak. If nothing needs it, delete it:\n\n\
                     \x20   keysmith keys delete {id}\n\n\
                     If something does, consider a narrower key: a read scope, or a network allowlist.\n{link}",
                    link = link("delete", "Delete it"),
                    greet = plain(greet),
                    Whose = capitalized(&whose),
                    org = plain(org),
                ),
            )
        }
    };
    (
        subject,
        format!("{body}\nThis message names the key by its ID only; Keysmith never sends a key.\n"),
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
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

    #[test]
    fn times_left_read_as_people_say_them() {
        let h = crate::time::HOUR_MS;
        assert_eq!(within(7 * DAY_MS), "in 7 days");
        assert_eq!(within(7 * DAY_MS - 1), "in 7 days");
        assert_eq!(within(DAY_MS + 11 * h), "in 1 day");
        assert_eq!(within(DAY_MS + 12 * h), "in 2 days");
        assert_eq!(within(DAY_MS - 1), "in 1 day");
        assert_eq!(within(12 * h - 1), "in 12 hours");
        assert_eq!(within(h + 1), "in 1 hour");
        assert_eq!(within(h / 2 - 1), "within the hour");
    }

    #[test]
    fn names_lose_their_control_characters() {
        assert_eq!(plain("a\r\nBcc: x@y\u{7}"), "aBcc: x@y");
        assert_eq!(capitalized("your key"), "Your key");
    }
}
