//! Single sign-on in the browser: `GET /oidc/start/{provider}` sends the person to
//! their organization's OpenID provider (the authorization code flow with PKCE, state
//! and nonce); `GET /oidc/callback` takes them back, exchanges the code for an ID
//! token, and starts a session once `keysmith_app::sso::complete` accepts it. Every
//! refusal is a page that says what went wrong, and signs nobody in.
//!
//! The sign-in's state travels in a cookie sealed with the server's secret
//! (`keysmith_sso`, `Path=/oidc`, `SameSite=Lax`: the provider's redirect back is a
//! top-level cross-site navigation, which Lax cookies go along with and Strict ones do
//! not), so any replica can finish what another began.

use super::{error_body, local_path, page, respond};
use crate::auth::session;
use crate::auth::source::SourceAddr;
use crate::federation::HttpIssuerFetcher;
use crate::state::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keysmith_app::sso::{self, LoginState, SsoRefusal};
use serde::Deserialize;

/// Where the provider sends people back: register `{this server}/oidc/callback` with it.
pub const CALLBACK_PATH: &str = "/oidc/callback";
const COOKIE: &str = "keysmith_sso";

#[derive(Deserialize)]
pub struct StartParams {
    next: Option<String>,
}

/// A refusal page: what went wrong, in words, and the way back to the sign-in page.
fn refused(status: StatusCode, message: &str, code: &str, secure: bool) -> Response {
    let body = error_body(
        status,
        "Single sign-on failed",
        message,
        code,
        "/login",
        "Go to the sign-in page",
    );
    let mut response = respond(status, page(None, "Single sign-on failed", body));
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(secure)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/oidc; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// This server's redirect URI, as the browser reaches it.
fn redirect_uri(state: &AppState, uri: &axum::http::Uri, headers: &HeaderMap) -> Option<String> {
    super::origin(state, uri, headers).map(|origin| format!("{origin}{CALLBACK_PATH}"))
}

pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<StartParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let secure = session::secure_for(&state, &headers);
    let unavailable = |why: &str, id: i64| {
        tracing::warn!(provider.id = id, reason = why, "single sign-on could not start");
        refused(
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be reached right now. Try again, or sign in with your password.",
            "sso_provider_unavailable",
            secure,
        )
    };
    let provider = match state.store.get_sso_provider(id).await {
        Ok(Some(provider)) => provider,
        Ok(None) => {
            return refused(
                StatusCode::NOT_FOUND,
                "There is no such single sign-on provider.",
                "sso_provider_not_found",
                secure,
            );
        }
        Err(e) => return super::failure(None, e.into()),
    };
    let discovery = match state.oidc_http.discovery(&provider.issuer).await {
        Ok(d) => d,
        Err(why) => return unavailable(&why, id),
    };
    let authorize = match HttpIssuerFetcher::endpoint(&discovery, "authorization_endpoint") {
        Ok(url) => url,
        Err(why) => return unavailable(&why, id),
    };
    let Some(redirect) = redirect_uri(&state, &uri, &headers) else {
        return unavailable("the request names no plausible host", id);
    };
    let next = local_path(params.next.as_deref(), "/settings");
    let login = match LoginState::new(provider.id, &next, state.now()) {
        Ok(login) => login,
        Err(e) => return super::failure(None, e.into()),
    };
    let Ok(mut url) = url::Url::parse(&authorize) else {
        return unavailable("the authorization endpoint is not a URL", id);
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", &provider.scopes)
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &login.challenge())
        .append_pair("code_challenge_method", "S256");
    let sealed = match login.seal(&state.app.server_secret) {
        Ok(sealed) => sealed,
        Err(e) => return super::failure(None, e.into()),
    };
    let cookie = format!(
        "{COOKIE}={sealed}; Path=/oidc; HttpOnly; SameSite=Lax; Max-Age={}{}",
        sso::LOGIN_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    Query(params): Query<CallbackParams>,
    SourceAddr(source): SourceAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let secure = session::secure_for(&state, &headers);
    let now = state.now();
    let untrusted_page = || {
        refused(
            StatusCode::FORBIDDEN,
            "The identity provider's answer could not be verified, so nobody was signed in. Start again from the sign-in page.",
            "sso_untrusted",
            secure,
        )
    };
    let untrusted = |why: &str| {
        tracing::info!(source.address = %source, reason = why, "single sign-on refused");
        untrusted_page()
    };
    // The sign-in must be this browser's, begun here within the last minutes: no
    // cookie means another browser began it (login CSRF) or it took too long.
    let Some(login) =
        session::cookie(&headers, COOKIE).and_then(|sealed| LoginState::open(&state.app.server_secret, sealed, now))
    else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was begun in another browser. Start again from the sign-in page.",
            "sso_state_missing",
            secure,
        );
    };
    if let Some(error) = &params.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refused(
            StatusCode::FORBIDDEN,
            &format!("The identity provider did not sign you in ({error})."),
            "sso_denied",
            secure,
        );
    }
    if !params.state.as_deref().is_some_and(|s| login.matches(s)) {
        return untrusted("the state is not this sign-in's");
    }
    let provider = match state.store.get_sso_provider(login.provider).await {
        Ok(Some(provider)) => provider,
        Ok(None) => return untrusted("the provider was removed during the sign-in"),
        Err(e) => return super::failure(None, e.into()),
    };
    // RFC 9207: an authorization response naming another issuer is a mix-up.
    if params.iss.as_deref().is_some_and(|iss| iss != provider.issuer) {
        return untrusted("the response names another issuer (iss)");
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return untrusted("the response has no code");
    };
    let Some(redirect) = redirect_uri(&state, &uri, &headers) else {
        return untrusted("the request names no plausible host");
    };
    let id_token = match exchange(&state, &provider, code, &redirect, &login.verifier).await {
        Ok(token) => token,
        Err(why) => return untrusted(&why),
    };
    let user = match sso::complete(&state.app, &provider, &login, &id_token, &source, now).await {
        Ok(user) => user,
        // `sso::complete` has logged which check failed.
        Err(SsoRefusal::Untrusted(_)) => return untrusted_page(),
        Err(SsoRefusal::App(e)) => return super::failure(None, e.into()),
        Err(other) => {
            let code = match &other {
                SsoRefusal::EmailUnverified => "sso_email_unverified",
                SsoRefusal::NoAccount(_) => "sso_no_account",
                _ => "sso_deactivated",
            };
            let message = crate::error::sentence(&other.to_string());
            return refused(StatusCode::FORBIDDEN, &message, code, secure);
        }
    };
    let started = match session::start(&state, user.id, secure).await {
        Ok(started) => started,
        Err(e) => return super::failure(None, e),
    };
    tracing::info!(user.id = user.id.0, source.address = %source, "signed in to the web interface through single sign-on");
    let mut response = Redirect::to(&login.next).into_response();
    let headers = response.headers_mut();
    for cookie in [started.cookie, clear_cookie(secure)] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The authorization code for an ID token, at the provider's token endpoint (with the
/// PKCE verifier and HTTP Basic client authentication).
async fn exchange(
    state: &AppState,
    provider: &keysmith_store::SsoProvider,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> Result<String, String> {
    let discovery = state.oidc_http.discovery(&provider.issuer).await?;
    let token_url = HttpIssuerFetcher::endpoint(&discovery, "token_endpoint")?;
    let secret = sso::read_secret(&state.app, &provider.client_secret_file)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ];
    let (status, answer) = state
        .oidc_http
        .post_form(&token_url, &provider.client_id, &secret, &form)
        .await?;
    if status != 200 {
        let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("no error code");
        return Err(format!("the token endpoint answered {status} ({error})"));
    }
    answer
        .get("id_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "the token endpoint gave no ID token".to_owned())
}
