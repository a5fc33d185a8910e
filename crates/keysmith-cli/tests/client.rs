//! The typed client library against the real server binary: every call, and the
//! server's error codes surfacing as `ClientError::Api { code, .. }`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::start_with_admin_key;
use keysmith_client::{Client, ClientError, CreateKey, KeyQuery};
use keysmith_core::SecretString;

const PASSWORD: &str = "client-test-admin-password";

#[tokio::test]
async fn the_client_drives_the_key_lifecycle_and_keeps_error_codes() {
    let started = start_with_admin_key("client", PASSWORD);
    let server = &started.server;
    let client = Client::new(&server.url, SecretString::new(started.key.clone())).unwrap();

    assert_eq!(client.viewer().await.unwrap().username, "admin");
    let created = client
        .create_key(&CreateKey {
            name: "made by client".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.key.expose().len(), 86);
    assert!(
        !format!("{created:?}").contains(&created.key.expose()[37..]),
        "Debug never shows the key"
    );
    let page = client
        .list_keys(&KeyQuery {
            name_contains: Some("client".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let renamed = client.rename_key(&created.key_id, "renamed").await.unwrap();
    assert_eq!(renamed.name, "renamed");
    client.delete_key(&created.key_id).await.unwrap();
    match client.delete_key(&created.key_id).await {
        Err(ClientError::Api { status, code, .. }) => assert_eq!((status, code.as_str()), (404, "api_key_not_found")),
        other => panic!("{other:?}"),
    }
    let bad = Client::new(
        &server.url,
        SecretString::new("0123456789abcdef0123456789abcdef01234567".into()),
    )
    .unwrap();
    assert_eq!(bad.viewer().await.unwrap_err().code(), Some("invalid_api_key"));
    let orgs = client.list_orgs().await.unwrap();
    assert_eq!(orgs[0].name, "default");
    let gone = Client::new("http://127.0.0.1:9", SecretString::new("x".into())).unwrap();
    assert!(matches!(gone.viewer().await, Err(ClientError::Unreachable { .. })));
}
