//! `keysmith scan` on files, staged changes and git history, and its pre-commit hook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::BIN;
use keysmith_core::{KeyPrefix, generate_v1};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn keysmith(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().unwrap()
}

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn scan_finds_planted_keys_and_ignores_checksum_invalid_look_alikes() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    let plain = key.plaintext.expose();
    let mut look_alike = plain.to_owned();
    look_alike.pop();
    look_alike.push(if plain.ends_with('0') { '1' } else { '0' });
    let legacy = "89abcdef0123456789abcdef0123456789abcdef";
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/train.py"),
        format!("import wandb\nwandb.login(key=\"{plain}\")\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".netrc"),
        format!("machine api.wandb.ai\n  login user\n  password {legacy}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        format!("not a key: {look_alike}\ncommit {legacy}\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("target")).unwrap();
    std::fs::write(dir.path().join("target/skip.txt"), plain).unwrap();

    let out = keysmith(dir.path(), &["scan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Vec<(String, u64, String)> = found
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (".netrc".to_owned(), 3, "legacy".to_owned()),
            ("src/train.py".to_owned(), 2, "v1".to_owned())
        ]
    );
    assert_eq!(found[1]["shown"], key.key_id.as_str());
    let text = all_output(&out);
    assert!(
        !text.contains(&plain[37..]) && !text.contains(&legacy[6..]),
        "a finding never prints the key"
    );

    let clean = tempfile::tempdir().unwrap();
    std::fs::write(clean.path().join("a.txt"), format!("nothing here {look_alike}")).unwrap();
    let out = keysmith(clean.path(), &["scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

#[test]
fn the_installed_hook_blocks_a_commit_that_adds_a_key() {
    let dir = tempfile::tempdir().unwrap();
    assert!(git(dir.path(), &["init", "-q"]).status.success());
    let out = keysmith(dir.path(), &["scan", "--install-hook"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    std::fs::write(
        dir.path().join("config.env"),
        format!("WANDB_API_KEY={}\n", key.plaintext.expose()),
    )
    .unwrap();
    git(dir.path(), &["add", "config.env"]);
    let commit = git(dir.path(), &["commit", "-q", "-m", "oops"]);
    assert!(
        !commit.status.success(),
        "the hook let a key through: {}",
        all_output(&commit)
    );
    assert!(all_output(&commit).contains("config.env:1:"), "{}", all_output(&commit));
    assert!(!all_output(&commit).contains(&key.plaintext.expose()[37..]));

    std::fs::write(dir.path().join("config.env"), "WANDB_API_KEY=${WANDB_API_KEY}\n").unwrap();
    git(dir.path(), &["add", "config.env"]);
    let commit = git(
        dir.path(),
        &["commit", "-q", "-m", "reads the key from the environment"],
    );
    assert!(commit.status.success(), "{}", all_output(&commit));
    let again = keysmith(dir.path(), &["scan", "--install-hook"]);
    assert!(again.status.success(), "reinstalling our own hook is fine");
}

#[test]
fn git_history_finds_a_key_that_was_committed_and_later_removed() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    std::fs::write(
        dir.path().join("run.sh"),
        format!("export WANDB_API_KEY={}\n", key.plaintext.expose()),
    )
    .unwrap();
    git(dir.path(), &["add", "run.sh"]);
    git(dir.path(), &["commit", "-q", "-m", "add"]);
    std::fs::write(dir.path().join("run.sh"), "python train.py\n").unwrap();
    git(dir.path(), &["commit", "-q", "-am", "remove"]);
    assert_eq!(
        keysmith(dir.path(), &["scan"]).status.code(),
        Some(0),
        "the working tree is clean"
    );
    let out = keysmith(dir.path(), &["scan", "--git-history", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["path"], "run.sh");
    assert_eq!(found[0]["shown"], key.key_id.as_str());
    assert_eq!(found[0]["commit"].as_str().unwrap().len(), 40);
}

#[test]
fn completions_are_printed_for_a_shell() {
    let out = Command::new(BIN).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("keysmith"));
}
