//! `keysmith admin reset-password` and `keysmith admin unlock`: the way back in for a
//! locked-out or forgotten admin, run on the server's machine against its database.

use anyhow::{Result, bail};
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
