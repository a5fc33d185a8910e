//! Sending webhook deliveries. The endpoints, their secrets and the outbox that turns
//! audit entries into deliveries are the application's (`keysmith_app::webhooks`);
//! this is the part that speaks HTTP: [`deliver_due`] sends what is due, retrying
//! with backoff, each delivery claimed under a lease so that one replica sends it.

use crate::error::ApiError;
use crate::state::AppState;
use keysmith_app::webhooks::signatures;
use keysmith_store::{AttemptResult, Delivery, DeliveryStatus, Webhook};
use std::time::Duration;

pub use keysmith_app::webhooks::SECRET_GRACE_MS;

/// Waits before the 2nd, 3rd, … attempt; after the last, the delivery has failed.
pub const BACKOFF_SECS: [i64; 7] = [5, 30, 120, 600, 1800, 3600, 3 * 3600];
/// How long a replica holds a claimed delivery before another may take it over.
const LEASE_MS: i64 = 60_000;
/// How long to wait for a receiver.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Turns new audit entries into deliveries (`keysmith_app::webhooks::pump`).
pub async fn pump(state: &AppState) -> Result<usize, ApiError> {
    Ok(keysmith_app::webhooks::pump(&state.app).await?)
}

/// Warns about keys that reach a lead time before their expiry
/// (`keysmith_app::notices::announce_expiring`).
pub async fn announce_expiring(state: &AppState) -> Result<usize, ApiError> {
    Ok(keysmith_app::notices::announce_expiring(&state.app).await?)
}

/// Announces keys idle for their organization's number of days
/// (`keysmith_app::notices::announce_idle`).
pub async fn announce_idle(state: &AppState) -> Result<usize, ApiError> {
    Ok(keysmith_app::notices::announce_idle(&state.app).await?)
}

/// The HTTP client deliveries are sent with (`outbound_client`).
pub fn client() -> Result<reqwest::Client, ApiError> {
    outbound_client(TIMEOUT, concat!("Keysmith-Webhooks/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A client for the requests Keysmith makes to URLs organization admins give (webhook
/// deliveries, JWT issuers' keys): no redirects, and each request bounded in time.
pub(crate) fn outbound_client(timeout: Duration, user_agent: &'static str) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
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
        let sig = signatures(
            &state.app.server_secret,
            hook,
            now,
            &delivery.message_id,
            timestamp,
            &delivery.payload,
        )?;
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
