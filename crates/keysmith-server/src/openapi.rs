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
        (name = "federation", description = "Identity federation: JWT issuers an organization trusts, and the JWT bearer grant (RFC 7523) that exchanges their JWTs for access tokens"),
        (name = "sso", description = "Single sign-on: the OpenID Connect providers an organization's people sign in to the web interface with"),
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

/// What `str::trim` drops around names before checking them: Unicode White_Space.
const WHITE_SPACE: &str = r"[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// The schema of a user, service account or team name (`keysmith_core::EntityName`):
/// 1 to 64 letters, digits, `.`, `_` and `-`, starting with a letter or digit, with
/// any white space around it. (`schema_with` drops the field's doc comment: pass it.)
pub(crate) fn entity_name(description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(description))
        .pattern(Some(format!(
            "^{WHITE_SPACE}*[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}{WHITE_SPACE}*$"
        )))
        .build()
}

/// The schema of a key's name (`keysmith_core::KeyName`): 1 to 128 characters, no
/// control characters, with any white space around it.
pub(crate) fn key_name(description: &str) -> utoipa::openapi::Object {
    // A character that is neither a control character nor white space, and one that
    // is no control character.
    let visible = r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
    let any = r"[^\x00-\x1F\x7F-\x9F]";
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(description))
        .pattern(Some(format!(
            "^{WHITE_SPACE}*{visible}(?:{any}{{0,126}}{visible})?{WHITE_SPACE}*$"
        )))
        .build()
}

/// The document the server serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = crate::routes::api_routes().split_for_parts().1;
    complete(&mut document);
    document
}

/// Adds what every operation that accepts an API key answers, so that no annotation
/// can leave it out: 429 `rate_limited`, when the caller's address has had too many
/// failed key verifications in the last minute (`key_failures_per_minute`). Runs on
/// the routed document: operations exist only once the routes are added.
pub(crate) fn complete(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};

    let rate_limited = ResponseBuilder::new()
        .description("`rate_limited`: too many failed key verifications from this address; retry after Retry-After")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some("Seconds until the address may try again"))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            // Every declared security requirement includes the API key schemes.
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                operation
                    .responses
                    .responses
                    .entry("429".to_owned())
                    .or_insert_with(|| RefOr::T(rate_limited.clone()));
            }
        }
    }
}
