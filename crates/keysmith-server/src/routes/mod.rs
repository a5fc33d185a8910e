//! The routes, each handler beside its OpenAPI entry. [`router`] assembles them with
//! the layers every response shares.

pub(crate) mod api_keys;
pub(crate) mod audit_log;
pub(crate) mod federation;
pub(crate) mod forward_auth;
mod health;
pub(crate) mod orgs;
pub(crate) mod scim;
pub(crate) mod service_accounts;
pub(crate) mod session;
pub(crate) mod sso;
pub(crate) mod teams;
pub(crate) mod users;
pub(crate) mod viewer;
pub(crate) mod webhooks;

use crate::error::ApiError;
use crate::json::MAX_BODY_BYTES;
use crate::openapi::ApiDoc;
use crate::state::AppState;
use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{any, get, post};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The documented routes. The OpenAPI document is generated from the same calls that
/// register the handlers, so the two cannot drift apart.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::create_session, session::delete_session))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(
            api_keys::get_api_key,
            api_keys::update_api_key,
            api_keys::delete_api_key
        ))
        .routes(routes!(api_keys::bulk_delete_api_keys))
        .routes(routes!(api_keys::rotate_api_key))
        .routes(routes!(api_keys::revoke_exposed))
        .routes(routes!(orgs::list_orgs))
        .routes(routes!(orgs::get_org, orgs::update_org))
        .routes(routes!(orgs::key_report))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::update_user, users::delete_user))
        .routes(routes!(users::invite_user))
        .routes(routes!(users::accept_invite))
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(teams::get_team))
        .routes(routes!(teams::set_team_member, teams::remove_team_member))
        .routes(routes!(
            service_accounts::list_service_accounts,
            service_accounts::create_service_account
        ))
        .routes(routes!(
            service_accounts::delete_service_account,
            service_accounts::update_service_account
        ))
        .routes(routes!(audit_log::list_audit))
        .routes(routes!(audit_log::export_audit))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(federation::list_issuers, federation::create_issuer))
        .routes(routes!(federation::delete_issuer))
        .routes(routes!(federation::token))
        .routes(routes!(sso::list_providers, sso::create_provider))
        .routes(routes!(sso::delete_provider))
        .routes(routes!(crate::leak::github::report))
        .routes(routes!(viewer::get_viewer))
        .routes(routes!(forward_auth::forward_auth))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The whole application, ready to serve or to drive with `oneshot` in tests.
pub fn router(state: AppState) -> Router {
    // Forward auth is the hot path of a proxy in front of every request: it is served
    // before the full application and its middleware, with its own headers and metric.
    // Proxies send the client's method; Envoy appends the client's path, which may be
    // just `/`. (The server's connection answers these before the router does:
    // `crate::connection`; this is for the router driven on its own.)
    let full = application(state.clone());
    Router::new()
        .route(forward_auth::PATH, any(forward_auth::forward_auth))
        .route("/api/v1/forward-auth/", any(forward_auth::forward_auth))
        .route("/api/v1/forward-auth/{*path}", any(forward_auth::forward_auth))
        .with_state(state)
        .fallback_service(full)
}

/// Everything but the forward-auth fast lane, with the layers every response shares.
/// The server's connections (`crate::connection`) answer forward auth themselves and
/// hand everything else straight to this router.
pub(crate) fn application(state: AppState) -> Router {
    let hsts = state.hsts;
    let (routes, mut document) = api_routes().split_for_parts();
    crate::openapi::complete(&mut document);
    let document = axum::Json(document);
    let app = routes
        .route("/api/v1/openapi.json", get(move || async move { document.clone() }))
        .route(
            "/graphql",
            post(crate::graphql::graphql).layer(Extension(crate::graphql::schema())),
        )
        .route(
            "/graphql/",
            post(crate::graphql::graphql).layer(Extension(crate::graphql::schema())),
        )
        .merge(crate::web::routes())
        .merge(scim::routes())
        .route("/metrics", get(crate::metrics::serve))
        .route_layer(crate::metrics::TrackLayer(state.metrics.clone()))
        // A browser opening a page that does not exist gets the web's HTML page; the
        // API's paths and other clients get the JSON `route_not_found`.
        .fallback(crate::web::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A plain function on the response: no future to box per request.
        .layer(tower::util::MapResponseLayer::new(move |response| {
            common_headers(hsts, response)
        }));
    // Request lines are logged at `info`; below that the layer would only cost time.
    if !tracing::enabled!(Level::INFO) {
        return app;
    }
    app.layer(
        // Logs method, path (never the query string, where a careless client might
        // put a key), status and latency. Never headers or bodies.
        TraceLayer::new_for_http()
            .make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("request", http.method = %req.method(), http.path = %req.uri().path())
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}

/// The headers every response carries, set in one pass.
/// Pages set their own Content-Security-Policy; everything else (JSON, text) loads
/// nothing and may be framed by no one. With HTTPS served directly, browsers are told
/// to use nothing else for a year.
pub(crate) fn common_headers(hsts: bool, mut response: axum::response::Response) -> axum::response::Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}
