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
fn rotate_makes_a_second_key_with_the_same_name_and_keeps_the_first_working() {
    let a = Admin::start();
    let created = a.json(&["keys", "create", "--name", "pipeline"]);
    let old_id = created["key_id"].as_str().unwrap().to_owned();
    let out = a.run(&["keys", "rotate", &old_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(new_key.len(), 86);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("keysmith keys delete {old_id}")));
    let keys = a.json(&["keys", "list", "--name-contains", "pipeline"]);
    assert_eq!(
        keys.as_array().unwrap().len(),
        2,
        "both keys work until the old one is deleted"
    );
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", a.server.url),
        &[("authorization", &format!("Bearer {new_key}"))],
        None,
    );
    assert_eq!(r.status, 200);
}
