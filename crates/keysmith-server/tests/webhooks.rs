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
    let expected = expected_signature(secret, headers, body);
    signature_header(headers)
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

/// The base64 HMAC-SHA256 of `webhook-id.webhook-timestamp.body` under `secret`.
fn expected_signature(secret: &str, headers: &HeaderMap, body: &str) -> String {
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn signature_header(headers: &HeaderMap) -> String {
    headers.get("webhook-signature").unwrap().to_str().unwrap().to_owned()
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
    webhooks::announce_idle(&app.state).await.unwrap();
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
            "api_key.expiring",
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

/// Warnings before expiry carry their lead time; idle keys are announced after the
/// organization's number of days; an endpoint subscribed under the event's old name
/// (`api_key.expiring_soon`) gets the warnings.
#[tokio::test]
async fn expiry_warnings_and_idle_keys_reach_their_endpoints() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let warnings = Receiver::default();
    let idle = Receiver::default();
    let (warnings_url, idle_url) = (warnings.start().await, idle.start().await);
    let r = register(&app, &admin, &warnings_url, Some(json!(["api_key.expiring_soon"]))).await;
    assert_eq!(
        r.body["events"],
        json!(["api_key.expiring"]),
        "the old name is the new event"
    );
    let warnings_secret = r.body["secret"].as_str().unwrap().to_owned();
    let r = register(&app, &admin, &idle_url, Some(json!(["api_key.unused"]))).await;
    let idle_secret = r.body["secret"].as_str().unwrap().to_owned();

    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "nightly", "expires_in_days": 3})),
        )
        .await;
    let (secret, key_id) = (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    );
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &admin,
            Some(json!({"unused_key_notice_days": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["unused_key_notice_days"], 2);
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &admin,
            Some(json!({"unused_key_notice_days": 3651})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("unused_key_notice_days"), "{}", r.text);

    run_worker(&app).await;
    app.clock.advance_ms(2 * 86_400_000 + 1);
    run_worker(&app).await;
    assert_eq!(run_worker(&app).await, 0, "each notice is delivered once");

    let bodies = |r: &Receiver, signing: &str| -> Vec<Value> {
        r.seen()
            .iter()
            .map(|(h, body)| {
                assert!(verify(signing, h, body), "signed as Standard Webhooks says");
                assert!(!body.contains(signing), "no signing secret in a delivery");
                serde_json::from_str(body).unwrap()
            })
            .collect()
    };
    let given = bodies(&warnings, &warnings_secret);
    let leads: Vec<(&str, &str, u64)> = given
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap(),
                b["data"]["key_id"].as_str().unwrap(),
                b["data"]["detail"]["lead_time_days"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        leads,
        [
            ("api_key.expiring", key_id.as_str(), 7),
            ("api_key.expiring", key_id.as_str(), 1)
        ],
        "a week ahead (3 days left), then a day ahead"
    );
    assert_eq!(given[0]["data"]["detail"]["name"], "nightly");
    let announced = bodies(&idle, &idle_secret);
    assert!(!announced.is_empty());
    assert!(
        announced
            .iter()
            .all(|b| b["type"] == "api_key.unused" && b["data"]["detail"]["unused_days"] == 2)
    );
    assert!(
        announced.iter().any(|b| b["data"]["key_id"] == key_id.as_str()),
        "the key made and never used: {announced:?}"
    );
    for body in given.iter().chain(&announced) {
        assert!(!body.to_string().contains(&secret), "no key in a notice");
    }
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

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn rotate(app: &TestApp, auth: &Auth, org: &str, hook_id: i64) -> common::Reply {
    let path = format!("/api/v1/orgs/{org}/webhooks/{hook_id}/rotate-secret");
    app.request(Method::POST, &path, auth, None).await
}

/// The `webhook-signature` of the last delivery attempt the receiver saw.
fn last_signature(receiver: &Receiver) -> (HeaderMap, String, String) {
    let (headers, body) = receiver.seen().pop().expect("a delivery");
    let header = signature_header(&headers);
    (headers, body, header)
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_previous_one_for_a_day_then_alone() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let r = register(&app, &admin, &url, None).await;
    let old = r.body["secret"].as_str().unwrap().to_owned();
    let hook_id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["secret_rotated_at"], Value::Null);

    app.create_key(&admin, "before").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(
        header,
        format!("v1,{}", expected_signature(&old, &h, &body)),
        "one secret, one signature"
    );

    // Rotated at 19:01 UTC (the test clock starts at 19:00).
    app.clock.advance_ms(60_000);
    let r = rotate(&app, &admin, "default", hook_id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{new}");
    assert_eq!(r.body["id"], hook_id, "the same endpoint");
    assert_eq!(r.body["url"], url.as_str());
    assert_eq!(r.body["secret_rotated_at"], "2025-11-26T19:01:00Z");
    assert_eq!(r.body["previous_secret_until"], "2025-11-27T19:01:00Z");

    // Within the grace period: the new secret's signature, then the old one's.
    app.create_key(&admin, "during").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(
        header,
        format!(
            "v1,{} v1,{}",
            expected_signature(&new, &h, &body),
            expected_signature(&old, &h, &body)
        )
    );
    assert!(verify(&new, &h, &body), "a receiver that switched accepts it");
    assert!(verify(&old, &h, &body), "a receiver that did not yet accepts it too");

    // A second before the end: still both. The first attempt fails; its retry comes
    // after the end and carries the new signature alone (each attempt is signed when
    // it is sent).
    app.clock.advance_ms(DAY_MS - 1_000);
    let admin = app.admin().await;
    *receiver.failures_left.lock().unwrap() = 1;
    app.create_key(&admin, "last-second").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(verify(&new, &h, &body) && verify(&old, &h, &body));
    app.clock.advance_ms(BACKOFF_SECS[0] * 1000);
    assert_eq!(run_worker(&app).await, 1, "the retry");
    let (h, retried_body, header) = last_signature(&receiver);
    assert_eq!(retried_body, body, "the same delivery");
    assert_eq!(header, format!("v1,{}", expected_signature(&new, &h, &body)));
    assert!(!verify(&old, &h, &body), "the old secret no longer signs");

    app.create_key(&admin, "after").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(header, format!("v1,{}", expected_signature(&new, &h, &body)));
    assert!(!verify(&old, &h, &body));
    let listed = app
        .request(Method::GET, "/api/v1/orgs/default/webhooks", &admin, None)
        .await;
    assert_eq!(listed.body["items"][0]["secret_rotated_at"], "2025-11-26T19:01:00Z");
    assert_eq!(listed.body["items"][0]["previous_secret_until"], Value::Null, "over");

    // Neither secret is in the audit log, the endpoint list or the delivery log.
    let audit = app
        .request(Method::GET, "/api/v1/orgs/default/audit?limit=100", &admin, None)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let rotations: Vec<&Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "webhook.secret_rotated")
        .collect();
    assert_eq!(rotations.len(), 1, "{}", audit.text);
    assert_eq!(rotations[0]["target"], url.as_str());
    assert_eq!(rotations[0]["actor"], "admin");
    let deliveries = app
        .request(
            Method::GET,
            &format!("/api/v1/orgs/default/webhooks/{hook_id}/deliveries"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        deliveries.body["items"].as_array().unwrap().len(),
        4,
        "{}",
        deliveries.text
    );
    for secret in [&old, &new] {
        let raw = secret.strip_prefix("whsec_").unwrap();
        for (what, text) in [
            ("audit log", &audit.text),
            ("endpoint list", &listed.text),
            ("delivery log", &deliveries.text),
        ] {
            assert!(!text.contains(raw), "a secret in the {what}: {text}");
        }
    }
}

#[tokio::test]
async fn rotating_twice_retires_the_oldest_secret_at_once() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let r = register(&app, &admin, &url, None).await;
    let first = r.body["secret"].as_str().unwrap().to_owned();
    let hook_id = r.body["id"].as_i64().unwrap();
    let second = rotate(&app, &admin, "default", hook_id).await.body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance_ms(3_600_000);
    let r = rotate(&app, &admin, "default", hook_id).await;
    let third = r.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["previous_secret_until"], "2025-11-27T20:00:00Z",
        "a day from the second rotation"
    );
    assert!(first != second && second != third && first != third);
    app.create_key(&admin, "k").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(
        header,
        format!(
            "v1,{} v1,{}",
            expected_signature(&third, &h, &body),
            expected_signature(&second, &h, &body)
        )
    );
    assert!(!verify(&first, &h, &body));
}

#[tokio::test]
async fn only_an_admin_of_the_endpoints_organization_rotates_its_secret() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let r = register(&app, &admin, &url, None).await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let hook_id = r.body["id"].as_i64().unwrap();

    // A member of the organization who is not its admin: not allowed.
    let dev_id = app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    let r = rotate(&app, &dev, "default", hook_id).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
    assert!(!r.text.contains("whsec_"));
    // Someone outside the organization: it does not exist for them.
    let outsider_id = app.add_user("outsider").await;
    let outsider = Auth::Session(app.sign_in("outsider", common::USER_PASSWORD).await);
    app.store.remove_org_member(app.org.id, outsider_id, &[]).await.unwrap();
    let r = rotate(&app, &outsider, "default", hook_id).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "org_not_found"),
        "{}",
        r.text
    );
    // The admin of another organization, naming their own: not their endpoint.
    let other = app.store.create_org("other", common::START_MS).await.unwrap();
    app.store
        .add_org_member(
            other.id,
            dev_id,
            keysmith_core::role::OrgRole::Admin,
            common::START_MS,
            &[],
        )
        .await
        .unwrap();
    let r = rotate(&app, &dev, "other", hook_id).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "webhook_not_found"),
        "{}",
        r.text
    );
    let r = rotate(&app, &admin, "default", hook_id + 1).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "webhook_not_found"));
    let r = rotate(&app, &Auth::None, "default", hook_id).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Nothing changed: deliveries carry the original secret's signature alone, and
    // the audit log records no rotation.
    app.create_key(&admin, "k").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(header, format!("v1,{}", expected_signature(&secret, &h, &body)));
    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=webhook.secret_rotated",
            &admin,
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    assert_eq!(audit.body["items"], json!([]), "{}", audit.text);
}

fn form_request(
    method: Method,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> axum::http::Request<axum::body::Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().copied())
        .finish();
    axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_webhooks_page_rotates_a_secret_after_a_confirmation_and_shows_it_once() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", common::ADMIN_PASSWORD).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let r = register(&app, &Auth::Session(s.clone()), &url, None).await;
    let old = r.body["secret"].as_str().unwrap().to_owned();
    let hook_id = r.body["id"].as_i64().unwrap();
    let confirm = format!("/org/default/webhooks/{hook_id}/rotate-secret");

    let list = app
        .send(form_request(Method::GET, "/org/default/webhooks", &s.cookie, &[]))
        .await;
    assert!(list.text.contains(&format!("href=\"{confirm}\"")), "{}", list.text);
    assert!(list.text.contains("Rotate signing secret"));
    let page = app.send(form_request(Method::GET, &confirm, &s.cookie, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!("action=\"{confirm}\"")), "{}", page.text);
    assert!(!page.text.contains("whsec_"), "nothing is rotated by looking");
    let version = |app: &TestApp| {
        let store = app.store.clone();
        async move { store.get_webhook(hook_id).await.unwrap().unwrap().secret_version }
    };
    assert_eq!(version(&app).await, 1);

    let r = app
        .send(form_request(Method::POST, &confirm, &s.cookie, &[("csrf", "forged")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(version(&app).await, 1, "no rotation without the form's token");

    let r = app
        .send(form_request(Method::POST, &confirm, &s.cookie, &[("csrf", &s.csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(version(&app).await, 2);
    let start = r.text.find("value=\"whsec_").expect("the new secret on the page") + 7;
    let shown = &r.text[start..start + r.text[start..].find('"').unwrap()];
    assert_ne!(shown, old);
    assert!(
        r.text.contains("data-testid=\"webhook-secret\""),
        "shown with the reveal helper"
    );
    assert!(
        r.text.contains("2025-11-27 19:00 UTC"),
        "until when the old secret signs"
    );

    // The secret shown is the one that signs.
    app.create_key(&Auth::Session(s.clone()), "k").await;
    assert_eq!(run_worker(&app).await, 1);
    let (h, body, header) = last_signature(&receiver);
    assert_eq!(
        header,
        format!(
            "v1,{} v1,{}",
            expected_signature(shown, &h, &body),
            expected_signature(&old, &h, &body)
        )
    );
    let list = app
        .send(form_request(Method::GET, "/org/default/webhooks", &s.cookie, &[]))
        .await;
    assert!(!list.text.contains("whsec_"), "shown once");
    assert!(list.text.contains("Signed with the previous secret as well until"));

    // A member who is not an admin gets neither the page nor the rotation.
    app.add_user("dev").await;
    let dev = app.sign_in("dev", common::USER_PASSWORD).await;
    let r = app.send(form_request(Method::GET, &confirm, &dev.cookie, &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .send(form_request(
            Method::POST,
            &confirm,
            &dev.cookie,
            &[("csrf", &dev.csrf)],
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("whsec_"));
    assert_eq!(version(&app).await, 2);
}
