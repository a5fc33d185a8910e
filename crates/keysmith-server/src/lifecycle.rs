//! Creating and deleting keys, by the same rules from every door (REST, GraphQL): who
//! may create keys for whom (docs/DESIGN.md §3), the org setting that disables creation, the
//! format, and the audit entries written with each change.

use crate::access::{self, Caller};
use crate::audit::AuditContext;
use crate::error::ApiError;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use keysmith_core::policy::{self, KeyAction, OwnerScope};
use keysmith_core::{GeneratedKey, KeyName, UserId, generate_legacy, generate_v1};
use keysmith_store::{KeyFormat, NewKey, Org, StoredKey};

/// A key to mint.
pub struct MintRequest<'a> {
    pub name: KeyName,
    /// The owner by name; `None` for the caller.
    pub owner: Option<&'a str>,
    pub format: KeyFormat,
    pub source: String,
    /// When the key should stop working; `None` for the longest the policy allows.
    pub expires_at: Option<i64>,
}

/// The stored key and its plaintext, to be shown once.
pub struct Minted {
    pub key: StoredKey,
    pub generated: GeneratedKey,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Who a new key will belong to, once the rules allow it: docs/DESIGN.md §3's creation
/// rules and the "disable API key creation" setting of the owner's organizations.
struct Plan {
    owner_id: UserId,
    scope: OwnerScope,
    orgs: Vec<Org>,
}

async fn plan(state: &AppState, caller: &Caller, owner_id: UserId) -> Result<Plan, ApiError> {
    let scope = state
        .store
        .owner_scope(owner_id)
        .await?
        .ok_or(ApiError::OwnerNotFound)?;
    let owner = scope.as_owner(owner_id == caller.id());
    if !policy::may_act_on_key(&caller.roles, KeyAction::Read, &owner) {
        return Err(ApiError::OwnerNotFound);
    }
    if !policy::may_act_on_key(&caller.roles, KeyAction::Create, &owner) {
        return Err(ApiError::Forbidden("personal keys are created only by their owner"));
    }
    let mut orgs = Vec::new();
    for org in scope.orgs() {
        if let Some(org) = state.store.get_org(org).await? {
            orgs.push(org);
        }
    }
    let disabled = |id| orgs.iter().any(|o| o.id == id && o.key_creation_disabled);
    if !policy::key_creation_allowed(&scope, disabled) {
        return Err(ApiError::KeyCreationDisabled);
    }
    Ok(Plan { owner_id, scope, orgs })
}

impl Plan {
    /// The expiry of a new key: the one asked for, within the organizations' maximum
    /// lifetime; or that maximum when none was asked for.
    fn expiry(&self, now: i64, requested: Option<i64>) -> Result<Option<i64>, ApiError> {
        let limits = |id| {
            self.orgs.iter().find(|o| o.id == id).map_or((0, 0), |o| {
                (o.max_user_key_lifetime_days, o.max_service_account_key_lifetime_days)
            })
        };
        let max_days = policy::max_key_lifetime_days(&self.scope, limits);
        let latest = max_days.map(|d| now + i64::from(d) * DAY_MS);
        match (requested, latest) {
            (Some(at), _) if at <= now => Err(ApiError::InvalidValue("the expiry must be in the future".into())),
            (Some(at), Some(latest)) if at > latest => Err(ApiError::ExpiryExceedsPolicy(format!(
                "keys of this owner may live at most {} days (organization policy); ask for an earlier expiry",
                max_days.unwrap_or(0)
            ))),
            (Some(at), _) => Ok(Some(at)),
            (None, latest) => Ok(latest),
        }
    }

    fn generate(&self, state: &AppState, format: KeyFormat) -> Result<GeneratedKey, ApiError> {
        match format {
            KeyFormat::V1 => generate_v1(&state.key_prefix),
            KeyFormat::Legacy => {
                if !self.orgs.iter().any(|o| o.legacy_keys_allowed) {
                    return Err(ApiError::LegacyKeysNotAllowed);
                }
                generate_legacy(None)
            }
        }
        .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

fn new_key(generated: &GeneratedKey, format: KeyFormat, name: String, owner: UserId, caller: &Caller) -> NewKey {
    NewKey {
        key_id: generated.key_id.clone(),
        digest: generated.digest,
        format,
        display: generated.display.clone(),
        name,
        owner,
        created_by: Some(caller.id()),
        created_at: 0,
        expires_at: None,
        rotated_from: None,
    }
}

pub async fn mint_key(state: &AppState, caller: &Caller, request: MintRequest<'_>) -> Result<Minted, ApiError> {
    let owner_id: UserId = match request.owner {
        None => caller.id(),
        Some(owner) => {
            state
                .store
                .find_user_by_username(owner)
                .await?
                .ok_or(ApiError::OwnerNotFound)?
                .id
        }
    };
    let plan = plan(state, caller, owner_id).await?;
    let now = state.now();
    let expires_at = plan.expiry(now, request.expires_at)?;
    let generated = plan.generate(state, request.format)?;
    let owner_name = request.owner.unwrap_or(&caller.principal.user.username);
    let audit = AuditContext::new(caller, request.source, now).entries(
        &plan.scope.orgs(),
        "api_key.created",
        "api_key",
        generated.key_id.as_str(),
        Some(serde_json::json!({
            "name": request.name.as_str(),
            "owner": owner_name,
            "format": request.format.as_str(),
            "expires_at": expires_at.map(rfc3339),
        })),
    );
    let mut key = new_key(
        &generated,
        request.format,
        request.name.into_string(),
        plan.owner_id,
        caller,
    );
    key.created_at = now;
    key.expires_at = expires_at;
    let key = state.store.insert_key(key, &audit).await?;
    tracing::info!(key.id = %key.key_id, user.id = caller.id().0, owner.id = owner_id.0, "API key created");
    Ok(Minted { key, generated })
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
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "now" => Self::Now,
            "1h" => Self::Hours(1),
            "24h" => Self::Hours(24),
            "7d" => Self::Hours(24 * 7),
            "until_deleted" => Self::UntilDeleted,
            _ => return None,
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
            Self::Hours(h) => Some(now + i64::from(h) * 3600 * 1000),
            Self::UntilDeleted => None,
        }
    }
}

/// Rotation: a new key for the same owner, with the same name and format, linked to
/// `old` as its successor; `old` keeps working until the grace period ends. Needs the
/// right to delete `old` and to create keys for its owner.
pub async fn rotate_key(
    state: &AppState,
    caller: &Caller,
    old: &StoredKey,
    grace: Grace,
    source: String,
) -> Result<Minted, ApiError> {
    if old.rotated_to.is_some() {
        return Err(ApiError::RotationInProgress);
    }
    let plan = plan(state, caller, old.owner.id).await?;
    let now = state.now();
    if old.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::ApiKeyExpired);
    }
    let expires_at = plan.expiry(now, None)?;
    let generated = plan.generate(state, old.format)?;
    let old_ends = grace.ends_at(now);
    let audit = AuditContext::new(caller, source, now).entries(
        &plan.scope.orgs(),
        "api_key.rotated",
        "api_key",
        old.key_id.as_str(),
        Some(serde_json::json!({
            "name": old.name,
            "owner": old.owner.username,
            "to": generated.key_id.as_str(),
            "grace": grace.as_str(),
            "old_expires_at": old_ends.map(rfc3339),
        })),
    );
    let mut key = new_key(&generated, old.format, old.name.clone(), old.owner.id, caller);
    key.created_at = now;
    key.expires_at = expires_at;
    key.rotated_from = Some(old.key_id.clone());
    let key = state
        .store
        .rotate_key(&old.key_id, key, old_ends, &audit)
        .await?
        .ok_or(ApiError::ApiKeyNotFound)?;
    tracing::info!(key.id = %key.key_id, key.previous = %old.key_id, user.id = caller.id().0, "API key rotated");
    Ok(Minted { key, generated })
}

/// Deletes a key the caller was authorized to delete (see `access::authorized_key`).
pub async fn delete_key(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    key: &StoredKey,
) -> Result<(), ApiError> {
    let entries = audit.entries(
        &access::audit_orgs(state, key.owner.id).await?,
        "api_key.deleted",
        "api_key",
        key.key_id.as_str(),
        Some(serde_json::json!({ "name": key.name, "owner": key.owner.username })),
    );
    if !state.store.delete_key(&key.key_id, &entries).await? {
        return Err(ApiError::ApiKeyNotFound);
    }
    tracing::info!(key.id = %key.key_id, user.id = caller.id().0, "API key deleted");
    Ok(())
}
