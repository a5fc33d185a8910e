//! `keysmith doctor`: checks this machine against the advice of the W&B key guide
//! (no keys in plain-text files or shell start-up files, nothing readable by others,
//! an SDK that accepts the keys in use, a server that answers, an identity token the SDK
//! can use) and says what to fix.

use crate::remote::{self, Output};
use anyhow::Result;
use keysmith_client::{Client, ClientError};
use keysmith_core::scan::find_keys;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    /// Nothing to fix, but worth knowing: comes with advice.
    Info,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    advice: Option<String>,
}

fn check(check: &'static str, status: Status, message: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check,
        status,
        message: message.into(),
        fix: fix.map(str::to_owned),
        advice: None,
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
    check_netrc(&home, host, &mut checks);
    check_wandb_settings(&home, &mut checks);
    check_env_files(&mut checks);
    check_shell_files(&home, &mut checks);
    check_stored_key(&mut checks);
    check_sdk(&mut checks);
    check_identity_token(&mut checks);
    check_server(host, &mut checks).await;

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Output::Text => {
            for c in &checks {
                let mark = match c.status {
                    Status::Ok => "ok  ",
                    Status::Info => "info",
                    Status::Warn => "warn",
                    Status::Fail => "FAIL",
                };
                println!("{mark}  {:<14} {}", c.check, c.message);
                if let Some(fix) = &c.fix {
                    println!("      {:<14} fix: {fix}", "");
                }
                if let Some(advice) = &c.advice {
                    println!("      {:<14} note: {advice}", "");
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

/// The netrc file: a key that `wandb login` wrote there for the configured server, in
/// a file only its owner can read, is the SDK's documented way to log in, and is
/// reported as such with advice; any other key in it, or a key in a netrc others can
/// read, is a failure.
fn check_netrc(home: &Path, host: Option<&str>, checks: &mut Vec<Check>) {
    let candidates: Vec<PathBuf> = match std::env::var_os("NETRC") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![home.join(".netrc"), home.join("_netrc")],
    };
    let server = remote::configured_host(host);
    let before = checks.len();
    let mut seen = false;
    for path in candidates {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        seen = true;
        let private = !readable_by_others(&path);
        let (sdk, other): (Vec<_>, Vec<_>) = find_keys(&text).into_iter().partition(|f| {
            private
                && netrc_machine_at(&text, f.line, f.column)
                    .zip(server.as_deref())
                    .is_some_and(|(machine, server)| machine_is_server(&machine, server))
        });
        let at = |found: &[keysmith_core::scan::Finding]| {
            found
                .iter()
                .map(|f| format!("line {} ({})", f.line, f.shown))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !sdk.is_empty() {
            checks.push(Check {
                advice: Some(
                    "fine for a personal machine; prefer WANDB_API_KEY in CI, where a file in the home directory \
                     outlives the job"
                        .into(),
                ),
                ..check(
                    "netrc",
                    Status::Info,
                    format!(
                        "the wandb SDK stored your key for {} here (wandb login): {} {}, readable only by you",
                        server.as_deref().map_or("the server", netloc),
                        path.display(),
                        at(&sdk)
                    ),
                    None,
                )
            });
        }
        if !other.is_empty() {
            checks.push(check(
                "netrc",
                Status::Fail,
                format!("a key in plain text in {}: {}", path.display(), at(&other)),
                Some(NO_PLAIN_FILES),
            ));
        }
        if !private {
            let keys = sdk.len() + other.len();
            checks.push(check(
                "netrc",
                if keys == 0 { Status::Warn } else { Status::Fail },
                format!("{} can be read by other users", path.display()),
                Some(&format!("chmod 600 {}", path.display())),
            ));
        }
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

/// The `machine` entry of a netrc file in force at 1-based `line` and byte `column`:
/// the last `machine NAME` before it (`default` ends it).
fn netrc_machine_at(text: &str, line: usize, column: usize) -> Option<String> {
    let mut machine = None;
    let mut expect_name = false;
    for (index, content) in text.lines().enumerate() {
        let mut rest = content;
        let mut offset = 0;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            let token_start = offset + start;
            if (index + 1, token_start + 1) >= (line, column) {
                return machine;
            }
            let token = &rest[start..];
            let len = token.find(char::is_whitespace).unwrap_or(token.len());
            let token = &token[..len];
            if expect_name {
                machine = Some(token.trim_matches(['"', '\'']).to_owned());
                expect_name = false;
            } else if token == "machine" {
                expect_name = true;
            } else if token == "default" {
                machine = None;
            }
            offset = token_start + len;
            rest = &content[offset..];
        }
    }
    machine
}

/// `host:port` of a server URL (what the wandb SDK writes as the netrc machine).
fn netloc(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// Whether a netrc machine names the server: its `host:port`, as current SDKs write
/// it, or its host alone, as older ones did.
fn machine_is_server(machine: &str, server_url: &str) -> bool {
    let netloc = netloc(server_url);
    let host = if netloc.starts_with('[') {
        netloc.split_inclusive(']').next().unwrap_or(netloc)
    } else {
        netloc.split(':').next().unwrap_or(netloc)
    };
    !machine.is_empty() && (machine.eq_ignore_ascii_case(netloc) || machine.eq_ignore_ascii_case(host))
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

/// Identity federation (docs/FEDERATION.md): the JWT file `WANDB_IDENTITY_TOKEN_FILE`
/// names, as far as this machine can tell without the server. Says nothing when the
/// variable is not set. The JWT itself is never printed: only its issuer, subject,
/// audience and expiry, which are not secret.
fn check_identity_token(checks: &mut Vec<Check>) {
    let Some(path) = std::env::var_os("WANDB_IDENTITY_TOKEN_FILE") else {
        return;
    };
    let path = PathBuf::from(path);
    let name = "identity-token";
    if std::env::var_os("WANDB_API_KEY").is_some() {
        checks.push(check(
            name,
            Status::Fail,
            "both WANDB_API_KEY and WANDB_IDENTITY_TOKEN_FILE are set; the wandb SDK refuses to start with both",
            Some("unset WANDB_API_KEY (the JWT is exchanged for an access token) or unset WANDB_IDENTITY_TOKEN_FILE"),
        ));
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            checks.push(check(
                name,
                Status::Fail,
                format!(
                    "WANDB_IDENTITY_TOKEN_FILE names {}, which cannot be read: {e}",
                    path.display()
                ),
                Some("point it at the file your platform writes the workload's JWT to"),
            ));
            return;
        }
    };
    match jwt_claims(text.trim()) {
        None => checks.push(check(
            name,
            Status::Fail,
            format!("{} does not hold a JWT", path.display()),
            Some("point WANDB_IDENTITY_TOKEN_FILE at the file your platform writes the workload's JWT to"),
        )),
        Some(claims) => {
            let text = |key: &str| match &claims[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
                }
                _ => "(none)".to_owned(),
            };
            let exp = claims["exp"].as_i64();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let when = exp
                .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e).ok())
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| "(no exp)".to_owned());
            let about = format!(
                "a JWT from {} for {} (audience {}), expiring {when}",
                text("iss"),
                text("sub"),
                text("aud")
            );
            match exp {
                Some(exp) if exp > now => checks.push(check(name, Status::Ok, about, None)),
                Some(_) => checks.push(check(
                    name,
                    Status::Fail,
                    format!("{about}: expired"),
                    Some("the platform that issues it must refresh the file; Keysmith refuses expired JWTs"),
                )),
                None => checks.push(check(
                    name,
                    Status::Fail,
                    format!("{about}: it has no expiry"),
                    Some("Keysmith takes only JWTs with exp; ask the issuer for one"),
                )),
            }
        }
    }
}

/// The claims of a JWT, read without checking its signature (the server checks it).
fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let mut parts = jwt.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(serde_json::Value::is_object)
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
        .map(|k| k.trim().to_owned())
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
            if let Some(bad) = e.downcast_ref::<remote::UnusableKey>() {
                // A key problem, not a server problem: say so, then see whether the
                // server answers at all without the key.
                checks.push(check("api-key", Status::Fail, bad.problem.clone(), Some(&bad.fix)));
                check_server_without_key(host, checks).await;
            } else {
                checks.push(check("server", Status::Warn, format!("not checked: {e:#}"), None));
            }
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
        Err(e) => {
            let (name, fix) = match &e {
                ClientError::Api { .. } => ("server", "create a new key and put it in KEYSMITH_API_KEY"),
                ClientError::UnsendableKey(_) | ClientError::Request { .. } => {
                    ("api-key", "set KEYSMITH_API_KEY again with the key alone")
                }
                ClientError::Unexpected { .. } | ClientError::InvalidHost(_) => {
                    ("server", "check the URL: it should be the Keysmith server's address")
                }
                ClientError::Unreachable { .. } => ("server", "check the URL and that the server runs"),
            };
            checks.push(check(name, Status::Fail, format!("{e}"), Some(fix)));
        }
    }
}

/// Whether the server answers, asked without a key: any answer of Keysmith's API
/// (here, that a key is needed) proves it up.
async fn check_server_without_key(host: Option<&str>, checks: &mut Vec<Check>) {
    let Some(url) = remote::configured_host(host) else {
        checks.push(check("server", Status::Warn, "not checked: no server configured", None));
        return;
    };
    let client = match Client::anonymous(&url) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("server", Status::Fail, format!("{e}"), Some("check the URL")));
            return;
        }
    };
    match client.viewer().await {
        Ok(_) | Err(ClientError::Api { .. }) => checks.push(check(
            "server",
            Status::Ok,
            format!(
                "{} answers (checked without the key, which cannot be sent)",
                client.host()
            ),
            None,
        )),
        Err(e) => checks.push(check(
            "server",
            Status::Fail,
            format!("{e}"),
            Some("check the URL and that the server runs"),
        )),
    }
}
