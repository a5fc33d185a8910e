//! Reading the audit log (org admins).

use crate::access::Authorized;
use crate::error::{ApiError, ErrorBody};
use crate::path::ApiPath;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::Json;
use axum::extract::{RawQuery, State};
use keysmith_app::audit_log::{self, Filter};
use keysmith_store::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub(crate) at: String,
    /// Who did it (a username, or `system`).
    pub(crate) actor: String,
    /// For example `api_key.created`, `user.deactivated`, `team.member_set`.
    pub(crate) action: String,
    pub(crate) target_kind: String,
    /// A key ID, user, team or service account name.
    pub(crate) target: String,
    pub(crate) source_address: Option<String>,
    pub(crate) detail: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub(crate) items: Vec<AuditEntryView>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    pub(crate) action: Option<String>,
    /// A username.
    pub(crate) actor: Option<String>,
    pub(crate) target: Option<String>,
    /// RFC 3339; entries at or after.
    pub(crate) since: Option<String>,
    /// RFC 3339; entries before.
    pub(crate) until: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
    pub(crate) cursor: Option<String>,
}

fn time_param(name: &str, value: &str) -> Result<i64, ApiError> {
    keysmith_app::time::parse_rfc3339(value)
        .ok_or_else(|| ApiError::InvalidQuery(format!("{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z")))
}

/// The organization's audit log, newest first (org admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "audit",
    params(("org" = String, Path, description = "Organization name"), AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    let params: AuditParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(format!("bad query parameters: {e}")))?;
    let filter = Filter {
        since: params.since.as_deref().map(|v| time_param("since", v)).transpose()?,
        until: params.until.as_deref().map(|v| time_param("until", v)).transpose()?,
        action: params.action,
        actor: params.actor,
        target: params.target,
        limit: params.limit,
        cursor: params.cursor,
    };
    let page = audit_log::list(&state.app, &caller, &org, filter).await?;
    Ok(Json(AuditPage {
        items: page.entries.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub(crate) fn view(e: AuditEntry) -> AuditEntryView {
    AuditEntryView {
        at: rfc3339(e.at),
        actor: e.actor_name,
        action: e.action,
        target_kind: e.target_kind,
        target: e.target,
        source_address: e.source_address,
        detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Resume after this entry ID: the `Keysmith-Next-After` header of the answer
    /// before (default 0, the beginning).
    #[param(minimum = 0)]
    pub(crate) after: Option<i64>,
    /// RFC 3339: start at the first entry written at or after this time, instead of
    /// after an ID (not with `after`); resume with the header as usual.
    pub(crate) since: Option<String>,
    /// Entries read at most, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<u32>,
}

/// An entry as one line of an export (the API's and `keysmith admin audit-export`'s),
/// without the line ending.
pub fn export_line(entry: AuditEntry, organization: &str) -> String {
    let line = ExportLine {
        id: entry.id,
        organization: organization.to_owned(),
        chain: entry.chain_hash.clone(),
        entry: view(entry),
    };
    // Strings, numbers and parsed JSON only: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

/// One line of an export: an entry with its stable ID.
#[derive(Debug, Serialize)]
struct ExportLine {
    id: i64,
    organization: String,
    /// Its hash in the audit chain (`keysmith admin audit verify`).
    chain: Option<String>,
    #[serde(flatten)]
    entry: AuditEntryView,
}

/// The organization's audit log as JSON lines, oldest first, for a SIEM (org admins).
/// Each line is one entry with its stable `id` and its hash in the audit chain
/// (`chain`); start at a time with `since`, resume with `after` set to the
/// `Keysmith-Next-After` header, which never skips or repeats an entry. An empty body
/// with the same cursor means there is nothing newer yet.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export", tag = "audit",
    params(("org" = String, Path, description = "Organization name"), ExportParams),
    responses(
        (status = 200, description = "JSON lines, one entry each", content_type = "application/x-ndjson", body = String,
            headers(("Keysmith-Next-After" = i64, description = "The `after` to resume with"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("bearer" = []), ("session" = [])))]
pub async fn export_audit(
    State(state): State<AppState>,
    Authorized(caller): Authorized,
    ApiPath(org): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let params: ExportParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(format!("bad query parameters: {e}")))?;
    let start = match (params.after, params.since.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidQuery(
                "give `after` to resume or `since` to start at a time, not both".into(),
            ));
        }
        (_, Some(since)) => audit_log::Start::Since(time_param("since", since)?),
        (after, None) => audit_log::Start::After(after.unwrap_or(0)),
    };
    let export = audit_log::export(
        &state.app,
        &caller,
        &org,
        start,
        params.limit.unwrap_or(audit_log::EXPORT_LIMIT),
    )
    .await?;
    let mut body = String::new();
    for e in export.entries {
        body.push_str(&export_line(e, &org));
        body.push('\n');
    }
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                axum::http::header::HeaderName::from_static("keysmith-next-after"),
                export.next_after.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
