//! The `keysmith` client commands against a real server: the key only from the
//! environment, `keys create` printing the key alone, JSON that parses, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Server, start_with_admin_key};
use serde_json::Value;
use std::process::{Command, Output};

const PASSWORD: &str = "cli-test-admin-password";

struct Cli {
    server: Server,
    _dir: tempfile::TempDir,
    key: String,
}

impl Cli {
    fn start() -> Self {
        let started = start_with_admin_key("cli", PASSWORD);
        Cli {
            server: started.server,
            _dir: started.dir,
            key: started.key,
        }
    }

    fn run_with_key(&self, key: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_")) {
            cmd.env_remove(k);
        }
        // A home of its own: a developer's stored login must not leak in.
        cmd.args(args)
            .env("KEYSMITH_HOST", &self.server.url)
            .env("HOME", self._dir.path())
            .env_remove("XDG_CONFIG_HOME");
        if let Some(key) = key {
            cmd.env("KEYSMITH_API_KEY", key);
        }
        cmd.output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_key(Some(&self.key), args)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_key_given_as_an_argument_is_refused_without_being_repeated() {
    let cli = Cli::start();
    for args in [
        vec!["whoami", cli.key.as_str()],
        vec!["keys", "list", "--owner", cli.key.as_str()],
    ] {
        let out = cli.run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("never takes keys as arguments"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("KEYSMITH_API_KEY"));
        assert!(
            !stderr(&out).contains(&cli.key),
            "the refusal must not print the key again"
        );
    }
    let legacy = "0123456789abcdef0123456789abcdef01234567";
    let flag = format!("--name={legacy}");
    let out = cli.run(&["keys", "create", &flag]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "legacy keys and --flag=value forms are caught too"
    );
}

#[test]
fn keys_create_prints_exactly_the_key_on_stdout_and_guidance_on_stderr() {
    let cli = Cli::start();
    let out = cli.run(&["keys", "create", "--name", "ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let key = printed.strip_suffix('\n').unwrap();
    assert_eq!(key.len(), 86);
    assert!(
        !key.contains(char::is_whitespace),
        "stdout is the key and a newline, nothing else"
    );
    assert!(stderr(&out).contains("shown only this once"));
    assert!(!stderr(&out).contains(key), "the key is not repeated on stderr");
    let out = cli.run_with_key(Some(key), &["whoami", "--output", "json"]);
    let viewer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(viewer["username"], "admin", "the printed key works");
}

#[test]
fn every_json_output_parses() {
    let cli = Cli::start();
    let created: Value = serde_json::from_str(&stdout(
        &cli.run(&["keys", "create", "--name", "j", "--output", "json"]),
    ))
    .unwrap();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert_eq!(created["key"].as_str().unwrap().len(), 86, "JSON carries the key once");
    let outputs = [
        cli.run(&["whoami", "--output", "json"]),
        cli.run(&["keys", "list", "--output", "json", "--all"]),
        cli.run(&["keys", "rename", &key_id, "--name", "renamed", "--output", "json"]),
        cli.run(&["keys", "delete", &key_id, "--output", "json"]),
    ];
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
        serde_json::from_str::<Value>(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)));
    }
    let listed: Value = serde_json::from_str(&stdout(&outputs[1])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !stdout(&outputs[1]).contains(&created["key"].as_str().unwrap()[37..]),
        "lists carry no secret"
    );
    let deleted: Value = serde_json::from_str(&stdout(&outputs[3])).unwrap();
    assert_eq!(deleted[0]["status"], "deleted");
}

#[test]
fn exit_codes_tell_a_missing_or_refused_key_from_other_failures() {
    let cli = Cli::start();
    let out = cli.run_with_key(None, &["whoami"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("set KEYSMITH_API_KEY"), "{}", stderr(&out));
    let mut wrong = cli.key.clone();
    wrong.pop();
    wrong.push(if cli.key.ends_with('A') { 'B' } else { 'A' });
    let out = cli.run_with_key(Some(&wrong), &["keys", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("invalid_api_key"));
    let out = cli.run(&["keys", "delete", "wandb_v1_000000000000000000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("api key not found"), "{}", stderr(&out));
    let out = cli.run(&["keys", "create", "--name", " "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid_name"), "{}", stderr(&out));
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["whoami"])
        .env_remove("KEYSMITH_HOST")
        .env_remove("WANDB_BASE_URL")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path())
        .env("KEYSMITH_API_KEY", &cli.key)
        .output()
        .unwrap();
    assert!(stderr(&out).contains("no server"), "{}", stderr(&out));
}

#[test]
fn keys_list_shows_key_ids_and_the_table_header() {
    let cli = Cli::start();
    let out = cli.run(&["keys", "list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("KEY ID"), "{text}");
    assert!(text.contains(&cli.key[..36]));
    assert!(!text.contains(&cli.key[37..]));
}

#[test]
fn a_key_with_a_trailing_newline_works_and_a_stray_character_is_named_not_sent() {
    let cli = Cli::start();
    // A secret mounted from a file ends with a newline; CRLF and tabs come from
    // Windows editors and copied text.
    for padded in [format!("{}\n", cli.key), format!(" \t{}\r\n", cli.key)] {
        let out = cli.run_with_key(Some(&padded), &["whoami", "--output", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let viewer: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(viewer["username"], "admin");
    }
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_") || k.starts_with("WANDB_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["whoami"])
        .env("KEYSMITH_HOST", &cli.server.url)
        .env("HOME", cli._dir.path())
        .env("WANDB_API_KEY", format!("{}\n", cli.key))
        .output()
        .unwrap();
    assert!(out.status.success(), "WANDB_API_KEY is trimmed too: {}", stderr(&out));

    for (broken, expected) in [
        (
            format!("{}\u{1b}{}", &cli.key[..10], &cli.key[10..]),
            "the API key in KEYSMITH_API_KEY contains a character that cannot be sent (a control character at position 11)",
        ),
        (
            format!("{}\n{}", &cli.key[..40], &cli.key[40..]),
            "the API key in KEYSMITH_API_KEY contains a character that cannot be sent (a control character at position 41)",
        ),
        (
            format!("{}\u{201d}", cli.key),
            "the API key in KEYSMITH_API_KEY contains a character that cannot be sent (a non-ASCII character at position 87)",
        ),
    ] {
        for args in [&["whoami"][..], &["keys", "list"], &["status"]] {
            let out = cli.run_with_key(Some(&broken), args);
            let text = stderr(&out);
            assert_eq!(out.status.code(), Some(3), "{args:?}: {text}");
            assert!(text.contains(expected), "{args:?}: {text}");
            assert!(!text.contains("cannot reach"), "not a server problem: {text}");
            assert!(
                !text.contains(&cli.key[..10]) && !text.contains(&cli.key[41..]),
                "never echoes the key: {text}"
            );
        }
    }
}

#[test]
fn keys_being_rotated_are_reported_as_such_not_as_expiring() {
    let cli = Cli::start();
    let created: Value = serde_json::from_str(&stdout(
        &cli.run(&["keys", "create", "--name", "laptop", "--output", "json"]),
    ))
    .unwrap();
    let old = created["key_id"].as_str().unwrap().to_owned();
    let out = cli.run(&["keys", "rotate", &old, "--grace", "24h", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let new = rotated["key_id"].as_str().unwrap().to_owned();
    let ends = rotated["old_key_expires_at"].as_str().unwrap().to_owned();

    let out = cli.run(&["keys", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "{old} is being rotated to {new}; it stops working at {ends}; finish now with `keysmith keys delete {old}`"
        )),
        "{text}"
    );
    assert!(
        !text.contains("keys rotate"),
        "advice to rotate a key being rotated fails with rotation_in_progress: {text}"
    );
    assert!(!text.contains("expire within 7 days"), "{text}");
    // The advice works.
    let out = cli.run(&["keys", "delete", &old]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli.run(&["keys", "list"]);
    assert!(!stderr(&out).contains("being rotated"), "{}", stderr(&out));

    // A rotation that keeps the old key until it is deleted has no end time.
    let out = cli.run(&["keys", "rotate", &new, "--grace", "until_deleted", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let newer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let out = cli.run(&["keys", "list"]);
    assert!(
        stderr(&out).contains(&format!(
            "{new} is being rotated to {}; it keeps working until you delete it; finish now with `keysmith keys delete {new}`",
            newer["key_id"].as_str().unwrap()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keys_list_aligns_columns_by_display_width() {
    use unicode_width::UnicodeWidthStr;
    let cli = Cli::start();
    let long = "아주 긴 이름을 가진 실험용 노트북 키입니다 🚀🚀";
    for name in ["실험 노트북", "🚀 launch", "실험 🚀 run ✨", long, "plain"] {
        let out = cli.run(&["keys", "create", "--name", name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = cli.run(&["keys", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "header and six keys: {text}");
    // Every row's OWNER column (the admin) starts at the header's column, counted in
    // terminal columns.
    let header_at = lines[0].find("OWNER").map(|i| lines[0][..i].width()).unwrap();
    for line in &lines[1..] {
        let at = line.find(" admin ").map(|i| line[..i + 1].width()).unwrap();
        assert_eq!(at, header_at, "misaligned row: {line}\n{text}");
    }
    for name in ["실험 노트북", "🚀 launch", "실험 🚀 run ✨"] {
        assert!(text.contains(name), "short names are shown whole: {text}");
    }
    assert!(!text.contains(long), "a long name is cut: {text}");
    let cut = lines.iter().find(|l| l.contains("아주 긴")).unwrap();
    assert!(cut.contains('…'), "{cut}");
}
