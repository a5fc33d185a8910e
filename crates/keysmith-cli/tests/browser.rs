//! The web interface in a real browser: Debian's Chromium, headless, driven by
//! playwright-core from npm (`e2e/browser.mjs`). This test runs the `keysmith` binary,
//! seeds an organization with a team admin and a member, runs the script, and then
//! searches the server's log for every key the pages showed and every password typed.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium` package; `.ci/run` installs it) and
//! Node.js; `npm ci` runs here on first use. Set `KEYSMITH_SCREENSHOTS=docs/screenshots`
//! to refresh the README's screenshots.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, start_with_admin_key};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

const ADMIN_PASSWORD: &str = "browser-admin-password";
const USER_PASSWORD: &str = "browser-user-password";

use common::e2e_dir;

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&path).exists(),
        "the browser tests need Chromium at {path}: `apt-get install chromium` (Debian), or set CHROMIUM"
    );
    path
}

#[test]
fn the_web_interface_works_in_a_real_browser() {
    let chromium = chromium();
    common::ensure_e2e_packages();
    let s = start_with_admin_key("browser", ADMIN_PASSWORD);
    let url = s.server.url.clone();
    let auth = common::basic(&s.key);
    let call = |method: &str, path: &str, body: serde_json::Value| {
        let r = http(
            method,
            &format!("{url}/api/v1/orgs/default{path}"),
            &[("authorization", &auth)],
            Some(&body),
        );
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    };
    call("POST", "/teams", json!({"name": "nlp"}));
    for user in ["lead", "dev"] {
        call(
            "POST",
            "/users",
            json!({"username": user, "email": format!("{user}@example.com"), "password": USER_PASSWORD}),
        );
    }
    call("PUT", "/teams/nlp/members/lead", json!({"role": "admin"}));
    call("PUT", "/teams/nlp/members/dev", json!({"role": "member"}));

    // The single sign-on steps' client secret, where an operator puts it: the server's
    // sso_secrets_dir (`data/sso-secrets` under its working directory).
    let secrets = s.dir.path().join("data/sso-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("test-idp"), "keysmith-test-secret").unwrap();

    let seen = s.dir.path().join("seen-keys");
    let mut cmd = Command::new("node");
    cmd.arg("browser.mjs")
        .current_dir(e2e_dir())
        .env("KEYSMITH_URL", &url)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ADMIN_KEY", &s.key)
        .env("USER_PASSWORD", USER_PASSWORD)
        .env("CHROMIUM", &chromium)
        .env("KEYSMITH_SEEN_KEYS", &seen);
    if let Ok(dir) = std::env::var("KEYSMITH_SCREENSHOTS") {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        cmd.env("KEYSMITH_SCREENSHOTS", dir);
    }
    let out = cmd.output().expect("run node e2e/browser.mjs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "browser checks failed:\n{report}");

    let keys: Vec<String> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(keys.len() >= 6, "the script saw the keys it created: {}", keys.len());
    let (stdout, stderr) = s.server.stop();
    let log = format!("{stdout}{stderr}");
    assert!(
        log.contains("signed in to the web interface"),
        "the log is the server's"
    );
    for secret in keys.iter().map(String::as_str).chain([ADMIN_PASSWORD, USER_PASSWORD]) {
        let tail = &secret[secret.len().saturating_sub(20)..];
        assert!(!log.contains(tail), "a secret reached the server's log");
    }
}
