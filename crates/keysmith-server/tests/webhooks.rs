//! Webhooks: a real receiver on loopback verifies every Standard Webhooks signature
//! (with its own HMAC, not Keysmith's code), fails on purpose, and sees the retries.
//! Time is the test's clock; the background worker's steps are called by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use base64::Engine;
use common::{Auth, TestApp};
use hmac::{Hmac, Mac};
use keysmith_server::webhooks::{self, BACKOFF_SECS};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    failures_left: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.seen.lock().unwrap().push((headers, body));
                    let mut left = me.failures_left.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    fn seen(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Standard Webhooks verification, written from the specification.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    h("webhook-signature")
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn register(app: &TestApp, auth: &Auth, url: &str, events: Option<Value>) -> common::Reply {
    let mut body = json!({ "url": url, "description": "test receiver" });
    if let Some(events) = events {
        body["events"] = events;
    }
    app.request(Method::POST, "/api/v1/orgs/default/webhooks", auth, Some(body))
        .await
}

async fn run_worker(app: &TestApp) -> usize {
    webhooks::announce_expiring(&app.state).await.unwrap();
    webhooks::pump(&app.state).await.unwrap();
    webhooks::deliver_due(&app.state, &webhooks::client().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_retried_with_backoff_and_logged() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let r = register(&app, &admin, &url, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let hook_id = r.body["id"].as_i64().unwrap();
    let listed = app
        .request(Method::GET, "/api/v1/orgs/default/webhooks", &admin, None)
        .await;
    assert!(!listed.text.contains(&secret), "the secret is shown once");

    *receiver.failures_left.lock().unwrap() = 2;
    let (key, key_id) = app.create_key(&admin, "deploy").await;
    assert_eq!(run_worker(&app).await, 1, "one event, one attempt");
    let path = format!("/api/v1/orgs/default/webhooks/{hook_id}/deliveries");
    let l = app.request(Method::GET, &path, &admin, None).await;
    assert_eq!(l.body["items"][0]["status"], "pending", "{}", l.text);
    assert_eq!(l.body["items"][0]["attempts"], 1);
    assert_eq!(l.body["items"][0]["last_status"], 500);
    assert_eq!(run_worker(&app).await, 0, "not before the backoff");
    app.clock.advance_ms(BACKOFF_SECS[0] * 1000);
    assert_eq!(run_worker(&app).await, 1);
    app.clock.advance_ms(BACKOFF_SECS[1] * 1000);
    assert_eq!(run_worker(&app).await, 1);
    let l = app.request(Method::GET, &path, &admin, None).await;
    assert_eq!(l.body["items"][0]["status"], "delivered");
    assert_eq!(l.body["items"][0]["attempts"], 3);
    assert_eq!(l.body["items"][0]["last_status"], 204);

    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "two failures and a success");
    let id = seen[0].0.get("webhook-id").unwrap().clone();
    for (headers, body) in &seen {
        assert!(verify(&secret, headers, body), "every attempt is signed");
        assert_eq!(headers.get("webhook-id").unwrap(), &id, "retries keep the message ID");
        assert!(!body.contains(&key), "no secret in a payload");
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "api_key.created");
        assert_eq!(event["data"]["key_id"], key_id.as_str());
        assert_eq!(event["data"]["organization"], "default");
        assert_eq!(event["data"]["detail"]["name"], "deploy");
    }
    let stamps: Vec<i64> = seen
        .iter()
        .map(|(h, _)| h.get("webhook-timestamp").unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        stamps[1] - stamps[0],
        BACKOFF_SECS[0],
        "each attempt carries its own time"
    );
    assert!(!verify(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &seen[0].0,
        &seen[0].1
    ));
}

#[tokio::test]
async fn every_key_event_is_announced_to_the_endpoints_that_asked_for_it() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let all = Receiver::default();
    let deletes = Receiver::default();
    let all_url = all.start().await;
    let deletes_url = deletes.start().await;
    let all_secret = register(&app, &admin, &all_url, None).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = register(&app, &admin, &deletes_url, Some(json!(["api_key.deleted"]))).await;
    assert_eq!(r.body["events"], json!(["api_key.deleted"]));

    let (_, a) = app.create_key(&admin, "a").await;
    let (b_key, _) = app.create_key(&admin, "b").await;
    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/api-keys/{a}/rotate"),
            &admin,
            Some(json!({"grace": "1h"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{a}"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.request(
        Method::POST,
        "/api/v1/api-keys/revoke-exposed",
        &Auth::None,
        Some(json!({ "key": b_key })),
    )
    .await;
    app.request(
        Method::POST,
        "/api/v1/api-keys",
        &admin,
        Some(json!({"name": "short", "expires_in_days": 3})),
    )
    .await;
    run_worker(&app).await;
    assert_eq!(run_worker(&app).await, 0, "each event is delivered once");

    let mut types: Vec<String> = all
        .seen()
        .iter()
        .map(|(h, body)| {
            assert!(verify(&all_secret, h, body));
            serde_json::from_str::<Value>(body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "api_key.created",
            "api_key.created",
            "api_key.created",
            "api_key.deleted",
            "api_key.expiring_soon",
            "api_key.exposed",
            "api_key.rotated",
        ]
    );
    let only: Vec<Value> = deletes
        .seen()
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["type"], "api_key.deleted");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_for_good_after_the_last_retry() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = register(&app, &admin, &format!("http://127.0.0.1:{port}/hook"), None).await;
    let hook_id = r.body["id"].as_i64().unwrap();
    app.create_key(&admin, "k").await;
    assert_eq!(run_worker(&app).await, 1);
    for wait in BACKOFF_SECS {
        app.clock.advance_ms(wait * 1000);
        assert_eq!(run_worker(&app).await, 1);
    }
    app.clock.advance_ms(24 * 3600 * 1000);
    assert_eq!(run_worker(&app).await, 0, "no attempt after giving up");
    let admin = app.admin().await;
    let l = app
        .request(
            Method::GET,
            &format!("/api/v1/orgs/default/webhooks/{hook_id}/deliveries"),
            &admin,
            None,
        )
        .await;
    let d = &l.body["items"][0];
    assert_eq!(d["status"], "failed", "{}", l.text);
    assert_eq!(d["attempts"], BACKOFF_SECS.len() as i64 + 1);
    assert_eq!(d["last_error"], "could not connect to the receiver");
}

#[tokio::test]
async fn only_org_admins_manage_webhooks_and_bad_endpoints_are_explained() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    let r = register(&app, &dev, "https://example.com/hook", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for (url, events) in [
        ("ftp://example.com/x", None),
        ("not a url", None),
        ("https://user:pass@example.com/x", None),
        ("https://example.com/x", Some(json!(["api_key.sneezed"]))),
        ("https://example.com/x", Some(json!([]))),
    ] {
        let r = register(&app, &admin, url, events).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_value"),
            "{url}"
        );
    }
    let r = register(&app, &admin, "https://example.com/x", None).await;
    let id = r.body["id"].as_i64().unwrap();
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/orgs/default/webhooks/{id}"),
            &dev,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/orgs/default/webhooks/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/orgs/default/webhooks/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.code(), "webhook_not_found");
}
