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

use crate::fanout_map::FanoutMap;
use keysmith_core::policy::Roles;
use keysmith_core::role::{OrgRole, TeamRole};
use keysmith_core::{OrgId, UserId};
use keysmith_store::{Invalidation, Store, Team};
use std::sync::Arc;

/// Who a principal is in the organizations, as the viewer shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: Option<String>,
    pub created_at: i64,
    pub orgs: Vec<OrgSeat>,
    pub teams: Vec<TeamSeat>,
    /// What a door renders of this profile alone, made once ([`Rendering`]).
    pub rendered: Rendering,
}

/// Text a door renders from a [`Profile`] alone (the REST viewer's JSON of the email,
/// organizations and teams), made at most once per cached profile and dropped with it.
/// A cached profile never changes (a change drops it and the next request reads a new
/// one), so the text never outlives what it shows. It is not part of the profile's
/// value: profiles compare equal whatever they rendered, and a clone starts empty.
#[derive(Default)]
pub struct Rendering(std::sync::OnceLock<Box<str>>);

impl Rendering {
    /// The text, rendered by `render` the first time it is asked for.
    #[inline]
    pub fn get_or_init(&self, render: impl FnOnce() -> String) -> &str {
        self.0.get_or_init(|| render().into_boxed_str())
    }
}

impl Clone for Rendering {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Rendering {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Rendering {}

impl std::fmt::Debug for Rendering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Rendering(made)"
        } else {
            "Rendering(empty)"
        })
    }
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
            rendered: Rendering::default(),
        })
    }
}

pub use crate::fanout_map::CacheCounters;

/// A cached principal: their roles and profile, shared with every request that asks.
#[derive(Debug, Clone)]
pub struct Seat {
    pub roles: Arc<Roles>,
    pub profile: Arc<Profile>,
}

pub struct CallerCache {
    map: FanoutMap<UserId, Seat>,
}

impl std::fmt::Debug for CallerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerCache")
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
            map: FanoutMap::new(max_entries, max_age_ms, live, counters),
        }
    }

    /// The seat of `user`, from the cache or read (and cached) on a miss.
    pub async fn seat(&self, store: &dyn Store, user: UserId, now: i64) -> keysmith_store::Result<Seat> {
        match self.cached(user, now) {
            Some(seat) => Ok(seat),
            None => self.read(store, user, now).await,
        }
    }

    /// The seat of `user` if the cache holds it (a hit), else `None` (a miss, then
    /// [`CallerCache::read`]): for a door that answers without a future when warm.
    #[inline]
    pub fn cached(&self, user: UserId, now: i64) -> Option<Seat> {
        self.map.get(&user, now, |_| true)
    }

    /// Reads the seat of `user` from the store, and caches it: after a miss.
    pub async fn read(&self, store: &dyn Store, user: UserId, now: i64) -> keysmith_store::Result<Seat> {
        let ticket = self.map.ticket();
        let profile = Profile::load(store, user).await?;
        let seat = Seat {
            roles: Arc::new(profile.roles()),
            profile: Arc::new(profile),
        };
        self.map.insert(user, seat.clone(), ticket, now);
        Ok(seat)
    }

    /// Drops what a committed change made stale.
    pub fn apply(&self, invalidation: &Invalidation) {
        if let Invalidation::Owner(user) = invalidation {
            self.map.remove(user);
        }
    }

    pub fn clear(&self) {
        self.map.clear();
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
