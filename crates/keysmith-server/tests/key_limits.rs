//! Per-key request limits (docs/DESIGN.md §3, "Per-key limits"): a token bucket per
//! key, on every door, answered 429 with Retry-After and the IETF RateLimit fields;
//! time moves by the test's clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, Reply, TestApp, gql};
use serde_json::json;

const KEYS: &str = "/api/v1/api-keys";

async fn limited_key(app: &TestApp, per_minute: u32) -> (String, String) {
    let r = app
        .request(
            Method::POST,
            KEYS,
            &app.admin().await,
            Some(json!({"name": "limited", "requests_per_minute": per_minute})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["requests_per_minute"], per_minute);
    (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    )
}

async fn forward(app: &TestApp, key: &str) -> Reply {
    let request = Request::builder()
        .uri("/api/v1/forward-auth")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    app.send(request).await
}

fn field<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_limited_key_gets_its_burst_then_429_with_the_ratelimit_fields_until_a_token_is_back() {
    let app = TestApp::sqlite().await;
    let (key, _) = limited_key(&app, 3).await;
    for left in [2, 1, 0] {
        let r = forward(&app, &key).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(field(&r, "ratelimit-policy"), "\"per-key\";q=3;w=60");
        assert_eq!(field(&r, "ratelimit"), format!("\"per-key\";r={left};t=20"));
    }
    for door in ["forward auth", "REST"] {
        let r = match door {
            "REST" => {
                app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
                    .await
            }
            _ => forward(&app, &key).await,
        };
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::TOO_MANY_REQUESTS, "key_rate_limited"),
            "{door}"
        );
        assert_eq!(field(&r, "retry-after"), "20", "{door}");
        assert_eq!(field(&r, "ratelimit"), "\"per-key\";r=0;t=20", "{door}");
        assert_eq!(field(&r, "ratelimit-policy"), "\"per-key\";q=3;w=60", "{door}");
        assert_eq!(
            r.body["error"]["message"], "This API key's request limit (3 a minute) is used up; retry after 20 seconds.",
            "{door}"
        );
    }
    let r = gql(&app, &key, "{ viewer { username } }", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.body["errors"][0]["extensions"]["keysmith_code"], "key_rate_limited");
    assert_eq!(field(&r, "retry-after"), "20");

    // One token every 20 seconds.
    app.clock.advance_ms(19_999);
    assert_eq!(forward(&app, &key).await.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance_ms(1);
    let r = forward(&app, &key).await;
    assert_eq!(
        (r.status, field(&r, "ratelimit")),
        (StatusCode::OK, "\"per-key\";r=0;t=20")
    );
    // Other keys, and a session, are untouched.
    let (other, _) = app.create_key(&app.admin().await, "unlimited").await;
    for _ in 0..10 {
        let r = forward(&app, &other).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get("ratelimit").is_none(), "no limit, no fields");
    }
    let metrics = app.request(Method::GET, "/metrics", &Auth::None, None).await.text;
    assert!(
        metrics.contains("keysmith_verifications_total{outcome=\"key_rate_limited\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_limited_key_makes_no_key_with_a_higher_limit_and_bad_limits_are_refused() {
    let app = TestApp::sqlite().await;
    let (key, _) = limited_key(&app, 100).await;
    let auth = Auth::Bearer(key);
    let r = app
        .request(Method::POST, KEYS, &auth, Some(json!({"name": "child"})))
        .await;
    assert_eq!(r.body["requests_per_minute"], 100, "inherited: {}", r.text);
    let r = app
        .request(
            Method::POST,
            KEYS,
            &auth,
            Some(json!({"name": "lower", "requests_per_minute": 10})),
        )
        .await;
    assert_eq!(r.body["requests_per_minute"], 10);
    let r = app
        .request(
            Method::POST,
            KEYS,
            &auth,
            Some(json!({"name": "higher", "requests_per_minute": 1000})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
    let (_, unlimited_id) = app.create_key(&app.admin().await, "unlimited").await;
    let r = app
        .request(
            Method::POST,
            &format!("{KEYS}/{unlimited_id}/rotate"),
            &auth,
            Some(json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
    let session = app.admin().await;
    for bad in [json!(0), json!(60_001)] {
        let r = app
            .request(
                Method::POST,
                KEYS,
                &session,
                Some(json!({"name": "bad", "requests_per_minute": bad})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_value"),
            "{bad}: {}",
            r.text
        );
        assert_eq!(
            r.body["error"]["message"],
            "A request limit (requests_per_minute) is 1 to 60000 a minute."
        );
    }
    let r = app
        .request(
            Method::POST,
            KEYS,
            &session,
            Some(json!({"name": "bad", "requests_per_minute": -1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}
