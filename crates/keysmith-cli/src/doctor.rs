//! `keysmith doctor`: checks this machine against the advice of the W&B key guide
//! (no keys in plain-text files or shell start-up files, nothing readable by others,
//! an SDK that accepts the keys in use, a server that answers) and says what to fix.

use crate::remote::{self, Output};
use anyhow::Result;
use keysmith_core::scan::find_keys;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(check: &'static str, status: Status, message: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check,
        status,
        message: message.into(),
        fix: fix.map(str::to_owned),
    }
}

const SHELL_FILES: [&str; 6] = [
    ".bashrc",
    ".bash_profile",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".config/fish/config.fish",
];
const NO_PLAIN_FILES: &str = "delete the key on the server and create a new one, then keep it in a secret manager or \
     export it from one (`read -rs WANDB_API_KEY && export WANDB_API_KEY`), never in a file";

pub async fn run(host: Option<&str>, output: Output) -> Result<()> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut checks = Vec::new();
    check_netrc(&home, &mut checks);
    check_wandb_settings(&home, &mut checks);
    check_env_files(&mut checks);
    check_shell_files(&home, &mut checks);
    check_stored_key(&mut checks);
    check_sdk(&mut checks);
    check_server(host, &mut checks).await;

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Output::Text => {
            for c in &checks {
                let mark = match c.status {
                    Status::Ok => "ok  ",
                    Status::Warn => "warn",
                    Status::Fail => "FAIL",
                };
                println!("{mark}  {:<14} {}", c.check, c.message);
                if let Some(fix) = &c.fix {
                    println!("      {:<14} fix: {fix}", "");
                }
            }
        }
    }
    if failed > 0 {
        return Err(remote::Exit {
            code: 1,
            message: format!("{failed} check(s) failed"),
        }
        .into());
    }
    Ok(())
}

fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Checks one file for keys and for permissions; `what` names it in messages.
fn check_file(name: &'static str, path: &Path, checks: &mut Vec<Check>) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let found = find_keys(&text);
    if !found.is_empty() {
        let lines: Vec<String> = found.iter().map(|f| format!("line {} ({})", f.line, f.shown)).collect();
        checks.push(check(
            name,
            Status::Fail,
            format!("a key in plain text in {}: {}", path.display(), lines.join(", ")),
            Some(NO_PLAIN_FILES),
        ));
    }
    if readable_by_others(path) {
        checks.push(check(
            name,
            if found.is_empty() { Status::Warn } else { Status::Fail },
            format!("{} can be read by other users", path.display()),
            Some(&format!("chmod 600 {}", path.display())),
        ));
    }
    true
}

fn check_netrc(home: &Path, checks: &mut Vec<Check>) {
    let candidates: Vec<PathBuf> = match std::env::var_os("NETRC") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![home.join(".netrc"), home.join("_netrc")],
    };
    let before = checks.len();
    let mut seen = false;
    for path in candidates {
        seen |= check_file("netrc", &path, checks);
    }
    if checks.len() == before {
        let message = if seen {
            "no API key in the netrc file"
        } else {
            "no netrc file"
        };
        checks.push(check("netrc", Status::Ok, message, None));
    }
}

fn check_wandb_settings(home: &Path, checks: &mut Vec<Check>) {
    let config_dir = std::env::var_os("WANDB_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config/wandb"));
    let before = checks.len();
    for path in [config_dir.join("settings"), PathBuf::from("wandb/settings")] {
        check_file("wandb-settings", &path, checks);
    }
    if checks.len() == before {
        checks.push(check(
            "wandb-settings",
            Status::Ok,
            "no API key in wandb settings files",
            None,
        ));
    }
}

/// `.env` files of the current repository (or directory), where keys tend to land.
fn check_env_files(checks: &mut Vec<Check>) {
    let root = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut files = Vec::new();
    collect_env_files(&root, 0, &mut files);
    let before = checks.len();
    for path in &files {
        if let Ok(text) = std::fs::read_to_string(path) {
            let found = find_keys(&text);
            if !found.is_empty() {
                checks.push(check(
                    "env-files",
                    Status::Fail,
                    format!("a key in {} line {}", path.display(), found[0].line),
                    Some("reference the variable (WANDB_API_KEY=${WANDB_API_KEY}) instead of the key, and keep .env out of git"),
                ));
            }
        }
    }
    if checks.len() == before {
        checks.push(check(
            "env-files",
            Status::Ok,
            format!("no key in the {} .env file(s) of {}", files.len(), root.display()),
            None,
        ));
    }
}

fn collect_env_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    const SKIP: [&str; 6] = [".git", "target", "node_modules", ".venv", "venv", "__pycache__"];
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if depth < 6 && !SKIP.contains(&name.as_str()) {
                collect_env_files(&path, depth + 1, out);
            }
        } else if name == ".env" || name.starts_with(".env.") {
            out.push(path);
        }
    }
}

fn check_shell_files(home: &Path, checks: &mut Vec<Check>) {
    let before = checks.len();
    for file in SHELL_FILES {
        let path = home.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for f in find_keys(&text) {
            checks.push(check(
                "shell-files",
                Status::Fail,
                format!("a key exported in {} line {} ({})", path.display(), f.line, f.shown),
                Some("remove it; every shell and program you start inherits it. Export it from a secret manager when needed"),
            ));
        }
    }
    if checks.len() == before {
        checks.push(check("shell-files", Status::Ok, "no key in shell start-up files", None));
    }
}

/// Where `keysmith login` keeps the key, and that no one else can read it.
fn check_stored_key(checks: &mut Vec<Check>) {
    let credentials = crate::credentials::Credentials::default();
    match credentials.load() {
        None => checks.push(check(
            "stored-key",
            Status::Ok,
            "no key stored by `keysmith login`",
            None,
        )),
        Some((host, _, place)) => {
            let file = credentials.credentials_file();
            if place == file.display().to_string() && readable_by_others(&file) {
                checks.push(check(
                    "stored-key",
                    Status::Fail,
                    format!("the key for {host} is in {place}, which other users can read"),
                    Some(&format!("chmod 600 {}", file.display())),
                ));
            } else {
                checks.push(check(
                    "stored-key",
                    Status::Ok,
                    format!("the key for {host} is in {place}"),
                    None,
                ));
            }
        }
    }
}

/// An installed SDK older than 0.22.3 rejects 86-character keys at `wandb login`.
fn check_sdk(checks: &mut Vec<Check>) {
    let version = Command::new("python3")
        .args(["-c", "import wandb; print(wandb.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(version) = version else {
        checks.push(check("wandb-sdk", Status::Ok, "no wandb SDK in python3", None));
        return;
    };
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| {
            p.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .parse()
                .unwrap_or(0)
        })
        .collect();
    let old = (
        parts.first().copied().unwrap_or(0),
        parts.get(1).copied().unwrap_or(0),
        parts.get(2).copied().unwrap_or(0),
    ) < (0, 22, 3);
    let long_key = remote::KEY_VARIABLES
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .any(|k| k.len() > 40 && !k.contains('-'));
    if old && long_key {
        checks.push(check(
            "wandb-sdk",
            Status::Fail,
            format!("wandb {version} rejects 86-character keys at `wandb login` (\"API key must be 40 characters long\")"),
            Some("pip install --upgrade \"wandb>=0.22.3\"; or keep the key in WANDB_API_KEY and skip `wandb login`; or ask an admin for a legacy-format key"),
        ));
    } else if old {
        checks.push(check(
            "wandb-sdk",
            Status::Warn,
            format!("wandb {version} accepts only 40-character keys at `wandb login`"),
            Some("pip install --upgrade \"wandb>=0.22.3\""),
        ));
    } else {
        checks.push(check(
            "wandb-sdk",
            Status::Ok,
            format!("wandb {version} accepts new keys"),
            None,
        ));
    }
}

async fn check_server(host: Option<&str>, checks: &mut Vec<Check>) {
    if let (Ok(a), Ok(b)) = (std::env::var("KEYSMITH_HOST"), std::env::var("WANDB_BASE_URL"))
        && host.is_none()
        && a.trim_end_matches('/') != b.trim_end_matches('/')
    {
        checks.push(check(
            "server",
            Status::Warn,
            format!("KEYSMITH_HOST ({a}) and WANDB_BASE_URL ({b}) name different servers"),
            Some("point both at the same Keysmith server"),
        ));
    }
    let client = match remote::client(host) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("server", Status::Warn, format!("not checked: {e}"), None));
            return;
        }
    };
    match client.viewer().await {
        Ok(v) => checks.push(check(
            "server",
            Status::Ok,
            format!("{} answers; the key belongs to {}", client.host(), v.username),
            None,
        )),
        Err(e) => checks.push(check(
            "server",
            Status::Fail,
            format!("{e}"),
            Some(if e.code().is_some() {
                "create a new key and put it in KEYSMITH_API_KEY"
            } else {
                "check the URL and that the server runs"
            }),
        )),
    }
}
