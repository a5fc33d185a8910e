//! The caller cache: who a principal is in the organizations (their roles, their
//! organizations and teams, their email), by user, in this process, so that a warm
//! authenticated request reads nothing from the database.
//!
//! It follows the verification cache's rules (docs/DESIGN.md §7):
//! - filled on a miss, bounded, each entry trusted for at most `max_age_ms`;
//! - written through: the store announces every committed change of a user's roles,
//!   memberships, teams or status as `Invalidation::Owner(user)` before the request
//!   that made it is answered, and the entry is dropped;
//! - a fill that read the database before an invalidation is discarded (an epoch
//!   counter, checked under the lock), so it never brings a stale row back;
//! - other replicas' changes arrive by the same `LISTEN/NOTIFY` fan-out as keys;
//!   while that connection is down the cache is neither read nor filled, and it is
//!   cleared when the connection drops and when it is back.

use keysmith_core::policy::Roles;
use keysmith_core::role::{OrgRole, TeamRole};
use keysmith_core::{OrgId, UserId};
use keysmith_store::{Invalidation, Store, Team};
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Who a principal is in the organizations, as the viewer shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: Option<String>,
    pub created_at: i64,
    pub orgs: Vec<OrgSeat>,
    pub teams: Vec<TeamSeat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSeat {
    pub id: OrgId,
    pub name: String,
    pub role: OrgRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSeat {
    pub team: Team,
    pub role: TeamRole,
}

impl Profile {
    /// The administrative roles the permission table asks about.
    pub fn roles(&self) -> Roles {
        Roles {
            admin_of_orgs: self
                .orgs
                .iter()
                .filter(|o| o.role == OrgRole::Admin)
                .map(|o| o.id)
                .collect(),
            admin_of_teams: self
                .teams
                .iter()
                .filter(|t| t.role == TeamRole::Admin)
                .map(|t| t.team.id)
                .collect(),
        }
    }

    /// The name of organization `id`, where the principal belongs to it.
    pub fn org_name(&self, id: OrgId) -> Option<&str> {
        self.orgs.iter().find(|o| o.id == id).map(|o| o.name.as_str())
    }

    /// Reads a principal's profile: three queries, on a miss only.
    pub async fn load(store: &dyn Store, user: UserId) -> keysmith_store::Result<Self> {
        let (email, created_at) = store
            .get_user(user)
            .await?
            .map_or((None, 0), |u| (u.email, u.created_at));
        let orgs = store
            .memberships(user)
            .await?
            .into_iter()
            .map(|m| OrgSeat {
                id: m.org.id,
                name: m.org.name,
                role: m.role,
            })
            .collect();
        let teams = store
            .user_teams(user)
            .await?
            .into_iter()
            .map(|(team, role)| TeamSeat { team, role })
            .collect();
        Ok(Self {
            email,
            created_at,
            orgs,
            teams,
        })
    }
}

/// Hits and misses of a cache, as Prometheus counters shared with the registry that
/// exposes them.
#[derive(Debug, Clone, Default)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
}

/// A cached principal: their roles and profile, shared with every request that asks.
#[derive(Debug, Clone)]
pub struct Seat {
    pub roles: Arc<Roles>,
    pub profile: Arc<Profile>,
}

#[derive(Debug)]
struct Cached {
    seat: Seat,
    loaded_at: i64,
}

/// foldhash, seeded per process.
type Hasher = foldhash::fast::RandomState;

pub struct CallerCache {
    entries: RwLock<HashMap<UserId, Cached, Hasher>>,
    max_entries: usize,
    max_age_ms: i64,
    epoch: AtomicU64,
    live: AtomicBool,
    pub hits: Counter,
    pub misses: Counter,
}

impl std::fmt::Debug for CallerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerCache")
            .field("max_entries", &self.max_entries)
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl CallerCache {
    /// A cache of at most `max_entries` principals (0 turns it off), each trusted for
    /// `max_age_ms`; `live` says whether it may serve from the start (true where no
    /// other replica can change anything).
    /// `counters` count hits and misses (clones of a metrics registry's counters).
    pub fn new(max_entries: usize, max_age_ms: i64, live: bool, counters: CacheCounters) -> Self {
        Self {
            entries: RwLock::new(HashMap::default()),
            max_entries,
            max_age_ms,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live && max_entries > 0),
            hits: counters.hits,
            misses: counters.misses,
        }
    }

    /// The seat of `user`, from the cache or read (and cached) on a miss.
    pub async fn seat(&self, store: &dyn Store, user: UserId, now: i64) -> keysmith_store::Result<Seat> {
        if self.is_live() {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some(cached) = entries.get(&user).filter(|c| now < c.loaded_at + self.max_age_ms) {
                self.hits.inc();
                return Ok(cached.seat.clone());
            }
        }
        self.misses.inc();
        let ticket = self.epoch.load(Ordering::SeqCst);
        let profile = Profile::load(store, user).await?;
        let seat = Seat {
            roles: Arc::new(profile.roles()),
            profile: Arc::new(profile),
        };
        self.insert(user, &seat, ticket, now);
        Ok(seat)
    }

    fn insert(&self, user: UserId, seat: &Seat, ticket: u64, now: i64) {
        if !self.is_live() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock that `apply` takes too: an invalidation after the
        // read began means the rows may be stale.
        if self.epoch.load(Ordering::SeqCst) != ticket {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains_key(&user) {
            let max_age_ms = self.max_age_ms;
            entries.retain(|_, c| now < c.loaded_at + max_age_ms);
            if entries.len() >= self.max_entries
                && let Some(evict) = entries.keys().next().copied()
            {
                entries.remove(&evict);
            }
        }
        entries.insert(
            user,
            Cached {
                seat: seat.clone(),
                loaded_at: now,
            },
        );
    }

    /// Drops what a committed change made stale.
    pub fn apply(&self, invalidation: &Invalidation) {
        if let Invalidation::Owner(user) = invalidation {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            self.epoch.fetch_add(1, Ordering::SeqCst);
            entries.remove(user);
        }
    }

    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// Whether the cache may serve; cleared on every change of state.
    pub fn set_live(&self, live: bool) {
        self.live.store(false, Ordering::Release);
        self.clear();
        if live && self.max_entries > 0 {
            self.live.store(true, Ordering::Release);
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
