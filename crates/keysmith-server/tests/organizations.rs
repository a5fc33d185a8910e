//! Issue 3 over HTTP: org settings, the user lifecycle, teams, service accounts, bulk
//! delete, filtered listing and the audit log, each as an admin or member uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, TestApp, USER_PASSWORD};
use serde_json::{Value, json};

const KEYS: &str = "/api/v1/api-keys";
const ORG: &str = "/api/v1/orgs/default";

async fn app_with_admin() -> (TestApp, Auth) {
    let app = TestApp::sqlite().await;
    let (key, _) = app.create_key(&app.admin().await, "admin automation").await;
    (app, Auth::Bearer(key))
}

async fn ok(app: &TestApp, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Value {
    let r = app.request(method.clone(), path, auth, body).await;
    assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.text);
    r.body
}

/// A member with a key of their own.
async fn member(app: &TestApp, admin: &Auth, name: &str) -> Auth {
    ok(
        app,
        Method::POST,
        &format!("{ORG}/users"),
        admin,
        Some(json!({"username": name, "password": USER_PASSWORD})),
    )
    .await;
    let session = Auth::Session(app.sign_in(name, USER_PASSWORD).await);
    Auth::Bearer(app.create_key(&session, &format!("{name} laptop")).await.0)
}

#[tokio::test]
async fn disabling_key_creation_stops_users_and_team_service_accounts_but_not_org_service_accounts() {
    let (app, admin) = app_with_admin().await;
    let alice = member(&app, &admin, "alice").await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/teams"),
        &admin,
        Some(json!({"name": "ml"})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/service-accounts"),
        &admin,
        Some(json!({"name": "team-bot", "team": "ml"})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/service-accounts"),
        &admin,
        Some(json!({"name": "org-bot"})),
    )
    .await;

    let r = app
        .request(Method::PATCH, ORG, &alice, Some(json!({"key_creation_disabled": true})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "members cannot change settings"
    );
    let org = ok(
        &app,
        Method::PATCH,
        ORG,
        &admin,
        Some(json!({"key_creation_disabled": true})),
    )
    .await;
    assert_eq!(org["key_creation_disabled"], true);

    let r = app
        .request(Method::POST, KEYS, &alice, Some(json!({"name": "more"})))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "key_creation_disabled"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled by your organization administrator")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("existing API keys")
    );
    let r = app
        .request(
            Method::POST,
            KEYS,
            &admin,
            Some(json!({"name": "x", "owner": "team-bot"})),
        )
        .await;
    assert_eq!(
        r.code(),
        "key_creation_disabled",
        "team service accounts are stopped too"
    );
    let r = app
        .request(
            Method::POST,
            KEYS,
            &admin,
            Some(json!({"name": "x", "owner": "org-bot"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "organization service accounts still create keys"
    );
    let org_bot = Auth::Bearer(r.body["key"].as_str().unwrap().into());
    let r = app
        .request(Method::POST, KEYS, &org_bot, Some(json!({"name": "its own"})))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "an org service account creates its own keys"
    );
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &alice, None).await.status,
        StatusCode::OK,
        "existing keys keep working"
    );

    ok(
        &app,
        Method::PATCH,
        ORG,
        &admin,
        Some(json!({"key_creation_disabled": false})),
    )
    .await;
    assert_eq!(
        app.request(Method::POST, KEYS, &alice, Some(json!({"name": "again"})))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn deactivation_stops_keys_at_once_and_reactivation_restores_them() {
    let (app, admin) = app_with_admin().await;
    let bob = member(&app, &admin, "bob").await;
    let bob_session = Auth::Session(app.sign_in("bob", USER_PASSWORD).await);
    let user = ok(
        &app,
        Method::PATCH,
        &format!("{ORG}/users/bob"),
        &admin,
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(user["active"], false);
    let r = app.request(Method::GET, "/api/v1/viewer", &bob, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &bob_session, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "bob", "password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(r.code(), "invalid_credentials", "a deactivated user cannot sign in");
    ok(
        &app,
        Method::PATCH,
        &format!("{ORG}/users/bob"),
        &admin,
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &bob, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleting_a_user_deletes_their_keys() {
    let (app, admin) = app_with_admin().await;
    let carol = member(&app, &admin, "carol").await;
    let r = app
        .request(Method::DELETE, &format!("{ORG}/users/carol"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &carol, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let listed = ok(&app, Method::GET, &format!("{KEYS}?owner=carol"), &admin, None).await;
    assert_eq!(listed["items"], json!([]));
    assert_eq!(
        app.request(Method::DELETE, &format!("{ORG}/users/carol"), &admin, None)
            .await
            .code(),
        "user_not_found"
    );
}

#[tokio::test]
async fn the_last_org_admin_cannot_be_demoted_deactivated_or_deleted() {
    let (app, admin) = app_with_admin().await;
    let path = format!("{ORG}/users/admin");
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "member"}))),
        (Method::PATCH, Some(json!({"active": false}))),
        (Method::DELETE, None),
    ] {
        let r = app.request(method, &path, &admin, body).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "last_admin"), "{}", r.text);
    }
    member(&app, &admin, "dana").await;
    ok(
        &app,
        Method::PATCH,
        &format!("{ORG}/users/dana"),
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    let r = ok(&app, Method::PATCH, &path, &admin, Some(json!({"role": "member"}))).await;
    assert_eq!(r["role"], "member", "with a second admin, the first may step down");
}

#[tokio::test]
async fn admins_create_users_or_invite_them_and_an_invitation_sets_a_password_once() {
    let (app, admin) = app_with_admin().await;
    let r = app
        .request(
            Method::POST,
            &format!("{ORG}/users"),
            &admin,
            Some(json!({"username": "erin", "email": "erin@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["role"], "member");
    let token = r.body["invite_token"].as_str().unwrap().to_owned();
    let accept = |password: &str| json!({"token": token, "password": password});
    let r = app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(accept("short")),
        )
        .await;
    assert_eq!(r.code(), "invalid_value");
    let r = app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(accept("erins-new-password")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.sign_in("erin@example.com", "erins-new-password").await;
    let log = ok(
        &app,
        Method::GET,
        &format!("{ORG}/audit?action=user.invitation_accepted"),
        &admin,
        None,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(
        (&items[0]["actor"], &items[0]["target"]),
        (&json!("erin"), &json!("erin"))
    );
    assert_eq!(items[0]["source_address"], "127.0.0.1");
    let r = app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(accept("another-password")),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invitation_invalid"));

    let users = ok(&app, Method::GET, &format!("{ORG}/users"), &admin, None).await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "erin"]);
    assert!(!users.to_string().contains("password"));

    for (body, code) in [
        (json!({"username": "erin"}), "already_exists"),
        (json!({"username": "bad name"}), "invalid_value"),
        (json!({"username": "frank", "role": "owner"}), "invalid_value"),
        (json!({"username": "frank", "password": "short"}), "invalid_value"),
        (json!({"username": "frank", "email": "not-an-address"}), "invalid_value"),
    ] {
        let r = app
            .request(Method::POST, &format!("{ORG}/users"), &admin, Some(body.clone()))
            .await;
        assert_eq!(r.code(), code, "{body}");
        assert!(r.status.is_client_error());
    }
    let erin = Auth::Session(app.sign_in("erin", "erins-new-password").await);
    let r = app.request(Method::GET, &format!("{ORG}/users"), &erin, None).await;
    assert_eq!(r.code(), "forbidden", "members do not manage users");
    let r = app
        .request(Method::POST, &format!("{ORG}/users/erin/invite"), &erin, None)
        .await;
    assert_eq!(r.code(), "forbidden");

    // A fresh invitation (a user made through the SDK's createUser, or a lost password).
    let first = ok(&app, Method::POST, &format!("{ORG}/users/erin/invite"), &admin, None).await;
    let second = ok(&app, Method::POST, &format!("{ORG}/users/erin/invite"), &admin, None).await;
    let accept = |token: &Value| json!({"token": token, "password": "erins-reset-password"});
    let r = app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(accept(&first["invite_token"])),
        )
        .await;
    assert_eq!(r.code(), "invitation_invalid", "a newer invitation replaces the older");
    let r = app
        .request(
            Method::POST,
            "/api/v1/invites/accept",
            &Auth::None,
            Some(accept(&second["invite_token"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.sign_in("erin", "erins-reset-password").await;
    let r = app
        .request(Method::POST, &format!("{ORG}/users/nobody/invite"), &admin, None)
        .await;
    assert_eq!(r.code(), "user_not_found");
}

#[tokio::test]
async fn service_accounts_are_created_by_the_admins_the_table_allows_and_authenticate_only_with_keys() {
    let (app, admin) = app_with_admin().await;
    let lead = member(&app, &admin, "lead").await;
    let dev = member(&app, &admin, "dev").await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/teams"),
        &admin,
        Some(json!({"name": "vision"})),
    )
    .await;
    ok(
        &app,
        Method::PUT,
        &format!("{ORG}/teams/vision/members/lead"),
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    ok(
        &app,
        Method::PUT,
        &format!("{ORG}/teams/vision/members/dev"),
        &admin,
        Some(json!({"role": "member"})),
    )
    .await;

    let sa = |name: &str, team: Option<&str>| json!({"name": name, "description": "CI", "team": team});
    let r = app
        .request(
            Method::POST,
            &format!("{ORG}/service-accounts"),
            &dev,
            Some(sa("x", Some("vision"))),
        )
        .await;
    assert_eq!(r.code(), "forbidden", "team members cannot create service accounts");
    let r = app
        .request(
            Method::POST,
            &format!("{ORG}/service-accounts"),
            &lead,
            Some(sa("x", None)),
        )
        .await;
    assert_eq!(
        r.code(),
        "forbidden",
        "team admins cannot create organization service accounts"
    );
    let created = ok(
        &app,
        Method::POST,
        &format!("{ORG}/service-accounts"),
        &lead,
        Some(sa("vision-ci", Some("vision"))),
    )
    .await;
    assert_eq!(
        (created["scope"].as_str(), created["team"].as_str()),
        (Some("team"), Some("vision"))
    );

    let key = ok(
        &app,
        Method::POST,
        KEYS,
        &lead,
        Some(json!({"name": "ci", "owner": "vision-ci"})),
    )
    .await;
    let bot = Auth::Bearer(key["key"].as_str().unwrap().into());
    let viewer = ok(&app, Method::GET, "/api/v1/viewer", &bot, None).await;
    assert_eq!(
        (viewer["kind"].as_str(), viewer["username"].as_str()),
        (Some("service_account"), Some("vision-ci"))
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": "vision-ci", "password": "anything-at-all"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_credentials", "service accounts cannot sign in");

    let listed = ok(&app, Method::GET, &format!("{ORG}/service-accounts"), &lead, None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let listed = ok(&app, Method::GET, &format!("{ORG}/service-accounts"), &dev, None).await;
    assert_eq!(listed["items"], json!([]), "members see no service accounts");
    let team = ok(&app, Method::GET, &format!("{ORG}/teams/vision"), &lead, None).await;
    assert_eq!(team["service_accounts"], json!(["vision-ci"]));
    assert_eq!(
        team["members"],
        json!([{"username": "dev", "role": "member"}, {"username": "lead", "role": "admin"}])
    );
    assert_eq!(
        app.request(Method::GET, &format!("{ORG}/teams/vision"), &dev, None)
            .await
            .code(),
        "forbidden"
    );

    let r = app
        .request(Method::DELETE, &format!("{ORG}/service-accounts/vision-ci"), &dev, None)
        .await;
    assert_eq!(r.code(), "service_account_not_found");
    let r = app
        .request(
            Method::DELETE,
            &format!("{ORG}/service-accounts/vision-ci"),
            &lead,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.request(Method::GET, "/api/v1/viewer", &bot, None).await.status,
        StatusCode::UNAUTHORIZED,
        "its keys went with it"
    );
}

#[tokio::test]
async fn teams_have_unique_names_and_need_org_admins() {
    let (app, admin) = app_with_admin().await;
    let dev = member(&app, &admin, "dev").await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/teams"),
        &admin,
        Some(json!({"name": "nlp"})),
    )
    .await;
    let r = app
        .request(
            Method::POST,
            &format!("{ORG}/teams"),
            &admin,
            Some(json!({"name": "NLP"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "already_exists"));
    let r = app
        .request(
            Method::POST,
            &format!("{ORG}/teams"),
            &dev,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(r.code(), "forbidden");
    let teams = ok(&app, Method::GET, &format!("{ORG}/teams"), &dev, None).await;
    assert_eq!(teams["items"][0]["name"], "nlp", "members see team names");
    let r = app
        .request(
            Method::PUT,
            &format!("{ORG}/teams/nlp/members/dev"),
            &admin,
            Some(json!({"role": "boss"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_value");
    let r = app
        .request(
            Method::PUT,
            &format!("{ORG}/teams/nlp/members/ghost"),
            &admin,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.code(), "user_not_found");
    let r = app
        .request(
            Method::PUT,
            &format!("{ORG}/teams/none/members/dev"),
            &admin,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.code(), "team_not_found");
    ok(
        &app,
        Method::PUT,
        &format!("{ORG}/teams/nlp/members/dev"),
        &admin,
        Some(json!({"role": "member"})),
    )
    .await;
    let viewer = ok(&app, Method::GET, "/api/v1/viewer", &dev, None).await;
    assert_eq!(
        viewer["teams"],
        json!([{"org": "default", "name": "nlp", "role": "member"}])
    );
    let r = app
        .request(Method::DELETE, &format!("{ORG}/teams/nlp/members/dev"), &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn bulk_delete_answers_per_key_by_the_same_rules() {
    let (app, admin) = app_with_admin().await;
    let gus = member(&app, &admin, "gus").await;
    let (_, mine) = app.create_key(&admin, "mine").await;
    let (_, his) = app.create_key(&gus, "his").await;
    let body = json!({"key_ids": [mine, his, "wandb_v1_000000000000000000000000000", "garbage"]});
    let r = ok(&app, Method::POST, &format!("{KEYS}/bulk-delete"), &gus, Some(body)).await;
    let statuses: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["not_found", "deleted", "not_found", "not_found"],
        "gus may delete only his own"
    );
    let r = ok(
        &app,
        Method::POST,
        &format!("{KEYS}/bulk-delete"),
        &admin,
        Some(json!({"key_ids": [mine]})),
    )
    .await;
    assert_eq!(r["results"][0]["status"], "deleted");
    for bad in [json!({"key_ids": []}), json!({"key_ids": vec!["x"; 101]})] {
        let r = app
            .request(Method::POST, &format!("{KEYS}/bulk-delete"), &admin, Some(bad))
            .await;
        assert_eq!(r.code(), "invalid_value");
    }
}

#[tokio::test]
async fn org_admins_filter_and_sort_the_keys_of_the_org() {
    let (app, admin) = app_with_admin().await;
    let hal = member(&app, &admin, "hal").await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/teams"),
        &admin,
        Some(json!({"name": "speech"})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("{ORG}/service-accounts"),
        &admin,
        Some(json!({"name": "speech-bot", "team": "speech"})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        KEYS,
        &admin,
        Some(json!({"name": "Nightly Eval", "owner": "speech-bot"})),
    )
    .await;
    app.clock.advance_ms(60_000);
    ok(&app, Method::GET, "/api/v1/viewer", &hal, None).await;
    // From here the admin reads with a session, so that only hal's key is used late.
    let admin = app.admin().await;

    let owners = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["owner"]["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = ok(&app, Method::GET, KEYS, &admin, None).await;
    assert_eq!(owners(&all).len(), 3);
    let bot_key = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["owner"]["username"] == "speech-bot")
        .unwrap();
    assert_eq!(bot_key["created_by"], json!({"kind": "user", "username": "admin"}));
    assert_eq!(
        owners(
            &ok(
                &app,
                Method::GET,
                &format!("{KEYS}?owner_kind=service_account"),
                &admin,
                None
            )
            .await
        ),
        ["speech-bot"]
    );
    assert_eq!(
        owners(&ok(&app, Method::GET, &format!("{KEYS}?team=speech"), &admin, None).await),
        ["speech-bot"]
    );
    assert_eq!(
        owners(
            &ok(
                &app,
                Method::GET,
                &format!("{KEYS}?name_contains=nightly"),
                &admin,
                None
            )
            .await
        ),
        ["speech-bot"]
    );
    assert_eq!(
        owners(&ok(&app, Method::GET, &format!("{KEYS}?owner=hal"), &admin, None).await),
        ["hal"]
    );
    assert_eq!(
        owners(&ok(&app, Method::GET, &format!("{KEYS}?owner=nobody"), &admin, None).await),
        Vec::<String>::new()
    );
    let recent = ok(
        &app,
        Method::GET,
        &format!("{KEYS}?sort=last_used&limit=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(owners(&recent), ["hal"], "hal's key was used last");
    let cursor = recent["next_cursor"].as_str().unwrap();
    let rest = ok(
        &app,
        Method::GET,
        &format!("{KEYS}?sort=last_used&limit=10&cursor={cursor}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(owners(&rest).len(), 2);
    let r = app
        .request(Method::GET, &format!("{KEYS}?cursor={cursor}"), &admin, None)
        .await;
    assert_eq!(r.code(), "invalid_cursor", "a cursor from another sort is refused");
    let after = ok(
        &app,
        Method::GET,
        &format!("{KEYS}?last_used_after=2025-11-26T19:00:30Z"),
        &admin,
        None,
    )
    .await;
    assert_eq!(owners(&after), ["hal"]);
    for (query, code) in [
        ("owner_kind=robot", "invalid_query"),
        ("sort=name", "invalid_query"),
        ("last_used_after=yesterday", "invalid_query"),
        ("team=none", "team_not_found"),
        ("org=elsewhere", "org_not_found"),
    ] {
        let r = app.request(Method::GET, &format!("{KEYS}?{query}"), &admin, None).await;
        assert_eq!(r.code(), code, "{query}");
    }
}

#[tokio::test]
async fn the_audit_log_records_who_did_what_to_what_from_where() {
    let (app, admin) = app_with_admin().await;
    let ivy = member(&app, &admin, "ivy").await;
    let (_, key_id) = app.create_key(&ivy, "temp").await;
    ok(
        &app,
        Method::PATCH,
        &format!("{KEYS}/{key_id}"),
        &ivy,
        Some(json!({"name": "renamed"})),
    )
    .await;
    app.request(Method::DELETE, &format!("{KEYS}/{key_id}"), &admin, None)
        .await;
    ok(
        &app,
        Method::PATCH,
        &format!("{ORG}/users/ivy"),
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        &format!("{ORG}/users/ivy"),
        &admin,
        Some(json!({"role": "member"})),
    )
    .await;

    let log = ok(&app, Method::GET, &format!("{ORG}/audit"), &admin, None).await;
    let items = log["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        &actions[..5],
        [
            "user.role_changed",
            "user.role_changed",
            "api_key.deleted",
            "api_key.renamed",
            "api_key.created"
        ],
        "{actions:?}"
    );
    let deleted = &items[2];
    assert_eq!(deleted["actor"], "admin");
    assert_eq!(deleted["target"], key_id.as_str());
    assert_eq!(deleted["source_address"], "127.0.0.1");
    assert_eq!(deleted["detail"]["owner"], "ivy");
    assert!(deleted["at"].as_str().unwrap().starts_with("2025-11-26T"));
    assert!(
        !log.to_string().contains(&format!("{key_id}_")),
        "a key's secret part follows its ID: never logged"
    );

    let renames = ok(
        &app,
        Method::GET,
        &format!("{ORG}/audit?action=api_key.renamed"),
        &admin,
        None,
    )
    .await;
    assert_eq!(renames["items"].as_array().unwrap().len(), 1);
    assert_eq!(renames["items"][0]["actor"], "ivy");
    let page = ok(&app, Method::GET, &format!("{ORG}/audit?limit=2"), &admin, None).await;
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = ok(
        &app,
        Method::GET,
        &format!("{ORG}/audit?limit=2&cursor={next}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(page2["items"][0]["action"], "api_key.deleted");
    assert_eq!(
        app.request(Method::GET, &format!("{ORG}/audit"), &ivy, None)
            .await
            .code(),
        "forbidden"
    );
    assert_eq!(
        app.request(Method::GET, &format!("{ORG}/audit?cursor=abc"), &admin, None)
            .await
            .code(),
        "invalid_cursor"
    );
}

#[tokio::test]
async fn an_admin_of_one_org_cannot_deactivate_a_user_who_also_belongs_to_another() {
    let (app, admin) = app_with_admin().await;
    member(&app, &admin, "jo").await;
    let other = app.store.create_org("other", common::START_MS).await.unwrap();
    let jo = app.store.find_user_by_username("jo").await.unwrap().unwrap();
    app.store
        .add_org_member(
            other.id,
            jo.id,
            keysmith_core::role::OrgRole::Member,
            common::START_MS,
            &[],
        )
        .await
        .unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("{ORG}/users/jo"),
            &admin,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.code(), "forbidden");
    let r = app
        .request(Method::DELETE, &format!("{ORG}/users/jo"), &admin, None)
        .await;
    assert_eq!(r.code(), "forbidden");
}
