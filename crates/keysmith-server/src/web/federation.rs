//! The organization admin's identity federation page: the JWT issuers the organization
//! trusts, a form to add one, and removal (docs/FEDERATION.md).

use super::org::{Done, org_page};
use super::{WebPath, WebUser, delete_button, failure, notice, q, see_other, when_rfc, with_notice};
use crate::auth::source::SourceAddr;
use crate::state::AppState;
use crate::timestamp::rfc3339;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keysmith_app::Acting;
use keysmith_app::federation::{self, NewIssuerRequest};
use maud::html;

pub async fn issuers(
    State(state): State<AppState>,
    user: WebUser,
    WebPath(org): WebPath<String>,
    Query(done): Query<Done>,
) -> Response {
    let list = match federation::list_issuers(&state.app, &user.caller, &org).await {
        Ok(list) => list,
        Err(e) => return failure(Some(&user), e.into()),
    };
    let base = format!("/org/{}/federation", q(&org));
    let body = html! {
        (notice(done.done.as_deref()))
        p.lead {
            "Workloads whose platform gives them a JWT (a CI job, a cluster’s service account) "
            "sign in with it instead of an API key: the wandb SDK exchanges it for an access "
            "token that lives at most an hour. Trust the platform’s issuer here."
        }
        @if list.is_empty() {
            p.empty { "No JWT issuers yet." }
        } @else {
            div.table-wrap {
                table.cards {
                    thead { tr {
                        th scope="col" { "Issuer" } th scope="col" { "Audience" } th scope="col" { "Added on" }
                        th.actions scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for i in &list {
                            tr {
                                td.primary.fill data-label="Issuer" { code.truncate title=(i.issuer) { (i.issuer) } }
                                td data-label="Audience" { code { (i.audience.as_deref().unwrap_or(&org)) } }
                                td.nowrap data-label="Added on" { (when_rfc(&rfc3339(i.created_at))) }
                                td.actions {
                                    (delete_button(&format!("{base}/{}/delete", i.id), &user.csrf, "Remove", &i.issuer))
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Trust a JWT issuer" }
        form.stack method="post" action=(base) {
            input type="hidden" name="csrf" value=(user.csrf);
            div.field {
                label for="issuer-url" { "Issuer URL" }
                input #issuer-url name="issuer" type="url" required maxlength="512"
                    placeholder="https://token.actions.githubusercontent.com" aria-describedby="issuer-hint";
                p.hint #issuer-hint {
                    "Exactly as the JWTs name it in " code { "iss" } ". Its "
                    code { "/.well-known/openid-configuration" } " is read now."
                }
            }
            div.field {
                label for="issuer-audience" { "Audience (optional)" }
                input #issuer-audience name="audience" maxlength="512" placeholder=(org) aria-describedby="audience-hint";
                p.hint #audience-hint { "The " code { "aud" } " its JWTs carry; by default the organization’s name." }
            }
            p.hint {
                "A JWT signs in as the member whose email is its " code { "sub" }
                ", or as a service account created with that external subject."
            }
            div.buttons { button type="submit" { "Trust issuer" } }
        }
    };
    org_page(&user, &org, "federation", "Identity federation", body)
}

pub async fn add_issuer(
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
    let request = NewIssuerRequest {
        issuer: fields.get("issuer").unwrap_or("").trim().to_owned(),
        audience: fields
            .get("audience")
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
    };
    let acting = Acting::new(&user.caller, &source, state.now());
    match federation::add_issuer(&state.app, &acting, &org, request).await {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/federation", q(&org)), "issuer-added")),
        Err(e) => failure(Some(&user), e.into()),
    }
}

pub async fn remove_issuer(
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
    match federation::remove_issuer(&state.app, &acting, &org, id).await {
        Ok(_) => see_other(&with_notice(&format!("/org/{}/federation", q(&org)), "issuer-removed")),
        Err(e) => failure(Some(&user), e.into()),
    }
}
