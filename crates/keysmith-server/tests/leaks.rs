//! Leak response: anyone holding a key revokes it; GitHub's secret scanning reports,
//! signed with P-256, revoke genuine keys and get feedback labels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use common::{Auth, Reply, TestApp};
use keysmith_server::Settings;
use keysmith_server::leak::github::GitHubKeys;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

async fn viewer(app: &TestApp, key: &str) -> StatusCode {
    app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.to_owned()), None)
        .await
        .status
}

async fn revoke(app: &TestApp, key: &str) -> Reply {
    app.request(
        Method::POST,
        "/api/v1/api-keys/revoke-exposed",
        &Auth::None,
        Some(json!({ "key": key })),
    )
    .await
}

#[tokio::test]
async fn whoever_holds_a_key_can_revoke_it_and_the_answer_never_tells_whether_it_existed() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, key_id) = app.create_key(&admin, "leaked").await;
    let (other, _) = app.create_key(&admin, "kept").await;
    let unknown = keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default())
        .unwrap()
        .plaintext
        .expose()
        .to_owned();
    let answers: Vec<Reply> = vec![
        revoke(&app, &key).await,
        revoke(&app, &key).await,
        revoke(&app, &unknown).await,
        revoke(&app, "not a key at all").await,
    ];
    for r in &answers {
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.text, answers[0].text, "the same answer every time");
    }
    assert_eq!(viewer(&app, &key).await, StatusCode::UNAUTHORIZED, "revoked at once");
    assert_eq!(viewer(&app, &other).await, StatusCode::OK, "only that key");
    let r = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=api_key.exposed",
            &admin,
            None,
        )
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["target"], key_id.as_str());
    assert_eq!(items[0]["detail"]["reporter"], "holder");
    assert!(!r.text.contains(&key), "the audit log never holds the key");
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys/revoke-exposed",
            &Auth::None,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a malformed request is still an error"
    );
}

/// A `revoke-exposed` request with this raw body, from `peer`.
async fn revoke_from(app: &TestApp, body: &str, peer: &str) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/api-keys/revoke-exposed")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    app.send(request).await
}

fn report_of(key: &str) -> String {
    json!({ "key": key }).to_string()
}

fn unknown_key() -> String {
    keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default())
        .unwrap()
        .plaintext
        .expose()
        .to_owned()
}

#[tokio::test]
async fn reports_are_limited_per_address_and_every_report_counts() {
    let app = TestApp::sqlite_with(Settings {
        exposure_reports_per_minute: 3,
        ..Settings::default()
    })
    .await;
    let admin = app.admin().await;
    let (leaked, _) = app.create_key(&admin, "leaked").await;
    let (spared, _) = app.create_key(&admin, "spared").await;
    let reporter = "203.0.113.9:5000";

    // A genuine key, an unknown one and garbage all count alike, and get the same answer…
    let first = revoke_from(&app, &report_of(&leaked), reporter).await;
    for body in [report_of(&unknown_key()), report_of("not a key")] {
        let r = revoke_from(&app, &body, reporter).await;
        assert_eq!((r.status, &r.text), (StatusCode::ACCEPTED, &first.text));
    }
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(viewer(&app, &leaked).await, StatusCode::UNAUTHORIZED);
    // …then the address is refused, whatever it sends: a genuine key is not revoked, a
    // malformed body is not even judged.
    for body in [report_of(&spared), report_of(&unknown_key()), "{".to_owned()] {
        let r = revoke_from(&app, &body, reporter).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(r.headers[header::RETRY_AFTER], "60");
        assert!(!r.text.contains(&spared), "the answer echoes the key");
    }
    assert_eq!(
        viewer(&app, &spared).await,
        StatusCode::OK,
        "refused reports revoke nothing"
    );

    // Other addresses are not affected; an IPv6 /64 is one address.
    let r = revoke_from(&app, &report_of(&unknown_key()), "198.51.100.7:5000").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for host in ["1", "2", "3"] {
        let peer = format!("[2001:db8:1:2::{host}]:5000");
        let r = revoke_from(&app, &report_of(&unknown_key()), &peer).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{peer}");
    }
    let r = revoke_from(&app, &report_of(&unknown_key()), "[2001:db8:1:2:ffff::9]:5000").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the same /64");
    let r = revoke_from(&app, &report_of(&unknown_key()), "[2001:db8:1:3::1]:5000").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "the next /64");

    // The window ends.
    app.clock.advance_ms(45_000);
    let r = revoke_from(&app, &report_of(&spared), reporter).await;
    assert_eq!(r.headers[header::RETRY_AFTER], "15");
    app.clock.advance_ms(15_000);
    let r = revoke_from(&app, &report_of(&spared), reporter).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(viewer(&app, &spared).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn thirty_reports_a_minute_by_default_and_zero_turns_the_limit_off() {
    let app = TestApp::sqlite().await;
    for _ in 0..30 {
        let r = revoke_from(&app, &report_of("not a key"), "203.0.113.9:5000").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = revoke_from(&app, &report_of("not a key"), "203.0.113.9:5000").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    let app = TestApp::sqlite_with(Settings {
        exposure_reports_per_minute: 0,
        ..Settings::default()
    })
    .await;
    for _ in 0..100 {
        let r = revoke_from(&app, &report_of("not a key"), "203.0.113.9:5000").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
}

struct GitHub {
    signing: SigningKey,
}

impl GitHub {
    fn new() -> Self {
        Self {
            signing: SigningKey::from_slice(&[42u8; 32]).unwrap(),
        }
    }

    fn keys(&self) -> GitHubKeys {
        let pem = self.signing.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let published = json!({"public_keys": [
            {"key_identifier": "gh-key-1", "key": pem, "is_current": true},
        ]});
        GitHubKeys::from_json(&published.to_string()).unwrap()
    }

    fn sign(&self, body: &str) -> String {
        let sig: Signature = self.signing.sign(body.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

async fn report(app: &TestApp, body: &str, identifier: &str, signature: &str) -> Reply {
    report_from(app, common::PEER, body, identifier, signature).await
}

/// A GitHub report sent from `peer`.
async fn report_from(app: &TestApp, peer: SocketAddr, body: &str, identifier: &str, signature: &str) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/secret-scanning/github")
        .header(header::CONTENT_TYPE, "application/json")
        .header("Github-Public-Key-Identifier", identifier)
        .header("Github-Public-Key-Signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.send(request).await
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn github_reports_are_verified_and_revoke_genuine_keys() {
    let github = GitHub::new();
    let app = TestApp::sqlite_with(Settings {
        github_keys: github.keys(),
        ..Settings::default()
    })
    .await;
    let admin = app.admin().await;
    let (real, real_id) = app.create_key(&admin, "committed").await;
    let (revoked, revoked_id) = app.create_key(&admin, "already gone").await;
    let (kept, _) = app.create_key(&admin, "not reported").await;
    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{revoked_id}"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let random = keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default())
        .unwrap()
        .plaintext
        .expose()
        .to_owned();
    let mut mistyped = real.clone();
    mistyped.pop();
    mistyped.push(if real.ends_with('A') { 'B' } else { 'A' });
    let matches = json!([
        {"token": real, "type": "keysmith_api_key", "url": "https://github.com/o/r/blob/1/train.py", "source": "content"},
        {"token": revoked, "type": "keysmith_api_key", "url": "https://github.com/o/r/blob/2/a.py", "source": "content"},
        {"token": random, "type": "keysmith_api_key", "url": "https://github.com/o/r/blob/3/b.py", "source": "content"},
        {"token": mistyped, "type": "keysmith_api_key", "source": "commit"},
    ])
    .to_string();

    // Refused before anything is read: a bad signature, another key, no headers.
    let tampered = matches.replace("train.py", "other.py");
    let r = report(&app, &tampered, "gh-key-1", &github.sign(&matches)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "signature_invalid"));
    let r = report(&app, &matches, "gh-key-2", &github.sign(&matches)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "signature_invalid"));
    let stranger = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let forged: Signature = stranger.sign(matches.as_bytes());
    let forged = base64::engine::general_purpose::STANDARD.encode(forged.to_der().as_bytes());
    let r = report(&app, &matches, "gh-key-1", &forged).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let no_headers = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/secret-scanning/github")
        .body(Body::from(matches.clone()))
        .unwrap();
    assert_eq!(app.send(no_headers).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        viewer(&app, &real).await,
        StatusCode::OK,
        "nothing revoked by refused reports"
    );

    let r = report(&app, &matches, "gh-key-1", &github.sign(&matches)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let labels: Vec<(String, String)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["token_hash"].as_str().unwrap().to_owned(),
                f["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        vec![
            (hash(&real), "true_positive".to_owned()),
            (hash(&revoked), "true_positive".to_owned()),
            (hash(&random), "false_positive".to_owned()),
            (hash(&mistyped), "false_positive".to_owned()),
        ]
    );
    assert!(!r.text.contains(&real), "the answer never repeats a token");
    assert_eq!(r.body[0]["token_type"], "keysmith_api_key");
    assert_eq!(viewer(&app, &real).await, StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(viewer(&app, &kept).await, StatusCode::OK);

    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=api_key.exposed",
            &admin,
            None,
        )
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["target"], real_id.as_str());
    assert_eq!(items[0]["actor"], "system", "no one signed in reported it");
    assert_eq!(items[0]["detail"]["reporter"], "github");
    assert_eq!(items[0]["detail"]["url"], "https://github.com/o/r/blob/1/train.py");

    let r = report(&app, "not json", "gh-key-1", &github.sign("not json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_github_keys_the_endpoint_is_off() {
    let app = TestApp::sqlite().await;
    let r = report(&app, "[]", "gh-key-1", "AAAA").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "secret_scanning_not_configured")
    );
}

#[tokio::test]
async fn an_oversized_report_gets_the_json_error_not_axums_plain_text() {
    let github = GitHub::new();
    let app = TestApp::sqlite_with(Settings {
        github_keys: github.keys(),
        ..Settings::default()
    })
    .await;
    // A well-formed, correctly signed report one byte over the limit.
    let limit = 64 * 1024;
    let padding = " ".repeat(limit - 1);
    let body = format!("[{padding}]");
    assert_eq!(body.len(), limit + 1);
    let r = report(&app, &body, "gh-key-1", &github.sign(&body)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.code(), "payload_too_large", "{}", r.text);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // At the limit it is read, verified and answered as usual.
    let body = format!("[{}]", " ".repeat(limit - 2));
    let r = report(&app, &body, "gh-key-1", &github.sign(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn bad_signatures_count_against_the_address_like_failed_keys() {
    let github = GitHub::new();
    let app = TestApp::sqlite_with(Settings {
        github_keys: github.keys(),
        key_failures_per_minute: 3,
        ..Settings::default()
    })
    .await;
    let from = async |peer: &str, body: &str, signature: &str| {
        report_from(&app, peer.parse().unwrap(), body, "gh-key-1", signature).await
    };
    let good = github.sign("[]");
    // Good reports never count: more of them than the limit all pass.
    for _ in 0..5 {
        assert_eq!(from("192.0.2.1:443", "[]", &good).await.status, StatusCode::OK);
    }
    for _ in 0..3 {
        let r = from("198.51.100.9:443", "[]", "AAAA").await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "signature_invalid"));
    }
    // Past the limit the address is refused before its signature is checked, even
    // a good one; other addresses are not.
    let r = from("198.51.100.9:443", "[]", &good).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{}",
        r.text
    );
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(from("192.0.2.1:443", "[]", &good).await.status, StatusCode::OK);
    // The minute over, the address is heard again.
    app.clock.advance_ms(61_000);
    assert_eq!(from("198.51.100.9:443", "[]", &good).await.status, StatusCode::OK);
}
