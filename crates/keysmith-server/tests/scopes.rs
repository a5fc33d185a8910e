//! Least-privilege keys (docs/DESIGN.md §3, "Scopes"): one test per rule, through
//! every door that takes a key (REST, GraphQL, forward auth, SCIM). The generated
//! matrix over seats × scopes × actions × owners is in permissions.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, TestApp, gql};
use serde_json::{Value, json};

const KEYS: &str = "/api/v1/api-keys";
const GENERATE: &str = "mutation GenerateApiKey($description: String) {\n  result: generateApiKey(input: {description: $description}) { apiKey { id name description } }\n}";
const DELETE: &str = "mutation DeleteApiKey($id: String!) {\n  result: deleteApiKey(input: {id: $id}) { success }\n}";
const CREATE_TEAM: &str = "mutation CreateTeam($teamName: String!) {\n  result: createTeam(input: {teamName: $teamName}) { entity { id name } }\n}";
const VIEWER: &str = "query Viewer { viewer { id username apiKeys { edges { node { id name } } } } }";

/// A key made with `auth` for its own principal with `scope` (`None`: no scope asked);
/// returns the answer.
async fn create(app: &TestApp, auth: &Auth, name: &str, scope: Option<&str>) -> common::Reply {
    let mut body = json!({ "name": name });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    app.request(Method::POST, KEYS, auth, Some(body)).await
}

/// The admin's keys of each scope, made from a session: (read, write, admin) plaintexts.
async fn admin_keys(app: &TestApp) -> (String, String, String) {
    let session = app.admin().await;
    let mut keys = Vec::new();
    for scope in ["read", "write", "admin"] {
        let r = create(app, &session, &format!("{scope} key"), Some(scope)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["scope"], scope);
        keys.push(r.body["key"].as_str().unwrap().to_owned());
    }
    let admin = keys.pop().unwrap();
    let write = keys.pop().unwrap();
    (keys.pop().unwrap(), write, admin)
}

fn bearer(key: &str) -> Auth {
    Auth::Bearer(key.to_owned())
}

#[tokio::test]
async fn a_key_has_the_scope_chosen_at_creation_and_every_list_shows_it() {
    let app = TestApp::sqlite().await;
    let session = app.admin().await;
    let r = create(&app, &session, "full", None).await;
    assert_eq!(
        r.body["scope"], "admin",
        "a session's keys default to today's full power"
    );
    let r = create(&app, &session, "reader", Some("read")).await;
    assert_eq!(r.body["scope"], "read");
    let (read_key, read_id) = (r.body["key"].as_str().unwrap().to_owned(), r.body["key_id"].clone());

    let r = app
        .request(
            Method::GET,
            &format!("{KEYS}/{}", read_id.as_str().unwrap()),
            &session,
            None,
        )
        .await;
    assert_eq!(r.body["scope"], "read");
    let r = app.request(Method::GET, KEYS, &session, None).await;
    let mut scopes: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["scope"].as_str().unwrap())
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["admin", "read"]);

    let r = app
        .request(Method::GET, "/api/v1/viewer", &bearer(&read_key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["auth"]["scope"], "read");
    let r = app.request(Method::GET, "/api/v1/viewer", &session, None).await;
    assert_eq!(r.body["auth"]["scope"], "admin");

    for bad in ["root", "Admin", "", "read,write"] {
        let r = create(&app, &session, "bad", Some(bad)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_value"),
            "{bad:?}"
        );
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("read"),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn a_read_key_reads_what_its_owner_reads_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let (read, _, _) = admin_keys(&app).await;
    let read = bearer(&read);
    // The owner (an org admin) reads the org's users, keys and audit log with it.
    for path in [
        KEYS,
        "/api/v1/orgs/default/users",
        "/api/v1/orgs/default/audit",
        "/api/v1/orgs/default",
    ] {
        let r = app.request(Method::GET, path, &read, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    let r = create(&app, &read, "another", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "insufficient_scope"));
    assert_eq!(
        r.body["error"]["message"],
        "This API key's scope is read; this needs a key with scope write (or wider)."
    );
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"keysmith\", error=\"insufficient_scope\", scope=\"write\""
    );
    let own = app.request(Method::GET, KEYS, &read, None).await.body["items"][0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            Method::PATCH,
            &format!("{KEYS}/{own}"),
            &read,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = app.request(Method::DELETE, &format!("{KEYS}/{own}"), &read, None).await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = app
        .request(Method::POST, &format!("{KEYS}/{own}/rotate"), &read, Some(json!({})))
        .await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/teams",
            &read,
            Some(json!({"name": "t"})),
        )
        .await;
    assert_eq!(r.code(), "insufficient_scope");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("scope admin"));
}

#[tokio::test]
async fn administration_needs_an_admin_key_even_for_an_org_admin() {
    let app = TestApp::sqlite().await;
    let (read, write, admin) = admin_keys(&app).await;
    let changes: [(Method, &str, Value); 6] = [
        (Method::POST, "/api/v1/orgs/default/teams", json!({"name": "vision"})),
        (
            Method::PATCH,
            "/api/v1/orgs/default",
            json!({"key_creation_disabled": false}),
        ),
        (
            Method::POST,
            "/api/v1/orgs/default/users",
            json!({"username": "carol", "email": "carol@example.com"}),
        ),
        (
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            json!({"name": "ci-bot"}),
        ),
        (
            Method::POST,
            "/api/v1/orgs/default/webhooks",
            json!({"url": "https://hooks.example.com/keysmith"}),
        ),
        (
            Method::PATCH,
            "/api/v1/orgs/default/users/admin",
            json!({"role": "admin"}),
        ),
    ];
    for key in [&read, &write] {
        for (method, path, body) in &changes {
            let r = app
                .request(method.clone(), path, &bearer(key), Some(body.clone()))
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "insufficient_scope"),
                "{method} {path}"
            );
            assert!(r.text.contains("needs a key with scope admin"), "{}", r.text);
        }
    }
    let teams = app
        .request(Method::GET, "/api/v1/orgs/default/teams", &bearer(&admin), None)
        .await;
    assert_eq!(
        teams.body.as_array().map_or(0, Vec::len),
        0,
        "nothing was made: {}",
        teams.text
    );
    for (method, path, body) in &changes {
        let r = app
            .request(method.clone(), path, &bearer(&admin), Some(body.clone()))
            .await;
        assert!(r.status.is_success(), "{method} {path} with an admin key: {}", r.text);
    }
}

#[tokio::test]
async fn no_key_makes_or_rotates_into_a_key_wider_than_itself() {
    let app = TestApp::sqlite().await;
    let (read, write, admin) = admin_keys(&app).await;
    let write = bearer(&write);
    let r = create(&app, &write, "wider", Some("admin")).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let r = create(&app, &write, "same", None).await;
    assert_eq!(
        (r.status, r.body["scope"].as_str()),
        (StatusCode::CREATED, Some("write"))
    );
    let sibling = r.body["key_id"].as_str().unwrap().to_owned();
    let r = create(&app, &write, "narrower", Some("read")).await;
    assert_eq!(r.body["scope"], "read");

    // The admin key of the same owner: a write key may see it and delete it, but not
    // rotate it, which would hand it an admin key's secret.
    let admin_id = app
        .request(Method::GET, "/api/v1/viewer", &bearer(&admin), None)
        .await
        .body["auth"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            Method::POST,
            &format!("{KEYS}/{admin_id}/rotate"),
            &write,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "insufficient_scope"),
        "{}",
        r.text
    );
    let r = app
        .request(
            Method::POST,
            &format!("{KEYS}/{sibling}/rotate"),
            &write,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["scope"], "write", "a rotation keeps the scope");
    // A read key's rotation of itself: refused like every change.
    let read_id = app
        .request(Method::GET, "/api/v1/viewer", &bearer(&read), None)
        .await
        .body["auth"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            Method::POST,
            &format!("{KEYS}/{read_id}/rotate"),
            &bearer(&read),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.code(), "insufficient_scope");
}

#[tokio::test]
async fn a_write_key_manages_its_owners_keys_but_not_anyone_elses() {
    let app = TestApp::sqlite().await;
    app.add_user("bob").await;
    let bob = Auth::Session(app.sign_in("bob", common::USER_PASSWORD).await);
    let bobs = create(&app, &bob, "bob's", None).await.body["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, write, admin) = admin_keys(&app).await;
    let mine = create(&app, &bearer(&admin), "mine", None).await.body["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            Method::POST,
            &format!("{KEYS}/bulk-delete"),
            &bearer(&write),
            Some(json!({"key_ids": [mine, bobs, "wandb_v1_nosuchkeyaaaaaaaaaaaaaaaaaa"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["deleted", "insufficient_scope", "not_found"]);
    // The admin key of the same org admin deletes bob's key.
    let r = app
        .request(Method::DELETE, &format!("{KEYS}/{bobs}"), &bearer(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_key_loses_at_once_what_its_owner_loses() {
    let app = TestApp::sqlite().await;
    app.add_user("bob").await;
    let session = app.admin().await;
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/bob",
            &session,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bob = Auth::Session(app.sign_in("bob", common::USER_PASSWORD).await);
    let bob_admin_key = bearer(
        create(&app, &bob, "bob full", Some("admin")).await.body["key"]
            .as_str()
            .unwrap(),
    );
    let admins_key = create(&app, &session, "admin's", None).await.body["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{KEYS}/{admins_key}");
    assert_eq!(
        app.request(Method::GET, &path, &bob_admin_key, None).await.status,
        StatusCode::OK
    );
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default/users/bob",
            &session,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.request(Method::GET, &path, &bob_admin_key, None).await;
    assert_eq!(
        r.code(),
        "api_key_not_found",
        "an admin key is never more than its owner"
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/teams",
            &bob_admin_key,
            Some(json!({"name": "t"})),
        )
        .await;
    assert_eq!(r.code(), "forbidden");
}

/// W&B's shape for a refused mutation of an authenticated caller: HTTP 200, the field
/// null, PERMISSION_ERROR (which the wandb SDK turns into `None`).
fn assert_permission_error(r: &common::Reply, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
    assert_eq!(r.body["data"]["result"], Value::Null, "{what}");
    let e = &r.body["errors"][0];
    assert_eq!(e["extensions"]["code"], "PERMISSION_ERROR", "{what}: {}", r.text);
    assert_eq!(
        e["extensions"]["keysmith_code"], "insufficient_scope",
        "{what}: {}",
        r.text
    );
}

#[tokio::test]
async fn graphql_answers_a_narrow_key_with_wandbs_permission_error() {
    let app = TestApp::sqlite().await;
    let (read, write, admin) = admin_keys(&app).await;
    let r = gql(&app, &read, VIEWER, json!({})).await;
    assert_eq!(r.body["data"]["viewer"]["username"], "admin", "{}", r.text);
    let node = r.body["data"]["viewer"]["apiKeys"]["edges"][0]["node"]["id"].clone();

    let r = gql(&app, &read, GENERATE, json!({"description": "from a read key"})).await;
    assert_permission_error(&r, "generateApiKey with a read key");
    let r = gql(&app, &read, DELETE, json!({"id": node})).await;
    assert_permission_error(&r, "deleteApiKey with a read key");
    for key in [&read, &write] {
        let r = gql(&app, key, CREATE_TEAM, json!({"teamName": "vision"})).await;
        assert_permission_error(&r, "createTeam without an admin key");
    }

    // A write key's generateApiKey makes a write key, never a wider one.
    let r = gql(&app, &write, GENERATE, json!({"description": "from a write key"})).await;
    assert_eq!(r.body["errors"], Value::Null, "{}", r.text);
    let listed = app
        .request(
            Method::GET,
            &format!("{KEYS}?name_contains=from%20a%20write"),
            &bearer(&admin),
            None,
        )
        .await;
    assert_eq!(listed.body["items"][0]["scope"], "write", "{}", listed.text);
    let r = gql(&app, &admin, CREATE_TEAM, json!({"teamName": "vision"})).await;
    assert_eq!(r.body["errors"], Value::Null, "{}", r.text);
}

async fn forward(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> common::Reply {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/forward-auth")
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn forward_auth_names_the_scopes_and_enforces_the_one_the_proxy_asks_for() {
    let app = TestApp::sqlite().await;
    let (read, write, admin) = admin_keys(&app).await;
    for (key, granted) in [(&read, "read"), (&write, "read,write"), (&admin, "read,write,admin")] {
        // Twice: the first fills the cache, the second is answered from it.
        for _ in 0..2 {
            let r = forward(&app, key, &[]).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.headers["x-keysmith-scopes"], granted);
            assert_eq!(r.headers["x-keysmith-teams"], "*");
            assert_eq!(r.headers["x-keysmith-user"], "admin");
            assert!(
                r.headers["x-keysmith-key-id"]
                    .to_str()
                    .unwrap()
                    .starts_with("wandb_v1_")
            );
        }
    }
    let r = forward(&app, &read, &[("x-keysmith-required-scope", "write")]).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "insufficient_scope"));
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"keysmith\", error=\"insufficient_scope\", scope=\"write\""
    );
    assert!(r.headers.get("x-keysmith-user").is_none(), "a refusal names no one");
    assert_eq!(
        forward(&app, &write, &[("x-keysmith-required-scope", "write")])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        forward(&app, &write, &[("x-keysmith-required-scope", "admin")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // `by-method`: safe methods need read, anything else write; no method, write.
    for (method, read_ok) in [
        ("GET", true),
        ("head", true),
        ("OPTIONS", true),
        ("POST", false),
        ("DELETE", false),
    ] {
        let by = [
            ("x-keysmith-required-scope", "by-method"),
            ("x-forwarded-method", method),
        ];
        assert_eq!(forward(&app, &read, &by).await.status.is_success(), read_ok, "{method}");
        assert_eq!(forward(&app, &write, &by).await.status, StatusCode::OK, "{method}");
    }
    // Only the header the proxy sets counts: another name a client could pass through
    // the proxy does not.
    let r = forward(
        &app,
        &read,
        &[("x-keysmith-required-scope", "by-method"), ("x-original-method", "GET")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = forward(&app, &read, &[("x-keysmith-required-scope", "by-method")]).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "without a method to judge, the stricter answer"
    );
    let r = forward(&app, &admin, &[("x-keysmith-required-scope", "everything")]).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    // A bad key is still 401 whatever scope is asked for.
    let r = forward(
        &app,
        "wandb_v1_nosuchkeyaaaaaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        &[("x-keysmith-required-scope", "write")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn scim_provisioning_needs_an_admin_key() {
    let app = TestApp::sqlite().await;
    let (read, write, admin) = admin_keys(&app).await;
    for key in [&read, &write] {
        let r = app.request(Method::GET, "/scim/v2/Users", &bearer(key), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("scope admin"), "{}", r.text);
    }
    let r = app.request(Method::GET, "/scim/v2/Users", &bearer(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
