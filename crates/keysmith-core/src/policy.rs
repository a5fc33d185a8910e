//! Who may do what: the permission table of docs/DESIGN.md §3, as pure functions.
//!
//! | action                                                   | member | team admin (of T) | org admin |
//! |----------------------------------------------------------|--------|-------------------|-----------|
//! | list / create / rename / delete own personal keys        | yes    | yes               | yes       |
//! | list keys of service accounts of T; create, delete them  | no     | yes               | yes       |
//! | list keys of other users                                 | no     | no                | yes       |
//! | delete keys of other users                               | no     | no                | yes       |
//! | create team service accounts in T                        | no     | yes               | yes       |
//! | create organization service accounts                     | no     | no                | yes       |
//! | disable key creation for the org                         | no     | no                | yes       |
//! | anything in another organization                         | no     | no                | no        |
//!
//! A key's scope ([`KeyScope`]) narrows this table for requests made with that key:
//! [`scope_for_key_action`] and [`SCOPE_FOR_ADMINISTRATION`] say which scope each row needs.
//!
//! The server loads the caller's [`Roles`] and the target's [`Owner`] and asks here;
//! nothing else in Keysmith decides a permission. A refusal to read is answered as
//! "not found" by the caller of these functions, so IDs cannot be probed.

use crate::ids::{OrgId, TeamId};
use crate::scope::KeyScope;
use std::collections::BTreeSet;

/// The caller's administrative roles. Membership without a role grants nothing
/// beyond the caller's own keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    pub admin_of_orgs: BTreeSet<OrgId>,
    pub admin_of_teams: BTreeSet<TeamId>,
}

impl Roles {
    pub fn is_org_admin(&self, org: OrgId) -> bool {
        self.admin_of_orgs.contains(&org)
    }

    pub fn is_team_admin(&self, team: TeamId) -> bool {
        self.admin_of_teams.contains(&team)
    }
}

/// Whose key is the target, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The caller itself (a user's personal keys, or a service account's own keys).
    Caller,
    /// Another user, with the organizations that user belongs to.
    User { orgs: Vec<OrgId> },
    /// A service account scoped to one team.
    TeamServiceAccount { org: OrgId, team: TeamId },
    /// A service account scoped to a whole organization.
    OrgServiceAccount { org: OrgId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// See the key in lists or read it by key ID.
    Read,
    Create,
    Rename,
    Delete,
}

impl KeyAction {
    pub const ALL: [KeyAction; 4] = [Self::Read, Self::Create, Self::Rename, Self::Delete];
}

/// Whether the caller may do `action` to a key of `owner`.
pub fn may_act_on_key(roles: &Roles, action: KeyAction, owner: &Owner) -> bool {
    match owner {
        Owner::Caller => true,
        Owner::TeamServiceAccount { org, team } => roles.is_team_admin(*team) || roles.is_org_admin(*org),
        Owner::OrgServiceAccount { org } => roles.is_org_admin(*org),
        // Org admins list and delete the keys of their members; nobody creates or
        // renames another person's personal keys.
        Owner::User { orgs } => match action {
            KeyAction::Read | KeyAction::Delete => orgs.iter().any(|o| roles.is_org_admin(*o)),
            KeyAction::Create | KeyAction::Rename => false,
        },
    }
}

/// The scope a key needs to do `action` to a key of `owner` (on top of the table
/// above): reading needs `read`; changing one's own keys needs `write`; changing
/// anyone else's (a team's service accounts, an org member's) needs `admin`.
pub fn scope_for_key_action(action: KeyAction, owner: &Owner) -> KeyScope {
    match (action, owner) {
        (KeyAction::Read, _) => KeyScope::Read,
        (_, Owner::Caller) => KeyScope::Write,
        _ => KeyScope::Admin,
    }
}

/// The scope every other change needs: members, invitations, roles, teams, service
/// accounts, organization settings, webhooks, sign-in providers and JWT issuers.
pub const SCOPE_FOR_ADMINISTRATION: KeyScope = KeyScope::Admin;

/// Whether new keys may be created for `owner` given the organizations'
/// "disable API key creation" settings. `disabled(org)` says whether an org disabled it.
///
/// Users and team service accounts are stopped by the setting; organization service
/// accounts are not (W&B: "Organization service accounts can still create keys").
/// A personal key works in every org its owner belongs to, so any of them disabling
/// creation stops it.
pub fn key_creation_allowed(owner: &OwnerScope, disabled: impl Fn(OrgId) -> bool) -> bool {
    match owner {
        OwnerScope::User { orgs } => !orgs.iter().any(|o| disabled(*o)),
        OwnerScope::TeamServiceAccount { org, .. } => !disabled(*org),
        OwnerScope::OrgServiceAccount { .. } => true,
    }
}

/// The longest lifetime, in days, an organization policy allows a new key of this
/// owner: the strictest of the owner's organizations for a user (0 means no limit),
/// the service account's organization for a service account. `None`: no limit.
/// `limits(org)` gives an organization's (user keys, service account keys) limits.
pub fn max_key_lifetime_days(owner: &OwnerScope, limits: impl Fn(OrgId) -> (u32, u32)) -> Option<u32> {
    match owner {
        OwnerScope::User { orgs } => orgs.iter().map(|o| limits(*o).0).filter(|d| *d > 0).min(),
        OwnerScope::TeamServiceAccount { org, .. } | OwnerScope::OrgServiceAccount { org } => {
            Some(limits(*org).1).filter(|d| *d > 0)
        }
    }
}

/// Where a principal belongs, whoever asks: the absolute form of [`Owner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerScope {
    User { orgs: Vec<OrgId> },
    TeamServiceAccount { org: OrgId, team: TeamId },
    OrgServiceAccount { org: OrgId },
}

impl OwnerScope {
    /// The same scope seen by a caller: `is_caller` when the caller owns the key.
    pub fn as_owner(&self, is_caller: bool) -> Owner {
        if is_caller {
            return Owner::Caller;
        }
        match self {
            Self::User { orgs } => Owner::User { orgs: orgs.clone() },
            Self::TeamServiceAccount { org, team } => Owner::TeamServiceAccount { org: *org, team: *team },
            Self::OrgServiceAccount { org } => Owner::OrgServiceAccount { org: *org },
        }
    }

    /// The organizations this principal belongs to.
    pub fn orgs(&self) -> Vec<OrgId> {
        match self {
            Self::User { orgs } => orgs.clone(),
            Self::TeamServiceAccount { org, .. } | Self::OrgServiceAccount { org } => vec![*org],
        }
    }
}

/// Create a service account scoped to `team` of `org`.
pub fn may_create_team_service_account(roles: &Roles, org: OrgId, team: TeamId) -> bool {
    roles.is_team_admin(team) || roles.is_org_admin(org)
}

/// Create (or delete) an organization-scoped service account.
pub fn may_create_org_service_account(roles: &Roles, org: OrgId) -> bool {
    roles.is_org_admin(org)
}

/// Administer the organization: settings, users, roles, teams, the audit log.
pub fn may_administer_org(roles: &Roles, org: OrgId) -> bool {
    roles.is_org_admin(org)
}

/// See a team's service accounts and members.
pub fn may_view_team(roles: &Roles, org: OrgId, team: TeamId) -> bool {
    roles.is_team_admin(team) || roles.is_org_admin(org)
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: OrgId = OrgId(1);
    const OTHER_ORG: OrgId = OrgId(2);
    const T: TeamId = TeamId(10);
    const U: TeamId = TeamId(11);

    fn member() -> Roles {
        Roles::default()
    }
    fn team_admin_of_t() -> Roles {
        Roles {
            admin_of_teams: [T].into(),
            ..Default::default()
        }
    }
    fn org_admin() -> Roles {
        Roles {
            admin_of_orgs: [O].into(),
            ..Default::default()
        }
    }

    #[test]
    fn everyone_manages_their_own_keys() {
        for roles in [member(), team_admin_of_t(), org_admin()] {
            for action in KeyAction::ALL {
                assert!(may_act_on_key(&roles, action, &Owner::Caller));
            }
        }
    }

    #[test]
    fn team_service_account_keys_belong_to_team_admins_and_org_admins() {
        let sa = Owner::TeamServiceAccount { org: O, team: T };
        for action in KeyAction::ALL {
            assert!(!may_act_on_key(&member(), action, &sa));
            assert!(may_act_on_key(&team_admin_of_t(), action, &sa));
            assert!(may_act_on_key(&org_admin(), action, &sa));
            assert!(!may_act_on_key(
                &team_admin_of_t(),
                action,
                &Owner::TeamServiceAccount { org: O, team: U }
            ));
        }
    }

    #[test]
    fn org_admins_read_and_delete_but_never_create_or_rename_other_users_keys() {
        let other = Owner::User { orgs: vec![O] };
        assert!(may_act_on_key(&org_admin(), KeyAction::Read, &other));
        assert!(may_act_on_key(&org_admin(), KeyAction::Delete, &other));
        assert!(!may_act_on_key(&org_admin(), KeyAction::Create, &other));
        assert!(!may_act_on_key(&org_admin(), KeyAction::Rename, &other));
        for action in KeyAction::ALL {
            assert!(!may_act_on_key(&team_admin_of_t(), action, &other));
            assert!(!may_act_on_key(&member(), action, &other));
        }
    }

    #[test]
    fn nothing_reaches_into_another_organization() {
        for owner in [
            Owner::User { orgs: vec![OTHER_ORG] },
            Owner::TeamServiceAccount {
                org: OTHER_ORG,
                team: TeamId(99),
            },
            Owner::OrgServiceAccount { org: OTHER_ORG },
        ] {
            for action in KeyAction::ALL {
                assert!(!may_act_on_key(&org_admin(), action, &owner), "{action:?} {owner:?}");
            }
        }
        assert!(!may_administer_org(&org_admin(), OTHER_ORG));
        assert!(!may_create_org_service_account(&org_admin(), OTHER_ORG));
    }

    #[test]
    fn reading_needs_read_own_changes_need_write_and_others_need_admin() {
        let others = [
            Owner::User { orgs: vec![O] },
            Owner::TeamServiceAccount { org: O, team: T },
            Owner::OrgServiceAccount { org: O },
        ];
        for action in KeyAction::ALL {
            let own = scope_for_key_action(action, &Owner::Caller);
            let expected = if action == KeyAction::Read {
                KeyScope::Read
            } else {
                KeyScope::Write
            };
            assert_eq!(own, expected, "{action:?} on own keys");
            for owner in &others {
                let expected = if action == KeyAction::Read {
                    KeyScope::Read
                } else {
                    KeyScope::Admin
                };
                assert_eq!(scope_for_key_action(action, owner), expected, "{action:?} on {owner:?}");
            }
        }
        assert_eq!(SCOPE_FOR_ADMINISTRATION, KeyScope::Admin);
    }

    #[test]
    fn disabling_creation_stops_users_and_team_service_accounts_only() {
        let disabled = |o: OrgId| o == O;
        assert!(!key_creation_allowed(
            &OwnerScope::User {
                orgs: vec![OTHER_ORG, O]
            },
            disabled
        ));
        assert!(key_creation_allowed(
            &OwnerScope::User { orgs: vec![OTHER_ORG] },
            disabled
        ));
        assert!(!key_creation_allowed(
            &OwnerScope::TeamServiceAccount { org: O, team: T },
            disabled
        ));
        assert!(key_creation_allowed(
            &OwnerScope::OrgServiceAccount { org: O },
            disabled
        ));
    }

    #[test]
    fn the_strictest_lifetime_policy_of_the_owners_orgs_applies() {
        let limits = |o: OrgId| match o.0 {
            1 => (90, 30),
            2 => (0, 365),
            _ => (7, 0),
        };
        let user = OwnerScope::User {
            orgs: vec![OrgId(1), OrgId(2)],
        };
        assert_eq!(max_key_lifetime_days(&user, limits), Some(90));
        let user = OwnerScope::User { orgs: vec![OrgId(2)] };
        assert_eq!(max_key_lifetime_days(&user, limits), None, "0 means no limit");
        let user = OwnerScope::User {
            orgs: vec![OrgId(1), OrgId(3)],
        };
        assert_eq!(max_key_lifetime_days(&user, limits), Some(7));
        let bot = OwnerScope::TeamServiceAccount {
            org: OrgId(1),
            team: TeamId(5),
        };
        assert_eq!(max_key_lifetime_days(&bot, limits), Some(30));
        let org_bot = OwnerScope::OrgServiceAccount { org: OrgId(3) };
        assert_eq!(max_key_lifetime_days(&org_bot, limits), None);
    }
}
