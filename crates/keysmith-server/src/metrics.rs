//! Prometheus metrics at `/metrics`: verifications by outcome, cache hits and misses,
//! revocation fan-out (connected, reconnects, lag from commit to receipt), and request
//! latency by route. Labels are bounded sets (outcomes, route templates, status
//! classes), never a key, a key ID or a user.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: &'static str,
}

/// A route template as a `&'static str`, so that timing a request allocates nothing.
/// Templates come from the router, never from a request, so the set is small and fixed.
fn intern(route: &str) -> &'static str {
    static ROUTES: std::sync::OnceLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(known) = routes.read().unwrap_or_else(|p| p.into_inner()).get(route) {
        return known;
    }
    let mut routes = routes.write().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = routes.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The outcome of a verification. Counted by index: every outcome costs the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    RateLimited,
    Malformed,
    BadChecksum,
    Unknown,
    WrongSecret,
    OwnerInactive,
    Expired,
}

impl Outcome {
    /// The metric label, also used in logs.
    pub fn as_str(self) -> &'static str {
        OUTCOMES[self as usize]
    }
}

/// The outcomes' label values, in the order of [`Outcome`].
const OUTCOMES: [&str; 8] = [
    "accepted",
    "rate_limited",
    "malformed",
    "bad_checksum",
    "unknown",
    "wrong_secret",
    "owner_inactive",
    "expired",
];

pub struct Metrics {
    registry: Registry,
    pub verifications: Family<OutcomeLabels, Counter>,
    /// One counter per outcome, taken from the family once: the hot path increments
    /// an atomic, without the family's lock.
    by_outcome: [Counter; OUTCOMES.len()],
    /// Forward auth's latency by status class (2xx, 4xx, 5xx), taken from the family once.
    forward_auth: [Histogram; 3],
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_entries: Gauge,
    pub fanout_connected: Gauge,
    pub fanout_reconnects: Counter,
    pub fanout_lag: Histogram,
    pub requests: Family<RequestLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("keysmith");
        let verifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "verifications",
            "API key verifications by outcome: accepted, or why refused",
            verifications.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "cache_hits",
            "Verifications answered from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Verifications that read the database",
            cache_misses.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register("cache_entries", "Keys in the verification cache", cache_entries.clone());
        let fanout_connected = Gauge::default();
        registry.register(
            "revocation_fanout_connected",
            "1 while this replica hears other replicas' revocations (PostgreSQL), else 0",
            fanout_connected.clone(),
        );
        let fanout_reconnects = Counter::default();
        registry.register(
            "revocation_fanout_reconnects",
            "Times the revocation connection was lost (the cache was cleared each time)",
            fanout_reconnects.clone(),
        );
        let fanout_lag = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "revocation_fanout_lag_seconds",
            "From a revoking commit on any replica to its receipt here",
            fanout_lag.clone(),
        );
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template and status class",
            requests.clone(),
        );
        let by_outcome = OUTCOMES.map(|outcome| verifications.get_or_create(&OutcomeLabels { outcome }).clone());
        let forward_auth = ["2xx", "4xx", "5xx"].map(|status| {
            requests
                .get_or_create(&RequestLabels {
                    method: "any",
                    route: "/api/v1/forward-auth",
                    status,
                })
                .clone()
        });
        Self {
            registry,
            verifications,
            by_outcome,
            forward_auth,
            cache_hits,
            cache_misses,
            cache_entries,
            fanout_connected,
            fanout_reconnects,
            fanout_lag,
            requests,
        }
    }
}

impl Metrics {
    pub fn verified(&self, outcome: Outcome) {
        self.by_outcome[outcome as usize].inc();
    }

    /// Times a forward-auth request, which bypasses the middleware that times the rest.
    pub fn forward_auth_request(&self, status: u16, elapsed: std::time::Duration) {
        let i = match status {
            200..=299 => 0,
            400..=499 => 1,
            _ => 2,
        };
        self.forward_auth[i].observe(elapsed.as_secs_f64());
    }

    pub fn observe_fanout_lag(&self, lag_ms: i64) {
        self.fanout_lag.observe(lag_ms.max(0) as f64 / 1000.0);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error.detail = %e, "cannot encode metrics");
        }
        out
    }
}

/// `GET /metrics`.
pub async fn serve(State(state): State<crate::state::AppState>) -> Response {
    state
        .metrics
        .cache_entries
        .set(i64::try_from(state.cache.len()).unwrap_or(i64::MAX));
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Times every request, labelled by its route template (`/api/v1/api-keys/{key_id}`),
/// never by its concrete path.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| intern(p.as_str()));
    let response = next.run(request).await;
    let status = status_class(response.status().as_u16());
    metrics
        .requests
        .get_or_create(&RequestLabels { method, route, status })
        .observe(started.elapsed().as_secs_f64());
    response
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
