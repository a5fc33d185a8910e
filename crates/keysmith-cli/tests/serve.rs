//! `keysmith serve` as an operator runs it: first start, restarts, configuration
//! errors, PostgreSQL by URL, and no secret anywhere it writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, Server, basic, http, sign_in};
use serde_json::json;
use std::process::Command;

const PASSWORD: &str = "operator-chosen-password-7f3a";

fn generated_password(stdout: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.contains("Password (shown only this once"));
    lines.next().expect("no password announcement");
    lines
        .find(|l| !l.trim().is_empty())
        .expect("no password line")
        .trim()
        .to_owned()
}

#[test]
fn first_start_prints_a_generated_password_once_and_it_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "first", &[], &[]);
    let stdout = std::fs::read_to_string(&server.stdout).unwrap();
    let password = generated_password(&stdout);
    assert!(password.len() >= 20, "{password}");
    sign_in(&server.url, "admin", &password);
    let (stdout, stderr) = server.stop();
    assert_eq!(
        stdout.matches(&password).count(),
        1,
        "the password is shown exactly once"
    );
    assert!(!stderr.contains(&password), "the password reached the log");
    assert!(stdout.contains("sign in:"), "the banner says how to sign in");

    let data = dir.path().join("data");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the data directory is private");

    let again = Server::start(dir.path(), "second", &[], &[]);
    let stdout = std::fs::read_to_string(&again.stdout).unwrap();
    assert!(
        !stdout.contains("Password (shown only"),
        "a restart must not create another admin"
    );
    sign_in(&again.url, "admin", &password);
}

#[test]
fn the_admin_password_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let server = Server::start(
        dir.path(),
        "file",
        &[],
        &[("KEYSMITH_ADMIN_PASSWORD_FILE", file.to_str().unwrap())],
    );
    sign_in(&server.url, "admin", PASSWORD);
    let (stdout, _) = server.stop();
    assert!(!stdout.contains(PASSWORD));
}

#[test]
fn unknown_settings_stop_the_server_with_a_message_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env("KEYSMITH_LISTN", "127.0.0.1:1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listn") && stderr.contains("KEYSMITH_LISTN"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("k.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", "k.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
}

#[test]
fn help_teaches_by_example() {
    let out = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--listen") && text.contains("--data-dir") && text.contains("Examples:"),
        "{text}"
    );
}

#[test]
fn serve_uses_postgres_when_given_its_url() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "pg",
        &["--database-url", &url],
        &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)],
    );
    sign_in(&server.url, "admin", PASSWORD);
    assert!(
        !dir.path().join("data/keysmith.db").exists(),
        "no SQLite file when PostgreSQL is chosen"
    );
    let count = cluster
        .psql(url.rsplit('/').next().unwrap(), "SELECT count(*) FROM users")
        .unwrap();
    assert_eq!(count.trim(), "1");
}

#[test]
fn last_use_and_sources_survive_a_restart_and_the_server_secret_is_private_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KEYSMITH_ADMIN_PASSWORD", PASSWORD)];
    let server = Server::start(dir.path(), "one", &[], &env);
    let (cookie, csrf) = sign_in(&server.url, "admin", PASSWORD);
    let session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", server.url),
        &session,
        Some(&json!({"name": "restart"})),
    );
    let key = r.body["key"].as_str().unwrap().to_owned();
    let key_id = r.body["key_id"].as_str().unwrap().to_owned();
    let auth = basic(&key);
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", server.url),
        &[("authorization", &auth), ("user-agent", "nightly-job/1")],
        None,
    );
    assert_eq!(r.status, 200);
    let secret_file = dir.path().join("data/server-secret");
    let secret = std::fs::read(&secret_file).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the server secret is readable by its owner only");
    // A clean stop writes what is still in memory (the flush interval is 30 s).
    server.stop();

    let again = Server::start(dir.path(), "two", &[], &env);
    let r = http(
        "GET",
        &format!("{}/api/v1/api-keys/{key_id}", again.url),
        &[("authorization", &auth)],
        None,
    );
    assert!(r.body["last_used_at"].is_string(), "{}", r.body);
    let agents: Vec<&str> = r.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert!(agents.contains(&"nightly-job/1"), "{agents:?}");
    assert_eq!(
        std::fs::read(&secret_file).unwrap(),
        secret,
        "the secret is kept across restarts"
    );
}

/// HTTPS served directly: a certificate and key from PEM files (made here by
/// openssl), the banner says https, answers carry HSTS and the session cookie is
/// Secure, plain HTTP on the port gets no answer, and a bad key file stops the
/// server with a message that names the file.
#[test]
fn https_is_served_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian: apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let env = [
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
        ("KEYSMITH_TLS_CERT_FILE", cert.to_str().unwrap()),
        ("KEYSMITH_TLS_KEY_FILE", key.to_str().unwrap()),
    ];
    let server = Server::start(dir.path(), "tls", &[], &env);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(args)
            .output()
            .expect("curl (Debian: apt-get install curl)")
    };
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("https://localhost:{port}/healthz"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/1.1 200"),
        "{head} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(head.contains("strict-transport-security: max-age=31536000"), "{head}");
    let login = format!(r#"{{"username":"admin","password":"{PASSWORD}"}}"#);
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "content-type: application/json",
        "--data",
        &login,
        &format!("https://localhost:{port}/api/v1/session"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let cookie = head.lines().find(|l| l.starts_with("set-cookie:")).unwrap_or_default();
    assert!(
        cookie.contains("; secure"),
        "the session cookie is Secure over HTTPS: {head}"
    );
    let plain = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://localhost:{port}/healthz"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "000",
        "plain HTTP gets no answer"
    );
    let (_, stderr) = server.stop();
    assert!(!stderr.contains(PASSWORD));

    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYSMITH_DATA_DIR", dir.path().join("data"))
        .env("KEYSMITH_TLS_CERT_FILE", &cert)
        .env("KEYSMITH_TLS_KEY_FILE", &key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("key.pem"), "the error names the file: {stderr}");
    assert!(
        !stderr.contains("bm90IGEga2V5"),
        "the error shows no key material: {stderr}"
    );
}
