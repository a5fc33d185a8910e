//! Finding a key in the request headers, in the three forms docs/DESIGN.md §4 accepts:
//! `Authorization: Basic` (the password is the key, the user name is ignored: the
//! wandb SDK sends `api:<key>`), `Authorization: Bearer <key>`, and `X-API-Key`.

use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use base64::Engine;
use keysmith_core::SecretString;
use keysmith_core::key_format::MAX_KEY_LEN;

/// The header the key may come in instead of `Authorization`.
pub const X_API_KEY: &str = "x-api-key";

/// A key as presented: borrowed from the header when it stands there as is (Bearer,
/// X-API-Key), decoded into a secret buffer (zeroed on drop) when it came in Basic.
/// Its `Debug` names no secret.
pub enum Presented<'a> {
    Borrowed(&'a str),
    Decoded(SecretString),
}

impl Presented<'_> {
    pub fn expose(&self) -> &str {
        match self {
            Self::Borrowed(key) => key,
            Self::Decoded(key) => key.expose(),
        }
    }
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presented([redacted])")
    }
}

/// The presented key, if any. A header that is present but unreadable is an error,
/// not "no credentials": the client meant to authenticate.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<Presented<'_>>, ApiError> {
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
        return Ok(Some(Presented::Borrowed(value.trim_ascii())));
    }
    Ok(None)
}

/// Parses an `Authorization` header value. Never panics, whatever the input.
/// (A header value that reads as text is visible ASCII, spaces and tabs, so ASCII
/// trimming is all the trimming it needs.)
pub fn parse_authorization(value: &str) -> Result<Presented<'_>, ApiError> {
    let value = value.trim_ascii();
    let (scheme, rest) = match value.bytes().position(|b| b == b' ') {
        Some(space) => (value.get(..space).unwrap_or(""), value.get(space + 1..).unwrap_or("")),
        None => (value, ""),
    };
    let rest = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(ApiError::MalformedAuthorization("Bearer without a key"));
        }
        return Ok(Presented::Borrowed(rest));
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
        // A password read from a file for Basic often keeps its newline; keys never
        // hold whitespace, so it is trimmed like the other headers' values.
        let key = match decoded.expose().split_once(':') {
            Some((_user, key)) => key.trim(),
            None => decoded.expose().trim(),
        };
        if key.is_empty() {
            return Err(ApiError::MalformedAuthorization("Basic credentials without a key"));
        }
        return Ok(Presented::Decoded(SecretString::new(key.to_owned())));
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
        for header in [
            format!("Basic {}", b64("api:the-key\n")),
            format!("Basic {}", b64(" the-key\r\n")),
            format!("Basic {}", b64("api:the-key")),
            format!("basic {}", b64(":the-key")),
            format!("Basic {}", b64("the-key")),
        ] {
            assert_eq!(parse_authorization(&header).unwrap().expose(), "the-key");
        }
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
        let borrowed = parse_authorization("Bearer supersecretvalue").unwrap();
        let basic = format!("Basic {}", b64("api:supersecretvalue"));
        let decoded = parse_authorization(&basic).unwrap();
        for presented in [borrowed, decoded] {
            assert_eq!(presented.expose(), "supersecretvalue");
            assert!(!format!("{presented:?}").contains("supersecret"), "{presented:?}");
        }
    }
}
