//! What the application's tests share: users to create, a caller as a door would load
//! one, and a store: SQLite in a temporary directory, or a database of a throwaway
//! PostgreSQL cluster.

#![allow(dead_code, clippy::unwrap_used)]

use keysmith_app::{App, AuthMethod, Caller, Principal};
use keysmith_core::role::PrincipalKind;
use keysmith_store::{NewUser, SqliteStore, Store, UserRef};
use std::sync::Arc;

/// A user to create, without a password.
pub fn new_user(username: &str, email: Option<&str>) -> NewUser {
    NewUser {
        kind: PrincipalKind::User,
        username: username.into(),
        email: email.map(str::to_owned),
        password_hash: None,
    }
}

/// `username` as the caller of a request signed in with a session.
pub async fn caller(app: &App, username: &str) -> Caller {
    let user = app.store.find_user_by_username(username).await.unwrap().unwrap();
    let principal = Principal {
        user: UserRef {
            id: user.id,
            kind: user.kind,
            username: user.username,
        },
        via: AuthMethod::Session,
    };
    Caller::load(app, principal).await.unwrap()
}

/// A SQLite store in a temporary directory, which lives as long as the directory.
pub async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    (Arc::new(store), dir)
}

/// A store on a new database of `cluster`.
pub async fn postgres_store(cluster: &keysmith_pgtest::PgCluster) -> Arc<dyn Store> {
    let url = cluster.create_database().unwrap();
    Arc::new(keysmith_store::PostgresStore::open(&url).await.unwrap())
}

/// A v1 key of `owner` as a store would hold it: admin scope, no list, no limit.
pub fn new_key(
    owner: keysmith_core::UserId,
    created_by: keysmith_core::UserId,
    name: &str,
    created_at: i64,
    expires_at: Option<i64>,
) -> keysmith_store::NewKey {
    let k = keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default()).unwrap();
    keysmith_store::NewKey {
        key_id: k.key_id,
        digest: k.digest,
        format: keysmith_store::KeyFormat::V1,
        display: k.display,
        name: name.into(),
        owner,
        created_by: Some(created_by),
        created_at,
        expires_at,
        rotated_from: None,
        federated_issuer: None,
        scope: keysmith_core::KeyScope::Admin,
        allowed_networks: None,
        requests_per_minute: None,
    }
}
