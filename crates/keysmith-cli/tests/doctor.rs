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

fn find<'a>(checks: &'a [Value], name: &str) -> Vec<&'a Value> {
    checks.iter().filter(|c| c["check"] == name).collect()
}

#[test]
fn the_netrc_entry_that_wandb_login_writes_is_advice_not_a_failure() {
    let home = tempfile::tempdir().unwrap();
    let legacy = "89abcdef0123456789abcdef0123456789abcdef";
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    let netrc = home.path().join(".netrc");
    let server = [("KEYSMITH_HOST", "https://keys.example.com:8443")];

    // What `wandb login` writes: the server's host:port (current SDKs) or its host
    // alone (older ones), in a file it creates with mode 0600.
    for (machine, stored) in [
        ("keys.example.com:8443", key.plaintext.expose()),
        ("keys.example.com", legacy),
    ] {
        std::fs::write(
            &netrc,
            format!("machine github.com\n  login me\n  password ghp_notakey\nmachine {machine}\n  login user\n  password {stored}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = doctor(home.path(), home.path(), &server);
        let found = checks(&out);
        assert_eq!(out.status.code(), Some(0), "not a failure: {found:?}");
        let entries = find(&found, "netrc");
        assert_eq!(entries.len(), 1, "{found:?}");
        assert_eq!(entries[0]["status"], "info", "{found:?}");
        let message = entries[0]["message"].as_str().unwrap();
        assert!(message.contains("the wandb SDK stored your key"), "{message}");
        assert!(message.contains("wandb login"), "{message}");
        let advice = entries[0]["advice"].as_str().unwrap();
        assert!(
            advice.contains("personal machine") && advice.contains("WANDB_API_KEY in CI"),
            "{advice}"
        );
        assert!(entries[0]["fix"].is_null(), "nothing to fix: {found:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout)
                .to_lowercase()
                .contains("delete the key")
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&stored[37..]),
            "never prints the key"
        );

        // The same file, readable by the group or everyone: the key must be treated as
        // exposed.
        for mode in [0o640, 0o644] {
            std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(mode)).unwrap();
            let out = doctor(home.path(), home.path(), &server);
            let found = checks(&out);
            assert_eq!(out.status.code(), Some(1), "{found:?}");
            assert_eq!(statuses(&found, "netrc"), ["fail", "fail"], "{found:?}");
            let fixes: String = find(&found, "netrc").iter().map(|c| c["fix"].to_string()).collect();
            assert!(
                fixes.contains("delete the key on the server") && fixes.contains("chmod 600"),
                "{fixes}"
            );
        }
    }

    // A key for another host, or with no server configured, is not the SDK's login
    // for this server: still a failure.
    std::fs::write(
        &netrc,
        format!("machine api.wandb.ai\n  login user\n  password {legacy}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    for env in [&server[..], &[]] {
        let found = checks(&doctor(home.path(), home.path(), env));
        assert_eq!(statuses(&found, "netrc"), ["fail"], "{found:?}");
    }
}

#[test]
fn a_key_that_cannot_be_sent_is_a_key_problem_not_a_server_that_is_down() {
    let started = common::start_with_admin_key("doctor", "doctor-test-admin-password");
    let home = tempfile::tempdir().unwrap();
    let url = started.server.url.as_str();
    let key = started.key.as_str();

    let padded = format!("{key}\n");
    let out = doctor(
        home.path(),
        home.path(),
        &[("KEYSMITH_HOST", url), ("KEYSMITH_API_KEY", &padded)],
    );
    let found = checks(&out);
    assert_eq!(
        statuses(&found, "server"),
        ["ok"],
        "a trailing newline is trimmed: {found:?}"
    );
    assert!(find(&found, "api-key").is_empty(), "{found:?}");

    let broken = format!("{}\u{7f}{}", &key[..30], &key[30..]);
    let out = doctor(
        home.path(),
        home.path(),
        &[("KEYSMITH_HOST", url), ("KEYSMITH_API_KEY", &broken)],
    );
    let found = checks(&out);
    assert_eq!(out.status.code(), Some(1), "{found:?}");
    let api_key = find(&found, "api-key");
    assert_eq!(api_key.len(), 1, "{found:?}");
    assert_eq!(api_key[0]["status"], "fail");
    let message = api_key[0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the API key in KEYSMITH_API_KEY contains a character that cannot be sent (a control character at position 31)"
        ),
        "{message}"
    );
    assert!(api_key[0]["fix"].as_str().unwrap().contains("KEYSMITH_API_KEY"));
    let server = find(&found, "server");
    assert_eq!(server.len(), 1, "{found:?}");
    assert_eq!(server[0]["status"], "ok", "the server is up: {found:?}");
    assert!(server[0]["message"].as_str().unwrap().contains("answers"), "{found:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("cannot reach"), "{text}");
    assert!(
        !text.contains(&key[..30]) && !text.contains(&key[31..]),
        "never prints the key"
    );
}

/// A JWT for identity federation, as a platform would write it: header, claims and a
/// signature the doctor does not check (the server does).
fn jwt(claims: &serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"ES256","kid":"k1"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"not-a-real-signature")
    )
}

#[test]
fn doctor_checks_the_identity_token_file_without_printing_the_jwt() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("token.jwt");
    let file_text = file.to_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let one = |claims: serde_json::Value, extra: &[(&str, &str)]| {
        let token = jwt(&claims);
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let mut env = vec![("WANDB_IDENTITY_TOKEN_FILE", file_text)];
        env.extend_from_slice(extra);
        let out = doctor(home.path(), home.path(), &env);
        let all = checks(&out);
        let found: Vec<Value> = all.iter().filter(|c| c["check"] == "identity-token").cloned().collect();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!printed.contains(&token), "the JWT is never printed: {printed}");
        found
    };
    let good = json_claims(now + 600);
    let found = one(good.clone(), &[]);
    assert_eq!(statuses(&found, "identity-token"), ["ok"], "{found:?}");
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains("https://token.example.com") && message.contains("repo:acme/train"),
        "{message}"
    );

    let found = one(json_claims(now - 60), &[]);
    assert_eq!(statuses(&found, "identity-token"), ["fail"]);
    assert!(found[0]["message"].as_str().unwrap().ends_with("expired"), "{found:?}");

    let found = one(good, &[("WANDB_API_KEY", "wandb_v1_x")]);
    assert_eq!(statuses(&found, "identity-token"), ["fail", "ok"], "{found:?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("refuses to start with both")
    );

    std::fs::write(&file, "not a jwt").unwrap();
    let out = doctor(home.path(), home.path(), &[("WANDB_IDENTITY_TOKEN_FILE", file_text)]);
    assert_eq!(statuses(&checks(&out), "identity-token"), ["fail"]);
    let out = doctor(
        home.path(),
        home.path(),
        &[("WANDB_IDENTITY_TOKEN_FILE", "/nonexistent/token")],
    );
    assert_eq!(statuses(&checks(&out), "identity-token"), ["fail"]);

    // Without the variable, nothing is said about it.
    let out = doctor(home.path(), home.path(), &[]);
    assert!(statuses(&checks(&out), "identity-token").is_empty());
}

fn json_claims(exp: i64) -> serde_json::Value {
    serde_json::json!({"iss": "https://token.example.com", "sub": "repo:acme/train", "aud": "default", "exp": exp})
}
