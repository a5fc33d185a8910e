//! Webhooks for key events, in the Standard Webhooks format
//! (<https://www.standardwebhooks.com>): headers `webhook-id`, `webhook-timestamp`
//! (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
//! `id.timestamp.body`, keyed with the endpoint's `whsec_` secret).
//!
//! Events come from the audit log, which every change writes in its own transaction:
//! [`pump`] turns new audit entries into deliveries (moving a cursor with
//! compare-and-set, so replicas never queue an event twice and a crash loses none),
//! and [`deliver_due`] sends what is due, retrying with backoff, each delivery
//! claimed under a lease so that one replica sends it. Payloads carry key IDs, names
//! and owners, never a secret. Endpoint secrets are derived from the server's secret
//! and never stored.
//!
//! Rotating an endpoint's secret bumps its `secret_version`; for [`SECRET_GRACE_MS`]
//! after that, each attempt carries two signatures, space-separated as the
//! specification allows (`v1,<new> v1,<previous>`), so the receiver can switch to the
//! new secret at its own pace.

use crate::error::ApiError;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use base64::Engine;
use hmac::{Hmac, Mac};
use keysmith_core::OrgId;
use keysmith_store::{AttemptResult, AuditEntry, Delivery, DeliveryStatus, NewAuditEntry, NewDelivery, Org, Webhook};
use sha2::Sha256;
use std::collections::HashMap;
use std::time::Duration;

/// The events an endpoint can subscribe to.
pub const EVENTS: [&str; 5] = [
    "api_key.created",
    "api_key.deleted",
    "api_key.rotated",
    "api_key.expiring_soon",
    "api_key.exposed",
];

/// Waits before the 2nd, 3rd, … attempt; after the last, the delivery has failed.
pub const BACKOFF_SECS: [i64; 7] = [5, 30, 120, 600, 1800, 3600, 3 * 3600];
/// How long a replica holds a claimed delivery before another may take it over.
const LEASE_MS: i64 = 60_000;
/// How far ahead "expiring soon" looks.
pub const EXPIRING_SOON_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long to wait for a receiver.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a rotation deliveries are signed with the previous secret as well.
pub const SECRET_GRACE_MS: i64 = 24 * 3600 * 1000;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, ApiError> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| ApiError::Internal(e.to_string()))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The endpoint's signing secret, `whsec_<base64>`, derived from the server's secret.
pub fn signing_secret(state: &AppState, webhook: &Webhook) -> Result<String, ApiError> {
    secret_of_version(state, webhook, webhook.secret_version)
}

/// The secret of one version of the endpoint's secret.
fn secret_of_version(state: &AppState, webhook: &Webhook, version: i64) -> Result<String, ApiError> {
    let label = format!("keysmith-webhook-v1:{}:{}", webhook.uid, version);
    let key = hmac(&state.server_secret.0, &[label.as_bytes()])?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
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
    state: &AppState,
    webhook: &Webhook,
    now: i64,
    message_id: &str,
    timestamp_secs: i64,
    body: &str,
) -> Result<String, ApiError> {
    let current = signing_secret(state, webhook)?;
    let mut value = signature(&current, message_id, timestamp_secs, body)?;
    if let (Some(previous), Some(_)) = (webhook.previous_secret_version, previous_secret_until(webhook, now)) {
        let previous = secret_of_version(state, webhook, previous)?;
        value.push(' ');
        value.push_str(&signature(&previous, message_id, timestamp_secs, body)?);
    }
    Ok(value)
}

/// The `webhook-signature` value for a message, as Standard Webhooks defines it.
pub fn signature(secret: &str, message_id: &str, timestamp_secs: i64, body: &str) -> Result<String, ApiError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| ApiError::Internal("a webhook secret is not base64".into()))?;
    let ts = timestamp_secs.to_string();
    let mac = hmac(
        &key,
        &[message_id.as_bytes(), b".", ts.as_bytes(), b".", body.as_bytes()],
    )?;
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac)))
}

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
pub async fn pump(state: &AppState) -> Result<usize, ApiError> {
    let mut queued = 0;
    loop {
        let (cursor, entries) = state.store.outbox_batch(200).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            return Ok(queued);
        };
        let mut endpoints: HashMap<OrgId, (Option<Org>, Vec<Webhook>)> = HashMap::new();
        let mut deliveries = Vec::new();
        for entry in entries.iter().filter(|e| EVENTS.contains(&e.action.as_str())) {
            if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(entry.org) {
                let org = state.store.get_org(entry.org).await?;
                let hooks = state.store.list_webhooks(entry.org).await?;
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
                    created_at: state.now(),
                });
            }
        }
        if state.store.commit_outbox(cursor, last, &deliveries).await? {
            queued += deliveries.len();
        }
        // Else another replica moved the cursor first; read again from where it is.
    }
}

/// The HTTP client deliveries are sent with: no redirects, a timeout.
pub fn client() -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent(concat!("Keysmith-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Sends every delivery that is due. Returns how many attempts were made.
pub async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<usize, ApiError> {
    let now = state.now();
    let due = state.store.claim_deliveries(now, now + LEASE_MS, 50).await?;
    let attempts = due.len();
    for (delivery, hook) in due {
        let result = attempt(state, client, &delivery, &hook).await;
        state.store.finish_attempt(delivery.id, &result).await?;
    }
    Ok(attempts)
}

async fn attempt(state: &AppState, client: &reqwest::Client, delivery: &Delivery, hook: &Webhook) -> AttemptResult {
    let now = state.now();
    let sent = async {
        let timestamp = now.div_euclid(1000);
        let sig = signatures(state, hook, now, &delivery.message_id, timestamp, &delivery.payload)?;
        client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sig)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| ApiError::InvalidValue(describe(&e)))
    }
    .await;
    let (http_status, error) = match sent {
        Ok(response) if response.status().is_success() => {
            return AttemptResult {
                status: DeliveryStatus::Delivered,
                http_status: Some(i64::from(response.status().as_u16())),
                error: None,
                at: now,
                next_attempt_at: now,
            };
        }
        Ok(response) => (
            Some(i64::from(response.status().as_u16())),
            Some(format!("the receiver answered {}", response.status())),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let done = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
    match BACKOFF_SECS.get(done) {
        Some(wait) => AttemptResult {
            status: DeliveryStatus::Pending,
            http_status,
            error,
            at: now,
            next_attempt_at: now + wait * 1000,
        },
        None => {
            tracing::warn!(
                webhook.id = hook.id,
                delivery.id = delivery.id,
                "webhook delivery failed for good"
            );
            AttemptResult {
                status: DeliveryStatus::Failed,
                http_status,
                error,
                at: now,
                next_attempt_at: now,
            }
        }
    }
}

/// A transport error in a few words (no URL query, which might carry a token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".into()
    } else if e.is_connect() {
        "could not connect to the receiver".into()
    } else {
        "the request to the receiver failed".into()
    }
}

/// Announces keys that expire within [`EXPIRING_SOON_MS`], once each, in the audit
/// log (and so by webhook). Returns how many.
pub async fn announce_expiring(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    let mut announced = 0;
    for key in state.store.keys_expiring(now, now + EXPIRING_SOON_MS, 200).await? {
        let orgs = crate::access::audit_orgs(state, key.owner.id).await?;
        let detail = serde_json::json!({
            "name": key.name,
            "owner": key.owner.username,
            "expires_at": key.expires_at.map(rfc3339),
        })
        .to_string();
        let entries: Vec<NewAuditEntry> = orgs
            .iter()
            .map(|org| NewAuditEntry {
                org: *org,
                at: now,
                actor: None,
                action: "api_key.expiring_soon".into(),
                target_kind: "api_key".into(),
                target: key.key_id.to_string(),
                source_address: None,
                detail: Some(detail.clone()),
            })
            .collect();
        if state.store.mark_expiry_warned(&key.key_id, now, &entries).await? {
            announced += 1;
        }
    }
    Ok(announced)
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
}
