//! Each action that several doors expose, driven through every one of them (REST,
//! GraphQL as the wandb SDK sends it, the web form) with the same outcome, the same
//! audit entry and the same webhook event: the application decides once, and the
//! doors only parse and render (docs/DESIGN.md §5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use common::{Auth, TestApp, create_in_browser, post};
use keysmith_store::{AuditEntry, AuditQuery};
use serde_json::{Value, json};

const GENERATE: &str = "mutation GenerateApiKey($description: String) {\n  result: generateApiKey(input: {description: $description}) { apiKey { id name description } }\n}";
const DELETE: &str = "mutation DeleteApiKey($id: String!) {\n  result: deleteApiKey(input: {id: $id}) { success }\n}";

async fn gql(app: &TestApp, key: &str, query: &str, variables: Value) -> common::Reply {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "W&B Public Client 0.31.0")
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .body(Body::from(json!({"query": query, "variables": variables}).to_string()))
        .unwrap();
    app.send(request).await
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    app.store
        .list_audit(&AuditQuery {
            org: Some(app.org.id),
            action: Some(action.into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// The audit entry's shape, without what differs by nature between two keys: who
/// acted, on what kind of thing, from where, and which facts it records.
fn shape(entry: &AuditEntry) -> (String, String, Option<String>, Vec<String>) {
    let detail: Value = serde_json::from_str(entry.detail.as_deref().unwrap_or("{}")).unwrap();
    let mut keys: Vec<String> = detail.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    (
        entry.actor_name.clone(),
        entry.target_kind.clone(),
        entry.source_address.clone(),
        keys,
    )
}

/// The webhook events queued for `hook`, by type.
async fn events(app: &TestApp, hook: i64, event: &str) -> Vec<Value> {
    keysmith_server::webhooks::pump(&app.state).await.unwrap();
    app.store
        .list_deliveries(hook, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.event_type == event)
        .map(|d| serde_json::from_str(&d.payload).unwrap())
        .collect()
}

#[tokio::test]
async fn a_key_created_and_deleted_through_rest_graphql_and_the_web_is_the_same_change() {
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", common::ADMIN_PASSWORD).await;
    let admin = Auth::Session(session.clone());
    let hook = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/webhooks",
            &admin,
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["api_key.created", "api_key.deleted"]})),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let hook = hook.body["id"].as_i64().unwrap();

    // Create: one key through each door.
    let (rest_key, rest_id) = app.create_key(&admin, "via rest").await;
    let r = gql(&app, &rest_key, GENERATE, json!({"description": "via graphql"})).await;
    let gql_key = r.body["data"]["result"]["apiKey"]["name"].as_str().unwrap().to_owned();
    let gql_node = r.body["data"]["result"]["apiKey"]["id"].clone();
    let (web_key, web_id, _) = create_in_browser(&app, &session, "via web", None).await;
    for key in [&rest_key, &gql_key, &web_key] {
        let r = app
            .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "every door's key works");
    }
    let created = audit(&app, "api_key.created").await;
    assert_eq!(created.len(), 3, "one per door");
    let names: Vec<Value> = created
        .iter()
        .map(|e| serde_json::from_str::<Value>(e.detail.as_deref().unwrap()).unwrap()["name"].clone())
        .collect();
    assert_eq!(names, [json!("via web"), json!("via graphql"), json!("via rest")]);
    let first = shape(&created[0]);
    assert_eq!(first.0, "admin");
    assert_eq!(first.1, "api_key");
    for entry in &created {
        assert_eq!(shape(entry), first, "the same audit entry from every door");
        let detail: Value = serde_json::from_str(entry.detail.as_deref().unwrap()).unwrap();
        assert_eq!(
            (detail["owner"].as_str(), detail["format"].as_str()),
            (Some("admin"), Some("v1"))
        );
    }
    let sent = events(&app, hook, "api_key.created").await;
    assert_eq!(sent.len(), 3, "one event per door's key: {sent:?}");
    let data_keys = |v: &Value| {
        let mut k: Vec<String> = v["data"]["detail"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert!(sent.iter().all(|e| data_keys(e) == data_keys(&sent[0])), "{sent:?}");

    // Delete: each key through another door than the one that made it.
    let r = gql(&app, &rest_key, DELETE, json!({"id": gql_node})).await;
    assert_eq!(r.body["data"]["result"]["success"], true, "{}", r.text);
    let r = post(
        &app,
        Some(&session),
        &format!("/keys/{rest_id}/delete"),
        &[("csrf", &session.csrf), ("back", "/settings")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{web_id}"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for key in [&rest_key, &gql_key, &web_key] {
        let r = app
            .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "deleted from any door, refused at once"
        );
    }
    let deleted = audit(&app, "api_key.deleted").await;
    assert_eq!(deleted.len(), 3);
    assert!(deleted.iter().all(|e| shape(e) == shape(&deleted[0])), "{deleted:?}");
    assert_eq!(shape(&deleted[0]).3, ["name", "owner"]);
    assert_eq!(events(&app, hook, "api_key.deleted").await.len(), 3);
}

/// Errors mean the same from every door: a key the caller may not see is "not found"
/// through REST (404 `api_key_not_found`), GraphQL (W&B's PERMISSION_ERROR with the same
/// stable code) and the web (the 404 page).
#[tokio::test]
async fn another_users_key_is_not_found_through_every_door() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let (_, admin_key_id) = app.create_key(&admin, "admin's").await;
    app.add_user("bob").await;
    let bob_session = app.sign_in("bob", common::USER_PASSWORD).await;
    let bob = Auth::Session(bob_session.clone());
    let (bob_key, _) = app.create_key(&bob, "bob's").await;

    let r = app
        .request(Method::DELETE, &format!("/api/v1/api-keys/{admin_key_id}"), &bob, None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "api_key_not_found"));
    let node = base64::engine::general_purpose::STANDARD.encode(format!("ApiKey:{admin_key_id}"));
    let r = gql(&app, &bob_key, DELETE, json!({"id": node})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "PERMISSION_ERROR",
        "{}",
        r.text
    );
    assert_eq!(r.body["errors"][0]["extensions"]["keysmith_code"], "api_key_not_found");
    let r = post(
        &app,
        Some(&bob_session),
        &format!("/keys/{admin_key_id}/delete"),
        &[("csrf", &bob_session.csrf), ("back", "/settings")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("api_key_not_found"), "{}", r.text);
    assert!(audit(&app, "api_key.deleted").await.is_empty(), "nothing was deleted");
}
