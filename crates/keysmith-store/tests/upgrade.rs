//! The data migrations of issue 17, on a database the migrations before them made, on
//! both backends: warnings given under the old 7-day notice are not given again
//! (0014), subscriptions to `api_key.expiring_soon` follow the event to
//! `api_key.expiring` (0014), and a key used before last writes were recorded counts
//! that use as a write (0016). Then the store opens the database and reads it back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keysmith_core::{KeyPrefix, generate_v1};
use keysmith_store::{Store, Webhook};
use std::borrow::Cow;
use std::sync::Arc;

/// The migrations up to and including `version`.
fn up_to(mut migrator: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    migrator.migrations = Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
    );
    migrator
}

/// Rows as version 13 stored them: a key warned about (expiring at 5,000, warned at
/// 1,000) and used at 900, a key never used, and an endpoint subscribed to the old
/// event among others.
const ROWS: &[&str] = &[
    "INSERT INTO orgs (name, created_at) VALUES ('old', 1)",
    "INSERT INTO users (kind, username, email, password_hash, active, created_at) \
     VALUES ('user', 'olga', NULL, NULL, TRUE, 1)",
    "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (1, 1, 'admin', 1)",
    "INSERT INTO webhook_endpoints (org_id, uid, url, events, description, created_at) \
     VALUES (1, 'u1', 'https://example.com/hook', 'api_key.created,api_key.expiring_soon,api_key.exposed', '', 1)",
];

/// A key row as version 13 stored it; its digest is bound as `$1`.
fn key_row(id: &str, display: &str, name: &str, used: Option<i64>, warned: Option<i64>) -> String {
    let used = used.map_or("NULL".to_owned(), |t| t.to_string());
    let warned = warned.map_or("NULL".to_owned(), |t| t.to_string());
    format!(
        "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, created_by_user_id, \
         created_at, expires_at, last_used_at, expiry_warned_at) \
         VALUES ('{id}', $1, 'v1', '{display}', '{name}', 1, 1, 1, 5000, {used}, {warned})"
    )
}

async fn check(store: Arc<dyn Store>, warned_id: &keysmith_core::KeyId, fresh_id: &keysmith_core::KeyId) {
    assert!(
        store
            .keys_expiring(0, 10_000, "expiring:7", 10)
            .await
            .unwrap()
            .iter()
            .all(|k| k.key_id != *warned_id),
        "the warning given before the upgrade is not given again"
    );
    let found: Vec<_> = store
        .keys_expiring(0, 10_000, "expiring:7", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(
        found,
        std::slice::from_ref(fresh_id),
        "the key never warned about still is"
    );
    assert!(
        store.keys_expiring(0, 10_000, "expiring:1", 10).await.unwrap().len() == 2,
        "the shorter lead time is new for both"
    );
    let hooks: Vec<Webhook> = store.list_webhooks(keysmith_core::OrgId(1)).await.unwrap();
    assert_eq!(
        hooks[0].events,
        ["api_key.created", "api_key.expiring", "api_key.exposed"],
        "the subscription follows the event"
    );
    let warned = store.get_key(warned_id).await.unwrap().unwrap();
    assert_eq!(
        warned.last_write_at,
        Some(900),
        "a use before the upgrade counts as a write"
    );
    let fresh = store.get_key(fresh_id).await.unwrap().unwrap();
    assert_eq!(fresh.last_write_at, None);
}

/// Two keys to store by hand: (key ID, display, digest).
fn keys() -> [(keysmith_core::KeyId, String, Vec<u8>); 2] {
    [0, 1].map(|_| {
        let k = generate_v1(&KeyPrefix::default()).unwrap();
        (k.key_id, k.display, k.digest.as_bytes().to_vec())
    })
}

/// Migrates `$pool` to version 13 with the migrations in `$dir` and stores the rows
/// of that version: [`ROWS`], a key warned about and a fresh one; gives their IDs.
macro_rules! version_13 {
    ($pool:expr, $dir:literal) => {{
        let pool = $pool;
        up_to(sqlx::migrate!($dir), 13).run(&pool).await.unwrap();
        for row in ROWS {
            sqlx::query(row).execute(&pool).await.unwrap();
        }
        let [warned, fresh] = keys();
        for ((id, display, digest), (name, used, when)) in [
            (&warned, ("warned", Some(900), Some(1_000))),
            (&fresh, ("fresh", None, None)),
        ] {
            let sql = key_row(id.as_str(), display, name, used, when);
            sqlx::query(&sql).bind(digest.as_slice()).execute(&pool).await.unwrap();
        }
        pool.close().await;
        (warned.0, fresh.0)
    }};
}

#[tokio::test]
async fn sqlite_databases_of_version_13_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let (warned, fresh) = version_13!(
        sqlx::SqlitePool::connect_with(options).await.unwrap(),
        "./migrations/sqlite"
    );
    let store = keysmith_store::SqliteStore::open(&path).await.unwrap();
    check(Arc::new(store), &warned, &fresh).await;
}

#[tokio::test]
async fn postgresql_databases_of_version_13_upgrade() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (warned, fresh) = version_13!(sqlx::PgPool::connect(&url).await.unwrap(), "./migrations/postgres");
    let store = keysmith_store::PostgresStore::open(&url).await.unwrap();
    check(Arc::new(store), &warned, &fresh).await;
}
