//! The rules of users, teams and service accounts, at the application itself, without
//! a door: the decisions of docs/DESIGN.md §10 hold for every caller of these actions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::caller;

use keysmith_app::input::{Email, entity_name};
use keysmith_app::service_accounts::{self, NewServiceAccountRequest};
use keysmith_app::teams::{self, Invitee};
use keysmith_app::users::{self, NewUserRequest};
use keysmith_app::{Acting, App, AppError, Caller, ManualClock, Missing};
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{EntityName, SecretString};
use keysmith_store::{AuditQuery, NewUser, SqliteStore, Store};
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;
const PASSWORD: &str = "a-long-enough-password";

struct World {
    app: App,
    admin: Caller,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("k.db")).await.unwrap());
    let admin = NewUser {
        kind: PrincipalKind::User,
        username: "admin".into(),
        email: None,
        password_hash: None,
    };
    store.bootstrap("default", admin, NOW).await.unwrap().unwrap();
    let app = App::new(
        store,
        Arc::new(ManualClock::new(NOW)),
        keysmith_app::Settings::default(),
        Arc::default(),
    );
    let admin = caller(&app, "admin").await;
    World { app, admin, _dir: dir }
}

fn name(raw: &str) -> EntityName {
    EntityName::parse(raw).unwrap()
}

impl World {
    fn acting<'a>(&self, caller: &'a Caller) -> Acting<'a> {
        Acting::new(caller, "192.0.2.1", NOW)
    }

    async fn add(&self, username: &str) {
        let request = NewUserRequest {
            username: name(username),
            email: None,
            role: OrgRole::Member,
            password: Some(SecretString::new(PASSWORD.into())),
        };
        users::create(&self.app, &self.acting(&self.admin), "default", request)
            .await
            .unwrap();
    }

    async fn audited(&self, action: &str) -> usize {
        let org = self.app.store.find_org("default").await.unwrap().unwrap();
        self.app
            .store
            .list_audit(&AuditQuery {
                org: Some(org.id),
                action: Some(action.into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }
}

#[tokio::test]
async fn only_org_admins_change_team_membership_and_roles() {
    let w = world().await;
    for u in ["lead", "dev"] {
        w.add(u).await;
    }
    let team = teams::create(&w.app, &w.acting(&w.admin), "default", name("vision"), None)
        .await
        .unwrap();
    teams::set_member(
        &w.app,
        &w.acting(&w.admin),
        "default",
        "vision",
        "lead",
        TeamRole::Admin,
    )
    .await
    .unwrap();
    let lead = caller(&w.app, "lead").await;
    assert!(lead.roles.is_team_admin(team.id));
    let as_lead = w.acting(&lead);
    let forbidden = AppError::Forbidden("only organization admins may do this");
    let set = teams::set_member(&w.app, &as_lead, "default", "vision", "dev", TeamRole::Admin).await;
    assert_eq!(set.unwrap_err(), forbidden);
    let invitee = Invitee {
        username: Some("dev".into()),
        email: None,
    };
    let invited = teams::invite(&w.app, &as_lead, "default", "vision", invitee, TeamRole::Admin).await;
    assert_eq!(invited.unwrap_err(), forbidden);
    let removed = teams::remove_member(&w.app, &as_lead, "default", "vision", "lead").await;
    assert_eq!(removed.unwrap_err(), forbidden);
    assert_eq!(w.audited("team.member_set").await, 1, "only the admin's");
    // The team admin still sees the team, as W&B's SDK needs after creating an account.
    let detail = teams::show(&w.app, &lead, "default", "vision").await.unwrap();
    assert_eq!(detail.members.len(), 1);
    let dev = caller(&w.app, "dev").await;
    assert!(matches!(
        teams::show(&w.app, &dev, "default", "vision").await,
        Err(AppError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_description_is_trimmed_then_kept_whole_or_refused() {
    let w = world().await;
    let request = |n: &str, description: String| NewServiceAccountRequest {
        name: name(n),
        description,
        team: None,
        external_subject: None,
        allowed_networks: None,
    };
    let acting = w.acting(&w.admin);
    let refused = service_accounts::create(&w.app, &acting, "default", request("long", "x".repeat(1025))).await;
    assert!(
        matches!(
            refused,
            Err(AppError::Invalid {
                field: "description",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(w.audited("service_account.created").await, 0);
    let kept = service_accounts::create(
        &w.app,
        &acting,
        "default",
        request("fits", format!("\n {} \t", "x".repeat(1024))),
    )
    .await
    .unwrap();
    assert_eq!(kept.description, "x".repeat(1024));
    assert_eq!(w.audited("service_account.created").await, 1);
}

#[tokio::test]
async fn an_invited_user_holds_an_invitation_and_accepts_it_once() {
    let w = world().await;
    let request = NewUserRequest {
        username: entity_name("username", "username", " ada ").unwrap(),
        email: Some(Email::parse("Ada@Example.com").unwrap()),
        role: OrgRole::Member,
        password: None,
    };
    let created = users::create(&w.app, &w.acting(&w.admin), "default", request)
        .await
        .unwrap();
    assert_eq!(created.member.user.username, "ada");
    let token = created.invite_token.expect("an invitation");
    let password = SecretString::new(PASSWORD.into());
    let weak = SecretString::new("short".into());
    assert!(matches!(
        users::accept_invitation(&w.app, "192.0.2.9", NOW, &token, &weak).await,
        Err(AppError::Invalid { field: "password", .. })
    ));
    let pasted = SecretString::new(format!(" {}\n", token.expose()));
    users::accept_invitation(&w.app, "192.0.2.9", NOW, &pasted, &password)
        .await
        .unwrap();
    assert_eq!(
        users::accept_invitation(&w.app, "192.0.2.9", NOW, &token, &password).await,
        Err(AppError::InvitationInvalid)
    );
}

#[tokio::test]
async fn names_made_from_free_text_are_plain_and_unused() {
    let w = world().await;
    let made = async |base: &str| users::unused_name(&w.app, base, "user").await.unwrap().to_string();
    assert_eq!(made("Grace Hopper").await, "grace-hopper");
    assert_eq!(made("  ¡¡¡  ").await, "user");
    assert_eq!(made("admin").await, "admin-1", "admin is taken");
    assert_eq!(made(&"x".repeat(100)).await.len(), 40);
    // Not found is "not found": a person outside the org is nobody to an admin.
    let outside = users::update(
        &w.app,
        &w.acting(&w.admin),
        "default",
        "nobody",
        users::UserChange::default(),
    )
    .await;
    assert_eq!(outside.unwrap_err(), AppError::NotFound(Missing::User));
}

#[tokio::test]
async fn another_organizations_teams_and_roles_stay_out_of_sight() {
    let w = world().await;
    w.add("jo").await;
    teams::create(&w.app, &w.acting(&w.admin), "default", name("ml"), None)
        .await
        .unwrap();
    teams::set_member(&w.app, &w.acting(&w.admin), "default", "ml", "jo", TeamRole::Member)
        .await
        .unwrap();
    let jo = w.app.store.find_user_by_username("jo").await.unwrap().unwrap();
    let other = w.app.store.create_org("other", NOW).await.unwrap();
    w.app
        .store
        .add_org_member(other.id, jo.id, OrgRole::Admin, NOW, &[])
        .await
        .unwrap();
    let secret = w.app.store.create_team(other.id, "secret", NOW, &[]).await.unwrap();
    w.app
        .store
        .set_team_member(secret.id, jo.id, TeamRole::Member, NOW, &[])
        .await
        .unwrap();
    let names = |teams: Vec<keysmith_store::Team>| {
        let mut n: Vec<String> = teams.into_iter().map(|t| t.name).collect();
        n.sort();
        n
    };
    assert_eq!(names(users::teams_of(&w.app, &w.admin, jo.id).await.unwrap()), ["ml"]);
    assert!(
        !users::is_org_admin(&w.app, &w.admin, jo.id).await.unwrap(),
        "jo administers only an organization the admin does not"
    );
    let jo_seat = caller(&w.app, "jo").await;
    assert_eq!(
        names(users::teams_of(&w.app, &jo_seat, jo.id).await.unwrap()),
        ["ml", "secret"]
    );
    assert!(users::is_org_admin(&w.app, &jo_seat, jo.id).await.unwrap());
}
