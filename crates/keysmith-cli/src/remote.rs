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

/// A configured key that cannot be used as it is: it holds a character that no HTTP
/// header can carry. Exit status 3, like a missing or refused key; the message says
/// where the key came from and which character, never the key.
#[derive(Debug, thiserror::Error)]
#[error("{problem}; nothing was sent to the server. {fix}")]
pub struct UnusableKey {
    /// What is wrong and where: "the API key in KEYSMITH_API_KEY contains …".
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

/// The exit status for an error that ends a command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(exit) = err.downcast_ref::<Exit>() {
        exit.code
    } else if err.is::<UnusableKey>()
        || matches!(err.downcast_ref::<ClientError>(), Some(ClientError::UnsendableKey(_)))
    {
        EXIT_NOT_AUTHENTICATED
    } else {
        1
    }
}

/// A key as read from `from` ("in KEYSMITH_API_KEY", "on standard input", …) with
/// its surrounding whitespace removed (a secret mounted from a file usually ends with
/// a newline). A key with a character no header can carry is refused here, saying
/// where and which kind, so it is never mistaken for a server that cannot be reached.
pub fn clean_key(raw: &str, from: &str, fix: &str) -> Result<SecretString> {
    match keysmith_client::clean_key(raw) {
        Ok(key) => Ok(SecretString::new(key.to_owned())),
        Err(at) => Err(UnusableKey {
            problem: format!("the API key {from} contains a character that cannot be sent ({at})"),
            fix: fix.to_owned(),
        }
        .into()),
    }
}

/// The first of [`KEY_VARIABLES`] that holds more than whitespace, cleaned, and its
/// name.
pub fn key_from_env() -> Result<Option<(&'static str, SecretString)>> {
    for variable in KEY_VARIABLES {
        let raw = match std::env::var(variable) {
            Ok(raw) => zeroize::Zeroizing::new(raw),
            Err(std::env::VarError::NotPresent) => continue,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(UnusableKey {
                    problem: format!("the API key in {variable} is not valid UTF-8 text, so it cannot be sent"),
                    fix: set_again(variable),
                }
                .into());
            }
        };
        if raw.trim().is_empty() {
            continue;
        }
        let key = clean_key(&raw, &format!("in {variable}"), &set_again(variable))?;
        return Ok(Some((variable, key)));
    }
    Ok(None)
}

fn set_again(variable: &str) -> String {
    format!(
        "Set {variable} again with the key alone, for example with `read -rs {variable} && export {variable}`, \
         and paste the key afresh from where it is kept."
    )
}

/// The server from the flag, the environment, or `login`'s profile.
fn host(host_flag: Option<&str>) -> Option<String> {
    host_flag.map(str::to_owned).or_else(|| {
        HOST_VARIABLES
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
    })
}

/// The server the client commands would use: the flag, the environment, then what
/// `keysmith login` stored.
pub fn configured_host(host_flag: Option<&str>) -> Option<String> {
    host(host_flag).or_else(|| crate::credentials::Credentials::default().stored_host())
}

/// A client and where its key came from: the environment first (a CI job's secret),
/// then what `keysmith login` stored.
pub fn client_with_source(host_flag: Option<&str>) -> Result<(Client, String)> {
    if let Some((variable, key)) = key_from_env()? {
        let host = configured_host(host_flag).ok_or_else(no_server)?;
        return Ok((Client::new(&host, key)?, format!("the environment variable {variable}")));
    }
    if let Some((stored_host, key, place)) = crate::credentials::Credentials::default().load() {
        let host = host(host_flag).unwrap_or_else(|| stored_host.clone());
        if host.trim_end_matches('/') != stored_host.trim_end_matches('/') {
            bail!("the stored key is for {stored_host}, not {host}; run `keysmith login --host {host}` first");
        }
        let key = clean_key(
            key.expose(),
            &format!("in {place}"),
            "Run `keysmith login` again to store the key afresh.",
        )?;
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

fn no_key_given(place: &str, how: &str) -> anyhow::Error {
    Exit {
        code: EXIT_NOT_AUTHENTICATED,
        message: format!("no key was given {place}; {how}"),
    }
    .into()
}

/// `keysmith login`: where the key will be kept is settled first (a key read and then
/// thrown away because there is no credential store would have to be pasted again),
/// then the key from stdin, the environment or a hidden prompt, checked against the
/// server, then stored.
pub async fn login(host_flag: Option<&str>, with_key_stdin: bool, storage: crate::credentials::Storage) -> Result<()> {
    use crate::credentials::{Credentials, Storage};
    use std::io::{IsTerminal, Read};
    let host = configured_host(host_flag).ok_or_else(no_server)?;
    let interactive = !with_key_stdin && std::io::stdin().is_terminal();
    // The environment is no pasted key: looking at it first loses nothing.
    let from_env = if with_key_stdin { None } else { key_from_env()? };
    if !with_key_stdin && from_env.is_none() && !interactive {
        return Err(Exit {
            code: EXIT_NOT_AUTHENTICATED,
            message: "no key: pipe it in with --with-key-stdin, set KEYSMITH_API_KEY, or run in a terminal to be asked"
                .into(),
        }
        .into());
    }
    let credentials = Credentials::default();
    let storage = match storage {
        Storage::File => Storage::File,
        Storage::Keyring => match crate::credentials::keyring_available() {
            Ok(()) => Storage::Keyring,
            Err(why) if interactive => {
                eprintln!("{why}.");
                if !confirm_file_storage(&credentials)? {
                    bail!(
                        "nothing stored. Keep the key in KEYSMITH_API_KEY instead, or run `keysmith login --store file` \
                         later"
                    );
                }
                Storage::File
            }
            Err(why) => {
                return Err(Exit {
                    code: 1,
                    message: format!(
                        "{why}. No key was read. Run `keysmith login --store file` to keep the key in {} (readable \
                         only by you), or keep the key in KEYSMITH_API_KEY instead.",
                        credentials.credentials_file().display()
                    ),
                }
                .into());
            }
        },
    };
    let key = if with_key_stdin {
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("cannot read the key from stdin: {e}"))?;
        if text.trim().is_empty() {
            return Err(no_key_given(
                "on standard input",
                "pipe the key in, for example `vault kv get -field=key secret/keysmith | keysmith login --with-key-stdin`",
            ));
        }
        clean_key(
            &text,
            "on standard input",
            "Send the key alone, as it was shown when it was created.",
        )?
    } else if let Some((_, key)) = from_env {
        key
    } else {
        let typed = zeroize::Zeroizing::new(rpassword::prompt_password(format!(
            "Paste your API key for {host} (input hidden): "
        ))?);
        if typed.trim().is_empty() {
            return Err(no_key_given(
                "at the prompt",
                "paste the key, then press Enter (the input stays hidden)",
            ));
        }
        clean_key(
            &typed,
            "typed at the prompt",
            "Paste the key again, as it was shown when it was created.",
        )?
    };
    if keysmith_core::PresentedKey::parse(key.expose()).is_err() {
        bail!("that is not an API key (a wandb_v1_… key of 86 characters, or a 40-character legacy key)");
    }
    let client = Client::new(&host, key.clone())?;
    let viewer = client.viewer().await.map_err(api_error)?;
    let place = match credentials.save(client.host(), &key, storage) {
        Ok(place) => place,
        // The store was there a moment ago but did not take the key: offer the file
        // rather than dropping a key the user just pasted.
        Err(e) if storage == Storage::Keyring && interactive => {
            eprintln!("{e:#}");
            if !confirm_file_storage(&credentials)? {
                bail!("nothing stored");
            }
            credentials.save(client.host(), &key, Storage::File)?
        }
        Err(e) => return Err(e),
    };
    eprintln!(
        "Logged in to {} as {}. The key is stored in {place}.",
        client.host(),
        viewer.username
    );
    Ok(())
}

/// Asks on the terminal whether the key may go to the private file; no is the default.
fn confirm_file_storage(credentials: &crate::credentials::Credentials) -> Result<bool> {
    eprint!(
        "Store the key in {} (readable only by you)? [y/N] ",
        crate::credentials::shown_path(&credentials.credentials_file())
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
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
                "{:<38} {} {} {:<21} {:<21} {:<21} SCOPE",
                "KEY ID",
                fit("NAME", 24),
                fit("OWNER", 20),
                "CREATED",
                "LAST USED",
                "EXPIRES"
            );
            for k in &items {
                let owner = owner_label(k);
                let expires = match (&k.expires_at, k.status.as_deref()) {
                    (_, Some("expired")) => "expired".to_owned(),
                    (Some(t), _) => t[..t.len().min(19)].to_owned(),
                    (None, _) => "never".to_owned(),
                };
                println!(
                    "{:<38} {} {} {:<21} {:<21} {:<21} {}",
                    k.display,
                    fit(&k.name, 24),
                    fit(&owner, 20),
                    &k.created_at[..k.created_at.len().min(19)],
                    k.last_used_at.as_deref().map_or("never", |t| &t[..t.len().min(19)]),
                    expires,
                    k.scope.as_deref().unwrap_or("admin")
                );
            }
            warn_about_expiry(&items);
        }
    }
    Ok(())
}

/// Keys that expired or expire within a week, and keys being rotated, on stderr, so a
/// script's stdout stays clean.
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
    // A key being rotated has its end set by the rotation: rotating it again fails
    // (rotation_in_progress), so it gets its own advice instead of the expiry warning.
    let rotating: Vec<&keysmith_client::ApiKey> = items
        .iter()
        .filter(|k| k.status.as_deref() != Some("expired"))
        .filter(|k| k.rotated_to.is_some())
        .collect();
    // RFC 3339 times in UTC compare as text.
    let expiring: Vec<&str> = items
        .iter()
        .filter(|k| k.status.as_deref() != Some("expired") && k.rotated_to.is_none())
        .filter(|k| k.expires_at.as_deref().is_some_and(|t| t < soon.as_str()))
        .map(|k| k.display.as_str())
        .collect();
    for k in rotating {
        let new = k.rotated_to.as_deref().unwrap_or_default();
        let until = match &k.expires_at {
            Some(at) => format!("it stops working at {at}"),
            None => "it keeps working until you delete it".to_owned(),
        };
        eprintln!(
            "note: {old} is being rotated to {new}; {until}; finish now with `keysmith keys delete {old}`.",
            old = k.key_id
        );
    }
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
            println!("scope        {}", key.scope.as_deref().unwrap_or("admin"));
            if !key.allowed_networks.is_empty() {
                println!("networks     {}", key.allowed_networks.join(", "));
            }
            if let Some(n) = key.requests_per_minute {
                println!("limit        {n} requests a minute");
            }
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
    let host = configured_host(host_flag).ok_or_else(no_server)?;
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

/// `s` in exactly `width` terminal columns: cut with `…` when wider, padded with
/// spaces when narrower. Widths are display widths, so Korean, Japanese, Chinese and
/// emoji (two columns each) keep the next column in line.
/// A key's owner as tables show it: a service account marked `(sa)`.
pub(crate) fn owner_label(k: &keysmith_client::ApiKey) -> String {
    if k.owner.kind == "service_account" {
        format!("{} (sa)", k.owner.username)
    } else {
        k.owner.username.clone()
    }
}

pub(crate) fn fit(s: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let mut out = String::new();
    let mut used = 0;
    if s.width() <= width {
        out.push_str(s);
        used = s.width();
    } else {
        for c in s.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width.saturating_sub(1) {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
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
            "scope": created.scope,
        }))?,
        Output::Text => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", created.key.expose())?;
            out.flush()?;
            let expiry = created
                .expires_at
                .as_deref()
                .map_or_else(String::new, |at| format!(" It stops working at {at}."));
            let scope = created.scope.as_deref().unwrap_or("admin");
            eprintln!(
                "Created key {} (\"{}\") for {}, scope {scope}.{expiry} It is shown only this once: store it in a \
                 secret manager or an environment variable, never in a file you commit.",
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

#[cfg(test)]
mod tests {
    use super::fit;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn cells_are_fitted_by_display_width() {
        for name in [
            "laptop",
            "실험 노트북",
            "🚀 launch",
            "실험 🚀 run",
            "",
            "é combining e\u{301}",
        ] {
            assert_eq!(fit(name, 24).width(), 24, "{name:?}");
            assert!(fit(name, 24).starts_with(name));
        }
        let long = "아주 긴 이름을 가진 실험용 노트북 키입니다";
        let cell = fit(long, 24);
        assert_eq!(cell.width(), 24, "{cell:?}");
        assert!(cell.trim_end().ends_with('…'));
        // A wide character that would straddle the edge is left out, and a space
        // keeps the column.
        assert_eq!(fit("가나다라", 6), "가나… ");
        assert_eq!(fit("🚀🚀🚀🚀", 5), "🚀🚀…");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
