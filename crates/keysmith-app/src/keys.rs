//! API keys: mint (the plaintext returned once), rotate, rename, delete, bulk delete,
//! list by role, read. The same rules for every door: who may act on whose keys
//! (docs/DESIGN.md §3), the organization settings that disable creation, allow legacy
//! keys and cap lifetimes, and the audit entries written with each change.

use crate::access::{self, audit_orgs, authorized_key};
use crate::audit::{Action, AuditContext};
use crate::caller::{AuthMethod, Caller};
use crate::error::{AppError, Missing, Result};
use crate::time::{DAY_MS, HOUR_MS, rfc3339};
use crate::{Acting, App};
use base64::Engine;
use keysmith_core::policy::{self, KeyAction, OwnerScope};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{GeneratedKey, KeyId, KeyName, KeyScope, Networks, UserId, generate_legacy, generate_v1};
use keysmith_store::{
    KeyCursor, KeyFilter, KeyFormat, KeyListQuery, KeySort, KeySource, NewKey, Org, StoredKey, Visibility,
};

/// The most days an expiry or an "expiring within" filter takes: a hundred years.
pub const MAX_DAYS: u32 = 36_500;
/// Keys a page of a list holds, by default and at most.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;
/// Keys one bulk delete takes at most.
pub const MAX_BULK: usize = 100;

/// A key to mint.
#[derive(Debug, Clone)]
pub struct NewKeyRequest {
    pub name: KeyName,
    /// The owner by name; `None` for the caller.
    pub owner: Option<String>,
    pub format: KeyFormat,
    /// When the key should stop working; `None` for the longest the policy allows.
    pub expires_at: Option<i64>,
    /// What the key may do at most; `None` for the scope of the key that asks (a
    /// session's keys are `admin`). Never wider than the asking key's.
    pub scope: Option<KeyScope>,
    /// Where the key may be used from; `None` for the allowlist of the key that asks
    /// (none from a session). Never wider than the asking key's.
    pub allowed_networks: Option<Networks>,
    /// At most this many requests a minute (1 to [`MAX_PER_MINUTE`]); `None` for the
    /// limit of the key that asks (none from a session). Never above the asking key's.
    pub requests_per_minute: Option<u32>,
}

/// The highest per-key request limit, per minute (1,000 a second).
pub const MAX_PER_MINUTE: u32 = 60_000;

/// Whether a key works now, as lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    /// Past its expiry, or its rotation's grace period.
    Expired,
}

impl KeyStatus {
    pub fn of(key: &StoredKey, now: i64) -> Self {
        if key.expires_at.is_some_and(|at| at <= now) {
            Self::Expired
        } else {
            Self::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }
}

/// A stored key and its plaintext, to be shown once.
pub struct Minted {
    pub key: StoredKey,
    pub generated: GeneratedKey,
    /// For a rotation: when the old key stops working (`None`: when deleted).
    pub previous_expires_at: Option<i64>,
}

/// `days` from `now`, for an expiry given in days (1 to [`MAX_DAYS`]).
pub fn expiry_in_days(now: i64, days: u32) -> Result<i64> {
    if days == 0 {
        return Err(AppError::invalid(
            "expires_in_days",
            "expires_in_days must be at least 1",
        ));
    }
    if days > MAX_DAYS {
        return Err(AppError::invalid(
            "expires_in_days",
            format!("expires_in_days must be at most {MAX_DAYS}"),
        ));
    }
    Ok(now + i64::from(days) * DAY_MS)
}

/// Who a new key will belong to, once the rules allow it: docs/DESIGN.md §3's creation
/// rules and the "disable API key creation" setting of the owner's organizations.
struct Plan {
    owner_id: UserId,
    scope: OwnerScope,
    orgs: Vec<Org>,
}

async fn plan(app: &App, caller: &Caller, owner_id: UserId) -> Result<Plan> {
    let not_found = AppError::NotFound(Missing::Owner);
    let scope = app.store.owner_scope(owner_id).await?.ok_or(not_found.clone())?;
    let owner = scope.as_owner(owner_id == caller.id());
    if !policy::may_act_on_key(&caller.roles, KeyAction::Read, &owner) {
        return Err(not_found);
    }
    if !policy::may_act_on_key(&caller.roles, KeyAction::Create, &owner) {
        return Err(AppError::Forbidden("personal keys are created only by their owner"));
    }
    caller.require_scope(policy::scope_for_key_action(KeyAction::Create, &owner))?;
    let mut orgs = Vec::new();
    for org in scope.orgs() {
        if let Some(org) = app.store.get_org(org).await? {
            orgs.push(org);
        }
    }
    let disabled = |id| orgs.iter().any(|o| o.id == id && o.key_creation_disabled);
    if !policy::key_creation_allowed(&scope, disabled) {
        return Err(AppError::KeyCreationDisabled);
    }
    Ok(Plan { owner_id, scope, orgs })
}

impl Plan {
    /// The expiry of a new key: the one asked for, within the organizations' maximum
    /// lifetime; or that maximum when none was asked for.
    fn expiry(&self, now: i64, requested: Option<i64>) -> Result<Option<i64>> {
        let limits = |id| {
            self.orgs.iter().find(|o| o.id == id).map_or((0, 0), |o| {
                (o.max_user_key_lifetime_days, o.max_service_account_key_lifetime_days)
            })
        };
        let max_days = policy::max_key_lifetime_days(&self.scope, limits);
        let latest = max_days.map(|d| now + i64::from(d) * DAY_MS);
        match (requested, latest) {
            (Some(at), _) if at <= now => Err(AppError::invalid("expires_at", "the expiry must be in the future")),
            (Some(at), Some(latest)) if at > latest => Err(AppError::ExpiryExceedsPolicy(format!(
                "keys of this owner may live at most {} days (organization policy); ask for an earlier expiry",
                max_days.unwrap_or(0)
            ))),
            (Some(at), _) => Ok(Some(at)),
            (None, latest) => Ok(latest),
        }
    }

    fn generate(&self, app: &App, format: KeyFormat) -> Result<GeneratedKey> {
        match format {
            KeyFormat::V1 => generate_v1(&app.key_prefix),
            KeyFormat::Legacy => {
                if !self.orgs.iter().any(|o| o.legacy_keys_allowed) {
                    return Err(AppError::LegacyKeysNotAllowed);
                }
                generate_legacy(None)
            }
        }
        .map_err(|e| AppError::Internal(e.to_string()))
    }
}

fn new_key(
    generated: &GeneratedKey,
    format: KeyFormat,
    name: String,
    owner: UserId,
    caller: &Caller,
    now: i64,
) -> NewKey {
    NewKey {
        key_id: generated.key_id.clone(),
        digest: generated.digest,
        format,
        display: generated.display.clone(),
        name,
        owner,
        created_by: Some(caller.id()),
        created_at: now,
        expires_at: None,
        rotated_from: None,
        federated_issuer: None,
        scope: KeyScope::Admin,
        allowed_networks: None,
        requests_per_minute: None,
    }
}

/// Mints a key for the caller or for a service account they administer.
pub async fn mint(app: &App, acting: &Acting<'_>, request: NewKeyRequest) -> Result<Minted> {
    let caller = acting.caller;
    let owner_id = match request.owner.as_deref() {
        None => caller.id(),
        Some(owner) => {
            app.store
                .find_user_by_username(owner)
                .await?
                .ok_or(AppError::NotFound(Missing::Owner))?
                .id
        }
    };
    let plan = plan(app, caller, owner_id).await?;
    // No key makes a key stronger than itself: no wider scope, no wider networks.
    let scope = request.scope.unwrap_or(caller.scope());
    caller.require_scope(scope)?;
    // What is not asked for is the asking key's own; nothing may exceed it.
    let own = callers_key(app, caller).await?;
    let networks = request.allowed_networks.or_else(|| own.networks.clone());
    own.bound_networks(networks.as_ref())?;
    if let Some(n) = request.requests_per_minute
        && !(1..=MAX_PER_MINUTE).contains(&n)
    {
        return Err(AppError::invalid(
            "requests_per_minute",
            format!("a request limit (requests_per_minute) is 1 to {MAX_PER_MINUTE} a minute"),
        ));
    }
    let per_minute = request.requests_per_minute.or(own.per_minute);
    own.bound_limit(per_minute)?;
    let expires_at = plan.expiry(acting.now, request.expires_at)?;
    let generated = plan.generate(app, request.format)?;
    let owner_name = request.owner.as_deref().unwrap_or(&caller.principal.user.username);
    let audit = AuditContext::of(acting).entries(
        &plan.scope.orgs(),
        Action::ApiKeyCreated,
        generated.key_id.as_str(),
        Some(serde_json::json!({
            "name": request.name.as_str(),
            "owner": owner_name,
            "format": request.format.as_str(),
            "expires_at": expires_at.map(rfc3339),
            "scope": scope.as_str(),
            "allowed_networks": networks.as_ref().map(ToString::to_string),
            "requests_per_minute": per_minute,
        })),
    );
    let mut key = new_key(
        &generated,
        request.format,
        request.name.into_string(),
        plan.owner_id,
        caller,
        acting.now,
    );
    key.expires_at = expires_at;
    key.scope = scope;
    key.allowed_networks = networks.map(|n| n.to_string());
    key.requests_per_minute = per_minute;
    let key = app.store.insert_key(key, &audit).await?;
    tracing::info!(key.id = %key.key_id, user.id = caller.id().0, owner.id = owner_id.0, "API key created");
    Ok(Minted {
        key,
        generated,
        previous_expires_at: None,
    })
}

const NETWORKS_NOT_WITHIN: &str =
    "a key restricted to networks can only create or rotate keys restricted to networks within its own";

const LIMIT_NOT_WITHIN: &str =
    "a key with a request limit can only create or rotate keys limited to as many requests a minute, or fewer";

/// The limits of the key the caller acts with, which keys it makes may not exceed.
#[derive(Default)]
struct OwnLimits {
    networks: Option<Networks>,
    per_minute: Option<u32>,
}

impl OwnLimits {
    /// Refuses an allowlist (`None`: none, the widest) reaching beyond the asking key's.
    fn bound_networks(&self, networks: Option<&Networks>) -> Result<()> {
        match &self.networks {
            Some(own) if !networks.is_some_and(|n| n.within(own)) => Err(AppError::Forbidden(NETWORKS_NOT_WITHIN)),
            _ => Ok(()),
        }
    }

    /// Refuses a request limit (`None`: none, the widest) above the asking key's.
    fn bound_limit(&self, per_minute: Option<u32>) -> Result<()> {
        match self.per_minute {
            Some(own) if per_minute.is_none_or(|n| n > own) => Err(AppError::Forbidden(LIMIT_NOT_WITHIN)),
            _ => Ok(()),
        }
    }
}

/// The allowlist and request limit of the key the caller acts with; none for a session.
/// Read from the store: only minting and rotating ask.
async fn callers_key(app: &App, caller: &Caller) -> Result<OwnLimits> {
    let AuthMethod::ApiKey { key_id, .. } = &caller.principal.via else {
        return Ok(OwnLimits::default());
    };
    let Some(key) = app.store.get_key(key_id).await? else {
        return Ok(OwnLimits::default());
    };
    let networks = match key.allowed_networks.as_deref().map(Networks::parse).transpose() {
        Ok(networks) => networks,
        // Damaged data fails closed: a list no block is within.
        Err(_) => Some(Networks::nothing()),
    };
    Ok(OwnLimits {
        networks,
        per_minute: key.requests_per_minute,
    })
}

/// How long the old key of a rotation keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grace {
    Now,
    Hours(u32),
    UntilDeleted,
}

impl Grace {
    /// `now`, `1h`, `24h`, `7d` or `until_deleted`.
    pub fn parse(raw: &str) -> Result<Self> {
        Ok(match raw {
            "now" => Self::Now,
            "1h" => Self::Hours(1),
            "24h" => Self::Hours(24),
            "7d" => Self::Hours(24 * 7),
            "until_deleted" => Self::UntilDeleted,
            _ => {
                return Err(AppError::invalid(
                    "grace",
                    "grace must be `now`, `1h`, `24h`, `7d` or `until_deleted`",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Now => "now",
            Self::Hours(1) => "1h",
            Self::Hours(24) => "24h",
            Self::Hours(_) => "7d",
            Self::UntilDeleted => "until_deleted",
        }
    }

    fn ends_at(self, now: i64) -> Option<i64> {
        match self {
            Self::Now => Some(now),
            Self::Hours(h) => Some(now + i64::from(h) * HOUR_MS),
            Self::UntilDeleted => None,
        }
    }
}

impl Default for Grace {
    fn default() -> Self {
        Self::Hours(24)
    }
}

/// Rotation: a new key for the same owner, with the same name and format, linked to
/// the old one as its successor; the old key keeps working until the grace period
/// ends. Needs the right to delete the old key and to create keys for its owner.
pub async fn rotate(app: &App, acting: &Acting<'_>, old_key_id: &str, grace: Grace) -> Result<Minted> {
    let caller = acting.caller;
    let now = acting.now;
    let old = authorized_key(app, caller, old_key_id, KeyAction::Delete).await?;
    not_federated(&old)?;
    if old.rotated_to.is_some() {
        return Err(AppError::RotationInProgress);
    }
    // The successor keeps the old key's scope, and its secret goes to the caller: a
    // narrower key must not rotate its way to a wider one.
    caller.require_scope(old.scope)?;
    // A stored list that no longer parses counts as none: the widest.
    let old_networks = old.allowed_networks.as_deref().and_then(|n| Networks::parse(n).ok());
    let own = callers_key(app, caller).await?;
    own.bound_networks(old_networks.as_ref())?;
    own.bound_limit(old.requests_per_minute)?;
    let plan = plan(app, caller, old.owner.id).await?;
    if old.expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::ApiKeyExpired);
    }
    let expires_at = plan.expiry(now, None)?;
    let generated = plan.generate(app, old.format)?;
    let old_ends = grace.ends_at(now);
    let audit = AuditContext::of(acting).entries(
        &plan.scope.orgs(),
        Action::ApiKeyRotated,
        old.key_id.as_str(),
        Some(serde_json::json!({
            "name": old.name,
            "owner": old.owner.username,
            "to": generated.key_id.as_str(),
            "grace": grace.as_str(),
            "old_expires_at": old_ends.map(rfc3339),
        })),
    );
    let mut key = new_key(&generated, old.format, old.name.clone(), old.owner.id, caller, now);
    key.expires_at = expires_at;
    key.rotated_from = Some(old.key_id.clone());
    key.scope = old.scope;
    key.allowed_networks = old.allowed_networks.clone();
    key.requests_per_minute = old.requests_per_minute;
    let key = app
        .store
        .rotate_key(&old.key_id, key, old_ends, &audit)
        .await?
        .ok_or(AppError::NotFound(Missing::ApiKey))?;
    tracing::info!(key.id = %key.key_id, key.previous = %old.key_id, user.id = caller.id().0, "API key rotated");
    // The old key's expiry as the rotation left it: brought forward, never pushed back.
    let previous_expires_at = app.store.get_key(&old.key_id).await?.and_then(|k| k.expires_at);
    Ok(Minted {
        key,
        generated,
        previous_expires_at,
    })
}

/// A key the caller may see, with its recent sources (address, user agent).
pub async fn get(app: &App, caller: &Caller, key_id: &str) -> Result<(StoredKey, Vec<KeySource>)> {
    let key = authorized_key(app, caller, key_id, KeyAction::Read).await?;
    let sources = sources(app, &key.key_id).await?;
    Ok((key, sources))
}

/// A key's most recent sources, newest first: those written, and the uses still held
/// in memory, so that a rotation's old key shows its last use at once.
pub async fn sources(app: &App, key_id: &KeyId) -> Result<Vec<KeySource>> {
    let mut sources = app.store.key_sources(key_id).await?;
    for (address, user_agent, first, last) in app.usage.pending_sources(key_id) {
        match sources
            .iter_mut()
            .find(|s| s.address == address && s.user_agent == user_agent)
        {
            Some(s) => {
                s.first_seen = s.first_seen.min(first);
                s.last_seen = s.last_seen.max(last);
            }
            None => sources.push(KeySource {
                address,
                user_agent,
                first_seen: first,
                last_seen: last,
            }),
        }
    }
    sources.sort_by(|a, b| (b.last_seen, &a.address, &a.user_agent).cmp(&(a.last_seen, &b.address, &b.user_agent)));
    sources.truncate(usize::try_from(keysmith_store::MAX_SOURCES_PER_KEY).unwrap_or(10));
    Ok(sources)
}

/// When a key was last used: the later of the stored time and a use still in memory.
pub fn last_used(app: &App, key: &StoredKey) -> Option<i64> {
    match (key.last_used_at, app.usage.pending(&key.key_id)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// When a key last made a request that may change state: the later of the stored
/// time and one still in memory.
pub fn last_write(app: &App, key: &StoredKey) -> Option<i64> {
    key.last_write_at.max(app.usage.pending_write(&key.key_id))
}

/// Keys each section of the key report holds at most.
pub const REPORT_LIMIT: u32 = 200;
/// A key never used is reported once it is this old.
pub const REPORT_NEVER_USED_DAYS: u32 = 7;
/// A key is idle after this long without use, unless the organization announces idle
/// keys after another number of days (`unused_key_notice_days`).
pub const REPORT_IDLE_DAYS: u32 = 90;
/// A write or admin key that made only reads for this long could be a read key.
pub const REPORT_READS_ONLY_DAYS: u32 = 30;

/// One section of the key report: its keys, and whether there were more.
#[derive(Debug, Clone)]
pub struct ReportSection {
    pub keys: Vec<StoredKey>,
    pub truncated: bool,
}

/// Keys an organization admin may want to narrow or delete: those of the
/// organization's members and service accounts that still work and were never used,
/// are idle, expire soon, or hold more power than their use shows they need.
#[derive(Debug, Clone)]
pub struct KeyReport {
    pub org: keysmith_store::Org,
    pub generated_at: i64,
    pub never_used_days: u32,
    pub idle_days: u32,
    pub expiring_days: u32,
    pub reads_only_days: u32,
    pub never_used: ReportSection,
    pub idle: ReportSection,
    pub expiring: ReportSection,
    /// Write or admin keys in use that made only reads for `reads_only_days`.
    pub over_privileged: ReportSection,
}

/// The key report of an organization (org admins).
pub async fn report(app: &App, caller: &Caller, org: &str) -> Result<KeyReport> {
    use keysmith_store::ReportKind;
    let org = access::admin_org(app, caller, org).await?;
    let now = app.now();
    let idle_days = match org.unused_key_notice_days {
        0 => REPORT_IDLE_DAYS,
        days => days,
    };
    let expiring_days = app.notices.expiry_lead_days().last().copied().unwrap_or(7);
    let days_ago = |days: u32| now - i64::from(days) * DAY_MS;
    let section = |kind: ReportKind, threshold: i64| {
        let query = keysmith_store::KeyReportQuery {
            org: org.id,
            kind,
            now,
            threshold,
            limit: REPORT_LIMIT + 1,
        };
        async move {
            let mut keys = app.store.key_report(&query).await?;
            // A use (or write) still in memory, not yet written, counts.
            match kind {
                ReportKind::NeverUsed | ReportKind::Idle => keys.retain(|k| last_used(app, k) <= k.last_used_at),
                ReportKind::ReadsOnly => keys.retain(|k| last_write(app, k) <= Some(threshold)),
                ReportKind::Expiring => {}
            }
            let truncated = keys.len() > REPORT_LIMIT as usize;
            keys.truncate(REPORT_LIMIT as usize);
            Ok::<_, AppError>(ReportSection { keys, truncated })
        }
    };
    Ok(KeyReport {
        never_used: section(ReportKind::NeverUsed, days_ago(REPORT_NEVER_USED_DAYS)).await?,
        idle: section(ReportKind::Idle, days_ago(idle_days)).await?,
        expiring: section(ReportKind::Expiring, now + i64::from(expiring_days) * DAY_MS).await?,
        over_privileged: section(ReportKind::ReadsOnly, days_ago(REPORT_READS_ONLY_DAYS)).await?,
        org,
        generated_at: now,
        never_used_days: REPORT_NEVER_USED_DAYS,
        idle_days,
        expiring_days,
        reads_only_days: REPORT_READS_ONLY_DAYS,
    })
}

/// Renames a key the caller may rename.
pub async fn rename(app: &App, acting: &Acting<'_>, key_id: &str, name: KeyName) -> Result<StoredKey> {
    let key = authorized_key(app, acting.caller, key_id, KeyAction::Rename).await?;
    not_federated(&key)?;
    let audit = AuditContext::of(acting).entries(
        &audit_orgs(app, key.owner.id).await?,
        Action::ApiKeyRenamed,
        key.key_id.as_str(),
        Some(serde_json::json!({ "from": key.name, "to": name.as_str() })),
    );
    let renamed = app
        .store
        .rename_key(&key.key_id, name.as_str(), &audit)
        .await?
        .ok_or(AppError::NotFound(Missing::ApiKey))?;
    tracing::info!(key.id = %renamed.key_id, user.id = acting.caller.id().0, "API key renamed");
    Ok(renamed)
}

/// A federated session is not a key: it cannot be rotated or renamed, only deleted
/// (it ends by itself within the hour).
fn not_federated(key: &StoredKey) -> Result<()> {
    match key.federated_issuer {
        Some(_) => Err(AppError::invalid(
            "key_id",
            "this is a federated session, not a key: it cannot be rotated or renamed; delete it to end it now",
        )),
        None => Ok(()),
    }
}

/// Deletes a key the caller may delete; it fails on the very next request.
pub async fn delete(app: &App, acting: &Acting<'_>, key_id: &str) -> Result<StoredKey> {
    let key = authorized_key(app, acting.caller, key_id, KeyAction::Delete).await?;
    delete_found(app, acting, &key).await?;
    Ok(key)
}

async fn delete_found(app: &App, acting: &Acting<'_>, key: &StoredKey) -> Result<()> {
    let entries = AuditContext::of(acting).entries(
        &audit_orgs(app, key.owner.id).await?,
        Action::ApiKeyDeleted,
        key.key_id.as_str(),
        Some(serde_json::json!({ "name": key.name, "owner": key.owner.username })),
    );
    if !app.store.delete_key(&key.key_id, &entries).await? {
        return Err(AppError::NotFound(Missing::ApiKey));
    }
    tracing::info!(key.id = %key.key_id, user.id = acting.caller.id().0, "API key deleted");
    Ok(())
}

/// What became of one key of a bulk delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOutcome {
    Deleted,
    NotFound,
    Forbidden,
    /// The owner may, but the asking key's scope does not allow it.
    InsufficientScope,
}

impl BulkOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

/// Deletes several keys, each allowed or refused by the same rules as one delete.
pub async fn delete_many(app: &App, acting: &Acting<'_>, key_ids: &[String]) -> Result<Vec<BulkOutcome>> {
    if key_ids.is_empty() || key_ids.len() > MAX_BULK {
        return Err(AppError::invalid(
            "key_ids",
            format!("key_ids must hold 1 to {MAX_BULK} key IDs"),
        ));
    }
    let mut outcomes = Vec::with_capacity(key_ids.len());
    for key_id in key_ids {
        let outcome = match authorized_key(app, acting.caller, key_id, KeyAction::Delete).await {
            Ok(key) => match delete_found(app, acting, &key).await {
                Ok(()) => BulkOutcome::Deleted,
                Err(AppError::NotFound(Missing::ApiKey)) => BulkOutcome::NotFound,
                Err(other) => return Err(other),
            },
            Err(AppError::NotFound(Missing::ApiKey)) => BulkOutcome::NotFound,
            Err(AppError::Forbidden(_)) => BulkOutcome::Forbidden,
            Err(AppError::InsufficientScope { .. }) => BulkOutcome::InsufficientScope,
            Err(other) => return Err(other),
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Filters of a key list; names are resolved within the caller's organizations.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// A user or service account by name.
    pub owner: Option<String>,
    pub owner_kind: Option<PrincipalKind>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub name_contains: Option<String>,
    pub last_used_before: Option<i64>,
    pub last_used_after: Option<i64>,
    pub expiring_within_days: Option<u32>,
}

/// A page of a key list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub filter: ListFilter,
    pub sort: KeySort,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to [`MAX_PAGE`]; `None` for [`DEFAULT_PAGE`].
    pub limit: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct KeyPage {
    pub items: Vec<StoredKey>,
    pub next_cursor: Option<String>,
}

/// The keys the caller may see: their own; as a team admin, their teams' service
/// accounts'; as an org admin, every key of the organization. Filtered in the query,
/// never after it.
pub async fn list(app: &App, caller: &Caller, request: &ListRequest, now: i64) -> Result<KeyPage> {
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let sort = request.sort;
    let after = request.cursor.as_deref().map(|c| decode_cursor(c, sort)).transpose()?;
    let Some(filter) = store_filter(app, caller, &request.filter, now).await? else {
        return Ok(KeyPage {
            items: Vec::new(),
            next_cursor: None,
        });
    };
    if sort == KeySort::LastUsed || filter.last_used_before.is_some() || filter.last_used_after.is_some() {
        // Sorting and filtering by last use happen in the database: write the times
        // still held in memory first, so the order matches what the rows show.
        app.usage.flush(app.store.as_ref()).await?;
    }
    let visibility = Visibility {
        caller: Some(caller.id()),
        admin_orgs: caller.roles.admin_of_orgs.iter().copied().collect(),
        admin_teams: caller.roles.admin_of_teams.iter().copied().collect(),
    };
    // One extra row tells whether another page follows.
    let mut items = app
        .store
        .list_keys(&KeyListQuery {
            visibility,
            filter,
            sort,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|k| encode_cursor(k, sort))
    } else {
        None
    };
    Ok(KeyPage { items, next_cursor })
}

/// The store's filter for `filter`, or `None` when it can match nothing the caller may
/// see (an unknown owner lists nothing, like an owner whose keys the caller may not see).
async fn store_filter(app: &App, caller: &Caller, filter: &ListFilter, now: i64) -> Result<Option<KeyFilter>> {
    if filter.expiring_within_days.is_some_and(|d| d > MAX_DAYS) {
        return Err(AppError::InvalidQuery(format!(
            "expiring_within_days must be at most {MAX_DAYS}"
        )));
    }
    let mut out = KeyFilter {
        owner_kind: filter.owner_kind,
        name_contains: filter.name_contains.clone().filter(|s| !s.is_empty()),
        last_used_before: filter.last_used_before,
        last_used_after: filter.last_used_after,
        expires_after: filter.expiring_within_days.map(|_| now),
        expires_before: filter.expiring_within_days.map(|d| now + i64::from(d) * DAY_MS),
        ..KeyFilter::default()
    };
    if let Some(owner) = &filter.owner {
        match app.store.find_user_by_username(owner).await? {
            Some(user) => out.owner = Some(user.id),
            None => return Ok(None),
        }
    }
    let org = match &filter.org {
        Some(name) => Some(access::member_org(app, caller, name).await?),
        None => None,
    };
    out.org = org.as_ref().map(|o| o.id);
    if let Some(team) = &filter.team {
        let org = match org {
            Some(org) => org,
            None => {
                let mut orgs = app.store.memberships(caller.id()).await?;
                if orgs.len() != 1 {
                    return Err(AppError::InvalidQuery(
                        "give `org` with `team`: you belong to several organizations".into(),
                    ));
                }
                orgs.remove(0).org
            }
        };
        out.team = Some(access::org_team(app, &org, team).await?.id);
    }
    Ok(Some(out))
}

fn sort_tag(sort: KeySort) -> char {
    match sort {
        KeySort::Created => 'c',
        KeySort::LastUsed => 'u',
    }
}

fn sort_value(key: &StoredKey, sort: KeySort) -> i64 {
    match sort {
        KeySort::Created => key.created_at,
        KeySort::LastUsed => key.last_used_at.unwrap_or(-1),
    }
}

/// An opaque position: the sort, the last row's sort value and key ID.
fn encode_cursor(key: &StoredKey, sort: KeySort) -> String {
    let text = format!("{}.{}.{}", sort_tag(sort), sort_value(key, sort), key.key_id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str, sort: KeySort) -> Result<KeyCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| AppError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| AppError::InvalidCursor)?;
    let mut parts = text.splitn(3, '.');
    let (Some(tag), Some(value), Some(key_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AppError::InvalidCursor);
    };
    if tag.len() != 1 || !tag.starts_with(sort_tag(sort)) {
        return Err(AppError::InvalidCursor);
    }
    let value = value.parse().map_err(|_| AppError::InvalidCursor)?;
    let key_id = KeyId::parse(key_id).map_err(|_| AppError::InvalidCursor)?;
    Ok(KeyCursor {
        value,
        key_id: key_id.to_string(),
    })
}
