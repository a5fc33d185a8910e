//! The web interface: server-rendered HTML (maud) over the same operations as the REST
//! API. Pages work without script; one small script, served from here like every
//! other asset, adds a copy button and "select all", and closes the user menu on
//! Escape or a click elsewhere. No inline script or style, so the
//! Content-Security-Policy allows only `'self'`; the stylesheet lays every page out
//! from phone width (tables become cards) to wide screens.
//!
//! Every state-changing request is a form POST, refused when the browser says it came
//! from another site (Fetch Metadata). Behind a session it also carries the session's
//! CSRF token in a hidden field; the public forms (sign-in, accepting an invitation,
//! revoking a leaked key) have no session to take a token from.
//! A newly created key is shown once, on the page the POST redirects to: it never
//! travels in a URL, reloading does not create another key, and pages are `no-store`.

mod assets;
mod federation;
mod icons;
mod invite;
mod keys;
mod leak;
mod login;
mod org;
pub(crate) mod sso;
mod sso_page;
pub(crate) use org::origin;
mod team;

use crate::access::Caller;
use crate::auth::{AuthMethod, Principal, session};
use crate::error::ApiError;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
pub use icons::{Icon, icon};
use keysmith_store::{Membership, Team};
use maud::{DOCTYPE, Markup, html};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages. Static paths win over `/{team}/service-accounts`, so a team named like
/// one of them is reached with the `org` query parameter on its own page's link.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/authorize", get(keys::authorize))
        .route("/settings", get(keys::settings))
        .route("/keys/new", get(keys::new_form).post(keys::create))
        .route("/keys/delete-selected", post(keys::delete_selected))
        .route("/keys/{key_id}/created", get(keys::created))
        .route("/keys/{key_id}/rename", get(keys::rename_form).post(keys::rename))
        .route("/keys/{key_id}/delete", get(keys::delete_form).post(keys::delete))
        .route("/keys/{key_id}/rotate", get(keys::rotate_form).post(keys::rotate))
        .route("/keys/{key_id}/rotation", get(keys::rotation))
        .route("/revoke-exposed", get(leak::form).post(leak::submit))
        .route("/invite", get(invite::form).post(invite::submit))
        .route("/oidc/start/{id}", get(sso::start))
        .route(sso::CALLBACK_PATH, get(sso::callback))
        .route("/org/{org}/webhooks", get(org::webhooks).post(org::create_webhook))
        .route("/org/{org}/webhooks/{id}", get(org::deliveries))
        .route("/org/{org}/webhooks/{id}/delete", post(org::delete_webhook))
        .route(
            "/org/{org}/webhooks/{id}/rotate-secret",
            get(org::rotate_webhook_secret_form).post(org::rotate_webhook_secret),
        )
        .route(
            "/org/{org}/federation",
            get(federation::issuers).post(federation::add_issuer),
        )
        .route("/org/{org}/federation/{id}/delete", post(federation::remove_issuer))
        .route("/org/{org}/sso", get(sso_page::providers).post(sso_page::add_provider))
        .route("/org/{org}/sso/{id}/delete", post(sso_page::remove_provider))
        .route("/org/{org}/keys", get(org::keys))
        .route("/org/{org}/key-report", get(org::key_report))
        .route("/org/{org}/audit-log", get(org::audit_log))
        .route("/org/{org}/settings", get(org::settings).post(org::save_settings))
        .route("/org/{org}/users", get(org::users).post(org::create_user))
        .route("/org/{org}/users/{username}", post(org::update_user))
        .route("/org/{org}/teams", get(org::teams).post(org::create_team))
        .route(
            "/{team}/service-accounts",
            get(team::service_accounts_page).post(team::create_account),
        )
        .route("/static/keysmith.css", get(assets::css))
        .route("/static/keysmith.js", get(assets::js))
}

async fn home(_user: WebUser) -> Redirect {
    Redirect::to("/settings")
}

/// The pages' path-parameter extractor: axum's own `Path` answers a segment that is
/// not UTF-8 once percent-decoded (`/%FF/service-accounts`), or a webhook ID that is
/// not a number, with a plain-text 400. This answers the web's error page instead,
/// as [`crate::path::ApiPath`] answers the API's JSON.
pub struct WebPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for WebPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(failure(
                None,
                ApiError::InvalidRequest("this address is not valid: a part of its path cannot be read".into()),
            )),
            // A handler extracting parameters its route does not have: a bug here.
            Err(other) => Err(failure(None, ApiError::Internal(other.body_text()))),
        }
    }
}

/// A signed-in browser: the caller with roles, the CSRF token of the session, and what
/// the navigation needs (including the path asked for, to mark where the user is).
pub struct WebUser {
    pub caller: Caller,
    pub csrf: String,
    pub orgs: Vec<Membership>,
    pub teams: Vec<Team>,
    pub path: String,
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || {
            let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            Redirect::to(&format!("/login?next={next}")).into_response()
        };
        let Some(token) = session::token_from_cookies(&parts.headers) else {
            return Err(to_login());
        };
        let Some(user) = session::session_user(state, &token)
            .await
            .map_err(|e| failure(None, e))?
        else {
            return Err(to_login());
        };
        let principal = Principal {
            user,
            via: AuthMethod::Session,
        };
        let caller = Caller::load(&state.app, principal)
            .await
            .map_err(|e| failure(None, e.into()))?;
        let orgs = state
            .store
            .memberships(caller.id())
            .await
            .map_err(|e| failure(None, e.into()))?;
        let teams = state
            .store
            .user_teams(caller.id())
            .await
            .map_err(|e| failure(None, e.into()))?
            .into_iter()
            .filter(|(t, _)| caller.roles.is_team_admin(t.id))
            .map(|(t, _)| t)
            .collect();
        Ok(WebUser {
            caller,
            csrf: session::csrf_token(&token),
            orgs,
            teams,
            path: parts.uri.path().to_owned(),
        })
    }
}

impl WebUser {
    pub fn name(&self) -> &str {
        &self.caller.principal.user.username
    }

    /// The fields of a submitted form, once its CSRF token and origin are checked.
    /// The error is the page to answer with, built once per refused request.
    #[allow(clippy::result_large_err)]
    pub fn form(&self, headers: &HeaderMap, body: &Bytes) -> Result<Fields, Response> {
        let fields = Fields::parse(body);
        let sent = fields.get("csrf").unwrap_or("");
        let token_ok = sent.len() == self.csrf.len() && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes()));
        if !token_ok || cross_site(headers) {
            return Err(failure(Some(self), ApiError::CsrfTokenInvalid));
        }
        Ok(fields)
    }
}

/// Whether the browser says the request came from another site (Fetch Metadata).
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
}

/// A submitted form, `application/x-www-form-urlencoded`, repeated fields kept.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A network allowlist typed into one field (blocks separated by commas, spaces or
    /// lines); empty is `None`, no restriction.
    pub fn networks(&self, name: &'static str) -> Result<Option<keysmith_core::Networks>, keysmith_app::AppError> {
        keysmith_app::input::networks(name, &[self.get(name).unwrap_or_default()])
    }

    /// A checkbox: present means ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A local path to return to: starts with one `/`, nothing that would leave the
    /// site. Anything else falls back to `default`.
    pub fn back(&self, default: &str) -> String {
        local_path(self.get("back"), default)
    }
}

/// A path on this site from untrusted input, or `default`.
pub fn local_path(raw: Option<&str>, default: &str) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 512
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// `path` with `done=<what>` added, for the notice on the page a POST redirects to.
pub fn with_notice(path: &str, done: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}done={done}")
}

/// A percent-encoded query value.
pub fn q(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The message for a `done=` code; unknown codes show nothing.
fn notice_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "deleted" => "The API key was deleted. It no longer works anywhere.",
        "deleted-selected" => "The selected API keys were deleted. They no longer work anywhere.",
        "none-selected" => "Select at least one key first.",
        "renamed" => "The API key was renamed.",
        "saved" => "Settings saved.",
        "user-created" => "The user was created.",
        "user-updated" => "The user was updated.",
        "team-created" => "The team was created.",
        "webhook-deleted" => "The webhook endpoint was deleted; nothing more is sent to it.",
        "issuer-added" => "The issuer is trusted: its JWTs can now be exchanged for access tokens.",
        "issuer-removed" => "The issuer was removed: its JWTs are refused from now on.",
        "provider-added" => "The provider was added: the sign-in page offers it.",
        "provider-removed" => "The provider was removed: the sign-in page no longer offers it.",
        "service-account-created" => "The service account was created. Create an API key for it below.",
        "signed-out" => "You are signed out.",
        "password-set" => "Your password is set. Sign in with your username and the new password.",
        _ => return None,
    })
}

pub fn notice(done: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = done.and_then(notice_text) {
            p.notice role="status" { (text) }
        }
    }
}

/// A secret shown once: a read-only field to select by hand, and a Copy button the
/// script reveals. `id` names the field (also its `data-testid`).
/// A row's delete button: a form that posts to `action` with the CSRF token, labelled
/// `label` and, for screen readers, what it acts on.
pub fn delete_button(action: &str, csrf: &str, label: &str, what: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button.icon-button.danger type="submit" title=(label) {
                (icon(Icon::Trash)) span.action-label { (label) } span.visually-hidden { " " (what) }
            }
        }
    }
}

pub fn reveal(id: &str, label: Markup, value: &str) -> Markup {
    html! {
        div.reveal {
            label for=(id) { (label) }
            div.reveal-row {
                input id=(id) readonly value=(value) autocomplete="off" spellcheck="false" data-testid=(id);
                button type="button" data-copy=(id) hidden { "Copy" }
            }
            span.copy-status role="status" aria-live="polite" {}
        }
    }
}

/// An HTML response with the headers every page carries.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A link of the main navigation, marked as the current page where the user is.
fn nav_link(href: &str, current: bool, label: Markup) -> Markup {
    html! {
        li { a href=(href) aria-current=[current.then_some("page")] { (label) } }
    }
}

/// The header's user menu: a disclosure (`<details>`), so it opens by mouse, touch,
/// Enter or Space without script, and screen readers announce it as a button that
/// is expanded or collapsed. The script only adds closing on Escape and outside clicks.
fn user_menu(user: &WebUser) -> Markup {
    let name = user.name();
    let initial: String = name
        .chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    html! {
        details.menu {
            summary {
                span.avatar aria-hidden="true" { (initial) }
                span.visually-hidden { "User menu for " }
                span.user-name { (name) }
                (icon(Icon::ChevronDown))
            }
            div.menu-panel {
                p.menu-head {
                    "Signed in as " strong { (name) }
                }
                ul {
                    li { a href="/settings" { "User settings" } }
                    li { a href="/settings#api-keys" { "Your API keys" } }
                    li.menu-sep {
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button.menu-item type="submit" { "Sign out" }
                        }
                    }
                }
            }
        }
    }
}

/// A page, with the navigation when someone is signed in.
pub fn page(user: Option<&WebUser>, title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Keysmith" }
                link rel="stylesheet" href="/static/keysmith.css";
                script src="/static/keysmith.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        a.brand href="/" { (icon(Icon::Key)) span { "Keysmith" } }
                        @if let Some(user) = user {
                            nav.main aria-label="Main" {
                                ul {
                                    @let path = user.path.as_str();
                                    (nav_link("/settings", path == "/settings" || path == "/authorize" || path.starts_with("/keys/"), html! { "API keys" }))
                                    @for m in &user.orgs {
                                        @if user.caller.roles.is_org_admin(m.org.id) {
                                            @let base = format!("/org/{}/", q(&m.org.name));
                                            (nav_link(&format!("{base}keys"), path.starts_with(&base), html! { "Organization " (m.org.name) }))
                                        }
                                    }
                                    @for t in &user.teams {
                                        @let here = path == format!("/{}/service-accounts", q(&t.name));
                                        (nav_link(&team::team_path(t, user), here, html! { (t.name) " service accounts" }))
                                    }
                                }
                            }
                            (user_menu(user))
                        }
                    }
                }
                main #main { (main) }
            }
        }
    }
}

/// The page for a failed operation: the stable code and the message, with the status
/// the API would answer. A session that ended sends the browser to sign in again.
pub fn failure(user: Option<&WebUser>, err: ApiError) -> Response {
    if matches!(err, ApiError::SessionExpired | ApiError::Unauthenticated) {
        return Redirect::to("/login").into_response();
    }
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = %err, "web request failed");
    }
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let message = if status.is_server_error() {
        "The server could not complete this request. Try again; if it keeps failing, the server log has the details."
            .to_owned()
    } else {
        err.message()
    };
    let (back, back_label) = if user.is_some() {
        ("/settings", "Back to your API keys")
    } else {
        ("/login", "Go to the sign-in page")
    };
    let body = error_body(status, title, &message, err.code(), back, back_label);
    respond(status, page(user, title, body))
}

/// What an error page shows: the status, a heading, the message and a way back.
pub(super) fn error_body(
    status: StatusCode,
    title: &str,
    message: &str,
    code: &str,
    back: &str,
    back_label: &str,
) -> Markup {
    html! {
        div.error-page {
            p.status-code { "Error " (status.as_u16()) }
            h1 { (title) }
            p.error role="alert" { (message) }
            p.hint { "Error code: " code { (code) } }
            p { a.button href=(back) { (back_label) } }
        }
    }
}

/// Paths of the API and of the other machine-facing endpoints: a path no route
/// matches under these is answered in JSON, whoever asks.
fn is_api_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || ["/graphql", "/metrics", "/healthz", "/readyz", "/scim", "/oidc"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// Whether the client asks for HTML (a browser navigating), by its `Accept` header.
fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The answer to a path no route matches. A browser opening a page that does not
/// exist gets the web's "Page not found" (with the navigation when signed in); the
/// API's paths and every other client get the API's JSON `route_not_found`.
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if is_api_path(parts.uri.path()) || !prefers_html(&parts.headers) {
        return ApiError::RouteNotFound.into_response();
    }
    let user = WebUser::from_request_parts(&mut parts, &state).await.ok();
    let body = error_body(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. The link may be mistyped, or the page may have moved.",
        ApiError::RouteNotFound.code(),
        "/",
        "Go to the home page",
    );
    respond(StatusCode::NOT_FOUND, page(user.as_ref(), "Page not found", body))
}

/// A time from the store, readable, in a `<time>` element.
pub fn when(ms: Option<i64>, never: &str) -> Markup {
    match ms {
        Some(ms) => when_rfc(&rfc3339(ms)),
        None => html! { (never) },
    }
}

/// An RFC 3339 time as `2026-11-26 21:57 UTC`.
pub fn when_rfc(rfc: &str) -> Markup {
    let shown = match (rfc.get(..10), rfc.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc.to_owned(),
    };
    html! { time datetime=(rfc) { (shown) } }
}

/// The redirect after a successful POST (303, so the browser GETs the next page).
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/settings?x=1"), "/d"), "/settings?x=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "evil", "/a\nb", ""] {
            assert_eq!(local_path(Some(bad), "/d"), "/d", "{bad:?}");
        }
        assert_eq!(local_path(None, "/d"), "/d");
    }

    #[test]
    fn forms_keep_repeated_fields() {
        let f = Fields::parse(b"csrf=t&key_id=a&key_id=b&name=x+y%21");
        assert_eq!(f.all("key_id"), ["a", "b"]);
        assert_eq!(f.get("name"), Some("x y!"));
        assert!(f.checked("csrf") && !f.checked("nope"));
    }

    #[test]
    fn only_browsers_asking_for_a_page_get_the_html_404() {
        for api in [
            "/api",
            "/api/v1/x",
            "/graphql",
            "/graphql/x",
            "/metrics",
            "/healthz",
            "/readyz/x",
            "/scim/v2/Users",
            "/oidc/callback",
        ] {
            assert!(is_api_path(api), "{api}");
        }
        for page in ["/", "/nope", "/apiary", "/settings/x", "/org/default/nope"] {
            assert!(!is_api_path(page), "{page}");
        }
        let mut h = HeaderMap::new();
        assert!(!prefers_html(&h), "no Accept");
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!prefers_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("Text/HTML,*/*;q=0.8"));
        assert!(prefers_html(&h));
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h), "older browsers send nothing");
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }
}
