//! Keysmith's application layer: every action exactly once, for every door.
//!
//! An action takes the acting [`Caller`] (with the source address and the time, as an
//! [`Acting`]), its inputs as typed values, and answers a domain result or an
//! [`AppError`]. Nothing here knows about HTTP, HTML, GraphQL or OpenAPI: the doors in
//! `keysmith-server` (REST, web pages, GraphQL, forward auth) parse, call an action,
//! and render, each mapping [`AppError`] to its wire shape in one place. A rule that
//! two doors expose is decided here once (docs/DESIGN.md §5).
//!
//! Depends on `keysmith-core` (the pure rules) and `keysmith-store` (persistence), and
//! on no web crate; CI checks that with `cargo tree`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod audit;
pub mod audit_chain;
pub mod audit_log;
pub mod caller;
pub mod callers;
pub mod clock;
pub mod error;
mod fanout_map;
pub mod federation;
pub mod input;
pub mod key_limit;
pub mod keys;
pub mod leaks;
pub mod notices;
pub mod operator;
pub mod orgs;
pub mod password;
pub mod rate_limit;
pub mod retention;
pub mod scim;
pub mod service_accounts;
pub mod sessions;
pub mod sign_in_throttle;
pub mod sso;
pub mod teams;
pub mod time;
pub mod usage;
pub mod users;
pub mod verification;
pub mod verify_cache;
pub mod webhooks;

pub use audit::{Action, AuditContext};
pub use caller::{AuthMethod, Caller, Principal};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, Missing, Result};

use keysmith_core::KeyPrefix;
use keysmith_store::Store;
use std::sync::Arc;
use usage::UsageRecorder;

/// The application: what every action needs. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The prefix of new keys (`wandb`); existing keys keep their own.
    pub key_prefix: KeyPrefix,
    /// Last use and sources of keys, held in memory and written in batches.
    pub usage: Arc<UsageRecorder>,
    /// Failed sign-ins, per account and address, per address and per account.
    pub sign_in_throttle: sign_in_throttle::SignInThrottle,
    /// Who each recent caller is (roles, organizations, teams), kept in step with the
    /// store by its invalidations.
    pub callers: Arc<callers::CallerCache>,
    /// Which user each recent sign-in session belongs to, kept in step the same way.
    pub sessions: Arc<sessions::SessionCache>,
    /// API key verification, with its cache (kept in step the same way).
    pub verifier: verification::Verifier,
    /// The secret webhook signing secrets are derived from.
    pub server_secret: webhooks::ServerSecret,
    /// Exposed-key reports per source address (an IPv6 /64 counts as one), every one
    /// counted: counting only unknown keys would tell which keys exist.
    pub exposure_reports: rate_limit::FailureLimiter,
    pub issuer_keys: federation::IssuerKeys,
    /// Where single sign-on client secrets are read from (`sso::read_secret`).
    pub sso_secrets_dir: std::path::PathBuf,
    /// When keys are warned about before they expire.
    pub notices: notices::NoticeSettings,
    /// How long expired keys and finished deliveries stay.
    pub retention: retention::RetentionSettings,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How the application is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub key_prefix: KeyPrefix,
    /// Principals the caller cache holds at most; 0 turns it off.
    pub max_callers: usize,
    /// How long a cached caller is trusted without reading it again.
    pub caller_max_age_ms: i64,
    /// Where the caller cache counts its hits and misses.
    pub caller_counters: callers::CacheCounters,
    /// Sign-in sessions the session cache holds at most; 0 turns it off. Entries are
    /// trusted for `caller_max_age_ms` too.
    pub max_sessions: usize,
    /// Where the session cache counts its hits and misses.
    pub session_counters: callers::CacheCounters,
    /// The secret webhook signing secrets are derived from (random if not given).
    pub server_secret: webhooks::ServerSecret,
    /// Exposed-key reports accepted per source address per minute; 0: no limit.
    pub exposure_reports_per_minute: u32,
    /// The verification cache's size and age bound, the failure limit, the counters.
    pub verification: verification::VerifierSettings,
    /// How the keys of registered JWT issuers are fetched (identity federation).
    pub issuer_fetcher: federation::Fetcher,
    /// The directory of single sign-on client secrets, one file each.
    pub sso_secrets_dir: std::path::PathBuf,
    /// When keys are warned about before they expire.
    pub notices: notices::NoticeSettings,
    /// How long expired keys and finished deliveries stay.
    pub retention: retention::RetentionSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            key_prefix: KeyPrefix::default(),
            max_callers: 100_000,
            caller_max_age_ms: 60_000,
            caller_counters: callers::CacheCounters::default(),
            max_sessions: 100_000,
            session_counters: callers::CacheCounters::default(),
            server_secret: webhooks::ServerSecret::random(),
            exposure_reports_per_minute: 30,
            verification: verification::VerifierSettings::default(),
            issuer_fetcher: federation::Fetcher::default(),
            sso_secrets_dir: std::path::PathBuf::from("data/sso-secrets"),
            notices: notices::NoticeSettings::default(),
            retention: retention::RetentionSettings::default(),
        }
    }
}

impl App {
    /// The application on `store`. Its caches follow the store's own invalidations at
    /// once; on PostgreSQL they serve only once the server's fan-out listens for other
    /// replicas' changes ([`App::set_caches_live`]).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings, usage: Arc<UsageRecorder>) -> Self {
        let alone = store.backend() == keysmith_store::Backend::Sqlite;
        let callers = Arc::new(callers::CallerCache::new(
            settings.max_callers,
            settings.caller_max_age_ms,
            alone,
            settings.caller_counters,
        ));
        let sessions = Arc::new(sessions::SessionCache::new(
            settings.max_sessions,
            settings.caller_max_age_ms,
            alone,
            settings.session_counters,
        ));
        let verifier = verification::Verifier::new(settings.verification, alone, usage.clone());
        let (hook_keys, hook_callers, hook_sessions) = (verifier.cache.clone(), callers.clone(), sessions.clone());
        store.on_invalidation(Box::new(move |invalidation| {
            hook_keys.apply(invalidation);
            hook_callers.apply(invalidation);
            hook_sessions.apply(invalidation);
        }));
        Self(Arc::new(Inner {
            store,
            clock,
            key_prefix: settings.key_prefix,
            usage,
            sign_in_throttle: sign_in_throttle::SignInThrottle::default(),
            callers,
            sessions,
            verifier,
            server_secret: settings.server_secret,
            exposure_reports: rate_limit::FailureLimiter::new(settings.exposure_reports_per_minute, time::MINUTE_MS),
            issuer_keys: federation::IssuerKeys::new(settings.issuer_fetcher),
            sso_secrets_dir: settings.sso_secrets_dir,
            notices: settings.notices,
            retention: settings.retention,
        }))
    }

    /// Applies another replica's change to the application's caches.
    pub fn apply_invalidation(&self, invalidation: &keysmith_store::Invalidation) {
        self.verifier.cache.apply(invalidation);
        self.callers.apply(invalidation);
        self.sessions.apply(invalidation);
    }

    /// Whether the application's caches may serve: true while the fan-out listens for
    /// other replicas' changes. Each is cleared on every change of state.
    pub fn set_caches_live(&self, live: bool) {
        self.verifier.cache.set_live(live);
        self.callers.set_live(live);
        self.sessions.set_live(live);
    }

    /// Verifies a presented key, from the cache when it can, and notes the use and its
    /// source ([`verification::Verifier`]); a store failure is the store's error.
    pub async fn verify_key(
        &self,
        presented: &str,
        client: usage::Client<'_>,
    ) -> Result<std::result::Result<verification::Verified, verification::Denied>> {
        let now = self.now();
        match self.verifier.verify_now(presented, client, now) {
            Some(done) => Ok(done),
            None => Ok(self
                .verifier
                .verify_stored(&*self.store, presented, client, now)
                .await?),
        }
    }

    /// The time now, in Unix milliseconds, by the application's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Who acts, from where, and when: the context every changing action takes. The
/// source address goes into the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    pub caller: &'a Caller,
    pub source: &'a str,
    pub now: i64,
}

impl<'a> Acting<'a> {
    pub fn new(caller: &'a Caller, source: &'a str, now: i64) -> Self {
        Self { caller, source, now }
    }

    /// The caller, for a change that administers the organization (members, teams,
    /// service accounts, settings, webhooks, providers): refused to a key whose scope
    /// is not `admin`, before anything is read.
    pub fn administrator(&self) -> Result<&'a Caller> {
        self.caller
            .require_scope(keysmith_core::policy::SCOPE_FOR_ADMINISTRATION)?;
        Ok(self.caller)
    }
}
