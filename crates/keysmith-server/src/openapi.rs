//! The OpenAPI document, served at `/api/v1/openapi.json` and committed as
//! `docs/openapi.json` (a test keeps the two equal).

use crate::error::ErrorBody;
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Keysmith",
        description = "Self-hosted API keys, compatible with the W&B API key system. Errors have the shape \
                       `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`; match on `code`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Sign in and out with a password"),
        (name = "api-keys", description = "Create, list, rename, rotate and delete API keys; revoke exposed keys"),
        (name = "leak-response", description = "Reports of exposed keys from GitHub's secret scanning"),
        (name = "webhooks", description = "Key events delivered to your endpoints (Standard Webhooks)"),
        (name = "forward-auth", description = "Identity for reverse proxies: nginx auth_request, Traefik forwardAuth, Envoy ext_authz"),
        (name = "viewer", description = "Who is calling"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub(crate) struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Password = the API key; the user name is ignored (the wandb SDK sends `api`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "keysmith_session",
                "From POST /api/v1/session; state-changing requests also need X-CSRF-Token",
            ))),
        );
    }
}

/// The document the server serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    crate::routes::api_routes().split_for_parts().1
}
