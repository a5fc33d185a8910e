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
//! - Other replicas' changes arrive by `LISTEN/NOTIFY` (the server's fan-out task); while that
//!   connection is down the cache is neither read nor filled, and it is cleared both
//!   when the connection drops and when it is back.
//!
//! - A key ID the database does not have is cached too, as absent: a guess at an
//!   unknown, a deleted and an existing key then costs the same (a lookup, SHA-256
//!   and a constant-time comparison) once warm, and repeated guesses cost no database
//!   read. Key IDs are random, so a key created later never has an absent entry
//!   waiting for it, short of someone presenting its ID before it existed.
//!
//! - Legacy keys (40 characters) hold no key ID: they are found by the digest of the
//!   whole key. The first read learns which handle (`legacy_<27>`) that digest
//!   belongs to; from then on the digest leads to the handle's entry, cached,
//!   invalidated and aged like any other. Unknown legacy keys are not cached.

use crate::fanout_map::CacheCounters;
use keysmith_core::key_format::LEGACY_HANDLE_PREFIX;
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyDigest, KeyId, KeyScope, Networks, UserId};
use keysmith_store::{AuthRecord, Invalidation, UserRef};
use std::any::Any;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Shards of the key map: enough that verifications on many cores rarely meet on
/// one lock. Not a power of two, so that a shard's table is seldom half empty just
/// after growing (a million keys fill 40 shards' tables to about three quarters).
const SHARDS: usize = 40;

/// The random part of a v1 key ID (27 base62 characters): the map's key, stored
/// inline. Keys of different prefixes sharing it are as likely as guessing a key; and
/// the digest comparison still decides.
type Slot = [u8; 27];

#[inline]
fn slot(key_id: &str) -> Option<Slot> {
    let bytes = key_id.as_bytes();
    bytes.get(bytes.len().checked_sub(27)?..)?.try_into().ok()
}

/// What verification needs to know about a key's owner, shared by all their cached
/// keys. Marked stale when the owner changes (deactivated, deleted, organizations
/// changed): every key of theirs then misses until read again, in O(1).
#[derive(Debug)]
pub struct OwnerInfo {
    pub id: UserId,
    pub kind: PrincipalKind,
    pub active: bool,
    pub username: Box<str>,
    /// Comma-separated organization names.
    pub orgs: Box<str>,
    /// The allowlists that apply to every key of the owner (a service account's own,
    /// and each of the owner's organizations' that has one): a key of theirs is used
    /// from an address in every one of them, or refused.
    pub networks: Box<[Networks]>,
    /// What a door derived from this owner once and reuses for every answer (forward
    /// auth keeps its answer's headers here); owners never seen there pay 8 bytes.
    memo: OnceLock<Box<dyn Any + Send + Sync>>,
    stale: AtomicBool,
}

impl OwnerInfo {
    fn new(record: &AuthRecord) -> Self {
        let orgs = record.orgs.join(",");
        Self {
            id: record.owner.id,
            kind: record.owner.kind,
            active: record.owner_active,
            memo: OnceLock::new(),
            username: record.owner.username.clone().into_boxed_str(),
            orgs: orgs.into_boxed_str(),
            networks: record
                .account_networks
                .iter()
                .chain(&record.org_networks)
                .map(|text| stored_networks(text))
                .collect(),
            stale: AtomicBool::new(false),
        }
    }

    /// What `build` derives from this owner, built once and kept with the owner's
    /// cache entry (dropped with it). `None` if another type was kept first: one door
    /// (forward auth) uses the slot.
    #[inline]
    pub fn memo<T: Any + Send + Sync>(&self, build: impl FnOnce(&Self) -> T) -> Option<&T> {
        self.memo.get_or_init(|| Box::new(build(self))).downcast_ref()
    }

    /// The owner as the rest of the server names users.
    pub fn user(&self) -> UserRef {
        UserRef {
            id: self.id,
            kind: self.kind,
            username: self.username.to_string(),
        }
    }

    fn same_as(&self, other: &OwnerInfo) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.active == other.active
            && self.username == other.username
            && self.orgs == other.orgs
            && self.networks == other.networks
    }
}

/// A stored allowlist, read back; one that no longer parses allows nothing.
fn stored_networks(text: &str) -> Networks {
    Networks::parse(text).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a stored network allowlist does not parse; refusing every address");
        Networks::nothing()
    })
}

/// What a key may do and where from, beyond its owner's rules: shared by every key
/// with no allowlist of its own (one static per scope), so that most keys pay 8 bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    pub scope: KeyScope,
    /// The key's own allowlist.
    pub networks: Option<Networks>,
    /// Its request limit, per minute.
    pub per_minute: Option<u32>,
}

impl KeyPolicy {
    fn of(scope: KeyScope, networks: Option<&str>, per_minute: Option<u32>) -> Arc<Self> {
        if networks.is_none() && per_minute.is_none() {
            static PLAIN: OnceLock<[Arc<KeyPolicy>; 3]> = OnceLock::new();
            let plain = PLAIN.get_or_init(|| {
                KeyScope::ALL.map(|scope| {
                    Arc::new(KeyPolicy {
                        scope,
                        networks: None,
                        per_minute: None,
                    })
                })
            });
            return plain[scope as usize].clone();
        }
        Arc::new(Self {
            scope,
            networks: networks.map(stored_networks),
            per_minute,
        })
    }
}

/// One cached key: 64 bytes, plus its 27-byte key in the map (a test holds it there).
#[derive(Debug, Clone)]
pub struct Entry {
    pub digest: KeyDigest,
    pub owner: Arc<OwnerInfo>,
    pub policy: Arc<KeyPolicy>,
    /// When the key stops working; [`NEVER`] if it does not expire (an `Option` would
    /// take 8 more bytes).
    pub expires_at: i64,
    loaded_at: i64,
}

impl Entry {
    /// Whether the key may be used from `ip`: in its own allowlist, if it has one, and
    /// in each of its owner's organizations' allowlists. An unknown address is in no
    /// list.
    #[inline]
    pub fn allows(&self, ip: Option<std::net::IpAddr>) -> bool {
        self.policy.networks.as_ref().is_none_or(|n| n.contains(ip))
            && self.owner.networks.iter().all(|n| n.contains(ip))
    }
}

/// The expiry of a key that never expires.
pub const NEVER: i64 = i64::MAX;

/// The owner of every absent key: no one (inactive, never interned, never stale).
fn nobody() -> &'static Arc<OwnerInfo> {
    static NOBODY: OnceLock<Arc<OwnerInfo>> = OnceLock::new();
    NOBODY.get_or_init(|| {
        Arc::new(OwnerInfo {
            id: UserId(0),
            kind: PrincipalKind::User,
            active: false,
            username: Box::default(),
            orgs: Box::default(),
            networks: Box::default(),
            memo: OnceLock::new(),
            stale: AtomicBool::new(false),
        })
    })
}

impl Entry {
    /// A key ID the database does not have. Its digest (of the empty string) matches
    /// no key, but is compared all the same.
    pub fn absent(now: i64) -> Self {
        Self {
            digest: KeyDigest::of(b""),
            owner: nobody().clone(),
            policy: KeyPolicy::of(KeyScope::Read, None, None),
            expires_at: NEVER,
            loaded_at: now,
        }
    }

    #[inline]
    pub fn is_absent(&self) -> bool {
        Arc::ptr_eq(&self.owner, nobody())
    }

    pub fn from_record(record: &AuthRecord, now: i64) -> Self {
        Self {
            digest: record.digest,
            owner: Arc::new(OwnerInfo::new(record)),
            policy: KeyPolicy::of(record.scope, record.key_networks.as_deref(), record.requests_per_minute),
            expires_at: record.expires_at.unwrap_or(NEVER),
            loaded_at: now,
        }
    }
}

/// foldhash, seeded per process: a few nanoseconds per lookup where SipHash took
/// tens, and still not predictable to someone choosing key IDs.
type Hasher = foldhash::fast::RandomState;

type Shard = RwLock<HashMap<Slot, Entry, Hasher>>;

pub struct VerifyCache {
    shards: Box<[Shard]>,
    /// A legacy key's whole-key digest → the slot of its handle. Never wrong (a digest
    /// names one key, a handle is never reused), so only bounded and cleared.
    legacy: RwLock<HashMap<KeyDigest, Slot, Hasher>>,
    owners: RwLock<HashMap<UserId, Arc<OwnerInfo>, Hasher>>,
    per_shard: usize,
    max_age_ms: i64,
    epoch: AtomicU64,
    /// False while the fan-out connection is down (several replicas): the cache is
    /// then bypassed.
    live: AtomicBool,
    hasher: Hasher,
    counters: CacheCounters,
}

impl VerifyCache {
    /// A cache of at most `max_keys` entries (0 turns it off), each trusted for
    /// `max_age_ms`; `live` says whether it may serve from the start (true where no
    /// other replica can change keys). `counters` count hits and misses.
    pub fn new(max_keys: usize, max_age_ms: i64, live: bool, counters: CacheCounters) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::default())).collect();
        Self {
            shards,
            legacy: RwLock::new(HashMap::default()),
            owners: RwLock::new(HashMap::default()),
            per_shard: max_keys.div_ceil(SHARDS),
            max_age_ms,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live && max_keys > 0),
            hasher: Hasher::default(),
            counters,
        }
    }

    #[inline]
    fn shard(&self, slot: &Slot) -> &Shard {
        let i = usize::try_from(self.hasher.hash_one(slot) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// The entry for `key_id`, if cached, young enough and its owner unchanged.
    #[inline]
    pub fn get(&self, key_id: &str, now: i64) -> Option<Entry> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.get_slot(&slot(key_id)?, now)
    }

    /// The handle and entry of the legacy key whose whole-key digest is `digest`, if
    /// a verification has read it before and its entry is still good.
    pub fn get_legacy(&self, digest: &KeyDigest, now: i64) -> Option<(KeyId, Entry)> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let known = self
            .legacy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .copied();
        let Some(slot) = known else {
            self.counters.misses.inc();
            return None;
        };
        let entry = self.get_slot(&slot, now)?;
        let handle = std::str::from_utf8(&slot).ok()?;
        let key_id = KeyId::parse(&format!("{LEGACY_HANDLE_PREFIX}{handle}")).ok()?;
        Some((key_id, entry))
    }

    #[inline]
    fn get_slot(&self, slot: &Slot, now: i64) -> Option<Entry> {
        let slot = *slot;
        let shard = self.shard(&slot).read().unwrap_or_else(|p| p.into_inner());
        let found = shard
            .get(&slot)
            .filter(|e| now - e.loaded_at < self.max_age_ms && !e.owner.stale.load(Ordering::Acquire))
            .cloned();
        drop(shard);
        if found.is_some() {
            self.counters.hits.inc();
        } else {
            self.counters.misses.inc();
        }
        found
    }

    /// Taken before reading the database for a fill; see [`VerifyCache::fill`].
    pub fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores what a miss read, unless anything was invalidated since `ticket`. The
    /// owner's information is shared with their other cached keys.
    pub fn fill(&self, ticket: u64, key_id: &str, mut entry: Entry) {
        if !self.live.load(Ordering::Acquire) || self.per_shard == 0 {
            return;
        }
        let Some(slot) = slot(key_id) else { return };
        let mut shard = self.shard(&slot).write().unwrap_or_else(|p| p.into_inner());
        {
            // Checked under the owners' lock: an owner invalidation bumps the epoch
            // before it takes this lock, so it either stops this fill here or comes
            // after it and marks what this fill stored as stale.
            let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
            if self.epoch.load(Ordering::SeqCst) != ticket {
                return;
            }
            match owners.get(&entry.owner.id) {
                _ if entry.is_absent() => {}
                Some(known) if !known.stale.load(Ordering::Acquire) && known.same_as(&entry.owner) => {
                    entry.owner = known.clone();
                }
                known => {
                    if let Some(old) = known {
                        old.stale.store(true, Ordering::Release);
                    }
                    owners.insert(entry.owner.id, entry.owner.clone());
                }
            }
        }
        if shard.len() >= self.per_shard
            && !shard.contains_key(&slot)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(slot, entry);
    }

    /// [`VerifyCache::fill`] for a legacy key, remembering which handle its whole-key
    /// digest belongs to.
    pub fn fill_legacy(&self, ticket: u64, key_id: &KeyId, digest: KeyDigest, entry: Entry) {
        if !self.live.load(Ordering::Acquire) || self.per_shard == 0 {
            return;
        }
        let Some(slot) = slot(key_id.as_str()) else { return };
        {
            let mut legacy = self.legacy.write().unwrap_or_else(|p| p.into_inner());
            if legacy.len() >= self.per_shard * SHARDS
                && !legacy.contains_key(&digest)
                && let Some(victim) = legacy.keys().next().copied()
            {
                legacy.remove(&victim);
            }
            legacy.insert(digest, slot);
        }
        self.fill(ticket, key_id.as_str(), entry);
    }

    /// Drops what `invalidation` makes stale. The epoch moves first, so a fill racing
    /// with this cannot store what it read before.
    pub fn apply(&self, invalidation: &Invalidation) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match invalidation {
            Invalidation::Key(key_id) => {
                if let Some(slot) = slot(key_id) {
                    self.shard(&slot)
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&slot);
                }
            }
            Invalidation::Session(_) => {}
            Invalidation::Owner(owner) => {
                let removed = self.owners.write().unwrap_or_else(|p| p.into_inner()).remove(owner);
                if let Some(info) = removed {
                    info.stale.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for info in self.owners.write().unwrap_or_else(|p| p.into_inner()).drain() {
            info.1.stale.store(true, Ordering::Release);
        }
        for shard in self.shards.iter() {
            shard.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.legacy.write().unwrap_or_else(|p| p.into_inner()).clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_stays_at_64_bytes_with_its_scope_and_allowlist() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    fn entry(owner: i64, now: i64) -> Entry {
        let record = AuthRecord {
            key_id: keysmith_core::KeyId::parse("wandb_v1_aaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
            digest: KeyDigest::of(b"x"),
            owner: UserRef {
                id: UserId(owner),
                kind: PrincipalKind::User,
                username: "u".into(),
            },
            owner_active: true,
            expires_at: None,
            scope: keysmith_core::KeyScope::Admin,
            key_networks: None,
            requests_per_minute: None,
            account_networks: None,
            org_networks: Vec::new(),
            orgs: vec!["o".into()],
        };
        Entry::from_record(&record, now)
    }

    fn id(n: usize) -> String {
        format!("wandb_v1_{n:027}")
    }

    fn cache(max: usize) -> VerifyCache {
        VerifyCache::new(max, 1000, true, CacheCounters::default())
    }

    #[test]
    fn a_fill_that_raced_with_an_invalidation_is_dropped() {
        let c = cache(100);
        let ticket = c.ticket();
        c.apply(&Invalidation::Key(id(1)));
        c.fill(ticket, &id(1), entry(1, 0));
        assert!(c.get(&id(1), 0).is_none(), "the stale read is not stored");
        let ticket = c.ticket();
        c.fill(ticket, &id(1), entry(1, 0));
        assert!(c.get(&id(1), 0).is_some());
    }

    #[test]
    fn legacy_keys_are_found_by_digest_and_go_with_their_handle() {
        let c = cache(100);
        let handle = KeyId::parse("legacy_bbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        let digest = KeyDigest::of(b"a whole legacy key");
        // A fill that raced with an invalidation stores nothing.
        let ticket = c.ticket();
        c.apply(&Invalidation::Key(handle.as_str().into()));
        c.fill_legacy(ticket, &handle, digest, entry(1, 0));
        assert!(c.get_legacy(&digest, 0).is_none());

        c.fill_legacy(c.ticket(), &handle, digest, entry(1, 0));
        let (found, _) = c.get_legacy(&digest, 0).expect("cached");
        assert_eq!(found, handle);
        assert!(c.get_legacy(&KeyDigest::of(b"another key"), 0).is_none());
        c.apply(&Invalidation::Key(handle.as_str().into()));
        assert!(c.get_legacy(&digest, 0).is_none(), "invalidated by its handle");

        c.fill_legacy(c.ticket(), &handle, digest, entry(1, 0));
        c.clear();
        assert!(c.legacy.read().unwrap().is_empty(), "cleared with the rest");
        assert!(c.get_legacy(&digest, 0).is_none());
    }

    #[test]
    fn entries_age_out_and_owners_are_dropped_whole() {
        let c = cache(100);
        c.fill(c.ticket(), &id(2), entry(1, 0));
        c.fill(c.ticket(), &id(3), entry(1, 0));
        c.fill(c.ticket(), &id(4), entry(2, 0));
        assert!(c.get(&id(2), 999).is_some());
        assert!(c.get(&id(2), 1000).is_none(), "older than the bound");
        c.apply(&Invalidation::Owner(UserId(1)));
        assert!(c.get(&id(3), 1).is_none());
        assert!(c.get(&id(4), 1).is_some(), "other owners stay");
    }

    #[test]
    fn the_cache_is_bounded_and_off_while_not_live() {
        let c = cache(SHARDS * 2);
        for i in 0..10_000 {
            c.fill(c.ticket(), &id(100 + i), entry(1, 0));
        }
        assert!(c.len() <= SHARDS * 2, "{}", c.len());
        c.set_live(false);
        assert!(c.is_empty(), "cleared when it stops serving");
        c.fill(c.ticket(), &id(5), entry(1, 0));
        assert!(c.get(&id(5), 0).is_none(), "neither filled nor read while not live");
        c.set_live(true);
        c.fill(c.ticket(), &id(5), entry(1, 0));
        assert!(c.get(&id(5), 0).is_some());
        let off = cache(0);
        off.fill(off.ticket(), &id(5), entry(1, 0));
        assert!(off.get(&id(5), 0).is_none(), "size 0 turns it off");
    }
}
