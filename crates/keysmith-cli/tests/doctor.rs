//! `keysmith doctor` on a planted home directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::BIN;
use keysmith_core::{KeyPrefix, generate_v1};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn doctor(home: &Path, cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_") || k == "NETRC")
    {
        cmd.env_remove(k);
    }
    cmd.args(["doctor", "--output", "json"])
        .env("HOME", home)
        .current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn checks(out: &Output) -> Vec<Value> {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn statuses(checks: &[Value], name: &str) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["check"] == name)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn doctor_flags_a_netrc_key_and_a_credentials_file_others_can_read() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let legacy = "0123456789abcdef0123456789abcdef01234567";
    let netrc = home.path().join(".netrc");
    std::fs::write(
        &netrc,
        format!("machine api.wandb.ai\n  login user\n  password {legacy}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        format!("export WANDB_API_KEY={}\n", key.plaintext.expose()),
    )
    .unwrap();
    std::fs::write(
        work.path().join(".env"),
        format!("KEYSMITH_API_KEY={}\n", key.plaintext.expose()),
    )
    .unwrap();

    let out = doctor(home.path(), work.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = checks(&out);
    assert_eq!(
        statuses(&found, "netrc"),
        ["fail", "fail"],
        "the key, and the file others can read: {found:?}"
    );
    assert_eq!(statuses(&found, "shell-files"), ["fail"]);
    assert_eq!(statuses(&found, "env-files"), ["fail"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&legacy[6..]) && !text.contains(&key.plaintext.expose()[37..]),
        "doctor never prints a key"
    );
    assert!(
        found
            .iter()
            .all(|c| c["status"] == "ok" || c["fix"].is_string() || c["check"] == "server"),
        "each problem says what to fix"
    );

    std::fs::write(&netrc, "machine example.com\n  login me\n").unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(home.path().join(".bashrc")).unwrap();
    std::fs::remove_file(work.path().join(".env")).unwrap();
    let out = doctor(home.path(), work.path(), &[]);
    let found = checks(&out);
    assert_eq!(out.status.code(), Some(0), "{found:?}");
    assert_eq!(statuses(&found, "netrc"), ["ok"]);
}

#[test]
fn doctor_explains_the_length_error_of_an_old_sdk_with_a_new_key() {
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let python = bin.path().join("python3");
    std::fs::write(&python, "#!/bin/sh\necho 0.21.0\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    let out = doctor(
        home.path(),
        home.path(),
        &[("PATH", &path), ("WANDB_API_KEY", key.plaintext.expose())],
    );
    let found = checks(&out);
    let sdk = found.iter().find(|c| c["check"] == "wandb-sdk").unwrap();
    assert_eq!(sdk["status"], "fail");
    assert!(sdk["message"].as_str().unwrap().contains("40 characters"), "{sdk}");
    assert!(sdk["fix"].as_str().unwrap().contains("0.22.3"));
    let server = found.iter().find(|c| c["check"] == "server").unwrap();
    assert_eq!(server["status"], "warn", "no server configured: {server}");
}
