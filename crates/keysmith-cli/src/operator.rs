//! `keysmith admin reset-password` and `keysmith admin unlock`: the way back in for a
//! locked-out or forgotten admin, run on the server's machine against its database;
//! `keysmith admin backup` and `restore`.

use anyhow::{Context, Result, bail};
use keysmith_core::SecretString;
use keysmith_server::Clock;
use keysmith_store::Store;
use std::io::{BufRead, IsTerminal};

/// The new password: from standard input (one line, its line ending removed) with
/// `--password-stdin`, else from the terminal, hidden and asked twice. Never argv.
pub fn read_new_password(from_stdin: bool) -> Result<SecretString> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("no password was given on standard input");
        }
        return Ok(SecretString::new(password));
    }
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal: pass --password-stdin to read the new password from it");
    }
    let first = rpassword::prompt_password("New password (at least 12 characters, input hidden): ")?;
    if first.is_empty() {
        bail!("no password was given");
    }
    let second = rpassword::prompt_password("The same password again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(SecretString::new(first))
}

pub async fn reset_password(store: &dyn Store, username: &str, password: &SecretString) -> Result<()> {
    let now = keysmith_server::SystemClock.now_ms();
    let done = keysmith_server::operator::reset_password(store, username, password, now).await?;
    eprintln!(
        "The password of `{}` is set; their sessions have ended and failed sign-ins no longer hold them back.",
        done.user.username
    );
    if !done.user.active {
        eprintln!(
            "Note: `{}` is deactivated; an organization admin must reactivate them before they can sign in.",
            done.user.username
        );
    }
    Ok(())
}

pub async fn unlock(store: &dyn Store, username: &str) -> Result<()> {
    let now = keysmith_server::SystemClock.now_ms();
    let done = keysmith_server::operator::unlock(store, username, now).await?;
    eprintln!(
        "`{}` may sign in again at once from any address, on every server.",
        done.user.username
    );
    Ok(())
}

/// Rows per table, as a line for people: "3 orgs, 12 users, 40 api_keys, …" (tables
/// with rows only).
fn summary(counts: &[(String, i64)]) -> String {
    let shown: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    if shown.is_empty() {
        "no rows".to_owned()
    } else {
        shown.join(", ")
    }
}

/// `admin backup`: the copy, checked, or nothing (a failed copy is removed).
pub async fn backup(store: &dyn Store, file: &std::path::Path) -> Result<()> {
    if file.exists() {
        bail!("{} already exists; a backup never overwrites a file", file.display());
    }
    // The store removes what it made if the copy fails; a file it did not make (one
    // that appeared meanwhile) is refused and left alone.
    store.backup_to(file).await?;
    let counts = match keysmith_store::inspect_backup(file).await {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(file);
            return Err(e.into());
        }
    };
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!("backed up to {} ({size} bytes): {}", file.display(), summary(&counts));
    eprintln!("keep the server's secret (server-secret in the data directory) apart: it is not in the backup");
    Ok(())
}

/// `admin restore`: into `<data_dir>/keysmith.db`, which must not exist.
pub async fn restore(file: &std::path::Path, data_dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let target = data_dir.join("keysmith.db");
    let store = keysmith_store::restore_backup(file, &target).await?;
    let counts = store.table_counts().await?;
    println!(
        "restored {} into {}: {}",
        file.display(),
        target.display(),
        summary(&counts)
    );
    if !data_dir.join("server-secret").exists() {
        eprintln!(
            "no server-secret in {}: put the old one back before starting the server, or webhook endpoints' signing secrets change",
            data_dir.display()
        );
    }
    Ok(())
}

/// `admin migrate`: the copy, and what it held, table by table.
pub async fn migrate(from: &str, to: &str) -> Result<()> {
    if from == to {
        bail!("the source and the target are the same database");
    }
    let copied = keysmith_store::migrate_database(from, to).await?;
    let total: u64 = copied.iter().map(|t| t.rows).sum();
    for t in copied.iter().filter(|t| t.rows > 0) {
        println!("{:<20} {:>9} rows  sha256 {}", t.table, t.rows, &t.digest[..16]);
    }
    println!(
        "copied {total} rows in {} tables; the counts and digests agree on both sides",
        copied.len()
    );
    eprintln!("point the server at the new database now; the old one is left as it was");
    Ok(())
}

/// `admin audit verify`: the chain checked from the start; `false` when it breaks.
pub async fn audit_verify(store: &dyn Store) -> Result<bool> {
    // Seal what may be sealed first, so that the head printed is today's.
    if let Err(e) = keysmith_server::audit_chain::seal_at(store, keysmith_server::clock::wall_ms()).await {
        eprintln!("could not seal the newest entries ({e}); checking what is sealed");
    }
    match keysmith_server::audit_chain::verify(store).await? {
        keysmith_server::audit_chain::Verdict::Intact {
            sealed,
            unsealed,
            head_id,
            head_hash,
        } => {
            println!("audit log intact: {sealed} entries checked from the first");
            println!("head: entry {head_id}, sha256 {head_hash}");
            if unsealed > 0 {
                println!("{unsealed} newer entries are not sealed yet (their transactions may still commit)");
            }
            Ok(true)
        }
        keysmith_server::audit_chain::Verdict::Broken { entry, reason } => {
            println!("audit log BROKEN at entry {entry}: {reason}");
            Ok(false)
        }
    }
}

/// `admin audit export`: every entry after `after` (of `org`, or all), as JSON lines.
pub async fn audit_export(
    store: std::sync::Arc<dyn Store>,
    org: Option<&str>,
    start: keysmith_server::audit_log::Start,
) -> Result<()> {
    use keysmith_server::audit_log::Start;
    use std::collections::HashMap;
    use std::io::Write;
    let app = keysmith_server::AppState::new(
        store.clone(),
        std::sync::Arc::new(keysmith_server::SystemClock),
        keysmith_server::Settings::default(),
    )
    .app
    .clone();
    let org = match org {
        Some(name) => Some(
            store
                .find_org(name)
                .await?
                .with_context(|| format!("no organization named `{name}`"))?,
        ),
        None => None,
    };
    let mut names: HashMap<keysmith_core::OrgId, String> = HashMap::new();
    let mut out = std::io::stdout().lock();
    let mut start = start;
    let cursor = loop {
        let export = keysmith_server::audit_log::export_after(
            &app,
            org.as_ref().map(|o| o.id),
            start,
            keysmith_server::audit_log::EXPORT_LIMIT,
        )
        .await?;
        for entry in export.entries {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(entry.org) {
                let name = store.get_org(entry.org).await?;
                slot.insert(name.map_or_else(|| entry.org.0.to_string(), |o| o.name));
            }
            let org_name = names.get(&entry.org).cloned().unwrap_or_default();
            writeln!(out, "{}", keysmith_server::audit_export_line(entry, &org_name))?;
        }
        if start == Start::After(export.next_after) {
            break export.next_after;
        }
        start = Start::After(export.next_after);
    };
    out.flush()?;
    eprintln!("resume with --after {cursor}");
    Ok(())
}
