//! What every handler shares.

use crate::auth::source::TrustedProxies;
use crate::cache::VerifyCache;
use crate::clock::Clock;
use crate::handoff::KeyHandoff;
use crate::leak::github::GitHubKeys;
use crate::metrics::Metrics;
use crate::usage::UsageRecorder;
use keysmith_app::time::HOUR_MS;
use keysmith_core::{KeyPrefix, UserId};
use keysmith_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub key_prefix: KeyPrefix,
    pub session_ttl_ms: i64,
    pub secure_cookies: bool,
    /// HTTPS is served directly: every answer carries Strict-Transport-Security.
    pub hsts: bool,
    pub usage: Arc<UsageRecorder>,
    /// The application layer: every action, for every door.
    pub app: keysmith_app::App,
    /// Service account keys for the wandb SDK, by (caller, service account).
    pub handoff: KeyHandoff<(UserId, UserId)>,
    /// Keys created in the web interface, by (caller, key ID), for the page that shows
    /// them once.
    pub reveal: KeyHandoff<(UserId, String)>,
    pub trusted_proxies: TrustedProxies,
    /// GitHub's secret scanning keys; empty when not configured.
    pub github_keys: GitHubKeys,
    /// The application's verification cache (`app.verifier.cache`).
    pub cache: Arc<VerifyCache>,
    pub metrics: Arc<Metrics>,
    /// The HTTP client of OpenID providers and JWT issuers (discovery, keys, tokens).
    pub oidc_http: Arc<crate::federation::HttpIssuerFetcher>,
    /// This server's origin as clients reach it (`public_url`); `None`: the request's Host.
    pub public_origin: Option<String>,
}

pub use keysmith_app::webhooks::ServerSecret;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The settings a state is built with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub key_prefix: KeyPrefix,
    pub session_ttl_ms: i64,
    pub secure_cookies: bool,
    /// Send Strict-Transport-Security (set when serving HTTPS directly).
    pub hsts: bool,
    pub github_keys: GitHubKeys,
    pub server_secret: ServerSecret,
    /// Keys the verification cache holds at most; 0 turns it off.
    pub cache_max_keys: usize,
    /// How long a cached key is trusted without reading it again.
    pub cache_max_age_ms: i64,
    /// Failed verifications allowed per source address per minute; 0: no limit.
    pub key_failures_per_minute: u32,
    /// Exposed-key reports accepted per source address per minute; 0: no limit.
    pub exposure_reports_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Where single sign-on client secrets are read from.
    pub sso_secrets_dir: std::path::PathBuf,
    /// This server's origin as clients reach it (`public_url`); `None`: the request's Host.
    pub public_origin: Option<String>,
    /// When keys are warned about before they expire.
    pub notices: keysmith_app::notices::NoticeSettings,
    /// How long expired keys and finished deliveries stay.
    pub retention: keysmith_app::retention::RetentionSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            key_prefix: KeyPrefix::default(),
            session_ttl_ms: 12 * HOUR_MS,
            secure_cookies: false,
            hsts: false,
            github_keys: GitHubKeys::default(),
            server_secret: ServerSecret::random(),
            cache_max_keys: 100_000,
            cache_max_age_ms: 60_000,
            key_failures_per_minute: 60,
            exposure_reports_per_minute: 30,
            trusted_proxies: TrustedProxies::default(),
            sso_secrets_dir: std::path::PathBuf::from("data/sso-secrets"),
            public_origin: None,
            notices: keysmith_app::notices::NoticeSettings::default(),
            retention: keysmith_app::retention::RetentionSettings::default(),
        }
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let metrics = Arc::new(Metrics::default());
        let usage = Arc::new(UsageRecorder::default());
        let oidc_http = Arc::new(crate::federation::HttpIssuerFetcher::new());
        let app = keysmith_app::App::new(
            store.clone(),
            clock.clone(),
            keysmith_app::Settings {
                key_prefix: settings.key_prefix.clone(),
                max_callers: settings.cache_max_keys,
                caller_max_age_ms: settings.cache_max_age_ms,
                caller_counters: metrics.callers.clone(),
                max_sessions: settings.cache_max_keys,
                session_counters: metrics.sessions.clone(),
                server_secret: settings.server_secret,
                exposure_reports_per_minute: settings.exposure_reports_per_minute,
                // One process owns a SQLite file: the caches may serve at once. With
                // PostgreSQL they serve only once the revocation fan-out listens
                // (`start_fanout`).
                verification: keysmith_app::verification::VerifierSettings {
                    max_keys: settings.cache_max_keys,
                    max_age_ms: settings.cache_max_age_ms,
                    failures_per_minute: settings.key_failures_per_minute,
                    cache_counters: keysmith_app::callers::CacheCounters {
                        hits: metrics.cache_hits.clone(),
                        misses: metrics.cache_misses.clone(),
                    },
                    outcomes: metrics.outcome_counters(),
                },
                issuer_fetcher: keysmith_app::federation::Fetcher(oidc_http.clone()),
                sso_secrets_dir: settings.sso_secrets_dir.clone(),
                notices: settings.notices.clone(),
                retention: settings.retention,
            },
            usage.clone(),
        );
        let app_cache = app.verifier.cache.clone();
        Self(Arc::new(Inner {
            store,
            clock,
            app,
            key_prefix: settings.key_prefix,
            session_ttl_ms: settings.session_ttl_ms,
            secure_cookies: settings.secure_cookies,
            hsts: settings.hsts,
            usage,
            handoff: KeyHandoff::default(),
            reveal: KeyHandoff::default(),
            trusted_proxies: settings.trusted_proxies,
            github_keys: settings.github_keys,
            cache: app_cache,
            metrics,
            oidc_http,
            public_origin: settings.public_origin,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts hearing other replicas' revocations (PostgreSQL); returns at once on
    /// SQLite. Until it listens, the cache is not used.
    pub fn start_fanout(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::cache::run_fanout(
            self.store.clone(),
            self.app.clone(),
            self.metrics.clone(),
            std::time::Duration::from_secs(1),
        ))
    }
}
