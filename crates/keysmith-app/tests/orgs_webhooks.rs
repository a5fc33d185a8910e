//! Organizations and their settings, the audit log, webhook endpoints and leak
//! response, at the application itself, on SQLite and on PostgreSQL: who may do what (a table of seats
//! × actions, written out from the rule "org admins manage the organization; members
//! see it; anyone else finds nothing"), and what each action records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{caller, new_user};

use keysmith_app::audit_log::{self, Filter};
use keysmith_app::keys::{self, NewKeyRequest};
use keysmith_app::webhooks::{self, NewEndpoint};
use keysmith_app::{Acting, App, AppError, Caller, ManualClock, Missing, leaks, orgs};
use keysmith_core::KeyName;
use keysmith_core::role::{OrgRole, TeamRole};
use keysmith_store::{AuditEntry, AuditQuery, KeyFormat, OrgSettings, Store};
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;

struct World {
    app: App,
    admin: Caller,
    _dir: Option<tempfile::TempDir>,
}

/// Organization `default` with `admin`, `lead` (a member who administers team
/// `vision`) and `member`; organization `acme` with its own admin, `stranger`.
async fn world(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> World {
    let (org, _) = store
        .bootstrap("default", new_user("admin", None), NOW)
        .await
        .unwrap()
        .unwrap();
    for name in ["lead", "member"] {
        store
            .create_member(new_user(name, None), org.id, OrgRole::Member, NOW, &[])
            .await
            .unwrap();
    }
    let team = store.create_team(org.id, "vision", NOW, &[]).await.unwrap();
    let lead = store.find_user_by_username("lead").await.unwrap().unwrap();
    store
        .set_team_member(team.id, lead.id, TeamRole::Admin, NOW, &[])
        .await
        .unwrap();
    let acme = store.create_org("acme", NOW).await.unwrap();
    store
        .create_member(new_user("stranger", None), acme.id, OrgRole::Admin, NOW, &[])
        .await
        .unwrap();
    let app = App::new(
        store,
        Arc::new(ManualClock::new(NOW)),
        keysmith_app::Settings::default(),
        Arc::default(),
    );
    let admin = caller(&app, "admin").await;
    World { app, admin, _dir: dir }
}

async fn sqlite() -> World {
    let (store, dir) = common::sqlite_store().await;
    world(store, Some(dir)).await
}

impl World {
    fn acting<'a>(&self, caller: &'a Caller) -> Acting<'a> {
        Acting::new(caller, "192.0.2.7", NOW)
    }

    async fn audit(&self, action: &str) -> Vec<AuditEntry> {
        let org = self.app.store.find_org("default").await.unwrap().unwrap();
        let query = AuditQuery {
            org: Some(org.id),
            action: Some(action.into()),
            limit: 200,
            ..Default::default()
        };
        self.app.store.list_audit(&query).await.unwrap()
    }

    async fn hook(&self) -> i64 {
        let endpoint = NewEndpoint {
            url: "https://hooks.example.com/keysmith".into(),
            ..NewEndpoint::default()
        };
        let created = webhooks::create(&self.app, &self.acting(&self.admin), "default", endpoint)
            .await
            .unwrap();
        created.webhook.id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Forbidden,
    NotFound(Missing),
}
use Outcome::{Done, Forbidden, NotFound};

fn outcome<T>(result: Result<T, AppError>) -> Outcome {
    match result {
        Ok(_) => Done,
        Err(AppError::Forbidden(_)) => Forbidden,
        Err(AppError::NotFound(what)) => NotFound(what),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    ShowOrg,
    ChangeSettings,
    ReadAudit,
    ListWebhooks,
    AddWebhook,
    ShowWebhook,
    RotateWebhookSecret,
    ReadDeliveries,
    DeleteWebhook,
}

async fn attempt(w: &World, seat: &Caller, act: Act) -> Outcome {
    let hook = w.hook().await;
    let acting = w.acting(seat);
    let app = &w.app;
    match act {
        Act::ShowOrg => outcome(orgs::get(app, seat, "default").await),
        Act::ChangeSettings => {
            let settings = OrgSettings {
                legacy_keys_allowed: Some(true),
                ..OrgSettings::default()
            };
            outcome(orgs::update_settings(app, &acting, "default", settings).await)
        }
        Act::ReadAudit => outcome(audit_log::list(app, seat, "default", Filter::default()).await),
        Act::ListWebhooks => outcome(webhooks::list(app, seat, "default").await),
        Act::AddWebhook => {
            let endpoint = NewEndpoint {
                url: "https://elsewhere.example.com/".into(),
                ..NewEndpoint::default()
            };
            outcome(webhooks::create(app, &acting, "default", endpoint).await)
        }
        Act::ShowWebhook => outcome(webhooks::get(app, seat, "default", hook).await),
        Act::RotateWebhookSecret => outcome(webhooks::rotate_secret(app, &acting, "default", hook).await),
        Act::ReadDeliveries => outcome(webhooks::deliveries(app, seat, "default", hook).await),
        Act::DeleteWebhook => outcome(webhooks::delete(app, &acting, "default", hook).await),
    }
}

async fn seats_and_actions(w: World) {
    let o = NotFound(Missing::Org);
    // Seats:              admin  lead       member     stranger (admin of acme)
    let table = [
        (Act::ShowOrg, [Done, Done, Done, o]),
        (Act::ChangeSettings, [Done, Forbidden, Forbidden, o]),
        (Act::ReadAudit, [Done, Forbidden, Forbidden, o]),
        (Act::ListWebhooks, [Done, Forbidden, Forbidden, o]),
        (Act::AddWebhook, [Done, Forbidden, Forbidden, o]),
        (Act::ShowWebhook, [Done, Forbidden, Forbidden, o]),
        (Act::RotateWebhookSecret, [Done, Forbidden, Forbidden, o]),
        (Act::ReadDeliveries, [Done, Forbidden, Forbidden, o]),
        (Act::DeleteWebhook, [Done, Forbidden, Forbidden, o]),
    ];
    let mut seats = vec![w.admin.clone()];
    for name in ["lead", "member", "stranger"] {
        seats.push(caller(&w.app, name).await);
    }
    let mut wrong = Vec::new();
    for (act, expected) in table {
        for (seat, want) in seats.iter().zip(expected) {
            let got = attempt(&w, seat, act).await;
            if got != want {
                wrong.push(format!(
                    "{act:?} by {}: {got:?}, expected {want:?}",
                    seat.principal.user.username
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // An admin of another organization does not reach an endpoint of this one through
    // their own organization either.
    let hook = w.hook().await;
    let stranger = caller(&w.app, "stranger").await;
    let got = webhooks::get(&w.app, &stranger, "acme", hook).await;
    assert_eq!(outcome(got), NotFound(Missing::Webhook));
    // Refusals change nothing: the settings were changed and endpoints managed by the
    // admin alone.
    let changed = w.audit("org.settings_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].actor_name, "admin");
    assert_eq!(w.audit("webhook.deleted").await.len(), 1);
    assert_eq!(w.audit("webhook.secret_rotated").await.len(), 1);
}

async fn settings_are_checked_whole_and_audited_once(w: World) {
    let acting = w.acting(&w.admin);
    let too_long = OrgSettings {
        key_creation_disabled: Some(true),
        max_service_account_key_lifetime_days: Some(3651),
        ..OrgSettings::default()
    };
    let err = orgs::update_settings(&w.app, &acting, "default", too_long)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppError::Invalid {
                field: "max_service_account_key_lifetime_days",
                ..
            }
        ),
        "{err:?}"
    );
    let (org, role) = orgs::get(&w.app, &w.admin, "default").await.unwrap();
    assert!(!org.key_creation_disabled, "nothing of a refused change is kept");
    assert_eq!(role, OrgRole::Admin);
    // Nothing asked: nothing changes, nothing recorded.
    orgs::update_settings(&w.app, &acting, "default", OrgSettings::default())
        .await
        .unwrap();
    assert!(w.audit("org.settings_changed").await.is_empty());
    let change = OrgSettings {
        max_user_key_lifetime_days: Some(3650),
        ..OrgSettings::default()
    };
    let org = orgs::update_settings(&w.app, &acting, "default", change).await.unwrap();
    assert_eq!(org.max_user_key_lifetime_days, 3650);
    let entries = w.audit("org.settings_changed").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].source_address.as_deref(), Some("192.0.2.7"));
    let detail: serde_json::Value = serde_json::from_str(entries[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["max_user_key_lifetime_days"], 3650);
    assert_eq!(
        detail["key_creation_disabled"],
        serde_json::Value::Null,
        "not asked, not changed"
    );
    let member = caller(&w.app, "member").await;
    let (_, role) = orgs::get(&w.app, &member, "default").await.unwrap();
    assert_eq!(role, OrgRole::Member);
    let listed = orgs::list(&w.app, &member).await.unwrap();
    assert_eq!(listed.len(), 1, "only the member's own organization");
}

async fn the_audit_log_pages_through_every_entry_once(w: World) {
    for i in 0..7 {
        let name = format!("hook {i}");
        let endpoint = NewEndpoint {
            url: format!("https://hooks.example.com/{i}"),
            description: Some(name),
            ..NewEndpoint::default()
        };
        webhooks::create(&w.app, &w.acting(&w.admin), "default", endpoint)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let filter = Filter {
            action: Some("webhook.created".into()),
            limit: Some(3),
            cursor: cursor.take(),
            ..Filter::default()
        };
        let page = audit_log::list(&w.app, &w.admin, "default", filter).await.unwrap();
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|e| e.target.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("https://hooks.example.com/{i}")).collect();
    assert_eq!(seen, expected, "newest first, each once");
    for limit in [0, 201] {
        let filter = Filter {
            limit: Some(limit),
            ..Filter::default()
        };
        let err = audit_log::list(&w.app, &w.admin, "default", filter).await.unwrap_err();
        assert!(matches!(err, AppError::InvalidQuery(_)), "{limit}: {err:?}");
    }
    for bad in ["abc", "0", "-4"] {
        let filter = Filter {
            cursor: Some(bad.into()),
            ..Filter::default()
        };
        let err = audit_log::list(&w.app, &w.admin, "default", filter).await.unwrap_err();
        assert_eq!(err, AppError::InvalidCursor, "{bad}");
    }
}

async fn an_endpoint_gets_its_events_and_its_secret_is_shown_only_in_answers(w: World) {
    let acting = w.acting(&w.admin);
    let endpoint = NewEndpoint {
        url: "https://hooks.example.com/deleted-only".into(),
        events: Some(vec!["api_key.deleted".into()]),
        description: None,
    };
    let created = webhooks::create(&w.app, &acting, "default", endpoint).await.unwrap();
    let first = created.secret.expose().to_owned();
    assert!(first.starts_with("whsec_"), "a Standard Webhooks secret");
    assert_eq!(
        format!("{:?}", created.secret),
        format!("{:?}", keysmith_core::SecretString::new(String::new())),
        "its Debug shows nothing of it"
    );
    let rotated = webhooks::rotate_secret(&w.app, &acting, "default", created.webhook.id)
        .await
        .unwrap();
    assert_ne!(rotated.secret.expose(), first, "a new secret");
    assert_eq!(
        webhooks::previous_secret_until(&rotated.webhook, NOW),
        Some(NOW + webhooks::SECRET_GRACE_MS)
    );
    for entry in w
        .audit("webhook.created")
        .await
        .into_iter()
        .chain(w.audit("webhook.secret_rotated").await)
    {
        let text = format!("{entry:?}");
        assert!(
            !text.contains(&first) && !text.contains(rotated.secret.expose()),
            "{text}"
        );
    }
    // A key created then deleted: one event for the endpoint, the deletion.
    let request = NewKeyRequest {
        name: KeyName::parse("laptop").unwrap(),
        owner: None,
        format: KeyFormat::V1,
        expires_at: None,
        scope: None,
        allowed_networks: None,
        requests_per_minute: None,
    };
    let minted = keys::mint(&w.app, &acting, request).await.unwrap();
    keys::delete(&w.app, &acting, minted.key.key_id.as_str()).await.unwrap();
    assert_eq!(webhooks::pump(&w.app).await.unwrap(), 1);
    assert_eq!(webhooks::pump(&w.app).await.unwrap(), 0, "each event once");
    let log = webhooks::deliveries(&w.app, &w.admin, "default", created.webhook.id)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, "api_key.deleted");
    let payload: serde_json::Value = serde_json::from_str(&log[0].payload).unwrap();
    assert_eq!(payload["data"]["key_id"], minted.key.key_id.as_str());
    assert!(
        !log[0].payload.contains(minted.generated.plaintext.expose()),
        "never the key"
    );
    // Bad endpoints are refused naming the field.
    for (url, events, field) in [
        ("ftp://hooks.example.com/", None, "url"),
        (
            "https://hooks.example.com/",
            Some(vec!["user.created".to_owned()]),
            "events",
        ),
    ] {
        let endpoint = NewEndpoint {
            url: url.into(),
            events,
            description: None,
        };
        let err = webhooks::create(&w.app, &acting, "default", endpoint)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AppError::Invalid { field: f, .. } if f == field),
            "{err:?}"
        );
    }
}

/// Leak response: a reported key that is genuine is revoked at once, audited without
/// an actor and announced to the endpoints that asked for `api_key.exposed`; a second
/// report of it, a key of another server and a string that is no key say no more
/// than that.
async fn an_exposed_key_is_revoked_audited_and_announced(w: World) {
    let acting = w.acting(&w.admin);
    let endpoint = NewEndpoint {
        url: "https://hooks.example.com/exposed".into(),
        events: Some(vec!["api_key.exposed".into()]),
        description: None,
    };
    let hook = webhooks::create(&w.app, &acting, "default", endpoint).await.unwrap();
    let request = NewKeyRequest {
        name: KeyName::parse("pasted in a gist").unwrap(),
        owner: None,
        format: KeyFormat::V1,
        expires_at: None,
        scope: None,
        allowed_networks: None,
        requests_per_minute: None,
    };
    let minted = keys::mint(&w.app, &acting, request).await.unwrap();
    let plaintext = minted.generated.plaintext.expose().to_owned();
    let report = leaks::Report::GitHub {
        url: Some("https://gist.github.com/x".into()),
        source: Some("gist".into()),
    };
    // Pasted with its newline.
    let first = leaks::revoke(&w.app, &format!("{plaintext}\n"), &report, "192.0.2.44").await;
    assert_eq!(first.unwrap(), leaks::Finding::Revoked);
    assert!(
        w.app.store.get_key(&minted.key.key_id).await.unwrap().is_none(),
        "it no longer works"
    );
    let again = leaks::revoke(&w.app, &plaintext, &leaks::Report::Holder, "192.0.2.44").await;
    assert_eq!(again.unwrap(), leaks::Finding::AlreadyRevoked);
    // A well-formed key this server never made, and strings that are no key.
    let other = keysmith_core::generate_v1(&w.app.key_prefix).unwrap();
    let other = other.plaintext.expose().to_owned();
    for not_ours in [other.as_str(), "hello", ""] {
        let found = leaks::revoke(&w.app, not_ours, &leaks::Report::Holder, "192.0.2.44").await;
        assert_eq!(found.unwrap(), leaks::Finding::NotOurs, "{not_ours}");
    }
    let exposed = w.audit("api_key.exposed").await;
    assert_eq!(exposed.len(), 1);
    assert_eq!(exposed[0].actor_id, None, "reported, not done by a user");
    assert_eq!(exposed[0].source_address.as_deref(), Some("192.0.2.44"));
    let detail: serde_json::Value = serde_json::from_str(exposed[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["reporter"], "github");
    assert_eq!(detail["url"], "https://gist.github.com/x");
    assert!(!exposed[0].detail.as_deref().unwrap().contains(&plaintext));
    webhooks::pump(&w.app).await.unwrap();
    let log = webhooks::deliveries(&w.app, &w.admin, "default", hook.webhook.id)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, "api_key.exposed");
    // Reports from holders are limited per address (30 a minute by default).
    for _ in 0..30 {
        leaks::count_report(&w.app, "2001:db8::1").unwrap();
    }
    let limited = leaks::count_report(&w.app, "2001:db8::2");
    assert!(
        matches!(limited, Err(AppError::RateLimited { .. })),
        "the same /64: {limited:?}"
    );
    leaks::count_report(&w.app, "192.0.2.45").unwrap();
}

#[tokio::test]
async fn leaks_on_sqlite() {
    an_exposed_key_is_revoked_audited_and_announced(sqlite().await).await;
}

#[tokio::test]
async fn seats_and_actions_on_sqlite() {
    seats_and_actions(sqlite().await).await;
}

#[tokio::test]
async fn settings_on_sqlite() {
    settings_are_checked_whole_and_audited_once(sqlite().await).await;
}

#[tokio::test]
async fn audit_paging_on_sqlite() {
    the_audit_log_pages_through_every_entry_once(sqlite().await).await;
}

#[tokio::test]
async fn webhooks_on_sqlite() {
    an_endpoint_gets_its_events_and_its_secret_is_shown_only_in_answers(sqlite().await).await;
}

#[tokio::test]
async fn everything_on_postgresql() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    async fn on(cluster: &keysmith_pgtest::PgCluster) -> World {
        world(common::postgres_store(cluster).await, None).await
    }
    seats_and_actions(on(&cluster).await).await;
    settings_are_checked_whole_and_audited_once(on(&cluster).await).await;
    the_audit_log_pages_through_every_entry_once(on(&cluster).await).await;
    an_endpoint_gets_its_events_and_its_secret_is_shown_only_in_answers(on(&cluster).await).await;
    an_exposed_key_is_revoked_audited_and_announced(on(&cluster).await).await;
}
