//! User Settings and its "API keys" section, and the key pages every list links to:
//! create (the key shown once), rename, delete with confirmation, delete several.
//!
//! Each operation calls the REST handler that does the same thing, so the web
//! interface cannot drift from the API's rules, checks or audit entries.

use super::{
    Icon, WebPath, WebUser, failure, icon, local_path, notice, page, q, respond, reveal, see_other, when, when_rfc,
    with_notice,
};
use crate::access;
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::routes::api_keys::{ApiKeyList, ApiKeyView};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keysmith_app::Acting;
use keysmith_app::keys::{self, Grace, KeyStatus, NewKeyRequest};
use keysmith_core::policy::KeyAction;
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyName, KeyScope, SecretString};
use keysmith_store::KeyFormat;
use maud::{Markup, html};
use serde::Deserialize;

/// The most keys a bulk deletion takes at once (the REST limit).
const MAX_SELECTED: usize = 100;

#[derive(Deserialize, Default)]
pub struct PageParams {
    done: Option<String>,
    cursor: Option<String>,
    back: Option<String>,
    owner: Option<String>,
}

/// A page of the keys the caller may see, as the API shows them.
pub async fn list(state: &AppState, user: &WebUser, request: keys::ListRequest) -> Result<ApiKeyList, ApiError> {
    let page = keys::list(&state.app, &user.caller, &request, state.now()).await?;
    Ok(ApiKeyList {
        items: page.items.into_iter().map(|k| ApiKeyView::new(k, state)).collect(),
        next_cursor: page.next_cursor,
    })
}

/// The first page of `owner`'s keys (at most 100), from `cursor` on.
pub fn owned_by(owner: &str, cursor: Option<String>) -> keys::ListRequest {
    keys::ListRequest {
        filter: keys::ListFilter {
            owner: Some(owner.to_owned()),
            ..Default::default()
        },
        cursor,
        limit: Some(100),
        ..Default::default()
    }
}

/// A row action: an icon button with a tooltip, named for screen readers with the
/// action and the row's key ("Rename laptop"); on narrow screens the action's word
/// shows beside the icon.
pub fn row_action(href: &str, which: Icon, label: &str, of: &str, danger: bool) -> Markup {
    html! {
        a.icon-button.danger[danger] href=(href) title=(label) {
            (icon(which)) span.action-label { (label) } span.visually-hidden { " " (of) }
        }
    }
}

/// The keys table with per-row rename, rotate and delete, and a form to delete the
/// ticked rows. Long names and IDs are cut with an ellipsis, the whole value in the
/// tooltip; on narrow screens each row is a card.
pub fn key_table(user: &WebUser, keys: &[ApiKeyView], back: &str, show_owner: bool, empty: Markup) -> Markup {
    if keys.is_empty() {
        return html! { p.empty { (empty) } };
    }
    html! {
        form.key-list method="post" action="/keys/delete-selected" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="back" value=(back);
            div.table-wrap {
                table.cards.keys.with-owner[show_owner] {
                    thead {
                        tr {
                            th.select scope="col" {
                                input type="checkbox" data-select-all hidden aria-label="Select all keys";
                            }
                            th scope="col" { "Key name" }
                            th scope="col" { "Key ID" }
                            @if show_owner { th scope="col" { "Owner" } }
                            th scope="col" { "Last used" }
                            th scope="col" { "Created on" }
                            th scope="col" { "Expires" }
                            th.actions scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody {
                        @for k in keys {
                            tr data-key-id=(k.key_id) {
                                td.select {
                                    input type="checkbox" name="key_id" value=(k.key_id)
                                        aria-label={ "Select " (k.name) };
                                }
                                td.primary.fill data-label="Key name" {
                                    span.truncate title=(k.name) { (k.name) }
                                    @if let Some(issuer) = &k.federated_issuer {
                                        " " span.tag title={ "Exchanged for a JWT from " (issuer) } { "federated" }
                                    }
                                }
                                td.fill.narrow.key-id data-label="Key ID" { code.truncate title=(k.key_id) { (k.key_id) } }
                                @if show_owner {
                                    td data-label="Owner" {
                                        span.owner {
                                            span.truncate.short title=(k.owner.username) { (k.owner.username) }
                                            @if k.owner.kind == PrincipalKind::ServiceAccount { span.tag { "service account" } }
                                        }
                                    }
                                }
                                td.nowrap data-label="Last used" { @match &k.last_used_at { Some(t) => (when_rfc(t)), None => span.muted { "Never" } } }
                                td.nowrap data-label="Created on" { (when_rfc(&k.created_at)) }
                                td.nowrap data-label="Expires" {
                                    @if k.status == KeyStatus::Expired {
                                        span.tag.expired { "Expired" }
                                    } @else {
                                        @match &k.expires_at { Some(t) => (when_rfc(t)), None => span.muted { "Never" } }
                                    }
                                    @if k.rotated_to.is_some() {
                                        " " a.tag.rotating href={ "/keys/" (k.key_id) "/rotation" } { "rotating" }
                                    }
                                }
                                td.actions {
                                    div.row-actions {
                                        @if k.federated_issuer.is_none() {
                                            (row_action(&format!("/keys/{}/rename?back={}", k.key_id, q(back)), Icon::Pencil, "Rename", &k.name, false))
                                        }
                                        @if k.rotated_to.is_none() && k.status != KeyStatus::Expired && k.federated_issuer.is_none() {
                                            (row_action(&format!("/keys/{}/rotate?back={}", k.key_id, q(back)), Icon::Rotate, "Rotate", &k.name, false))
                                        }
                                        (row_action(&format!("/keys/{}/delete?back={}", k.key_id, q(back)), Icon::Trash, "Delete", &k.name, true))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.table-foot {
                button.danger.secondary.small type="submit" { (icon(Icon::Trash)) "Delete selected" }
            }
        }
    }
}

/// "Next page" when a list has more.
pub fn next_page(path: &str, cursor: Option<&str>) -> Markup {
    html! {
        @if let Some(cursor) = cursor {
            @let sep = if path.contains('?') { "&" } else { "?" };
            p { a href={ (path) (sep) "cursor=" (q(cursor)) } { "Next page" } }
        }
    }
}

/// A role as people read it: "admin" is shown as "Admin".
pub fn role_name(role: &str) -> String {
    let mut chars = role.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// User Settings: who you are, and your API keys.
pub async fn settings(State(state): State<AppState>, user: WebUser, Query(params): Query<PageParams>) -> Response {
    let keys = match list(&state, &user, owned_by(user.name(), params.cursor.clone())).await {
        Ok(keys) => keys,
        Err(e) => return failure(Some(&user), e),
    };
    let body = html! {
        h1 { "User settings" }
        (notice(params.done.as_deref()))
        section.panel.profile aria-labelledby="profile" {
            h2 #profile { "Profile" }
            dl.props {
                dt { "Username" } dd { (user.name()) }
            }
            @if !user.orgs.is_empty() {
                div.table-wrap.inline {
                    table.memberships {
                        caption { "Organizations" }
                        thead { tr { th scope="col" { "Organization" } th scope="col" { "Role" } } }
                        tbody {
                            @for m in &user.orgs {
                                tr {
                                    th scope="row" { (m.org.name) }
                                    td { (role_name(m.role.as_str())) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="api-keys" {
            div.section-head {
                h2 #api-keys { "API keys" }
                a.button href="/keys/new?back=/settings" { (icon(Icon::Plus)) "Create new API key" }
            }
            p.lead {
                "Keys let the wandb SDK, the CLI and your scripts act as you. Keep them in an "
                "environment variable such as " code { "WANDB_API_KEY" } ", never on a command line "
                "or in a file you commit."
            }
            (key_table(&user, &keys.items, "/settings", false, html! {
                "You have no API keys yet. Create one to log in with " code { "wandb login" } "."
            }))
            (next_page("/settings", keys.next_cursor.as_deref()))
        }
    };
    respond(StatusCode::OK, page(Some(&user), "User settings", body))
}

struct NewKeyForm<'a> {
    heading: &'a str,
    intro: Markup,
    owner: Option<&'a str>,
    name: &'a str,
    back: &'a str,
    error: Option<String>,
}

fn new_key_page(user: &WebUser, form: NewKeyForm<'_>) -> Markup {
    let legacy_allowed = user.orgs.iter().any(|m| m.org.legacy_keys_allowed);
    page(
        Some(user),
        form.heading,
        html! {
            h1 { (form.heading) }
            (form.intro)
            form.stack method="post" action="/keys/new" {
                @if let Some(error) = &form.error {
                    p.error role="alert" id="name-error" { (error) }
                }
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="back" value=(form.back);
                @if let Some(owner) = form.owner {
                    input type="hidden" name="owner" value=(owner);
                    p.info { "The key will belong to the service account " strong { (owner) } "." }
                }
                div.field {
                    label for="name" { "Descriptive name" }
                    input #name name="name" required maxlength="128" value=(form.name)
                        aria-describedby={ "name-hint" @if form.error.is_some() { " name-error" } }
                        aria-invalid=[form.error.is_some().then_some("true")];
                    p.hint #name-hint { "Say where the key will be used, such as “training cluster” or “laptop”." }
                }
                div.field {
                    label for="expires" { "Expiration" }
                    select #expires name="expires_in_days" aria-describedby="expires-hint" {
                        option value="" { "No expiration" }
                        @for days in [7, 30, 60, 90, 365] {
                            option value=(days) { (days) " days" }
                        }
                    }
                    p.hint #expires-hint {
                        "Your organization may set a maximum lifetime; without an expiration the key gets that maximum."
                    }
                }
                fieldset.choices aria-describedby="scope-hint" {
                    legend { "What the key may do" }
                    label { input type="radio" name="scope" value="admin" checked; " Everything its owner may do" }
                    label { input type="radio" name="scope" value="write"; " Read, and manage its owner’s own keys" }
                    label { input type="radio" name="scope" value="read"; " Read only" }
                    p.hint #scope-hint {
                        "A narrower key does less harm if it leaks. A key never does more than its owner, "
                        "and it cannot create a key wider than itself."
                    }
                }
                div.field {
                    label for="allowed-networks" { "Networks it may be used from (optional)" }
                    input #allowed-networks name="allowed_networks" spellcheck="false" autocomplete="off"
                        placeholder="203.0.113.0/24, 2001:db8::/32" aria-describedby="networks-hint";
                    p.hint #networks-hint {
                        "Addresses or CIDR blocks, separated by commas. Used from anywhere else, the key is refused."
                    }
                }
                div.field {
                    label for="requests-per-minute" { "Requests per minute (optional)" }
                    input.short #requests-per-minute name="requests_per_minute" type="number" min="1"
                        max=(keys::MAX_PER_MINUTE) aria-describedby="rpm-hint";
                    p.hint #rpm-hint { "Past it, requests with the key wait. Leave empty for no limit." }
                }
                @if legacy_allowed {
                    fieldset.choices {
                        legend { "Key format" }
                        label { input type="radio" name="format" value="v1" checked; " New (86 characters): wandb 0.22.3 and later" }
                        label { input type="radio" name="format" value="legacy"; " Legacy (40 characters): older wandb SDKs" }
                    }
                }
                div.buttons {
                    button type="submit" { "Create API key" }
                    a.button.secondary href=(form.back) { "Cancel" }
                }
            }
        },
    )
}

/// The form that asks for a name.
pub async fn new_form(user: WebUser, Query(params): Query<PageParams>) -> Response {
    let back = local_path(params.back.as_deref(), "/settings");
    let form = NewKeyForm {
        heading: "Create new API key",
        intro: html! { p { "The full key is shown once, right after you create it." } },
        owner: params.owner.as_deref(),
        name: "",
        back: &back,
        error: None,
    };
    respond(StatusCode::OK, new_key_page(&user, form))
}

/// `/authorize`, the link the wandb SDK prints: the key creation screen, after sign-in.
pub async fn authorize(user: WebUser) -> Response {
    let form = NewKeyForm {
        heading: "Create an API key for wandb",
        intro: html! {
            p {
                "Create a key, then paste it at the " code { "wandb login" } " prompt or keep it in "
                code { "WANDB_API_KEY" } ". The full key is shown once."
            }
        },
        owner: None,
        name: "wandb SDK",
        back: "/settings",
        error: None,
    };
    respond(StatusCode::OK, new_key_page(&user, form))
}

/// Creates the key and redirects to the page that shows it once.
pub async fn create(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let back = fields.back("/settings");
    let owner = fields.get("owner").filter(|o| !o.is_empty());
    let raw_name = fields.get("name").unwrap_or("");
    let again = |status: StatusCode, error: String| {
        let form = NewKeyForm {
            heading: "Create new API key",
            intro: html! {},
            owner,
            name: raw_name,
            back: &back,
            error: Some(error),
        };
        respond(status, new_key_page(&user, form))
    };
    let name = match KeyName::parse(raw_name) {
        Ok(name) => name,
        Err(e) => return again(StatusCode::BAD_REQUEST, format!("Key name: {e}.")),
    };
    let expires_at = match fields.get("expires_in_days").filter(|d| !d.is_empty()) {
        None => None,
        Some(days) => match days.parse::<u16>() {
            Ok(days) if days > 0 => Some(state.now() + i64::from(days) * keysmith_app::time::DAY_MS),
            _ => return again(StatusCode::BAD_REQUEST, "Choose an expiration from the list.".into()),
        },
    };
    let format = match fields.get("format") {
        Some("legacy") => KeyFormat::Legacy,
        _ => KeyFormat::V1,
    };
    let scope = match fields.get("scope").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match KeyScope::parse(raw) {
            Some(scope) => Some(scope),
            None => {
                return again(
                    StatusCode::BAD_REQUEST,
                    "Choose what the key may do from the list.".into(),
                );
            }
        },
    };
    let allowed_networks = match fields.networks("allowed_networks") {
        Ok(networks) => networks,
        Err(e) => return again(StatusCode::BAD_REQUEST, ApiError::from(e).message()),
    };
    let requests_per_minute = match fields
        .get("requests_per_minute")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let message = format!(
                    "Requests per minute: a whole number from 1 to {}.",
                    keys::MAX_PER_MINUTE
                );
                return again(StatusCode::BAD_REQUEST, message);
            }
        },
    };
    let request = NewKeyRequest {
        name,
        owner: owner.map(str::to_owned),
        format,
        expires_at,
        scope,
        allowed_networks,
        requests_per_minute,
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match keys::mint(&state.app, &acting, request).await.map_err(ApiError::from) {
        Ok(minted) => {
            let key_id = minted.key.key_id.to_string();
            let plaintext = SecretString::new(minted.generated.plaintext.expose().to_owned());
            state
                .reveal
                .put((user.caller.id(), key_id.clone()), plaintext, state.now());
            see_other(&format!("/keys/{key_id}/created?back={}", q(&back)))
        }
        Err(e) if e.status().is_client_error() && !matches!(e, ApiError::CsrfTokenInvalid) => {
            again(e.status(), e.message())
        }
        Err(e) => failure(Some(&user), e),
    }
}

/// The new key, once. Afterwards (a reload, the back button) only its key ID.
pub async fn created(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(key_id): WebPath<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let back = local_path(params.back.as_deref(), "/settings");
    let key = match access::authorized_key(&state, &user.caller, &key_id, KeyAction::Read).await {
        Ok(key) => key,
        Err(e) => return failure(Some(&user), e),
    };
    let plaintext = state
        .reveal
        .take(&(user.caller.id(), key.key_id.to_string()), state.now());
    let body = html! {
        @if let Some(plaintext) = &plaintext {
            h1 { "Your new API key" }
            p.warning role="alert" {
                strong { "Copy this key now. It will not be shown again." }
                " Keysmith keeps only a hash of it."
            }
            (reveal("new-key", html! { "API key “" (key.name) "”" }, plaintext.expose()))
            p {
                "Paste it at the " code { "wandb login" } " prompt, or keep it in an environment variable, "
                "never on a command line or in a file you commit:"
            }
            pre { code { "read -rs WANDB_API_KEY && export WANDB_API_KEY" } }
        } @else {
            h1 { "API key created" }
            p { "The full key was shown once and is not shown again. If you did not copy it, delete this key and create a new one." }
        }
        dl.props.panel {
            dt { "Key name" } dd { (key.name) }
            dt { "Key ID" } dd { code data-testid="key-id" { (key.key_id) } }
            dt { "Owner" } dd { (key.owner.username) }
            dt { "May do" } dd data-testid="key-scope" { (scope_label(key.scope)) }
            dt { "Created on" } dd { (when(Some(key.created_at), "")) }
        }
        div.buttons { a.button href=(back) { "Done" } }
    };
    respond(StatusCode::OK, page(Some(&user), "API key created", body))
}

fn rename_page(user: &WebUser, key_id: &str, name: &str, back: &str, error: Option<&str>) -> Markup {
    page(
        Some(user),
        "Rename API key",
        html! {
            h1 { "Rename API key" }
            p.lead { "Key ID " code { (key_id) } }
            form.stack method="post" action={ "/keys/" (key_id) "/rename" } {
                @if let Some(error) = error { p.error role="alert" id="name-error" { (error) } }
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="back" value=(back);
                div.field {
                    label for="name" { "Descriptive name" }
                    input #name name="name" required maxlength="128" value=(name)
                        aria-describedby=[error.map(|_| "name-error")]
                        aria-invalid=[error.map(|_| "true")];
                }
                div.buttons {
                    button type="submit" { "Save name" }
                    a.button.secondary href=(back) { "Cancel" }
                }
            }
        },
    )
}

pub async fn rename_form(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(key_id): WebPath<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let back = local_path(params.back.as_deref(), "/settings");
    match access::authorized_key(&state, &user.caller, &key_id, KeyAction::Rename).await {
        Ok(key) => respond(
            StatusCode::OK,
            rename_page(&user, key.key_id.as_str(), &key.name, &back, None),
        ),
        Err(e) => failure(Some(&user), e),
    }
}

pub async fn rename(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(key_id): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let back = fields.back("/settings");
    let name = fields.get("name").unwrap_or("").to_owned();
    let result = match KeyName::parse(&name) {
        Ok(parsed) => {
            let acting = Acting::new(&user.caller, &source, state.now());
            keys::rename(&state.app, &acting, &key_id, parsed)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(ApiError::InvalidName(e.to_string())),
    };
    match result {
        Ok(_) => see_other(&with_notice(&back, "renamed")),
        Err(e @ ApiError::InvalidName(_)) => respond(
            StatusCode::BAD_REQUEST,
            rename_page(&user, &key_id, &name, &back, Some(&e.message())),
        ),
        Err(e) => failure(Some(&user), e),
    }
}

/// The rotation form: how long the old key keeps working.
pub async fn rotate_form(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(key_id): WebPath<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let back = local_path(params.back.as_deref(), "/settings");
    let key = match access::authorized_key(&state, &user.caller, &key_id, KeyAction::Delete).await {
        Ok(key) => key,
        Err(e) => return failure(Some(&user), e),
    };
    let graces = [
        ("now", "Stop it now"),
        ("1h", "1 hour"),
        ("24h", "24 hours"),
        ("7d", "7 days"),
        ("until_deleted", "Until I delete it"),
    ];
    let body = html! {
        h1 { "Rotate API key" }
        p.lead {
            "Rotation creates a new key with the same name and owner and shows it once. The old key keeps "
            "working for the time you choose, so you can switch every script without an outage; then it "
            "stops by itself. The rotation page shows when and from where each key was last used."
        }
        dl.props.panel {
            dt { "Key name" } dd { (key.name) }
            dt { "Key ID" } dd { code { (key.key_id) } }
            dt { "Owner" } dd { (key.owner.username) }
            dt { "Last used" } dd { (when(key.last_used_at, "Never")) }
        }
        form.stack method="post" action={ "/keys/" (key.key_id) "/rotate" } {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="back" value=(back);
            fieldset.choices {
                legend { "Keep the old key working for" }
                @for (value, label) in graces {
                    label { input type="radio" name="grace" value=(value) checked[value == "24h"]; " " (label) }
                }
            }
            div.buttons {
                button type="submit" { (icon(Icon::Rotate)) "Rotate API key" }
                a.button.secondary href=(back) { "Cancel" }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&user), "Rotate API key", body))
}

/// Rotates, then shows the new key once; its page leads to the rotation's status.
pub async fn rotate(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(key_id): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let Some(grace) = fields.get("grace").and_then(|g| Grace::parse(g).ok()) else {
        return failure(
            Some(&user),
            ApiError::InvalidValue("choose how long the old key keeps working".into()),
        );
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match keys::rotate(&state.app, &acting, &key_id, grace)
        .await
        .map_err(ApiError::from)
    {
        Ok(minted) => {
            let old_id = minted.key.rotated_from.clone().unwrap_or_default();
            let new_id = minted.key.key_id.to_string();
            let plaintext = SecretString::new(minted.generated.plaintext.expose().to_owned());
            state
                .reveal
                .put((user.caller.id(), new_id.clone()), plaintext, state.now());
            let status = format!("/keys/{old_id}/rotation");
            see_other(&format!("/keys/{new_id}/created?back={}", q(&status)))
        }
        Err(e) => failure(Some(&user), e),
    }
}

/// A key's scope, as the create form words it.
fn scope_label(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Read => "Read only",
        KeyScope::Write => "Read, and manage its owner’s own keys",
        KeyScope::Admin => "Everything its owner may do",
    }
}

fn key_usage(title: &str, key: &ApiKeyView) -> Markup {
    html! {
        section.panel aria-label=(title) {
            h2 { (title) }
            dl.props {
                dt { "Key ID" } dd { code { (key.key_id) } }
                dt { "May do" } dd { (KeyScope::parse(key.scope).map_or(key.scope, scope_label)) }
                dt { "Last used" } dd { @match &key.last_used_at { Some(t) => (when_rfc(t)), None => "Never" } }
                dt { "Expires" } dd {
                    @if key.status == KeyStatus::Expired { "Expired" }
                    @else { @match &key.expires_at { Some(t) => (when_rfc(t)), None => "Never" } }
                }
            }
            @let sources = key.sources.as_deref().unwrap_or_default();
            @if sources.is_empty() {
                p.empty { "Not used yet." }
            } @else {
                h3 { "Recent sources" }
                div.table-wrap {
                    table.cards {
                        caption.visually-hidden { "Recent sources of " (title.to_lowercase()) }
                        thead { tr {
                            th scope="col" { "Address" } th scope="col" { "User agent" }
                            th scope="col" { "First seen" } th scope="col" { "Last seen" }
                        } }
                        tbody {
                            @for src in sources {
                                tr {
                                    td.nowrap data-label="Address" { code { (src.address) } }
                                    td.fill data-label="User agent" { span.truncate title=(src.user_agent) { (src.user_agent) } }
                                    td.nowrap data-label="First seen" { (when_rfc(&src.first_seen)) }
                                    td.nowrap data-label="Last seen" { (when_rfc(&src.last_seen)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A rotation in progress: both keys, when and from where each was last used, and
/// the button that finishes it.
pub async fn rotation(State(state): State<AppState>, user: WebUser, WebPath(key_id): WebPath<String>) -> Response {
    let (old, old_sources) = match keys::get(&state.app, &user.caller, &key_id).await {
        Ok(found) => found,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let Some(new_id) = old.rotated_to.clone() else {
        let body = html! {
            h1 { "No rotation in progress" }
            p { "The key " code { (old.key_id) } " is not being rotated." }
            div.buttons { a.button.secondary href="/settings" { "Back to your API keys" } }
        };
        return respond(StatusCode::OK, page(Some(&user), "Rotation", body));
    };
    let (new, new_sources) = match keys::get(&state.app, &user.caller, &new_id).await {
        Ok(found) => found,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let started = new.created_at;
    let old_last = keys::last_used(&state.app, &old);
    let old_view = ApiKeyView::new(old.clone(), &state).with_sources(old_sources);
    let new_view = ApiKeyView::new(new, &state).with_sources(new_sources);
    let quiet = old_last.is_none_or(|t| t < started);
    let body = html! {
        h1 { "Rotating “" (old.name) "”" }
        @if quiet {
            p.notice role="status" {
                "The old key has not been used since the rotation began. It is safe to finish the rotation."
            }
        } @else {
            p.warning role="status" {
                "The old key was used after the rotation began, last at " (when(old_last, "")) ". "
                "Some client still uses it: see its recent sources below."
            }
        }
        div.columns {
            (key_usage("Old key", &old_view))
            (key_usage("New key", &new_view))
        }
        form method="post" action={ "/keys/" (old.key_id) "/delete" } {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="back" value="/settings";
            div.buttons {
                button.danger type="submit" { (icon(Icon::Trash)) "Finish rotation: delete the old key" }
                a.button.secondary href="/settings" { "Later" }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&user), "Rotation", body))
}

pub async fn delete_form(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(key_id): WebPath<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let back = local_path(params.back.as_deref(), "/settings");
    let key = match access::authorized_key(&state, &user.caller, &key_id, KeyAction::Delete).await {
        Ok(key) => key,
        Err(e) => return failure(Some(&user), e),
    };
    let body = html! {
        h1 { "Delete API key" }
        p.warning role="alert" {
            strong { "Scripts and services using this key stop working immediately." }
            " This cannot be undone."
        }
        dl.props.panel {
            dt { "Key name" } dd { (key.name) }
            dt { "Key ID" } dd { code { (key.key_id) } }
            dt { "Owner" } dd { (key.owner.username) }
            dt { "Last used" } dd { (when(key.last_used_at, "Never")) }
        }
        form method="post" action={ "/keys/" (key.key_id) "/delete" } {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="back" value=(back);
            div.buttons {
                button.danger type="submit" { (icon(Icon::Trash)) "Delete API key" }
                a.button.secondary href=(back) { "Cancel" }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&user), "Delete API key", body))
}

pub async fn delete(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(key_id): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let back = fields.back("/settings");
    let acting = Acting::new(&user.caller, &source, state.now());
    match keys::delete(&state.app, &acting, &key_id).await.map_err(ApiError::from) {
        Ok(_) => see_other(&with_notice(&back, "deleted")),
        Err(e) => failure(Some(&user), e),
    }
}

/// Ticked keys: first a confirmation that names them, then the deletion.
pub async fn delete_selected(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let back = fields.back("/settings");
    let ids: Vec<String> = fields.all("key_id").into_iter().map(str::to_owned).collect();
    if ids.is_empty() {
        return see_other(&with_notice(&back, "none-selected"));
    }
    if ids.len() > MAX_SELECTED {
        return failure(
            Some(&user),
            ApiError::InvalidValue(format!("select at most {MAX_SELECTED} keys at once")),
        );
    }
    if fields.get("confirm") == Some("yes") {
        let acting = Acting::new(&user.caller, &source, state.now());
        return match keys::delete_many(&state.app, &acting, &ids)
            .await
            .map_err(ApiError::from)
        {
            Ok(_) => see_other(&with_notice(&back, "deleted-selected")),
            Err(e) => failure(Some(&user), e),
        };
    }
    let mut keys = Vec::new();
    for id in &ids {
        match access::authorized_key(&state, &user.caller, id, KeyAction::Delete).await {
            Ok(key) => keys.push(key),
            Err(ApiError::ApiKeyNotFound | ApiError::Forbidden(_)) => {}
            Err(e) => return failure(Some(&user), e),
        }
    }
    let body = html! {
        h1 { "Delete " (keys.len()) " API keys" }
        p.warning role="alert" {
            strong { "Scripts and services using these keys stop working immediately." }
            " This cannot be undone."
        }
        ul.key-summary.panel {
            @for key in &keys {
                li { strong { (key.name) } span.muted { " · " } code { (key.key_id) } span.muted { " · " (key.owner.username) } }
            }
        }
        form method="post" action="/keys/delete-selected" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="back" value=(back);
            input type="hidden" name="confirm" value="yes";
            @for key in &keys { input type="hidden" name="key_id" value=(key.key_id); }
            div.buttons {
                button.danger type="submit" { (icon(Icon::Trash)) "Delete " (keys.len()) " API keys" }
                a.button.secondary href=(back) { "Cancel" }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&user), "Delete API keys", body))
}
