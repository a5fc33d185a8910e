//! `/invite`: someone an admin invited sets their password with the invitation token,
//! without signing in. The form calls the same action as `POST /api/v1/invites/accept`
//! (`keysmith_app::users::accept_invitation`), so the token and password rules, the
//! answers, the audit entry and the log lines are the API's. The token and the password
//! travel only in the POST body: never in a URL, and never back into a page.

use super::{Fields, cross_site, failure, page, respond, see_other};
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keysmith_app::users;
use keysmith_core::SecretString;
use maud::{Markup, html};

/// Where the browser goes once the password is set: the sign-in page, with a notice.
pub const ACCEPTED: &str = "/login?done=password-set";

pub async fn form() -> Response {
    respond(StatusCode::OK, form_page(None))
}

/// The form, empty, with a message above it when a submission was refused.
fn form_page(refused: Option<(&str, &str)>) -> Markup {
    let body = html! {
        div.auth-card {
            h1 { "Accept your invitation" }
            p {
                "An organization admin invited you to Keysmith and gave you an invitation token. "
                "Paste it here and choose your password, then sign in with your username and that password."
            }
            form.stack method="post" action="/invite" {
                @if let Some((message, code)) = refused {
                    div.error-block #invite-error {
                        p.error role="alert" { (message) }
                        p.hint { "Error code: " code { (code) } }
                    }
                }
                div.field {
                    label for="invite-token" { "Invitation token" }
                    input #invite-token name="token" type="password" required autocomplete="off" spellcheck="false"
                        aria-describedby=[refused.map(|_| "invite-error")];
                }
                div.field {
                    label for="new-password" { "New password" }
                    input #new-password name="password" type="password" required autocomplete="new-password"
                        aria-describedby="invite-password-hint";
                    p.hint #invite-password-hint { "At least 12 characters." }
                }
                div.field {
                    label for="confirm-password" { "Confirm new password" }
                    input #confirm-password name="confirm" type="password" required autocomplete="new-password";
                }
                button.wide type="submit" { "Set password" }
            }
            div.auth-links {
                p.hint { "Password already set? " a href="/login" { "Sign in" } "." }
            }
        }
    };
    page(None, "Accept your invitation", body)
}

/// The form again with `message`: nothing that was submitted goes back into it.
fn refuse(status: StatusCode, message: &str, code: &str) -> Response {
    respond(status, form_page(Some((message, code))))
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
    let fields = Fields::parse(&body);
    let token = fields.get("token").unwrap_or("").trim();
    let password = fields.get("password").unwrap_or("");
    if token.is_empty() {
        let message = "Paste the invitation token your admin gave you.";
        return refuse(StatusCode::BAD_REQUEST, message, "invalid_value");
    }
    if fields.get("confirm") != Some(password) {
        let message = "The two passwords differ. Type the same new password in both fields.";
        return refuse(StatusCode::BAD_REQUEST, message, "invalid_value");
    }
    let token = SecretString::new(token.to_owned());
    let password = SecretString::new(password.to_owned());
    let err = match users::accept_invitation(&state.app, &source, state.now(), &token, &password).await {
        Ok(_) => return see_other(ACCEPTED),
        Err(err) => ApiError::from(err),
    };
    let status = err.status();
    if !status.is_client_error() {
        return failure(None, err);
    }
    let mut response = refuse(status, &err.message(), err.code());
    if let ApiError::RateLimited { retry_after_secs } = err
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
