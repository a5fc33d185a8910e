//! `keysmith login`, `status` and `logout` on a headless machine: the key from stdin,
//! the OS credential store when there is one, and a 0600 file only by explicit choice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Server, start_with_admin_key};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PASSWORD: &str = "login-test-admin-password";

fn keysmith(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| {
        k.starts_with("KEYSMITH_")
            || k.starts_with("WANDB_")
            || k.starts_with("XDG_")
            || k == "DBUS_SESSION_BUS_ADDRESS"
    }) {
        cmd.env_remove(k);
    }
    // No session bus: like a server without a desktop session.
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn start() -> (Server, tempfile::TempDir, String) {
    let started = start_with_admin_key("login", PASSWORD);
    (started.server, started.dir, started.key)
}

#[test]
fn stdin_login_keeps_the_key_in_a_private_file_only_when_asked() {
    let (server, _dir, key) = start();
    let home = tempfile::tempdir().unwrap();
    let url = server.url.as_str();

    let refused = keysmith(home.path(), &["login", "--host", url, "--with-key-stdin"], Some(&key));
    assert_eq!(refused.status.code(), Some(1), "{}", err(&refused));
    assert!(err(&refused).contains("--store file"), "{}", err(&refused));
    assert!(
        !home.path().join(".config/keysmith/credentials.json").exists(),
        "nothing stored without the choice"
    );

    let out = keysmith(
        home.path(),
        &["login", "--host", url, "--with-key-stdin", "--store", "file"],
        Some(&format!("{key}\n")),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert!(err(&out).contains("Logged in to") && err(&out).contains("as admin"));
    assert!(!err(&out).contains(&key[37..]));
    let file = home.path().join(".config/keysmith/credentials.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    let whoami = keysmith(home.path(), &["whoami", "--output", "json"], None);
    assert!(whoami.status.success(), "the stored key is used: {}", err(&whoami));
    let status = keysmith(home.path(), &["status", "--output", "json"], None);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["authenticated"], true);
    assert!(
        status["key_source"].as_str().unwrap().ends_with("credentials.json"),
        "{status}"
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let doctor = keysmith(home.path(), &["doctor", "--output", "json"], None);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&doctor.stdout).unwrap();
    let stored = checks.iter().find(|c| c["check"] == "stored-key").unwrap();
    assert_eq!(
        stored["status"], "fail",
        "doctor says where the key lives and that others can read it: {stored}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = keysmith(home.path(), &["logout"], None);
    assert!(out.status.success());
    assert!(!file.exists());
    assert_eq!(keysmith(home.path(), &["whoami"], None).status.code(), Some(3));
}

#[test]
fn a_key_the_server_refuses_is_not_stored() {
    let (server, _dir, key) = start();
    let home = tempfile::tempdir().unwrap();
    let _ = key;
    let unknown = keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default()).unwrap();
    let wrong = unknown.plaintext.expose();
    let out = keysmith(
        home.path(),
        &["login", "--host", &server.url, "--with-key-stdin", "--store", "file"],
        Some(wrong),
    );
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(!home.path().join(".config/keysmith").join("credentials.json").exists());
    let out = keysmith(
        home.path(),
        &["login", "--host", &server.url, "--with-key-stdin", "--store", "file"],
        Some("not a key"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("not an API key"));
    let out = keysmith(home.path(), &["login", "--host", &server.url], None);
    assert!(
        err(&out).contains("--with-key-stdin"),
        "no terminal, no key: {}",
        err(&out)
    );
}
