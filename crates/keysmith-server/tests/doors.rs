//! Each action that several doors expose, driven through every one of them (REST,
//! GraphQL as the wandb SDK sends it, the web form) with the same outcome, the same
//! audit entry and the same webhook event: the application decides once, and the
//! doors only parse and render (docs/DESIGN.md §5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{Auth, Session, TestApp, create_in_browser, get, gql, post};
use keysmith_store::{AuditEntry, AuditQuery};
use serde_json::{Value, json};

const GENERATE: &str = "mutation GenerateApiKey($description: String) {\n  result: generateApiKey(input: {description: $description}) { apiKey { id name description } }\n}";
const DELETE: &str = "mutation DeleteApiKey($id: String!) {\n  result: deleteApiKey(input: {id: $id}) { success }\n}";
const CREATE_USER: &str = "mutation CreateUserFromAdmin($email: String!, $admin: Boolean) {\n  result: createUser(input: {email: $email, admin: $admin}) { user { id name username email admin } }\n}";
const SEARCH_USERS: &str =
    "query SearchUsers($query: String) { users(query: $query) { edges { node { id name username email admin } } } }";
const CREATE_TEAM: &str = "mutation CreateTeam($teamName: String!, $teamAdminUserName: String) {\n  result: createTeam(input: {teamName: $teamName, teamAdminUserName: $teamAdminUserName}) {\n    entity { id name available photoUrl limits } }\n}";
const CREATE_INVITE: &str = "mutation CreateInvite($entity: String!, $email: String, $username: String, $admin: Boolean) {\n  result: createInvite(input: {entityName: $entity, email: $email, username: $username, admin: $admin}) {\n    invite { id name email createdAt toUser { name } } }\n}";
const DELETE_INVITE: &str = "mutation DeleteInvite($id: String, $entity: String) { result: deleteInvite(input: {id: $id, entityName: $entity}) { success } }";
const CREATE_SA: &str = "mutation CreateServiceAccount($entity: String!, $description: String!) {\n  result: createServiceAccount(input: {description: $description, entityName: $entity}) { user { id } }\n}";
const GET_TEAM: &str = "query GetTeamEntity($name: String!) {\n  entity(name: $name) { id name available photoUrl readOnly readOnlyAdmin isTeam entityType privateOnly\n    storageBytes codeSavingEnabled defaultAccess isPaid\n    members { id admin pending email username name photoUrl accountType apiKey } }\n}";

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

// ------------------------------------------------ users, teams and service accounts

/// The default org's admin at every door: a session (REST and the web) and a key (the
/// SDK's GraphQL), with a webhook endpoint that takes every event.
struct Doors {
    app: TestApp,
    session: Session,
    rest: Auth,
    key: String,
}

async fn doors() -> Doors {
    let app = TestApp::sqlite().await;
    let session = app.sign_in("admin", common::ADMIN_PASSWORD).await;
    let rest = Auth::Session(session.clone());
    let hook = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/webhooks",
            &rest,
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let (key, _) = app.create_key(&rest, "sdk").await;
    Doors {
        app,
        session,
        rest,
        key,
    }
}

impl Doors {
    async fn rest(&self, method: Method, path: &str, body: Option<Value>) -> common::Reply {
        self.app.request(method, path, &self.rest, body).await
    }

    /// A form of the web interface, posted by the admin's browser.
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> common::Reply {
        let mut all = vec![("csrf", self.session.csrf.as_str())];
        all.extend_from_slice(fields);
        post(&self.app, Some(&self.session), path, &all).await
    }

    async fn gql(&self, query: &str, variables: Value) -> common::Reply {
        gql(&self.app, &self.key, query, variables).await
    }

    /// Every webhook event queued so far, by type.
    async fn events(&self) -> Vec<String> {
        keysmith_server::webhooks::pump(&self.app.state).await.unwrap();
        let hook = self.app.store.list_webhooks(self.app.org.id).await.unwrap()[0].id;
        let mut types: Vec<String> = self
            .app
            .store
            .list_deliveries(hook, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.event_type)
            .collect();
        types.sort();
        types
    }
}

/// A person of the default org with a signed-in session and a key.
async fn person(app: &TestApp, username: &str) -> (Session, String) {
    app.add_user(username).await;
    let session = app.sign_in(username, common::USER_PASSWORD).await;
    let (key, _) = app.create_key(&Auth::Session(session.clone()), username).await;
    (session, key)
}

fn targets(entries: &[AuditEntry]) -> Vec<String> {
    let mut t: Vec<String> = entries.iter().map(|e| e.target.clone()).collect();
    t.sort();
    t
}

fn detail(entry: &AuditEntry) -> Value {
    serde_json::from_str(entry.detail.as_deref().unwrap_or("null")).unwrap()
}

/// All of `entries` have the first one's shape, which is `expected`.
fn same_shape(entries: &[AuditEntry], expected: (&str, &str, &[&str])) {
    let (actor, kind, fields) = expected;
    let want = (
        actor.to_owned(),
        kind.to_owned(),
        Some("127.0.0.1".to_owned()),
        fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>(),
    );
    for entry in entries {
        assert_eq!(shape(entry), want, "the same audit entry from every door: {entry:?}");
    }
}

/// W&B's refusal of a GraphQL field, with Keysmith's stable code.
fn refused(r: &common::Reply, wandb: &str, keysmith: &str) {
    assert_eq!(r.body["errors"][0]["extensions"]["code"], wandb, "{}", r.text);
    assert_eq!(
        r.body["errors"][0]["extensions"]["keysmith_code"], keysmith,
        "{}",
        r.text
    );
    assert_eq!(r.body["data"]["result"], Value::Null, "{}", r.text);
}

/// The web's error page with this status and stable code.
fn error_page(r: &common::Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.text.contains(&format!("<code>{code}</code>")), "{}", r.text);
}

#[tokio::test]
async fn a_user_invited_through_rest_the_web_and_graphql_is_the_same_change() {
    let d = doors().await;
    let r = d
        .rest(Method::POST, "/api/v1/orgs/default/teams", Some(json!({"name": "ml"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let quiet = d.events().await;

    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/users",
            Some(json!({"username": "via-rest", "email": "rest@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.body["invite_token"].is_string());
    let r = d
        .form(
            "/org/default/users",
            &[
                ("username", "via-web"),
                ("email", "web@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("invite-token"));
    let r = d
        .gql(CREATE_USER, json!({"email": "via-graphql@example.com", "admin": false}))
        .await;
    assert_eq!(
        r.body["data"]["result"]["user"]["username"], "via-graphql",
        "{}",
        r.text
    );
    let r = d
        .gql(
            CREATE_INVITE,
            json!({"entity": "ml", "email": "via-invite@example.com"}),
        )
        .await;
    assert_eq!(r.body["data"]["result"]["invite"]["name"], "via-invite", "{}", r.text);

    let invited = audit(&d.app, "user.invited").await;
    assert_eq!(
        targets(&invited),
        ["via-graphql", "via-invite", "via-rest", "via-web"],
        "one per door"
    );
    same_shape(&invited, ("admin", "user", &["role"]));
    assert!(invited.iter().all(|e| detail(e)["role"] == "member"), "{invited:?}");
    // Every invited user holds an invitation, to be replaced by a new one for those
    // whose door could not show the token.
    for name in ["via-graphql", "via-invite"] {
        let r = d
            .rest(Method::POST, &format!("/api/v1/orgs/default/users/{name}/invite"), None)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    assert_eq!(d.events().await, quiet, "no webhook event for users");

    // An address that is too long is refused by every door, and nobody is invited.
    let long = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long.len(), 255);
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/users",
            Some(json!({"username": "too-long", "email": long})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    let r = d
        .form("/org/default/users", &[("username", "too-long"), ("email", &long)])
        .await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    let r = d.gql(CREATE_USER, json!({"email": long})).await;
    refused(&r, "BAD_USER_INPUT", "invalid_value");
    let r = d.gql(CREATE_INVITE, json!({"entity": "ml", "email": long})).await;
    refused(&r, "BAD_USER_INPUT", "invalid_value");
    assert_eq!(audit(&d.app, "user.invited").await.len(), 4, "nobody more");
}

#[tokio::test]
async fn users_are_listed_alike_through_rest_the_web_and_graphql_for_admins_only() {
    let d = doors().await;
    person(&d.app, "bob").await;
    let r = d.rest(Method::GET, "/api/v1/orgs/default/users", None).await;
    let listed: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["admin", "bob"]);
    let page = get(&d.app, Some(&d.session), "/org/default/users").await;
    assert!(page.text.contains("bob@example.com") && page.text.contains("admin@example.com"));
    let r = d.gql(SEARCH_USERS, json!({"query": ""})).await;
    let found: Vec<&str> = r.body["data"]["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(found, listed);

    let (bob, bob_key) = person(&d.app, "carol").await;
    let r = d
        .app
        .request(
            Method::GET,
            "/api/v1/orgs/default/users",
            &Auth::Session(bob.clone()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = get(&d.app, Some(&bob), "/org/default/users").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = gql(&d.app, &bob_key, SEARCH_USERS, json!({"query": ""})).await;
    assert_eq!(r.body["data"]["users"]["edges"], json!([]), "{}", r.text);
}

#[tokio::test]
async fn a_user_created_with_a_password_through_rest_or_the_web_is_the_same_change() {
    let d = doors().await;
    let quiet = d.events().await;
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/users",
            Some(json!({"username": "via-rest", "password": common::USER_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.body.get("invite_token").is_none());
    let r = d
        .form(
            "/org/default/users",
            &[
                ("username", "via-web"),
                ("password", common::USER_PASSWORD),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(common::location(&r), "/org/default/users?done=user-created");
    for name in ["via-rest", "via-web"] {
        d.app.sign_in(name, common::USER_PASSWORD).await;
    }
    let created = audit(&d.app, "user.created").await;
    assert_eq!(targets(&created), ["via-rest", "via-web"]);
    same_shape(&created, ("admin", "user", &["role"]));

    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/users",
            Some(json!({"username": "weak", "password": "short"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    let r = d
        .form("/org/default/users", &[("username", "weak"), ("password", "short")])
        .await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    assert_eq!(audit(&d.app, "user.created").await.len(), 2);
    assert_eq!(d.events().await, quiet);
}

#[tokio::test]
async fn a_role_change_and_deactivation_through_rest_or_the_web_are_the_same_change() {
    let d = doors().await;
    let (_, bob_key) = person(&d.app, "bob").await;
    let (_, carol_key) = person(&d.app, "carol").await;
    let quiet = d.events().await;

    // The last admin stays, whichever door asks.
    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default/users/admin",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "last_admin"));
    let r = d
        .form("/org/default/users/admin", &[("action", "role"), ("role", "member")])
        .await;
    error_page(&r, StatusCode::CONFLICT, "last_admin");
    let r = d
        .form("/org/default/users/bob", &[("action", "role"), ("role", "owner")])
        .await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    assert!(audit(&d.app, "user.role_changed").await.is_empty());

    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default/users/bob",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.body["role"], "admin", "{}", r.text);
    let r = d
        .form("/org/default/users/carol", &[("action", "role"), ("role", "admin")])
        .await;
    assert_eq!(common::location(&r), "/org/default/users?done=user-updated");
    let changed = audit(&d.app, "user.role_changed").await;
    assert_eq!(targets(&changed), ["bob", "carol"]);
    same_shape(&changed, ("admin", "user", &["from", "to"]));

    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default/users/bob",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    let r = d.form("/org/default/users/carol", &[("action", "deactivate")]).await;
    assert_eq!(common::location(&r), "/org/default/users?done=user-updated");
    for key in [&bob_key, &carol_key] {
        let r = d
            .app
            .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "deactivated from any door");
    }
    let deactivated = audit(&d.app, "user.deactivated").await;
    assert_eq!(targets(&deactivated), ["bob", "carol"]);
    same_shape(&deactivated, ("admin", "user", &[]));

    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default/users/bob",
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(r.body["active"], true, "{}", r.text);
    let r = d.form("/org/default/users/carol", &[("action", "reactivate")]).await;
    assert_eq!(common::location(&r), "/org/default/users?done=user-updated");
    let reactivated = audit(&d.app, "user.reactivated").await;
    assert_eq!(targets(&reactivated), ["bob", "carol"]);
    same_shape(&reactivated, ("admin", "user", &[]));
    assert_eq!(d.events().await, quiet);
}

#[tokio::test]
async fn an_invitation_accepted_through_rest_or_the_web_is_the_same_change() {
    let d = doors().await;
    let mut tokens = Vec::new();
    for name in ["via-rest", "via-web"] {
        let r = d
            .rest(
                Method::POST,
                "/api/v1/orgs/default/users",
                Some(json!({"username": name})),
            )
            .await;
        tokens.push(r.body["invite_token"].as_str().unwrap().to_owned());
    }
    let password = "a-password-they-chose";
    // A pasted token keeps its surrounding white space at either door.
    let r = d
        .app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(json!({"token": format!(" {} ", tokens[0]), "password": password})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let pasted = format!("\t{}\n", tokens[1]);
    let r = post(
        &d.app,
        None,
        "/invite",
        &[("token", &pasted), ("password", password), ("confirm", password)],
    )
    .await;
    assert_eq!(common::location(&r), "/login?done=password-set", "{}", r.text);
    for name in ["via-rest", "via-web"] {
        d.app.sign_in(name, password).await;
    }
    let accepted = audit(&d.app, "user.invitation_accepted").await;
    assert_eq!(targets(&accepted), ["via-rest", "via-web"]);
    let without_actor = |e: &AuditEntry| {
        let (_, kind, source, fields) = shape(e);
        (kind, source, fields)
    };
    for entry in &accepted {
        assert_eq!(entry.actor_name, entry.target, "the invited user acts");
        assert_eq!(without_actor(entry), without_actor(&accepted[0]));
    }
    assert_eq!(
        (
            without_actor(&accepted[0]).0.as_str(),
            without_actor(&accepted[0]).1.as_deref()
        ),
        ("user", Some("127.0.0.1"))
    );
    // Used up, at either door.
    let r = d
        .app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(json!({"token": tokens[1], "password": password})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invitation_invalid"));
    let r = post(
        &d.app,
        None,
        "/invite",
        &[("token", &tokens[0]), ("password", password), ("confirm", password)],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("invitation_invalid"), "{}", r.text);
}

#[tokio::test]
async fn a_team_created_through_rest_the_web_and_graphql_is_the_same_change() {
    let d = doors().await;
    let (dev, dev_key) = person(&d.app, "dev").await;
    let quiet = d.events().await;
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/teams",
            Some(json!({"name": "via-rest"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = d.form("/org/default/teams", &[("name", "via-web")]).await;
    assert_eq!(common::location(&r), "/org/default/teams?done=team-created");
    let r = d
        .gql(
            CREATE_TEAM,
            json!({"teamName": "via-graphql", "teamAdminUserName": null}),
        )
        .await;
    assert_eq!(r.body["data"]["result"]["entity"]["name"], "via-graphql", "{}", r.text);

    let created = audit(&d.app, "team.created").await;
    assert_eq!(targets(&created), ["via-graphql", "via-rest", "via-web"]);
    same_shape(&created, ("admin", "team", &[]));
    // W&B's createTeam also names the team's first admin: the caller, by default.
    let set = audit(&d.app, "team.member_set").await;
    assert_eq!(targets(&set), ["via-graphql"]);
    assert_eq!(detail(&set[0]), json!({"user": "admin", "role": "admin"}));
    let r = d.rest(Method::GET, "/api/v1/orgs/default/teams", None).await;
    let page = get(&d.app, Some(&d.session), "/org/default/teams").await;
    for name in ["via-rest", "via-web", "via-graphql"] {
        assert!(r.text.contains(name) && page.text.contains(name), "{name}");
    }

    // Refused alike: a bad name, and a member who is not an org admin.
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/teams",
            Some(json!({"name": "bad name"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    let r = d.form("/org/default/teams", &[("name", "bad name")]).await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    let r = d.gql(CREATE_TEAM, json!({"teamName": "bad name"})).await;
    refused(&r, "BAD_USER_INPUT", "invalid_value");
    let r = d
        .app
        .request(
            Method::POST,
            "/api/v1/orgs/default/teams",
            &Auth::Session(dev.clone()),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = post(
        &d.app,
        Some(&dev),
        "/org/default/teams",
        &[("csrf", &dev.csrf), ("name", "mine")],
    )
    .await;
    error_page(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = gql(&d.app, &dev_key, CREATE_TEAM, json!({"teamName": "mine"})).await;
    refused(&r, "PERMISSION_ERROR", "forbidden");
    assert_eq!(audit(&d.app, "team.created").await.len(), 3, "no team more");
    assert_eq!(d.events().await, quiet, "no webhook event for teams");
}

/// The team `vision` with `lead` as its admin and `dev` as a member (set by the org
/// admin), and `ada` in the org but not in the team. Returns lead's and dev's
/// (session, key).
async fn vision(d: &Doors) -> ((Session, String), (Session, String)) {
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/teams",
            Some(json!({"name": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let lead = person(&d.app, "lead").await;
    let dev = person(&d.app, "dev").await;
    person(&d.app, "ada").await;
    for (name, role) in [("lead", "admin"), ("dev", "member")] {
        let r = d
            .rest(
                Method::PUT,
                &format!("/api/v1/orgs/default/teams/vision/members/{name}"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    (lead, dev)
}

/// `vision`'s members as REST shows them to the org admin.
async fn vision_members(d: &Doors) -> Value {
    d.rest(Method::GET, "/api/v1/orgs/default/teams/vision", None)
        .await
        .body["members"]
        .clone()
}

#[tokio::test]
async fn only_org_admins_change_team_membership_through_rest_and_graphql() {
    let d = doors().await;
    let ((lead, lead_key), _) = vision(&d).await;
    let lead_rest = Auth::Session(lead.clone());
    let quiet = d.events().await;
    let before = vision_members(&d).await;
    let set_before = audit(&d.app, "team.member_set").await.len();

    // A team admin may not, through any door: neither promote a member, nor add one,
    // nor invite someone new, nor remove one.
    let r = d
        .app
        .request(
            Method::PUT,
            "/api/v1/orgs/default/teams/vision/members/dev",
            &lead_rest,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(r.body["error"]["message"], "Only organization admins may do this.");
    for variables in [
        json!({"entity": "vision", "username": "dev", "admin": true}),
        json!({"entity": "vision", "username": "ada"}),
        json!({"entity": "vision", "email": "newcomer@example.com"}),
    ] {
        let r = gql(&d.app, &lead_key, CREATE_INVITE, variables.clone()).await;
        refused(&r, "PERMISSION_ERROR", "forbidden");
    }
    let r = d
        .app
        .request(
            Method::DELETE,
            "/api/v1/orgs/default/teams/vision/members/dev",
            &lead_rest,
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let invite = base64::engine::general_purpose::STANDARD.encode("Invite:vision:dev");
    let r = gql(
        &d.app,
        &lead_key,
        DELETE_INVITE,
        json!({"id": invite, "entity": "vision"}),
    )
    .await;
    refused(&r, "PERMISSION_ERROR", "forbidden");
    assert_eq!(vision_members(&d).await, before, "nothing changed");
    assert_eq!(audit(&d.app, "team.member_set").await.len(), set_before);
    assert!(audit(&d.app, "team.member_removed").await.is_empty());
    assert!(audit(&d.app, "user.invited").await.is_empty(), "nobody was invited");

    // The org admin may, through either door, with the same audit entry.
    let r = d
        .rest(
            Method::PUT,
            "/api/v1/orgs/default/teams/vision/members/ada",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = d
        .gql(
            CREATE_INVITE,
            json!({"entity": "vision", "username": "dev", "admin": true}),
        )
        .await;
    assert_eq!(
        r.body["data"]["result"]["invite"]["toUser"]["name"], "dev",
        "{}",
        r.text
    );
    let set = audit(&d.app, "team.member_set").await;
    let newest = &set[..2];
    same_shape(newest, ("admin", "team", &["role", "user"]));
    assert_eq!(
        newest.iter().map(detail).collect::<Vec<_>>(),
        [
            json!({"user": "dev", "role": "admin"}),
            json!({"user": "ada", "role": "member"})
        ]
    );
    assert_eq!(
        vision_members(&d).await,
        json!([
            {"username": "ada", "role": "member"},
            {"username": "dev", "role": "admin"},
            {"username": "lead", "role": "admin"}
        ])
    );

    let r = d
        .rest(Method::DELETE, "/api/v1/orgs/default/teams/vision/members/ada", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = d.gql(DELETE_INVITE, json!({"id": invite, "entity": "vision"})).await;
    assert_eq!(r.body["data"]["result"]["success"], true, "{}", r.text);
    let removed = audit(&d.app, "team.member_removed").await;
    assert_eq!(targets(&removed), ["vision", "vision"]);
    same_shape(&removed, ("admin", "team", &["user"]));
    assert_eq!(
        removed.iter().map(detail).collect::<Vec<_>>(),
        [json!({"user": "dev"}), json!({"user": "ada"})]
    );

    // Someone not in the team: "not found", and nothing recorded, at either door.
    let r = d
        .rest(Method::DELETE, "/api/v1/orgs/default/teams/vision/members/ada", None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    let r = d.gql(DELETE_INVITE, json!({"id": invite, "entity": "vision"})).await;
    assert_eq!(r.body["data"]["result"]["success"], false, "{}", r.text);
    let nobody = base64::engine::general_purpose::STANDARD.encode("Invite:vision:nobody");
    let r = d.gql(DELETE_INVITE, json!({"id": nobody})).await;
    assert_eq!(r.body["data"]["result"]["success"], false, "{}", r.text);
    assert_eq!(audit(&d.app, "team.member_removed").await.len(), 2);
    assert_eq!(d.events().await, quiet, "no webhook event for membership");
}

#[tokio::test]
async fn a_teams_members_are_shown_to_its_admins_and_org_admins_through_rest_and_graphql() {
    let d = doors().await;
    let ((lead, lead_key), (dev, dev_key)) = vision(&d).await;
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            Some(json!({"name": "vision-bot", "team": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let names = |r: &common::Reply| -> Vec<String> {
        let mut n: Vec<String> = r.body["data"]["entity"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    for (session, key) in [(&d.session, &d.key), (&lead, &lead_key)] {
        let r = d
            .app
            .request(
                Method::GET,
                "/api/v1/orgs/default/teams/vision",
                &Auth::Session(session.clone()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["service_accounts"], json!(["vision-bot"]));
        let r = gql(&d.app, key, GET_TEAM, json!({"name": "vision"})).await;
        assert_eq!(names(&r), ["dev", "lead", "vision-bot"], "{}", r.text);
    }
    let ada = d.app.sign_in("ada", common::USER_PASSWORD).await;
    let (ada_key, _) = d.app.create_key(&Auth::Session(ada.clone()), "ada again").await;
    for (session, key) in [(&dev, &dev_key), (&ada, &ada_key)] {
        let r = d
            .app
            .request(
                Method::GET,
                "/api/v1/orgs/default/teams/vision",
                &Auth::Session(session.clone()),
                None,
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
        let r = gql(&d.app, key, GET_TEAM, json!({"name": "vision"})).await;
        assert_eq!(r.body["data"]["entity"]["name"], "vision", "{}", r.text);
        assert_eq!(r.body["data"]["entity"]["members"], json!([]), "{}", r.text);
    }
}

#[tokio::test]
async fn a_service_account_created_through_rest_the_web_and_graphql_is_the_same_change() {
    let d = doors().await;
    let (_, (dev, dev_key)) = vision(&d).await;
    let quiet = d.events().await;
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            Some(json!({"name": "via-rest", "description": "CI", "team": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = d
        .form(
            "/vision/service-accounts?org=default",
            &[("name", "via-web"), ("description", "CI")],
        )
        .await;
    assert_eq!(
        common::location(&r),
        "/vision/service-accounts?org=default&done=service-account-created"
    );
    let r = d
        .gql(CREATE_SA, json!({"entity": "vision", "description": "Via GraphQL"}))
        .await;
    assert!(r.body["data"]["result"]["user"]["id"].is_string(), "{}", r.text);

    let created = audit(&d.app, "service_account.created").await;
    assert_eq!(targets(&created), ["via-graphql", "via-rest", "via-web"]);
    same_shape(&created, ("admin", "service_account", &["team"]));
    assert!(created.iter().all(|e| detail(e) == json!({"team": "vision"})));
    let r = d
        .rest(Method::GET, "/api/v1/orgs/default/service-accounts?team=vision", None)
        .await;
    let page = get(&d.app, Some(&d.session), "/vision/service-accounts?org=default").await;
    for name in ["via-rest", "via-web", "via-graphql"] {
        assert!(r.text.contains(name) && page.text.contains(name), "{name}");
    }
    // No event for the account itself; W&B's createServiceAccount also mints its first
    // key, which is that key's event.
    let mut expected = quiet.clone();
    expected.push("api_key.created".into());
    expected.sort();
    assert_eq!(d.events().await, expected);

    // A member of the team may not create one, whichever the door.
    let r = d
        .app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &Auth::Session(dev.clone()),
            Some(json!({"name": "sneaky", "team": "vision"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = post(
        &d.app,
        Some(&dev),
        "/vision/service-accounts?org=default",
        &[("csrf", &dev.csrf), ("name", "sneaky")],
    )
    .await;
    error_page(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = gql(
        &d.app,
        &dev_key,
        CREATE_SA,
        json!({"entity": "vision", "description": "sneaky"}),
    )
    .await;
    refused(&r, "PERMISSION_ERROR", "forbidden");
    assert_eq!(audit(&d.app, "service_account.created").await.len(), 3);
}

#[tokio::test]
async fn a_description_over_1024_characters_is_refused_by_every_door_never_cut_short() {
    let d = doors().await;
    vision(&d).await;
    let too_long = "d".repeat(1025);
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            Some(json!({"name": "rest-bot", "description": too_long, "team": "vision"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    assert!(r.text.contains("Description: at most 1024 characters"), "{}", r.text);
    let r = d
        .form(
            "/vision/service-accounts?org=default",
            &[("name", "web-bot"), ("description", &too_long)],
        )
        .await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    let r = d
        .gql(CREATE_SA, json!({"entity": "vision", "description": "g".repeat(1025)}))
        .await;
    refused(&r, "BAD_USER_INPUT", "invalid_value");
    assert!(
        r.body["errors"][0]["message"].as_str().unwrap().contains("description"),
        "{}",
        r.text
    );
    assert!(audit(&d.app, "service_account.created").await.is_empty());

    // 1024 characters, once the white space around them is dropped, are kept whole.
    let fits = format!("  {}  ", "d".repeat(1024));
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            Some(json!({"name": "rest-bot", "description": fits, "team": "vision"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = d
        .form(
            "/vision/service-accounts?org=default",
            &[("name", "web-bot"), ("description", &fits)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = d
        .gql(
            CREATE_SA,
            json!({"entity": "vision", "description": format!(" {} ", "g".repeat(1024))}),
        )
        .await;
    assert!(r.body["data"]["result"]["user"]["id"].is_string(), "{}", r.text);
    let r = d.rest(Method::GET, "/api/v1/orgs/default/service-accounts", None).await;
    let kept: Vec<usize> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["description"].as_str().unwrap().chars().count())
        .collect();
    assert_eq!(kept, [1024, 1024, 1024], "{}", r.text);
}

#[tokio::test]
async fn org_settings_changed_through_rest_or_the_web_are_the_same_change() {
    let d = doors().await;
    let (member, key) = person(&d.app, "dev").await;
    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default",
            Some(json!({"legacy_keys_allowed": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["legacy_keys_allowed"], true);
    let r = d
        .form(
            "/org/default/settings",
            &[
                ("key_creation_disabled", "on"),
                ("max_user_key_lifetime_days", "30"),
                ("max_service_account_key_lifetime_days", "0"),
            ],
        )
        .await;
    assert_eq!(common::location(&r), "/org/default/settings?done=saved");
    let org = d.app.store.find_org("default").await.unwrap().unwrap();
    assert!(
        org.key_creation_disabled && !org.legacy_keys_allowed,
        "the form sends every box"
    );
    assert_eq!(org.max_user_key_lifetime_days, 30);
    let changed = audit(&d.app, "org.settings_changed").await;
    assert_eq!(targets(&changed), ["default", "default"]);
    same_shape(
        &changed,
        (
            "admin",
            "org",
            &[
                "allowed_networks",
                "key_creation_disabled",
                "legacy_keys_allowed",
                "max_service_account_key_lifetime_days",
                "max_user_key_lifetime_days",
                "sso_required",
                "unused_key_notice_days",
            ],
        ),
    );
    // A lifetime over ten years is refused by both, with the same code, and changes
    // nothing.
    let r = d
        .rest(
            Method::PATCH,
            "/api/v1/orgs/default",
            Some(json!({"max_user_key_lifetime_days": 3651})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
    let r = d
        .form("/org/default/settings", &[("max_user_key_lifetime_days", "3651")])
        .await;
    error_page(&r, StatusCode::BAD_REQUEST, "invalid_value");
    // A member is refused by both.
    let r = d
        .app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &Auth::XApiKey(key),
            Some(json!({"legacy_keys_allowed": true})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let fields = [("csrf", member.csrf.as_str()), ("legacy_keys_allowed", "on")];
    let r = post(&d.app, Some(&member), "/org/default/settings", &fields).await;
    error_page(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(audit(&d.app, "org.settings_changed").await.len(), 2);
}

#[tokio::test]
async fn a_webhook_added_rotated_and_deleted_through_rest_or_the_web_is_the_same_change() {
    let d = doors().await;
    let server_secret = &d.app.state.app.server_secret;
    let r = d
        .rest(
            Method::POST,
            "/api/v1/orgs/default/webhooks",
            Some(json!({"url": "https://rest.example.com/hook", "events": ["api_key.deleted"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rest_id = r.body["id"].as_i64().unwrap();
    let rest_secret = r.body["secret"].as_str().unwrap().to_owned();
    let r = d
        .form(
            "/org/default/webhooks",
            &[("url", "https://web.example.com/hook"), ("events", "api_key.deleted")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let hooks = d.app.store.list_webhooks(d.app.org.id).await.unwrap();
    let web = hooks.iter().find(|h| h.url == "https://web.example.com/hook").unwrap();
    let rest = hooks.iter().find(|h| h.id == rest_id).unwrap();
    assert_eq!(web.events, rest.events);
    // Each door shows the secret the deliveries are signed with, once.
    let web_secret = keysmith_app::webhooks::signing_secret(server_secret, web).unwrap();
    assert!(
        r.text.contains(web_secret.expose()),
        "the page shows the signing secret"
    );
    let rest_derived = keysmith_app::webhooks::signing_secret(server_secret, rest).unwrap();
    assert_eq!(rest_derived.expose(), rest_secret);
    let created = audit(&d.app, "webhook.created").await;
    same_shape(&created, ("admin", "webhook", &["events"]));

    let r = d
        .rest(
            Method::POST,
            &format!("/api/v1/orgs/default/webhooks/{rest_id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ne!(r.body["secret"], rest_secret.as_str());
    let r = d
        .form(&format!("/org/default/webhooks/{}/rotate-secret", web.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let web = d.app.store.get_webhook(web.id).await.unwrap().unwrap();
    let rotated = keysmith_app::webhooks::signing_secret(server_secret, &web).unwrap();
    assert!(r.text.contains(rotated.expose()), "the page shows the new secret");
    assert!(!r.text.contains(web_secret.expose()), "and not the old one");
    let entries = audit(&d.app, "webhook.secret_rotated").await;
    assert_eq!(entries.len(), 2);
    same_shape(&entries, ("admin", "webhook", &["previous_secret_until"]));

    let r = d
        .rest(
            Method::DELETE,
            &format!("/api/v1/orgs/default/webhooks/{rest_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = d.form(&format!("/org/default/webhooks/{}/delete", web.id), &[]).await;
    assert_eq!(common::location(&r), "/org/default/webhooks?done=webhook-deleted");
    let deleted = audit(&d.app, "webhook.deleted").await;
    assert_eq!(
        targets(&deleted),
        ["https://rest.example.com/hook", "https://web.example.com/hook"]
    );
    same_shape(&deleted, ("admin", "webhook", &[]));
    // Gone is gone, through both.
    let r = d
        .rest(
            Method::DELETE,
            &format!("/api/v1/orgs/default/webhooks/{rest_id}"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "webhook_not_found"));
    let r = d.form(&format!("/org/default/webhooks/{}/delete", web.id), &[]).await;
    error_page(&r, StatusCode::NOT_FOUND, "webhook_not_found");
}

#[tokio::test]
async fn keys_renamed_rotated_and_deleted_together_through_rest_or_the_web_are_the_same_change() {
    let d = doors().await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three", "four", "five", "six"] {
        ids.push(d.app.create_key(&d.rest, name).await.1);
    }
    let before = d.events().await;
    let same = |entries: &[AuditEntry], what: &str| {
        assert_eq!(entries.len(), 2, "{what}: one per door");
        assert_eq!(shape(&entries[0]).0, "admin", "{what}");
        assert_eq!(
            shape(&entries[0]),
            shape(&entries[1]),
            "{what}: the same audit entry from both doors"
        );
    };

    // Rename.
    let r = d
        .rest(
            Method::PATCH,
            &format!("/api/v1/api-keys/{}", ids[0]),
            Some(json!({"name": "renamed via rest"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = d
        .form(&format!("/keys/{}/rename", ids[1]), &[("name", "renamed via web")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for (id, name) in [(&ids[0], "renamed via rest"), (&ids[1], "renamed via web")] {
        let key = d
            .app
            .store
            .get_key(&keysmith_core::KeyId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.name, name);
    }
    same(&audit(&d.app, "api_key.renamed").await, "renamed");
    // A name too long is refused alike.
    let long = "x".repeat(129);
    let r = d
        .rest(
            Method::PATCH,
            &format!("/api/v1/api-keys/{}", ids[0]),
            Some(json!({"name": long})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_name"));
    let message = r.body["error"]["message"].as_str().unwrap().to_owned();
    // The web shows the form again, with the same message beside the field.
    let r = d.form(&format!("/keys/{}/rename", ids[1]), &[("name", &long)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text
            .contains(&format!(r#"role="alert" id="name-error">{message}</p>"#)),
        "{message}: {}",
        r.text
    );

    // Rotate, keeping the old key for an hour.
    let r = d
        .rest(
            Method::POST,
            &format!("/api/v1/api-keys/{}/rotate", ids[2]),
            Some(json!({"grace": "1h"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = d.form(&format!("/keys/{}/rotate", ids[3]), &[("grace", "1h")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for id in [&ids[2], &ids[3]] {
        let old = d
            .app
            .store
            .get_key(&keysmith_core::KeyId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(old.rotated_to.is_some(), "{id} is being rotated");
        assert_eq!(
            old.expires_at,
            Some(common::START_MS + 3_600_000),
            "{id} works for an hour more"
        );
    }
    same(&audit(&d.app, "api_key.rotated").await, "rotated");

    // Delete together.
    let r = d
        .rest(
            Method::POST,
            "/api/v1/api-keys/bulk-delete",
            Some(json!({"key_ids": [ids[4]]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = d
        .form("/keys/delete-selected", &[("key_id", &ids[5]), ("confirm", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for id in [&ids[4], &ids[5]] {
        let gone = d
            .app
            .store
            .get_key(&keysmith_core::KeyId::parse(id).unwrap())
            .await
            .unwrap();
        assert!(gone.is_none(), "{id} deleted");
    }
    same(&audit(&d.app, "api_key.deleted").await, "deleted");

    // The same events: a rotation each (its new key is part of it) and a deletion
    // each; nothing for the renames.
    let mut expected = before;
    expected.extend(
        [
            "api_key.rotated",
            "api_key.rotated",
            "api_key.deleted",
            "api_key.deleted",
        ]
        .map(String::from),
    );
    expected.sort();
    assert_eq!(d.events().await, expected);
}
