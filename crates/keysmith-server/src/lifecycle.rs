//! Creating and deleting keys, by the same rules from every door (REST, GraphQL): who
//! may create keys for whom (DESIGN §3), the org setting that disables creation, the
//! format, and the audit entries written with each change.

use crate::access::{self, Caller};
use crate::audit::AuditContext;
use crate::error::ApiError;
use crate::state::AppState;
use keysmith_core::policy::{self, KeyAction};
use keysmith_core::{GeneratedKey, KeyName, UserId, generate_legacy, generate_v1};
use keysmith_store::{KeyFormat, NewKey, StoredKey};

/// A key to mint.
pub struct MintRequest<'a> {
    pub name: KeyName,
    /// The owner by name; `None` for the caller.
    pub owner: Option<&'a str>,
    pub format: KeyFormat,
    pub source: String,
}

/// The stored key and its plaintext, to be shown once.
pub struct Minted {
    pub key: StoredKey,
    pub generated: GeneratedKey,
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
    let generated = match request.format {
        KeyFormat::V1 => generate_v1(&state.key_prefix),
        KeyFormat::Legacy => {
            if !orgs.iter().any(|o| o.legacy_keys_allowed) {
                return Err(ApiError::LegacyKeysNotAllowed);
            }
            generate_legacy(None)
        }
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = state.now();
    let owner_name = request.owner.unwrap_or(&caller.principal.user.username);
    let audit = AuditContext::new(caller, request.source, now).entries(
        &scope.orgs(),
        "api_key.created",
        "api_key",
        generated.key_id.as_str(),
        Some(serde_json::json!({ "name": request.name.as_str(), "owner": owner_name, "format": request.format.as_str() })),
    );
    let key = state
        .store
        .insert_key(
            NewKey {
                key_id: generated.key_id.clone(),
                digest: generated.digest,
                format: request.format,
                display: generated.display.clone(),
                name: request.name.into_string(),
                owner: owner_id,
                created_by: Some(caller.id()),
                created_at: now,
            },
            &audit,
        )
        .await?;
    tracing::info!(key.id = %key.key_id, user.id = caller.id().0, owner.id = owner_id.0, "API key created");
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
