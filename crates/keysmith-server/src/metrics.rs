//! Prometheus metrics at `/metrics`: verifications by outcome, cache hits and misses,
//! revocation fan-out (connected, reconnects, lag from commit to receipt), and request
//! latency by route. Labels are bounded sets (outcomes, route templates, status
//! classes), never a key, a key ID or a user.

use axum::extract::{MatchedPath, State};
use axum::http::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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

pub use keysmith_app::verification::{OUTCOMES, Outcome};

pub struct Metrics {
    registry: Registry,
    pub verifications: Family<OutcomeLabels, Counter>,
    /// One counter per outcome, taken from the family once: the hot path increments
    /// an atomic, without the family's lock.
    by_outcome: [Counter; OUTCOMES.len()],
    /// Forward auth's latency by status class (2xx, 4xx, 5xx), taken from the family once.
    forward_auth: [Histogram; 3],
    /// `GET /api/v1/viewer`'s, when the connection answers it (taken once the same way).
    viewer: [Histogram; 3],
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_entries: Gauge,
    /// The caller cache's hits and misses (a miss reads the caller's roles,
    /// organizations and teams).
    pub callers: keysmith_app::callers::CacheCounters,
    /// The session cache's hits and misses (a miss reads the session and its user).
    pub sessions: keysmith_app::callers::CacheCounters,
    pub fanout_connected: Gauge,
    pub fanout_reconnects: Counter,
    pub fanout_lag: Histogram,
    pub requests: Family<RequestLabels, Histogram>,
    /// GraphQL viewer queries answered by the fast lane (`graphql::fast`).
    pub graphql_fast_viewer: Counter,
    /// JWT bearer grants at `POST /oidc/token` by outcome ([`GRANT_OUTCOMES`]).
    pub jwt_grants: Family<OutcomeLabels, Counter>,
}

/// The outcomes of a JWT bearer grant: an access token issued, or the OAuth error
/// answered.
pub const GRANT_OUTCOMES: [&str; 6] = [
    "issued",
    "invalid_grant",
    "invalid_request",
    "unsupported_grant_type",
    "slow_down",
    "server_error",
];

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
        let callers = keysmith_app::callers::CacheCounters::default();
        registry.register(
            "caller_cache_hits",
            "Authenticated requests whose caller (roles, organizations, teams) came from the cache",
            callers.hits.clone(),
        );
        registry.register(
            "caller_cache_misses",
            "Authenticated requests whose caller was read from the database",
            callers.misses.clone(),
        );
        let sessions = keysmith_app::callers::CacheCounters::default();
        registry.register(
            "session_cache_hits",
            "Requests signed in by cookie whose session came from the cache",
            sessions.hits.clone(),
        );
        registry.register(
            "session_cache_misses",
            "Requests signed in by cookie whose session was read from the database",
            sessions.misses.clone(),
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
        let graphql_fast_viewer = Counter::default();
        registry.register(
            "graphql_fast_viewer_answers",
            "GraphQL viewer queries (the wandb SDK's login check) answered without the GraphQL executor",
            graphql_fast_viewer.clone(),
        );
        let jwt_grants = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "jwt_grants",
            "JWT bearer grants at /oidc/token (identity federation) by outcome: issued, or the OAuth error answered",
            jwt_grants.clone(),
        );
        for outcome in GRANT_OUTCOMES {
            drop(jwt_grants.get_or_create(&OutcomeLabels { outcome }));
        }
        let by_outcome = OUTCOMES.map(|outcome| verifications.get_or_create(&OutcomeLabels { outcome }).clone());
        let route = |method: &'static str, route: &'static str| {
            ["2xx", "4xx", "5xx"].map(|status| requests.get_or_create(&RequestLabels { method, route, status }).clone())
        };
        let forward_auth = route("any", "/api/v1/forward-auth");
        let viewer = route("GET", "/api/v1/viewer");
        Self {
            registry,
            verifications,
            by_outcome,
            forward_auth,
            viewer,
            cache_hits,
            cache_misses,
            cache_entries,
            callers,
            sessions,
            fanout_connected,
            fanout_reconnects,
            fanout_lag,
            requests,
            graphql_fast_viewer,
            jwt_grants,
        }
    }
}

/// Observes a latency in the histogram of its status class (2xx, 4xx, 5xx).
fn observe_by_class(histograms: &[Histogram; 3], status: u16, elapsed: std::time::Duration) {
    let i = match status {
        200..=299 => 0,
        400..=499 => 1,
        _ => 2,
    };
    histograms[i].observe(elapsed.as_secs_f64());
}

impl Metrics {
    pub fn verified(&self, outcome: Outcome) {
        self.by_outcome[outcome.index()].inc();
    }

    /// Counts a JWT bearer grant's outcome (one of [`GRANT_OUTCOMES`]).
    pub fn jwt_grant(&self, outcome: &'static str) {
        self.jwt_grants.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The verification counters by outcome, for the application's verifier.
    pub fn outcome_counters(&self) -> [Counter; OUTCOMES.len()] {
        self.by_outcome.clone()
    }

    /// Times a forward-auth request, which bypasses the middleware that times the rest.
    pub fn forward_auth_request(&self, status: u16, elapsed: std::time::Duration) {
        observe_by_class(&self.forward_auth, status, elapsed);
    }

    /// Times a viewer request answered on the connection, outside the middleware.
    pub fn viewer_request(&self, status: u16, elapsed: std::time::Duration) {
        observe_by_class(&self.viewer, status, elapsed);
    }

    /// Times a request by its method, route template and status class.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        elapsed: std::time::Duration,
    ) {
        let labels = RequestLabels {
            method,
            route,
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).observe(elapsed.as_secs_f64());
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

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: OpenMetrics to a client that asks for it (Prometheus does), the
/// Prometheus text format 0.0.4 to everyone else, as the Go and Python client
/// libraries negotiate. A text-format parser reading OpenMetrics would take the
/// counters for untyped samples (their `# TYPE` names the family without `_total`).
pub async fn serve(State(state): State<crate::state::AppState>, headers: axum::http::HeaderMap) -> Response {
    state
        .metrics
        .cache_entries
        .set(i64::try_from(state.cache.len()).unwrap_or(i64::MAX));
    let openmetrics = wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let text = state.metrics.render();
    let (body, content_type) = if openmetrics {
        (text, OPENMETRICS)
    } else {
        (to_prometheus_text(&text), PROMETHEUS_TEXT)
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// Whether `accept` prefers OpenMetrics to the text format: its best quality for
/// `application/openmetrics-text` is above zero and at least that of `text/plain` (or
/// of a wildcard, when text/plain is not named).
fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (mut openmetrics, mut plain) = (0.0_f32, None::<f32>);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => plain = Some(plain.unwrap_or(0.0).max(q)),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= plain.unwrap_or(0.0)
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition: a counter family's
/// `# HELP` and `# TYPE` take the name of its samples (`…_total`), and what the text
/// format lacks (`# UNIT`, `_created` samples, `# EOF`) is left out. Gauges and
/// histograms read the same in both.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("# HELP ", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("# TYPE ", rest)));
        if let Some((tag, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) {
                out.push_str(&format!("{tag}{name}_total {tail}\n"));
                continue;
            }
        } else if counters
            .iter()
            .any(|c| line.strip_prefix(c).is_some_and(|rest| rest.starts_with("_created")))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Times every request, labelled by its route template (`/api/v1/api-keys/{key_id}`),
/// never by its concrete path. A route layer (it runs after routing, where the template
/// is known) with a plain future: nothing is boxed per request.
#[derive(Clone)]
pub struct TrackLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<Request<B>> for Track<S>
where
    S: tower::Service<Request<B>, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Tracked<S::Future> {
        let started = Instant::now();
        let method = method_label(request.method());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| intern(p.as_str()));
        Tracked {
            inner: self.inner.call(request),
            metrics: self.metrics.clone(),
            started,
            method,
            route,
        }
    }
}

/// A request being answered, timed when its response is ready.
pub struct Tracked<F> {
    inner: F,
    metrics: Arc<Metrics>,
    started: Instant,
    method: &'static str,
    route: &'static str,
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let result = std::task::ready!(Pin::new(&mut this.inner).poll(cx));
        if let Ok(response) = &result {
            this.metrics.observe_request(
                this.method,
                this.route,
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_preferred() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        // What Prometheus 2.x sends:
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some(
            "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }

    #[test]
    fn counters_are_named_by_their_samples_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.verified(Outcome::Accepted);
        metrics.cache_hits.inc();
        let text = to_prometheus_text(&metrics.render());
        assert!(text.contains("# TYPE keysmith_cache_hits_total counter\n"), "{text}");
        assert!(
            text.contains("# HELP keysmith_cache_hits_total Verifications answered"),
            "{text}"
        );
        assert!(text.contains("keysmith_cache_hits_total 1\n"), "{text}");
        assert!(text.contains("# TYPE keysmith_cache_entries gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("_created"), "{text}");
    }
}
