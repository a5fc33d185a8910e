//! `keysmith scan` on files, staged changes and git history, and its pre-commit hook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::BIN;
use keysmith_core::{KeyPrefix, generate_v1};
use serde_json::Value;
use sha2::Digest;
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

/// Commit hashes as real projects pin them, beside W&B legacy keys as people leave
/// them. Legacy keys are 40 lowercase hex characters too, so only where a hash stands
/// may excuse one.
#[test]
fn pinned_commits_and_lock_files_are_not_keys_but_hex_legacy_keys_still_are() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: String| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let hash = |n: u8| format!("{:x}", sha2::Sha256::digest([n]))[..40].to_owned();
    let (h1, h2, h3, h4, h5, h6) = (hash(1), hash(2), hash(3), hash(4), hash(5), hash(6));
    write(
        "requirements.txt",
        format!(
            "numpy==2.1.0\n\
             wandb @ git+https://github.com/wandb/wandb.git@{h1}\n\
             -e git+https://github.com/wandb/wandb.git@{h2}#egg=wandb\n\
             git+https://github.com/wandb/weave@{h3}#subdirectory=weave\n"
        ),
    );
    write(
        "pyproject.toml",
        format!(
            "[tool.poetry.dependencies]\n\
             wandb = {{ git = \"https://github.com/wandb/wandb.git\", rev = \"{h4}\" }}\n\n\
             [tool.uv.sources]\n\
             wandb = {{ git = \"https://github.com/wandb/wandb\", rev = \"{h5}\" }}\n"
        ),
    );
    write(
        "Cargo.toml",
        format!("[dependencies]\nkeysmith-core = {{ git = \"https://github.com/wandb/keysmith\", rev = \"{h6}\" }}\n"),
    );
    write(
        ".pre-commit-config.yaml",
        format!("repos:\n  - repo: https://github.com/wandb/pre-commit-hooks\n    rev: {h1}\n"),
    );
    write(
        ".github/workflows/train.yml",
        format!(
            "steps:\n  - uses: wandb/wandb-action@{h2}\n    with:\n      api-key: ${{{{ secrets.WANDB_API_KEY }}}}\n"
        ),
    );
    write(
        "NOTES.md",
        format!(
            "The wandb fix landed in https://github.com/wandb/wandb/commit/{h3}; see\n\
             https://github.com/wandb/wandb/tree/{h4}/core and\n\
             https://github.com/wandb/wandb/blob/{h5}/wandb/__init__.py#L12.\n"
        ),
    );
    write(
        "Cargo.lock",
        format!(
            "[[package]]\nname = \"wandb-sys\"\nversion = \"0.1.0\"\n\
             source = \"git+https://github.com/wandb/wandb-sys?rev={h6}#{h6}\"\n"
        ),
    );
    write(
        "poetry.lock",
        format!(
            "[[package]]\nname = \"wandb\"\nversion = \"0.22.3\"\n\n[package.source]\ntype = \"git\"\n\
             url = \"https://github.com/wandb/wandb.git\"\nreference = \"main\"\nresolved_reference = \"{h1}\"\n"
        ),
    );
    write(
        "uv.lock",
        format!(
            "[[package]]\nname = \"wandb\"\nsource = {{ git = \"https://github.com/wandb/wandb?rev=main#{h2}\" }}\n"
        ),
    );
    write(
        "Pipfile.lock",
        format!(
            "{{\"default\": {{\"wandb\": {{\"git\": \"https://github.com/wandb/wandb.git\", \"ref\": \"{h3}\"}}}}}}\n"
        ),
    );
    write(
        "web/package-lock.json",
        format!(
            "{{\"packages\": {{\"node_modules/@wandb/sdk\": {{\"resolved\": \"git+ssh://git@github.com/wandb/sdk.git#{h4}\"}}}}}}\n"
        ),
    );
    write(
        "web/yarn.lock",
        format!(
            "\"@wandb/sdk@github:wandb/sdk\":\n  version \"1.0.0\"\n  resolved \"https://codeload.github.com/wandb/sdk/tar.gz/{h5}\"\n"
        ),
    );
    write(
        "web/pnpm-lock.yaml",
        format!(
            "packages:\n  '@wandb/sdk@https://codeload.github.com/wandb/sdk/tar.gz/{h6}':\n    resolution: {{tarball: x}}\n"
        ),
    );
    write(
        "go.sum",
        format!(
            "github.com/wandb/wandb/core v0.0.0-20250101000000-{} h1:abc=\n",
            &h1[..12]
        ),
    );
    write(
        "flake.lock",
        format!(
            "{{\"nodes\": {{\"wandb\": {{\"locked\": {{\"owner\": \"wandb\", \"rev\": \"{h2}\", \"narHash\": \"sha256-x\"}}}}}}}}\n"
        ),
    );

    // Real-looking legacy keys: hex, like every W&B key of the old format.
    let (k1, k2, k3, k4) = (hash(11), hash(12), hash(13), hash(14));
    write(
        "home/.netrc",
        format!("machine api.wandb.ai\n  login user\n  password {k1}\n"),
    );
    write(".env", format!("WANDB_API_KEY={k2}\n"));
    write(
        "scripts/setup.sh",
        format!("#!/bin/sh\nwandb login {k3}\nwandb login --host https://wandb.example.com local-{k4}\n"),
    );

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
    let legacy = |path: &str, line: u64| (path.to_owned(), line, "legacy".to_owned());
    assert_eq!(
        summary,
        [
            legacy(".env", 1),
            legacy("home/.netrc", 3),
            legacy("scripts/setup.sh", 2),
            legacy("scripts/setup.sh", 3),
        ],
        "only the keys, no commit hash: {found:?}"
    );
    let text = all_output(&out);
    for k in [&k1, &k2, &k3, &k4] {
        assert!(!text.contains(&k[6..]), "a finding never prints the key");
    }

    // The same hashes in a commit: the installed hook lets it through, and blocks the
    // key.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    assert!(keysmith(repo.path(), &["scan", "--install-hook"]).status.success());
    for file in [
        "requirements.txt",
        "pyproject.toml",
        "Cargo.lock",
        "poetry.lock",
        "NOTES.md",
    ] {
        std::fs::copy(dir.path().join(file), repo.path().join(file)).unwrap();
    }
    git(repo.path(), &["add", "."]);
    let commit = git(repo.path(), &["commit", "-q", "-m", "pin wandb to a commit"]);
    assert!(
        commit.status.success(),
        "the hook blocked commit hashes: {}",
        all_output(&commit)
    );
    std::fs::write(repo.path().join("train.env"), format!("WANDB_API_KEY={k2}\n")).unwrap();
    git(repo.path(), &["add", "train.env"]);
    let commit = git(repo.path(), &["commit", "-q", "-m", "oops"]);
    assert!(!commit.status.success(), "the hook let a legacy key through");
    assert!(all_output(&commit).contains("train.env:1:"), "{}", all_output(&commit));
}
