//! Forward auth for reverse proxies, and the metrics at `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, TestApp};
use serde_json::json;

#[tokio::test]
async fn forward_auth_answers_identity_headers_or_401() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, key_id) = app.create_key(&admin, "proxy").await;

    let r = app
        .request(Method::GET, "/api/v1/forward-auth", &Auth::None, None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    assert!(r.headers.get(header::WWW_AUTHENTICATE).is_some());

    for auth in [
        Auth::Bearer(key.clone()),
        Auth::Basic(key.clone()),
        Auth::XApiKey(key.clone()),
    ] {
        let r = app.request(Method::GET, "/api/v1/forward-auth", &auth, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-keysmith-user"], "admin");
        assert_eq!(r.headers["x-keysmith-principal-kind"], "user");
        assert_eq!(r.headers["x-keysmith-orgs"], "default");
        assert_eq!(r.headers["x-keysmith-key-id"], key_id.as_str());
        assert!(r.headers["x-keysmith-user-id"].to_str().unwrap().parse::<i64>().is_ok());
    }
    // Proxies pass the client's method, and Envoy appends the client's path.
    for (method, path) in [
        (Method::POST, "/api/v1/forward-auth"),
        (Method::DELETE, "/api/v1/forward-auth"),
        (Method::GET, "/api/v1/forward-auth/some/upstream/path"),
        (Method::PUT, "/api/v1/forward-auth/x"),
    ] {
        let r = app
            .request(method.clone(), path, &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}");
    }

    // A service account of a team: kind and organization.
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &admin,
            Some(json!({"name": "gateway-bot"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "k", "owner": "gateway-bot"})),
        )
        .await;
    let bot_key = r.body["key"].as_str().unwrap().to_owned();
    let r = app
        .request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(bot_key), None)
        .await;
    assert_eq!(r.headers["x-keysmith-principal-kind"], "service_account");
    assert_eq!(r.headers["x-keysmith-user"], "gateway-bot");

    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(key), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    assert!(r.headers.get("x-keysmith-user").is_none());
}

/// The server answers forward auth on the connection, before the router; an
/// application driven without the server's connection (`keysmith_server::router`)
/// answers it through the router. The two must agree on which paths are forward auth.
#[tokio::test]
async fn the_connection_and_the_router_agree_on_forward_auth_paths() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, key_id) = app.create_key(&admin, "proxy").await;
    let mut answered = 0;
    for path in [
        "/api/v1/forward-auth",
        "/api/v1/forward-auth?x=1",
        "/api/v1/forward-auth/",
        "/api/v1/forward-auth/a/b?x=1",
        "/api/v1/forward-authx",
        "/api/v1/forward-aut",
        "/api/v1/Forward-auth",
        "/api/v1//forward-auth",
    ] {
        let request = || {
            Request::builder()
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap()
        };
        let by_connection = app.send(request()).await;
        let by_router = tower::ServiceExt::oneshot(app.router.clone(), request()).await.unwrap();
        assert_eq!(by_connection.status, by_router.status(), "{path}");
        assert_eq!(
            by_connection.headers.get("x-keysmith-key-id"),
            by_router.headers().get("x-keysmith-key-id"),
            "{path}"
        );
        if by_connection.status == StatusCode::OK {
            assert_eq!(by_connection.headers["x-keysmith-key-id"], key_id.as_str());
            answered += 1;
        }
    }
    assert_eq!(answered, 4, "forward auth answers its path and everything below it");
}

/// Legacy keys hold no key ID: the first verification reads the database by the
/// key's digest, later ones come from the cache, and a delete still ends them at once.
#[tokio::test]
async fn legacy_keys_are_verified_from_the_cache_once_warm() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let legacy = keysmith_core::generate_legacy(None).unwrap();
    app.import_key(&legacy, "admin").await;
    let key = legacy.plaintext.expose().to_owned();
    let metrics = &app.state.metrics;
    let verify = async |key: &str| {
        app.request(Method::GET, "/api/v1/forward-auth", &Auth::Basic(key.to_owned()), None)
            .await
    };

    let (hits, misses) = (metrics.cache_hits.get(), metrics.cache_misses.get());
    let r = verify(&key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-keysmith-key-id"], legacy.key_id.as_str());
    assert_eq!(metrics.cache_hits.get(), hits, "the first use reads the database");
    assert_eq!(metrics.cache_misses.get(), misses + 1, "and counts as a miss");
    for _ in 0..3 {
        let r = verify(&key).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-keysmith-key-id"], legacy.key_id.as_str());
        assert_eq!(r.headers["x-keysmith-user"], "admin");
    }
    assert_eq!(metrics.cache_hits.get(), hits + 3, "then the cache answers");
    assert_eq!(metrics.cache_misses.get(), misses + 1);

    // Another legacy-shaped key is not this one, cached or not.
    let stranger = keysmith_core::generate_legacy(None).unwrap();
    assert_eq!(
        verify(stranger.plaintext.expose()).await.status,
        StatusCode::UNAUTHORIZED
    );

    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", legacy.key_id),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = verify(&key).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
}

#[tokio::test]
async fn metrics_count_verifications_cache_use_and_requests_by_route() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, key_id) = app.create_key(&admin, "m").await;
    for _ in 0..3 {
        let r = app
            .request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let mut bad = key.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    app.request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(bad), None)
        .await;
    let r = app
        .request(
            Method::GET,
            &format!("/api/v1/api-keys/{key_id}"),
            &Auth::Bearer(key.clone()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // As Prometheus asks: OpenMetrics (clients that do not ask get the text format,
    // tested with Prometheus' own parsers in keysmith-cli's tests/serve.rs).
    let request = Request::builder()
        .uri("/metrics")
        .header(header::ACCEPT, "application/openmetrics-text;version=1.0.0")
        .body(Body::empty())
        .unwrap();
    let m = app.send(request).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let t = &m.text;
    assert!(
        t.contains("keysmith_verifications_total{outcome=\"accepted\"} 4"),
        "{t}"
    );
    assert!(
        t.contains("keysmith_verifications_total{outcome=\"bad_checksum\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("keysmith_cache_misses_total 1"),
        "one miss fills the cache: {t}"
    );
    assert!(t.contains("keysmith_cache_hits_total 3"), "{t}");
    assert!(t.contains("keysmith_cache_entries 1"), "{t}");
    assert!(
        t.contains("route=\"/api/v1/api-keys/{key_id}\""),
        "labelled by template: {t}"
    );
    assert!(t.contains("keysmith_http_request_duration_seconds_bucket"), "{t}");
    let timed =
        "keysmith_http_request_duration_seconds_count{method=\"any\",route=\"/api/v1/forward-auth\",status=\"2xx\"} 3";
    assert!(
        t.contains(timed),
        "forward auth, served before the middleware, is timed too: {t}"
    );
    assert!(!t.contains(&key_id), "no key ID in any label");
    assert!(t.contains("# EOF"));
}
