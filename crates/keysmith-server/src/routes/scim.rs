//! The SCIM 2.0 door (RFC 7644): `/scim/v2/…`, and W&B's `/scim/…` with the same
//! handlers. It parses, calls `keysmith_app::scim`, and renders SCIM's JSON
//! (`application/scim+json`), mapping every refusal to SCIM's error shape in one place
//! ([`Failure`]), an unknown path and a wrong method included.
//!
//! Only API keys authenticate here (Bearer, Basic with the key as the password, or
//! `X-API-Key`); a browser's session cookie is not a SCIM client.

use crate::auth::presented_key_principal;
use crate::auth::source::AddressText;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keysmith_app::scim::{self, Base, Change, Kind, ScimClient, ScimError, ScimType, discovery};
use keysmith_app::{AppError, Caller};
use serde_json::{Value, json};

/// The two bases: RFC 7644's versioned one and W&B's.
pub const BASES: [&str; 2] = ["/scim/v2", "/scim"];

const SCIM_JSON: &str = "application/scim+json";

pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for base in BASES {
        router = router.nest(base, scim_routes());
    }
    router
}

fn scim_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .route("/ResourceTypes", get(resource_types).fallback(method_not_allowed))
        .route("/ResourceTypes/{id}", get(resource_type).fallback(method_not_allowed))
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route("/Schemas/{id}", get(schema).fallback(method_not_allowed))
        .route(
            "/.search",
            post(|call: ScimCall, body: Bytes| search(call, vec![Kind::User, Kind::Group], body)),
        )
        .merge(resource_routes(Kind::User))
        .merge(resource_routes(Kind::Group))
        .fallback(|| async { Failure::not_found("no SCIM resource or endpoint at this path") })
        .method_not_allowed_fallback(method_not_allowed)
}

fn resource_routes(kind: Kind) -> Router<AppState> {
    let endpoint = format!("/{}", kind.endpoint());
    Router::new()
        .route(
            &endpoint,
            get(move |call: ScimCall, q: RawQuery| list(call, kind, q))
                .post(move |call: ScimCall, body: Bytes| create(call, kind, body))
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{endpoint}/.search"),
            post(move |call: ScimCall, body: Bytes| search(call, vec![kind], body)).fallback(method_not_allowed),
        )
        .route(
            &format!("{endpoint}/{{id}}"),
            get(move |call: ScimCall, id: Path<String>, q: RawQuery| show(call, kind, id, q))
                .put(
                    move |call: ScimCall, id: Path<String>, headers: HeaderMap, q: RawQuery, body: Bytes| {
                        write(call, kind, Change::Replace, id, headers, q, body)
                    },
                )
                .patch(
                    move |call: ScimCall, id: Path<String>, headers: HeaderMap, q: RawQuery, body: Bytes| {
                        write(call, kind, Change::Patch, id, headers, q, body)
                    },
                )
                .delete(move |call: ScimCall, id: Path<String>, headers: HeaderMap| delete(call, kind, id, headers))
                .fallback(method_not_allowed),
        )
}

async fn method_not_allowed() -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this method is not allowed here".into(),
    )
}

// ------------------------------------------------------------------ who calls

/// An authenticated SCIM request: the client, the base URL it reached, its address.
pub(crate) struct ScimCall {
    state: AppState,
    client: ScimClient,
    base: Base,
    source: String,
}

impl ScimCall {
    /// The application's view of this request.
    fn scim(&self) -> scim::Call<'_> {
        scim::Call::new(&self.state.app, &self.client, &self.base, &self.source)
    }
}

impl FromRequestParts<AppState> for ScimCall {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        // Keys only: a browser's session cookie is not a SCIM client.
        let Some(principal) = presented_key_principal(parts, state).await? else {
            return Err(ApiError::Unauthenticated.into());
        };
        let caller = Caller::load(&state.app, principal).await.map_err(ApiError::from)?;
        let address = AddressText::of(&state.trusted_proxies, &parts.extensions, &parts.headers);
        let client = scim::client(&state.app, caller).await?;
        // Nesting strips the base from the URI; the original keeps it.
        let original = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |o| &o.0);
        let path = original.path();
        let base_path = if path.starts_with("/scim/v2/") || path == "/scim/v2" {
            BASES[0]
        } else {
            BASES[1]
        };
        let origin = crate::web::origin(state, &parts.uri, &parts.headers).unwrap_or_default();
        Ok(Self {
            state: state.clone(),
            client,
            base: Base(format!("{origin}{base_path}")),
            source: address.as_str().to_owned(),
        })
    }
}

// ------------------------------------------------------------------ discovery

async fn service_provider_config(call: ScimCall) -> Response {
    scim_json(StatusCode::OK, discovery::service_provider_config(&call.base))
}

async fn resource_types(call: ScimCall) -> Response {
    list_response(discovery::resource_types(&call.base), 1, usize::MAX)
}

async fn resource_type(call: ScimCall, Path(id): Path<String>) -> Result<Response, Failure> {
    one_of(
        discovery::resource_types(&call.base),
        &id,
        "no resource type with this id",
    )
}

async fn schemas(call: ScimCall) -> Response {
    list_response(discovery::schemas(&call.base), 1, usize::MAX)
}

async fn schema(call: ScimCall, Path(id): Path<String>) -> Result<Response, Failure> {
    one_of(discovery::schemas(&call.base), &id, "no schema with this id")
}

/// The discovery document of `documents` whose `id` is `id`.
fn one_of(documents: Vec<Value>, id: &str, missing: &str) -> Result<Response, Failure> {
    documents
        .into_iter()
        .find(|d| d["id"].as_str() == Some(id))
        .map(|d| scim_json(StatusCode::OK, d))
        .ok_or_else(|| Failure::not_found(missing))
}

// ------------------------------------------------------------------ resources

/// A listing's parameters (RFC 7644 §3.4.2), from the query or a SearchRequest.
#[derive(Debug, Default)]
struct Listing {
    filter: Option<String>,
    start_index: usize,
    count: usize,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A positive integer as SCIM's paging sends it; below 1 counts as 1 for
/// `startIndex` and as 0 for `count` (RFC 7644 §3.4.2.4).
fn number(name: &str, text: &str) -> Result<i64, Failure> {
    text.trim().parse::<i64>().map_err(|_| {
        Failure::bad(
            ScimType::InvalidValue,
            format!("`{name}` must be an integer, not `{text}`"),
        )
    })
}

impl Listing {
    fn from_query(query: Option<&str>) -> Result<Self, Failure> {
        let mut listing = Self {
            start_index: 1,
            count: scim::MAX_RESULTS,
            ..Self::default()
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            listing.set(&name, Value::String(value.into_owned()))?;
        }
        Ok(listing)
    }

    fn from_search(body: &Value) -> Result<Self, Failure> {
        let mut listing = Self {
            start_index: 1,
            count: scim::MAX_RESULTS,
            ..Self::default()
        };
        let Value::Object(fields) = body else {
            return Err(Failure::bad(
                ScimType::InvalidSyntax,
                "a search body must be a SearchRequest object".into(),
            ));
        };
        for (name, value) in fields {
            if name != "schemas" {
                listing.set(name, value.clone())?;
            }
        }
        Ok(listing)
    }

    fn set(&mut self, name: &str, value: Value) -> Result<(), Failure> {
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        };
        match name.to_ascii_lowercase().as_str() {
            "filter" => self.filter = Some(text),
            "startindex" => self.start_index = number(name, &text)?.max(1) as usize,
            "count" => self.count = (number(name, &text)?.max(0) as usize).min(scim::MAX_RESULTS),
            "attributes" => self.attributes = names(&text),
            "excludedattributes" => self.excluded = names(&text),
            // Sorting is not offered (ServiceProviderConfig says so): ignored.
            _ => {}
        }
        Ok(())
    }

    fn answer(&self, resources: Vec<Value>) -> Response {
        let mut resources = resources;
        for r in &mut resources {
            scim::project(r, &self.attributes, &self.excluded);
        }
        list_response(resources, self.start_index, self.count)
    }
}

async fn list(call: ScimCall, kind: Kind, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let listing = Listing::from_query(query.as_deref())?;
    let found = scim::list(&call.scim(), &[kind], listing.filter.as_deref()).await?;
    Ok(listing.answer(found))
}

async fn search(call: ScimCall, kinds: Vec<Kind>, body: Bytes) -> Result<Response, Failure> {
    let listing = Listing::from_search(&json_body(&body)?)?;
    let found = scim::list(&call.scim(), &kinds, listing.filter.as_deref()).await?;
    Ok(listing.answer(found))
}

async fn show(
    call: ScimCall,
    kind: Kind,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Failure> {
    let listing = Listing::from_query(query.as_deref())?;
    let mut resource = scim::get(&call.scim(), kind, &id).await?;
    let version = resource_headers(&resource);
    scim::project(&mut resource, &listing.attributes, &listing.excluded);
    Ok(with_headers(scim_json(StatusCode::OK, resource), version))
}

async fn create(call: ScimCall, kind: Kind, body: Bytes) -> Result<Response, Failure> {
    let body = json_body(&body)?;
    let resource = scim::create(&call.scim(), kind, &body).await?;
    let headers = resource_headers(&resource);
    let mut response = with_headers(scim_json(StatusCode::CREATED, resource), headers.clone());
    if let Some(location) = headers.0.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn write(
    call: ScimCall,
    kind: Kind,
    how: Change,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Failure> {
    let listing = Listing::from_query(query.as_deref())?;
    let body = json_body(&body)?;
    let if_match = if_match(&headers)?;
    let mut resource = scim::change(&call.scim(), kind, &id, how, &body, if_match).await?;
    let version = resource_headers(&resource);
    scim::project(&mut resource, &listing.attributes, &listing.excluded);
    Ok(with_headers(scim_json(StatusCode::OK, resource), version))
}

async fn delete(call: ScimCall, kind: Kind, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Failure> {
    let if_match = if_match(&headers)?;
    scim::delete(&call.scim(), kind, &id, if_match).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn if_match(headers: &HeaderMap) -> Result<Option<&str>, Failure> {
    headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map_err(|_| Failure::bad(ScimType::InvalidSyntax, "If-Match is not ASCII".into()))
        })
        .transpose()
}

fn json_body(body: &Bytes) -> Result<Value, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::bad(ScimType::InvalidSyntax, format!("the body is not JSON: {e}")))
}

/// A resource's location and version, for its `Location` and `ETag` headers.
#[derive(Clone)]
struct ResourceHeaders(Option<String>, Option<String>);

fn resource_headers(resource: &Value) -> ResourceHeaders {
    let meta = |field: &str| resource.get("meta")?.get(field)?.as_str().map(str::to_owned);
    ResourceHeaders(meta("location"), meta("version"))
}

fn with_headers(mut response: Response, headers: ResourceHeaders) -> Response {
    if let Some(etag) = headers.1.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// A ListResponse of the page starting at `start` (1-based) with at most `count`.
fn list_response(resources: Vec<Value>, start: usize, count: usize) -> Response {
    let total = resources.len();
    let page: Vec<Value> = resources.into_iter().skip(start - 1).take(count).collect();
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [scim::LIST_RESPONSE],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

// ------------------------------------------------------------------ errors

/// A refusal in SCIM's error shape (RFC 7644 §3.12), with the same status.
pub(crate) struct Failure {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
    retry_after: Option<u64>,
}

impl Failure {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: String) -> Self {
        Self {
            status,
            scim_type,
            detail,
            retry_after: None,
        }
    }

    fn not_found(detail: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, crate::error::sentence(detail))
    }

    /// 400 with its scimType; 409 for `uniqueness` (RFC 7644 §3.12).
    fn bad(scim_type: ScimType, detail: String) -> Self {
        let status = match scim_type {
            ScimType::Uniqueness => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, Some(scim_type.as_str()), crate::error::sentence(&detail))
    }
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        let status = err.status();
        if let ApiError::Internal(detail) = &err {
            // The one place a SCIM request's internal failure is logged.
            tracing::error!(error.detail = %detail, "SCIM request failed");
        }
        let scim_type = match &err {
            ApiError::AlreadyExists(_) => Some("uniqueness"),
            ApiError::InvalidValue(_) | ApiError::InvalidName(_) => Some("invalidValue"),
            ApiError::InvalidQuery(_) => Some("invalidFilter"),
            _ => None,
        };
        let retry_after = match &err {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        Self {
            status,
            scim_type,
            detail: err.message(),
            retry_after,
        }
    }
}

impl From<AppError> for Failure {
    fn from(err: AppError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<ScimError> for Failure {
    fn from(err: ScimError) -> Self {
        match err {
            ScimError::App(e) => e.into(),
            ScimError::Bad { scim_type, detail } => Self::bad(scim_type, detail),
            ScimError::PreconditionFailed => Self::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                crate::error::sentence(&ScimError::PreconditionFailed.to_string()),
            ),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [discovery::ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = Value::from(scim_type);
        }
        let mut response = scim_json(self.status, body);
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keysmith\""),
            );
        }
        if let Some(v) = self
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}
