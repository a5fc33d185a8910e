//! The organization's key report (`GET /api/v1/orgs/{org}/key-report`): keys never
//! used, idle, expiring soon, and write or admin keys that made only reads, judged by
//! the requests each door saw, with the test clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Auth, TestApp};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

async fn create(app: &TestApp, auth: &Auth, body: Value) -> (String, String) {
    let r = app.request(Method::POST, "/api/v1/api-keys", auth, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    )
}

/// Forward auth for `key`, with the method the proxy names (or none).
async fn forward(app: &TestApp, key: &str, method: Option<&str>) {
    let mut request = Request::builder()
        .uri("/api/v1/forward-auth")
        .header("authorization", format!("Bearer {key}"));
    if let Some(method) = method {
        request = request.header("x-forwarded-method", method);
    }
    let r = app.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

fn names(section: &Value) -> Vec<&str> {
    section["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_report_lists_unused_idle_expiring_and_over_privileged_keys() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    create(&app, &admin, json!({"name": "auditor", "scope": "read"})).await;
    create(&app, &admin, json!({"name": "unused"})).await;
    let (idle, _) = create(&app, &admin, json!({"name": "idle"})).await;
    let (reader, _) = create(&app, &admin, json!({"name": "reader"})).await;
    let (proxied, _) = create(&app, &admin, json!({"name": "proxied"})).await;
    let (unknown, _) = create(&app, &admin, json!({"name": "unknown-method"})).await;
    let (writer, writer_id) = create(&app, &admin, json!({"name": "writer", "scope": "write"})).await;
    let (narrow, _) = create(&app, &admin, json!({"name": "narrow", "scope": "read"})).await;
    app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    create(&app, &dev, json!({"name": "devs-unused"})).await;
    app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(idle), None)
        .await;

    app.clock.advance_ms(95 * DAY_MS);
    let admin = app.admin().await;
    let viewer = |key: &str| Auth::Bearer(key.to_owned());
    for key in [&reader, &narrow] {
        let r = app.request(Method::GET, "/api/v1/api-keys", &viewer(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    forward(&app, &proxied, Some("GET")).await;
    forward(&app, &unknown, None).await;
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/api-keys/{writer_id}"),
            &viewer(&writer),
            Some(json!({"name": "writer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    create(&app, &admin, json!({"name": "soon", "expires_in_days": 3})).await;
    app.state.usage.flush(app.store.as_ref()).await.unwrap();

    let r = app
        .request(Method::GET, "/api/v1/orgs/default/key-report", &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let report = &r.body;
    assert_eq!(report["organization"], "default");
    assert_eq!(
        (report["never_used_days"].as_u64(), report["idle_days"].as_u64()),
        (Some(7), Some(90))
    );
    assert_eq!(report["expiring_within_days"], 7);
    assert_eq!(report["reads_only_days"], 30);
    let mut never = names(&report["never_used"]);
    never.sort_unstable();
    assert_eq!(
        never,
        ["auditor", "devs-unused", "unused"],
        "made 95 days ago, never used"
    );
    assert_eq!(names(&report["idle"]), ["idle"], "used 95 days ago");
    assert_eq!(names(&report["expiring"]), ["soon"]);
    let mut over = names(&report["over_privileged"]);
    over.sort_unstable();
    assert_eq!(
        over,
        ["proxied", "reader"],
        "admin keys whose requests were all GETs; not the writer, the read key, or a \
         forward-auth request of unknown method"
    );
    assert_eq!(report["never_used"]["truncated"], false);

    let listed = app
        .request(Method::GET, &format!("/api/v1/api-keys/{writer_id}"), &admin, None)
        .await;
    assert!(listed.body["last_write_at"].is_string(), "{}", listed.text);

    // An organization's idle setting is the report's idle period.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &admin,
            Some(json!({"unused_key_notice_days": 100})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .request(Method::GET, "/api/v1/orgs/default/key-report", &admin, None)
        .await;
    assert_eq!(r.body["idle_days"], 100);
    assert!(names(&r.body["idle"]).is_empty(), "idle for 95 days only");

    // Org admins only; a read key of an admin may read it.
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    let r = app
        .request(Method::GET, "/api/v1/orgs/default/key-report", &dev, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app
        .request(Method::GET, "/api/v1/orgs/nowhere/key-report", &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app
        .request(Method::GET, "/api/v1/orgs/default/key-report", &viewer(&narrow), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The report's page: four sections in the organization's key table, with the
/// organization's own idle period; members see no report.
#[tokio::test]
async fn the_key_report_page_shows_the_same_sections() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    create(&app, &admin, json!({"name": "soon-gone", "expires_in_days": 2})).await;
    let session = app.sign_in("admin", common::ADMIN_PASSWORD).await;
    let page = common::get(&app, Some(&session), "/org/default/key-report").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for text in [
        "Never used (0)",
        "Idle (0)",
        "Expiring soon (1)",
        "Over-privileged (0)",
        "soon-gone",
        "Not used for 90 days",
        "aria-current=\"page\">Key report",
    ] {
        assert!(page.text.contains(text), "{text}: {}", page.text);
    }
    app.add_user("dev").await;
    let dev = app.sign_in("dev", common::USER_PASSWORD).await;
    let page = common::get(&app, Some(&dev), "/org/default/key-report").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.text.contains("soon-gone"));
}
