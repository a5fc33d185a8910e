//! Building audit entries: who did it, from where, when. The store appends them in the
//! same transaction as the change.

use crate::access::Caller;
use keysmith_core::OrgId;
use keysmith_store::NewAuditEntry;

pub struct AuditContext {
    actor: keysmith_store::UserRef,
    source: String,
    at: i64,
}

impl AuditContext {
    pub fn new(caller: &Caller, source: String, at: i64) -> Self {
        Self {
            actor: caller.principal.user.clone(),
            source,
            at,
        }
    }

    /// One entry in each of `orgs` (a personal key belongs to every org of its owner).
    pub fn entries(
        &self,
        orgs: &[OrgId],
        action: &str,
        target_kind: &str,
        target: &str,
        detail: Option<serde_json::Value>,
    ) -> Vec<NewAuditEntry> {
        orgs.iter()
            .map(|org| NewAuditEntry {
                org: *org,
                at: self.at,
                actor: Some(self.actor.clone()),
                action: action.to_owned(),
                target_kind: target_kind.to_owned(),
                target: target.to_owned(),
                source_address: Some(self.source.clone()),
                detail: detail.as_ref().map(ToString::to_string),
            })
            .collect()
    }

    pub fn entry(
        &self,
        org: OrgId,
        action: &str,
        target_kind: &str,
        target: &str,
        detail: Option<serde_json::Value>,
    ) -> Vec<NewAuditEntry> {
        self.entries(&[org], action, target_kind, target, detail)
    }
}
