//! Commands for what an organization holds: service accounts, teams, users and the
//! audit log; and `keys rotate`. Each acts in `--org`, or in the caller's only
//! organization.

use crate::remote::{Output, api_error, client};
use anyhow::{Result, bail};
use keysmith_client::{AuditQuery, Client};
use std::io::Write;

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The organization to act in.
async fn org(client: &Client, org: Option<&str>) -> Result<String> {
    if let Some(org) = org {
        return Ok(org.to_owned());
    }
    let orgs = client.list_orgs().await.map_err(api_error)?;
    match orgs.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => bail!("you belong to no organization"),
        many => {
            let names: Vec<&str> = many.iter().map(|o| o.name.as_str()).collect();
            bail!(
                "you belong to several organizations ({}); choose one with --org",
                names.join(", ")
            )
        }
    }
}

pub enum ServiceAccountAction {
    List {
        team: Option<String>,
    },
    Create {
        name: String,
        team: Option<String>,
        description: String,
        external_subject: Option<String>,
        allowed_networks: Vec<String>,
    },
    Delete {
        name: String,
    },
}

pub async fn service_accounts(
    host: Option<&str>,
    org_flag: Option<&str>,
    action: ServiceAccountAction,
    output: Output,
) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    match action {
        ServiceAccountAction::List { team } => {
            let accounts = client
                .list_service_accounts(&org, team.as_deref())
                .await
                .map_err(api_error)?;
            match output {
                Output::Json => print_json(&accounts)?,
                Output::Text if accounts.is_empty() => eprintln!("no service accounts you manage"),
                Output::Text => {
                    println!("{:<28} {:<16} DESCRIPTION", "NAME", "SCOPE");
                    for a in &accounts {
                        let scope = a
                            .team
                            .as_deref()
                            .map_or_else(|| "organization".to_owned(), |t| format!("team {t}"));
                        println!("{:<28} {:<16} {}", a.name, scope, a.description);
                    }
                }
            }
        }
        ServiceAccountAction::Create {
            name,
            team,
            description,
            external_subject,
            allowed_networks,
        } => {
            let account = client
                .create_service_account(
                    &org,
                    &name,
                    &description,
                    team.as_deref(),
                    external_subject.as_deref(),
                    &allowed_networks,
                )
                .await
                .map_err(api_error)?;
            match output {
                Output::Json => print_json(&account)?,
                Output::Text => match &account.external_subject {
                    Some(subject) => eprintln!(
                        "created external service account {} ({}); a JWT from one of the organization's issuers with sub {subject:?} signs in as it (`keysmith jwt-issuers list`)",
                        account.name, account.scope
                    ),
                    None => eprintln!(
                        "created service account {} ({}); create its key with `keysmith keys create --name <use> --owner {}`",
                        account.name, account.scope, account.name
                    ),
                },
            }
        }
        ServiceAccountAction::Delete { name } => {
            client.delete_service_account(&org, &name).await.map_err(api_error)?;
            if output == Output::Json {
                print_json(&serde_json::json!({ "deleted": name }))?;
            } else {
                eprintln!("deleted service account {name} and its keys");
            }
        }
    }
    Ok(())
}

pub enum JwtIssuerAction {
    List,
    Add { issuer: String, audience: Option<String> },
    Remove { id: i64 },
}

/// The JWT issuers the organization trusts for identity federation (org admins).
pub async fn jwt_issuers(
    host: Option<&str>,
    org_flag: Option<&str>,
    action: JwtIssuerAction,
    output: Output,
) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    match action {
        JwtIssuerAction::List => {
            let issuers = client.list_jwt_issuers(&org).await.map_err(api_error)?;
            match output {
                Output::Json => print_json(&issuers)?,
                Output::Text if issuers.is_empty() => {
                    eprintln!("no JWT issuers; add one with `keysmith jwt-issuers add <URL>`")
                }
                Output::Text => {
                    println!("{:<6} {:<24} ISSUER", "ID", "AUDIENCE");
                    for i in &issuers {
                        println!("{:<6} {:<24} {}", i.id, i.audience, i.issuer);
                    }
                }
            }
        }
        JwtIssuerAction::Add { issuer, audience } => {
            let added = client
                .add_jwt_issuer(&org, &issuer, audience.as_deref())
                .await
                .map_err(api_error)?;
            match output {
                Output::Json => print_json(&added)?,
                Output::Text => eprintln!(
                    "trusting {} (ID {}): its JWTs with aud {:?} are exchanged at /oidc/token",
                    added.issuer, added.id, added.audience
                ),
            }
        }
        JwtIssuerAction::Remove { id } => {
            client.remove_jwt_issuer(&org, id).await.map_err(api_error)?;
            if output == Output::Json {
                print_json(&serde_json::json!({ "removed": id }))?;
            } else {
                eprintln!("removed JWT issuer {id}; its JWTs are refused from now on");
            }
        }
    }
    Ok(())
}

pub enum TeamAction {
    List,
    Create { name: String },
    Show { name: String },
    AddMember { team: String, user: String, admin: bool },
    RemoveMember { team: String, user: String },
}

pub async fn teams(host: Option<&str>, org_flag: Option<&str>, action: TeamAction, output: Output) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    match action {
        TeamAction::List => {
            let teams = client.list_teams(&org).await.map_err(api_error)?;
            match output {
                Output::Json => print_json(&teams)?,
                Output::Text => teams.iter().for_each(|t| println!("{}", t.name)),
            }
        }
        TeamAction::Create { name } => {
            let team = client.create_team(&org, &name).await.map_err(api_error)?;
            match output {
                Output::Json => print_json(&team)?,
                Output::Text => eprintln!("created team {}", team.name),
            }
        }
        TeamAction::Show { name } => {
            let team = client.get_team(&org, &name).await.map_err(api_error)?;
            match output {
                Output::Json => print_json(&team)?,
                Output::Text => {
                    println!("team {}", team.name);
                    for m in &team.members {
                        println!("  {:<28} {}", m.username, m.role);
                    }
                    for a in &team.service_accounts {
                        println!("  {a:<28} service account");
                    }
                }
            }
        }
        TeamAction::AddMember { team, user, admin } => {
            let role = if admin { "admin" } else { "member" };
            client
                .set_team_member(&org, &team, &user, role)
                .await
                .map_err(api_error)?;
            if output == Output::Json {
                print_json(&serde_json::json!({ "team": team, "user": user, "role": role }))?;
            } else {
                eprintln!("{user} is a {role} of team {team}");
            }
        }
        TeamAction::RemoveMember { team, user } => {
            client.remove_team_member(&org, &team, &user).await.map_err(api_error)?;
            if output == Output::Json {
                print_json(&serde_json::json!({ "team": team, "removed": user }))?;
            } else {
                eprintln!("removed {user} from team {team}");
            }
        }
    }
    Ok(())
}

pub enum UserAction {
    List,
    Invite {
        username: String,
        email: Option<String>,
        admin: bool,
    },
    Reinvite {
        username: String,
    },
    SetRole {
        username: String,
        role: String,
    },
    SetActive {
        username: String,
        active: bool,
    },
    Delete {
        username: String,
    },
}

pub async fn users(host: Option<&str>, org_flag: Option<&str>, action: UserAction, output: Output) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    let show = |user: keysmith_client::User| -> Result<()> {
        match output {
            Output::Json => print_json(&user),
            Output::Text => {
                let state = if user.active { "active" } else { "deactivated" };
                eprintln!("{}: {} ({state})", user.username, user.role);
                Ok(())
            }
        }
    };
    match action {
        UserAction::List => {
            let users = client.list_users(&org).await.map_err(api_error)?;
            match output {
                Output::Json => print_json(&users)?,
                Output::Text => {
                    println!("{:<28} {:<8} {:<12} EMAIL", "USERNAME", "ROLE", "STATE");
                    for u in &users {
                        let state = if u.active { "active" } else { "deactivated" };
                        println!(
                            "{:<28} {:<8} {:<12} {}",
                            u.username,
                            u.role,
                            state,
                            u.email.as_deref().unwrap_or("")
                        );
                    }
                }
            }
        }
        UserAction::Invite { username, email, admin } => {
            let role = if admin { "admin" } else { "member" };
            let invited = client
                .invite_new_user(&org, &username, email.as_deref(), role)
                .await
                .map_err(api_error)?;
            print_invitation(&username, invited.invite_token.as_ref().map(|t| t.expose()), output)?;
        }
        UserAction::Reinvite { username } => {
            let token = client.reinvite_user(&org, &username).await.map_err(api_error)?;
            print_invitation(&username, Some(token.invite_token.expose()), output)?;
        }
        UserAction::SetRole { username, role } => {
            show(
                client
                    .update_user(&org, &username, Some(&role), None)
                    .await
                    .map_err(api_error)?,
            )?;
        }
        UserAction::SetActive { username, active } => {
            show(
                client
                    .update_user(&org, &username, None, Some(active))
                    .await
                    .map_err(api_error)?,
            )?;
        }
        UserAction::Delete { username } => {
            client.delete_user(&org, &username).await.map_err(api_error)?;
            if output == Output::Json {
                print_json(&serde_json::json!({ "deleted": username }))?;
            } else {
                eprintln!("deleted {username} and every key they owned");
            }
        }
    }
    Ok(())
}

/// The invitation token alone on stdout, like a new key; guidance on stderr.
fn print_invitation(username: &str, token: Option<&str>, output: Output) -> Result<()> {
    let Some(token) = token else {
        bail!("the server returned no invitation token")
    };
    match output {
        Output::Json => print_json(&serde_json::json!({ "username": username, "invite_token": token }))?,
        Output::Text => {
            println!("{token}");
            eprintln!(
                "Give this one-time token to {username} (valid 7 days): they set a password with \
                 POST /api/v1/invites/accept {{\"token\": …, \"password\": …}}."
            );
        }
    }
    Ok(())
}

pub async fn audit(host: Option<&str>, org_flag: Option<&str>, query: AuditQuery, output: Output) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    let page = client.audit(&org, &query).await.map_err(api_error)?;
    match output {
        Output::Json => print_json(&page)?,
        Output::Text => {
            for e in &page.items {
                let at = &e.at[..e.at.len().min(19)];
                let from = e.source_address.as_deref().unwrap_or("-");
                println!(
                    "{at}  {:<24} {:<16} {} {} (from {from})",
                    e.action, e.actor, e.target_kind, e.target
                );
            }
            if let Some(cursor) = page.next_cursor {
                eprintln!("(older entries: --cursor {cursor})");
            }
        }
    }
    Ok(())
}

/// The organization's key report: per section, the keys with what makes them worth a
/// look, and what to do about them.
pub async fn key_report(host: Option<&str>, org_flag: Option<&str>, output: Output) -> Result<()> {
    let client = client(host)?;
    let org = org(&client, org_flag).await?;
    let report = client.key_report(&org).await.map_err(api_error)?;
    if output == Output::Json {
        return print_json(&report);
    }
    let day = |t: &Option<String>| {
        t.as_deref()
            .map_or("never".to_owned(), |t| t[..t.len().min(10)].to_owned())
    };
    let sections = [
        (
            format!("Never used (made {} or more days ago)", report.never_used_days),
            &report.never_used,
            "delete them if nothing needs them",
        ),
        (
            format!("Idle (not used for {} days)", report.idle_days),
            &report.idle,
            "delete them, or ask their owners",
        ),
        (
            format!("Expiring within {} days", report.expiring_within_days),
            &report.expiring,
            "rotate them: keysmith keys rotate <key id>",
        ),
        (
            format!("Over-privileged (only reads for {} days)", report.reads_only_days),
            &report.over_privileged,
            "replace them with read keys: keysmith keys create --scope read",
        ),
    ];
    println!(
        "Key report of {} ({})",
        report.organization,
        &report.generated_at[..report.generated_at.len().min(19)]
    );
    for (title, section, advice) in sections {
        println!();
        println!(
            "{title}: {}{}",
            section.items.len(),
            if section.truncated { "+" } else { "" }
        );
        if section.items.is_empty() {
            continue;
        }
        println!(
            "  {:<38} {:<24} {:<20} {:<6} {:<10} {:<10} EXPIRES",
            "KEY ID", "NAME", "OWNER", "SCOPE", "CREATED", "LAST USED"
        );
        for k in &section.items {
            let owner = crate::remote::owner_label(k);
            println!(
                "  {:<38} {:<24} {:<20} {:<6} {:<10} {:<10} {}",
                k.display,
                crate::remote::fit(&k.name, 24),
                crate::remote::fit(&owner, 20),
                k.scope.as_deref().unwrap_or("admin"),
                &k.created_at[..k.created_at.len().min(10)],
                day(&k.last_used_at),
                day(&k.expires_at),
            );
        }
        println!("  ({advice})");
    }
    Ok(())
}

/// A new key for the same owner with the same name, printed alone on stdout; the old
/// key keeps working until it is deleted, so nothing breaks while the new one is rolled
/// out (the seed's rotation: create, switch, test, delete).
pub async fn rotate(host: Option<&str>, key_id: &str, grace: &str, output: Output) -> Result<()> {
    let client = client(host)?;
    let created = client.rotate_key(key_id, grace).await.map_err(api_error)?;
    let old = created.rotated_from.clone().unwrap_or_else(|| key_id.to_owned());
    match output {
        Output::Json => print_json(&serde_json::json!({
            "key": created.key.expose(),
            "key_id": created.key_id,
            "replaces": old,
            "old_key_expires_at": created.previous_expires_at,
            "name": created.name,
            "expires_at": created.expires_at,
        }))?,
        Output::Text => {
            println!("{}", created.key.expose());
            let until = match &created.previous_expires_at {
                Some(at) => format!("until {at}, then stops by itself"),
                None => "until you delete it".to_owned(),
            };
            eprintln!(
                "Created {} to replace {old} (\"{}\"). The old key keeps working {until}. Switch every user \
                 of the old key; `keysmith keys show {old}` tells when it was last used and from where; \
                 `keysmith keys delete {old}` finishes the rotation.",
                created.key_id, created.name
            );
        }
    }
    Ok(())
}
