//! Identity federation's wire contracts: the issuer endpoints (REST shapes, who may,
//! stable codes), and `POST /oidc/token` (RFC 6749 §5.1/§5.2 answers, `no-store`, the
//! failure limit's 429), with the access token then used through REST, GraphQL and
//! forward auth like a key. The issuer is served on loopback and fetched over HTTP.
//! The rules themselves are tested at the application (keysmith-app/tests/federation.rs)
//! and with the real wandb SDK (keysmith-cli/tests/wandb_sdk.rs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, Reply, START_MS, TestApp};
use keysmith_pgtest::issuer::{LoopbackIssuer, Signer};
use keysmith_server::Settings;
use serde_json::json;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn token(app: &TestApp, content_type: &str, body: String) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/oidc/token")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

/// Asserts an API error answer: its status and stable code.
fn answered(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.text);
}

fn claims(issuer: &str, sub: &str, exp_in_secs: i64) -> serde_json::Value {
    json!({"iss": issuer, "sub": sub, "aud": "default", "exp": START_MS / 1000 + exp_in_secs})
}

#[tokio::test]
async fn issuers_and_the_token_endpoint_answer_as_documented() {
    let settings = Settings {
        key_failures_per_minute: 5,
        ..Settings::default()
    };
    let app = TestApp::sqlite_with(settings).await;
    let admin = app.admin().await;
    app.add_user("alice").await;
    let signer = Signer::new("k1");
    let issuer = LoopbackIssuer::start(&[&signer]);

    // Registering: org admins only; the issuer is fetched at once; stable codes.
    let path = "/api/v1/orgs/default/jwt-issuers";
    let member = Auth::Session(app.sign_in("alice", common::USER_PASSWORD).await);
    let alice = app
        .request(Method::POST, path, &member, Some(json!({"issuer": issuer.url})))
        .await;
    answered(&alice, StatusCode::FORBIDDEN, "forbidden");
    let bad = app
        .request(
            Method::POST,
            path,
            &admin,
            Some(json!({"issuer": "http://issuer.example.com"})),
        )
        .await;
    answered(&bad, StatusCode::BAD_REQUEST, "invalid_value");
    let down = app
        .request(
            Method::POST,
            path,
            &admin,
            Some(json!({"issuer": "http://127.0.0.1:9"})),
        )
        .await;
    answered(&down, StatusCode::BAD_REQUEST, "invalid_value");
    assert!(
        down.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{}",
        down.text
    );
    // Its keys must come over https too (plain http only on loopback).
    let downgrading = LoopbackIssuer::start_naming(&[&signer], Some("http://keys.example.com/jwks"));
    let r = app
        .request(Method::POST, path, &admin, Some(json!({"issuer": downgrading.url})))
        .await;
    answered(&r, StatusCode::BAD_REQUEST, "invalid_value");
    assert!(r.text.contains("is not an https URL"), "{}", r.text);
    let added = app
        .request(Method::POST, path, &admin, Some(json!({"issuer": issuer.url})))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(
        (&added.body["issuer"], &added.body["audience"]),
        (&json!(issuer.url), &json!("default"))
    );
    let again = app
        .request(Method::POST, path, &admin, Some(json!({"issuer": issuer.url})))
        .await;
    answered(&again, StatusCode::CONFLICT, "already_exists");
    let listed = app.request(Method::GET, path, &admin, None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    // The grant: a form, once each parameter, the jwt-bearer type.
    let jwt = signer.sign(&claims(&issuer.url, "alice@example.com", 1800));
    let r = token(
        &app,
        "application/json",
        json!({"grant_type": GRANT, "assertion": jwt}).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request")),
        "{}",
        r.text
    );
    let r = token(
        &app,
        "application/x-www-form-urlencoded",
        common::form_body(&[("grant_type", GRANT), ("grant_type", GRANT), ("assertion", &jwt)]),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request")),
        "{}",
        r.text
    );
    let r = token(
        &app,
        "application/x-www-form-urlencoded",
        common::form_body(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (StatusCode::BAD_REQUEST, &json!("unsupported_grant_type")),
        "{}",
        r.text
    );

    let r = token(
        &app,
        "application/x-www-form-urlencoded; charset=utf-8",
        common::form_body(&[("grant_type", GRANT), ("assertion", &jwt)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        (&r.body["token_type"], &r.body["expires_in"]),
        (&json!("Bearer"), &json!(1800))
    );
    let access = r.body["access_token"].as_str().unwrap().to_owned();

    // It works wherever a key does.
    let viewer = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(access.clone()), None)
        .await;
    assert_eq!(
        (viewer.status, &viewer.body["username"]),
        (StatusCode::OK, &json!("alice")),
        "{}",
        viewer.text
    );
    let gql = app
        .request(
            Method::POST,
            "/graphql",
            &Auth::Basic(access.clone()),
            Some(json!({"query": "{ viewer { username } }"})),
        )
        .await;
    assert_eq!(gql.body["data"]["viewer"]["username"], "alice", "{}", gql.text);
    let fwd = app
        .request(Method::GET, "/api/v1/forward-auth", &Auth::Bearer(access.clone()), None)
        .await;
    assert_eq!(fwd.status, StatusCode::OK, "{}", fwd.text);

    // Listed as a federated session; not renamed or rotated; deleted, it ends at once.
    let list = app
        .request(Method::GET, "/api/v1/api-keys?owner=alice", &admin, None)
        .await;
    let session = &list.body["items"][0];
    assert_eq!(
        (&session["kind"], &session["federated_issuer"]),
        (&json!("federated_session"), &json!(issuer.url))
    );
    let key_id = session["key_id"].as_str().unwrap().to_owned();
    let renamed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/api-keys/{key_id}"),
            &member,
            Some(json!({"name": "x"})),
        )
        .await;
    answered(&renamed, StatusCode::BAD_REQUEST, "invalid_value");
    let rotated = app
        .request(
            Method::POST,
            &format!("/api/v1/api-keys/{key_id}/rotate"),
            &member,
            Some(json!({})),
        )
        .await;
    answered(&rotated, StatusCode::BAD_REQUEST, "invalid_value");
    let deleted = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), &member, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let viewer = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(access), None)
        .await;
    assert_eq!(viewer.status, StatusCode::UNAUTHORIZED);

    // Refusals: one answer, counted against the address with wrong keys (the deleted
    // session's refusal above was the first of five); past the limit, 429.
    let wrong = signer.sign(&claims(&issuer.url, "nobody@example.com", 1800));
    for _ in 0..4 {
        let r = token(
            &app,
            "application/x-www-form-urlencoded",
            common::form_body(&[("grant_type", GRANT), ("assertion", &wrong)]),
        )
        .await;
        assert_eq!(
            (r.status, &r.body),
            (
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_grant", "error_description": "the assertion was not accepted"})
            )
        );
    }
    let r = token(
        &app,
        "application/x-www-form-urlencoded",
        common::form_body(&[("grant_type", GRANT), ("assertion", &jwt)]),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("slow_down")),
        "{}",
        r.text
    );
    assert!(r.headers.contains_key(header::RETRY_AFTER));

    // Every answer is counted by its outcome: 1 issued; 4 refused JWTs; 2 bad requests
    // (JSON, a repeated parameter); 1 unsupported grant type; 1 slow_down.
    let metrics = app.request(Method::GET, "/metrics", &Auth::None, None).await.text;
    for (outcome, count) in [
        ("issued", 1),
        ("invalid_grant", 4),
        ("invalid_request", 2),
        ("unsupported_grant_type", 1),
        ("slow_down", 1),
        ("server_error", 0),
    ] {
        let line = format!("keysmith_jwt_grants_total{{outcome=\"{outcome}\"}} {count}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // Removing the issuer; a second time is the stable not-found.
    let id = added.body["id"].as_i64().unwrap();
    let gone = app.request(Method::DELETE, &format!("{path}/{id}"), &admin, None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let gone = app.request(Method::DELETE, &format!("{path}/{id}"), &admin, None).await;
    answered(&gone, StatusCode::NOT_FOUND, "jwt_issuer_not_found");
}

/// The web page does what the API does: the same issuer, the same audit entry, the
/// same refusals (a page with the stable code).
#[tokio::test]
async fn the_federation_page_adds_and_removes_issuers_like_the_api() {
    use common::{get, location, post};
    let app = TestApp::sqlite().await;
    let admin = app.sign_in("admin", common::ADMIN_PASSWORD).await;
    app.add_user("alice").await;
    let alice = app.sign_in("alice", common::USER_PASSWORD).await;
    let signer = Signer::new("k1");
    let issuer = LoopbackIssuer::start(&[&signer]);

    let empty = get(&app, Some(&admin), "/org/default/federation").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.text.contains("No JWT issuers yet."), "{}", empty.text);
    let refused = get(&app, Some(&alice), "/org/default/federation").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("<code>forbidden</code>"), "{}", refused.text);

    let csrf = admin.csrf.as_str();
    let bad = post(
        &app,
        Some(&admin),
        "/org/default/federation",
        &[("csrf", csrf), ("issuer", "ftp://x")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("<code>invalid_value</code>"), "{}", bad.text);
    let added = post(
        &app,
        Some(&admin),
        "/org/default/federation",
        &[("csrf", csrf), ("issuer", &issuer.url), ("audience", "keysmith")],
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    assert_eq!(location(&added), "/org/default/federation?done=issuer-added");
    let page = get(&app, Some(&admin), "/org/default/federation").await;
    assert!(
        page.text.contains(&issuer.url) && page.text.contains("<code>keysmith</code>"),
        "{}",
        page.text
    );

    let listed = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/jwt-issuers",
            &Auth::Session(admin.clone()),
            None,
        )
        .await;
    assert_eq!(listed.body["items"][0]["audience"], "keysmith");
    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=jwt_issuer.added",
            &Auth::Session(admin.clone()),
            None,
        )
        .await;
    assert_eq!(
        (&audit.body["items"][0]["target"], &audit.body["items"][0]["detail"]),
        (&json!(issuer.url), &json!({"audience": "keysmith"}))
    );

    // An external service account says so on its team's page.
    let admin_auth = Auth::Session(admin.clone());
    app.request(
        Method::POST,
        "/api/v1/orgs/default/teams",
        &admin_auth,
        Some(json!({"name": "vision"})),
    )
    .await;
    let account = json!({"name": "ci-train", "team": "vision", "external_subject": "repo:acme/train"});
    let created = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &admin_auth,
            Some(account),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let team = get(&app, Some(&admin), "/vision/service-accounts").await;
    assert!(
        team.text
            .contains("Signs in with a JWT whose <code>sub</code> is <code>repo:acme/train</code>"),
        "{}",
        team.text
    );

    let id = listed.body["items"][0]["id"].as_i64().unwrap();
    let removed = post(
        &app,
        Some(&admin),
        &format!("/org/default/federation/{id}/delete"),
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(location(&removed), "/org/default/federation?done=issuer-removed");
    let again = post(
        &app,
        Some(&admin),
        &format!("/org/default/federation/{id}/delete"),
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(
        again.text.contains("<code>jwt_issuer_not_found</code>"),
        "{}",
        again.text
    );
}
