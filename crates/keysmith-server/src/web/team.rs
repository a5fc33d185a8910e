//! `/<team>/service-accounts`: a team's service accounts and their keys, for the
//! team's admins and the organization's admins.

use super::keys::{key_table, list};
use super::{Icon, WebPath, WebUser, failure, icon, notice, page, q, respond, see_other, with_notice};
use crate::auth::source::SourceAddr;
use crate::routes::service_accounts::view;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keysmith_app::service_accounts::{self, NewServiceAccountRequest};
use keysmith_app::{Acting, input};
use keysmith_store::{Org, Team};
use maud::html;
use serde::Deserialize;

/// The link to a team's page, naming its organization so that equal team names in
/// two organizations stay apart.
pub fn team_path(team: &Team, user: &WebUser) -> String {
    let org = user.orgs.iter().find(|m| m.org.id == team.org);
    match org {
        Some(m) => format!("/{}/service-accounts?org={}", q(&team.name), q(&m.org.name)),
        None => format!("/{}/service-accounts", q(&team.name)),
    }
}

#[derive(Deserialize, Default)]
pub struct TeamParams {
    org: Option<String>,
    done: Option<String>,
}

/// The team with this name (in `org` when given) whose service accounts the user
/// manages, or the page that says why not.
async fn managed_team(
    state: &AppState,
    user: &WebUser,
    name: &str,
    org: Option<&str>,
) -> Result<(Org, Team), Response> {
    service_accounts::managed_team(&state.app, &user.caller, name, org)
        .await
        .map_err(|e| failure(Some(user), e.into()))
}

pub async fn service_accounts_page(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(team_name): WebPath<String>,
    Query(params): Query<TeamParams>,
) -> Response {
    let (org, team) = match managed_team(&state, &user, &team_name, params.org.as_deref()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let here = team_path(&team, &user);
    let accounts = match service_accounts::list(&state.app, &user.caller, &org.name, Some(&team.name)).await {
        Ok(list) => list.into_iter().map(view).collect::<Vec<_>>(),
        Err(e) => return failure(Some(&user), e.into()),
    };
    let mut sections = Vec::new();
    for account in &accounts {
        match list(&state, &user, super::keys::owned_by(&account.name, None)).await {
            Ok(keys) => sections.push((account, keys.items)),
            Err(e) => return failure(Some(&user), e),
        }
    }
    let body = html! {
        p.crumb { "Organization " strong { (org.name) } " · team " strong { (team.name) } }
        h1 { "Service accounts" }
        (notice(params.done.as_deref()))
        p.lead {
            "Service accounts run automation (CI jobs, training pipelines) without a person's key. "
            "Their keys belong to the team, not to whoever created them."
        }
        @if sections.is_empty() {
            p.empty { "This team has no service accounts yet." }
        }
        @for (account, keys) in &sections {
            section.account aria-labelledby={ "sa-" (account.name) } {
                div.section-head {
                    div {
                        h2 id={ "sa-" (account.name) } { (account.name) }
                        @if !account.description.is_empty() { p.hint { (account.description) } }
                        @if let Some(subject) = &account.external_subject {
                            p.hint { "Signs in with a JWT whose " code { "sub" } " is " code { (subject) } }
                        }
                    }
                    a.button.secondary href={ "/keys/new?owner=" (q(&account.name)) "&back=" (q(&here)) } {
                        (icon(Icon::Plus)) "Create API key" span.visually-hidden { " for " (account.name) }
                    }
                }
                (key_table(&user, keys, &here, false, html! { "No API keys yet." }))
            }
        }
        h2 { "Create a service account" }
        form.stack method="post" action=(here) {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="sa-name" { "Name" }
                input #sa-name name="name" required maxlength="64" aria-describedby="sa-hint";
                p.hint #sa-hint { "Letters, digits, dots, dashes and underscores, such as “ci-bot”." }
            }
            div.field {
                label for="sa-description" { "Description (optional)" }
                input #sa-description name="description" maxlength="1024";
            }
            div.field {
                label for="sa-subject" { "External subject (optional)" }
                input #sa-subject name="external_subject" maxlength="255" aria-describedby="sa-subject-hint";
                p.hint #sa-subject-hint {
                    "For identity federation: a JWT from one of the organization’s issuers whose "
                    code { "sub" } " is this value signs in as this service account."
                }
            }
            div.field {
                label for="sa-networks" { "Networks its keys may be used from (optional)" }
                input #sa-networks name="allowed_networks" spellcheck="false" autocomplete="off"
                    placeholder="10.20.0.0/16" aria-describedby="sa-networks-hint";
                p.hint #sa-networks-hint {
                    "Addresses or CIDR blocks, separated by commas. Its keys used from anywhere else are refused."
                }
            }
            div.buttons { button type="submit" { "Create service account" } }
        }
    };
    respond(
        StatusCode::OK,
        page(Some(&user), &format!("{} service accounts", team.name), body),
    )
}

pub async fn create_account(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(team_name): WebPath<String>,
    Query(params): Query<TeamParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let (org, team) = match managed_team(&state, &user, &team_name, params.org.as_deref()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    let create = async {
        let request = NewServiceAccountRequest {
            name: input::entity_name("name", "service account name", fields.get("name").unwrap_or(""))?,
            description: fields.get("description").unwrap_or("").to_owned(),
            team: Some(team.name.clone()),
            external_subject: fields
                .get("external_subject")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            allowed_networks: fields.networks("allowed_networks")?,
        };
        service_accounts::create(&state.app, &acting, &org.name, request).await
    };
    match create.await {
        Ok(_) => see_other(&with_notice(&team_path(&team, &user), "service-account-created")),
        Err(e) => failure(Some(&user), e.into()),
    }
}
