//! `/revoke-exposed`: anyone who finds a leaked key revokes it here, signed in or not.
//! The answer is the same whether or not the key existed. Reports share the API's
//! limit per client address; over it, the form comes back with 429 and a message.

use super::{cross_site, failure, page, respond};
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keysmith_app::AppError;
use keysmith_app::leaks::{Report, count_report, revoke};
use keysmith_core::SecretString;
use maud::html;

pub async fn form() -> Response {
    respond(StatusCode::OK, form_page(None))
}

/// The form, with a message above it when a report was refused.
fn form_page(refused: Option<&str>) -> maud::Markup {
    let body = html! {
        div.auth-card {
            h1 { "Revoke an exposed API key" }
            p {
                "Found a Keysmith key in a repository, a log or a chat? Paste it here and it stops working "
                "at once, everywhere. You do not need to sign in or to own the key. The organization's "
                "admins see the revocation in their audit log."
            }
            form.stack method="post" action="/revoke-exposed" autocomplete="off" {
                @if let Some(message) = refused {
                    p.error role="alert" id="revoke-error" { (message) }
                }
                div.field {
                    label for="exposed-key" { "Exposed key" }
                    input #exposed-key name="key" type="password" required autocomplete="off" spellcheck="false"
                        aria-describedby=[refused.map(|_| "revoke-error")];
                }
                button.danger.wide type="submit" { "Revoke key" }
            }
            div.auth-links {
                p.hint { "Have an account? " a href="/login" { "Sign in" } "." }
            }
        }
    };
    page(None, "Revoke an exposed key", body)
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
    // The same count as the API's: one budget per address for both.
    match count_report(&state.app, &source) {
        Ok(()) => {}
        Err(AppError::RateLimited { retry_after_secs }) => {
            let message = format!("Too many reports from your address. Try again in {retry_after_secs} seconds.");
            let mut response = respond(StatusCode::TOO_MANY_REQUESTS, form_page(Some(&message)));
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Err(other) => return failure(None, other.into()),
    }
    let fields = super::Fields::parse(&body);
    let key = SecretString::new(fields.get("key").unwrap_or("").trim().to_owned());
    if key.expose().is_empty() {
        return failure(None, ApiError::InvalidValue("paste the key to revoke".into()));
    }
    if let Err(e) = revoke(&state.app, key.expose(), &Report::Holder, &source).await {
        return failure(None, e.into());
    }
    let body = html! {
        div.auth-card {
            h1 { "Received" }
            p.notice role="status" {
                "If that was a key of this server, it no longer works anywhere. Whoever used it needs a new key."
            }
            div.auth-links { p { a href="/revoke-exposed" { "Revoke another key" } } }
        }
    };
    respond(StatusCode::OK, page(None, "Key revoked", body))
}
