//! The audit log's vocabulary and how entries are built: who did it, from where, when.
//! The store appends them in the same transaction as the change they record, and the
//! webhook outbox reads them, so [`Action`] is also the list of webhook events.

use crate::caller::Caller;
use keysmith_core::OrgId;
use keysmith_store::{NewAuditEntry, UserRef};

/// Everything the audit log records. The text (`api_key.created`) is stored and shown;
/// it never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ApiKeyCreated,
    ApiKeyRenamed,
    ApiKeyRotated,
    ApiKeyDeleted,
    /// Before issue 17's notices: one warning, 7 days ahead. Old entries keep the
    /// name; no new entry takes it.
    ApiKeyExpiringSoon,
    ApiKeyExpiring,
    ApiKeyUnused,
    ApiKeyExposed,
    ApiKeyImported,
    ApiKeyPurged,
    UserCreated,
    UserInvited,
    UserInvitationAccepted,
    UserRoleChanged,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    UserPasswordReset,
    UserSignInUnlocked,
    TeamCreated,
    TeamMemberSet,
    TeamMemberRemoved,
    ServiceAccountCreated,
    ServiceAccountDeleted,
    ServiceAccountNetworksChanged,
    OrgCreated,
    OrgSettingsChanged,
    WebhookCreated,
    WebhookDeleted,
    WebhookSecretRotated,
    JwtIssuerAdded,
    JwtIssuerRemoved,
    FederatedSessionCreated,
    UserProfileChanged,
    TeamProfileChanged,
    TeamDeleted,
    SsoProviderAdded,
    SsoProviderRemoved,
    /// A genuine key used from outside an allowlist (at most once a minute per key and
    /// replica).
    ApiKeyIpNotAllowed,
}

impl Action {
    pub const ALL: [Action; 39] = [
        Self::ApiKeyCreated,
        Self::ApiKeyRenamed,
        Self::ApiKeyRotated,
        Self::ApiKeyDeleted,
        Self::ApiKeyExpiringSoon,
        Self::ApiKeyExpiring,
        Self::ApiKeyUnused,
        Self::ApiKeyExposed,
        Self::ApiKeyImported,
        Self::ApiKeyPurged,
        Self::UserCreated,
        Self::UserInvited,
        Self::UserInvitationAccepted,
        Self::UserRoleChanged,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::UserDeleted,
        Self::UserPasswordReset,
        Self::UserSignInUnlocked,
        Self::TeamCreated,
        Self::TeamMemberSet,
        Self::TeamMemberRemoved,
        Self::ServiceAccountCreated,
        Self::ServiceAccountDeleted,
        Self::ServiceAccountNetworksChanged,
        Self::OrgCreated,
        Self::OrgSettingsChanged,
        Self::WebhookCreated,
        Self::WebhookDeleted,
        Self::WebhookSecretRotated,
        Self::JwtIssuerAdded,
        Self::JwtIssuerRemoved,
        Self::FederatedSessionCreated,
        Self::UserProfileChanged,
        Self::TeamProfileChanged,
        Self::TeamDeleted,
        Self::SsoProviderAdded,
        Self::SsoProviderRemoved,
        Self::ApiKeyIpNotAllowed,
    ];

    /// The events a webhook endpoint may subscribe to.
    pub const EVENTS: [Action; 6] = [
        Self::ApiKeyCreated,
        Self::ApiKeyDeleted,
        Self::ApiKeyRotated,
        Self::ApiKeyExpiring,
        Self::ApiKeyUnused,
        Self::ApiKeyExposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRenamed => "api_key.renamed",
            Self::ApiKeyRotated => "api_key.rotated",
            Self::ApiKeyDeleted => "api_key.deleted",
            Self::ApiKeyExpiringSoon => "api_key.expiring_soon",
            Self::ApiKeyExpiring => "api_key.expiring",
            Self::ApiKeyUnused => "api_key.unused",
            Self::ApiKeyExposed => "api_key.exposed",
            Self::ApiKeyImported => "api_key.imported",
            Self::ApiKeyPurged => "api_key.purged",
            Self::UserCreated => "user.created",
            Self::UserInvited => "user.invited",
            Self::UserInvitationAccepted => "user.invitation_accepted",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::UserDeleted => "user.deleted",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserSignInUnlocked => "user.sign_in_unlocked",
            Self::TeamCreated => "team.created",
            Self::TeamMemberSet => "team.member_set",
            Self::TeamMemberRemoved => "team.member_removed",
            Self::ServiceAccountCreated => "service_account.created",
            Self::ServiceAccountDeleted => "service_account.deleted",
            Self::ServiceAccountNetworksChanged => "service_account.networks_changed",
            Self::OrgCreated => "org.created",
            Self::OrgSettingsChanged => "org.settings_changed",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookDeleted => "webhook.deleted",
            Self::WebhookSecretRotated => "webhook.secret_rotated",
            Self::JwtIssuerAdded => "jwt_issuer.added",
            Self::JwtIssuerRemoved => "jwt_issuer.removed",
            Self::FederatedSessionCreated => "federated_session.created",
            Self::UserProfileChanged => "user.profile_changed",
            Self::TeamProfileChanged => "team.profile_changed",
            Self::TeamDeleted => "team.deleted",
            Self::SsoProviderAdded => "sso_provider.added",
            Self::SsoProviderRemoved => "sso_provider.removed",
            Self::ApiKeyIpNotAllowed => "api_key.ip_not_allowed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// What the entry's target is: `api_key`, `user`, `team`, …
    pub fn target_kind(self) -> &'static str {
        let text = self.as_str();
        text.split_once('.').map_or(text, |(kind, _)| kind)
    }

    pub fn is_event(self) -> bool {
        Self::EVENTS.contains(&self)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acts, from where and when: the part every entry of one request shares.
#[derive(Debug, Clone)]
pub struct AuditContext {
    actor: Option<UserRef>,
    source: Option<String>,
    at: i64,
}

impl AuditContext {
    /// For an action taken by `acting`.
    pub fn of(acting: &crate::Acting<'_>) -> Self {
        Self::new(acting.caller, acting.source.to_owned(), acting.now)
    }

    pub fn new(caller: &Caller, source: String, at: i64) -> Self {
        Self {
            actor: Some(caller.principal.user.clone()),
            source: Some(source),
            at,
        }
    }

    /// An operator on the server's machine (`keysmith admin …`), or the server itself
    /// (expiry announcements): no actor, no address.
    pub fn operator(at: i64) -> Self {
        Self {
            actor: None,
            source: None,
            at,
        }
    }

    /// An action a principal takes by presenting something other than a key or a
    /// session (a JWT exchanged for a federated session).
    pub fn by(actor: UserRef, source: &str, at: i64) -> Self {
        Self {
            actor: Some(actor),
            source: Some(source.to_owned()),
            at,
        }
    }

    /// Something reported from `source` that no user did (an exposed key's report).
    pub fn reported(at: i64, source: &str) -> Self {
        Self {
            actor: None,
            source: Some(source.to_owned()),
            at,
        }
    }

    pub fn at(&self) -> i64 {
        self.at
    }

    /// One entry in each of `orgs` (a personal key belongs to every org of its owner).
    pub fn entries(
        &self,
        orgs: &[OrgId],
        action: Action,
        target: &str,
        detail: Option<serde_json::Value>,
    ) -> Vec<NewAuditEntry> {
        orgs.iter()
            .map(|org| NewAuditEntry {
                org: *org,
                at: self.at,
                actor: self.actor.clone(),
                action: action.as_str().to_owned(),
                target_kind: action.target_kind().to_owned(),
                target: target.to_owned(),
                source_address: self.source.clone(),
                detail: detail.as_ref().map(ToString::to_string),
            })
            .collect()
    }

    pub fn entry(
        &self,
        org: OrgId,
        action: Action,
        target: &str,
        detail: Option<serde_json::Value>,
    ) -> Vec<NewAuditEntry> {
        self.entries(&[org], action, target, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_and_names_its_target_kind() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::ApiKeyCreated.target_kind(), "api_key");
        assert_eq!(Action::ServiceAccountDeleted.target_kind(), "service_account");
        assert_eq!(Action::OrgSettingsChanged.target_kind(), "org");
        assert!(Action::ApiKeyExposed.is_event() && !Action::TeamCreated.is_event());
        assert_eq!(Action::parse("api_key.sneezed"), None);
    }
}
