//! Network allowlists (docs/DESIGN.md §3, "Network allowlists"): a key's own and its
//! owner's organizations', checked on every door with the client's real address
//! (behind `trusted_proxies`), from the cache when warm, and changed at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{Auth, Reply, TestApp};
use keysmith_server::Settings;
use keysmith_server::auth::source::TrustedProxies;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};

const KEYS: &str = "/api/v1/api-keys";
const OFFICE: &str = "198.51.100.7";
const ELSEWHERE: &str = "203.0.113.5";

/// `method path` with `key` as Bearer, on a connection from `peer`.
async fn from(
    app: &TestApp,
    peer: &str,
    method: Method,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = match body {
        Some(v) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    let ip: IpAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 4000)));
    app.send(request).await
}

async fn viewer(app: &TestApp, peer: &str, key: &str) -> Reply {
    from(app, peer, Method::GET, "/api/v1/viewer", key, &[], None).await
}

async fn forward(app: &TestApp, peer: &str, key: &str, xff: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = xff.map(|x| ("x-forwarded-for", x)).into_iter().collect();
    from(app, peer, Method::GET, "/api/v1/forward-auth", key, &headers, None).await
}

/// A key of the admin made from a session with this allowlist; returns the answer.
async fn restricted_key(app: &TestApp, networks: Value) -> Reply {
    let session = app.admin().await;
    app.request(
        Method::POST,
        KEYS,
        &session,
        Some(json!({"name": "office only", "allowed_networks": networks})),
    )
    .await
}

#[tokio::test]
async fn a_key_with_an_allowlist_works_only_from_its_networks_on_every_door() {
    let app = TestApp::sqlite().await;
    let r = restricted_key(&app, json!(["2001:db8::1/32", "198.51.100.0/24"])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["allowed_networks"],
        json!(["198.51.100.0/24", "2001:db8::/32"]),
        "kept canonical"
    );
    let key = r.body["key"].as_str().unwrap().to_owned();
    let key_id = r.body["key_id"].as_str().unwrap().to_owned();

    for peer in [OFFICE, "2001:db8:7::1", "::ffff:198.51.100.9"] {
        // Twice: read from the store, then from the cache.
        for _ in 0..2 {
            assert_eq!(viewer(&app, peer, &key).await.status, StatusCode::OK, "{peer}");
            assert_eq!(forward(&app, peer, &key, None).await.status, StatusCode::OK, "{peer}");
        }
    }
    for peer in [ELSEWHERE, "127.0.0.1", "2001:db9::1"] {
        for _ in 0..2 {
            let r = viewer(&app, peer, &key).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "ip_not_allowed"),
                "{peer}"
            );
            assert!(
                r.body["error"]["message"].as_str().unwrap().contains("network"),
                "{}",
                r.text
            );
            let r = forward(&app, peer, &key, None).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "ip_not_allowed"),
                "{peer}"
            );
            assert!(r.headers.get("x-keysmith-user").is_none());
        }
    }
    // GraphQL: W&B's refusal code, with the reason; not a 401 that says the key is wrong.
    let r = from(
        &app,
        ELSEWHERE,
        Method::POST,
        "/graphql",
        &key,
        &[],
        Some(json!({"query": "{ viewer { username } }"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "PERMISSION_ERROR");
    assert_eq!(r.body["errors"][0]["extensions"]["keysmith_code"], "ip_not_allowed");
    let r = from(
        &app,
        OFFICE,
        Method::POST,
        "/graphql",
        &key,
        &[],
        Some(json!({"query": "{ viewer { username } }"})),
    )
    .await;
    assert_eq!(r.body["data"]["viewer"]["username"], "admin", "{}", r.text);

    // The list shows the allowlist; the refusals are counted, and never charged to the
    // address as guesses (the key is genuine): far past the failure limit, still 403.
    let session = app.admin().await;
    let shown = app
        .request(Method::GET, &format!("{KEYS}/{key_id}"), &session, None)
        .await;
    assert_eq!(
        shown.body["allowed_networks"],
        json!(["198.51.100.0/24", "2001:db8::/32"])
    );
    for _ in 0..70 {
        viewer(&app, ELSEWHERE, &key).await;
    }
    assert_eq!(viewer(&app, ELSEWHERE, &key).await.code(), "ip_not_allowed");
    let metrics = app.request(Method::GET, "/metrics", &Auth::None, None).await.text;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keysmith_verifications_total{outcome=\"ip_not_allowed\"} "))
        .expect("the outcome is a metric")
        .parse()
        .unwrap();
    assert!(refused >= 83, "{refused}");
}

#[tokio::test]
async fn an_allowlist_that_does_not_parse_is_refused_naming_the_field() {
    let app = TestApp::sqlite().await;
    for (bad, words) in [
        (json!(["198.51.100.0/24", "example.com"]), "example.com"),
        (json!(["10.0.0.0/33"]), "10.0.0.0/33"),
        (
            json!((0..65).map(|i| format!("10.0.{i}.0/24")).collect::<Vec<_>>()),
            "1 to 64",
        ),
    ] {
        let r = restricted_key(&app, bad).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_value"),
            "{}",
            r.text
        );
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("allowed_networks") && message.contains(words),
            "{message}"
        );
    }
    let r = restricted_key(&app, json!([])).await;
    assert_eq!(r.body["allowed_networks"], json!([]), "an empty list is no restriction");
}

#[tokio::test]
async fn an_organizations_allowlist_applies_to_every_key_of_its_members_at_once() {
    let app = TestApp::sqlite().await;
    let session = app.admin().await;
    let (key, _) = app.create_key(&session, "ci").await;
    assert_eq!(
        viewer(&app, "127.0.0.1", &key).await.status,
        StatusCode::OK,
        "warm in the cache"
    );
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &session,
            Some(json!({"allowed_networks": ["198.51.100.0/24"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["allowed_networks"], json!(["198.51.100.0/24"]));
    let r = viewer(&app, "127.0.0.1", &key).await;
    assert_eq!(
        r.code(),
        "ip_not_allowed",
        "the cached key is refused on the very next request"
    );
    assert_eq!(viewer(&app, OFFICE, &key).await.status, StatusCode::OK);

    // A key's own list narrows the organization's: both apply.
    let own = restricted_key(&app, json!(["203.0.113.0/24"])).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        viewer(&app, ELSEWHERE, &own).await.code(),
        "ip_not_allowed",
        "outside the org's list"
    );
    assert_eq!(
        viewer(&app, OFFICE, &own).await.code(),
        "ip_not_allowed",
        "outside its own list"
    );

    // The session still works from anywhere, so an admin can lift a list that locks
    // every key out; the change is audited.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &session,
            Some(json!({"allowed_networks": []})),
        )
        .await;
    assert_eq!(r.body["allowed_networks"], json!([]));
    assert_eq!(viewer(&app, "127.0.0.1", &key).await.status, StatusCode::OK);
    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=org.settings_changed",
            &session,
            None,
        )
        .await;
    assert!(audit.text.contains("198.51.100.0/24"), "{}", audit.text);
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/orgs/default",
            &session,
            Some(json!({"allowed_networks": ["nowhere"]})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_value"));
}

#[tokio::test]
async fn a_restricted_key_makes_and_rotates_no_key_wider_than_itself() {
    let app = TestApp::sqlite().await;
    let r = restricted_key(&app, json!(["198.51.100.0/24"])).await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let create = |networks: Option<Value>| {
        let mut body = json!({"name": "child"});
        if let Some(n) = networks {
            body["allowed_networks"] = n;
        }
        body
    };
    let r = from(&app, OFFICE, Method::POST, KEYS, &key, &[], Some(create(None))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["allowed_networks"], json!(["198.51.100.0/24"]), "inherited");
    let r = from(
        &app,
        OFFICE,
        Method::POST,
        KEYS,
        &key,
        &[],
        Some(create(Some(json!(["198.51.100.8/29"])))),
    )
    .await;
    assert_eq!(
        r.body["allowed_networks"],
        json!(["198.51.100.8/29"]),
        "narrower is fine"
    );
    let r = from(
        &app,
        OFFICE,
        Method::POST,
        KEYS,
        &key,
        &[],
        Some(create(Some(json!(["0.0.0.0/0"])))),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
    assert!(r.text.contains("networks within its own"), "{}", r.text);

    let session = app.admin().await;
    let (_, open_id) = app.create_key(&session, "unrestricted").await;
    let r = from(
        &app,
        OFFICE,
        Method::POST,
        &format!("{KEYS}/{open_id}/rotate"),
        &key,
        &[],
        Some(json!({})),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_forwarded_address_and_a_forged_one_is_not() {
    let app = TestApp::sqlite_with(Settings {
        trusted_proxies: TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Settings::default()
    })
    .await;
    let key = restricted_key(&app, json!(["198.51.100.0/24"])).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Through the proxy (127.0.0.1, trusted): the client it names.
    assert_eq!(
        forward(&app, "127.0.0.1", &key, Some(OFFICE)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        forward(&app, "127.0.0.1", &key, Some(ELSEWHERE)).await.code(),
        "ip_not_allowed"
    );
    // A client that claims an address of its own, through the proxy: the proxy appends
    // the real one, which is what counts.
    let chain = format!("{OFFICE}, {ELSEWHERE}");
    assert_eq!(
        forward(&app, "127.0.0.1", &key, Some(&chain)).await.code(),
        "ip_not_allowed"
    );
    // Straight from an untrusted address, a forged header is ignored.
    assert_eq!(
        forward(&app, ELSEWHERE, &key, Some(OFFICE)).await.code(),
        "ip_not_allowed"
    );
    assert_eq!(viewer(&app, ELSEWHERE, &key).await.code(), "ip_not_allowed");
}

#[tokio::test]
async fn a_service_accounts_allowlist_applies_to_every_key_of_the_account() {
    let app = TestApp::sqlite().await;
    let session = app.admin().await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &session,
            Some(json!({"name": "cluster-bot", "allowed_networks": ["198.51.100.0/24"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["allowed_networks"], json!(["198.51.100.0/24"]));
    let listed = app
        .request(Method::GET, "/api/v1/orgs/default/service-accounts", &session, None)
        .await;
    assert_eq!(listed.body["items"][0]["allowed_networks"], json!(["198.51.100.0/24"]));
    let mut keys = Vec::new();
    for name in ["one", "two"] {
        let r = app
            .request(
                Method::POST,
                KEYS,
                &session,
                Some(json!({"name": name, "owner": "cluster-bot"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            r.body["allowed_networks"],
            json!([]),
            "no list of its own; the account's applies"
        );
        keys.push(r.body["key"].as_str().unwrap().to_owned());
    }
    for key in &keys {
        assert_eq!(viewer(&app, OFFICE, key).await.status, StatusCode::OK);
        assert_eq!(viewer(&app, ELSEWHERE, key).await.code(), "ip_not_allowed");
        assert_eq!(forward(&app, ELSEWHERE, key, None).await.code(), "ip_not_allowed");
    }
    // The admin's own keys are not the account's: unaffected.
    let (own, _) = app.create_key(&session, "mine").await;
    assert_eq!(viewer(&app, ELSEWHERE, &own).await.status, StatusCode::OK);
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &session,
            Some(json!({"name": "bad-bot", "allowed_networks": ["10.0.0.0/99"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_value"),
        "{}",
        r.text
    );
}

/// A service account's list changes after it was made, with its keys following at
/// once (warm in the cache); only those who manage it may change it, and the change is
/// audited.
#[tokio::test]
async fn a_service_accounts_allowlist_changes_at_once_for_its_keys() {
    let app = TestApp::sqlite().await;
    let session = app.admin().await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/service-accounts",
            &session,
            Some(json!({"name": "etl-bot"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .request(
            Method::POST,
            KEYS,
            &session,
            Some(json!({"name": "etl", "owner": "etl-bot"})),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        viewer(&app, ELSEWHERE, &key).await.status,
        StatusCode::OK,
        "anywhere, and now cached"
    );

    let path = "/api/v1/orgs/default/service-accounts/etl-bot";
    let r = app
        .request(
            Method::PATCH,
            path,
            &session,
            Some(json!({"allowed_networks": ["198.51.100.0/24"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["allowed_networks"], json!(["198.51.100.0/24"]));
    assert_eq!(viewer(&app, ELSEWHERE, &key).await.code(), "ip_not_allowed", "at once");
    assert_eq!(viewer(&app, OFFICE, &key).await.status, StatusCode::OK);

    let r = app
        .request(Method::PATCH, path, &session, Some(json!({"allowed_networks": []})))
        .await;
    assert_eq!(r.body["allowed_networks"], json!([]), "{}", r.text);
    assert_eq!(
        viewer(&app, ELSEWHERE, &key).await.status,
        StatusCode::OK,
        "lifted at once"
    );

    let r = app
        .request(
            Method::PATCH,
            path,
            &session,
            Some(json!({"allowed_networks": ["10.0.0.0/99"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_value"),
        "{}",
        r.text
    );
    app.add_user("dev").await;
    let dev = Auth::Session(app.sign_in("dev", common::USER_PASSWORD).await);
    let r = app
        .request(
            Method::PATCH,
            path,
            &dev,
            Some(json!({"allowed_networks": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a member does not manage it: {}",
        r.text
    );
    let audit = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=service_account.networks_changed",
            &session,
            None,
        )
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", audit.text);
    assert_eq!(items[1]["detail"]["allowed_networks"], "198.51.100.0/24");
    assert_eq!(items[0]["detail"]["allowed_networks"], Value::Null);
}

/// Writes the refusals noted so far (the server does it every second) and lists the
/// audit entries for them, newest first.
async fn audited_refusals(app: &TestApp) -> Vec<Value> {
    keysmith_app::verification::audit_refused_addresses(&app.state.app)
        .await
        .unwrap();
    let session = app.admin().await;
    let r = app
        .request(
            Method::GET,
            "/api/v1/orgs/default/audit?action=api_key.ip_not_allowed",
            &session,
            None,
        )
        .await;
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_key_refused_for_its_address_is_audited_at_most_once_a_minute() {
    let app = TestApp::sqlite().await;
    let key = restricted_key(&app, json!(["198.51.100.0/24"])).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        assert_eq!(viewer(&app, ELSEWHERE, &key).await.code(), "ip_not_allowed");
        assert_eq!(forward(&app, "2001:db8::9", &key, None).await.code(), "ip_not_allowed");
    }
    let entries = audited_refusals(&app).await;
    assert_eq!(entries.len(), 1, "ten refusals within a minute: one entry: {entries:?}");
    assert_eq!(entries[0]["detail"]["address"], ELSEWHERE, "{entries:?}");
    assert_eq!(entries[0]["source_address"], ELSEWHERE);
    assert!(
        entries[0]["target"].as_str().unwrap().starts_with("wandb_v1_"),
        "{entries:?}"
    );
    app.clock.advance_ms(61_000);
    assert_eq!(forward(&app, "2001:db8::9", &key, None).await.code(), "ip_not_allowed");
    let entries = audited_refusals(&app).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["detail"]["address"], "2001:db8::9");
    assert_eq!(audited_refusals(&app).await.len(), 2, "each refusal is written once");
}
