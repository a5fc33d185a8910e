//! Rotation with a grace period, expiry and lifetime policies, and where keys are
//! used from. Time is the test's clock: nothing sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, TestApp};
use serde_json::json;
use std::net::SocketAddr;
use tower::ServiceExt;

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;

async fn viewer(app: &TestApp, key: &str) -> common::Reply {
    app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.to_owned()), None)
        .await
}

async fn rotate(app: &TestApp, auth: &Auth, key_id: &str, grace: &str) -> common::Reply {
    app.request(
        Method::POST,
        &format!("/api/v1/api-keys/{key_id}/rotate"),
        auth,
        Some(json!({ "grace": grace })),
    )
    .await
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_its_grace_period_then_it_stops_by_itself() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (old_key, old_id) = app.create_key(&admin, "ci").await;

    let r = rotate(&app, &admin, &old_id, "1h").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let new_key = r.body["key"].as_str().unwrap().to_owned();
    let new_id = r.body["key_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["name"], "ci", "same name");
    assert_eq!(r.body["rotated_from"], old_id.as_str());
    assert_eq!(
        r.body["previous_expires_at"], "2025-11-26T20:00:00Z",
        "one hour after the rotation"
    );

    assert_eq!(
        viewer(&app, &old_key).await.status,
        StatusCode::OK,
        "both work during the grace"
    );
    assert_eq!(viewer(&app, &new_key).await.status, StatusCode::OK);
    let old = app
        .request(Method::GET, &format!("/api/v1/api-keys/{old_id}"), &admin, None)
        .await;
    assert_eq!(old.body["rotated_to"], new_id.as_str());
    assert_eq!(old.body["status"], "active");
    assert_eq!(
        rotate(&app, &admin, &old_id, "1h").await.code(),
        "rotation_in_progress",
        "one rotation at a time"
    );

    app.clock.advance_ms(HOUR - 1);
    assert_eq!(viewer(&app, &old_key).await.status, StatusCode::OK);
    app.clock.advance_ms(1);
    let refused = viewer(&app, &old_key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.code(), "api_key_expired", "a distinct code for its holder");
    assert_eq!(viewer(&app, &new_key).await.status, StatusCode::OK);
    let old = app
        .request(Method::GET, &format!("/api/v1/api-keys/{old_id}"), &admin, None)
        .await;
    assert_eq!(old.body["status"], "expired");

    // Finishing the rotation deletes the old key; the new one stands alone.
    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{old_id}"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let new = app
        .request(Method::GET, &format!("/api/v1/api-keys/{new_id}"), &admin, None)
        .await;
    assert_eq!(new.body["rotated_from"], old_id.as_str());
    assert!(new.body["rotated_to"].is_null());
    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=api_key.rotated",
            &admin,
            None,
        )
        .await;
    assert_eq!(audit.body["items"][0]["detail"]["to"], new_id.as_str());
    assert_eq!(audit.body["items"][0]["detail"]["grace"], "1h");
}

#[tokio::test]
async fn the_grace_period_is_the_users_choice() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (now_key, now_id) = app.create_key(&admin, "a").await;
    assert_eq!(rotate(&app, &admin, &now_id, "now").await.status, StatusCode::CREATED);
    assert_eq!(viewer(&app, &now_key).await.code(), "api_key_expired", "now means now");

    let (kept, kept_id) = app.create_key(&admin, "b").await;
    assert_eq!(
        rotate(&app, &admin, &kept_id, "until_deleted").await.status,
        StatusCode::CREATED
    );
    let (week, week_id) = app.create_key(&admin, "c").await;
    assert_eq!(rotate(&app, &admin, &week_id, "7d").await.status, StatusCode::CREATED);
    let (day, day_id) = app.create_key(&admin, "d").await;
    assert_eq!(rotate(&app, &admin, &day_id, "24h").await.status, StatusCode::CREATED);
    app.clock.advance_ms(DAY);
    assert_eq!(viewer(&app, &day).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(viewer(&app, &week).await.status, StatusCode::OK);
    app.clock.advance_ms(6 * DAY);
    assert_eq!(viewer(&app, &week).await.status, StatusCode::UNAUTHORIZED);
    app.clock.advance_ms(365 * DAY);
    assert_eq!(viewer(&app, &kept).await.status, StatusCode::OK, "until deleted");
    let admin = app.admin().await; // the clock outran the session

    let r = rotate(&app, &admin, &kept_id, "forever").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    let r = rotate(&app, &admin, "wandb_v1_000000000000000000000000000", "1h").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_those_who_may_delete_a_key_may_rotate_it() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    let (_, admin_key) = app.create_key(&admin, "mine").await;
    assert_eq!(
        rotate(&app, &dev, &admin_key, "1h").await.status,
        StatusCode::NOT_FOUND,
        "a member cannot even see another's key"
    );
    let (_, dev_key) = app.create_key(&dev, "laptop").await;
    let r = rotate(&app, &admin, &dev_key, "1h").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an org admin may delete a member's key but not create personal keys for them: {}",
        r.text
    );
    assert_eq!(rotate(&app, &dev, &dev_key, "1h").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn keys_expire_when_asked_and_within_the_organizations_limits() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "short", "expires_in_days": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["expires_at"], "2025-11-27T19:00:00Z");
    let short = r.body["key"].as_str().unwrap().to_owned();
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "dated", "expires_at": "2025-12-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.body["expires_at"], "2025-12-01T00:00:00Z");
    for bad in [
        json!({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}),
        json!({"name": "x", "expires_at": "tomorrow"}),
        json!({"name": "x", "expires_in_days": 0}),
        json!({"name": "x", "expires_in_days": 36_501}),
        json!({"name": "x", "expires_in_days": 3, "expires_at": "2025-12-01T00:00:00Z"}),
    ] {
        let r = app
            .request(Method::POST, "/api/v1/api-keys", &admin, Some(bad.clone()))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_value"),
            "{bad}"
        );
    }

    // Expiring soon: listed with a filter.
    let soon = app
        .request(Method::GET, "/api/v1/api-keys?expiring_within_days=2", &admin, None)
        .await;
    let names: Vec<&str> = soon.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["short"]);
    let r = app
        .request(Method::GET, "/api/v1/api-keys?expiring_within_days=36501", &admin, None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"));

    app.clock.advance_ms(DAY);
    assert_eq!(viewer(&app, &short).await.code(), "api_key_expired");
    let admin = app.admin().await; // the clock outran the session

    // An organization policy caps lifetimes and gives keys without one the maximum.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &admin,
            Some(json!({"max_user_key_lifetime_days": 30, "max_service_account_key_lifetime_days": 90})),
        )
        .await;
    assert_eq!(r.body["max_user_key_lifetime_days"], 30, "{}", r.text);
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "capped"})),
        )
        .await;
    assert_eq!(r.body["expires_at"], "2025-12-27T19:00:00Z", "30 days from now");
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "long", "expires_in_days": 31})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "expiry_exceeds_policy"));
    assert!(r.text.contains("30 days"));
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &admin,
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "bot key", "owner": "bot"})),
        )
        .await;
    assert_eq!(
        r.body["expires_at"], "2026-02-25T19:00:00Z",
        "service accounts: 90 days"
    );
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &admin,
            Some(json!({"max_user_key_lifetime_days": 100000})),
        )
        .await;
    assert_eq!(r.code(), "invalid_value");
}

#[tokio::test]
async fn a_key_remembers_its_recent_sources_under_concurrent_use() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, key_id) = app.create_key(&admin, "shared").await;
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let key = key.clone();
        // 16 addresses x 4 user agents = 16 distinct sources.
        let connection = app.connection(SocketAddr::from(([10, 0, 0, i % 16], 5000)));
        tasks.push(tokio::spawn(async move {
            let request = Request::builder()
                .uri("/api/v1/viewer")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::USER_AGENT, format!("wandb/0.31 worker-{}", i % 4))
                .body(Body::empty())
                .unwrap();
            connection.oneshot(request).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    // Visible before the flush (from memory), then written in one batch.
    let before = app
        .request(Method::GET, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
        .await;
    assert!(before.body["last_used_at"].is_string());
    app.state.usage.flush(app.store.as_ref()).await.unwrap();
    app.clock.advance_ms(1000);
    let r = app
        .request(Method::GET, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
        .await;
    let sources = r.body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 10, "bounded to the most recent 10: {}", r.text);
    for s in sources {
        let address = s["address"].as_str().unwrap();
        let agent = s["user_agent"].as_str().unwrap();
        let i: u8 = address.trim_start_matches("10.0.0.").parse().unwrap();
        assert_eq!(
            agent,
            format!("wandb/0.31 worker-{}", i % 4),
            "address and agent stay paired"
        );
        assert!(s["first_seen"].is_string() && s["last_seen"].is_string());
    }
    // A later use from a new place comes first.
    let mut request = Request::builder()
        .uri("/api/v1/viewer")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::USER_AGENT, "curl/8")
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 168, 1, 7], 1))));
    assert_eq!(app.send(request).await.status, StatusCode::OK);
    app.state.usage.flush(app.store.as_ref()).await.unwrap();
    let r = app
        .request(Method::GET, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
        .await;
    assert_eq!(r.body["sources"][0]["address"], "192.168.1.7");
    assert_eq!(r.body["sources"][0]["user_agent"], "curl/8");
    let list = app.request(Method::GET, "/api/v1/api-keys", &admin, None).await;
    assert!(list.body["items"][0].get("sources").is_none(), "lists stay small");
}
