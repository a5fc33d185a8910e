//! The verification cache: what verifying a v1 key needs (its digest, its owner, the
//! owner's state and organizations, the key's expiry), by key ID, in this process.
//!
//! - Filled on a miss, bounded in entries (an arbitrary entry of a full shard makes
//!   room), and each entry is trusted for at most `max_age_ms`, a last resort.
//! - Written through: the store calls [`VerifyCache::apply`] after every committed
//!   change that makes an entry stale, before the request that made it is answered; so
//!   the replica that deleted a key never accepts it afterwards.
//! - A fill that read the database before an invalidation must not bring the stale
//!   row back: every invalidation bumps an epoch first, and a fill is stored only if
//!   the epoch it started under is still current (checked under the shard's lock).
//! - Other replicas' changes arrive by `LISTEN/NOTIFY` ([`run_fanout`]); while that
//!   connection is down the cache is neither read nor filled, and it is cleared both
//!   when the connection drops and when it is back.
//!
//! Legacy keys are found by the digest of the whole key, not by a key ID, and are rare:
//! they always go to the database.

use crate::metrics::Metrics;
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyDigest, UserId};
use keysmith_store::{AuthRecord, Invalidation, Notice, Store, UserRef};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

const SHARDS: usize = 64;

/// One cached key, about 100 bytes plus its ID, owner name and organization names.
#[derive(Debug, Clone)]
pub struct Entry {
    pub digest: KeyDigest,
    pub owner_id: UserId,
    pub owner_kind: PrincipalKind,
    pub owner_active: bool,
    pub expires_at: Option<i64>,
    loaded_at: i64,
    pub username: Box<str>,
    /// Comma-separated organization names.
    pub orgs: Box<str>,
}

impl Entry {
    pub fn from_record(record: &AuthRecord, now: i64) -> Self {
        Self {
            digest: record.digest,
            owner_id: record.owner.id,
            owner_kind: record.owner.kind,
            owner_active: record.owner_active,
            expires_at: record.expires_at,
            loaded_at: now,
            username: record.owner.username.clone().into_boxed_str(),
            orgs: record.orgs.join(",").into_boxed_str(),
        }
    }

    pub fn owner(&self) -> UserRef {
        UserRef {
            id: self.owner_id,
            kind: self.owner_kind,
            username: self.username.to_string(),
        }
    }
}

type Shard = RwLock<HashMap<Box<str>, Entry>>;

pub struct VerifyCache {
    shards: Box<[Shard]>,
    per_shard: usize,
    max_age_ms: i64,
    epoch: AtomicU64,
    /// False while the fan-out connection is down (several replicas): the cache is
    /// then bypassed.
    live: AtomicBool,
    hasher: std::hash::RandomState,
    metrics: Arc<Metrics>,
}

impl VerifyCache {
    /// A cache of at most `max_keys` entries (0 turns it off), each trusted for
    /// `max_age_ms`; `live` says whether it may serve from the start (true where no
    /// other replica can change keys).
    pub fn new(max_keys: usize, max_age_ms: i64, live: bool, metrics: Arc<Metrics>) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect();
        Self {
            shards,
            per_shard: max_keys.div_ceil(SHARDS),
            max_age_ms,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live && max_keys > 0),
            hasher: std::hash::RandomState::new(),
            metrics,
        }
    }

    fn shard(&self, key_id: &str) -> &Shard {
        let mut h = self.hasher.build_hasher();
        key_id.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// The entry for `key_id`, if cached and young enough.
    pub fn get(&self, key_id: &str, now: i64) -> Option<Entry> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let shard = self.shard(key_id).read().unwrap_or_else(|p| p.into_inner());
        let found = shard
            .get(key_id)
            .filter(|e| now - e.loaded_at < self.max_age_ms)
            .cloned();
        drop(shard);
        if found.is_some() {
            self.metrics.cache_hits.inc();
        } else {
            self.metrics.cache_misses.inc();
        }
        found
    }

    /// Taken before reading the database for a fill; see [`VerifyCache::fill`].
    pub fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores what a miss read, unless anything was invalidated since `ticket`.
    pub fn fill(&self, ticket: u64, key_id: &str, entry: Entry) {
        if !self.live.load(Ordering::Acquire) || self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(key_id).write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::SeqCst) != ticket {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(key_id) {
            if let Some(victim) = shard.keys().next().cloned() {
                shard.remove(&victim);
            }
        }
        shard.insert(key_id.into(), entry);
    }

    /// Drops what `invalidation` makes stale. The epoch moves first, so a fill racing
    /// with this cannot store what it read before.
    pub fn apply(&self, invalidation: &Invalidation) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match invalidation {
            Invalidation::Key(key_id) => {
                self.shard(key_id)
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(key_id.as_str());
            }
            Invalidation::Owner(owner) => {
                for shard in self.shards.iter() {
                    shard
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|_, e| e.owner_id != *owner);
                }
            }
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in self.shards.iter() {
            shard.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    /// Whether the cache may serve; cleared on every change of state.
    pub fn set_live(&self, live: bool) {
        self.live.store(false, Ordering::Release);
        self.clear();
        if live && self.per_shard > 0 {
            self.live.store(true, Ordering::Release);
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps this replica's cache in step with the others (PostgreSQL): applies every
/// notice; when the connection drops, stops serving from the cache and clears it,
/// reconnects after `retry`, and clears it again before serving from it. Returns at
/// once for a store without other replicas.
pub async fn run_fanout(store: Arc<dyn Store>, cache: Arc<VerifyCache>, metrics: Arc<Metrics>, retry: Duration) {
    loop {
        match store.subscribe_invalidations().await {
            Ok(None) => return,
            Ok(Some(mut feed)) => {
                cache.set_live(true);
                metrics.fanout_connected.set(1);
                tracing::info!("listening for other replicas' revocations");
                loop {
                    match feed.next().await {
                        Ok(Notice {
                            invalidation,
                            sent_at_ms,
                        }) => {
                            cache.apply(&invalidation);
                            let lag_ms = crate::clock::wall_ms() - sent_at_ms;
                            metrics.observe_fanout_lag(lag_ms);
                        }
                        Err(e) => {
                            cache.set_live(false);
                            metrics.fanout_connected.set(0);
                            metrics.fanout_reconnects.inc();
                            tracing::warn!(error.detail = %e, "revocation notices lost: the cache is off until reconnected");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                cache.set_live(false);
                metrics.fanout_connected.set(0);
                tracing::warn!(error.detail = %e, "cannot listen for revocations; retrying");
            }
        }
        tokio::time::sleep(retry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(owner: i64, now: i64) -> Entry {
        Entry {
            digest: KeyDigest::of(b"x"),
            owner_id: UserId(owner),
            owner_kind: PrincipalKind::User,
            owner_active: true,
            expires_at: None,
            loaded_at: now,
            username: "u".into(),
            orgs: "o".into(),
        }
    }

    fn cache(max: usize) -> VerifyCache {
        VerifyCache::new(max, 1000, true, Arc::new(Metrics::default()))
    }

    #[test]
    fn a_fill_that_raced_with_an_invalidation_is_dropped() {
        let c = cache(100);
        let ticket = c.ticket();
        c.apply(&Invalidation::Key("k".into()));
        c.fill(ticket, "k", entry(1, 0));
        assert!(c.get("k", 0).is_none(), "the stale read is not stored");
        let ticket = c.ticket();
        c.fill(ticket, "k", entry(1, 0));
        assert!(c.get("k", 0).is_some());
    }

    #[test]
    fn entries_age_out_and_owners_are_dropped_whole() {
        let c = cache(100);
        c.fill(c.ticket(), "a", entry(1, 0));
        c.fill(c.ticket(), "b", entry(1, 0));
        c.fill(c.ticket(), "c", entry(2, 0));
        assert!(c.get("a", 999).is_some());
        assert!(c.get("a", 1000).is_none(), "older than the bound");
        c.apply(&Invalidation::Owner(UserId(1)));
        assert!(c.get("b", 1).is_none());
        assert!(c.get("c", 1).is_some(), "other owners stay");
    }

    #[test]
    fn the_cache_is_bounded_and_off_while_not_live() {
        let c = cache(SHARDS * 2);
        for i in 0..10_000 {
            c.fill(c.ticket(), &format!("key{i}"), entry(1, 0));
        }
        assert!(c.len() <= SHARDS * 2, "{}", c.len());
        c.set_live(false);
        assert!(c.is_empty(), "cleared when it stops serving");
        c.fill(c.ticket(), "x", entry(1, 0));
        assert!(c.get("x", 0).is_none(), "neither filled nor read while not live");
        c.set_live(true);
        c.fill(c.ticket(), "x", entry(1, 0));
        assert!(c.get("x", 0).is_some());
        let off = cache(0);
        off.fill(off.ticket(), "x", entry(1, 0));
        assert!(off.get("x", 0).is_none(), "size 0 turns it off");
    }
}
