//! The map under the application's caches (callers, sessions): bounded, each entry
//! trusted for at most a maximum age, emptied by the store's invalidations, and off
//! while another replica's changes may be missed.
//!
//! A fill that read the database before an invalidation must not bring a stale row
//! back: every removal bumps an epoch under the map's lock, and a fill is stored only
//! if the epoch it took before reading ([`FanoutMap::ticket`]) is still current.

use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// foldhash, seeded per process.
type Hasher = foldhash::fast::RandomState;

/// Hits and misses of a cache, as Prometheus counters shared with the registry that
/// exposes them.
#[derive(Debug, Clone, Default)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
}

#[derive(Debug)]
struct Timed<V> {
    value: V,
    loaded_at: i64,
}

pub(crate) struct FanoutMap<K, V> {
    entries: RwLock<HashMap<K, Timed<V>, Hasher>>,
    max_entries: usize,
    max_age_ms: i64,
    epoch: AtomicU64,
    live: AtomicBool,
    pub(crate) counters: CacheCounters,
}

impl<K: Eq + Hash + Copy, V: Clone> FanoutMap<K, V> {
    /// At most `max_entries` (0 turns it off), each trusted for `max_age_ms`; `live`
    /// says whether it may serve from the start.
    pub(crate) fn new(max_entries: usize, max_age_ms: i64, live: bool, counters: CacheCounters) -> Self {
        Self {
            entries: RwLock::new(HashMap::default()),
            max_entries,
            max_age_ms,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live && max_entries > 0),
            counters,
        }
    }

    /// The value for `key` if cached, young enough and `usable`; counts a hit or a miss.
    pub(crate) fn get(&self, key: &K, now: i64, usable: impl Fn(&V) -> bool) -> Option<V> {
        if self.is_live() {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = entries
                .get(key)
                .filter(|t| now < t.loaded_at + self.max_age_ms && usable(&t.value))
            {
                self.counters.hits.inc();
                return Some(t.value.clone());
            }
        }
        self.counters.misses.inc();
        None
    }

    /// Taken before reading the database for a fill; see [`FanoutMap::insert`].
    pub(crate) fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores what a miss read, unless anything was removed since `ticket`. A full map
    /// drops what has aged out, then an arbitrary entry.
    pub(crate) fn insert(&self, key: K, value: V, ticket: u64, now: i64) {
        if !self.is_live() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock that every removal takes too.
        if self.epoch.load(Ordering::SeqCst) != ticket {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            let max_age_ms = self.max_age_ms;
            entries.retain(|_, t| now < t.loaded_at + max_age_ms);
            if entries.len() >= self.max_entries
                && let Some(evict) = entries.keys().next().copied()
            {
                entries.remove(&evict);
            }
        }
        entries.insert(key, Timed { value, loaded_at: now });
    }

    /// Drops `key`.
    pub(crate) fn remove(&self, key: &K) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.remove(key);
    }

    /// Drops every entry `stale` says is stale.
    pub(crate) fn remove_where(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.retain(|k, t| !stale(k, &t.value));
    }

    pub(crate) fn clear(&self) {
        self.remove_where(|_, _| true);
    }

    /// Whether the map may serve; cleared on every change of state.
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(false, Ordering::Release);
        self.clear();
        if live && self.max_entries > 0 {
            self.live.store(true, Ordering::Release);
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(max: usize) -> FanoutMap<u32, &'static str> {
        FanoutMap::new(max, 1000, true, CacheCounters::default())
    }

    #[test]
    fn a_fill_that_raced_with_a_removal_is_dropped() {
        let m = map(10);
        let ticket = m.ticket();
        m.remove(&7);
        m.insert(1, "stale", ticket, 0);
        assert_eq!(m.get(&1, 0, |_| true), None, "read before a removal: not stored");
        m.insert(1, "fresh", m.ticket(), 0);
        assert_eq!(m.get(&1, 0, |_| true), Some("fresh"));
        assert_eq!((m.counters.hits.get(), m.counters.misses.get()), (1, 1));
    }

    #[test]
    fn entries_age_out_are_bounded_and_are_off_while_not_live() {
        let m = map(3);
        m.insert(1, "a", m.ticket(), 0);
        assert!(m.get(&1, 999, |_| true).is_some());
        assert!(m.get(&1, 1000, |_| true).is_none(), "older than the bound");
        assert!(m.get(&1, 0, |v| *v != "a").is_none(), "not usable");
        for i in 0..100 {
            m.insert(i, "x", m.ticket(), 0);
        }
        assert!(m.len() <= 3, "{}", m.len());
        m.remove_where(|k, _| *k == 99);
        assert!(m.get(&99, 0, |_| true).is_none());
        m.set_live(false);
        assert_eq!(m.len(), 0, "cleared when it stops serving");
        m.insert(5, "y", m.ticket(), 0);
        assert!(
            m.get(&5, 0, |_| true).is_none(),
            "neither filled nor read while not live"
        );
        m.set_live(true);
        m.insert(5, "y", m.ticket(), 0);
        assert!(m.get(&5, 0, |_| true).is_some());
        let off = map(0);
        off.insert(5, "y", off.ticket(), 0);
        assert!(off.get(&5, 0, |_| true).is_none(), "size 0 turns it off");
    }
}
