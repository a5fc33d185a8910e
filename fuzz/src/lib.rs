//! The in-process server the `graphql_request` and `json_bodies` targets drive: the real
//! router on a SQLite store in a temporary directory, an admin with two API keys, a
//! member and a team, built once per fuzzing process.
//!
//! State persists between inputs (keys and users the inputs create stay), which is
//! closer to a live server. An input may also disable what the next inputs rely on
//! (rotate the target key, deactivate the member), so after every input
//! [`Harness::check_fixtures`] puts them back, or rebuilds the app on a fresh database
//! when it cannot; neither is a failure.
//!
//! Nothing here opens a socket: webhook delivery and the other background work run only
//! in `keysmith_server::run`, so inputs that register webhook URLs send nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use keysmith_core::SecretString;
use keysmith_core::role::PrincipalKind;
use keysmith_server::auth::password::hash_password;
use keysmith_server::{AppState, ManualClock, Settings};
use keysmith_store::{NewUser, SqliteStore, Store};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

pub const ORG: &str = "default";
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "fuzz-admin-password";
pub const MEMBER: &str = "fuzzmember";
pub const TEAM: &str = "fuzzteam";
/// 2025-11-26T19:00:00Z; the clock never moves, so expiries and rate limits are fixed.
pub const START_MS: i64 = 1_764_183_600_000;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

pub struct App {
    pub router: Router,
    /// The admin's key every authenticated input is sent with.
    pub auth_key: String,
    /// Another of the admin's keys, the one paths like `/api-keys/{key_id}` name, so
    /// that an input rotating or renaming it leaves `auth_key` working.
    pub target_key_id: String,
    _dir: tempfile::TempDir,
}

pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub app: App,
    pub rebuilds: u64,
}

/// An argon2 hash of [`ADMIN_PASSWORD`], computed once: each costs tens of milliseconds.
fn admin_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&SecretString::new(ADMIN_PASSWORD.into())).unwrap())
}

impl Harness {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(App::build());
        Self {
            runtime,
            app,
            rebuilds: 0,
        }
    }

    /// Sends one input's request. With `KEYSMITH_FUZZ_TRACE` set, prints what it got,
    /// to see which inputs reach a handler when running a target on a corpus.
    pub fn send(&self, request: Request<Body>) -> Reply {
        let line = format!("{} {}", request.method(), request.uri());
        let reply = self.runtime.block_on(self.app.send(request));
        if std::env::var_os("KEYSMITH_FUZZ_TRACE").is_some() {
            let text = reply.text();
            eprintln!(
                "{line} -> {} {}",
                reply.status,
                text.chars().take(300).collect::<String>()
            );
        }
        reply
    }

    /// Repairs or rebuilds the app if the last input removed or disabled a fixture.
    pub fn check_fixtures(&mut self) {
        if !self.runtime.block_on(self.app.repair()) {
            self.app = self.runtime.block_on(App::build());
            self.rebuilds += 1;
            eprintln!("keysmith-fuzz: fixtures lost, app rebuilt ({} so far)", self.rebuilds);
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    async fn build() -> Self {
        let dir = tempfile::Builder::new().prefix("keysmith-fuzz-").tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("keysmith.db")).await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let admin = NewUser {
            kind: PrincipalKind::User,
            username: ADMIN.into(),
            email: Some("admin@example.com".into()),
            password_hash: Some(admin_hash().to_owned()),
        };
        store.bootstrap(ORG, admin, START_MS).await.unwrap().unwrap();
        let clock = ManualClock::new(START_MS);
        // The clock stands still and every input comes from one address: with the limit
        // on exposed-key reports, revoke-exposed would answer 429 to all but 30 inputs.
        let settings = Settings {
            exposure_reports_per_minute: 0,
            ..Settings::default()
        };
        let state = AppState::new(store, Arc::new(clock), settings);
        let mut app = Self {
            router: keysmith_server::router(state),
            auth_key: String::new(),
            target_key_id: String::new(),
            _dir: dir,
        };

        let signed_in = app
            .call(
                Method::POST,
                "/api/v1/session",
                false,
                Some(json!({"username": ADMIN, "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
        let cookie = signed_in.headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let csrf = signed_in.json().unwrap()["csrf_token"].as_str().unwrap().to_owned();
        let create_key = |name: &'static str| {
            let request = Request::post("/api/v1/api-keys")
                .header(header::COOKIE, &cookie)
                .header("x-csrf-token", &csrf)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"name": name}).to_string()))
                .unwrap();
            let app = &app;
            async move {
                let reply = app.send(request).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
                let body = reply.json().unwrap();
                (
                    body["key"].as_str().unwrap().to_owned(),
                    body["key_id"].as_str().unwrap().to_owned(),
                )
            }
        };
        let (auth_key, _) = create_key("fuzz-auth").await;
        let (_, target_key_id) = create_key("fuzz-target").await;
        app.auth_key = auth_key;
        app.target_key_id = target_key_id;

        let member = app
            .call(
                Method::POST,
                &format!("/api/v1/orgs/{ORG}/users"),
                true,
                Some(json!({"username": MEMBER, "email": "member@example.com"})),
            )
            .await;
        assert_eq!(member.status, StatusCode::CREATED, "{}", member.text());
        let team = app
            .call(
                Method::POST,
                &format!("/api/v1/orgs/{ORG}/teams"),
                true,
                Some(json!({"name": TEAM})),
            )
            .await;
        assert_eq!(team.status, StatusCode::CREATED, "{}", team.text());
        assert!(app.repair().await, "the fixtures are not usable right after setup");
        app
    }

    /// A request with the admin's key or no credentials, and a JSON body or none.
    async fn call(&self, method: Method, path: &str, with_key: bool, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if with_key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", self.auth_key));
        }
        let request = match body {
            Some(v) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        self.send(request).await
    }

    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, bytes }
    }

    /// Puts back what the last input disabled, if it can be put back cheaply: a new
    /// target key for one rotated, expired or deleted, the member reactivated. `false`
    /// when the app must be rebuilt (the admin key no longer works, say).
    async fn repair(&mut self) -> bool {
        let viewer = self.call(Method::GET, "/api/v1/viewer", true, None).await;
        if viewer.status != StatusCode::OK {
            return false;
        }
        let target = self
            .call(
                Method::GET,
                &format!("/api/v1/api-keys/{}", self.target_key_id),
                true,
                None,
            )
            .await;
        let target_ok = target.status == StatusCode::OK
            && target
                .json()
                .is_some_and(|k| k["rotated_to"].is_null() && k["status"] == "active");
        if !target_ok {
            let replaced = self
                .call(
                    Method::POST,
                    "/api/v1/api-keys",
                    true,
                    Some(json!({"name": "fuzz-target"})),
                )
                .await;
            let Some(key_id) = replaced.json().and_then(|b| b["key_id"].as_str().map(str::to_owned)) else {
                return false;
            };
            self.target_key_id = key_id;
        }
        let users = self
            .call(Method::GET, &format!("/api/v1/orgs/{ORG}/users"), true, None)
            .await;
        let member = users.json().and_then(|body| {
            body["items"]
                .as_array()
                .and_then(|users| users.iter().find(|u| u["username"] == MEMBER).cloned())
        });
        match member {
            None => return false,
            Some(m) if m["active"] != true => {
                let reactivated = self
                    .call(
                        Method::PATCH,
                        &format!("/api/v1/orgs/{ORG}/users/{MEMBER}"),
                        true,
                        Some(json!({"active": true})),
                    )
                    .await;
                if reactivated.status != StatusCode::OK {
                    return false;
                }
            }
            Some(_) => {}
        }
        let team = self
            .call(Method::GET, &format!("/api/v1/orgs/{ORG}/teams/{TEAM}"), true, None)
            .await;
        team.status == StatusCode::OK
    }
}

/// The checks every response must pass, whatever the input: never a 5xx, and an error
/// in the API's one shape, `{"error": {"code": "snake_case", "message": "…"}}`.
pub fn assert_api_reply(reply: &Reply, context: &str) {
    assert!(
        !reply.status.is_server_error(),
        "{context}: answered {} {}",
        reply.status,
        reply.text()
    );
    if reply.status.is_client_error() {
        let body = reply.json().unwrap_or_else(|| {
            panic!(
                "{context}: a {} whose body is not JSON: {:?}",
                reply.status,
                reply.text()
            )
        });
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{context}: a {} without error.code: {body}", reply.status));
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{context}: error code {code:?} is not snake_case"
        );
        assert!(
            body["error"]["message"].is_string(),
            "{context}: a {} without error.message: {body}",
            reply.status
        );
    }
}
