//! Brute force and the headers every answer carries: failed key verifications are
//! limited per client address (429 with Retry-After) while keys in steady use keep
//! working, the client address behind a trusted proxy comes from X-Forwarded-For,
//! and the security headers are on every kind of answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, Reply, TestApp};
use keysmith_server::Settings;
use keysmith_server::auth::source::TrustedProxies;
use std::net::SocketAddr;

/// A key with a valid checksum that no one holds: it reaches the database.
fn unknown_key(app: &TestApp) -> String {
    keysmith_core::generate_v1(&app.state.key_prefix)
        .unwrap()
        .plaintext
        .expose()
        .to_owned()
}

async fn forward_auth(app: &TestApp, key: &str, peer: [u8; 4], forwarded_for: Option<&str>) -> Reply {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/forward-auth")
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    if let Some(xff) = forwarded_for {
        builder = builder.header("x-forwarded-for", xff);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 4000))));
    app.send(request).await
}

async fn viewer(app: &TestApp, key: &str, peer: [u8; 4]) -> Reply {
    let mut request = Request::builder()
        .uri("/api/v1/viewer")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 4000))));
    app.send(request).await
}

#[tokio::test]
async fn failed_verifications_are_limited_per_address_without_holding_back_keys_in_use() {
    let app = TestApp::sqlite_with(Settings {
        key_failures_per_minute: 5,
        ..Settings::default()
    })
    .await;
    let admin = app.admin().await;
    let (in_use, _) = app.create_key(&admin, "in use").await;
    let (idle, _) = app.create_key(&admin, "idle").await;
    let attacker = [203, 0, 113, 9];
    assert_eq!(viewer(&app, &in_use, attacker).await.status, StatusCode::OK);

    // Five failures of every kind are answered as usual…
    let garbage = "not-a-key".to_owned();
    // The last character changed (to `x`, or to `y` where it already was an `x`).
    let last = if in_use.ends_with('x') { 'y' } else { 'x' };
    let mistyped = format!("{}{last}", &in_use[..in_use.len() - 1]);
    for key in [
        unknown_key(&app),
        garbage,
        mistyped,
        unknown_key(&app),
        unknown_key(&app),
    ] {
        let r = viewer(&app, &key, attacker).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    // …then the address is refused without a look at the database.
    for key in [unknown_key(&app), idle.clone()] {
        let r = viewer(&app, &key, attacker).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(r.headers[header::RETRY_AFTER], "60");
        assert!(!r.text.contains(&key), "the answer echoes the key");
    }
    let r = forward_auth(&app, &unknown_key(&app), attacker, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "forward auth is limited too");
    // The key in steady use (in the cache) still works from there.
    assert_eq!(viewer(&app, &in_use, attacker).await.status, StatusCode::OK);
    assert_eq!(forward_auth(&app, &in_use, attacker, None).await.status, StatusCode::OK);
    // Other addresses are not affected.
    let neighbour = [203, 0, 113, 10];
    assert_eq!(viewer(&app, &idle, neighbour).await.status, StatusCode::OK);
    assert_eq!(
        viewer(&app, &unknown_key(&app), neighbour).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The window ends.
    app.clock.advance_ms(30_000);
    assert_eq!(
        viewer(&app, &unknown_key(&app), attacker).await.headers[header::RETRY_AFTER],
        "30"
    );
    app.clock.advance_ms(30_000);
    assert_eq!(
        viewer(&app, &unknown_key(&app), attacker).await.status,
        StatusCode::UNAUTHORIZED
    );
    let metrics = app.request(Method::GET, "/metrics", &Auth::None, None).await.text;
    assert!(
        metrics.contains("keysmith_verifications_total{outcome=\"rate_limited\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_limited_on_its_own() {
    let app = TestApp::sqlite_with(Settings {
        key_failures_per_minute: 2,
        trusted_proxies: TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Settings::default()
    })
    .await;
    let admin = app.admin().await;
    let (key, _) = app.create_key(&admin, "k").await;
    let proxy = [127, 0, 0, 1];
    for _ in 0..2 {
        let r = forward_auth(&app, &unknown_key(&app), proxy, Some("198.51.100.1")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = forward_auth(&app, &unknown_key(&app), proxy, Some("198.51.100.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // A client that spoofs the header still ends up as itself: the proxy appends.
    let r = forward_auth(&app, &unknown_key(&app), proxy, Some("10.0.0.1, 198.51.100.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not locked out with it.
    let r = forward_auth(&app, &key, proxy, Some("198.51.100.2")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = forward_auth(&app, &unknown_key(&app), proxy, Some("198.51.100.2")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An untrusted peer's X-Forwarded-For is ignored: it is limited as itself.
    for expected in [
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let r = forward_auth(&app, &unknown_key(&app), [192, 0, 2, 50], Some("198.51.100.3")).await;
        assert_eq!(r.status, expected);
    }
    // The key's recent sources name the client, not the proxy.
    let key_id = &key[..36];
    let r = app
        .request(Method::GET, &format!("/api/v1/api-keys/{key_id}"), &admin, None)
        .await;
    assert!(r.text.contains("198.51.100.2"), "{}", r.text);
    assert!(!r.text.contains("\"127.0.0.1\""), "{}", r.text);
}

#[tokio::test]
async fn a_limit_of_zero_turns_the_limit_off() {
    let app = TestApp::sqlite_with(Settings {
        key_failures_per_minute: 0,
        ..Settings::default()
    })
    .await;
    for _ in 0..100 {
        let r = viewer(&app, &unknown_key(&app), [203, 0, 113, 9]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let plain = TestApp::sqlite().await;
    let tls = TestApp::sqlite_with(Settings {
        hsts: true,
        ..Settings::default()
    })
    .await;
    for (app, hsts) in [(&plain, false), (&tls, true)] {
        let admin = app.admin().await;
        // A key's viewer is answered on the connection (warm: the second request).
        let key = Auth::Bearer(app.create_key(&admin, "headers").await.0);
        for (path, auth) in [
            ("/api/v1/viewer", &admin),
            ("/api/v1/viewer", &key),
            ("/api/v1/viewer", &key),
            ("/api/v1/viewer", &Auth::None),
            ("/api/v1/no-such-route", &Auth::None),
            ("/healthz", &Auth::None),
            ("/metrics", &Auth::None),
            ("/login", &Auth::None),
        ] {
            let r = app.request(Method::GET, path, auth, None).await;
            let h = &r.headers;
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
            assert_eq!(h.contains_key(header::STRICT_TRANSPORT_SECURITY), hsts, "{path}");
        }
    }
}

/// An unknown key ID is remembered as absent: guessing it again costs no database
/// read. A key whose ID was presented before it existed (as with imported keys)
/// works the moment it is stored.
#[tokio::test]
async fn unknown_key_ids_are_cached_as_absent_until_a_key_takes_them() {
    let app = TestApp::sqlite().await;
    let generated = keysmith_core::generate_v1(&app.state.key_prefix).unwrap();
    let key = generated.plaintext.expose().to_owned();
    let peer = [198, 51, 100, 20];
    assert_eq!(viewer(&app, &key, peer).await.status, StatusCode::UNAUTHORIZED);
    let (hits, misses) = (app.state.metrics.cache_hits.get(), app.state.metrics.cache_misses.get());
    for _ in 0..3 {
        assert_eq!(viewer(&app, &key, peer).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.state.metrics.cache_hits.get(),
        hits + 3,
        "guesses answered from the cache"
    );
    assert_eq!(app.state.metrics.cache_misses.get(), misses);

    app.import_key(&generated, "admin").await;
    assert_eq!(viewer(&app, &key, peer).await.status, StatusCode::OK);
}
