//! The served OpenAPI document stays in sync with the routes and with the committed
//! `docs/openapi.json`. To accept a deliberate change, run
//! `KEYSMITH_UPDATE_OPENAPI=1 cargo nextest run -p keysmith-server --test openapi`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Auth, TestApp};
use serde_json::Value;
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_matches_the_committed_one() {
    let app = TestApp::sqlite().await;
    let r = app
        .request(Method::GET, "/api/v1/openapi.json", &Auth::None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let served = serde_json::to_string_pretty(&r.body).unwrap() + "\n";
    let generated = serde_json::to_value(keysmith_server::openapi_document()).unwrap();
    assert!(
        r.body == generated,
        "the served document differs from the generated one"
    );
    if std::env::var_os("KEYSMITH_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &served).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is out of date; regenerate it with KEYSMITH_UPDATE_OPENAPI=1 cargo nextest run -p keysmith-server --test openapi"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::sqlite().await;
    let document: Value = serde_json::to_value(keysmith_server::openapi_document()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 5, "{paths:?}");
    let mut checked = 0;
    for (path, operations) in paths {
        let concrete = concrete_path(path);
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let r = app.request(method.clone(), &concrete, &Auth::None, None).await;
            assert_ne!(
                r.code(),
                "route_not_found",
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                r.code(),
                "method_not_allowed",
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations documented");
}

/// The path with every `{parameter}` replaced by a plausible value.
fn concrete_path(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        out.push_str(if name == "key_id" {
            "wandb_v1_000000000000000000000000000"
        } else {
            "sample"
        });
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_documented_operation_documents_its_errors_with_the_shared_shape() {
    let document: Value = serde_json::to_value(keysmith_server::openapi_document()).unwrap();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    // The JWT bearer grant answers in OAuth's error shape (RFC 6749 §5.2),
                    // which the wandb SDK and every OAuth client read; nothing else may.
                    let shape = if path == "/oidc/token" {
                        "OAuthError"
                    } else {
                        "ErrorBody"
                    };
                    assert_eq!(
                        schema,
                        &format!("#/components/schemas/{shape}"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
