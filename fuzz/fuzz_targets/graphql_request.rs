//! Arbitrary bodies to `POST /graphql`, through the real router, with the admin's key.
//!
//! Properties: no answer is a 5xx (wandb-core retries those for ten seconds); every
//! answer is JSON; an answer with GraphQL errors has a non-empty `errors` list whose
//! entries carry a `message` and none is an `INTERNAL_SERVER_ERROR`, and one without
//! has `data`; other errors use the API's shape; and since the key is valid, no answer
//! is a 401 and no error is W&B's "not logged in".

#![no_main]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use keysmith_fuzz::{Harness, assert_api_reply};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::Mutex;

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let harness = guard.get_or_insert_with(Harness::new);
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", harness.app.auth_key))
        .header(header::USER_AGENT, "W&B Internal Client 0.22.3")
        .body(Body::from(data.to_vec()))
        .expect("a valid request");
    let reply = harness.send(request);

    assert!(
        !reply.status.is_server_error(),
        "answered {} {}",
        reply.status,
        reply.text()
    );
    assert_ne!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the admin's key was refused: {}",
        reply.text()
    );
    let body = reply
        .json()
        .unwrap_or_else(|| panic!("a {} whose body is not JSON: {:?}", reply.status, reply.text()));
    if body.get("error").is_some() {
        // Refused before GraphQL ran (by the API's own error path).
        assert_api_reply(&reply, "POST /graphql");
    } else {
        check_graphql_response(&body, reply.status);
    }
    harness.check_fixtures();
});

fn check_graphql_response(body: &Value, status: StatusCode) {
    match body.get("errors") {
        Some(Value::Array(errors)) => {
            assert!(!errors.is_empty(), "an empty `errors` list: {body}");
            for error in errors {
                let message = error["message"]
                    .as_str()
                    .unwrap_or_else(|| panic!("an error without a message: {body}"));
                assert_ne!(message, "user is not logged in", "the admin's key was not used: {body}");
                // A resolver's internal failure is answered inside a 200: the 5xx of GraphQL.
                assert_ne!(
                    error["extensions"]["code"], "INTERNAL_SERVER_ERROR",
                    "an internal error: {body}"
                );
            }
        }
        Some(other) => panic!("`errors` is not a list: {other}"),
        None => {
            assert_eq!(status, StatusCode::OK, "a {status} without errors: {body}");
            assert!(body.get("data").is_some(), "neither data nor errors: {body}");
        }
    }
}
