//! Arbitrary bodies to the routes that take JSON, through the real router.
//!
//! Input: byte 0 picks the route (low bits) and whether the admin's key is sent (high
//! bit clear) or no credentials; the rest is the body, sent as `application/json`.
//!
//! Properties: no answer is a 5xx; every 4xx is `{"error": {"code", "message"}}` with a
//! snake_case code; a 2xx body, if any, is JSON; the admin's key is never refused; and
//! a password, key or token in the body is never quoted back in an error.

#![no_main]

use axum::body::Body;
use axum::http::{Method, Request, header};
use keysmith_fuzz::{Harness, MEMBER, ORG, TEAM, assert_api_reply};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

/// The routes that take a JSON body, with the target key, member and team of the
/// harness in their paths.
fn routes(target: &str) -> [(Method, String); 15] {
    [
        (Method::POST, "/api/v1/api-keys".into()),
        (Method::PATCH, format!("/api/v1/api-keys/{target}")),
        (Method::POST, format!("/api/v1/api-keys/{target}/rotate")),
        (Method::POST, "/api/v1/api-keys/revoke-exposed".into()),
        (Method::POST, "/api/v1/api-keys/bulk-delete".into()),
        (Method::PATCH, format!("/api/v1/orgs/{ORG}")),
        (Method::POST, format!("/api/v1/orgs/{ORG}/users")),
        (Method::PATCH, format!("/api/v1/orgs/{ORG}/users/{MEMBER}")),
        (Method::POST, "/api/v1/invites/accept".into()),
        (Method::POST, format!("/api/v1/orgs/{ORG}/teams")),
        (Method::PUT, format!("/api/v1/orgs/{ORG}/teams/{TEAM}/members/{MEMBER}")),
        (Method::POST, format!("/api/v1/orgs/{ORG}/service-accounts")),
        (Method::POST, format!("/api/v1/orgs/{ORG}/webhooks")),
        (Method::POST, "/api/v1/secret-scanning/github".into()),
        (Method::POST, "/api/v1/session".into()),
    ]
}

/// The codes that would mean the admin's key was refused.
const KEY_REFUSED: &[&str] = &[
    "unauthenticated",
    "invalid_api_key",
    "api_key_expired",
    "malformed_authorization",
];

/// Keys of the body whose string values are secrets a client sent.
const SECRET_FIELDS: &[&str] = &["password", "key", "token"];

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let authenticated = selector & 0x80 == 0;

    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let harness = guard.get_or_insert_with(Harness::new);
    let routes = routes(&harness.app.target_key_id);
    let (method, path) = &routes[usize::from(selector & 0x7f) % routes.len()];

    let mut request = Request::builder()
        .method(method.clone())
        .uri(path.as_str())
        .header(header::CONTENT_TYPE, "application/json");
    if authenticated {
        request = request.header(header::AUTHORIZATION, format!("Bearer {}", harness.app.auth_key));
    }
    let request = request.body(Body::from(body.to_vec())).expect("a valid request");
    let reply = harness.send(request);
    let context = format!("{method} {path}");

    assert_api_reply(&reply, &context);
    if reply.status.is_success() && !reply.bytes.is_empty() {
        assert!(
            reply.json().is_some(),
            "{context}: a {} whose body is not JSON",
            reply.status
        );
    }
    if authenticated && let Some(body) = reply.json() {
        let code = body["error"]["code"].as_str().unwrap_or("");
        assert!(
            !KEY_REFUSED.contains(&code),
            "{context}: the admin's key was refused: {body}"
        );
    }
    if reply.status.is_client_error() {
        let text = reply.text();
        for secret in secrets_in(body) {
            assert!(
                !text.contains(&secret),
                "{context}: the error quotes the secret {secret:?}: {text}"
            );
        }
    }
    harness.check_fixtures();
});

/// The secret string values of a JSON object body, when they are long and distinctive
/// enough that finding one in an error cannot be chance (no whitespace, 16 or more
/// characters: no error message has such a run) and appear nowhere else in the body
/// (an error may rightly quote a user name or a field name).
fn secrets_in(body: &[u8]) -> Vec<String> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return Vec::new();
    };
    let mut others = Vec::new();
    for (name, value) in &fields {
        others.push(name.clone());
        if !SECRET_FIELDS.contains(&name.as_str()) {
            strings_in(value, &mut others);
        }
    }
    SECRET_FIELDS
        .iter()
        .filter_map(|name| fields.get(*name)?.as_str())
        .filter(|s| s.chars().count() >= 16 && !s.chars().any(char::is_whitespace))
        .filter(|s| !others.iter().any(|o| o.contains(*s)))
        .map(str::to_owned)
        .collect()
}

fn strings_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings_in(v, out);
        }),
        _ => {}
    }
}
