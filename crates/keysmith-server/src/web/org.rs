//! The organization admin's pages: every key of the organization with filters, the
//! audit log, users, teams and the organization's settings.

use super::keys::{key_table, list, next_page, row_action};
use super::{
    Fields, Icon, WebPath, WebUser, failure, icon, notice, page, q, respond, reveal, see_other, when_rfc, with_notice,
};
use crate::access;
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::routes::teams::TeamView;
use crate::routes::users::UserView;
use crate::routes::{self, audit_log::view as audit_view, webhooks::WebhookView};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use keysmith_store::{Org, OrgSettings};
use maud::{Markup, html};
use serde::Deserialize;

use keysmith_app::audit_log::{self, Filter};
use keysmith_app::input::{self, Email};
use keysmith_app::keys;
use keysmith_app::time::DAY_MS;
use keysmith_app::users::{self, NewUserRequest, UserChange};
use keysmith_app::webhooks::{self, NewEndpoint, WithSecret};
use keysmith_app::{Acting, AppError, orgs, teams};
use keysmith_core::SecretString;
use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_store::KeySort;

/// Query parameters as a query string.
fn encode(pairs: &[(&str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// The organization, if the signed-in user administers it: a member who does not
/// sees "not allowed"; anyone else "not found".
async fn admin_org(state: &AppState, user: &WebUser, name: &str) -> Result<Org, Response> {
    let org = access::member_org(state, &user.caller, name)
        .await
        .map_err(|e| failure(Some(user), e))?;
    if !user.caller.roles.is_org_admin(org.id) {
        return Err(failure(
            Some(user),
            ApiError::Forbidden("only organization admins can see this page"),
        ));
    }
    Ok(org)
}

pub(crate) fn org_nav(org: &str, current: &str) -> Markup {
    let tabs = [
        ("keys", "API keys"),
        ("key-report", "Key report"),
        ("audit-log", "Audit log"),
        ("users", "Users"),
        ("teams", "Teams"),
        ("webhooks", "Webhooks"),
        ("federation", "Federation"),
        ("sso", "Single sign-on"),
        ("settings", "Settings"),
    ];
    html! {
        nav.tabs aria-label={ "Organization " (org) } {
            ul {
                @for (path, label) in tabs {
                    li {
                        a href={ "/org/" (q(org)) "/" (path) } aria-current=[(path == current).then_some("page")] { (label) }
                    }
                }
            }
        }
    }
}

pub(crate) fn org_page(user: &WebUser, org: &str, current: &str, title: &str, body: Markup) -> Response {
    let full = format!("{title} · {org}");
    respond(
        StatusCode::OK,
        page(
            Some(user),
            &full,
            html! {
                p.crumb { "Organization " strong { (org) } }
                h1 { (title) }
                (org_nav(org, current))
                (body)
            },
        ),
    )
}

#[derive(Deserialize, Default)]
pub struct KeyFilters {
    owner: Option<String>,
    team: Option<String>,
    kind: Option<String>,
    last_used: Option<String>,
    name: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Every key of the organization, filtered by owner, team, kind and last use.
/// The organization's key list as the filter bar asks for it (50 a page).
fn key_list_request(org: &str, f: &KeyFilters, now: i64) -> Result<keys::ListRequest, ApiError> {
    let owner_kind = match nonempty(&f.kind) {
        None => None,
        Some(kind) => Some(
            PrincipalKind::parse(kind)
                .ok_or_else(|| ApiError::InvalidQuery("owner_kind must be `user` or `service_account`".into()))?,
        ),
    };
    let sort = match nonempty(&f.sort) {
        None | Some("created") => KeySort::Created,
        Some("last_used") => KeySort::LastUsed,
        Some(_) => return Err(ApiError::InvalidQuery("sort must be `created` or `last_used`".into())),
    };
    let (mut after, mut before) = (None, None);
    match nonempty(&f.last_used) {
        Some("7d") => after = Some(now - 7 * DAY_MS),
        Some("30d") => after = Some(now - 30 * DAY_MS),
        Some("stale30") => before = Some(now - 30 * DAY_MS),
        Some("stale90") => before = Some(now - 90 * DAY_MS),
        _ => {}
    }
    Ok(keys::ListRequest {
        filter: keys::ListFilter {
            owner: nonempty(&f.owner).map(str::to_owned),
            owner_kind,
            org: Some(org.to_owned()),
            team: nonempty(&f.team).map(str::to_owned),
            name_contains: nonempty(&f.name).map(str::to_owned),
            last_used_before: before,
            last_used_after: after,
            expiring_within_days: None,
        },
        sort,
        cursor: nonempty(&f.cursor).map(str::to_owned),
        limit: Some(50),
    })
}

pub async fn keys(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(f): Query<KeyFilters>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    let teams = match teams::list(&state.app, &user.caller, &org.name).await {
        Ok(t) => t,
        Err(e) => return failure(Some(&user), e.into()),
    };
    // The filters as the page's own query (for links) and as the application's list.
    let mut shown: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("owner", &f.owner),
        ("team", &f.team),
        ("kind", &f.kind),
        ("name", &f.name),
        ("sort", &f.sort),
        ("last_used", &f.last_used),
    ] {
        if let Some(v) = nonempty(value) {
            shown.push((name, v.to_owned()));
        }
    }
    let request = match key_list_request(&org.name, &f, state.now()) {
        Ok(request) => request,
        Err(e) => return failure(Some(&user), e),
    };
    let here = format!("/org/{}/keys?{}", q(&org.name), encode(&shown));
    let keys = match list(&state, &user, request).await {
        Ok(keys) => keys,
        Err(e) => return failure(Some(&user), e),
    };
    let selected = |v: &Option<String>, want: &str| nonempty(v) == Some(want);
    let body = html! {
        (notice(f.done.as_deref()))
        form.filters method="get" action={ "/org/" (q(&org.name)) "/keys" } {
            div.field {
                label for="f-owner" { "Owner" }
                input #f-owner name="owner" value=(nonempty(&f.owner).unwrap_or("")) placeholder="username";
            }
            div.field {
                label for="f-team" { "Team" }
                select #f-team name="team" {
                    option value="" { "Any team" }
                    @for t in &teams {
                        option value=(t.name) selected[selected(&f.team, &t.name)] { (t.name) }
                    }
                }
            }
            div.field {
                label for="f-kind" { "Kind" }
                select #f-kind name="kind" {
                    option value="" { "Any kind" }
                    option value="user" selected[selected(&f.kind, "user")] { "Users" }
                    option value="service_account" selected[selected(&f.kind, "service_account")] { "Service accounts" }
                }
            }
            div.field {
                label for="f-last-used" { "Last used" }
                select #f-last-used name="last_used" {
                    option value="" { "Any time" }
                    option value="7d" selected[selected(&f.last_used, "7d")] { "In the last 7 days" }
                    option value="30d" selected[selected(&f.last_used, "30d")] { "In the last 30 days" }
                    option value="stale30" selected[selected(&f.last_used, "stale30")] { "Not in 30 days" }
                    option value="stale90" selected[selected(&f.last_used, "stale90")] { "Not in 90 days" }
                }
            }
            div.field {
                label for="f-name" { "Name contains" }
                input #f-name name="name" value=(nonempty(&f.name).unwrap_or(""));
            }
            div.field {
                label for="f-sort" { "Sort by" }
                select #f-sort name="sort" {
                    option value="created" { "Newest" }
                    option value="last_used" selected[selected(&f.sort, "last_used")] { "Recently used" }
                }
            }
            div.buttons {
                button type="submit" { "Apply filters" }
                a.button.secondary href={ "/org/" (q(&org.name)) "/keys" } { "Clear" }
            }
        }
        (key_table(&user, &keys.items, &here, true, html! { "No keys match these filters." }))
        (next_page(&here, keys.next_cursor.as_deref()))
    };
    org_page(&user, &org.name, "keys", "API keys", body)
}

/// The key report: keys never used, idle, expiring soon and over-privileged, each
/// with what to do about them, in the organization's key table (select and delete,
/// rotate, rename).
pub async fn key_report(State(state): State<AppState>, user: WebUser, WebPath(org_name): WebPath<String>) -> Response {
    let report = match keys::report(&state.app, &user.caller, &org_name).await {
        Ok(report) => report,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let view = routes::orgs::KeyReportView::new(report, &state);
    let here = format!("/org/{}/key-report", q(&view.organization));
    let settings = format!("/org/{}/settings", q(&view.organization));
    let sections = [
        (
            format!("Never used ({})", view.never_used.items.len()),
            html! { "Made " (view.never_used_days) " or more days ago and never used. If nothing needs them, delete them." },
            &view.never_used,
        ),
        (
            format!("Idle ({})", view.idle.items.len()),
            html! {
                "Not used for " (view.idle_days) " days (set the period under "
                a href=(settings) { "Settings" } "). A key nobody uses can only leak."
            },
            &view.idle,
        ),
        (
            format!("Expiring soon ({})", view.expiring.items.len()),
            html! { "Expire within " (view.expiring_within_days) " days. Rotate the ones still in use before they stop working." },
            &view.expiring,
        ),
        (
            format!("Over-privileged ({})", view.over_privileged.items.len()),
            html! {
                "Write or admin keys whose requests for " (view.reads_only_days) " days only read. "
                "A read key would do: create one with the scope " strong { "Read only" } ", then delete the old key."
            },
            &view.over_privileged,
        ),
    ];
    let body = html! {
        p.hint { "Keys of the organization's members and service accounts that still work, as of " (super::when_rfc(&view.generated_at)) "." }
        @for (title, hint, section) in &sections {
            section.report {
                h2 { (title) @if section.truncated { "+" } }
                p.hint { (hint) }
                (key_table(&user, &section.items, &here, true, html! { "None." }))
            }
        }
    };
    org_page(&user, &view.organization, "key-report", "Key report", body)
}

#[derive(Deserialize, Default)]
pub struct AuditFilters {
    action: Option<String>,
    actor: Option<String>,
    cursor: Option<String>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(f): Query<AuditFilters>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    let mut shown = Vec::new();
    for (name, value) in [("action", &f.action), ("actor", &f.actor)] {
        if let Some(v) = nonempty(value) {
            shown.push((name, v.to_owned()));
        }
    }
    let filter = Filter {
        action: nonempty(&f.action).map(str::to_owned),
        actor: nonempty(&f.actor).map(str::to_owned),
        cursor: nonempty(&f.cursor).map(str::to_owned),
        ..Filter::default()
    };
    let (items, next_cursor): (Vec<_>, _) = match audit_log::list(&state.app, &user.caller, &org.name, filter).await {
        Ok(page) => (page.entries.into_iter().map(audit_view).collect(), page.next_cursor),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let here = format!("/org/{}/audit-log?{}", q(&org.name), encode(&shown));
    let body = html! {
        form.filters method="get" action={ "/org/" (q(&org.name)) "/audit-log" } {
            div.field {
                label for="a-action" { "Action" }
                input #a-action name="action" value=(nonempty(&f.action).unwrap_or("")) placeholder="api_key.deleted";
            }
            div.field {
                label for="a-actor" { "Actor" }
                input #a-actor name="actor" value=(nonempty(&f.actor).unwrap_or("")) placeholder="username";
            }
            div.buttons {
                button type="submit" { "Apply filters" }
                a.button.secondary href={ "/org/" (q(&org.name)) "/audit-log" } { "Clear" }
            }
        }
        @if items.is_empty() {
            p.empty { "No audit entries match." }
        } @else {
            div.table-wrap {
                table.cards.audit {
                    thead { tr {
                        th.col-time scope="col" { "Time" } th.col-actor scope="col" { "Actor" }
                        th.col-action scope="col" { "Action" } th.col-target scope="col" { "Target" }
                        th.col-source scope="col" { "Source" } th scope="col" { "Details" }
                    } }
                    tbody {
                        @for e in &items {
                            tr {
                                td.nowrap.primary data-label="Time" { (when_rfc(&e.at)) }
                                td data-label="Actor" { span.truncate.short title=(e.actor) { (e.actor) } }
                                td data-label="Action" { code.truncate title=(e.action) { (e.action) } }
                                td.fill data-label="Target" {
                                    span.target {
                                        span.tag { (e.target_kind) }
                                        code.truncate title=(e.target) { (e.target) }
                                    }
                                }
                                td data-label="Source" {
                                    @let address = e.source_address.as_deref().unwrap_or("");
                                    span.truncate title=(address) { (address) }
                                }
                                td.details data-label="Details" { @if let Some(d) = &e.detail { (detail(d)) } }
                            }
                        }
                    }
                }
            }
        }
        (next_page(&here, next_cursor.as_deref()))
    };
    org_page(&user, &org.name, "audit-log", "Audit log", body)
}

/// An audit entry's details as `name: value` pairs, each kept whole on a line while
/// it fits; the cell wraps between pairs (and inside a value too long for a line).
fn detail(value: &serde_json::Value) -> Markup {
    let Some(fields) = value.as_object() else {
        return html! { span.pair { (value.to_string()) } };
    };
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".to_owned(),
        other => other.to_string(),
    };
    let last = fields.len().saturating_sub(1);
    html! {
        @for (i, (k, v)) in fields.iter().enumerate() {
            span.pair { span.key { (k) ":" } " " (shown(v)) @if i < last { "," } }
            @if i < last { " " }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Done {
    pub(crate) done: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    let body = html! {
        (notice(done.done.as_deref()))
        form.stack method="post" action={ "/org/" (q(&org.name)) "/settings" } {
            input type="hidden" name="csrf" value=(user.csrf);
            div.check {
                input #key-creation-disabled type="checkbox" name="key_creation_disabled"
                    checked[org.key_creation_disabled] aria-describedby="kcd-hint";
                label for="key-creation-disabled" { "Disable API key creation" }
                p.hint #kcd-hint {
                    "Users and team service accounts cannot create keys. Existing keys keep working and can "
                    "still be renamed and deleted."
                }
            }
            div.check {
                input #legacy-keys-allowed type="checkbox" name="legacy_keys_allowed"
                    checked[org.legacy_keys_allowed] aria-describedby="lka-hint";
                label for="legacy-keys-allowed" { "Allow legacy-format keys" }
                p.hint #lka-hint {
                    "Members may create 40-character keys for wandb SDKs older than 0.22.3, which refuse the "
                    "new 86-character keys."
                }
            }
            div.check {
                input #sso-required type="checkbox" name="sso_required"
                    checked[org.sso_required] aria-describedby="sso-hint";
                label for="sso-required" { "Require single sign-on" }
                p.hint #sso-hint {
                    "Members sign in through the organization's identity provider, not a password. Admins "
                    "keep their passwords, so a provider that is down cannot lock you out. Keys keep working."
                }
            }
            div.field {
                label for="max-user-days" { "Maximum lifetime of user keys (days)" }
                input.short #max-user-days type="number" min="0" max="3650" name="max_user_key_lifetime_days"
                    value=(org.max_user_key_lifetime_days) aria-describedby="lifetime-hint";
            }
            div.field {
                label for="max-sa-days" { "Maximum lifetime of service account keys (days)" }
                input.short #max-sa-days type="number" min="0" max="3650" name="max_service_account_key_lifetime_days"
                    value=(org.max_service_account_key_lifetime_days) aria-describedby="lifetime-hint";
                p.hint #lifetime-hint {
                    "0 means no limit. New keys expire after at most this long; keys created without an "
                    "expiration get exactly this long. Existing keys keep their expiration."
                }
            }
            div.field {
                label for="allowed-networks" { "Networks keys may be used from" }
                textarea #allowed-networks name="allowed_networks" rows="3" spellcheck="false"
                    placeholder="203.0.113.0/24\n2001:db8::/32" aria-describedby="networks-hint" {
                    (org.allowed_networks.as_deref().unwrap_or_default().replace(',', "\n"))
                }
                p.hint #networks-hint {
                    "One address or CIDR block a line, IPv4 or IPv6. Keys of members and service accounts "
                    "used from anywhere else are refused at once. Leave empty to allow every network."
                }
            }
            div.field {
                label for="unused-days" { "Announce keys unused for (days)" }
                input.short #unused-days type="number" min="0" max="3650" name="unused_key_notice_days"
                    value=(org.unused_key_notice_days) aria-describedby="unused-hint";
                p.hint #unused-hint {
                    "0 means never. A key of a member or service account not used for this long is announced "
                    "once to the organization's webhooks (api_key.unused), so it can be narrowed or deleted."
                }
            }
            div.buttons { button type="submit" { "Save settings" } }
        }
    };
    org_page(&user, &org.name, "settings", "Settings", body)
}

pub async fn save_settings(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(org_name): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let days = |name: &str| -> Result<Option<u32>, ApiError> {
        match fields.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Some(0)),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::InvalidValue("a key lifetime is a whole number of days (0 for no limit)".into())
            }),
        }
    };
    let (user_days, sa_days) = match (
        days("max_user_key_lifetime_days"),
        days("max_service_account_key_lifetime_days"),
    ) {
        (Ok(u), Ok(s)) => (u, s),
        (Err(e), _) | (_, Err(e)) => return failure(Some(&user), e),
    };
    let unused_days = match fields
        .get("unused_key_notice_days")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Some(0),
        Some(v) => match v.parse() {
            Ok(d) => Some(d),
            Err(_) => {
                let e =
                    ApiError::InvalidValue("idle keys are announced after a whole number of days (0 for never)".into());
                return failure(Some(&user), e);
            }
        },
    };
    let settings = OrgSettings {
        key_creation_disabled: Some(fields.checked("key_creation_disabled")),
        legacy_keys_allowed: Some(fields.checked("legacy_keys_allowed")),
        max_user_key_lifetime_days: user_days,
        max_service_account_key_lifetime_days: sa_days,
        sso_required: Some(fields.checked("sso_required")),
        allowed_networks: match fields.networks("allowed_networks") {
            Ok(networks) => Some(networks.map(|n| n.to_string())),
            Err(e) => return failure(Some(&user), e.into()),
        },
        unused_key_notice_days: unused_days,
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match orgs::update_settings(&state.app, &acting, &org_name, settings).await {
        Ok(org) => see_other(&with_notice(&format!("/org/{}/settings", q(&org.name)), "saved")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

async fn users_body(state: &AppState, user: &WebUser, org: &Org, done: Option<&str>) -> Result<Markup, ApiError> {
    let list: Vec<UserView> = users::list(&state.app, &user.caller, &org.name)
        .await?
        .into_iter()
        .map(routes::users::view)
        .collect();
    let base = format!("/org/{}/users", q(&org.name));
    Ok(html! {
        (notice(done))
        div.table-wrap {
            table.cards.users {
                thead { tr {
                    th scope="col" { "Username" } th scope="col" { "Email" } th scope="col" { "Role" }
                    th scope="col" { "Status" } th.actions scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for u in &list {
                        tr {
                            td.primary.fill data-label="Username" { span.truncate title=(u.username) { (u.username) } }
                            td.fill data-label="Email" {
                                @if let Some(email) = &u.email { span.truncate title=(email) { (email) } }
                                @else { span.muted { "None" } }
                            }
                            td data-label="Role" {
                                form.inline method="post" action={ (base) "/" (q(&u.username)) } {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    input type="hidden" name="action" value="role";
                                    label.visually-hidden for={ "role-" (u.username) } { "Role of " (u.username) }
                                    select id={ "role-" (u.username) } name="role" {
                                        option value="member" selected[u.role == "member"] { "Member" }
                                        option value="admin" selected[u.role == "admin"] { "Admin" }
                                    }
                                    button.secondary.small type="submit" { "Save" span.visually-hidden { " role of " (u.username) } }
                                }
                            }
                            td.nowrap data-label="Status" {
                                @if u.active { span.tag.ok { "Active" } } @else { span.tag { "Deactivated" } }
                            }
                            td.actions {
                                form.inline method="post" action={ (base) "/" (q(&u.username)) } {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    @if u.active {
                                        input type="hidden" name="action" value="deactivate";
                                        button.danger.secondary.small type="submit" { "Deactivate" span.visually-hidden { " " (u.username) } }
                                    } @else {
                                        input type="hidden" name="action" value="reactivate";
                                        button.secondary.small type="submit" { "Reactivate" span.visually-hidden { " " (u.username) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form.stack method="post" action=(base) {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="new-username" { "Username" }
                input #new-username name="username" required maxlength="64" autocomplete="off";
            }
            div.field {
                label for="new-email" { "Email (optional)" }
                input #new-email name="email" type="email" autocomplete="off";
            }
            div.field {
                label for="new-role" { "Role" }
                select #new-role name="role" {
                    option value="member" { "Member" }
                    option value="admin" { "Admin" }
                }
            }
            div.field {
                label for="new-password" { "Initial password (optional)" }
                input #new-password name="password" type="password" autocomplete="new-password" aria-describedby="pw-hint";
                p.hint #pw-hint { "At least 12 characters. Leave empty to create an invitation instead; its token is shown once." }
            }
            div.buttons { button type="submit" { "Add user" } }
        }
    })
}

pub async fn users(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    match users_body(&state, &user, &org, done.done.as_deref()).await {
        Ok(body) => org_page(&user, &org.name, "users", "Users", body),
        Err(e) => failure(Some(&user), e),
    }
}

/// This server's address as the browser reached it (`https://keys.example.com`): the
/// configured `public_url`, else the `Host` header (or the request's authority) with the
/// scheme the browser used. `None` when neither names a plausible host.
pub(crate) fn origin(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    // The operator's word first: a proxy may not pass the Host the browser used.
    if let Some(origin) = &state.public_origin {
        return Some(origin.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let plausible =
        !host.is_empty() && host.len() <= 255 && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !plausible {
        return None;
    }
    let scheme = if crate::auth::session::secure_for(state, headers) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// The Users page's "Add a user" form as the application's request.
fn user_request(fields: &Fields) -> Result<NewUserRequest, AppError> {
    let text = |name| fields.get(name).map(str::trim).filter(|s| !s.is_empty());
    Ok(NewUserRequest {
        username: input::entity_name("username", "username", text("username").unwrap_or_default())?,
        email: Email::parse_optional(text("email"))?,
        role: text("role")
            .map(input::org_role)
            .transpose()?
            .unwrap_or(OrgRole::Member),
        password: fields
            .get("password")
            .filter(|p| !p.is_empty())
            .map(|p| SecretString::new(p.to_owned())),
    })
}

pub async fn create_user(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(org_name): WebPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let request = match user_request(&fields) {
        Ok(request) => request,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let invite_url = origin(&state, &uri, &headers).map_or_else(|| "/invite".to_owned(), |o| format!("{o}/invite"));
    let acting = Acting::new(&user.caller, &source, state.now());
    let created = match users::create(&state.app, &acting, &org_name, request).await {
        Ok(created) => created,
        Err(e) => return failure(Some(&user), e.into()),
    };
    // An invitation's token is shown once, here.
    let Some(token) = created.invite_token else {
        return see_other(&with_notice(&format!("/org/{}/users", q(&org_name)), "user-created"));
    };
    let token = token.expose();
    let body = html! {
        p.warning role="alert" { strong { "Copy this invitation token now. It will not be shown again." } }
        (reveal("invite-token", html! { "Invitation token" }, token))
        h2 { "What to send the new user" }
        ol.steps {
            li { "Give them the invitation token above, in a private message." }
            li { "Send them this link: " a.invite-link href="/invite" { (invite_url) } }
            li { "They open the link, paste the token, choose a password, and then sign in with their username and that password." }
        }
        p.hint {
            "The invitation works once, within 7 days. If it expires, an admin issues a new token with "
            code { "keysmith users reinvite" } "."
        }
        div.buttons { a.button href={ "/org/" (q(&org_name)) "/users" } { "Done" } }
    };
    org_page(&user, &org_name, "users", "User invited", body)
}

pub async fn update_user(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath((org_name, username)): WebPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let change = match fields.get("action") {
        Some("role") => match input::org_role(fields.get("role").unwrap_or("")) {
            Ok(role) => UserChange {
                role: Some(role),
                active: None,
            },
            Err(e) => return failure(Some(&user), e.into()),
        },
        Some("deactivate") => UserChange {
            role: None,
            active: Some(false),
        },
        Some("reactivate") => UserChange {
            role: None,
            active: Some(true),
        },
        _ => {
            return failure(
                Some(&user),
                ApiError::InvalidValue("action must be role, deactivate or reactivate".into()),
            );
        }
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match users::update(&state.app, &acting, &org_name, &username, change).await {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/users", q(&org_name)), "user-updated")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

pub async fn teams(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    let list: Vec<TeamView> = match teams::list(&state.app, &user.caller, &org.name).await {
        Ok(list) => list.into_iter().map(routes::teams::view).collect(),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let body = html! {
        (notice(done.done.as_deref()))
        @if list.is_empty() {
            p.empty { "No teams yet." }
        } @else {
            div.table-wrap {
                table.cards {
                    thead { tr { th scope="col" { "Team" } th scope="col" { "Created on" } th scope="col" { "Service accounts" } } }
                    tbody {
                        @for t in &list {
                            tr {
                                td.primary.fill data-label="Team" { span.truncate title=(t.name) { (t.name) } }
                                td.nowrap data-label="Created on" { (when_rfc(&t.created_at)) }
                                td.nowrap data-label="Service accounts" {
                                    a href={ "/" (q(&t.name)) "/service-accounts?org=" (q(&org.name)) } {
                                        "Service accounts" span.visually-hidden { " of " (t.name) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Create a team" }
        form.stack method="post" action={ "/org/" (q(&org.name)) "/teams" } {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="team-name" { "Team name" }
                input #team-name name="name" required maxlength="64" aria-describedby="team-hint";
                p.hint #team-hint { "Letters, digits, dots, dashes and underscores; up to 64 characters." }
            }
            div.buttons { button type="submit" { "Create team" } }
        }
    };
    org_page(&user, &org.name, "teams", "Teams", body)
}

pub async fn create_team(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(org_name): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    let result = match input::entity_name("name", "team name", fields.get("name").unwrap_or("")) {
        Ok(name) => teams::create(&state.app, &acting, &org_name, name, None).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/teams", q(&org_name)), "team-created")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

pub async fn webhooks(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org_name): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let org = match admin_org(&state, &user, &org_name).await {
        Ok(org) => org,
        Err(page) => return page,
    };
    let now = state.now();
    let list: Vec<WebhookView> = match webhooks::list(&state.app, &user.caller, &org.name).await {
        Ok(list) => list.into_iter().map(|w| routes::webhooks::view(w, now)).collect(),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let base = format!("/org/{}/webhooks", q(&org.name));
    let body = html! {
        (notice(done.done.as_deref()))
        p.lead {
            "Keysmith POSTs key events to these endpoints in the Standard Webhooks format, signed with "
            "each endpoint's secret, and retries failed deliveries with backoff. No key is ever sent."
        }
        @if list.is_empty() {
            p.empty { "No webhook endpoints yet." }
        } @else {
            div.table-wrap {
                table.cards.webhooks {
                    thead { tr {
                        th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Created on" }
                        th.actions scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for w in &list {
                            tr {
                                td.primary.fill data-label="URL" {
                                    code.truncate title=(w.url) { (w.url) }
                                    @if !w.description.is_empty() { span.truncate.muted title=(w.description) { (w.description) } }
                                    @if let Some(until) = &w.previous_secret_until {
                                        span.hint { "Signed with the previous secret as well until " (when_rfc(until)) }
                                    }
                                }
                                td.events data-label="Events" { (w.events.join(", ")) }
                                td.nowrap data-label="Created on" { (when_rfc(&w.created_at)) }
                                td.actions {
                                    div.row-actions {
                                        (row_action(&format!("{base}/{}", w.id), Icon::List, "Deliveries", &format!("to {}", w.url), false))
                                        (row_action(&format!("{base}/{}/rotate-secret", w.id), Icon::Rotate, "Rotate signing secret", &format!("of {}", w.url), false))
                                        (super::delete_button(&format!("{base}/{}/delete", w.id), &user.csrf, "Delete", &w.url))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add an endpoint" }
        form.stack method="post" action=(base) {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="hook-url" { "Endpoint URL" }
                input #hook-url name="url" type="url" required placeholder="https://example.com/keysmith-events";
            }
            fieldset.choices {
                legend { "Events" }
                @for event in keysmith_app::Action::EVENTS.map(keysmith_app::Action::as_str) {
                    label { input type="checkbox" name="events" value=(event) checked; " " code { (event) } }
                }
            }
            div.field {
                label for="hook-description" { "Description (optional)" }
                input #hook-description name="description" maxlength="256";
            }
            div.buttons { button type="submit" { "Add endpoint" } }
        }
    };
    org_page(&user, &org.name, "webhooks", "Webhooks", body)
}

pub async fn create_webhook(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(org_name): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let endpoint = NewEndpoint {
        url: fields.get("url").unwrap_or("").to_owned(),
        events: Some(fields.all("events").into_iter().map(str::to_owned).collect()),
        description: fields.get("description").map(str::to_owned),
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    let WithSecret { webhook, secret } = match webhooks::create(&state.app, &acting, &org_name, endpoint).await {
        Ok(created) => created,
        Err(e) => return failure(Some(&user), e.into()),
    };
    // The signing secret is shown once, here.
    let body = html! {
        p.warning role="alert" { strong { "Copy this signing secret now. It will not be shown again." } }
        (reveal(
            "webhook-secret",
            html! { "Signing secret of " (webhook.url) },
            secret.expose(),
        ))
        p {
            "Verify every delivery with it: the " code { "webhook-signature" } " header is "
            code { "v1," } " and the base64 HMAC-SHA256 of " code { "webhook-id.webhook-timestamp.body" }
            ", keyed with the base64-decoded part after " code { "whsec_" } "."
        }
        div.buttons { a.button href={ "/org/" (q(&org_name)) "/webhooks" } { "Done" } }
    };
    org_page(&user, &org_name, "webhooks", "Webhook added", body)
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath((org_name, id)): WebPath<(String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = user.form(&headers, &body) {
        return refused;
    }
    let acting = Acting::new(&user.caller, &source, state.now());
    match webhooks::delete(&state.app, &acting, &org_name, id).await {
        Ok(()) => see_other(&with_notice(
            &format!("/org/{}/webhooks", q(&org_name)),
            "webhook-deleted",
        )),
        Err(e) => failure(Some(&user), e.into()),
    }
}

/// The confirmation before an endpoint's signing secret is rotated.
pub async fn rotate_webhook_secret_form(
    State(state): State<AppState>,
    user: WebUser,
    WebPath((org_name, id)): WebPath<(String, i64)>,
) -> Response {
    let webhook = match webhooks::get(&state.app, &user.caller, &org_name, id).await {
        Ok(webhook) => routes::webhooks::view(webhook, state.now()),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let base = format!("/org/{}/webhooks", q(&org_name));
    let body = html! {
        p.lead {
            "Rotation creates a new signing secret and shows it once. For 24 hours every delivery carries "
            "two signatures, one made with the new secret and one with the current secret, so the receiver "
            "keeps accepting deliveries while you switch it to the new secret; then only the new secret signs."
        }
        @if webhook.previous_secret_until.is_some() {
            p.warning role="alert" {
                "This endpoint's secret was rotated less than 24 hours ago. Rotating again stops the secret "
                "before the current one at once."
            }
        }
        dl.props.panel {
            dt { "Endpoint" } dd { code { (webhook.url) } }
            @if !webhook.description.is_empty() { dt { "Description" } dd { (webhook.description) } }
            dt { "Secret last rotated" } dd {
                @match &webhook.secret_rotated_at { Some(t) => (when_rfc(t)), None => "Never" }
            }
        }
        form.stack method="post" action={ (base) "/" (webhook.id) "/rotate-secret" } {
            input type="hidden" name="csrf" value=(user.csrf);
            div.buttons {
                button type="submit" { (icon(Icon::Rotate)) "Rotate signing secret" }
                a.button.secondary href=(base) { "Cancel" }
            }
        }
    };
    org_page(&user, &org_name, "webhooks", "Rotate signing secret", body)
}

/// Rotates an endpoint's signing secret, then shows the new one once.
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath((org_name, id)): WebPath<(String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = user.form(&headers, &body) {
        return refused;
    }
    let acting = Acting::new(&user.caller, &source, state.now());
    let WithSecret { webhook, secret } = match webhooks::rotate_secret(&state.app, &acting, &org_name, id).await {
        Ok(rotated) => rotated,
        Err(e) => return failure(Some(&user), e.into()),
    };
    // The new signing secret is shown once, here.
    let until = webhooks::previous_secret_until(&webhook, acting.now).map(keysmith_app::time::rfc3339);
    let body = html! {
        p.warning role="alert" { strong { "Copy this signing secret now. It will not be shown again." } }
        (reveal(
            "webhook-secret",
            html! { "New signing secret of " (webhook.url) },
            secret.expose(),
        ))
        p {
            "Deliveries now carry two signatures in " code { "webhook-signature" } ", separated by a space: "
            "one made with this secret and one with the previous secret"
            @if let Some(until) = &until { ", until " (when_rfc(until)) }
            ". Switch the receiver to this secret before then; after that, only this secret signs."
        }
        div.buttons { a.button href={ "/org/" (q(&org_name)) "/webhooks" } { "Done" } }
    };
    org_page(&user, &org_name, "webhooks", "Signing secret rotated", body)
}

/// An endpoint's delivery log.
pub async fn deliveries(
    State(state): State<AppState>,
    user: WebUser,
    WebPath((org_name, id)): WebPath<(String, i64)>,
) -> Response {
    let log: Vec<_> = match webhooks::deliveries(&state.app, &user.caller, &org_name, id).await {
        Ok(log) => log.into_iter().map(routes::webhooks::delivery_view).collect(),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let body = html! {
        p { a.back href={ "/org/" (q(&org_name)) "/webhooks" } { "← All endpoints" } }
        @if log.is_empty() {
            p.empty { "Nothing delivered yet." }
        } @else {
            div.table-wrap {
                table.cards {
                    thead { tr {
                        th scope="col" { "Created" } th scope="col" { "Event" } th scope="col" { "Status" }
                        th.num scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Next attempt" }
                    } }
                    tbody {
                        @for d in &log {
                            tr {
                                td.nowrap data-label="Created" { (when_rfc(&d.created_at)) }
                                td.nowrap data-label="Event" { code { (d.event_type) } }
                                td.nowrap data-label="Status" { span.tag.(d.status) { (d.status) } }
                                td.num data-label="Attempts" { (d.attempts) }
                                td.details data-label="Last answer" {
                                    @if let Some(status) = d.last_status { "HTTP " (status) " " }
                                    @if let Some(error) = &d.last_error { (error) }
                                }
                                td.nowrap data-label="Next attempt" { @match &d.next_attempt_at { Some(t) => (when_rfc(t)), None => span.muted { "None" } } }
                            }
                        }
                    }
                }
            }
        }
    };
    org_page(&user, &org_name, "webhooks", "Deliveries", body)
}
