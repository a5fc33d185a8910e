//! Finding a key in the request headers, in the three forms DESIGN §4 accepts:
//! `Authorization: Basic` (the password is the key, the user name is ignored: the
//! wandb SDK sends `api:<key>`), `Authorization: Bearer <key>`, and `X-API-Key`.

use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use base64::Engine;
use keysmith_core::SecretString;
use keysmith_core::key_format::MAX_KEY_LEN;

/// The header the key may come in instead of `Authorization`.
pub const X_API_KEY: &str = "x-api-key";

/// The presented key, if any. A header that is present but unreadable is an error,
/// not "no credentials": the client meant to authenticate.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<SecretString>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::MalformedAuthorization("not ASCII"))?;
        return parse_authorization(value).map(Some);
    }
    if let Some(value) = headers.get(X_API_KEY) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::MalformedAuthorization("X-API-Key is not ASCII"))?;
        return Ok(Some(SecretString::new(value.trim().to_owned())));
    }
    Ok(None)
}

/// Parses an `Authorization` header value. Never panics, whatever the input.
pub fn parse_authorization(value: &str) -> Result<SecretString, ApiError> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(ApiError::MalformedAuthorization("Bearer without a key"));
        }
        return Ok(SecretString::new(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        // base64 of "user:key"; a key is never longer than MAX_KEY_LEN, so bound the
        // work before decoding.
        if rest.len() > 4 * (MAX_KEY_LEN + 256) / 3 + 4 {
            return Err(ApiError::InvalidApiKey);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| ApiError::MalformedAuthorization("Basic credentials are not base64"))?;
        let decoded = SecretString::new(
            String::from_utf8(decoded)
                .map_err(|_| ApiError::MalformedAuthorization("Basic credentials are not UTF-8"))?,
        );
        let key = match decoded.expose().split_once(':') {
            Some((_user, key)) => key,
            None => decoded.expose(),
        };
        if key.is_empty() {
            return Err(ApiError::MalformedAuthorization("Basic credentials without a key"));
        }
        return Ok(SecretString::new(key.to_owned()));
    }
    Err(ApiError::MalformedAuthorization("use the Basic or Bearer scheme"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_takes_the_password_and_ignores_the_user() {
        let k = parse_authorization(&format!("Basic {}", b64("api:the-key"))).unwrap();
        assert_eq!(k.expose(), "the-key");
        let k = parse_authorization(&format!("basic {}", b64(":the-key"))).unwrap();
        assert_eq!(k.expose(), "the-key");
        let k = parse_authorization(&format!("Basic {}", b64("the-key"))).unwrap();
        assert_eq!(k.expose(), "the-key");
    }

    #[test]
    fn bearer_and_x_api_key_carry_the_key() {
        assert_eq!(parse_authorization("Bearer abc").unwrap().expose(), "abc");
        let mut h = HeaderMap::new();
        h.insert(X_API_KEY, HeaderValue::from_static("xyz"));
        assert_eq!(presented_key(&h).unwrap().unwrap().expose(), "xyz");
        assert!(presented_key(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn malformed_headers_are_refused_without_echoing_them() {
        for bad in [
            "Bearer",
            "Basic !!!",
            "Digest abc",
            "",
            "Basic ",
            &format!("Basic {}", b64("api:")),
        ] {
            let err = parse_authorization(bad).unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::UNAUTHORIZED, "{bad}");
        }
        let err = parse_authorization("Token supersecretvalue").unwrap_err();
        assert!(!err.to_string().contains("supersecret"));
    }
}
