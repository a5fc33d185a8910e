//! Finding the key in request headers: `presented_key` and `parse_authorization`.
//!
//! Input: byte 0 picks the case, the rest is header bytes (or text).
//!   0  `Authorization: <rest>`
//!   1  `X-API-Key: <rest>`
//!   2  both, split at the first `\n`: `Authorization` must win
//!   3  `<rest>` as a key inside `Bearer` and `Basic api:` headers
//!
//! Properties: never panics; a header present is never "no credentials"; an error is
//! always `malformed_authorization` or `invalid_api_key` (variants that carry no input
//! text) and neither its `Display` nor its `Debug` contains the presented secret; a
//! key found is non-empty and is exactly what was sent (the Bearer token trimmed, the
//! Basic password, the trimmed `X-API-Key`); and `presented_key` agrees with
//! `parse_authorization` on the same text.

#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use keysmith_server::ApiError;
use keysmith_server::auth::credentials::{Presented, X_API_KEY, parse_authorization, presented_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    match case % 4 {
        0 => authorization_only(rest),
        1 => x_api_key_only(rest),
        2 => both(rest),
        _ => round_trip(&String::from_utf8_lossy(rest)),
    }
    // Whatever the case, the parser takes the same bytes as text.
    let text = String::from_utf8_lossy(rest);
    let parsed = parse_authorization(&text);
    check_outcome(&parsed, &text);
});

fn authorization_only(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    let found = presented_key(&headers);
    let sent = String::from_utf8_lossy(value.as_bytes());
    match &found {
        Ok(Some(key)) => assert!(!key.expose().is_empty(), "an empty key from {sent:?}"),
        Ok(None) => panic!("Authorization {sent:?} read as no credentials"),
        Err(e) => check_error(e, &sent),
    }
    match value.to_str() {
        Ok(text) => assert!(same(&found, &parse_authorization(text).map(Some)), "{text:?}"),
        Err(_) => assert!(matches!(found, Err(ApiError::MalformedAuthorization(_)))),
    }
}

fn x_api_key_only(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(X_API_KEY, value.clone());
    let found = presented_key(&headers);
    match value.to_str() {
        Ok(text) => match &found {
            Ok(Some(key)) => assert_eq!(key.expose(), text.trim()),
            other => panic!("X-API-Key {text:?} gave {other:?}"),
        },
        Err(_) => assert!(matches!(found, Err(ApiError::MalformedAuthorization(_)))),
    }
    if let Err(e) = &found {
        check_error(e, &String::from_utf8_lossy(value.as_bytes()));
    }
}

fn both(rest: &[u8]) {
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (authorization, x_api_key) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));
    let (Ok(authorization), Ok(x_api_key)) = (
        HeaderValue::from_bytes(authorization),
        HeaderValue::from_bytes(x_api_key),
    ) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(X_API_KEY, x_api_key);
    headers.insert(header::AUTHORIZATION, authorization.clone());
    let mut only_authorization = HeaderMap::new();
    only_authorization.insert(header::AUTHORIZATION, authorization);
    assert!(
        same(&presented_key(&headers), &presented_key(&only_authorization)),
        "X-API-Key changed the outcome of an Authorization header"
    );
}

/// Any key sent in a well-formed header comes back exactly.
fn round_trip(key: &str) {
    let trimmed = key.trim();
    if !trimmed.is_empty() {
        for header in [format!("Bearer {key}"), format!("bEaReR  {trimmed}  ")] {
            let found = parse_authorization(&header).unwrap_or_else(|e| panic!("{header:?} refused: {e}"));
            assert_eq!(found.expose(), trimmed, "from {header:?}");
        }
    }
    // The bound on Basic credentials leaves room for every key and a user name.
    if !key.is_empty() && key.len() <= 300 {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
        );
        let found = parse_authorization(&header).unwrap_or_else(|e| panic!("Basic api:{key:?} refused: {e}"));
        assert_eq!(found.expose(), key);
    }
}

/// The checks on any outcome of parsing `sent`.
fn check_outcome(outcome: &Result<Presented<'_>, ApiError>, sent: &str) {
    match outcome {
        Ok(key) => {
            assert!(!key.expose().is_empty(), "an empty key from {sent:?}");
            let shown = format!("{key:?}");
            assert!(
                key.expose().len() < 16 || !shown.contains(key.expose()),
                "Debug shows the key: {shown}"
            );
        }
        Err(e) => check_error(e, sent),
    }
}

fn check_error(e: &ApiError, sent: &str) {
    assert!(
        matches!(e, ApiError::MalformedAuthorization(_) | ApiError::InvalidApiKey),
        "unexpected error {e:?} for {sent:?}"
    );
    // Every token of the header long and distinctive enough that finding it in a
    // message cannot be chance: no message has 16 characters without a space.
    let shown = format!("{e} {e:?}");
    for token in sent.split_whitespace().filter(|t| t.chars().count() >= 16) {
        assert!(!shown.contains(token), "the error {shown:?} repeats {token:?}");
    }
}

/// The same outcome: the same key, or errors with the same code.
fn same(a: &Result<Option<Presented<'_>>, ApiError>, b: &Result<Option<Presented<'_>>, ApiError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.as_ref().map(Presented::expose) == b.as_ref().map(Presented::expose),
        (Err(a), Err(b)) => a.code() == b.code() && a.to_string() == b.to_string(),
        _ => false,
    }
}
