//! The one JSON body extractor, so malformed input gets the same error shape as
//! everything else. Serde's messages can quote the offending value (a password sent
//! as a number, say), so only messages that name fields, never values, are passed on.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// The largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse(&bytes).map(ApiJson)
    }
}

/// A body that could not be read, as the API answers it: axum's own rejection is a
/// plain-text 413 (over [`MAX_BODY_BYTES`]) or 400. For handlers that take the raw
/// body as `Result<Bytes, BytesRejection>`.
pub(crate) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(MAX_BODY_BYTES)
    } else {
        ApiError::InvalidRequest("the request body could not be read".into())
    }
}

/// The answers [`ApiJson`] itself gives, before the handler runs: list it in the
/// `responses(...)` of every operation that takes a JSON body. (Its 400s,
/// `malformed_json` and `invalid_request`, each operation documents with its own.)
pub struct JsonBodyRejections;

impl utoipa::IntoResponses for JsonBodyRejections {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let error = |description: &str| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", content)
                    .build(),
            )
        };
        BTreeMap::from([
            ("413".to_owned(), error("`payload_too_large`: the body is over 64 KiB")),
            (
                "415".to_owned(),
                error("`unsupported_media_type`: the body is not sent as `application/json`"),
            ),
        ])
    }
}

pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => ApiError::MalformedJson(format!(
                "syntax error at line {} column {}",
                inner.line(),
                inner.column()
            )),
            serde_json::error::Category::Data => {
                let text = inner.to_string();
                let message = if text.starts_with("unknown field") || text.starts_with("missing field") {
                    // "unknown field `x`, expected `name`": field names only.
                    text.split(" at line").next().unwrap_or(&text).to_owned()
                } else if path == "." || path.is_empty() {
                    "the JSON body does not have the expected shape".to_owned()
                } else {
                    format!("field `{path}` has the wrong type or value")
                };
                ApiError::InvalidRequest(message)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct SignIn {
        username: String,
        password: String,
    }

    #[test]
    fn errors_name_fields_but_never_echo_values() {
        let err = parse::<SignIn>(br#"{"username":"a","password":12345678}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        assert!(err.to_string().contains("password"));
        assert!(!err.to_string().contains("12345678"), "{err}");
        let err = parse::<SignIn>(br#"{"username":"a","password":"b","x":1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
        let err = parse::<SignIn>(br#"{"username":"a""#).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = parse::<SignIn>(br#"{"username":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `password`"), "{err}");
    }
}
