//! The permission table of docs/DESIGN.md §3, over HTTP: one test per rule, named after it,
//! and a generated matrix over roles × key scopes × actions × owner kinds, judged against
//! a second, independent reading of the table and of the scopes, so a rule missing from
//! the code fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, START_MS, TestApp};
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{KeyPrefix, KeyScope, UserId, generate_v1};
use keysmith_store::{KeyFormat, NewKey, NewServiceAccount, NewUser, Store};
use serde_json::json;
use std::collections::BTreeMap;

const KEYS: &str = "/api/v1/api-keys";

/// How a principal relates to the organizations and teams, for the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seat {
    OrgAdmin,
    RedTeamAdmin,
    RedMember,
    Loner,
    RedServiceAccount,
    BlueServiceAccount,
    OrgServiceAccount,
    OtherOrgAdmin,
    OtherOrgMember,
    OtherOrgServiceAccount,
}

use Seat::*;

const SEATS: [Seat; 10] = [
    OrgAdmin,
    RedTeamAdmin,
    RedMember,
    Loner,
    RedServiceAccount,
    BlueServiceAccount,
    OrgServiceAccount,
    OtherOrgAdmin,
    OtherOrgMember,
    OtherOrgServiceAccount,
];

impl Seat {
    fn name(self) -> &'static str {
        match self {
            OrgAdmin => "admin",
            RedTeamAdmin => "redadmin",
            RedMember => "redmember",
            Loner => "loner",
            RedServiceAccount => "red-bot",
            BlueServiceAccount => "blue-bot",
            OrgServiceAccount => "org-bot",
            OtherOrgAdmin => "otheradmin",
            OtherOrgMember => "othermember",
            OtherOrgServiceAccount => "other-bot",
        }
    }

    fn in_main_org(self) -> bool {
        !matches!(self, OtherOrgAdmin | OtherOrgMember | OtherOrgServiceAccount)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Create,
    Rename,
    Delete,
}

/// docs/DESIGN.md §3, read afresh: may `actor` do `action` to a key owned by `owner`?
fn table_allows(actor: Seat, action: Action, owner: Seat) -> bool {
    if actor == owner {
        return true; // list / create / rename / delete own keys: everyone
    }
    let same_org = actor.in_main_org() == owner.in_main_org();
    if !same_org {
        return false; // anything in another organization: no one
    }
    let org_admin = matches!(actor, OrgAdmin | OtherOrgAdmin);
    match owner {
        // keys of service accounts of T: T's team admins and org admins
        RedServiceAccount => org_admin || actor == RedTeamAdmin,
        // no one here administers team blue; organization service accounts: org admins
        BlueServiceAccount | OrgServiceAccount | OtherOrgServiceAccount => org_admin,
        // other users' keys: org admins list and delete them; nobody creates or renames them
        _ => org_admin && matches!(action, Action::Read | Action::Delete),
    }
}

/// The scopes, read afresh from the issue: a `read` key changes nothing; a `write` key
/// also manages its owner's own keys; an `admin` key has the owner's full power. What
/// a cell needs, whoever may do it.
fn scope_needed(actor: Seat, action: Action, owner: Seat) -> KeyScope {
    match action {
        Action::Read => KeyScope::Read,
        _ if actor == owner => KeyScope::Write,
        _ => KeyScope::Admin,
    }
}

struct World {
    app: TestApp,
    /// Each seat's own key (plaintext), to act as that seat.
    keys: BTreeMap<&'static str, String>,
    /// Each seat's narrower keys: (seat, scope) → plaintext.
    scoped: BTreeMap<(&'static str, KeyScope), String>,
}

async fn key_for(store: &dyn Store, owner: UserId, name: &str) -> (String, String) {
    scoped_key_for(store, owner, name, KeyScope::Admin).await
}

async fn scoped_key_for(store: &dyn Store, owner: UserId, name: &str, scope: KeyScope) -> (String, String) {
    let k = generate_v1(&KeyPrefix::default()).unwrap();
    store
        .insert_key(
            NewKey {
                key_id: k.key_id.clone(),
                digest: k.digest,
                format: KeyFormat::V1,
                display: k.display,
                name: name.into(),
                owner,
                created_by: Some(owner),
                created_at: START_MS,
                expires_at: None,
                rotated_from: None,
                federated_issuer: None,
                scope,
                allowed_networks: None,
                requests_per_minute: None,
            },
            &[],
        )
        .await
        .unwrap();
    (k.plaintext.expose().to_owned(), k.key_id.to_string())
}

async fn world() -> World {
    let app = TestApp::sqlite().await;
    let store = app.store.clone();
    let org = app.org.id;
    let other = store.create_org("other", START_MS).await.unwrap();
    let red = store.create_team(org, "red", START_MS, &[]).await.unwrap();
    let blue = store.create_team(org, "blue", START_MS, &[]).await.unwrap();
    let person = |name: &str| NewUser {
        kind: PrincipalKind::User,
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        password_hash: None,
    };
    let mut ids: BTreeMap<&'static str, UserId> = BTreeMap::new();
    ids.insert("admin", store.find_user_by_username("admin").await.unwrap().unwrap().id);
    for (seat, org_id, role) in [
        (RedTeamAdmin, org, OrgRole::Member),
        (RedMember, org, OrgRole::Member),
        (Loner, org, OrgRole::Member),
        (OtherOrgAdmin, other.id, OrgRole::Admin),
        (OtherOrgMember, other.id, OrgRole::Member),
    ] {
        let user = store
            .create_member(person(seat.name()), org_id, role, START_MS, &[])
            .await
            .unwrap();
        ids.insert(seat.name(), user.id);
    }
    store
        .set_team_member(red.id, ids["redadmin"], TeamRole::Admin, START_MS, &[])
        .await
        .unwrap();
    store
        .set_team_member(red.id, ids["redmember"], TeamRole::Member, START_MS, &[])
        .await
        .unwrap();
    for (seat, org_id, team) in [
        (RedServiceAccount, org, Some(red.id)),
        (BlueServiceAccount, org, Some(blue.id)),
        (OrgServiceAccount, org, None),
        (OtherOrgServiceAccount, other.id, None),
    ] {
        let account = NewServiceAccount {
            org: org_id,
            team,
            username: seat.name().into(),
            description: String::new(),
            created_by: None,
            external_subject: None,
            allowed_networks: None,
        };
        let sa = store.create_service_account(account, START_MS, &[]).await.unwrap();
        ids.insert(seat.name(), sa.user.id);
    }
    let mut keys = BTreeMap::new();
    for seat in SEATS {
        let (plain, _) = key_for(store.as_ref(), ids[seat.name()], &format!("{} own", seat.name())).await;
        keys.insert(seat.name(), plain);
    }
    World {
        app,
        keys,
        scoped: BTreeMap::new(),
    }
}

/// The world, where each seat also holds a `read` and a `write` key.
async fn world_with_scoped_keys() -> World {
    let mut w = world().await;
    for seat in SEATS {
        let owner = w
            .app
            .store
            .find_user_by_username(seat.name())
            .await
            .unwrap()
            .unwrap()
            .id;
        for scope in [KeyScope::Read, KeyScope::Write] {
            let name = format!("{} {scope}", seat.name());
            let (plain, _) = scoped_key_for(w.app.store.as_ref(), owner, &name, scope).await;
            w.scoped.insert((seat.name(), scope), plain);
        }
    }
    w
}

impl World {
    fn as_seat(&self, seat: Seat) -> Auth {
        Auth::Bearer(self.keys[seat.name()].clone())
    }

    /// A fresh key of `owner`, for actions that consume it.
    async fn fresh_key(&self, owner: Seat) -> String {
        let user = self
            .app
            .store
            .find_user_by_username(owner.name())
            .await
            .unwrap()
            .unwrap();
        key_for(self.app.store.as_ref(), user.id, "target").await.1
    }

    async fn listed_owners(&self, actor: Seat) -> Vec<String> {
        let r = self
            .app
            .request(Method::GET, &format!("{KEYS}?limit=200"), &self.as_seat(actor), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["owner"]["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs one cell and returns the status.
    async fn attempt(&self, actor: Seat, action: Action, owner: Seat) -> StatusCode {
        self.attempt_as(self.as_seat(actor), action, owner).await.status
    }

    /// Runs one cell with `auth` and returns the answer.
    async fn attempt_as(&self, auth: Auth, action: Action, owner: Seat) -> common::Reply {
        match action {
            Action::Read => {
                let key_id = self.fresh_key(owner).await;
                self.app
                    .request(Method::GET, &format!("{KEYS}/{key_id}"), &auth, None)
                    .await
            }
            Action::Rename => {
                let key_id = self.fresh_key(owner).await;
                self.app
                    .request(
                        Method::PATCH,
                        &format!("{KEYS}/{key_id}"),
                        &auth,
                        Some(json!({"name": "renamed"})),
                    )
                    .await
            }
            Action::Delete => {
                let key_id = self.fresh_key(owner).await;
                self.app
                    .request(Method::DELETE, &format!("{KEYS}/{key_id}"), &auth, None)
                    .await
            }
            Action::Create => {
                self.app
                    .request(
                        Method::POST,
                        KEYS,
                        &auth,
                        Some(json!({"name": "made", "owner": owner.name()})),
                    )
                    .await
            }
        }
    }
}

/// The status a client must see for a cell: success when the table allows it; 404 when
/// the caller may not even see the key (or owner); 403 when they see it but may not act.
fn expected_status(actor: Seat, action: Action, owner: Seat) -> StatusCode {
    if table_allows(actor, action, owner) {
        return match action {
            Action::Read | Action::Rename => StatusCode::OK,
            Action::Create => StatusCode::CREATED,
            Action::Delete => StatusCode::NO_CONTENT,
        };
    }
    if table_allows(actor, Action::Read, owner) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::NOT_FOUND
    }
}

#[tokio::test]
async fn every_role_action_and_owner_kind_follows_the_permission_table() {
    let w = world().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for actor in SEATS {
        let listed = w.listed_owners(actor).await;
        for owner in SEATS {
            let visible = listed.iter().any(|o| o == owner.name());
            if visible != table_allows(actor, Action::Read, owner) {
                failures.push(format!("{actor:?} lists {owner:?}'s keys: {visible}"));
            }
            for action in [Action::Read, Action::Create, Action::Rename, Action::Delete] {
                cells += 1;
                let got = w.attempt(actor, action, owner).await;
                let want = expected_status(actor, action, owner);
                if got != want {
                    failures.push(format!("{actor:?} {action:?} {owner:?}'s key: got {got}, want {want}"));
                }
            }
        }
    }
    assert_eq!(cells, 400);
    assert!(
        failures.is_empty(),
        "{} cells differ from the table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The answer a cell must get with a key of `scope`: the table first (not found, then
/// forbidden), then the scope (`insufficient_scope`), then success.
fn expected_scoped(actor: Seat, scope: KeyScope, action: Action, owner: Seat) -> (StatusCode, &'static str) {
    let plain = expected_status(actor, action, owner);
    if !plain.is_success() {
        let code = if plain == StatusCode::NOT_FOUND {
            match action {
                Action::Create => "owner_not_found",
                _ => "api_key_not_found",
            }
        } else {
            "forbidden"
        };
        return (plain, code);
    }
    if scope < scope_needed(actor, action, owner) {
        return (StatusCode::FORBIDDEN, "insufficient_scope");
    }
    (plain, "")
}

#[tokio::test]
async fn every_seat_scope_action_and_owner_kind_follows_the_table_narrowed_by_the_scope() {
    let w = world_with_scoped_keys().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for actor in SEATS {
        for scope in [KeyScope::Read, KeyScope::Write] {
            let auth = Auth::Bearer(w.scoped[&(actor.name(), scope)].clone());
            for owner in SEATS {
                for action in [Action::Read, Action::Create, Action::Rename, Action::Delete] {
                    cells += 1;
                    let r = w.attempt_as(auth.clone(), action, owner).await;
                    let got = (r.status, if r.status.is_success() { "" } else { r.code() });
                    let want = expected_scoped(actor, scope, action, owner);
                    if got != want {
                        failures.push(format!(
                            "{actor:?} with a {scope} key: {action:?} {owner:?}'s key: got {got:?}, want {want:?}"
                        ));
                    }
                    if r.status == StatusCode::CREATED {
                        assert_eq!(
                            r.body["scope"],
                            scope.as_str(),
                            "a new key takes the asking key's scope"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(cells, 800);
    assert!(
        failures.is_empty(),
        "{} cells differ from the table and the scopes:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----------------------------------------------------------------- one test per rule

#[tokio::test]
async fn members_list_create_rename_and_delete_their_own_personal_keys() {
    let w = world().await;
    for action in [Action::Read, Action::Create, Action::Rename, Action::Delete] {
        assert!(w.attempt(Loner, action, Loner).await.is_success(), "{action:?}");
    }
    // The seat's own key, the read and rename targets, and the created key; the delete
    // target is gone.
    assert_eq!(w.listed_owners(Loner).await, ["loner"; 4]);
}

#[tokio::test]
async fn members_cannot_list_or_manage_keys_of_service_accounts() {
    let w = world().await;
    for sa in [RedServiceAccount, OrgServiceAccount] {
        assert_eq!(w.attempt(RedMember, Action::Read, sa).await, StatusCode::NOT_FOUND);
        assert_eq!(w.attempt(RedMember, Action::Create, sa).await, StatusCode::NOT_FOUND);
        assert_eq!(w.attempt(RedMember, Action::Delete, sa).await, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn team_admins_list_create_and_delete_keys_of_their_teams_service_accounts() {
    let w = world().await;
    assert!(w.listed_owners(RedTeamAdmin).await.contains(&"red-bot".to_owned()));
    assert_eq!(
        w.attempt(RedTeamAdmin, Action::Create, RedServiceAccount).await,
        StatusCode::CREATED
    );
    assert_eq!(
        w.attempt(RedTeamAdmin, Action::Delete, RedServiceAccount).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn team_admins_cannot_list_other_teams_service_account_keys() {
    let w = world().await;
    assert!(!w.listed_owners(RedTeamAdmin).await.contains(&"blue-bot".to_owned()));
    assert_eq!(
        w.attempt(RedTeamAdmin, Action::Read, BlueServiceAccount).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.attempt(RedTeamAdmin, Action::Create, OrgServiceAccount).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn team_admins_cannot_list_other_users_keys() {
    let w = world().await;
    assert_eq!(
        w.listed_owners(RedTeamAdmin)
            .await
            .iter()
            .filter(|o| *o == "redmember")
            .count(),
        0
    );
    assert_eq!(
        w.attempt(RedTeamAdmin, Action::Read, RedMember).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn org_admins_list_and_delete_every_key_of_their_org() {
    let w = world().await;
    let listed = w.listed_owners(OrgAdmin).await;
    for seat in SEATS.iter().filter(|s| s.in_main_org()) {
        assert!(listed.contains(&seat.name().to_owned()), "{seat:?}");
    }
    assert_eq!(w.attempt(OrgAdmin, Action::Delete, Loner).await, StatusCode::NO_CONTENT);
    assert_eq!(
        w.attempt(OrgAdmin, Action::Delete, BlueServiceAccount).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn org_admins_cannot_create_or_rename_other_users_personal_keys() {
    let w = world().await;
    assert_eq!(w.attempt(OrgAdmin, Action::Create, Loner).await, StatusCode::FORBIDDEN);
    assert_eq!(w.attempt(OrgAdmin, Action::Rename, Loner).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn nothing_of_another_organization_is_visible_or_changeable() {
    let w = world().await;
    for owner in [OtherOrgAdmin, OtherOrgMember, OtherOrgServiceAccount] {
        for action in [Action::Read, Action::Create, Action::Rename, Action::Delete] {
            assert_eq!(
                w.attempt(OrgAdmin, action, owner).await,
                StatusCode::NOT_FOUND,
                "{action:?} {owner:?}"
            );
        }
    }
    let admin = w.as_seat(OrgAdmin);
    for path in [
        "/api/v1/orgs/other",
        "/api/v1/orgs/other/users",
        "/api/v1/orgs/other/teams",
        "/api/v1/orgs/other/service-accounts",
        "/api/v1/orgs/other/audit",
    ] {
        let r = w.app.request(Method::GET, path, &admin, None).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "org_not_found"), "{path}");
    }
    let r = w
        .app
        .request(Method::GET, "/api/v1/orgs/does-not-exist", &admin, None)
        .await;
    assert_eq!(
        r.code(),
        "org_not_found",
        "an unknown org looks the same as a foreign one"
    );
    let r = w
        .app
        .request(
            Method::PATCH,
            "/api/v1/orgs/other",
            &admin,
            Some(json!({"key_creation_disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = w
        .app
        .request(
            Method::DELETE,
            "/api/v1/orgs/default/service-accounts/other-bot",
            &admin,
            None,
        )
        .await;
    assert_eq!(r.code(), "service_account_not_found");
    let r = w
        .app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/othermember",
            &admin,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.code(), "user_not_found");
    assert!(
        !w.listed_owners(OtherOrgAdmin)
            .await
            .iter()
            .any(|o| o == "admin" || o == "loner")
    );
}
