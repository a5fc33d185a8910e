//! A Keysmith application for tests: the real router on a real store (SQLite in a
//! temporary directory, or a throwaway PostgreSQL database), driven without a socket
//! but through the same per-connection service the server runs, with a clock the test
//! moves by hand.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use keysmith_core::GeneratedKey;
use keysmith_core::SecretString;
use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_server::auth::password::hash_password;
use keysmith_server::connection::Connection;
use keysmith_server::{AppState, Connections, ManualClock, Settings};
use keysmith_store::{KeyFormat, NewKey, NewUser, Org, SqliteStore, Store, UserId};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const USER_PASSWORD: &str = "user-password-for-tests";
pub const START_MS: i64 = 1_764_183_600_000;

/// The peer address of requests that do not name one.
pub const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

pub struct TestApp {
    pub router: Router,
    pub connections: Connections,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub org: Org,
    _dir: Option<tempfile::TempDir>,
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic(String),
    Bearer(String),
    XApiKey(String),
    Session(Session),
    Raw(String),
}

#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("keysmith.db")).await.unwrap();
        Self::with_store(Arc::new(store), Some(dir)).await
    }

    pub async fn with_store(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Self {
        Self::with(store, dir, Settings::default()).await
    }

    /// SQLite with these settings.
    pub async fn sqlite_with(settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("keysmith.db")).await.unwrap();
        Self::with(Arc::new(store), Some(dir), settings).await
    }

    pub async fn with(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>, settings: Settings) -> Self {
        let clock = ManualClock::new(START_MS);
        let admin_hash = hash_password(&SecretString::new(ADMIN_PASSWORD.into())).unwrap();
        let admin = NewUser {
            kind: PrincipalKind::User,
            username: "admin".into(),
            email: Some("admin@example.com".into()),
            password_hash: Some(admin_hash),
        };
        let (org, _) = store.bootstrap("default", admin, START_MS).await.unwrap().unwrap();
        let state = AppState::new(store.clone(), Arc::new(clock.clone()), settings);
        let router = keysmith_server::router(state.clone());
        let connections = Connections::new(state.clone());
        Self {
            router,
            connections,
            state,
            store,
            clock,
            org,
            _dir: dir,
        }
    }

    /// Another replica on a database `with_store` already set up for `org`.
    pub async fn joining(store: Arc<dyn Store>, org: Org) -> Self {
        let clock = ManualClock::new(START_MS);
        let state = AppState::new(store.clone(), Arc::new(clock.clone()), Settings::default());
        let router = keysmith_server::router(state.clone());
        let connections = Connections::new(state.clone());
        Self {
            router,
            connections,
            state,
            store,
            clock,
            org,
            _dir: None,
        }
    }

    /// A member of the default org with the test password.
    pub async fn add_user(&self, username: &str) -> UserId {
        let hash = hash_password(&SecretString::new(USER_PASSWORD.into())).unwrap();
        let user = self
            .store
            .create_user(
                NewUser {
                    kind: PrincipalKind::User,
                    username: username.into(),
                    email: Some(format!("{username}@example.com")),
                    password_hash: Some(hash),
                },
                START_MS,
            )
            .await
            .unwrap();
        self.store
            .add_org_member(self.org.id, user.id, OrgRole::Member, START_MS, &[])
            .await
            .unwrap();
        user.id
    }

    pub async fn request(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        builder = match auth {
            Auth::None => builder,
            Auth::Basic(key) => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
                builder.header(header::AUTHORIZATION, format!("Basic {encoded}"))
            }
            Auth::Bearer(key) => builder.header(header::AUTHORIZATION, format!("Bearer {key}")),
            Auth::XApiKey(key) => builder.header("x-api-key", key),
            Auth::Session(s) => builder
                .header(header::COOKIE, &s.cookie)
                .header("x-csrf-token", &s.csrf),
            Auth::Raw(value) => builder.header(header::AUTHORIZATION, value),
        };
        let request = match body {
            Some(v) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        self.send(request).await
    }

    /// Stores `key` (from `keysmith_core::generate_v1` or `generate_legacy`) for
    /// `username`, as an import of keys made elsewhere would.
    pub async fn import_key(&self, key: &GeneratedKey, username: &str) {
        let owner = self.store.find_user_by_username(username).await.unwrap().unwrap();
        let format = if key.key_id.is_legacy_handle() {
            KeyFormat::Legacy
        } else {
            KeyFormat::V1
        };
        let key = NewKey {
            key_id: key.key_id.clone(),
            digest: key.digest,
            format,
            display: key.display.clone(),
            name: "imported".into(),
            owner: owner.id,
            created_by: None,
            created_at: START_MS,
            expires_at: None,
            rotated_from: None,
            federated_issuer: None,
            scope: keysmith_core::KeyScope::Admin,
            allowed_networks: None,
            requests_per_minute: None,
        };
        self.store.insert_key(key, &[]).await.unwrap();
    }

    /// The service the server runs for a connection from `peer`.
    pub fn connection(&self, peer: SocketAddr) -> Connection {
        self.connections.connection(peer)
    }

    /// Sends `request` on a connection from the peer its `ConnectInfo` names, or
    /// [`PEER`].
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(PEER, |info| info.0);
        let response = self.connection(peer).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// The API's answer to signing in, whatever it is.
    pub async fn try_sign_in(&self, username: &str, password: &str) -> Reply {
        self.request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    pub async fn sign_in(&self, username: &str, password: &str) -> Session {
        let reply = self.try_sign_in(username, password).await;
        assert_eq!(reply.status, StatusCode::OK, "sign-in failed: {}", reply.text);
        let set_cookie = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Session {
            cookie,
            csrf: reply.body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn admin(&self) -> Auth {
        Auth::Session(self.sign_in("admin", ADMIN_PASSWORD).await)
    }

    /// Creates a key and returns (full key, key ID).
    pub async fn create_key(&self, auth: &Auth, name: &str) -> (String, String) {
        let reply = self
            .request(Method::POST, "/api/v1/api-keys", auth, Some(json!({"name": name})))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        (
            reply.body["key"].as_str().unwrap().to_owned(),
            reply.body["key_id"].as_str().unwrap().to_owned(),
        )
    }
}

/// `POST /graphql` as wandb 0.31 sends it: the key as Basic `api:KEY`.
pub async fn gql(app: &TestApp, key: &str, query: &str, variables: Value) -> Reply {
    use base64::Engine;
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

// ------------------------------------------------------------ web pages, as a browser

pub fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().copied())
        .finish()
}

pub async fn get(app: &TestApp, session: Option<&Session>, path: &str) -> Reply {
    let mut r = Request::builder().method(Method::GET).uri(path);
    if let Some(s) = session {
        r = r.header(header::COOKIE, &s.cookie);
    }
    app.send(r.body(Body::empty()).unwrap()).await
}

/// A form POST as a browser sends it: the cookie, never the CSRF header.
pub async fn post(app: &TestApp, session: Option<&Session>, path: &str, fields: &[(&str, &str)]) -> Reply {
    let mut r = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(s) = session {
        r = r.header(header::COOKIE, &s.cookie);
    }
    app.send(r.body(Body::from(form_body(fields))).unwrap()).await
}

pub fn location(r: &Reply) -> &str {
    r.headers
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {} {}", r.status, r.text))
        .to_str()
        .unwrap()
}

/// Creates a key through the web form and returns (the page's key, key ID, the page).
pub async fn create_in_browser(app: &TestApp, s: &Session, name: &str, owner: Option<&str>) -> (String, String, Reply) {
    let mut fields = vec![("csrf", s.csrf.as_str()), ("name", name), ("back", "/settings")];
    if let Some(owner) = owner {
        fields.push(("owner", owner));
    }
    let r = post(app, Some(s), "/keys/new", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to = location(&r).to_owned();
    assert!(to.starts_with("/keys/") && to.contains("/created"), "{to}");
    let key_id = to.trim_start_matches("/keys/").split('/').next().unwrap().to_owned();
    let page = get(app, Some(s), &to).await;
    assert_eq!(page.status, StatusCode::OK);
    let start = page.text.find("value=\"wandb_v1_").expect("the key is on the page") + 7;
    let key = page.text[start..start + 86].to_owned();
    assert!(!to.contains(&key), "the key never travels in a URL");
    (key, key_id, page)
}
