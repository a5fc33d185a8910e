//! `keysmith admin import-legacy-keys`: old keys keep working after a move to Keysmith,
//! and the tool never prints them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Server, basic, http};
use sha2::Digest;
use std::io::Write;
use std::process::{Command, Stdio};

const PASSWORD: &str = "operator-chosen-password-7f3a";
const LEGACY: &str = "0123456789abcdef0123456789abcdef01234567";
const LOCAL: &str = "local-89abcdef0123456789abcdef0123456789abcdef";
const BY_DIGEST: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn import(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["admin", "import-legacy-keys"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn imported_legacy_keys_authenticate_and_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), "init", &[], &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)]);
    first.stop();

    let out = import(
        dir.path(),
        &["--user", "admin"],
        &format!("# from the old server\n{LEGACY}\n\n{LOCAL}\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("imported 2 legacy key(s)"), "{printed}");

    let digest_file = dir.path().join("digests.txt");
    let hex: String = sha2::Sha256::digest(BY_DIGEST.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(&digest_file, format!("{hex}\n")).unwrap();
    let out = import(
        dir.path(),
        &["--user", "admin", "--digests", "--file", digest_file.to_str().unwrap()],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let again = import(dir.path(), &["--user", "admin"], &format!("{LEGACY}\n"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("1 already present"));

    let bad = import(
        dir.path(),
        &["--user", "admin"],
        &format!("{LEGACY}\nnot-a-key-but-secret\n"),
    );
    assert!(!bad.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        printed.contains("line(s) 2") && !printed.contains("not-a-key-but-secret") && !printed.contains(LEGACY),
        "{printed}"
    );

    let nobody = import(dir.path(), &["--user", "nobody"], &format!("{LEGACY}\n"));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user named `nobody`"));

    let server = Server::start(dir.path(), "serve", &[], &[]);
    for key in [LEGACY, LOCAL, BY_DIGEST] {
        let r = http(
            "GET",
            &format!("{}/api/v1/viewer", server.url),
            &[("authorization", &basic(key))],
            None,
        );
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        assert_eq!(r.body["username"], "admin");
    }
    let unknown = "1111111111111111111111111111111111111111";
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", server.url),
        &[("authorization", &basic(unknown))],
        None,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn admin_create_org_makes_a_separate_tenant_with_an_existing_admin() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), "init", &[], &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)]);
    first.stop();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["admin", "create-org"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["research", "--admin", "admin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !run(&["research", "--admin", "admin"]).status.success(),
        "a second org of the same name"
    );
    let out = run(&["x y", "--admin", "admin"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("organization name"));
    assert!(String::from_utf8_lossy(&run(&["lab", "--admin", "ghost"]).stderr).contains("no user named `ghost`"));

    let server = Server::start(dir.path(), "serve", &[], &[]);
    let (cookie, _) = common::sign_in(&server.url, "admin", PASSWORD);
    let r = http(
        "GET",
        &format!("{}/api/v1/orgs", server.url),
        &[("cookie", &cookie)],
        None,
    );
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "research"]);
    assert_eq!(r.body["items"][1]["role"], "admin");
}
