//! Warnings before a key lapses (`api_key.expiring`) and about idle keys
//! (`api_key.unused`), with the test clock: each lead time gives one warning per key,
//! and each idle spell one notice, also when two replicas on one PostgreSQL database
//! announce at the same moment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{caller, new_user};
use keysmith_app::time::{DAY_MS, HOUR_MS};
use keysmith_app::{Acting, App, Clock, ManualClock, notices, orgs, webhooks};
use keysmith_store::{AuditQuery, OrgSettings, Store, StoredKey};
use serde_json::Value;
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;

/// Two replicas of the application (on SQLite, the same one twice) and their clock.
struct Replicas {
    a: App,
    b: App,
    clock: Arc<ManualClock>,
}

fn app(store: Arc<dyn Store>, clock: &Arc<ManualClock>, settings: keysmith_app::Settings) -> App {
    App::new(store, clock.clone(), settings, Arc::default())
}

/// Notices by email too, with links to the web interface.
fn with_email() -> keysmith_app::Settings {
    let mut settings = keysmith_app::Settings::default();
    settings.notices.email = true;
    settings.notices.public_origin = Some("https://keys.example.test".into());
    settings
}

async fn insert_key(store: &Arc<dyn Store>, owner: &str, name: &str, expires_at: Option<i64>) -> StoredKey {
    insert_key_by(store, owner, owner, name, expires_at).await
}

async fn insert_key_by(
    store: &Arc<dyn Store>,
    owner: &str,
    creator: &str,
    name: &str,
    expires_at: Option<i64>,
) -> StoredKey {
    let owner = store.find_user_by_username(owner).await.unwrap().unwrap();
    let creator = store.find_user_by_username(creator).await.unwrap().unwrap();
    let key = common::new_key(owner.id, creator.id, name, NOW, expires_at);
    store.insert_key(key, &[]).await.unwrap()
}

/// Organization `default` with `admin`, `member` and the service account `ci-bot`.
async fn setup(store: &Arc<dyn Store>) {
    let (org, _) = store
        .bootstrap("default", new_user("admin", Some("admin@example.test")), NOW)
        .await
        .unwrap()
        .unwrap();
    store
        .create_member(
            new_user("member", None),
            org.id,
            keysmith_core::role::OrgRole::Member,
            NOW,
            &[],
        )
        .await
        .unwrap();
    let bot = keysmith_store::NewServiceAccount {
        org: org.id,
        team: None,
        username: "ci-bot".into(),
        description: String::new(),
        created_by: None,
        external_subject: None,
        allowed_networks: None,
    };
    store.create_service_account(bot, NOW, &[]).await.unwrap();
}

/// Both replicas announce at once; how many notices they gave together.
async fn both(r: &Replicas, idle: bool) -> usize {
    let (x, y) = if idle {
        tokio::join!(notices::announce_idle(&r.a), notices::announce_idle(&r.b))
    } else {
        tokio::join!(notices::announce_expiring(&r.a), notices::announce_expiring(&r.b))
    };
    x.unwrap() + y.unwrap()
}

/// `(target key ID, detail)` of every audit entry of `action`, oldest first.
async fn announced(app: &App, action: &str) -> Vec<(String, Value)> {
    let mut entries = app
        .store
        .list_audit(&AuditQuery {
            limit: 500,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    entries.reverse();
    entries
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| {
            assert!(
                e.actor_id.is_none() && e.source_address.is_none(),
                "the server's own entry"
            );
            (e.target, serde_json::from_str(e.detail.as_deref().unwrap()).unwrap())
        })
        .collect()
}

async fn each_lead_time_warns_once_per_key(r: Replicas) {
    let store = r.a.store.clone();
    setup(&store).await;
    let week = insert_key(&store, "admin", "week", Some(NOW + 8 * DAY_MS)).await;
    let hours = insert_key(&store, "member", "hours", Some(NOW + 12 * HOUR_MS)).await;
    insert_key(&store, "admin", "forever", None).await;
    insert_key(&store, "admin", "lapsed", Some(NOW - DAY_MS)).await;
    let deploy = insert_key_by(&store, "ci-bot", "admin", "deploy", Some(NOW + DAY_MS + 12 * HOUR_MS)).await;

    assert_eq!(
        both(&r, false).await,
        2,
        "12 hours ahead: the 1-day warning only; 36 hours: the 7-day one"
    );
    assert_eq!(both(&r, false).await, 0, "and only once");
    r.clock.advance_ms(DAY_MS + 1);
    assert_eq!(both(&r, false).await, 2, "7 days ahead; the bot's key 1 day ahead");
    assert_eq!(both(&r, false).await, 0);
    r.clock.advance_ms(5 * DAY_MS);
    assert_eq!(both(&r, false).await, 0, "2 days ahead: nothing new");
    r.clock.advance_ms(DAY_MS);
    assert_eq!(both(&r, false).await, 1, "1 day ahead");
    r.clock.advance_ms(DAY_MS);
    assert_eq!(both(&r, false).await, 0, "expired: nothing more");

    let given = announced(&r.a, "api_key.expiring").await;
    let got: Vec<(&str, u64)> = given
        .iter()
        .map(|(target, detail)| (target.as_str(), detail["lead_time_days"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (hours.key_id.as_str(), 1),
            (deploy.key_id.as_str(), 7),
            (deploy.key_id.as_str(), 1),
            (week.key_id.as_str(), 7),
            (week.key_id.as_str(), 1)
        ]
    );
    assert_eq!(given[3].1["name"], "week");
    assert_eq!(given[3].1["owner"], "admin");
    assert_eq!(given[3].1["expires_at"], keysmith_app::time::rfc3339(NOW + 8 * DAY_MS));
    assert_eq!(given[1].1["owner"], "ci-bot");
    assert!(
        announced(&r.a, "api_key.expiring_soon").await.is_empty(),
        "the old event is gone"
    );

    // One email per warning to the owner with an address (the member has none), and
    // for a service account's key to the person who made it.
    let mut emails = r.a.store.list_emails(100).await.unwrap();
    emails.reverse();
    let subjects: Vec<(&str, &str)> = emails.iter().map(|e| (e.to.as_str(), e.subject.as_str())).collect();
    let bot = "Keysmith: the API key \"deploy\" of the service account ci-bot expires";
    let mine = "Keysmith: your API key \"week\" expires";
    assert_eq!(
        subjects,
        [
            ("admin@example.test", format!("{bot} in 2 days").as_str()),
            ("admin@example.test", format!("{bot} in 12 hours").as_str()),
            ("admin@example.test", format!("{mine} in 7 days").as_str()),
            ("admin@example.test", format!("{mine} in 1 day").as_str()),
        ]
    );
    let body = &emails[2].body;
    assert!(body.starts_with("Hello admin,"), "{body}");
    assert!(
        body.contains(week.key_id.as_str()) && body.contains("keysmith keys rotate"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "https://keys.example.test/keys/{}/rotate",
            week.key_id.as_str()
        )),
        "{body}"
    );

    // Each warning is an event an endpoint subscribed under the old name receives.
    let admin = caller(&r.a, "admin").await;
    let acting = Acting::new(&admin, "127.0.0.1", r.clock.now_ms());
    let hook = webhooks::create(
        &r.a,
        &acting,
        "default",
        webhooks::NewEndpoint {
            url: "https://example.com/hook".into(),
            events: Some(vec!["api_key.expiring_soon".into()]),
            description: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(hook.webhook.events, ["api_key.expiring"]);
}

async fn idle_keys_are_announced_once_per_idle_spell(r: Replicas) {
    let store = r.a.store.clone();
    setup(&store).await;
    let idle = insert_key(&store, "member", "idle", None).await;
    let busy = insert_key(&store, "admin", "busy", None).await;
    insert_key(&store, "admin", "short", Some(NOW + 10 * DAY_MS)).await;
    r.clock.advance_ms(40 * DAY_MS);
    assert_eq!(
        both(&r, true).await,
        0,
        "off until an organization sets a number of days"
    );

    let admin = caller(&r.a, "admin").await;
    let now = r.clock.now_ms();
    let settings = OrgSettings {
        unused_key_notice_days: Some(30),
        ..OrgSettings::default()
    };
    orgs::update_settings(&r.a, &Acting::new(&admin, "127.0.0.1", now), "default", settings)
        .await
        .unwrap();
    let too_long = OrgSettings {
        unused_key_notice_days: Some(notices::MAX_DAYS + 1),
        ..OrgSettings::default()
    };
    let e = orgs::update_settings(&r.a, &Acting::new(&admin, "127.0.0.1", now), "default", too_long)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unused_key_notice_days"), "{e}");

    store
        .record_key_use(&[(busy.key_id.clone(), now - DAY_MS)])
        .await
        .unwrap();
    assert_eq!(
        both(&r, true).await,
        1,
        "the key unused for 40 days; not the one used yesterday, nor the expired one"
    );
    assert_eq!(both(&r, true).await, 0, "once");
    r.clock.advance_ms(30 * DAY_MS);
    assert_eq!(both(&r, true).await, 1, "the other key is idle now");
    assert_eq!(both(&r, true).await, 0);
    store
        .record_key_use(&[(idle.key_id.clone(), r.clock.now_ms())])
        .await
        .unwrap();
    r.clock.advance_ms(31 * DAY_MS);
    assert_eq!(both(&r, true).await, 1, "used, then idle again: a new notice");

    let given = announced(&r.a, "api_key.unused").await;
    let targets: Vec<&str> = given.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [idle.key_id.as_str(), busy.key_id.as_str(), idle.key_id.as_str()]
    );
    assert_eq!(given[0].1["unused_days"], 30);
    assert_eq!(given[0].1["last_used_at"], Value::Null);
    assert_eq!(given[1].1["owner"], "admin");
    assert!(given[2].1["last_used_at"].is_string());
    let emails = r.a.store.list_emails(100).await.unwrap();
    assert_eq!(emails.len(), 1, "the admin's key only; the member has no address");
    assert_eq!(
        emails[0].subject,
        "Keysmith: your API key \"busy\" has not been used for 30 days"
    );
    assert!(emails[0].body.contains("keysmith keys delete"), "{}", emails[0].body);
}

async fn sqlite() -> (Replicas, tempfile::TempDir) {
    let (store, dir) = common::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(NOW));
    let a = app(store, &clock, with_email());
    let b = a.clone();
    (Replicas { a, b, clock }, dir)
}

#[tokio::test]
async fn lead_times_on_sqlite() {
    let (r, _dir) = sqlite().await;
    each_lead_time_warns_once_per_key(r).await;
}

#[tokio::test]
async fn idle_keys_on_sqlite() {
    let (r, _dir) = sqlite().await;
    idle_keys_are_announced_once_per_idle_spell(r).await;
}

#[tokio::test]
async fn other_lead_times_and_none() {
    let (store, _dir) = common::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(NOW));
    let settings = keysmith_app::Settings {
        notices: notices::NoticeSettings::parse("30").unwrap(),
        ..keysmith_app::Settings::default()
    };
    let a = app(store.clone(), &clock, settings);
    setup(&store).await;
    insert_key(&store, "admin", "month", Some(NOW + 20 * DAY_MS)).await;
    insert_key(&store, "admin", "hours", Some(NOW + HOUR_MS)).await;
    assert_eq!(notices::announce_expiring(&a).await.unwrap(), 2, "both within 30 days");
    let off = keysmith_app::Settings {
        notices: notices::NoticeSettings::parse("off").unwrap(),
        ..keysmith_app::Settings::default()
    };
    let quiet = app(store.clone(), &clock, off);
    insert_key(&store, "admin", "soon", Some(NOW + HOUR_MS)).await;
    assert_eq!(notices::announce_expiring(&quiet).await.unwrap(), 0, "warnings off");
}

#[tokio::test]
async fn two_replicas_on_postgresql() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    for test in 0..2 {
        let url = cluster.create_database().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let open = || async { Arc::new(keysmith_store::PostgresStore::open(&url).await.unwrap()) as Arc<dyn Store> };
        let a = app(open().await, &clock, with_email());
        let b = app(open().await, &clock, with_email());
        let r = Replicas { a, b, clock };
        if test == 0 {
            each_lead_time_warns_once_per_key(r).await;
        } else {
            idle_keys_are_announced_once_per_idle_spell(r).await;
        }
    }
}
