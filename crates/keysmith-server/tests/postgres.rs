//! The personal-key lifecycle over HTTP on PostgreSQL, end to end (the store's own
//! conformance suite covers each operation on both backends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, TestApp};
use keysmith_store::PostgresStore;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn the_key_lifecycle_works_on_postgres() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let store = PostgresStore::open(&cluster.create_database().unwrap()).await.unwrap();
    let app = TestApp::with_store(Arc::new(store), None).await;
    let auth = app.admin().await;
    let (key, key_id) = app.create_key(&auth, "pg").await;
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Basic(key.clone()), None)
        .await;
    assert_eq!(r.body["username"], "admin");
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/api-keys/{key_id}"),
            &auth,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(r.body["name"], "renamed");
    let r = app.request(Method::GET, "/api/v1/api-keys", &auth, None).await;
    assert_eq!(r.body["items"][0]["key_id"], key_id.as_str());
    app.state.usage.flush(app.store.as_ref()).await.unwrap();
    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &auth, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Basic(key), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.request(Method::GET, "/readyz", &Auth::None, None).await.status,
        StatusCode::OK
    );
}

/// A primary that turns read-only (a failover to a standby, an operator's
/// `default_transaction_read_only`) is not ready: it could verify keys but would
/// answer 500 to every change.
#[tokio::test]
async fn readiness_fails_while_the_database_refuses_writes() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let store = PostgresStore::open(&url).await.unwrap();
    let app = TestApp::with_store(Arc::new(store), None).await;
    let ready = || async { app.request(Method::GET, "/readyz", &Auth::None, None).await };
    assert_eq!(ready().await.status, StatusCode::OK);

    // ALTER SYSTEM cannot share a transaction with anything, so two calls.
    cluster
        .psql(&db, "ALTER SYSTEM SET default_transaction_read_only = on")
        .unwrap();
    cluster.psql(&db, "SELECT pg_reload_conf()").unwrap();
    let mut refused = None;
    for _ in 0..100 {
        let r = ready().await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let refused = refused.expect("/readyz stayed 200 while the database refused writes");
    assert_eq!(refused.code(), "not_ready");
    assert!(refused.text.contains("refuses writes"), "{}", refused.text);

    // ALTER SYSTEM cannot share a transaction with anything, so two calls.
    cluster
        .psql(&db, "ALTER SYSTEM RESET default_transaction_read_only")
        .unwrap();
    cluster.psql(&db, "SELECT pg_reload_conf()").unwrap();
    let mut back = false;
    for _ in 0..100 {
        if ready().await.status == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(back, "/readyz did not recover once writes were allowed again");
}
