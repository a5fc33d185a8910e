//! The webhook outbox never moves past an audit entry that is still to commit.
//!
//! On PostgreSQL an ID is taken at insert: a transaction holding a lower ID may commit
//! after one with a higher ID. Here a second connection holds such a transaction open
//! while the store commits a later entry; the outbox must wait for the gap (and pass a
//! gap left by a rollback only after [`GAP_WAIT`]), or the held entry's event would be
//! lost for good.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keysmith_store::{NewAuditEntry, OrgId, PostgresStore, Store};

/// `GAP_WAIT_MS` of the store, plus a millisecond.
const GAP_WAIT: i64 = 60_001;
const NOW: i64 = 1_000_000;

fn entry(org: OrgId, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        org,
        at: NOW,
        actor: None,
        action: "api_key.created".into(),
        target_kind: "api_key".into(),
        target: target.into(),
        source_address: None,
        detail: None,
    }
}

async fn targets(store: &PostgresStore, now: i64) -> Vec<String> {
    let (_, entries) = store.outbox_batch(now, 100).await.unwrap();
    entries.into_iter().map(|e| e.target).collect()
}

#[tokio::test]
async fn the_outbox_waits_for_an_entry_that_commits_late_on_postgresql() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    let org = store.create_org("order", 1).await.unwrap();
    let other = sqlx::PgPool::connect(&url).await.unwrap();
    let insert = "INSERT INTO audit_log (org_id, at, actor_name, action, target_kind, target) \
                  VALUES ($1, $2, 'system', 'api_key.created', 'api_key', $3)";

    // A transaction takes an ID and holds it; a later one commits first.
    let mut held = other.begin().await.unwrap();
    sqlx::query(insert)
        .bind(org.id.0)
        .bind(NOW)
        .bind("held")
        .execute(&mut *held)
        .await
        .unwrap();
    store.append_audit_entries(&[entry(org.id, "later")]).await.unwrap();
    assert!(
        targets(&store, NOW).await.is_empty(),
        "the later entry waits behind the missing one"
    );
    held.commit().await.unwrap();
    assert_eq!(targets(&store, NOW).await, ["held", "later"], "both, in ID order");
    let (cursor, entries) = store.outbox_batch(NOW, 100).await.unwrap();
    assert!(store.commit_outbox(cursor, entries[1].id, &[]).await.unwrap());

    // A transaction that rolls back leaves a gap for good: passed after the wait.
    let mut gone = other.begin().await.unwrap();
    sqlx::query(insert)
        .bind(org.id.0)
        .bind(NOW)
        .bind("gone")
        .execute(&mut *gone)
        .await
        .unwrap();
    gone.rollback().await.unwrap();
    store.append_audit_entries(&[entry(org.id, "after")]).await.unwrap();
    assert!(targets(&store, NOW).await.is_empty(), "not at once");
    assert_eq!(targets(&store, NOW + GAP_WAIT).await, ["after"]);
}
