//! Revocation across replicas: two Keysmith instances with their own caches on one
//! throwaway PostgreSQL database, and one instance on SQLite. A deleted key, a
//! deactivated owner or an expired rotation stops working on every replica; a replica
//! that loses its notification connection stops trusting its cache; the replica that
//! deleted a key never accepts it after the delete answered.
//!
//! Waiting for another replica to hear a notice polls with a generous deadline: these
//! tests check that it happens, the benchmark measures how fast (docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, TestApp};
use keysmith_store::PostgresStore;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn status(app: &TestApp, key: &str) -> StatusCode {
    app.request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(key.to_owned()), None)
        .await
        .status
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Replica `a` bootstraps the database; `b` joins it and listens.
async fn two_replicas(url: &str) -> (TestApp, TestApp) {
    let a = TestApp::with_store(Arc::new(PostgresStore::open(url).await.unwrap()), None).await;
    let b = TestApp::joining(Arc::new(PostgresStore::open(url).await.unwrap()), a.org.clone()).await;
    a.state.start_fanout();
    b.state.start_fanout();
    eventually("listening", async || a.state.cache.is_live() && b.state.cache.is_live()).await;
    (a, b)
}

#[tokio::test]
async fn revocations_reach_every_replica() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    let (key, key_id) = a.create_key(&admin_a, "shared").await;
    // A fill is dropped when any invalidation arrives during its read (here, maybe
    // the notice of this very key's creation), so caching may take another try.
    eventually("b serving the key from its cache", async || {
        status(&b, &key).await == StatusCode::OK && !b.state.cache.is_empty()
    })
    .await;

    // Delete on A: B rejects.
    let r = a
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &admin_a, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status(&a, &key).await,
        StatusCode::UNAUTHORIZED,
        "at once on the deleting replica"
    );
    eventually("b rejecting the deleted key", async || {
        status(&b, &key).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // The same for a legacy key, which B finds in its cache by the key's digest.
    let legacy = keysmith_core::generate_legacy(None).unwrap();
    a.import_key(&legacy, "admin").await;
    let legacy_key = legacy.plaintext.expose().to_owned();
    assert_eq!(status(&b, &legacy_key).await, StatusCode::OK);
    eventually("b serving the legacy key from its cache", async || {
        let hits = b.state.metrics.cache_hits.get();
        status(&b, &legacy_key).await == StatusCode::OK && b.state.metrics.cache_hits.get() > hits
    })
    .await;
    let r = a
        .request(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", legacy.key_id),
            &admin_a,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually("b rejecting the deleted legacy key", async || {
        status(&b, &legacy_key).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // Deactivate a user on A: B rejects their keys.
    a.add_user("dev").await;
    let dev = Auth::Session(a.sign_in("dev", common::USER_PASSWORD).await);
    let (dev_key, _) = a.create_key(&dev, "laptop").await;
    assert_eq!(status(&b, &dev_key).await, StatusCode::OK);
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/dev",
            &admin_a,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually("b rejecting a deactivated user's key", async || {
        status(&b, &dev_key).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // A rotation with grace "now" on B: A rejects the old key.
    let (old, old_id) = a.create_key(&admin_a, "rotated").await;
    assert_eq!(status(&a, &old).await, StatusCode::OK);
    let admin_b = b.admin().await;
    let r = b
        .request(
            Method::POST,
            &format!("/api/v1/api-keys/{old_id}/rotate"),
            &admin_b,
            Some(json!({"grace": "now"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    eventually("a rejecting the rotated-out key", async || {
        status(&a, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // The lag is measured and exposed.
    let metrics = b.request(Method::GET, "/metrics", &Auth::None, None).await;
    assert!(metrics.text.contains("keysmith_revocation_fanout_lag_seconds_count"));
    assert!(metrics.text.contains("keysmith_revocation_fanout_connected 1"));
}

#[tokio::test]
async fn a_replica_that_loses_its_notification_connection_clears_its_cache_and_still_rejects() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    let (key, key_id) = a.create_key(&admin_a, "cached on b").await;
    eventually("b caching the key", async || {
        status(&b, &key).await == StatusCode::OK && !b.state.cache.is_empty()
    })
    .await;

    // Cut every notification connection (both replicas' listeners).
    let killed = cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{}'",
                keysmith_store::LISTENER_APPLICATION_NAME
            ),
        )
        .unwrap();
    assert_eq!(killed.trim(), "2", "both listeners were connected");
    // The fan-out marks the cache unusable, then clears it: wait for both (a check
    // between the two steps saw a cache not yet cleared, though no longer used).
    eventually("b noticing the lost connection and clearing its cache", async || {
        !b.state.cache.is_live() && b.state.cache.is_empty()
    })
    .await;

    // Deleted while b cannot hear: b must not trust anything it cached before.
    let r = a
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &admin_a, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status(&b, &key).await,
        StatusCode::UNAUTHORIZED,
        "read from the database"
    );

    eventually("b listening again", async || b.state.cache.is_live()).await;
    assert_eq!(status(&b, &key).await, StatusCode::UNAUTHORIZED);
    let (fresh, _) = a.create_key(&admin_a, "after").await;
    assert_eq!(status(&b, &fresh).await, StatusCode::OK);
    let metrics = b.request(Method::GET, "/metrics", &Auth::None, None).await;
    assert!(
        metrics.text.contains("keysmith_revocation_fanout_reconnects_total 1"),
        "{}",
        metrics.text
    );
}

/// Verifications run without pause on the replica that deletes the key; once the
/// delete has answered, none that starts afterwards may succeed, whatever the cache
/// was doing at that moment.
async fn no_acceptance_after_the_delete_answered(app: &TestApp) {
    let admin = app.admin().await;
    for round in 0..20 {
        let (key, key_id) = app.create_key(&admin, &format!("round {round}")).await;
        assert_eq!(status(app, &key).await, StatusCode::OK, "cached");
        let deleted = Arc::new(AtomicBool::new(false));
        let late_accepts = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            // Their refusals after the delete count against their own address, so
            // the test's own requests (from common::PEER) are never held back.
            let connection = app.connection(std::net::SocketAddr::from(([127, 0, 0, 2], 40000)));
            let (key, deleted, late_accepts) = (key.clone(), deleted.clone(), late_accepts.clone());
            workers.push(tokio::spawn(async move {
                for _ in 0..60 {
                    let after_delete = deleted.load(Ordering::SeqCst);
                    let request = axum::http::Request::builder()
                        .uri("/api/v1/forward-auth")
                        .header("authorization", format!("Bearer {key}"))
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let accepted = tower::ServiceExt::oneshot(connection.clone(), request)
                        .await
                        .unwrap()
                        .status()
                        == StatusCode::OK;
                    if after_delete && accepted {
                        late_accepts.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        tokio::task::yield_now().await;
        let r = app
            .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        deleted.store(true, Ordering::SeqCst);
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(late_accepts.load(Ordering::SeqCst), 0, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deleting_replica_never_accepts_a_key_after_the_delete_answered_postgres() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, _b) = two_replicas(&url).await;
    no_acceptance_after_the_delete_answered(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deleting_replica_never_accepts_a_key_after_the_delete_answered_sqlite() {
    let app = TestApp::sqlite().await;
    assert!(
        app.state.cache.is_live(),
        "one process owns a SQLite file: cache on from the start"
    );
    no_acceptance_after_the_delete_answered(&app).await;
}

#[tokio::test]
async fn a_postgres_replica_does_not_trust_its_cache_before_it_listens() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let a = TestApp::with_store(Arc::new(PostgresStore::open(&url).await.unwrap()), None).await;
    let admin = a.admin().await;
    let (key, _) = a.create_key(&admin, "k").await;
    assert_eq!(
        status(&a, &key).await,
        StatusCode::OK,
        "verification works, from the database"
    );
    assert!(a.state.cache.is_empty(), "not cached while not listening");
}

/// A role change on one replica reaches the other's caller cache like a revocation:
/// an org admin demoted on A is refused the admin's pages on B, and a team admin
/// removed from the team on A no longer sees the team's service-account keys on B.
#[tokio::test]
async fn a_demotion_on_one_replica_takes_effect_on_the_other() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    a.add_user("ada").await;
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/ada",
            &admin_a,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ada = Auth::Session(a.sign_in("ada", common::USER_PASSWORD).await);
    let (ada_key, _) = a.create_key(&ada, "ada's").await;
    let users = async |app: &TestApp| {
        app.request(
            Method::GET,
            "/api/v1/orgs/default/users",
            &Auth::Bearer(ada_key.clone()),
            None,
        )
        .await
        .status
    };
    eventually("b serving ada as an admin from its caller cache", async || {
        users(&b).await == StatusCode::OK && !b.state.app.callers.is_empty()
    })
    .await;
    let hits = b.state.app.callers.counters().hits.get();
    assert_eq!(users(&b).await, StatusCode::OK);
    assert!(
        b.state.app.callers.counters().hits.get() > hits,
        "warm: the caller came from the cache"
    );

    let r = a
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/ada",
            &admin_a,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        users(&a).await,
        StatusCode::FORBIDDEN,
        "at once on the replica that demoted her"
    );
    eventually("b refusing the demoted admin", async || {
        users(&b).await == StatusCode::FORBIDDEN
    })
    .await;

    // A team role, too.
    let r = a
        .request(
            Method::POST,
            "/api/v1/orgs/default/teams",
            &admin_a,
            Some(json!({"name": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = a
        .request(
            Method::PUT,
            "/api/v1/orgs/default/teams/vision/members/ada",
            &admin_a,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = a
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &admin_a,
            Some(json!({"name": "vision-ci", "team": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = a
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin_a,
            Some(json!({"name": "ci", "owner": "vision-ci"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sa_keys = async |app: &TestApp| {
        app.request(
            Method::GET,
            "/api/v1/api-keys?owner=vision-ci",
            &Auth::Bearer(ada_key.clone()),
            None,
        )
        .await
        .body["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    eventually("b showing the team admin the team's service-account key", async || {
        sa_keys(&b).await == 1
    })
    .await;
    let r = a
        .request(
            Method::DELETE,
            "/api/v1/orgs/default/teams/vision/members/ada",
            &admin_a,
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    eventually("b hiding the team's keys from the removed team admin", async || {
        sa_keys(&b).await == 0
    })
    .await;
}

/// Sessions are cached like keys and callers, and end like them on every replica: a
/// cookie that replica B serves from memory stops working there once the user signs
/// out on A, and once an admin deactivates the user on A.
#[tokio::test]
async fn a_sign_out_or_a_deactivation_on_one_replica_ends_the_session_on_the_other() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    a.add_user("ada").await;
    let viewer = async |app: &TestApp, session: &common::Session| {
        app.request(Method::GET, "/api/v1/viewer", &Auth::Session(session.clone()), None)
            .await
            .status
    };
    let warm_on_b = async |session: &common::Session| {
        eventually("b serving the session from its cache", async || {
            viewer(&b, session).await == StatusCode::OK && !b.state.app.sessions.is_empty()
        })
        .await;
        let hits = b.state.app.sessions.counters().hits.get();
        assert_eq!(viewer(&b, session).await, StatusCode::OK);
        assert!(
            b.state.app.sessions.counters().hits.get() > hits,
            "warm: the session came from the cache"
        );
    };

    let first = a.sign_in("ada", common::USER_PASSWORD).await;
    warm_on_b(&first).await;
    let r = a
        .request(Method::DELETE, "/api/v1/session", &Auth::Session(first.clone()), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        viewer(&a, &first).await,
        StatusCode::UNAUTHORIZED,
        "at once on the replica that signed out"
    );
    eventually("b refusing the signed-out session", async || {
        viewer(&b, &first).await == StatusCode::UNAUTHORIZED
    })
    .await;

    let second = a.sign_in("ada", common::USER_PASSWORD).await;
    warm_on_b(&second).await;
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/ada",
            &admin_a,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(viewer(&a, &second).await, StatusCode::UNAUTHORIZED);
    eventually("b refusing the deactivated user's session", async || {
        viewer(&b, &second).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

/// A federated session (an access token a JWT was exchanged for) is a key like any
/// other across replicas: given on A, served from B's cache, ended on B when it is
/// deleted on A, and ended everywhere when its owner is deactivated.
#[tokio::test]
async fn a_federated_session_given_on_one_replica_ends_on_the_other() {
    use keysmith_pgtest::issuer::{LoopbackIssuer, Signer};
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    a.add_user("alice").await;
    let signer = Signer::new("k1");
    let issuer = LoopbackIssuer::start(&[&signer]);
    let r = a
        .request(
            Method::POST,
            "/api/v1/orgs/default/jwt-issuers",
            &admin_a,
            Some(json!({"issuer": issuer.url})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let exchange = async |app: &TestApp| {
        let jwt = signer.sign(&json!({
            "iss": issuer.url, "sub": "alice@example.com", "aud": "default",
            "exp": common::START_MS / 1000 + 1800,
        }));
        let grant = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt.as_str()),
        ];
        let r = common::post(app, None, "/oidc/token", &grant).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    };

    // Given on A, deleted on A: B stops serving it from its cache.
    let token = exchange(&a).await;
    eventually("b serving the session from its cache", async || {
        status(&b, &token).await == StatusCode::OK && !b.state.cache.is_empty()
    })
    .await;
    let alice_a = Auth::Session(a.sign_in("alice", common::USER_PASSWORD).await);
    let listed = a.request(Method::GET, "/api/v1/api-keys", &alice_a, None).await;
    let key_id = listed.body["items"][0]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(listed.body["items"][0]["kind"], "federated_session");
    let r = a
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &alice_a, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually("b rejecting the deleted session", async || {
        status(&b, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // Given on B, warm on both; alice deactivated on A: refused on both.
    let token = exchange(&b).await;
    eventually("both serving the new session", async || {
        status(&a, &token).await == StatusCode::OK && status(&b, &token).await == StatusCode::OK
    })
    .await;
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/alice",
            &admin_a,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(status(&a, &token).await, StatusCode::UNAUTHORIZED, "at once on A");
    eventually("b rejecting the deactivated owner's session", async || {
        status(&b, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

/// A user deactivated through SCIM on one replica (issue 16) is refused on the other:
/// SCIM's `active: false` takes the same fan-out as every deactivation, for keys and
/// sign-in sessions alike.
#[tokio::test]
async fn a_deactivation_through_scim_on_one_replica_ends_keys_and_sessions_on_the_other() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let (a, b) = two_replicas(&url).await;
    let admin_a = a.admin().await;
    let (admin_key, _) = a.create_key(&admin_a, "scim").await;
    let scim = Auth::Bearer(admin_key);
    a.add_user("ada").await;
    let session = a.sign_in("ada", common::USER_PASSWORD).await;
    let (key, _) = a.create_key(&Auth::Session(session.clone()), "ada").await;
    eventually("b serving ada's key from its cache", async || {
        status(&b, &key).await == StatusCode::OK && !b.state.cache.is_empty()
    })
    .await;
    let viewer = async |app: &TestApp| {
        app.request(Method::GET, "/api/v1/viewer", &Auth::Session(session.clone()), None)
            .await
            .status
    };
    assert_eq!(viewer(&b).await, StatusCode::OK);

    let found = a
        .request(
            Method::GET,
            "/scim/v2/Users?filter=userName%20eq%20%22ada%22",
            &scim,
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let id = found.body["Resources"][0]["id"].as_str().unwrap().to_owned();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    });
    let r = a
        .request(Method::PATCH, &format!("/scim/v2/Users/{id}"), &scim, Some(patch))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        status(&a, &key).await,
        StatusCode::UNAUTHORIZED,
        "at once on the replica that deactivated"
    );
    eventually("b refusing the deactivated user's key", async || {
        status(&b, &key).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eventually("b refusing the deactivated user's session", async || {
        viewer(&b).await == StatusCode::UNAUTHORIZED
    })
    .await;
}
