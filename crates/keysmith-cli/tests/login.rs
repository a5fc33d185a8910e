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

/// Waits for `child` to exit, at most `secs` seconds; kills it and fails otherwise.
fn wait_at_most(mut child: std::process::Child, secs: u64, what: &str) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what}: still running after {secs}s; stderr: {}", err(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The environment of a machine without a desktop session, for commands built by hand.
fn headless(cmd: &mut Command, home: &Path) {
    for (k, _) in std::env::vars().filter(|(k, _)| {
        k.starts_with("KEYSMITH_")
            || k.starts_with("WANDB_")
            || k.starts_with("XDG_")
            || k == "DBUS_SESSION_BUS_ADDRESS"
    }) {
        cmd.env_remove(k);
    }
    cmd.env("HOME", home).env("XDG_RUNTIME_DIR", home);
}

#[test]
fn without_a_credential_store_login_refuses_before_reading_the_key() {
    let (server, _dir, _key) = start();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    headless(&mut cmd, home.path());
    // Standard input stays open and empty: a login that reads the key first would
    // wait here forever.
    let mut child = cmd
        .args(["login", "--host", &server.url, "--with-key-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = wait_at_most(child, 20, "login without a keyring");
    drop(stdin);
    let text = err(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no operating-system credential store") || text.contains("no desktop session"),
        "{text}"
    );
    assert!(
        text.contains("--store file") && text.contains("No key was read"),
        "{text}"
    );
    assert!(text.contains("credentials.json"), "names the file it could use: {text}");
    for raw in [
        "zbus",
        "org.freedesktop",
        "DBus.Error",
        "Connection refused",
        "No such file",
    ] {
        assert!(
            !text.contains(raw),
            "a raw D-Bus error reached the user ({raw}): {text}"
        );
    }
    assert!(!home.path().join(".config/keysmith/credentials.json").exists());
}

/// Runs `keysmith ARGS` on a pseudo-terminal (through `script`), answering each
/// prompt in `dialogue` once it appears; returns everything the terminal showed and
/// the exit status.
fn on_a_terminal(home: &Path, args: &str, dialogue: &[(&str, &str)]) -> (String, Option<i32>) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let mut cmd = Command::new("script");
    headless(&mut cmd, home);
    let mut child = cmd
        .args(["-qec", &format!("'{BIN}' {args}"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs a command on a pseudo-terminal");
    let screen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut input = child.stdin.take().unwrap();
    for (prompt, answer) in dialogue {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !screen.lock().unwrap().contains(prompt) {
            let exited = child.try_wait().unwrap().is_some();
            assert!(
                !exited && std::time::Instant::now() < deadline,
                "no prompt {prompt:?}; the terminal showed: {}",
                screen.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        input.write_all(answer.as_bytes()).unwrap();
        input.flush().unwrap();
    }
    let out = wait_at_most(child, 30, "login on a terminal");
    drop(input);
    reader.join().unwrap();
    let shown = screen.lock().unwrap().clone();
    (shown, out.status.code())
}

#[test]
fn on_a_terminal_without_a_credential_store_login_offers_the_private_file_first() {
    let (server, _dir, key) = start();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".config/keysmith/credentials.json");
    let question = "Store the key in ~/.config/keysmith/credentials.json (readable only by you)? [y/N]";

    // No: nothing is asked for, nothing is stored.
    let (shown, code) = on_a_terminal(
        home.path(),
        &format!("login --host {}", server.url),
        &[(question, "\n")],
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("no operating-system credential store"), "{shown}");
    assert!(
        !shown.contains("Paste your API key"),
        "the key is not asked for: {shown}"
    );
    assert!(!file.exists());

    // Yes: then the key, hidden, checked and kept in the file.
    let (shown, code) = on_a_terminal(
        home.path(),
        &format!("login --host {}", server.url),
        &[(question, "y\n"), ("Paste your API key", &format!("{key}\n"))],
    );
    assert_eq!(code, Some(0), "{shown}");
    let asked = shown.find(question).unwrap();
    let pasted = shown.find("Paste your API key").unwrap();
    assert!(asked < pasted, "the store is settled before the key is read: {shown}");
    assert!(shown.contains("Logged in to"), "{shown}");
    assert!(!shown.contains("zbus") && !shown.contains("org.freedesktop"), "{shown}");
    assert!(!shown.contains(&key[37..]), "the key is not echoed: {shown}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let whoami = keysmith(home.path(), &["whoami", "--output", "json"], None);
    assert!(whoami.status.success(), "{}", err(&whoami));
}

#[test]
fn an_empty_key_is_reported_as_no_key_given() {
    let (server, _dir, _key) = start();
    let home = tempfile::tempdir().unwrap();
    for input in ["", "\n", "  \r\n\t\n"] {
        let out = keysmith(
            home.path(),
            &["login", "--host", &server.url, "--with-key-stdin", "--store", "file"],
            Some(input),
        );
        assert_eq!(out.status.code(), Some(3), "{}", err(&out));
        assert!(
            err(&out).contains("no key was given on standard input"),
            "{}",
            err(&out)
        );
        assert!(!err(&out).contains("not an API key"), "{}", err(&out));
    }
    let (shown, code) = on_a_terminal(
        home.path(),
        &format!("login --host {} --store file", server.url),
        &[("Paste your API key", "\n")],
    );
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("no key was given at the prompt"), "{shown}");
    assert!(!shown.contains("not an API key"), "{shown}");
    assert!(!home.path().join(".config/keysmith/credentials.json").exists());
}

#[test]
fn keys_from_stdin_and_the_credential_file_are_trimmed_and_stray_characters_named() {
    let (server, _dir, key) = start();
    let home = tempfile::tempdir().unwrap();
    let login = [
        "login",
        "--host",
        server.url.as_str(),
        "--with-key-stdin",
        "--store",
        "file",
    ];

    let broken = format!("{}\u{7}{}", &key[..20], &key[20..]);
    let out = keysmith(home.path(), &login, Some(&broken));
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(
        err(&out).contains(
            "the API key on standard input contains a character that cannot be sent (a control character at position 21)"
        ),
        "{}",
        err(&out)
    );
    assert!(
        !err(&out).contains(&key[..20]) && !err(&out).contains(&key[21..]),
        "{}",
        err(&out)
    );
    assert!(!err(&out).contains("cannot reach"), "{}", err(&out));

    let out = keysmith(home.path(), &login, Some(&format!("\t{key}\r\n")));
    assert!(out.status.success(), "{}", err(&out));

    // A credential file edited by hand, with the newline an editor adds.
    let file = home.path().join(".config/keysmith/credentials.json");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["key"], key.as_str(), "the key is stored trimmed");
    let edited = serde_json::json!({ "host": stored["host"], "key": format!("{key}\n") });
    std::fs::write(&file, edited.to_string()).unwrap();
    let out = keysmith(home.path(), &["whoami"], None);
    assert!(out.status.success(), "{}", err(&out));
    let edited = serde_json::json!({ "host": stored["host"], "key": format!("{key}é") });
    std::fs::write(&file, edited.to_string()).unwrap();
    let out = keysmith(home.path(), &["whoami"], None);
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(
        err(&out).contains(
            "credentials.json contains a character that cannot be sent (a non-ASCII character at position 87)"
        ),
        "{}",
        err(&out)
    );
}
