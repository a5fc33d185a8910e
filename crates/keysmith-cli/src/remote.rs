//! Talking to a Keysmith server from the command line: which server, which key, and
//! the commands that use them. The key comes only from the environment (later also
//! from `login`'s store), never from an argument: argv is visible to every user of
//! the machine through `ps`.

use anyhow::{Result, bail};
use keysmith_client::{Client, ClientError, CreateKey, KeyQuery};
use keysmith_core::SecretString;
use std::io::Write;

/// Where the key and host come from, in order.
pub const KEY_VARIABLES: [&str; 2] = ["KEYSMITH_API_KEY", "WANDB_API_KEY"];
pub const HOST_VARIABLES: [&str; 2] = ["KEYSMITH_HOST", "WANDB_BASE_URL"];

/// Exit status when no key is configured or the server refuses it.
pub const EXIT_NOT_AUTHENTICATED: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// An error that ends the command with a specific exit status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

pub fn client(host_flag: Option<&str>) -> Result<Client> {
    Ok(client_with_source(host_flag)?.0)
}

/// The server from the flag, the environment, or `login`'s profile.
fn host(host_flag: Option<&str>) -> Option<String> {
    host_flag.map(str::to_owned).or_else(|| {
        HOST_VARIABLES
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    })
}

/// A client and where its key came from: the environment first (a CI job's secret),
/// then what `keysmith login` stored.
pub fn client_with_source(host_flag: Option<&str>) -> Result<(Client, String)> {
    let from_env = KEY_VARIABLES
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()).map(|k| (*v, k)));
    if let Some((variable, key)) = from_env {
        let host = host(host_flag)
            .or_else(|| crate::credentials::Credentials::default().stored_host())
            .ok_or_else(no_server)?;
        return Ok((
            Client::new(&host, SecretString::new(key))?,
            format!("the environment variable {variable}"),
        ));
    }
    if let Some((stored_host, key, place)) = crate::credentials::Credentials::default().load() {
        let host = host(host_flag).unwrap_or_else(|| stored_host.clone());
        if host.trim_end_matches('/') != stored_host.trim_end_matches('/') {
            bail!("the stored key is for {stored_host}, not {host}; run `keysmith login --host {host}` first");
        }
        return Ok((Client::new(&host, key)?, place));
    }
    Err(Exit {
        code: EXIT_NOT_AUTHENTICATED,
        message: "no API key: run `keysmith login`, or set KEYSMITH_API_KEY (or WANDB_API_KEY) in the environment, \
                  for example with `read -rs KEYSMITH_API_KEY && export KEYSMITH_API_KEY`; keys are never taken as arguments"
            .into(),
    }
    .into())
}

fn no_server() -> anyhow::Error {
    anyhow::anyhow!("no server: pass --host https://keys.example.com, or set KEYSMITH_HOST (or WANDB_BASE_URL)")
}

/// `keysmith login`: the key from stdin, the environment or a hidden prompt, checked
/// against the server, then stored.
pub async fn login(host_flag: Option<&str>, with_key_stdin: bool, storage: crate::credentials::Storage) -> Result<()> {
    use std::io::{IsTerminal, Read};
    let host = host(host_flag)
        .or_else(|| crate::credentials::Credentials::default().stored_host())
        .ok_or_else(no_server)?;
    let key = if with_key_stdin {
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("cannot read the key from stdin: {e}"))?;
        text.trim().to_owned()
    } else if let Some(key) = KEY_VARIABLES
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
    {
        key
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Paste your API key for {host} (input hidden): "))?
            .trim()
            .to_owned()
    } else {
        bail!("no key: pipe it in with --with-key-stdin, set KEYSMITH_API_KEY, or run in a terminal to be asked");
    };
    let key = SecretString::new(key);
    if keysmith_core::PresentedKey::parse(key.expose()).is_err() {
        bail!("that is not an API key (a wandb_v1_… key of 86 characters, or a 40-character legacy key)");
    }
    let client = Client::new(&host, key.clone())?;
    let viewer = client.viewer().await.map_err(api_error)?;
    let place = crate::credentials::Credentials::default().save(client.host(), &key, storage)?;
    eprintln!(
        "Logged in to {} as {}. The key is stored in {place}.",
        client.host(),
        viewer.username
    );
    Ok(())
}

pub fn logout() -> Result<()> {
    if crate::credentials::Credentials::default().remove()? {
        eprintln!(
            "Logged out: the stored key is gone from this machine. It still works on the server; \
             delete it with `keysmith keys delete <key ID>` if you no longer need it."
        );
    } else {
        eprintln!("not logged in");
    }
    Ok(())
}

/// Where the key comes from and whether the server takes it.
pub async fn status(host_flag: Option<&str>, output: Output) -> Result<()> {
    let (client, source) = client_with_source(host_flag)?;
    let viewer = client.viewer().await;
    let (ok, who) = match &viewer {
        Ok(v) => (true, v.username.clone()),
        Err(e) => (false, e.to_string()),
    };
    match output {
        Output::Json => print_json(&serde_json::json!({
            "host": client.host(),
            "key_source": source,
            "authenticated": ok,
            "username": viewer.as_ref().ok().map(|v| v.username.clone()),
            "key_id": viewer.as_ref().ok().and_then(|v| v.auth.key_id.clone()),
        }))?,
        Output::Text => {
            println!("server:  {}", client.host());
            println!("key:     from {source}");
            println!(
                "{}",
                if ok {
                    format!("user:    {who}")
                } else {
                    format!("refused: {who}")
                }
            );
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Exit {
            code: EXIT_NOT_AUTHENTICATED,
            message: "the server refused the key".into(),
        }
        .into())
    }
}

/// Maps a refused key to its exit status; other errors stay errors.
pub fn api_error(err: ClientError) -> anyhow::Error {
    match err.code() {
        Some("invalid_api_key" | "unauthenticated" | "malformed_authorization") => Exit {
            code: EXIT_NOT_AUTHENTICATED,
            message: format!("the server refused the API key: {err}; check KEYSMITH_API_KEY, or create a new key"),
        }
        .into(),
        _ => err.into(),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub async fn whoami(host: Option<&str>, output: Output) -> Result<()> {
    let client = client(host)?;
    let viewer = client.viewer().await.map_err(api_error)?;
    match output {
        Output::Json => print_json(&viewer)?,
        Output::Text => {
            println!(
                "{} ({}) on {}",
                viewer.username,
                viewer.kind.replace('_', " "),
                client.host()
            );
            for org in &viewer.orgs {
                println!("  organization {} ({})", org.name, org.role);
            }
            for team in &viewer.teams {
                println!("  team {}/{} ({})", team.org, team.name, team.role);
            }
            if let Some(key_id) = &viewer.auth.key_id {
                println!("  authenticated with key {key_id}");
            }
        }
    }
    Ok(())
}

pub async fn list_keys(host: Option<&str>, query: KeyQuery, all: bool, output: Output) -> Result<()> {
    let client = client(host)?;
    let mut query = query;
    let mut items = Vec::new();
    loop {
        let page = client.list_keys(&query).await.map_err(api_error)?;
        items.extend(page.items);
        match page.next_cursor {
            Some(cursor) if all => query.cursor = Some(cursor),
            next => {
                if let (Some(_), Output::Text) = (&next, output) {
                    eprintln!("(more keys: pass --all to list every page)");
                }
                break;
            }
        }
    }
    match output {
        Output::Json => print_json(&items)?,
        Output::Text => {
            if items.is_empty() {
                eprintln!("no keys");
                return Ok(());
            }
            println!(
                "{:<38} {:<24} {:<20} {:<21} {:<21} EXPIRES",
                "KEY ID", "NAME", "OWNER", "CREATED", "LAST USED"
            );
            for k in &items {
                let owner = if k.owner.kind == "service_account" {
                    format!("{} (sa)", k.owner.username)
                } else {
                    k.owner.username.clone()
                };
                let expires = match (&k.expires_at, k.status.as_deref()) {
                    (_, Some("expired")) => "expired".to_owned(),
                    (Some(t), _) => t[..t.len().min(19)].to_owned(),
                    (None, _) => "never".to_owned(),
                };
                println!(
                    "{:<38} {:<24} {:<20} {:<21} {:<21} {}",
                    k.display,
                    truncate(&k.name, 24),
                    truncate(&owner, 20),
                    &k.created_at[..k.created_at.len().min(19)],
                    k.last_used_at.as_deref().map_or("never", |t| &t[..t.len().min(19)]),
                    expires
                );
            }
            warn_about_expiry(&items);
        }
    }
    Ok(())
}

/// Keys that expired or expire within a week, on stderr, so a script's stdout stays
/// clean.
fn warn_about_expiry(items: &[keysmith_client::ApiKey]) {
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let expired: Vec<&str> = items
        .iter()
        .filter(|k| k.status.as_deref() == Some("expired"))
        .map(|k| k.display.as_str())
        .collect();
    // RFC 3339 times in UTC compare as text.
    let expiring: Vec<&str> = items
        .iter()
        .filter(|k| k.status.as_deref() != Some("expired"))
        .filter(|k| k.expires_at.as_deref().is_some_and(|t| t < soon.as_str()))
        .map(|k| k.display.as_str())
        .collect();
    if !expiring.is_empty() {
        eprintln!(
            "warning: {} key(s) expire within 7 days: {}. Rotate them with `keysmith keys rotate <key ID>`.",
            expiring.len(),
            expiring.join(", ")
        );
    }
    if !expired.is_empty() {
        eprintln!(
            "warning: {} key(s) have expired and no longer work: {}.",
            expired.len(),
            expired.join(", ")
        );
    }
}

/// `keys show`: one key with its expiry, rotation and recent sources.
pub async fn show_key(host: Option<&str>, key_id: &str, output: Output) -> Result<()> {
    let client = client(host)?;
    let key = client.get_key(key_id).await.map_err(api_error)?;
    match output {
        Output::Json => print_json(&key)?,
        Output::Text => {
            let at = |t: &Option<String>, none: &str| t.clone().unwrap_or_else(|| none.to_owned());
            println!("key ID       {}", key.key_id);
            println!("name         {}", key.name);
            println!(
                "owner        {} ({})",
                key.owner.username,
                key.owner.kind.replace('_', " ")
            );
            println!("status       {}", key.status.as_deref().unwrap_or("active"));
            println!("created      {}", key.created_at);
            println!("expires      {}", at(&key.expires_at, "never"));
            println!("last used    {}", at(&key.last_used_at, "never"));
            if let Some(to) = &key.rotated_to {
                println!("replaced by  {to} (rotation in progress: delete this key to finish it)");
            }
            if let Some(from) = &key.rotated_from {
                println!("replaces     {from}");
            }
            let sources = key.sources.unwrap_or_default();
            if sources.is_empty() {
                println!("sources      none recorded");
            } else {
                println!("recent sources (most recent first):");
                println!(
                    "  {:<40} {:<21} {:<21} USER AGENT",
                    "ADDRESS", "FIRST SEEN", "LAST SEEN"
                );
                for s in sources {
                    println!(
                        "  {:<40} {:<21} {:<21} {}",
                        s.address,
                        &s.first_seen[..s.first_seen.len().min(19)],
                        &s.last_seen[..s.last_seen.len().min(19)],
                        s.user_agent
                    );
                }
            }
        }
    }
    Ok(())
}

/// `keys revoke-exposed`: the key from stdin to the server, no login needed.
pub async fn revoke_exposed(host_flag: Option<&str>, output: Output) -> Result<()> {
    use std::io::{IsTerminal, Read};
    let host = host(host_flag)
        .or_else(|| crate::credentials::Credentials::default().stored_host())
        .ok_or_else(no_server)?;
    if std::io::stdin().is_terminal() {
        eprintln!("Paste the exposed key, then press Enter and Ctrl-D:");
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read the key from stdin: {e}"))?;
    let key = SecretString::new(text.trim().to_owned());
    if key.expose().is_empty() {
        bail!("no key on standard input");
    }
    Client::anonymous(&host)?
        .revoke_exposed(&key)
        .await
        .map_err(api_error)?;
    match output {
        Output::Json => print_json(&serde_json::json!({ "status": "received" }))?,
        Output::Text => eprintln!(
            "Sent to {host}. If it was a key of this server, it no longer works anywhere, and the \
             organization's admins see the revocation in the audit log."
        ),
    }
    Ok(())
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    }
}

/// Prints the new key to stdout and nothing else there, so `> file` or a pipe into a
/// secret manager captures exactly the key; guidance goes to stderr.
pub async fn create_key(host: Option<&str>, request: CreateKey, output: Output) -> Result<()> {
    let client = client(host)?;
    let created = client.create_key(&request).await.map_err(api_error)?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "key": created.key.expose(),
            "key_id": created.key_id,
            "format": created.format,
            "name": created.name,
            "owner": created.owner,
            "created_at": created.created_at,
            "expires_at": created.expires_at,
        }))?,
        Output::Text => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", created.key.expose())?;
            out.flush()?;
            let expiry = created
                .expires_at
                .as_deref()
                .map_or_else(String::new, |at| format!(" It stops working at {at}."));
            eprintln!(
                "Created key {} (\"{}\") for {}.{expiry} It is shown only this once: store it in a secret manager \
                 or an environment variable, never in a file you commit.",
                created.key_id, created.name, created.owner.username
            );
        }
    }
    Ok(())
}

pub async fn rename_key(host: Option<&str>, key_id: &str, name: &str, output: Output) -> Result<()> {
    let client = client(host)?;
    let key = client.rename_key(key_id, name).await.map_err(api_error)?;
    match output {
        Output::Json => print_json(&key)?,
        Output::Text => eprintln!("renamed {} to \"{}\"", key.display, key.name),
    }
    Ok(())
}

pub async fn delete_keys(host: Option<&str>, key_ids: &[String], output: Output) -> Result<()> {
    let client = client(host)?;
    let mut results = Vec::new();
    let mut failed = 0;
    for key_id in key_ids {
        let status = match client.delete_key(key_id).await {
            Ok(()) => "deleted".to_owned(),
            Err(e) => {
                if e.code() == Some("invalid_api_key") {
                    return Err(api_error(e));
                }
                failed += 1;
                e.code().unwrap_or("error").to_owned()
            }
        };
        if output == Output::Text {
            eprintln!("{key_id}: {}", status.replace('_', " "));
        }
        results.push(serde_json::json!({ "key_id": key_id, "status": status }));
    }
    if output == Output::Json {
        print_json(&results)?;
    }
    if failed > 0 {
        bail!("{failed} of {} key(s) not deleted", key_ids.len());
    }
    Ok(())
}

/// Refuses an argument that is an API key, before anything else runs: a key in argv is
/// visible in `ps` and the shell's history. The key itself is not repeated.
pub fn refuse_keys_in_arguments(args: &[String]) -> Result<()> {
    for (i, arg) in args.iter().enumerate().skip(1) {
        let candidate = arg.split_once('=').map_or(arg.as_str(), |(_, v)| v);
        if keysmith_core::PresentedKey::parse(candidate).is_ok() {
            return Err(Exit {
                code: 2,
                message: format!(
                    "argument {i} looks like an API key; keysmith never takes keys as arguments, because the \
                     command line is visible to every user of this machine (ps) and stays in your shell history.\n\
                     Put the key in the environment instead: `read -rs KEYSMITH_API_KEY && export KEYSMITH_API_KEY`.\n\
                     If the key was exposed, delete it and create a new one."
                ),
            }
            .into());
        }
    }
    Ok(())
}
