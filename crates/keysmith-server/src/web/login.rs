//! Signing in and out in the browser.

use super::{Fields, WebUser, cross_site, failure, local_path, notice, page, respond, see_other};
use crate::auth::password::check_password;
use crate::auth::session;
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keysmith_app::sso::SignInChoices;
use keysmith_core::SecretString;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LoginParams {
    next: Option<String>,
    done: Option<String>,
}

/// The single sign-on providers the sign-in page offers.
async fn providers(state: &AppState) -> SignInChoices {
    keysmith_app::sso::sign_in_choices(&state.app)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error.detail = %e, "single sign-on providers could not be read");
            SignInChoices::default()
        })
}

fn login_page(next: &str, username: &str, error: Option<&str>, done: Option<&str>, choices: &SignInChoices) -> Markup {
    let password_form = html! {
        form.stack method="post" action="/login" {
            @if let Some(error) = error {
                p.error role="alert" id="login-error" { (error) }
            }
            input type="hidden" name="next" value=(next);
            div.field {
                label for="username" { "Username or email" }
                input #username name="username" autocomplete="username" required value=(username)
                    aria-describedby=[error.map(|_| "login-error")];
            }
            div.field {
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
            }
            button.wide type="submit" { "Sign in" }
        }
    };
    // The provider's button is the main one when the organization requires it.
    let sso_buttons = html! {
        @for (id, name) in &choices.providers {
            a.button.wide.secondary[!choices.sso_first] href={ "/oidc/start/" (id) "?next=" (super::q(next)) } {
                "Sign in with " (name)
            }
        }
    };
    page(
        None,
        "Sign in",
        html! {
            div.auth-card {
                h1 { "Sign in to Keysmith" }
                (notice(done))
                @if choices.sso_first {
                    div.sso-choices { (sso_buttons) }
                    details.password-sign-in open[error.is_some()] {
                        summary { "Sign in with a password (organization admins)" }
                        (password_form)
                    }
                } @else {
                    (password_form)
                    @if !choices.providers.is_empty() {
                        div.sso-choices {
                            p.or { span { "or" } }
                            (sso_buttons)
                        }
                    }
                }
                div.auth-links {
                    p.hint { "Invited? " a href="/invite" { "Set your password" } " with the token you were given." }
                    p.hint { "Found a leaked key? " a href="/revoke-exposed" { "Revoke it" } ", no sign-in needed." }
                }
            }
        },
    )
}

pub async fn form(State(state): State<AppState>, Query(params): Query<LoginParams>) -> Response {
    let next = local_path(params.next.as_deref(), "/settings");
    let providers = providers(&state).await;
    respond(
        StatusCode::OK,
        login_page(&next, "", None, params.done.as_deref(), &providers),
    )
}

pub async fn submit(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let next = local_path(fields.get("next"), "/settings");
    let username = fields.get("username").unwrap_or("").trim();
    if cross_site(&headers) {
        return failure(None, ApiError::CsrfTokenInvalid);
    }
    let password = SecretString::new(fields.get("password").unwrap_or("").to_owned());
    let user = match check_password(&state.app, username, password, &source, state.now())
        .await
        .map_err(ApiError::from)
    {
        Ok(user) => user,
        Err(ApiError::InvalidCredentials) => {
            let providers = providers(&state).await;
            let page = login_page(&next, username, Some("Wrong username or password."), None, &providers);
            return respond(StatusCode::UNAUTHORIZED, page);
        }
        Err(ApiError::SsoRequired) => {
            let providers = providers(&state).await;
            let message = crate::error::sentence(&ApiError::SsoRequired.to_string());
            let page = login_page(&next, username, Some(&message), None, &providers);
            return respond(StatusCode::FORBIDDEN, page);
        }
        Err(ApiError::RateLimited { retry_after_secs }) => {
            let message = format!("Too many failed sign-ins. Try again in {retry_after_secs} seconds.");
            let mut response = respond(
                StatusCode::TOO_MANY_REQUESTS,
                login_page(&next, username, Some(&message), None, &providers(&state).await),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Err(other) => return failure(None, other),
    };
    let started = match session::start(&state, user.id, session::secure_for(&state, &headers)).await {
        Ok(started) => started,
        Err(e) => return failure(None, e),
    };
    tracing::info!(user.id = user.id.0, source.address = %source, "signed in to the web interface");
    let mut response = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&started.cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(State(state): State<AppState>, user: WebUser, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = user.form(&headers, &body) {
        return refused;
    }
    if let Some(token) = session::token_from_cookies(&headers)
        && let Err(e) = keysmith_app::sessions::end(&state.app, &session::token_digest(&token)).await
    {
        return failure(Some(&user), e.into());
    }
    let mut response = see_other("/login?done=signed-out");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::secure_for(&state, &headers))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
