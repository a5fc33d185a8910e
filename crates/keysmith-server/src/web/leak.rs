//! `/revoke-exposed`: anyone who finds a leaked key revokes it here, signed in or not.
//! The answer is the same whether or not the key existed.

use super::{cross_site, failure, page, respond};
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::leak::{Report, revoke};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keysmith_core::SecretString;
use maud::html;

pub async fn form() -> Response {
    let body = html! {
        h1 { "Revoke an exposed API key" }
        p {
            "Found a Keysmith key in a repository, a log or a chat? Paste it here and it stops working "
            "at once, everywhere. You do not need to sign in or to own the key. The organization's "
            "admins see the revocation in their audit log."
        }
        form.stack method="post" action="/revoke-exposed" autocomplete="off" {
            label for="exposed-key" { "Exposed key" }
            input #exposed-key name="key" type="password" required autocomplete="off" spellcheck="false";
            div.buttons { button.danger type="submit" { "Revoke key" } }
        }
    };
    respond(StatusCode::OK, page(None, "Revoke an exposed key", body))
}

pub async fn submit(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if cross_site(&headers) {
        return failure(None, ApiError::CsrfTokenInvalid);
    }
    let fields = super::Fields::parse(&body);
    let key = SecretString::new(fields.get("key").unwrap_or("").trim().to_owned());
    if key.expose().is_empty() {
        return failure(None, ApiError::InvalidValue("paste the key to revoke".into()));
    }
    if let Err(e) = revoke(&state, key.expose(), &Report::Holder, &source).await {
        return failure(None, e);
    }
    let body = html! {
        h1 { "Received" }
        p.notice role="status" {
            "If that was a key of this server, it no longer works anywhere. Whoever used it needs a new key."
        }
        p { a href="/revoke-exposed" { "Revoke another key" } }
    };
    respond(StatusCode::OK, page(None, "Key revoked", body))
}
