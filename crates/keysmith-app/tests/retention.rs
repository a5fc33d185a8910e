//! Retention (issue 18): expired keys are removed a configured number of days after
//! they expired, each audited as `api_key.purged`; finished webhook deliveries leave
//! the log after theirs; pending ones and working keys stay; 0 keeps everything. With
//! the test clock, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::new_user;
use keysmith_app::retention::{self, Purged, RetentionSettings};
use keysmith_app::time::DAY_MS;
use keysmith_app::{App, ManualClock};
use keysmith_store::{AttemptResult, AuditQuery, DeliveryStatus, NewDelivery, NewWebhook, Store};
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;

async fn key(store: &Arc<dyn Store>, owner: keysmith_core::UserId, name: &str, expires_at: Option<i64>) -> String {
    let key = common::new_key(owner, owner, name, NOW - 100 * DAY_MS, expires_at);
    store.insert_key(key, &[]).await.unwrap().key_id.to_string()
}

async fn expired_keys_and_old_deliveries_go_after_their_retention(store: Arc<dyn Store>) {
    let (org, admin) = store
        .bootstrap("default", new_user("admin", None), NOW)
        .await
        .unwrap()
        .unwrap();
    let old = key(&store, admin.id, "old", Some(NOW - DAY_MS)).await;
    key(&store, admin.id, "later", Some(NOW + 10 * DAY_MS)).await;
    key(&store, admin.id, "forever", None).await;
    let hook = store
        .create_webhook(
            NewWebhook {
                org: org.id,
                uid: "u1".into(),
                url: "https://example.com/hook".into(),
                events: vec!["api_key.created".into()],
                description: String::new(),
                created_at: NOW,
                created_by: None,
            },
            &[],
        )
        .await
        .unwrap();
    let delivery = |id: &str| NewDelivery {
        endpoint_id: hook.id,
        message_id: id.into(),
        event_type: "api_key.created".into(),
        payload: "{}".into(),
        created_at: NOW,
    };
    let (cursor, _) = store.outbox_batch(i64::MAX / 2, 10).await.unwrap();
    assert!(
        store
            .commit_outbox(cursor, cursor, &[delivery("done"), delivery("waiting")])
            .await
            .unwrap()
    );
    let listed = store.list_deliveries(hook.id, 10).await.unwrap();
    let done = listed.iter().find(|d| d.message_id == "done").unwrap().id;
    store
        .finish_attempt(
            done,
            &AttemptResult {
                status: DeliveryStatus::Delivered,
                http_status: Some(204),
                error: None,
                at: NOW,
                next_attempt_at: NOW,
            },
        )
        .await
        .unwrap();

    let clock = Arc::new(ManualClock::new(NOW));
    let app = |settings: RetentionSettings| {
        App::new(
            store.clone(),
            clock.clone(),
            keysmith_app::Settings {
                retention: settings,
                ..keysmith_app::Settings::default()
            },
            Arc::default(),
        )
    };
    let keep = app(RetentionSettings::default());
    let thirty = app(RetentionSettings {
        expired_key_days: 30,
        delivery_days: 7,
    });
    clock.advance_ms(28 * DAY_MS);
    assert_eq!(
        retention::purge(&keep).await.unwrap(),
        Purged::default(),
        "0 keeps everything"
    );
    assert_eq!(
        retention::purge(&thirty).await.unwrap(),
        Purged { keys: 0, deliveries: 1 },
        "the delivered one after 7 days; the key expired 29 days ago stays"
    );
    clock.advance_ms(2 * DAY_MS);
    assert_eq!(
        retention::purge(&thirty).await.unwrap(),
        Purged { keys: 1, deliveries: 0 }
    );
    assert!(
        store
            .get_key(&keysmith_core::KeyId::parse(&old).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let mut names: Vec<String> = store
        .keys_expired_before(NOW + 100 * DAY_MS, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["later"],
        "expired 20 days ago: not yet; the key without expiry is never"
    );
    let left: Vec<String> = store
        .list_deliveries(hook.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(left, ["waiting"], "a pending delivery stays");
    let audit = store
        .list_audit(&AuditQuery {
            action: Some("api_key.purged".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].target, old);
    assert!(audit[0].detail.as_deref().unwrap().contains("\"retention_days\":30"));
}

#[tokio::test]
async fn retention_on_sqlite() {
    let (store, _dir) = common::sqlite_store().await;
    expired_keys_and_old_deliveries_go_after_their_retention(store).await;
}

#[tokio::test]
async fn retention_on_postgresql() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    expired_keys_and_old_deliveries_go_after_their_retention(common::postgres_store(&cluster).await).await;
}
