//! Webhook endpoints of an organization, and the outbox that turns audit entries into
//! deliveries, in the Standard Webhooks format (<https://www.standardwebhooks.com>):
//! headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, keyed with the endpoint's
//! `whsec_` secret).
//!
//! Events come from the audit log, which every change writes in its own transaction:
//! [`pump`] turns new audit entries into deliveries (moving a cursor with
//! compare-and-set, so replicas never queue an event twice and a crash loses none).
//! Sending them is the server's part (it owns the HTTP client). Payloads carry key
//! IDs, names and owners, never a secret. Endpoint secrets are derived from the
//! server's secret and never stored.
//!
//! Rotating an endpoint's secret bumps its `secret_version`; for [`SECRET_GRACE_MS`]
//! after that, each attempt carries two signatures, space-separated as the
//! specification allows (`v1,<new> v1,<previous>`), so the receiver can switch to the
//! new secret at its own pace.

use crate::access::admin_org;
use crate::audit::{Action, AuditContext};
use crate::caller::Caller;
use crate::error::{AppError, Missing, Result};
use crate::time::{DAY_MS, rfc3339};
use crate::{Acting, App};
use base64::Engine;
use hmac::{Hmac, Mac};
use keysmith_core::{OrgId, SecretString};
use keysmith_store::{AuditEntry, Delivery, NewDelivery, NewWebhook, Org, Webhook};
use sha2::Sha256;
use std::collections::HashMap;

/// How long after a rotation deliveries are signed with the previous secret as well.
pub const SECRET_GRACE_MS: i64 = DAY_MS;
/// The longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description of an endpoint, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// How many deliveries of an endpoint its log shows.
pub const DELIVERY_LOG_LEN: u32 = 100;

/// 32 random bytes that never leave the process: webhook signing secrets are derived
/// from it, so the database holds none. Its `Debug` shows nothing.
#[derive(Clone)]
pub struct ServerSecret(pub [u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl ServerSecret {
    /// A fresh random secret.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        // getrandom fails only without an OS random source; all zeros would still
        // derive working (if guessable) secrets, and the server logs the failure.
        if let Err(e) = getrandom::fill(&mut bytes) {
            tracing::error!(error.detail = %e, "no random source for the server secret");
        }
        Self(bytes)
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| AppError::Internal(e.to_string()))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The endpoint's signing secret, `whsec_<base64>`, derived from the server's secret.
pub fn signing_secret(secret: &ServerSecret, webhook: &Webhook) -> Result<SecretString> {
    secret_of_version(secret, webhook, webhook.secret_version)
}

/// The secret of one version of the endpoint's secret.
fn secret_of_version(secret: &ServerSecret, webhook: &Webhook, version: i64) -> Result<SecretString> {
    let label = format!("keysmith-webhook-v1:{}:{}", webhook.uid, version);
    let key = hmac(&secret.0, &[label.as_bytes()])?;
    Ok(SecretString::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )))
}

/// Until when (Unix ms) the secret before the last rotation still signs deliveries;
/// `None` if the endpoint was never rotated or that time has passed at `now`.
pub fn previous_secret_until(webhook: &Webhook, now: i64) -> Option<i64> {
    webhook.previous_secret_version?;
    let until = webhook.secret_rotated_at?.saturating_add(SECRET_GRACE_MS);
    (now < until).then_some(until)
}

/// The `webhook-signature` value of a delivery attempted at `now`: the current
/// secret's signature, then, within the grace period after a rotation, the previous
/// secret's.
pub fn signatures(
    secret: &ServerSecret,
    webhook: &Webhook,
    now: i64,
    message_id: &str,
    timestamp_secs: i64,
    body: &str,
) -> Result<String> {
    let current = signing_secret(secret, webhook)?;
    let mut value = signature(current.expose(), message_id, timestamp_secs, body)?;
    if let (Some(previous), Some(_)) = (webhook.previous_secret_version, previous_secret_until(webhook, now)) {
        let previous = secret_of_version(secret, webhook, previous)?;
        value.push(' ');
        value.push_str(&signature(previous.expose(), message_id, timestamp_secs, body)?);
    }
    Ok(value)
}

/// The `webhook-signature` value for a message, as Standard Webhooks defines it.
pub fn signature(secret: &str, message_id: &str, timestamp_secs: i64, body: &str) -> Result<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| AppError::Internal("a webhook secret is not base64".into()))?;
    let ts = timestamp_secs.to_string();
    let mac = hmac(
        &key,
        &[message_id.as_bytes(), b".", ts.as_bytes(), b".", body.as_bytes()],
    )?;
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac)))
}

// ------------------------------------------------------------------ endpoints

/// An endpoint to register, as the caller gave it.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    /// Where to POST events: an absolute `https://` (or `http://`) URL.
    pub url: String,
    /// The events to send; `None`: all of them.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// An endpoint with its signing secret: the answer of a registration or a rotation,
/// the only times the secret is shown.
#[derive(Debug)]
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: SecretString,
}

/// The organization's webhook endpoints (org admins).
pub async fn list(app: &App, caller: &Caller, org: &str) -> Result<Vec<Webhook>> {
    let org = admin_org(app, caller, org).await?;
    Ok(app.store.list_webhooks(org.id).await?)
}

/// One endpoint of the organization (org admins).
pub async fn get(app: &App, caller: &Caller, org: &str, id: i64) -> Result<Webhook> {
    let org = admin_org(app, caller, org).await?;
    org_webhook(app, &org, id).await
}

async fn org_webhook(app: &App, org: &Org, id: i64) -> Result<Webhook> {
    match app.store.get_webhook(id).await? {
        Some(w) if w.org == org.id => Ok(w),
        _ => Err(AppError::NotFound(Missing::Webhook)),
    }
}

/// An endpoint URL as it is stored: absolute http(s), with a host, no credentials.
pub fn parse_url(raw: &str) -> Result<String> {
    let not_absolute = || AppError::invalid("url", "url must be an absolute http(s) URL");
    let url = url::Url::parse(raw.trim()).map_err(|_| not_absolute())?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(not_absolute());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::invalid(
            "url",
            "url must not carry credentials; verify deliveries by their signature",
        ));
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(AppError::invalid(
            "url",
            format!("url: at most {MAX_URL_LEN} characters"),
        ));
    }
    Ok(url.to_string())
}

/// The events named, sorted and without repeats; every event when none is named.
fn parse_events(events: Option<Vec<String>>) -> Result<Vec<String>> {
    let names = || Action::EVENTS.map(Action::as_str).join(", ");
    match events {
        None => Ok(Action::EVENTS.iter().map(|e| e.as_str().to_owned()).collect()),
        Some(events) if events.is_empty() => Err(AppError::invalid("events", "events: name at least one event")),
        Some(mut events) => {
            // The event's name before it had lead times, as subscriptions made with
            // it were migrated (migration 0014).
            for event in &mut events {
                if event == Action::ApiKeyExpiringSoon.as_str() {
                    Action::ApiKeyExpiring.as_str().clone_into(event);
                }
            }
            if let Some(bad) = events.iter().find(|e| !Action::parse(e).is_some_and(Action::is_event)) {
                return Err(AppError::invalid(
                    "events",
                    format!("unknown event `{bad}`; the events are {}", names()),
                ));
            }
            events.sort();
            events.dedup();
            Ok(events)
        }
    }
}

/// Registers an endpoint (org admins); the answer holds its signing secret, once.
pub async fn create(app: &App, acting: &Acting<'_>, org: &str, endpoint: NewEndpoint) -> Result<WithSecret> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let url = parse_url(&endpoint.url)?;
    let events = parse_events(endpoint.events)?;
    let description = endpoint.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::invalid(
            "description",
            format!("description: at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let uid = keysmith_core::base62::random_string(22).map_err(|e| AppError::Internal(e.to_string()))?;
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::WebhookCreated,
        &url,
        Some(serde_json::json!({ "events": events })),
    );
    let webhook = app
        .store
        .create_webhook(
            NewWebhook {
                org: org.id,
                uid,
                url,
                events,
                description,
                created_at: acting.now,
                created_by: Some(acting.caller.id()),
            },
            &audit,
        )
        .await?;
    let secret = signing_secret(&app.server_secret, &webhook)?;
    tracing::info!(
        webhook.id = webhook.id,
        org.id = org.id.0,
        "webhook endpoint registered"
    );
    Ok(WithSecret { webhook, secret })
}

/// Rotates an endpoint's signing secret (org admins); the answer holds the new
/// secret, once. For [`SECRET_GRACE_MS`] deliveries carry the previous secret's
/// signature as well; rotating again within that time retires the secret before the
/// previous one at once.
pub async fn rotate_secret(app: &App, acting: &Acting<'_>, org: &str, id: i64) -> Result<WithSecret> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let webhook = org_webhook(app, &org, id).await?;
    // The entry names the endpoint and the time the previous secret stops signing;
    // never a secret.
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::WebhookSecretRotated,
        &webhook.url,
        Some(serde_json::json!({ "previous_secret_until": rfc3339(acting.now.saturating_add(SECRET_GRACE_MS)) })),
    );
    let webhook = app
        .store
        .rotate_webhook_secret(webhook.id, acting.now, &audit)
        .await?
        .ok_or(AppError::NotFound(Missing::Webhook))?;
    let secret = signing_secret(&app.server_secret, &webhook)?;
    tracing::info!(
        webhook.id = webhook.id,
        org.id = org.id.0,
        "webhook signing secret rotated"
    );
    Ok(WithSecret { webhook, secret })
}

/// Removes an endpoint (org admins); its pending deliveries are dropped.
pub async fn delete(app: &App, acting: &Acting<'_>, org: &str, id: i64) -> Result<()> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let webhook = org_webhook(app, &org, id).await?;
    let audit = AuditContext::of(acting).entry(org.id, Action::WebhookDeleted, &webhook.url, None);
    if !app.store.delete_webhook(webhook.id, &audit).await? {
        return Err(AppError::NotFound(Missing::Webhook));
    }
    Ok(())
}

/// The delivery log of an endpoint, newest first (org admins).
pub async fn deliveries(app: &App, caller: &Caller, org: &str, id: i64) -> Result<Vec<Delivery>> {
    let org = admin_org(app, caller, org).await?;
    let webhook = org_webhook(app, &org, id).await?;
    Ok(app.store.list_deliveries(webhook.id, DELIVERY_LOG_LEN).await?)
}

// ------------------------------------------------------------------ the outbox

/// An event's payload: what happened, to which key, in which organization, by whom.
fn payload(entry: &AuditEntry, org: &str) -> String {
    let detail: serde_json::Value = entry
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "type": entry.action,
        "timestamp": rfc3339(entry.at),
        "data": {
            "organization": org,
            "key_id": entry.target,
            "actor": entry.actor_name,
            "source_address": entry.source_address,
            "detail": detail,
        }
    })
    .to_string()
}

/// Turns new audit entries into deliveries. Returns how many deliveries were queued.
pub async fn pump(app: &App) -> Result<usize> {
    let mut queued = 0;
    loop {
        let (cursor, entries) = app.store.outbox_batch(app.now(), 200).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            return Ok(queued);
        };
        let mut endpoints: HashMap<OrgId, (Option<Org>, Vec<Webhook>)> = HashMap::new();
        let mut deliveries = Vec::new();
        let events = entries
            .iter()
            .filter(|e| Action::parse(&e.action).is_some_and(Action::is_event));
        for entry in events {
            if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(entry.org) {
                let org = app.store.get_org(entry.org).await?;
                let hooks = app.store.list_webhooks(entry.org).await?;
                slot.insert((org, hooks));
            }
            let Some((Some(org), hooks)) = endpoints.get(&entry.org) else {
                continue;
            };
            for hook in hooks.iter().filter(|h| h.events.contains(&entry.action)) {
                deliveries.push(NewDelivery {
                    endpoint_id: hook.id,
                    message_id: format!("msg_{}_{}", entry.id, hook.id),
                    event_type: entry.action.clone(),
                    payload: payload(entry, &org.name),
                    created_at: app.now(),
                });
            }
        }
        if app.store.commit_outbox(cursor, last, &deliveries).await? {
            queued += deliveries.len();
        }
        // Else another replica moved the cursor first; read again from where it is.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_previous_secret_signs_for_the_grace_period_after_a_rotation() {
        let mut hook = Webhook {
            id: 1,
            org: OrgId(1),
            uid: "uid".into(),
            url: "https://example.com/hook".into(),
            events: vec![],
            description: String::new(),
            secret_version: 1,
            previous_secret_version: None,
            secret_rotated_at: None,
            created_at: 0,
        };
        assert_eq!(previous_secret_until(&hook, 0), None, "never rotated");
        hook.secret_version = 2;
        hook.previous_secret_version = Some(1);
        hook.secret_rotated_at = Some(1_000);
        let until = 1_000 + SECRET_GRACE_MS;
        assert_eq!(previous_secret_until(&hook, 1_000), Some(until));
        assert_eq!(previous_secret_until(&hook, until - 1), Some(until));
        assert_eq!(previous_secret_until(&hook, until), None, "over");
    }

    #[test]
    fn endpoint_urls_are_absolute_http_without_credentials() {
        assert_eq!(
            parse_url(" https://example.com/hook ").unwrap(),
            "https://example.com/hook"
        );
        for bad in [
            "example.com/hook",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "/relative",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, AppError::Invalid { field: "url", .. }), "{bad}: {err:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_url(&long).is_err());
    }

    #[test]
    fn events_are_the_webhook_events_of_the_audit_vocabulary() {
        assert_eq!(parse_events(None).unwrap().len(), Action::EVENTS.len());
        let some = parse_events(Some(vec![
            "api_key.deleted".into(),
            "api_key.created".into(),
            "api_key.deleted".into(),
        ]));
        assert_eq!(some.unwrap(), ["api_key.created", "api_key.deleted"]);
        // An audit action that is not an event is refused like an unknown one.
        for bad in ["user.created", "api_key.nope"] {
            let err = parse_events(Some(vec![bad.into()])).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(parse_events(Some(vec![])).is_err());
    }
}
