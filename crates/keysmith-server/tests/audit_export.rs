//! The audit log as JSON lines for a SIEM (`GET /api/v1/orgs/{org}/audit/export`):
//! oldest first, each entry once with its stable ID, resumable from the
//! `Keysmith-Next-After` header without a gap or a repeat.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, TestApp};
use keysmith_server::Clock as _;
use serde_json::Value;

async fn export(app: &TestApp, auth: &Auth, query: &str) -> (StatusCode, Vec<Value>, String, String) {
    let r = app
        .request(
            Method::GET,
            &format!("/api/v1/orgs/default/audit/export{query}"),
            auth,
            None,
        )
        .await;
    let lines = r
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let next = r
        .headers
        .get("keysmith-next-after")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let kind = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status, lines, next, kind)
}

#[tokio::test]
async fn the_export_resumes_from_its_cursor_with_nothing_missing_or_repeated() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    for i in 0..7 {
        app.create_key(&admin, &format!("k{i}")).await;
    }
    let (status, first, next, kind) = export(&app, &admin, "?limit=4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/x-ndjson");
    assert_eq!(first.len(), 4);
    let mut all = first;
    let mut cursor = next;
    loop {
        let (_, lines, next, _) = export(&app, &admin, &format!("?limit=4&after={cursor}")).await;
        if lines.is_empty() {
            assert_eq!(next, cursor, "nothing newer: the same cursor");
            break;
        }
        all.extend(lines);
        cursor = next;
    }
    let ids: Vec<i64> = all.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "oldest first, each once");
    // The same entries the paged log shows, newest first there.
    let page = app
        .request(Method::GET, "/api/v1/orgs/default/audit?limit=200", &admin, None)
        .await;
    let mut listed: Vec<String> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["action"], e["target"]))
        .collect();
    listed.reverse();
    let exported: Vec<String> = all.iter().map(|e| format!("{} {}", e["action"], e["target"])).collect();
    assert_eq!(exported, listed);
    let created = all.iter().filter(|e| e["action"] == "api_key.created").count();
    assert_eq!(created, 7);
    assert!(
        all.iter()
            .all(|e| e["organization"] == "default" && e["at"].is_string())
    );
    // Sealed before it is exported: each line carries its hash in the audit chain.
    assert!(
        all.iter().all(|e| e["chain"].as_str().is_some_and(|c| c.len() == 64)),
        "{all:?}"
    );

    app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    assert_eq!(export(&app, &dev, "").await.0, StatusCode::FORBIDDEN);
    for bad in ["?limit=0", "?limit=1001", "?after=-1", "?after=x"] {
        assert_eq!(export(&app, &admin, bad).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    // The largest cursor there is (schemathesis found it panicking): nothing after it.
    let (status, lines, next, _) = export(&app, &admin, &format!("?after={}", i64::MAX)).await;
    assert_eq!((status, lines.len()), (StatusCode::OK, 0));
    assert_eq!(next, i64::MAX.to_string());
}

/// `since` starts the export at the first entry written at or after a time; the
/// answer's cursor resumes it as usual. Not together with `after`; a bad time is 400.
#[tokio::test]
async fn the_export_starts_at_a_time() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    app.create_key(&admin, "early").await;
    app.clock.advance_ms(3_600_000);
    let since = keysmith_app::time::rfc3339(app.clock.now_ms());
    app.create_key(&admin, "later").await;
    app.create_key(&admin, "latest").await;
    let (status, lines, next, _) = export(&app, &admin, &format!("?since={since}")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = lines
        .iter()
        .filter(|l| l["action"] == "api_key.created")
        .map(|l| l["detail"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["later", "latest"], "from the time on, nothing before it");
    let (_, more, again, _) = export(&app, &admin, &format!("?after={next}")).await;
    assert!(more.is_empty() && again == next, "resumed by the cursor: nothing newer");
    let future = keysmith_app::time::rfc3339(app.clock.now_ms() + 3_600_000);
    let (status, lines, _, _) = export(&app, &admin, &format!("?since={future}")).await;
    assert_eq!((status, lines.len()), (StatusCode::OK, 0));
    for bad in [format!("?since={since}&after=0"), "?since=yesterday".to_owned()] {
        assert_eq!(export(&app, &admin, &bad).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
}
