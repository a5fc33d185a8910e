//! The organization admin's single sign-on page: the OpenID providers people sign in
//! with, a form to add one with its group rules, and removal (docs/SSO.md).

use super::org::{Done, org_page};
use super::{WebPath, WebUser, delete_button, failure, notice, q, see_other, when_rfc, with_notice};
use crate::auth::source::SourceAddr;
use crate::error::ApiError;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keysmith_app::Acting;
use keysmith_app::sso::{self, GroupRule, NewProviderRequest};
use maud::{Markup, html};

/// A group rule as one line of the form: `ml-admins = admin`, `team-vision = team
/// vision`, `vision-leads = team vision admin`.
fn rule_line(rule: &GroupRule) -> String {
    match (&rule.org_role, &rule.team) {
        (Some(role), None) => format!("{} = {role}", rule.group),
        (_, Some(team)) => match &rule.team_role {
            Some(role) => format!("{} = team {team} {role}", rule.group),
            None => format!("{} = team {team}", rule.group),
        },
        (None, None) => rule.group.clone(),
    }
}

/// The form's rules, one per line; an error names the line.
fn parse_rules(text: &str) -> Result<Vec<GroupRule>, ApiError> {
    let bad = |line: &str| {
        ApiError::InvalidValue(format!(
            "group rules: \"{line}\" is not `group = admin`, `group = member`, `group = team NAME` or `group = team NAME admin`"
        ))
    };
    let mut rules = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (group, target) = line.split_once('=').ok_or_else(|| bad(line))?;
        let words: Vec<&str> = target.split_whitespace().collect();
        let (org_role, team, team_role) = match words.as_slice() {
            [role @ ("admin" | "member")] => (Some((*role).to_owned()), None, None),
            ["team", team] => (None, Some((*team).to_owned()), None),
            ["team", team, role] => (None, Some((*team).to_owned()), Some((*role).to_owned())),
            _ => return Err(bad(line)),
        };
        rules.push(GroupRule {
            group: group.trim().to_owned(),
            org_role,
            team,
            team_role,
        });
    }
    Ok(rules)
}

fn rules_cell(rules: &[GroupRule]) -> Markup {
    html! {
        @if rules.is_empty() {
            span.muted { "none" }
        } @else {
            ul.plain { @for rule in rules { li { code { (rule_line(rule)) } } } }
        }
    }
}

pub async fn providers(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let list = match sso::list_providers(&state.app, &user.caller, &org).await {
        Ok(list) => list,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let base = format!("/org/{}/sso", q(&org));
    let body = html! {
        (notice(done.done.as_deref()))
        p.lead {
            "People sign in to this web interface through the organization’s identity provider "
            "(OpenID Connect), matched by their verified email. Its groups can decide their role and teams."
        }
        @if list.is_empty() {
            p.empty { "No single sign-on providers yet." }
        } @else {
            div.table-wrap {
                table.cards {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Issuer" } th scope="col" { "Group rules" }
                        th scope="col" { "New people" } th scope="col" { "Added on" }
                        th.actions scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for p in &list {
                            tr {
                                td.primary data-label="Name" { (p.name) }
                                td.fill data-label="Issuer" { code.truncate title=(p.issuer) { (p.issuer) } }
                                td data-label="Group rules" { (rules_cell(&sso::group_rules(p))) }
                                td.nowrap data-label="New people" { @if p.jit { "made at first sign-in" } @else { "added by an admin" } }
                                td.nowrap data-label="Added on" { (when_rfc(&rfc3339(p.created_at))) }
                                td.actions {
                                    (delete_button(&format!("{base}/{}/delete", p.id), &user.csrf, "Remove", &p.name))
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a provider" }
        p.hint.before-form {
            "Register this server with the provider first, with the redirect URI "
            code { "https://<this server>" (crate::web::sso::CALLBACK_PATH) } ", and have the operator put "
            "the client secret in a file of the server’s " code { "sso_secrets_dir" } "."
        }
        form.stack method="post" action=(base) {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="sso-name" { "Name" }
                input #sso-name name="name" required maxlength="64" placeholder="Okta" aria-describedby="sso-name-hint";
                p.hint #sso-name-hint { "The sign-in page says “Sign in with " em { "name" } "”." }
            }
            div.field {
                label for="sso-issuer" { "Issuer URL" }
                input #sso-issuer name="issuer" type="url" required maxlength="512"
                    placeholder="https://example.okta.com" aria-describedby="sso-issuer-hint";
                p.hint #sso-issuer-hint {
                    "Exactly as its ID tokens name it in " code { "iss" } "; its keys are read now."
                }
            }
            div.field {
                label for="sso-client-id" { "Client ID" }
                input #sso-client-id name="client_id" required maxlength="255";
            }
            div.field {
                label for="sso-secret" { "Client secret file" }
                input #sso-secret name="client_secret_file" required maxlength="255" placeholder="okta"
                    aria-describedby="sso-secret-hint";
                p.hint #sso-secret-hint { "The name of its file in " code { "sso_secrets_dir" } "; never the secret." }
            }
            div.field {
                label for="sso-scopes" { "Scopes" }
                input #sso-scopes name="scopes" maxlength="512" value=(sso::DEFAULT_SCOPES);
            }
            div.field {
                label for="sso-email-claim" { "Email claim" }
                input #sso-email-claim name="email_claim" maxlength="128" value=(sso::DEFAULT_EMAIL_CLAIM)
                    aria-describedby="sso-email-claim-hint";
                p.hint #sso-email-claim-hint {
                    "People are matched by this claim. " code { "email" } " counts only when the provider "
                    "has verified it; another (Entra ID’s " code { "preferred_username" } ") is trusted as is."
                }
            }
            div.field {
                label for="sso-groups-claim" { "Groups claim" }
                input #sso-groups-claim name="groups_claim" maxlength="128" value=(sso::DEFAULT_GROUPS_CLAIM);
            }
            div.field {
                label for="sso-rules" { "Group rules (optional)" }
                textarea #sso-rules name="group_rules" rows="3" aria-describedby="sso-rules-hint"
                    placeholder="ml-admins = admin\nteam-vision = team vision" {}
                p.hint #sso-rules-hint {
                    "One per line: " code { "group = admin" } ", " code { "group = member" } ", "
                    code { "group = team NAME" } " or " code { "group = team NAME admin" }
                    ". They apply at every sign-in."
                }
            }
            div.check {
                input #sso-jit type="checkbox" name="jit" aria-describedby="sso-jit-hint";
                label for="sso-jit" { "Create people at their first sign-in" }
                p.hint #sso-jit-hint { "Otherwise an admin (or SCIM) adds them first." }
            }
            div.buttons { button type="submit" { "Add provider" } }
        }
    };
    org_page(&user, &org, "sso", "Single sign-on", body)
}

pub async fn add_provider(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath(org): WebPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match user.form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let text = |name: &str| fields.get(name).unwrap_or("").trim().to_owned();
    let optional = |name: &str| Some(text(name)).filter(|v| !v.is_empty());
    let group_rules = match parse_rules(fields.get("group_rules").unwrap_or("")) {
        Ok(rules) => rules,
        Err(e) => return failure(Some(&user), e),
    };
    let request = NewProviderRequest {
        name: text("name"),
        issuer: text("issuer"),
        client_id: text("client_id"),
        client_secret_file: text("client_secret_file"),
        scopes: optional("scopes"),
        groups_claim: optional("groups_claim"),
        email_claim: optional("email_claim"),
        jit: fields.checked("jit"),
        group_rules,
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match sso::add_provider(&state.app, &acting, &org, request).await {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/sso", q(&org)), "provider-added")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

pub async fn remove_provider(
    State(state): State<AppState>,
    user: WebUser,
    SourceAddr(source): SourceAddr,
    WebPath((org, id)): WebPath<(String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = user.form(&headers, &body) {
        return refused;
    }
    let acting = Acting::new(&user.caller, &source, state.now());
    match sso::remove_provider(&state.app, &acting, &org, id).await {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/sso", q(&org)), "provider-removed")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines_read_back_as_written() {
        let rules = parse_rules("ml-admins = admin\n\n team-vision = team vision \nleads=team vision admin").unwrap();
        let lines: Vec<String> = rules.iter().map(rule_line).collect();
        assert_eq!(
            lines,
            [
                "ml-admins = admin",
                "team-vision = team vision",
                "leads = team vision admin"
            ]
        );
        for bad in ["no-equals", "g = team", "g = a b c d", "g ="] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
    }
}
