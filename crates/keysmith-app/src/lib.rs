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
pub mod caller;
pub mod clock;
pub mod error;
pub mod input;
pub mod keys;
pub mod operator;
pub mod password;
pub mod service_accounts;
pub mod sign_in_throttle;
pub mod teams;
pub mod time;
pub mod usage;
pub mod users;

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
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, key_prefix: KeyPrefix, usage: Arc<UsageRecorder>) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            key_prefix,
            usage,
            sign_in_throttle: sign_in_throttle::SignInThrottle::default(),
        }))
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
}
