//! `POST /graphql` as the wandb SDKs use it: the exact documents of
//! wandb-wire-protocol.md §2.3 and §3.2, the rejection every SDK version prints
//! cleanly, the key mutations under the REST API's rules, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use common::{Auth, Reply, TestApp};
use serde_json::{Value, json};

const VERIFY_021: &str = "{\n  viewer {\n    id\n  }\n}\n";
const PROBE: &str = "query ProbeServerCapabilities {\n  QueryType: __type(name: \"Query\") { ...fieldData }\n  MutationType: __type(name: \"Mutation\") { ...fieldData }\n  ServerInfoType: __type(name: \"ServerInfo\") { ...fieldData }\n}\nfragment fieldData on __Type { fields { name } }";
const VIEWER_SERVER_INFO: &str = "query Viewer {\n  viewer { id entity username email flags teams { edges { node { name } } } }\n  serverInfo {\n    cliVersionInfo\n    latestLocalVersionInfo { outOfDate latestVersionString versionOnThisInstanceString }\n  }\n}";
const VIEWER_CORE: &str = "\nquery Viewer {\n\tviewer {\n\t\tid\n\t\tentity\n\t\tusername\n\t\temail\n\t\tflags\n\t\tteams {\n\t\t\tedges {\n\t\t\t\tnode {\n\t\t\t\t\tname\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n";
const GET_VIEWER: &str = "\nquery GetViewer { viewer { ...UserFragment } }\nfragment ApiKeyFragment on ApiKey { id name description }\nfragment UserFragment on User {\n  id name username email admin flags entity deletedAt\n  apiKeys { edges { node { ...ApiKeyFragment } } }\n  teams { edges { node { name } } }\n}";
const VIEWER_022: &str = "query Viewer{ viewer { id flags entity username email admin apiKeys { edges { node { id name description } } } teams { edges { node { name } } } } }";
const GENERATE: &str = "mutation GenerateApiKey($description: String) {\n  result: generateApiKey(input: {description: $description}) { apiKey { ...ApiKeyFragment } }\n}\nfragment ApiKeyFragment on ApiKey { id name description }";
const GENERATE_021: &str = "mutation GenerateApiKey($description: String) { generateApiKey(input: {description: $description}) { apiKey { id name } } }";
const DELETE: &str = "mutation DeleteApiKey($id: String!) {\n  result: deleteApiKey(input: {id: $id}) { success }\n}";
const CREATE_SA: &str = "mutation CreateServiceAccount($entity: String!, $description: String!) {\n  result: createServiceAccount(input: {description: $description, entityName: $entity}) { user { id } }\n}";
const GET_TEAM: &str = "query GetTeamEntity($name: String!) {\n  entity(name: $name) { id name available photoUrl readOnly readOnlyAdmin isTeam entityType privateOnly\n    storageBytes codeSavingEnabled defaultAccess isPaid\n    members { id admin pending email username name photoUrl accountType apiKey } }\n}";
const CREATE_TEAM: &str = "mutation CreateTeam($teamName: String!, $teamAdminUserName: String) {\n  result: createTeam(input: {teamName: $teamName, teamAdminUserName: $teamAdminUserName}) {\n    entity { id name available photoUrl limits } }\n}";
const SEARCH_USERS: &str =
    "query SearchUsers($query: String) { users(query: $query) { edges { node { id name username email admin } } } }";
const CREATE_USER: &str = "mutation CreateUserFromAdmin($email: String!, $admin: Boolean) {\n  result: createUser(input: {email: $email, admin: $admin}) { user { id name username email admin } }\n}";
const CREATE_INVITE: &str = "mutation CreateInvite($entity: String!, $email: String, $username: String, $admin: Boolean) {\n  result: createInvite(input: {entityName: $entity, email: $email, username: $username, admin: $admin}) {\n    invite { id name email createdAt toUser { name } } }\n}";
const DELETE_INVITE: &str = "mutation DeleteInvite($id: String, $entity: String) { result: deleteInvite(input: {id: $id, entityName: $entity}) { success } }";

async fn gql_raw(app: &TestApp, key: Option<&str>, user_agent: &str, body: Value) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, user_agent);
    if let Some(key) = key {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
        request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    app.send(request.body(Body::from(body.to_string())).unwrap()).await
}

async fn gql(app: &TestApp, key: &str, query: &str, variables: Value) -> Reply {
    gql_raw(
        app,
        Some(key),
        "W&B Public Client 0.31.0",
        json!({"query": query, "variables": variables, "operationName": ""}),
    )
    .await
}

async fn admin_key(app: &TestApp) -> String {
    app.create_key(&app.admin().await, "sdk").await.0
}

#[tokio::test]
async fn every_sdk_versions_verification_query_accepts_a_valid_key() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    for (query, agent) in [
        (VERIFY_021, "W&B Internal Client 0.21.0"),
        (VIEWER_SERVER_INFO, "W&B Internal Client 0.21.0"),
        (VIEWER_CORE, "wandb-core"),
        (GET_VIEWER, "W&B Public Client 0.31.0"),
        (VIEWER_022, "W&B Public Client 0.22.2"),
    ] {
        let r = gql_raw(&app, Some(&key), agent, json!({"query": query, "variables": {}})).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        assert!(r.body.get("errors").is_none(), "{query}: {}", r.text);
        assert!(r.body["data"]["viewer"]["id"].is_string(), "{}", r.text);
    }
    // wandb-core sends operationName and no variables; the 0.31 public API sends "".
    let r = gql_raw(
        &app,
        Some(&key),
        "wandb-core",
        json!({"query": VIEWER_CORE, "operationName": "Viewer"}),
    )
    .await;
    let viewer = &r.body["data"]["viewer"];
    assert_eq!(viewer["username"], "admin");
    assert_eq!(viewer["entity"], "admin");
    assert_eq!(
        viewer["flags"], "{}",
        "flags must be a JSON string: SDK 0.21 calls json.loads on it"
    );
    let r = gql(&app, &key, GET_VIEWER, json!({})).await;
    let viewer = &r.body["data"]["viewer"];
    for field in [
        "id",
        "name",
        "username",
        "email",
        "admin",
        "flags",
        "entity",
        "deletedAt",
        "apiKeys",
        "teams",
    ] {
        assert!(
            viewer.get(field).is_some(),
            "GetViewer lacks {field}: pydantic rejects missing keys"
        );
    }
    assert_eq!(viewer["admin"], true);
    assert!(viewer["name"].is_string(), "name is non-null");
}

#[tokio::test]
async fn the_capability_probe_and_server_info_let_old_sdks_print_who_is_logged_in() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    let r = gql(&app, &key, PROBE, json!({})).await;
    let names = |t: &str| -> Vec<String> {
        r.body["data"][t]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names("QueryType").contains(&"serverInfo".to_owned()));
    assert!(names("ServerInfoType").contains(&"cliVersionInfo".to_owned()));
    assert!(names("ServerInfoType").contains(&"latestLocalVersionInfo".to_owned()));
    assert!(names("MutationType").contains(&"generateApiKey".to_owned()));
    let r = gql(&app, &key, VIEWER_SERVER_INFO, json!({})).await;
    assert_eq!(
        r.body["data"]["serverInfo"]["latestLocalVersionInfo"]["outOfDate"],
        false
    );
}

#[tokio::test]
async fn a_bad_key_gets_wandbs_401_with_a_null_for_each_field() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    let mut mutated = key.clone().into_bytes();
    mutated[60] = if mutated[60] == b'a' { b'b' } else { b'a' };
    let mutated = String::from_utf8(mutated).unwrap();
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    for bad in [Some(mutated.as_str()), Some(unknown), Some("short"), None] {
        let r = gql_raw(&app, bad, "wandb-core", json!({"query": VIEWER_CORE})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(r.body["data"], json!({"viewer": null}));
        assert_eq!(r.body["errors"][0]["message"], "user is not logged in");
        assert_eq!(r.body["errors"][0]["extensions"]["code"], "PERMISSION_ERROR");
    }
    let r = gql_raw(&app, Some(unknown), "x", json!({"query": VIEWER_SERVER_INFO})).await;
    assert_eq!(r.body["data"], json!({"viewer": null, "serverInfo": null}));
    let r = gql_raw(
        &app,
        Some(unknown),
        "x",
        json!({"query": GENERATE, "variables": {"description": "x"}}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["data"]),
        (StatusCode::UNAUTHORIZED, &json!({"result": null}))
    );
}

#[tokio::test]
async fn generate_returns_the_full_key_once_and_delete_revokes_it() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    let r = gql(&app, &key, GENERATE, json!({"description": "made-by-sdk"})).await;
    let api_key = &r.body["data"]["result"]["apiKey"];
    let new_key = api_key["name"].as_str().unwrap().to_owned();
    assert_eq!(new_key.len(), 86, "the full key, in name");
    assert_eq!(api_key["description"], "made-by-sdk");
    let r = gql(&app, &new_key, VIEWER_CORE, json!({})).await;
    assert_eq!(
        r.body["data"]["viewer"]["username"], "admin",
        "the generated key logs in"
    );

    let r = gql(&app, &key, GET_VIEWER, json!({})).await;
    let edges = r.body["data"]["viewer"]["apiKeys"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 2);
    assert!(!r.text.contains(&new_key[37..]), "lists never carry a secret");
    let node = edges
        .iter()
        .find(|e| e["node"]["description"] == "made-by-sdk")
        .unwrap();
    assert_eq!(
        node["node"]["name"].as_str().unwrap(),
        &new_key[..36],
        "a key's name in lists is its key ID"
    );
    let r = gql(&app, &key, DELETE, json!({"id": node["node"]["id"]})).await;
    assert_eq!(r.body["data"]["result"]["success"], true);
    let r = gql(&app, &new_key, VIEWER_CORE, json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "deleted keys fail on the next request"
    );
    let r = gql(&app, &key, DELETE, json!({"id": node["node"]["id"]})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["keysmith_code"], "api_key_not_found");
}

#[tokio::test]
async fn deleting_another_users_key_follows_the_permission_table() {
    let app = TestApp::sqlite().await;
    let admin = admin_key(&app).await;
    app.add_user("mia").await;
    let mia = app
        .create_key(&Auth::Session(app.sign_in("mia", common::USER_PASSWORD).await), "mia")
        .await;
    let (_, admin_key_id) = app.create_key(&app.admin().await, "admin's other").await;
    let id = base64::engine::general_purpose::STANDARD.encode(format!("ApiKey:{admin_key_id}"));
    let r = gql(&app, &mia.0, DELETE, json!({"id": id})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "PERMISSION_ERROR");
    assert_eq!(r.body["data"]["result"], Value::Null);
    let mia_id = base64::engine::general_purpose::STANDARD.encode(format!("ApiKey:{}", mia.1));
    let r = gql(&app, &admin, DELETE, json!({"id": mia_id})).await;
    assert_eq!(
        r.body["data"]["result"]["success"], true,
        "org admins delete members' keys"
    );
}

#[tokio::test]
async fn old_sdks_get_legacy_keys_where_the_org_allows_them() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    let old = "W&B Public Client 0.21.0";
    let body = json!({"query": GENERATE_021, "variables": {"description": "old"}});
    let r = gql_raw(&app, Some(&key), old, body.clone()).await;
    assert_eq!(
        r.body["data"]["generateApiKey"]["apiKey"]["name"]
            .as_str()
            .unwrap()
            .len(),
        86,
        "not allowed yet"
    );
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &Auth::Bearer(key.clone()),
            Some(json!({"legacy_keys_allowed": true})),
        )
        .await;
    assert_eq!(r.body["legacy_keys_allowed"], true);
    let r = gql_raw(&app, Some(&key), old, body).await;
    let legacy = r.body["data"]["generateApiKey"]["apiKey"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(legacy.len(), 40);
    assert!(legacy.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let r = gql_raw(&app, Some(&legacy), old, json!({"query": VERIFY_021})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "legacy and new keys authenticate side by side"
    );
    let r = gql(&app, &key, GENERATE, json!({"description": "new sdk"})).await;
    assert_eq!(
        r.body["data"]["result"]["apiKey"]["name"].as_str().unwrap().len(),
        86,
        "new SDKs keep new keys"
    );
}

#[tokio::test]
async fn a_team_admin_creates_a_service_account_and_reads_its_key_once() {
    let app = TestApp::sqlite().await;
    let admin = admin_key(&app).await;
    let r = gql(
        &app,
        &admin,
        CREATE_TEAM,
        json!({"teamName": "vision", "teamAdminUserName": null}),
    )
    .await;
    assert_eq!(r.body["data"]["result"]["entity"]["name"], "vision", "{}", r.text);
    let r = gql(
        &app,
        &admin,
        CREATE_SA,
        json!({"entity": "vision", "description": "Nightly CI"}),
    )
    .await;
    assert!(r.body["data"]["result"]["user"]["id"].is_string(), "{}", r.text);
    let r = gql(&app, &admin, GET_TEAM, json!({"name": "vision"})).await;
    let entity = &r.body["data"]["entity"];
    assert_eq!(
        (entity["isTeam"].as_bool(), entity["storageBytes"].as_i64()),
        (Some(true), Some(0))
    );
    let members = entity["members"].as_array().unwrap();
    let bot = members.last().unwrap();
    assert_eq!(bot["accountType"], "SERVICE");
    assert_eq!(bot["name"], "nightly-ci");
    let bot_key = bot["apiKey"].as_str().unwrap().to_owned();
    let r = gql(&app, &bot_key, VIEWER_CORE, json!({})).await;
    assert_eq!(
        r.body["data"]["viewer"]["username"], "nightly-ci",
        "the service account's key works"
    );
    let r = gql(&app, &admin, GET_TEAM, json!({"name": "vision"})).await;
    assert_eq!(
        r.body["data"]["entity"]["members"].as_array().unwrap().last().unwrap()["apiKey"],
        Value::Null,
        "shown once"
    );

    app.add_user("outsider").await;
    let outsider = app
        .create_key(
            &Auth::Session(app.sign_in("outsider", common::USER_PASSWORD).await),
            "o",
        )
        .await
        .0;
    let r = gql(
        &app,
        &outsider,
        CREATE_SA,
        json!({"entity": "vision", "description": "sneaky"}),
    )
    .await;
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "PERMISSION_ERROR");
    let r = gql(&app, &outsider, CREATE_TEAM, json!({"teamName": "mine"})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["keysmith_code"], "forbidden");
}

#[tokio::test]
async fn admins_search_create_and_invite_users() {
    let app = TestApp::sqlite().await;
    let admin = admin_key(&app).await;
    let r = gql(
        &app,
        &admin,
        CREATE_USER,
        json!({"email": "Grace.Hopper@example.com", "admin": false}),
    )
    .await;
    let user = &r.body["data"]["result"]["user"];
    assert_eq!(
        (user["username"].as_str(), user["admin"].as_bool()),
        (Some("grace.hopper"), Some(false)),
        "{}",
        r.text
    );
    let r = gql(&app, &admin, SEARCH_USERS, json!({"query": "grace"})).await;
    assert_eq!(r.body["data"]["users"]["edges"].as_array().unwrap().len(), 1);
    gql(&app, &admin, CREATE_TEAM, json!({"teamName": "compilers"})).await;
    let r = gql(
        &app,
        &admin,
        CREATE_INVITE,
        json!({"entity": "compilers", "username": "grace.hopper", "admin": true}),
    )
    .await;
    let invite = &r.body["data"]["result"]["invite"];
    assert_eq!(invite["toUser"]["name"], "grace.hopper", "{}", r.text);
    let r = gql(&app, &admin, GET_TEAM, json!({"name": "compilers"})).await;
    assert!(r.text.contains("grace.hopper"));
    let r = gql(
        &app,
        &admin,
        DELETE_INVITE,
        json!({"id": invite["id"], "entity": "compilers"}),
    )
    .await;
    assert_eq!(r.body["data"]["result"]["success"], true);
    let r = gql(
        &app,
        &admin,
        CREATE_INVITE,
        json!({"entity": "compilers", "email": "new@example.com"}),
    )
    .await;
    assert_eq!(r.body["data"]["result"]["invite"]["name"], "new");
}

#[tokio::test]
async fn hostile_input_gets_graphql_errors_never_a_5xx() {
    let app = TestApp::sqlite().await;
    let key = admin_key(&app).await;
    let nested = (0..20).fold("__typename".to_owned(), |inner, _| {
        format!("__type(name: \"User\") {{ ofType {{ {inner} }} }}")
    });
    let cases = [
        json!({"query": "{ viewer { id "}),
        json!({"query": "{ viewer { doesNotExist } }"}),
        json!({"query": "query A { viewer { id } } query B { viewer { id } }", "operationName": "C"}),
        json!({"query": format!("{{ {nested} }}")}),
        json!({"query": 42}),
        json!({"variables": {}}),
        json!({"query": "mutation { deleteApiKey(input: {}) { success } }"}),
        json!({"query": "{ viewer { teams { edges { node { members { name } } } } } }"}),
        json!({"query": "query($n: String!) { entity(name: $n) { name } }", "variables": {"n": 5}}),
    ];
    for body in cases {
        let r = gql_raw(&app, Some(&key), "x", body.clone()).await;
        assert!(
            r.status.is_client_error() || r.status == StatusCode::OK,
            "{body}: {}",
            r.status
        );
        assert!(!r.status.is_server_error());
        assert!(
            r.body["errors"].as_array().is_some_and(|e| !e.is_empty()) || r.body["data"].is_object(),
            "{body}: {}",
            r.text
        );
    }
    let r = gql_raw(&app, Some(&key), "x", json!({"query": format!("{{ {nested} }}")})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "too deep: {}", r.text);
    let r = gql_raw(
        &app,
        Some(&key),
        "x",
        json!([{"query": "{ viewer { id } }"}, {"query": "{ viewer { id } }"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "batches are refused");
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/graphql/")
        .header(header::CONTENT_TYPE, "application/json");
    request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    let r = app.send(request.body(Body::from("{not json")).unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let big = json!({"query": format!("{{ viewer {{ {} }} }}", "id ".repeat(40_000))});
    let r = gql_raw(&app, Some(&key), "x", big).await;
    assert!(r.status.is_client_error(), "{}", r.status);
}

/// The viewer queries the SDKs send are answered without the executor (the fast lane
/// of `graphql::fast`): the answer must be byte for byte what the executor gives. The
/// same document with `@include(if: true)` on `viewer` means the same but is not
/// recognized, so the executor answers it; both are compared for a user with an email
/// and teams, an admin without either, and a team service account.
#[tokio::test]
async fn the_viewer_fast_lane_answers_exactly_what_the_executor_answers() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let admin_key = admin_key(&app).await;
    app.add_user("dev").await;
    for (method, path, body) in [
        (Method::POST, "/api/v1/orgs/default/teams", json!({"name": "vision"})),
        (Method::POST, "/api/v1/orgs/default/teams", json!({"name": "audio"})),
        (
            Method::PUT,
            "/api/v1/orgs/default/teams/vision/members/dev",
            json!({"role": "member"}),
        ),
        (
            Method::PUT,
            "/api/v1/orgs/default/teams/audio/members/dev",
            json!({"role": "admin"}),
        ),
        (
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            json!({"name": "vision-bot", "team": "vision"}),
        ),
    ] {
        let r = app.request(method, path, &admin, Some(body)).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
    }
    let dev = app.sign_in("dev", common::USER_PASSWORD).await;
    let (dev_key, _) = app.create_key(&Auth::Session(dev), "dev").await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "bot", "owner": "vision-bot"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bot_key = r.body["key"].as_str().unwrap().to_owned();
    let queries = [
        "query Viewer { viewer { id entity username flags teams { edges { node { name } } } } }",
        VIEWER_CORE,
        VERIFY_021,
        "{ viewer { accountType email name teams { edges { node { name } } } username id } }",
    ];
    let fast = || app.state.metrics.graphql_fast_viewer.get();
    for key in [&admin_key, &dev_key, &bot_key] {
        for query in queries {
            let before = fast();
            let answered = gql(&app, key, query, json!({})).await;
            assert_eq!(fast(), before + 1, "the fast lane answered {query}");
            let slow = query.replacen("viewer {", "viewer @include(if: true) {", 1);
            let executed = gql(&app, key, &slow, json!({})).await;
            assert_eq!(fast(), before + 1, "the executor answered {slow}");
            assert_eq!((answered.status, executed.status), (StatusCode::OK, StatusCode::OK));
            assert_eq!(answered.text, executed.text, "{query}");
            for header in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
                assert_eq!(answered.headers.get(&header), executed.headers.get(&header), "{header}");
            }
        }
    }
    // It is the caller's own answer: teams and kind as the executor sees them.
    let r = gql(&app, &dev_key, queries[3], json!({})).await;
    let viewer = &r.body["data"]["viewer"];
    assert_eq!(viewer["email"], "dev@example.com");
    assert_eq!(viewer["teams"]["edges"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = gql(&app, &bot_key, queries[3], json!({})).await;
    assert_eq!(r.body["data"]["viewer"]["accountType"], "SERVICE", "{}", r.text);
    // No key: the executor's refusal, never the fast lane.
    let before = fast();
    let r = gql_raw(&app, None, "W&B Public Client 0.31.0", json!({"query": queries[0]})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fast(), before);
}
