//! Sign-in sessions as requests see them: which active user a session token's digest
//! belongs to, from memory when warm, so that a page or an API call made with a cookie
//! reads nothing from the database.
//!
//! The cache follows the caller cache's rules (docs/DESIGN.md §7):
//! - an entry is used only before its session's own expiry and for at most
//!   `max_age_ms` after it was read;
//! - signing out announces `Invalidation::Session(digest)`; deactivating or deleting
//!   a user and an operator's password reset (which end their sessions) announce
//!   `Invalidation::Owner(user)`, which drops every cached session of theirs;
//! - the announcement reaches this process before the request that made it is
//!   answered, and the other replicas by the same `LISTEN/NOTIFY` fan-out as keys;
//!   while that connection is down the cache is neither read nor filled.
//!
//! The key is the SHA-256 of the token, which is what the database holds; the token
//! itself is never kept.

use crate::App;
use crate::error::Result;
use crate::fanout_map::{CacheCounters, FanoutMap};
use keysmith_core::KeyDigest;
use keysmith_store::{Invalidation, UserRef};

/// A cached session: its active user and when it ends.
#[derive(Debug, Clone)]
struct Held {
    user: UserRef,
    expires_at: i64,
}

pub struct SessionCache {
    map: FanoutMap<KeyDigest, Held>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// At most `max_entries` sessions (0 turns the cache off), each trusted for
    /// `max_age_ms`; `live` says whether it may serve from the start.
    pub fn new(max_entries: usize, max_age_ms: i64, live: bool, counters: CacheCounters) -> Self {
        Self {
            map: FanoutMap::new(max_entries, max_age_ms, live, counters),
        }
    }

    /// Drops what a committed change made stale.
    pub fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::Session(digest) => self.map.remove(digest),
            Invalidation::Owner(user) => self.map.remove_where(|_, held| held.user.id == *user),
            Invalidation::Key(_) => {}
        }
    }

    /// Whether the cache may serve; cleared on every change of state.
    pub fn set_live(&self, live: bool) {
        self.map.set_live(live);
    }

    pub fn is_live(&self) -> bool {
        self.map.is_live()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits and misses so far.
    pub fn counters(&self) -> &CacheCounters {
        &self.map.counters
    }
}

/// The active user the session with this token digest belongs to, or `None` for a
/// session that is unknown, expired, signed out, or whose user was deactivated.
pub async fn user(app: &App, token_digest: &KeyDigest) -> Result<Option<UserRef>> {
    let now = app.now();
    if let Some(held) = app.sessions.map.get(token_digest, now, |held| now < held.expires_at) {
        return Ok(Some(held.user));
    }
    // Taken before the reads: a sign-out or deactivation meanwhile voids the fill.
    let ticket = app.sessions.map.ticket();
    let Some(found) = app.store.find_session(token_digest, now).await? else {
        return Ok(None);
    };
    let Some(user) = app.store.get_user(found.user_id).await?.filter(|u| u.active) else {
        return Ok(None);
    };
    let user = UserRef {
        id: user.id,
        kind: user.kind,
        username: user.username,
    };
    let held = Held {
        user: user.clone(),
        expires_at: found.expires_at,
    };
    app.sessions.map.insert(*token_digest, held, ticket, now);
    Ok(Some(user))
}

/// Signs a session out: it stops working on every replica.
pub async fn end(app: &App, token_digest: &KeyDigest) -> Result<()> {
    app.store.delete_session(token_digest).await?;
    Ok(())
}
