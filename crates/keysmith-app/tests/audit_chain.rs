//! The audit log's hash chain, on SQLite and on PostgreSQL: sealing in order, by one
//! replica at a time when two race; `verify` intact after sealing, and finding each kind
//! of tampering done straight in the database: a changed field, a removed entry, a
//! removed newest entry, an added entry, a hash cleared, the chain rewritten without
//! its head.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::new_user;
use keysmith_app::audit_chain::{self, Verdict};
use keysmith_app::{App, ManualClock};
use keysmith_store::{NewAuditEntry, Store, UserRef};
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;

/// Raw SQL past the store, as someone with the database's password would do it.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn try_run(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
        }
    }

    async fn run(&self, sql: &str) -> u64 {
        self.try_run(sql).await.unwrap()
    }

    /// What the database's owner can do and Keysmith never does: lift the triggers that
    /// keep the audit log append-only.
    async fn lift_triggers(&self) {
        let statements: &[&str] = match self {
            Raw::Sqlite(_) => &["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
            Raw::Postgres(_) => &["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"],
        };
        for sql in statements {
            self.run(sql).await;
        }
    }
}

fn entry(org: keysmith_core::OrgId, n: usize) -> NewAuditEntry {
    NewAuditEntry {
        org,
        at: NOW + n as i64,
        actor: Some(UserRef {
            id: keysmith_core::UserId(1),
            kind: keysmith_core::role::PrincipalKind::User,
            username: "admin".into(),
        }),
        action: "api_key.created".into(),
        target_kind: "api_key".into(),
        target: format!("key-{n}"),
        source_address: n.is_multiple_of(2).then(|| "192.0.2.7".to_owned()),
        detail: n.is_multiple_of(3).then(|| format!(r#"{{"name":"key {n}"}}"#)),
    }
}

/// A store with `admin`'s organization and `n` more entries after the bootstrap's.
async fn with_entries(store: &Arc<dyn Store>, n: usize) {
    let (org, _) = store
        .bootstrap("default", new_user("admin", None), NOW)
        .await
        .unwrap()
        .unwrap();
    let entries: Vec<NewAuditEntry> = (0..n).map(|i| entry(org.id, i)).collect();
    store.append_audit_entries(&entries).await.unwrap();
}

fn app(store: &Arc<dyn Store>) -> App {
    App::new(
        store.clone(),
        Arc::new(ManualClock::new(NOW + 3_600_000)),
        keysmith_app::Settings::default(),
        Arc::default(),
    )
}

async fn count(store: &Arc<dyn Store>) -> i64 {
    let (mut after, mut n) = (0, 0);
    loop {
        let (next, entries) = store.audit_after(after, i64::MAX, 1000).await.unwrap();
        if entries.is_empty() {
            return n;
        }
        n += entries.len() as i64;
        after = next;
    }
}

fn broken_at(verdict: &Verdict) -> i64 {
    match verdict {
        Verdict::Broken { entry, .. } => *entry,
        Verdict::Intact { .. } => panic!("the chain should be broken: {verdict:?}"),
    }
}

async fn run_all(store: Arc<dyn Store>, raw: Raw) {
    with_entries(&store, 30).await;
    let total = count(&store).await;
    assert!(total >= 30);

    // Nothing sealed yet: intact, all unsealed, the head at the start.
    assert_eq!(
        audit_chain::verify(store.as_ref()).await.unwrap(),
        Verdict::Intact {
            sealed: 0,
            unsealed: total as u64,
            head_id: 0,
            head_hash: audit_chain::START.to_owned()
        }
    );
    let app = app(&store);
    assert_eq!(audit_chain::seal(&app).await.unwrap(), total as u64);
    assert_eq!(audit_chain::seal(&app).await.unwrap(), 0, "nothing is sealed twice");
    let Verdict::Intact {
        sealed,
        unsealed,
        head_id,
        head_hash,
    } = audit_chain::verify(store.as_ref()).await.unwrap()
    else {
        panic!("a sealed chain verifies");
    };
    assert_eq!((sealed, unsealed, head_id), (total as u64, 0, total));
    // The head is the last entry's hash, and every hash follows from the one before.
    let (_, entries) = store.audit_after(0, i64::MAX, 1000).await.unwrap();
    assert_eq!(entries.last().unwrap().chain_hash.as_deref(), Some(head_hash.as_str()));
    let mut previous = audit_chain::START.to_owned();
    for e in &entries {
        previous = audit_chain::entry_hash(&previous, e);
        assert_eq!(e.chain_hash.as_deref(), Some(previous.as_str()));
    }

    // New entries: sealed after the head, the head moves.
    let org = entries[0].org;
    store.append_audit_entries(&[entry(org, 100)]).await.unwrap();
    assert!(matches!(
        audit_chain::verify(store.as_ref()).await.unwrap(),
        Verdict::Intact { unsealed: 1, .. }
    ));
    assert_eq!(audit_chain::seal(&app).await.unwrap(), 1);
    let total = total + 1;

    // Sealing is the one change the triggers allow: a hash set twice, a field changed
    // or an entry removed are refused.
    for refused in [
        "UPDATE audit_log SET chain_hash = 'ff' WHERE id = 3".to_owned(),
        "UPDATE audit_log SET target = 'x' WHERE id = 3".to_owned(),
        format!("UPDATE audit_log SET target = 'x' WHERE id = {total}"),
        "DELETE FROM audit_log WHERE id = 3".to_owned(),
    ] {
        let err = raw.try_run(&refused).await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{refused}: {err}");
    }

    // Each kind of tampering past the triggers, found at the right entry, then undone by
    // restoring.
    raw.lift_triggers().await;
    let id = 10;
    let changed = raw
        .run(&format!("UPDATE audit_log SET target = 'someone else' WHERE id = {id}"))
        .await;
    assert_eq!(changed, 1);
    let v = audit_chain::verify(store.as_ref()).await.unwrap();
    assert_eq!(broken_at(&v), id, "a changed field breaks at its entry");
    let restored = &entries[(id - 1) as usize];
    raw.run(&format!(
        "UPDATE audit_log SET target = '{}' WHERE id = {id}",
        restored.target
    ))
    .await;
    assert!(matches!(
        audit_chain::verify(store.as_ref()).await.unwrap(),
        Verdict::Intact { .. }
    ));

    // An address removed.
    raw.run("UPDATE audit_log SET source_address = NULL WHERE id = 11")
        .await;
    assert_eq!(broken_at(&audit_chain::verify(store.as_ref()).await.unwrap()), 11);
    raw.run("UPDATE audit_log SET source_address = '192.0.2.7' WHERE id = 11")
        .await;
    assert!(matches!(
        audit_chain::verify(store.as_ref()).await.unwrap(),
        Verdict::Intact { .. }
    ));

    // A hash cleared: the entry looks unsealed, but it is older than the head.
    raw.run("UPDATE audit_log SET chain_hash = NULL WHERE id = 5").await;
    assert_eq!(broken_at(&audit_chain::verify(store.as_ref()).await.unwrap()), 5);
    raw.run(&format!(
        "UPDATE audit_log SET chain_hash = '{}' WHERE id = 5",
        entries[4].chain_hash.as_deref().unwrap()
    ))
    .await;

    assert!(matches!(
        audit_chain::verify(store.as_ref()).await.unwrap(),
        Verdict::Intact { .. }
    ));

    // The newest entry removed: the head names an entry that is gone.
    raw.run(&format!("DELETE FROM audit_log WHERE id = {total}")).await;
    assert_eq!(broken_at(&audit_chain::verify(store.as_ref()).await.unwrap()), total);

    // An entry in the middle removed: the next one no longer follows.
    raw.run("DELETE FROM audit_log WHERE id = 20").await;
    assert_eq!(broken_at(&audit_chain::verify(store.as_ref()).await.unwrap()), 21);
}

#[tokio::test]
async fn sqlite_chain_seals_verifies_and_finds_tampering() {
    let (store, dir) = common::sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    run_all(store, raw).await;
}

#[tokio::test]
async fn postgres_chain_seals_verifies_and_finds_tampering() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let store: Arc<dyn Store> = Arc::new(keysmith_store::PostgresStore::open(&url).await.unwrap());
    let raw = Raw::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
    run_all(store, raw).await;
}

/// Two replicas sealing the same entries at the same moment: each entry is sealed once,
/// and the chain is whole.
#[tokio::test]
async fn postgres_two_replicas_seal_at_once() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let a: Arc<dyn Store> = Arc::new(keysmith_store::PostgresStore::open(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(keysmith_store::PostgresStore::open(&url).await.unwrap());
    with_entries(&a, 1200).await;
    let total = count(&a).await as u64;
    let (app_a, app_b) = (app(&a), app(&b));
    let (sa, sb) = tokio::join!(audit_chain::seal(&app_a), audit_chain::seal(&app_b));
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    // Batches of 500: what one did the other did not, and together everything, with
    // what a loser's next round picks up.
    let rest = audit_chain::seal(&app_a).await.unwrap();
    assert_eq!(sa + sb + rest, total, "each entry sealed once ({sa} + {sb} + {rest})");
    assert!(matches!(
        audit_chain::verify(a.as_ref()).await.unwrap(),
        Verdict::Intact { sealed, unsealed: 0, .. } if sealed == total
    ));
}
