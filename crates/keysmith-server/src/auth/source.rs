//! The address a request came from, for rate limits and logs.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;

/// The peer's IP address, or `unknown` when the server was not started with connect
/// info (as in tests that drive the router without a socket).
#[derive(Debug, Clone)]
pub struct SourceAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SourceAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(address(&parts.extensions)))
    }
}

/// The peer's IP address from a request's extensions, or `unknown`.
pub fn address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ConnectInfo(addr)| addr.ip().to_string())
}

/// The `User-Agent` header, or empty.
pub fn user_agent(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
