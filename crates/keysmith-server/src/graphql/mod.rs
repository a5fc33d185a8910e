//! `POST /graphql`: the part of W&B's GraphQL API that the unmodified `wandb` SDK and
//! CLI use to log in and manage keys (docs/wandb-wire-protocol.md, from shared/).
//!
//! Authentication is by key only (Basic `api:<key>`, Bearer, X-API-Key). A request
//! without a valid key is still executed, with no caller: every root field then fails
//! with W&B's own error, `user is not logged in` / `PERMISSION_ERROR`, the data holds
//! `null` for each, and the status is 401, which every SDK version reports cleanly.
//! Nothing here answers 5xx for a bad key: wandb-core retries 5xx for ten seconds.

mod context;
mod fast;
mod mutation;
mod objects;
mod query;
mod scalars;

use crate::access::Caller;
use crate::auth::credentials;
use crate::auth::source::SourceAddr;
use crate::auth::verify;
use crate::error::ApiError;
use crate::state::AppState;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{EmptySubscription, Schema};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use context::GqlContext;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

pub type WandbSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Nesting and cost limits: the SDK's deepest query (GetViewer with fragments) has
/// depth 6 and costs well under 100.
const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 1_000;

pub fn schema() -> WandbSchema {
    Schema::build(query::Query, mutation::Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

fn request_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "message": message.into(), "extensions": { "code": "BAD_REQUEST" } }] })),
    )
        .into_response()
}

/// A genuine key refused before anything runs: from the wrong network (403, W&B's
/// `PERMISSION_ERROR`), or over its request limit (429 with Retry-After and the
/// RateLimit fields, which wandb-core honours as it retries). The message says why;
/// never the 401 that would say the key is wrong.
fn refused_key(e: ApiError) -> Response {
    let status = e.status();
    let code = if status == StatusCode::TOO_MANY_REQUESTS {
        "RATE_LIMITED"
    } else {
        "PERMISSION_ERROR"
    };
    let mut response = (
        status,
        Json(json!({ "errors": [{ "message": e.to_string(), "extensions": {
            "code": code, "keysmith_code": e.code() } }], "data": null })),
    )
        .into_response();
    if let ApiError::KeyRateLimited(quota) = &e {
        crate::error::rate_limit_headers(response.headers_mut(), quota, true);
    }
    response
}

/// SDKs older than 0.22.3 (`W&B Internal Client 0.21.0`) reject longer keys at login.
fn is_old_sdk(headers: &HeaderMap) -> bool {
    let Some(agent) = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(version) = agent
        .strip_prefix("W&B Internal Client ")
        .or_else(|| agent.strip_prefix("W&B Public Client "))
    else {
        return false;
    };
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""));
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    (next(), next(), next()) < (0, 22, 3)
}

pub async fn graphql(
    State(state): State<AppState>,
    axum::Extension(schema): axum::Extension<WandbSchema>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match credentials::presented_key(&headers) {
        Ok(Some(key)) => match verify::verify_key(
            &state,
            key.expose(),
            verify::Client {
                address: &source,
                user_agent: crate::auth::source::user_agent(&headers),
                ip: source.parse().ok(),
                // A GraphQL request may be a mutation.
                write: true,
            },
        )
        .await
        {
            Ok(verified) => {
                let principal = crate::auth::key_principal(verified);
                match Caller::load(&state.app, principal).await {
                    Ok(caller) => Some(caller),
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
            // The database failed: not the client's fault, and not a 401.
            Err(ApiError::Internal(detail)) => return ApiError::Internal(detail).into_response(),
            // A genuine key from the wrong network: W&B's refusal code, with a message
            // that says why (wandb 0.31 prints it), and no 401 that would say the key
            // is wrong.
            Err(e @ (ApiError::IpNotAllowed | ApiError::KeyRateLimited(_))) => return refused_key(e),
            Err(_) => None,
        },
        _ => None,
    };
    // A batch (a JSON array) is not supported: one operation per request.
    let mut request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return request_error(StatusCode::BAD_REQUEST, "the request body is not valid JSON");
        }
        Err(_) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "send one GraphQL request as a JSON object with `query` (batches are not supported)",
            );
        }
    };
    // The 0.31 public API sends `"operationName": ""`, meaning "the only operation".
    if request.operation_name.as_deref() == Some("") {
        request.operation_name = None;
    }
    let authenticated = caller.is_some();
    // The SDKs send a handful of fixed documents: each is parsed once, then reused.
    let parsed = parsed(&request.query);
    if let (Some(caller), Some(viewer)) = (&caller, parsed.as_ref().and_then(|p| p.viewer.as_ref()))
        && request.variables.is_empty()
        && (request.operation_name.is_none() || request.operation_name == viewer.operation)
        && let Some(body) = fast::answer(&state, caller, viewer).await
    {
        state.metrics.graphql_fast_viewer.inc();
        return (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response();
    }
    let root_fields = parsed
        .as_deref()
        .map(|p| root_fields(&p.document, &request))
        .unwrap_or_default();
    if let Some(parsed) = parsed {
        request.set_parsed_query(ExecutableDocument::clone(&parsed.document));
    }
    let context = GqlContext {
        state,
        caller,
        source,
        old_sdk: is_old_sdk(&headers),
    };
    let mut response = schema.execute(request.data(context)).await;
    // Errors from resolvers carry a path; parse and validation errors (unknown fields,
    // too deep, too costly) do not, and nothing was executed.
    let executed = response.errors.iter().all(|e| !e.path.is_empty());
    if executed && response.data == async_graphql::Value::Null && !root_fields.is_empty() {
        // A failed root field nulls the whole `data`; W&B answers one null per
        // requested field, `"data": {"viewer": null}`, and the SDKs read it so.
        let nulls = root_fields
            .into_iter()
            .map(|f| (async_graphql::Name::new(f), async_graphql::Value::Null))
            .collect();
        response.data = async_graphql::Value::Object(nulls);
    }
    let status = if response.errors.is_empty() {
        StatusCode::OK
    } else if !authenticated {
        StatusCode::UNAUTHORIZED
    } else if !executed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut out = (status, Json(response)).into_response();
    out.headers_mut()
        .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    out
}

/// Documents parsed before, by their text. The wandb SDKs send the same few documents
/// on every call, and parsing is most of the work of a small query; a bounded map, so
/// that a client sending endless distinct documents only costs parsing.
const MAX_PARSED: usize = 256;
const MAX_PARSED_LEN: usize = 16 * 1024;

/// A parsed document, and what the viewer fast lane makes of it.
struct Parsed {
    document: ExecutableDocument,
    viewer: Option<fast::ViewerQuery>,
}

fn parsed(query: &str) -> Option<Arc<Parsed>> {
    static PARSED: OnceLock<RwLock<HashMap<String, Arc<Parsed>>>> = OnceLock::new();
    let cache = PARSED.get_or_init(Default::default);
    if let Some(document) = cache.read().unwrap_or_else(|p| p.into_inner()).get(query) {
        return Some(document.clone());
    }
    let document = async_graphql::parser::parse_query(query).ok()?;
    let viewer = fast::recognize(&document);
    let document = Arc::new(Parsed { document, viewer });
    if query.len() <= MAX_PARSED_LEN {
        let mut cache = cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() < MAX_PARSED {
            cache.insert(query.to_owned(), document.clone());
        }
    }
    Some(document)
}

/// The response keys (aliases or names) of the root fields of the operation a request
/// runs.
fn root_fields(document: &ExecutableDocument, request: &async_graphql::Request) -> Vec<String> {
    use async_graphql::parser::types::{DocumentOperations, Selection};
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    let Some(operation) = operation else { return Vec::new() };
    operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|item| match &item.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.to_string();
                (!key.starts_with("__")).then_some(key)
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn old_sdks_are_told_apart_by_their_user_agent() {
        let ua = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::USER_AGENT, HeaderValue::from_str(v).unwrap());
            is_old_sdk(&h)
        };
        assert!(ua("W&B Internal Client 0.21.0"));
        assert!(ua("W&B Public Client 0.22.2"));
        assert!(!ua("W&B Internal Client 0.22.3"));
        assert!(!ua("W&B Public Client 0.31.0"));
        assert!(!ua("wandb-core"));
        assert!(!ua("curl/8.0"));
    }

    #[test]
    fn the_schema_has_the_fields_the_sdks_probe_for() {
        let sdl = schema().sdl();
        for needle in [
            "viewer: User",
            "serverInfo: ServerInfo",
            "generateApiKey(",
            "deleteApiKey(",
            "scalar JSONString",
        ] {
            assert!(sdl.contains(needle), "{needle} missing from\n{sdl}");
        }
    }
}
