//! The REST API of issue 2, route by route and error by error, as a client sees it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{ADMIN_PASSWORD, Auth, TestApp, USER_PASSWORD};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyPrefix, generate_legacy};
use keysmith_server::Clock;
use serde_json::json;
use std::net::SocketAddr;

const KEYS: &str = "/api/v1/api-keys";

fn key_path(key_id: &str) -> String {
    format!("{KEYS}/{key_id}")
}

// ---------------------------------------------------------------- sign-in

#[tokio::test]
async fn sign_in_by_username_or_email_sets_an_http_only_cookie_and_returns_a_csrf_token() {
    let app = TestApp::sqlite().await;
    for login in ["admin", "ADMIN@example.com"] {
        let reply = app
            .request(
                Method::POST,
                "/api/v1/session",
                &Auth::None,
                Some(json!({"username": login, "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let cookie = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(cookie.starts_with("keysmith_session="));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(reply.body["csrf_token"].as_str().unwrap().len() >= 32);
        assert_eq!(reply.body["username"], "admin");
        assert_eq!(reply.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = TestApp::sqlite().await;
    let wrong = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "admin", "password": "nope"})),
        )
        .await;
    let unknown = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "ghost", "password": "nope"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert_eq!(wrong.text, unknown.text);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
}

/// A sign-in attempt from `ip`.
async fn sign_in_from(app: &TestApp, ip: [u8; 4], username: &str, password: &str) -> common::Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": username, "password": password}).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 5000))));
    app.send(request).await
}

fn retry_after(reply: &common::Reply) -> u64 {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text);
    assert_eq!(reply.code(), "rate_limited");
    reply
        .headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

const OWNER: [u8; 4] = [192, 168, 1, 20];
const ATTACKER: [u8; 4] = [203, 0, 113, 9];

#[tokio::test]
async fn failed_sign_ins_slow_down_their_address_with_delays_that_double() {
    let app = TestApp::sqlite().await;
    for _ in 0..5 {
        let r = sign_in_from(&app, OWNER, "admin", "typo").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "five failures are free");
    }
    // Even the right password waits: a held-back attempt tells nothing about it.
    let held = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(retry_after(&held), 1);
    app.clock.advance_ms(1_000);
    let r = sign_in_from(&app, OWNER, "admin", "typo").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        retry_after(&sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await),
        2
    );
    app.clock.advance_ms(2_000);
    let r = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Success forgot this address's failures: typos start free again.
    let r = sign_in_from(&app, OWNER, "admin", "typo").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn an_attacker_guessing_a_thousand_times_never_locks_out_the_owner() {
    let app = TestApp::sqlite().await;
    let mut guessed = 0;
    for i in 0..1_000 {
        let r = sign_in_from(&app, ATTACKER, "admin", &format!("guess-{i}")).await;
        match r.status {
            StatusCode::UNAUTHORIZED => guessed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}: {}", r.text),
        }
        app.clock.advance_ms(1_000);
    }
    assert!(
        guessed < 20,
        "the attacker's address was held back: {guessed} real guesses in 1,000 tries"
    );
    // The attacker cannot confirm a guess while held back, even the right one.
    let r = sign_in_from(&app, ATTACKER, "admin", ADMIN_PASSWORD).await;
    assert!(retry_after(&r) > 0);
    // The owner, elsewhere, signs in at once.
    let r = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn many_addresses_guessing_together_hold_back_only_themselves() {
    let app = TestApp::sqlite().await;
    for i in 0..60u8 {
        let r = sign_in_from(&app, [198, 51, 100, i], "admin", "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // One failure each, but together they put the account under attack: each of them
    // now waits, even with the right password.
    let r = sign_in_from(&app, [198, 51, 100, 0], "admin", ADMIN_PASSWORD).await;
    assert_eq!(retry_after(&r), 60);
    let r = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an address with no failure is never held back"
    );
}

#[tokio::test]
async fn an_operator_unlock_and_password_reset_reach_a_running_server() {
    let app = TestApp::sqlite().await;
    let before = app.sign_in("admin", ADMIN_PASSWORD).await;
    let mut failures = 0;
    while failures < 10 {
        let r = sign_in_from(&app, OWNER, "admin", "forgotten").await;
        match r.status {
            StatusCode::UNAUTHORIZED => failures += 1,
            _ => app.clock.advance_ms(i64::try_from(retry_after(&r)).unwrap() * 1000),
        }
    }
    assert_eq!(
        retry_after(&sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await),
        32
    );

    let now = app.clock.now_ms();
    keysmith_server::operator::unlock(app.store.as_ref(), "admin", now)
        .await
        .unwrap();
    app.clock.advance_ms(1);
    let r = sign_in_from(&app, OWNER, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let new_password = keysmith_core::SecretString::new("a-new-password-after-reset".into());
    keysmith_server::operator::reset_password(app.store.as_ref(), "admin", &new_password, app.clock.now_ms())
        .await
        .unwrap();
    let r = app.try_sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the old password no longer works");
    app.sign_in("admin", new_password.expose()).await;
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Session(before), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "sessions from before the reset have ended"
    );

    let audit = app
        .store
        .list_audit(&keysmith_store::AuditQuery {
            org: Some(app.org.id),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..2], ["user.password_reset", "user.sign_in_unlocked"]);
    assert!(audit[0].actor_id.is_none(), "an operator, not a user");
    let weak = keysmith_core::SecretString::new("short".into());
    let err = keysmith_server::operator::reset_password(app.store.as_ref(), "admin", &weak, 0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("12"), "{err}");
    let err = keysmith_server::operator::unlock(app.store.as_ref(), "nobody", 0)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no user named `nobody`");
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_source_address() {
    let app = TestApp::sqlite().await;
    let attempt = |username: String, ip: [u8; 4]| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"username": username, "password": "guess"}).to_string(),
            ))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 5000))));
        request
    };
    for i in 0..30 {
        let r = app.send(attempt(format!("user{i}"), [10, 0, 0, 1])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.send(attempt("someone".into(), [10, 0, 0, 1])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = app.send(attempt("someone".into(), [10, 0, 0, 2])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "another address is not limited");
}

#[tokio::test]
async fn a_valid_key_is_never_slowed_by_failed_sign_ins() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (key, _) = app.create_key(&admin, "ci").await;
    for _ in 0..12 {
        app.request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "admin", "password": "x"})),
        )
        .await;
    }
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn state_changes_with_a_session_cookie_need_the_csrf_token() {
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", ADMIN_PASSWORD).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(KEYS)
        .header(header::COOKIE, &session.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "x"}).to_string()))
        .unwrap();
    let r = app.send(request).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "csrf_token_invalid");
    let mut wrong = session.clone();
    wrong.csrf = "A".repeat(43);
    let r = app
        .request(Method::POST, KEYS, &Auth::Session(wrong), Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.code(), "csrf_token_invalid");
    // Reads need no token.
    let request = Request::builder()
        .uri(KEYS)
        .header(header::COOKIE, &session.cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::OK);
    let r = app
        .request(Method::POST, KEYS, &Auth::Session(session), Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", ADMIN_PASSWORD).await;
    let auth = Auth::Session(session.clone());
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &auth, None).await.status,
        StatusCode::OK
    );
    let r = app.request(Method::DELETE, "/api/v1/session", &auth, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = app.request(Method::GET, "/api/v1/viewer", &auth, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "session_expired");
}

#[tokio::test]
async fn sessions_expire_after_their_lifetime() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    app.clock.advance_ms(12 * 3600 * 1000 - 1);
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &auth, None).await.status,
        StatusCode::OK
    );
    app.clock.advance_ms(1);
    let r = app.request(Method::GET, "/api/v1/viewer", &auth, None).await;
    assert_eq!(r.code(), "session_expired");
}

// ---------------------------------------------------------------- keys

#[tokio::test]
async fn create_shows_the_full_key_exactly_once() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let r = app
        .request(Method::POST, KEYS, &auth, Some(json!({"name": "  laptop  "})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let key = r.body["key"].as_str().unwrap();
    let key_id = r.body["key_id"].as_str().unwrap();
    assert_eq!(key.len(), 86);
    assert!(key.starts_with(key_id) && key_id.starts_with("wandb_v1_"));
    assert_eq!(r.body["name"], "laptop", "names are trimmed");
    assert_eq!(r.body["owner"], json!({"kind": "user", "username": "admin"}));
    assert!(r.body["created_at"].as_str().unwrap().starts_with("2025-11-26T"));

    let secret = &key[key_id.len() + 1..];
    let list = app.request(Method::GET, KEYS, &auth, None).await;
    let one = app.request(Method::GET, &key_path(key_id), &auth, None).await;
    for shown in [&list, &one] {
        assert_eq!(shown.status, StatusCode::OK);
        assert!(!shown.text.contains(secret), "a secret was shown again: {}", shown.text);
    }
    assert_eq!(list.body["items"][0]["key_id"], key_id);
    assert_eq!(list.body["items"][0]["name"], "laptop");
    assert_eq!(list.body["items"][0]["last_used_at"], serde_json::Value::Null);
    assert!(list.body["items"][0].get("key").is_none());
    assert_eq!(one.body["display"], key_id);
}

#[tokio::test]
async fn a_key_authenticates_as_basic_bearer_and_x_api_key() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (key, key_id) = app.create_key(&auth, "sdk").await;
    for how in [
        Auth::Basic(key.clone()),
        Auth::Bearer(key.clone()),
        Auth::XApiKey(key.clone()),
    ] {
        let r = app.request(Method::GET, "/api/v1/viewer", &how, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["username"], "admin");
        assert_eq!(r.body["kind"], "user");
        assert_eq!(r.body["orgs"], json!([{"name": "default", "role": "admin"}]));
        assert_eq!(
            r.body["auth"],
            json!({"method": "api_key", "key_id": key_id, "scope": "admin"})
        );
    }
    // Basic with any user name, as SCIM clients send it.
    use base64::Engine;
    let raw = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{key}"))
    );
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Raw(raw), None)
            .await
            .status,
        StatusCode::OK
    );
    // A key needs no CSRF token to change state.
    let r = app
        .request(
            Method::POST,
            KEYS,
            &Auth::Bearer(key),
            Some(json!({"name": "made by key"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_viewer_of_a_session_says_so() {
    let app = TestApp::sqlite().await;
    let r = app
        .request(Method::GET, "/api/v1/viewer", &app.admin().await, None)
        .await;
    assert_eq!(
        r.body["auth"],
        json!({"method": "session", "key_id": null, "scope": "admin"})
    );
    assert_eq!(r.body["email"], "admin@example.com");
}

#[tokio::test]
async fn a_deleted_key_fails_on_the_very_next_request() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (key, key_id) = app.create_key(&auth, "doomed").await;
    let as_key = Auth::Bearer(key.clone());
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &as_key, None).await.status,
        StatusCode::OK
    );
    let r = app.request(Method::DELETE, &key_path(&key_id), &auth, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.request(Method::GET, "/api/v1/viewer", &as_key, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "invalid_api_key");
    assert_eq!(
        app.request(Method::GET, &key_path(&key_id), &auth, None).await.code(),
        "api_key_not_found"
    );
    assert_eq!(
        app.request(Method::DELETE, &key_path(&key_id), &auth, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_key_can_delete_itself() {
    let app = TestApp::sqlite().await;
    let (key, key_id) = app.create_key(&app.admin().await, "self").await;
    let auth = Auth::Bearer(key);
    assert_eq!(
        app.request(Method::DELETE, &key_path(&key_id), &auth, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.request(Method::GET, KEYS, &auth, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rename_changes_only_the_name() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (key, key_id) = app.create_key(&auth, "old").await;
    let r = app
        .request(Method::PATCH, &key_path(&key_id), &auth, Some(json!({"name": "new"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "new");
    assert_eq!(r.body["key_id"], key_id.as_str());
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn names_must_have_1_to_128_characters() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    for bad in [json!(""), json!("   "), json!("x".repeat(129)), json!("tab\tinside")] {
        let r = app.request(Method::POST, KEYS, &auth, Some(json!({"name": bad}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.code(), "invalid_name");
    }
    let r = app
        .request(Method::POST, KEYS, &auth, Some(json!({"name": "é".repeat(128)})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (_, key_id) = app.create_key(&auth, "ok").await;
    let r = app
        .request(
            Method::PATCH,
            &key_path(&key_id),
            &auth,
            Some(json!({"name": "y".repeat(129)})),
        )
        .await;
    assert_eq!(r.code(), "invalid_name");
    let (_, _) = app.create_key(&auth, "ok").await; // names need not be unique
}

#[tokio::test]
async fn another_users_key_answers_404_for_every_verb() {
    let app = TestApp::sqlite().await;
    let (_, admins_key_id) = app.create_key(&app.admin().await, "admin's").await;
    app.add_user("mallory").await;
    let mallory = Auth::Session(app.sign_in("mallory", USER_PASSWORD).await);
    let path = key_path(&admins_key_id);
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "pwned"}))),
        (Method::DELETE, None),
    ] {
        let r = app.request(method.clone(), &path, &mallory, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.code(), "api_key_not_found");
    }
    let r = app.request(Method::GET, KEYS, &mallory, None).await;
    assert_eq!(r.body["items"], json!([]), "members see only their own keys");
    let nonexistent = app
        .request(
            Method::GET,
            &key_path("wandb_v1_000000000000000000000000000"),
            &mallory,
            None,
        )
        .await;
    assert_eq!(
        nonexistent.text,
        app.request(Method::GET, &path, &mallory, None).await.text
    );
    let garbage = app
        .request(Method::GET, &key_path("not-a-key-id"), &mallory, None)
        .await;
    assert_eq!(garbage.code(), "api_key_not_found");
}

#[tokio::test]
async fn malformed_unknown_and_mistyped_keys_answer_401() {
    let app = TestApp::sqlite().await;
    let (key, _) = app.create_key(&app.admin().await, "real").await;
    let mut mistyped = key.clone().into_bytes();
    mistyped[50] = if mistyped[50] == b'a' { b'b' } else { b'a' };
    let mistyped = String::from_utf8(mistyped).unwrap();
    let unknown = keysmith_core::generate_v1(&KeyPrefix::default())
        .unwrap()
        .plaintext
        .expose()
        .to_owned();
    let legacy_unknown = "0123456789abcdef0123456789abcdef01234567".to_owned();
    let huge = "a".repeat(10_000);
    for bad in [
        mistyped,
        unknown,
        legacy_unknown,
        "short".into(),
        huge,
        "wandb_v1_".into(),
    ] {
        for how in [
            Auth::Bearer(bad.clone()),
            Auth::Basic(bad.clone()),
            Auth::XApiKey(bad.clone()),
        ] {
            let r = app.request(Method::GET, "/api/v1/viewer", &how, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
            assert_eq!(r.code(), "invalid_api_key");
            assert!(r.headers.get(header::WWW_AUTHENTICATE).is_some());
        }
    }
    for raw in ["Bearer", "Basic !!!notbase64", "Negotiate abc", "Basic YXBpOg=="] {
        let r = app
            .request(Method::GET, "/api/v1/viewer", &Auth::Raw(raw.into()), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{raw}");
        assert_eq!(r.code(), "malformed_authorization");
    }
    // Non-ASCII: inside Basic it is just a wrong key; as a raw header value it is
    // not a valid header at all.
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Basic("ключ".into()), None)
        .await;
    assert_eq!(r.code(), "invalid_api_key");
    let r = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer("ключ".into()), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "malformed_authorization")
    );
    let r = app.request(Method::GET, "/api/v1/viewer", &Auth::None, None).await;
    assert_eq!(r.code(), "unauthenticated");
}

#[tokio::test]
async fn a_bad_key_is_refused_even_with_a_valid_session_cookie() {
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", ADMIN_PASSWORD).await;
    let request = Request::builder()
        .uri("/api/v1/viewer")
        .header(header::COOKIE, &session.cookie)
        .header(header::AUTHORIZATION, "Bearer not-a-key")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.code(), "invalid_api_key");
}

#[tokio::test]
async fn legacy_keys_authenticate_beside_new_keys() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (new_key, _) = app.create_key(&auth, "new").await;
    for prefix in [None, Some(KeyPrefix::parse("local").unwrap())] {
        let legacy = generate_legacy(prefix.as_ref()).unwrap();
        app.import_key(&legacy, "admin").await;
        let r = app
            .request(
                Method::GET,
                "/api/v1/viewer",
                &Auth::Basic(legacy.plaintext.expose().into()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["auth"]["key_id"], legacy.key_id.as_str());
        let shown = app
            .request(Method::GET, &key_path(legacy.key_id.as_str()), &auth, None)
            .await;
        assert_eq!(shown.body["format"], "legacy");
        assert_eq!(shown.body["display"], legacy.display);
        assert!(!shown.text.contains(&legacy.plaintext.expose()[6..]));
    }
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Basic(new_key), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_service_account_cannot_sign_in_with_a_password() {
    let app = TestApp::sqlite().await;
    app.store
        .create_user(
            keysmith_store::NewUser {
                kind: PrincipalKind::ServiceAccount,
                username: "robot".into(),
                email: None,
                password_hash: None,
            },
            common::START_MS,
        )
        .await
        .unwrap();
    let r = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "robot", "password": ""})),
        )
        .await;
    assert_eq!(r.code(), "invalid_credentials");
}

// ---------------------------------------------------------------- listing

#[tokio::test]
async fn lists_page_with_a_stable_cursor() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_key(&auth, &format!("k{i}")).await.1);
        app.clock.advance_ms(1);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut path = format!("{KEYS}?limit=2");
    loop {
        let r = app.request(Method::GET, &path, &auth, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["key_id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("{KEYS}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, created, "newest first, each key once");
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    for (query, code) in [
        ("limit=0", "invalid_query"),
        ("limit=201", "invalid_query"),
        ("limit=abc", "invalid_query"),
        ("sort=name", "invalid_query"),
        ("cursor=%%%", "invalid_query"),
        ("cursor=bm90LWEtY3Vyc29y", "invalid_cursor"),
    ] {
        let r = app.request(Method::GET, &format!("{KEYS}?{query}"), &auth, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(
            r.code() == code || (code == "invalid_query" && r.code() == "invalid_cursor"),
            "{query}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn last_used_is_shown_at_once_and_written_in_batches() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (key, key_id) = app.create_key(&auth, "used").await;
    app.clock.advance_ms(5_000);
    app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
        .await;
    let r = app.request(Method::GET, &key_path(&key_id), &auth, None).await;
    assert_eq!(r.body["last_used_at"], "2025-11-26T19:00:05Z");
    let parsed = keysmith_core::KeyId::parse(&key_id).unwrap();
    assert_eq!(
        app.store.get_key(&parsed).await.unwrap().unwrap().last_used_at,
        None,
        "not yet written"
    );
    assert_eq!(app.state.usage.flush(app.store.as_ref()).await.unwrap(), 1);
    assert_eq!(
        app.store.get_key(&parsed).await.unwrap().unwrap().last_used_at,
        Some(common::START_MS + 5_000)
    );
}

#[tokio::test]
async fn rotation_as_the_seed_describes_it_works() {
    // 1. create a new key; 2. switch to it; 3. test it; 4. delete the old one.
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let (old, old_id) = app.create_key(&auth, "ci").await;
    let (new, _) = app.create_key(&Auth::Bearer(old.clone()), "ci").await;
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(new.clone()), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(old.clone()), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .request(Method::DELETE, &key_path(&old_id), &Auth::Bearer(new.clone()), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(old), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(new), None)
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn malformed_bodies_get_4xx_with_the_error_shape() {
    let app = TestApp::sqlite().await;
    let auth = app.admin().await;
    let Auth::Session(session) = &auth else { unreachable!() };
    let send = |body: Body, content_type: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(KEYS)
            .header(header::COOKIE, &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap()
    };
    let cases = [
        (
            send(Body::from("{\"name\": "), "application/json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            send(Body::from("[]"), "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(Body::from("{\"name\": 5}"), "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(Body::from("{}"), "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(Body::from("{\"name\":\"a\",\"admin\":true}"), "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(Body::from("name=a"), "application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            send(
                Body::from(format!("{{\"name\":\"{}\"}}", "x".repeat(70_000))),
                "application/json",
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            send(Body::from(vec![0xff, 0xfe, 0x00]), "application/json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    for (request, status, code) in cases {
        let r = app.send(request).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.text);
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "admin", "password": 12345678})),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    assert!(!r.text.contains("12345678"), "a value was echoed: {}", r.text);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let app = TestApp::sqlite().await;
    let r = app
        .request(Method::GET, "/api/v1/nothing-here", &Auth::None, None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "route_not_found"));
    let r = app.request(Method::PUT, KEYS, &Auth::None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::sqlite().await;
    let r = app.request(Method::GET, "/healthz", &Auth::None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let r = app.request(Method::GET, "/readyz", &Auth::None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::sqlite().await;
    let r = app.request(Method::GET, "/api/v1/viewer", &Auth::None, None).await;
    assert_eq!(r.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
}

/// `GET /api/v1/viewer` is answered on the connection, outside the router: the answer
/// must be the router's, header for header, for every kind of caller and refusal.
#[tokio::test]
async fn the_viewer_is_answered_alike_on_the_connection_and_by_the_router() {
    use tower::ServiceExt;
    // No request lines are logged here, so the connection answers the viewer itself.
    assert!(!tracing::enabled!(tracing::Level::INFO));
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (key, _) = app.create_key(&Auth::Session(session.clone()), "k").await;
    let basic = {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
        format!("Basic {encoded}")
    };
    let cases: Vec<(&str, Vec<(header::HeaderName, String)>)> = vec![
        ("key, cold", vec![(header::AUTHORIZATION, format!("Bearer {key}"))]),
        ("key", vec![(header::AUTHORIZATION, format!("Bearer {key}"))]),
        (
            "key, caller cold",
            vec![(header::AUTHORIZATION, format!("Bearer {key}"))],
        ),
        ("key in Basic", vec![(header::AUTHORIZATION, basic)]),
        ("session", vec![(header::COOKIE, session.cookie.clone())]),
        ("nothing", vec![]),
        (
            "unknown key",
            vec![(header::AUTHORIZATION, "Bearer wandb_v1_nope".into())],
        ),
        ("not a key", vec![(header::AUTHORIZATION, "Basic !!!".into())]),
    ];
    let peer: SocketAddr = "192.0.2.9:4000".parse().unwrap();
    for (case, headers) in cases {
        let request = || {
            let mut r = Request::builder().method(Method::GET).uri("/api/v1/viewer");
            for (name, value) in &headers {
                r = r.header(name, value);
            }
            let mut r = r.body(Body::empty()).unwrap();
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        };
        // Each of the connection's lanes: warm, a key to read, a caller to read.
        match case {
            "key, cold" => app.state.cache.clear(),
            "key, caller cold" => app.state.app.callers.clear(),
            _ => {}
        }
        let misses = (
            app.state.metrics.cache_misses.get(),
            app.state.app.callers.counters().misses.get(),
        );
        let direct = app.send(request()).await;
        let read = (
            app.state.metrics.cache_misses.get() - misses.0,
            app.state.app.callers.counters().misses.get() - misses.1,
        );
        match case {
            "key" | "key in Basic" => assert_eq!(read, (0, 0), "{case}: warm, nothing read"),
            "key, cold" => assert_eq!(read, (1, 0), "{case}: the key read once, the caller warm"),
            "key, caller cold" => assert_eq!(read, (0, 1), "{case}: the caller read once"),
            _ => {}
        }
        let mut routed = app.router.clone().oneshot(request()).await.unwrap();
        // The router states the length the body already knows; hyper writes it on the
        // wire for both from the body's size.
        routed.headers_mut().remove(header::CONTENT_LENGTH);
        assert_eq!(direct.status, routed.status(), "{case}");
        assert_eq!(&direct.headers, routed.headers(), "{case}");
        let body = axum::body::to_bytes(routed.into_body(), 1 << 20).await.unwrap();
        assert_eq!(direct.text.as_bytes(), &body[..], "{case}");
    }
    // Timed under its route like any other request.
    let r = app.request(Method::GET, "/metrics", &Auth::None, None).await;
    assert!(
        r.text.contains(
            r#"keysmith_http_request_duration_seconds_count{method="GET",route="/api/v1/viewer",status="2xx"}"#
        ),
        "{}",
        r.text
    );
}
