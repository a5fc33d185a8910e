//! The organization commands of `keysmith` against a real server: service accounts,
//! teams, users, the audit log, and key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Server, http, start_with_admin_key};
use serde_json::{Value, json};
use std::process::{Command, Output};

const PASSWORD: &str = "org-test-admin-password";

struct Admin {
    server: Server,
    dir: tempfile::TempDir,
    key: String,
}

impl Admin {
    fn start() -> Self {
        let started = start_with_admin_key("org", PASSWORD);
        Admin {
            server: started.server,
            dir: started.dir,
            key: started.key,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_")) {
            cmd.env_remove(k);
        }
        cmd.args(args)
            .env("KEYSMITH_HOST", &self.server.url)
            .env("KEYSMITH_API_KEY", &self.key)
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
}

#[test]
fn an_admin_manages_teams_service_accounts_users_and_reads_the_audit_log() {
    let a = Admin::start();
    assert_eq!(a.json(&["teams", "create", "vision"])["name"], "vision");
    let account = a.json(&[
        "service-accounts",
        "create",
        "vision-ci",
        "--team",
        "vision",
        "--description",
        "nightly",
    ]);
    assert_eq!(
        (account["scope"].as_str(), account["team"].as_str()),
        (Some("team"), Some("vision"))
    );
    let listed = a.json(&["service-accounts", "list", "--team", "vision"]);
    assert_eq!(listed[0]["name"], "vision-ci");

    let invited = a.json(&["users", "invite", "ada", "--email", "ada@example.com"]);
    let token = invited["invite_token"].as_str().unwrap();
    let r = http(
        "POST",
        &format!("{}/api/v1/invites/accept", a.server.url),
        &[],
        Some(&json!({"token": token, "password": "ada-password-1234"})),
    );
    assert_eq!(r.status, 204);
    a.json(&["teams", "add-member", "vision", "ada", "--admin"]);
    let team = a.json(&["teams", "show", "vision"]);
    assert_eq!(team["members"], json!([{"username": "ada", "role": "admin"}]));
    assert_eq!(team["service_accounts"], json!(["vision-ci"]));
    assert_eq!(a.json(&["users", "set-role", "ada", "admin"])["role"], "admin");
    assert_eq!(a.json(&["users", "deactivate", "ada"])["active"], false);
    assert_eq!(a.json(&["users", "reactivate", "ada"])["active"], true);
    let users = a.json(&["users", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 2);
    let reinvite = a.run(&["users", "reinvite", "ada"]);
    assert_eq!(
        String::from_utf8_lossy(&reinvite.stdout).trim().len(),
        43,
        "the token alone on stdout"
    );

    let log = a.json(&["audit", "--action", "user.deactivated"]);
    assert_eq!(log["items"][0]["target"], "ada");
    assert_eq!(log["items"][0]["actor"], "admin");
    a.json(&["teams", "remove-member", "vision", "ada"]);
    a.json(&["service-accounts", "delete", "vision-ci"]);
    a.json(&["users", "delete", "ada"]);
    assert_eq!(a.json(&["users", "list"]).as_array().unwrap().len(), 1);
    let out = a.run(&["users", "set-role", "admin", "member"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("last_admin"));
}

#[test]
fn rotate_links_a_new_key_and_show_tells_when_the_old_one_goes_quiet() {
    let a = Admin::start();
    let created = a.json(&["keys", "create", "--name", "pipeline"]);
    let old_id = created["key_id"].as_str().unwrap().to_owned();
    let old_key = created["key"].as_str().unwrap().to_owned();
    let viewer = |key: &str| {
        http(
            "GET",
            &format!("{}/api/v1/viewer", a.server.url),
            &[
                ("authorization", &format!("Bearer {key}")),
                ("user-agent", "deploy-bot/2"),
            ],
            None,
        )
        .status
    };
    assert_eq!(viewer(&old_key), 200);
    let out = a.run(&["keys", "rotate", &old_id, "--grace", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(new_key.len(), 86, "stdout holds exactly the new key");
    let guidance = String::from_utf8_lossy(&out.stderr);
    assert!(
        guidance.contains(&format!("keysmith keys delete {old_id}")),
        "{guidance}"
    );
    assert!(guidance.contains("then stops by itself"), "{guidance}");
    assert_eq!(viewer(&new_key), 200);
    assert_eq!(viewer(&old_key), 200, "the old key works during the grace period");

    let keys = a.json(&["keys", "list", "--name-contains", "pipeline"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let shown = a.json(&["keys", "show", &old_id]);
    assert_eq!(shown["rotated_to"].as_str().unwrap().len(), 36, "{shown}");
    assert_eq!(
        shown["sources"][0]["user_agent"], "deploy-bot/2",
        "uses not yet flushed count too"
    );
    assert!(shown["expires_at"].is_string(), "the grace period is its expiry");
    let text = a.run(&["keys", "show", &old_id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("replaced by") && text.contains("rotation in progress"),
        "{text}"
    );
    let out = a.run(&["keys", "rotate", &old_id, "--grace", "forever"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown grace");

    // Finishing the rotation.
    let out = a.run(&["keys", "delete", &old_id]);
    assert!(out.status.success());
    assert_eq!(viewer(&old_key), 401);
    assert_eq!(viewer(&new_key), 200);
}

#[test]
fn keys_are_made_with_a_scope_and_networks_from_the_command_line() {
    let a = Admin::start();
    let created = a.json(&[
        "keys",
        "create",
        "--name",
        "cluster",
        "--scope",
        "read",
        "--allowed-network",
        "10.20.0.0/16",
        "--allowed-network",
        "2001:db8::1/32",
    ]);
    assert_eq!(created["scope"], "read", "{created}");
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let out = a.run(&["keys", "show", &key_id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scope        read"), "{stdout}");
    assert!(stdout.contains("networks     10.20.0.0/16, 2001:db8::/32"), "{stdout}");
    let out = a.run(&["keys", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SCOPE") && stdout.contains(" read"), "{stdout}");
    let bot = a.json(&[
        "service-accounts",
        "create",
        "lab-bot",
        "--allowed-network",
        "192.0.2.0/24",
    ]);
    assert_eq!(bot["allowed_networks"], serde_json::json!(["192.0.2.0/24"]), "{bot}");
    let out = a.run(&["keys", "create", "--name", "x", "--scope", "root"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown scope");
    let out = a.run(&["keys", "create", "--name", "x", "--allowed-network", "intranet"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`intranet` is not a network"), "{stderr}");
}

#[test]
fn expiring_keys_are_flagged_and_a_leaked_key_is_revoked_from_stdin() {
    let a = Admin::start();
    let created = a.json(&["keys", "create", "--name", "short", "--expires-in-days", "3"]);
    assert!(created["expires_at"].is_string(), "{created}");
    let out = a.run(&["keys", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("EXPIRES"), "{stdout}");
    assert!(stderr.contains("expire within 7 days"), "{stderr}");
    let soon = a.json(&["keys", "list", "--expiring-within-days", "7"]);
    assert_eq!(soon.as_array().unwrap().len(), 1);

    let leaked = created["key"].as_str().unwrap().to_owned();
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .args(["keys", "revoke-exposed", "--host", &a.server.url])
        .env("HOME", a.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(leaked.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "no login needed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&leaked), "never echoed");
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", a.server.url),
        &[("authorization", &format!("Bearer {leaked}"))],
        None,
    );
    assert_eq!(r.status, 401, "revoked");
    let out = a.run(&["keys", "revoke-exposed", &leaked]);
    assert_eq!(out.status.code(), Some(2), "a key as an argument is refused");
}

#[test]
fn an_admin_trusts_a_jwt_issuer_and_creates_an_external_service_account() {
    use keysmith_pgtest::issuer::{LoopbackIssuer, Signer};
    let a = Admin::start();
    let signer = Signer::new("k1");
    let issuer = LoopbackIssuer::start(&[&signer]);
    let added = a.json(&["jwt-issuers", "add", &issuer.url, "--audience", "keysmith"]);
    assert_eq!(
        (&added["issuer"], &added["audience"]),
        (&json!(issuer.url), &json!("keysmith"))
    );
    let listed = a.json(&["jwt-issuers", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // An issuer that cannot be read is refused with the reason, exit status 1.
    let down = a.run(&["jwt-issuers", "add", "http://127.0.0.1:9"]);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("could not connect"),
        "{down:?}"
    );

    a.json(&["teams", "create", "vision"]);
    let account = a.json(&[
        "service-accounts",
        "create",
        "ci-train",
        "--team",
        "vision",
        "--external-subject",
        "repo:acme/train:ref:refs/heads/main",
    ]);
    assert_eq!(account["external_subject"], "repo:acme/train:ref:refs/heads/main");
    let text = a.run(&[
        "service-accounts",
        "create",
        "ci-eval",
        "--team",
        "vision",
        "--external-subject",
        "repo:acme/eval",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stderr).contains("created external service account ci-eval"),
        "{text:?}"
    );

    let id = added["id"].as_i64().unwrap().to_string();
    assert_eq!(a.json(&["jwt-issuers", "remove", &id])["removed"], json!(added["id"]));
    assert_eq!(a.json(&["jwt-issuers", "list"]), json!([]));
}

/// `keys report`: the organization's keys worth a look, in text and JSON; members
/// cannot read it.
#[test]
fn keys_report_lists_keys_expiring_soon_and_refuses_members() {
    let a = Admin::start();
    let created = a.json(&["keys", "create", "--name", "nightly", "--expires-in-days", "3"]);
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let report = a.json(&["keys", "report"]);
    assert_eq!(report["organization"], "default");
    let expiring: Vec<&str> = report["expiring"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(expiring, [key_id.as_str()]);
    assert_eq!(
        report["never_used"]["items"],
        json!([]),
        "keys made a moment ago are not listed"
    );
    let out = a.run(&["keys", "report"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Expiring within 7 days: 1"), "{text}");
    assert!(
        text.contains("nightly") && text.contains("keysmith keys rotate"),
        "{text}"
    );
    assert!(text.contains("Over-privileged (only reads for 30 days): 0"), "{text}");

    let bearer = format!("Bearer {}", a.key);
    let r = http(
        "POST",
        &format!("{}/api/v1/orgs/default/users", a.server.url),
        &[("authorization", bearer.as_str())],
        Some(&json!({"username": "mo", "password": "member-password-1"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (cookie, csrf) = common::sign_in(&a.server.url, "mo", "member-password-1");
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", a.server.url),
        &headers,
        Some(&json!({"name": "mine"})),
    );
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["keys", "report"])
        .env("KEYSMITH_HOST", &a.server.url)
        .env("KEYSMITH_API_KEY", r.body["key"].as_str().unwrap())
        .env("HOME", a.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("organization admins"), "{err}");
}
