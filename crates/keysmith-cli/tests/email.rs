//! Notices by email, end to end: the real `keysmith` binary sends to an SMTP server
//! the test runs on loopback (aiosmtpd, `tests/smtp/sink.py`), which prints what it
//! receives as JSON lines; the same warning's webhook delivery is checked by the
//! Standard Webhooks library (`tests/webhooks/receiver.py`). Warnings are found when the server starts and every minute
//! after, so each test makes its keys, restarts the server and waits for the mail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, http, python_tools, sign_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery";
const SENDER: &str = "Keysmith <keysmith@example.test>";

/// A peer the test runs (the SMTP sink, the webhook receiver): its port, and the JSON
/// lines it prints after the first, in order.
struct Sink {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    lines: mpsc::Receiver<Value>,
}

impl Sink {
    /// The SMTP server, with `args`.
    fn start(args: &[&str]) -> Self {
        let mut all = vec!["--stdin-lifeline"];
        all.extend(args);
        Self::run("tests/smtp/sink.py", &all)
    }

    /// A webhook receiver (`tests/webhooks/receiver.py serve`).
    fn receiver() -> Self {
        Self::run("tests/webhooks/receiver.py", &["serve"])
    }

    fn run(script: &str, args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
        let mut child = Command::new(python_tools())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the peer starts (target/python-tools)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).expect("the peer listens");
        assert_eq!(first["event"], "listening", "{first}");
        let port = u16::try_from(first["port"].as_u64().unwrap()).unwrap();
        Sink {
            child,
            _stdin: stdin,
            port,
            lines,
        }
    }

    /// The next message, waiting at most `secs` seconds.
    fn next(&self, secs: u64) -> Option<Value> {
        self.lines.recv_timeout(Duration::from_secs(secs)).ok()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in as `admin` and adds `people` (username, email) with the password.
fn people(url: &str, people: &[(&str, &str)]) -> Vec<(String, String)> {
    let (cookie, csrf) = sign_in(url, "admin", PASSWORD);
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    for (name, email) in people {
        let body = json!({"username": name, "email": email, "password": PASSWORD});
        let r = http(
            "POST",
            &format!("{url}/api/v1/orgs/default/users"),
            &headers,
            Some(&body),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    people.iter().map(|(name, _)| sign_in(url, name, PASSWORD)).collect()
}

/// A key of the signed-in person that expires in a day: (key, key ID).
fn expiring_key(url: &str, session: &(String, String), name: &str) -> (String, String) {
    let headers = [("cookie", session.0.as_str()), ("x-csrf-token", session.1.as_str())];
    let body = json!({"name": name, "expires_in_days": 1});
    let r = http("POST", &format!("{url}/api/v1/api-keys"), &headers, Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    )
}

/// What the Standard Webhooks library's `Webhook(secret).verify` makes of a delivery
/// the receiver printed: the payload, or its refusal.
fn standard_webhooks_verify(secret: &str, delivery: &Value) -> Result<Value, String> {
    use std::io::Write;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
    let mut child = Command::new(python_tools())
        .arg(script)
        .arg("verify")
        .env("WEBHOOK_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{delivery}").unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        let payloads: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        Ok(payloads.into_iter().next().unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn restart(server: Server, dir: &Path, run: &str, env: &[(&str, &str)]) -> Server {
    server.stop();
    Server::start(dir, run, &[], env)
}

/// A key that expires within a day is warned about once, by email to its owner, in
/// quoted-printable plain text with the key's ID and no secret; the mail server's
/// first "try again later" (451) is retried; a restart sends nothing again.
#[test]
fn an_expiring_key_is_announced_by_email_once_with_no_secret() {
    let sink = Sink::start(&["--fail-first", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let smtp = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let env = [
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
        ("KEYSMITH_SMTP_URL", smtp.as_str()),
        ("KEYSMITH_SMTP_FROM", SENDER),
        ("KEYSMITH_PUBLIC_URL", "https://keys.example.test"),
    ];
    let server = Server::start(dir.path(), "first", &[], &env);
    let sessions = people(&server.url, &[("alice", "alice@example.test")]);
    let (key, key_id) = expiring_key(&server.url, &sessions[0], "nightly");
    // The same warning goes to the organization's webhook endpoint.
    let receiver = Sink::receiver();
    let (cookie, csrf) = sign_in(&server.url, "admin", PASSWORD);
    let r = http(
        "POST",
        &format!("{}/api/v1/orgs/default/webhooks", server.url),
        &[("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
        Some(&json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port), "events": ["api_key.expiring"]})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let hook_secret = r.body["secret"].as_str().unwrap().to_owned();
    let server = restart(server, dir.path(), "second", &env);

    let started = Instant::now();
    let mail = sink.next(60).expect("the warning arrives, after one 451 and a retry");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "retried after the backoff (5 s)"
    );
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.test"]));
    assert_eq!(mail["mail_from"], "keysmith@example.test");
    assert_eq!(mail["tls"], false);
    let headers = &mail["headers"];
    assert_eq!(
        headers["Subject"],
        "Keysmith: your API key \"nightly\" expires in 1 day"
    );
    assert_eq!(headers["Content-Transfer-Encoding"], "quoted-printable");
    assert!(
        headers["Content-Type"].as_str().unwrap().starts_with("text/plain"),
        "{headers}"
    );
    let text = mail["text"].as_str().unwrap();
    assert!(text.starts_with("Hello alice,\n"), "{text}");
    assert!(
        text.contains(&key_id) && text.contains("keysmith keys rotate"),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://keys.example.test/keys/{key_id}/rotate")),
        "{text}"
    );
    let raw = mail["raw"].as_str().unwrap();
    let secret = &key[key.len() - 40..];
    assert!(!raw.contains(&key) && !raw.contains(secret), "no key in the message");

    // The delivery verifies with the Standard Webhooks library.
    let delivery = receiver.next(30).expect("the warning is delivered by webhook");
    let verified = standard_webhooks_verify(&hook_secret, &delivery).unwrap();
    assert_eq!(verified["type"], "api_key.expiring");
    assert_eq!(verified["data"]["key_id"], key_id.as_str());
    assert_eq!(verified["data"]["detail"]["lead_time_days"], 1);
    let mut tampered = delivery.clone();
    tampered["body"] = json!(delivery["body"].as_str().unwrap().replace("nightly", "daily"));
    assert!(
        standard_webhooks_verify(&hook_secret, &tampered).is_err(),
        "a changed body does not verify"
    );

    // Once: a restart finds the warning given.
    let server = restart(server, dir.path(), "third", &env);
    assert!(sink.next(4).is_none(), "the warning is not sent twice");
    let (stdout, stderr) = server.stop();
    for log in [&stdout, &stderr] {
        assert!(!log.contains(secret), "no key in the log");
        assert!(!log.contains("alice@example.test"), "no address in the log");
    }
}

/// A private certificate authority and the mail server's certificate for
/// `localhost`, signed by it: (CA certificate, certificate, key), made by openssl.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian: apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=Test Mail CA",
                "-days",
                "2",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &["-subj", "/CN=localhost", "-keyout", "mail.key", "-out", "mail.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "mail.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "mail.pem",
    ]);
    (path("ca.pem"), path("mail.pem"), path("mail.key"))
}

/// STARTTLS, required, with a certificate the operator trusts (`smtp_ca_file`) and a
/// password from a file; a recipient the mail server refuses (550) is given up on at
/// once while the others are sent; plain text to another machine is refused at start.
#[test]
fn starttls_with_a_password_and_a_refused_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let sink = Sink::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--require-starttls",
        "--auth",
        "mailer:smtp-secret-42",
        "--reject-rcpt",
        "bob@example.test",
    ]);
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "smtp-secret-42\n").unwrap();
    let smtp = format!("smtp://localhost:{}", sink.port);
    let env = [
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
        ("KEYSMITH_SMTP_URL", smtp.as_str()),
        ("KEYSMITH_SMTP_FROM", SENDER),
        ("KEYSMITH_SMTP_USERNAME", "mailer"),
        ("KEYSMITH_SMTP_PASSWORD_FILE", password.to_str().unwrap()),
        ("KEYSMITH_SMTP_CA_FILE", ca.to_str().unwrap()),
    ];
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = Server::start(&data, "first", &[], &env);
    let sessions = people(
        &server.url,
        &[("bob", "bob@example.test"), ("carol", "carol@example.test")],
    );
    expiring_key(&server.url, &sessions[0], "bobs");
    expiring_key(&server.url, &sessions[1], "carols");
    let server = restart(server, &data, "second", &env);

    let mail = sink.next(60).expect("carol's warning arrives");
    assert_eq!(mail["rcpt_tos"], json!(["carol@example.test"]));
    assert_eq!(mail["tls"], true, "sent after STARTTLS");
    assert_eq!(mail["auth_login"], "mailer");
    assert!(sink.next(3).is_none(), "bob's address is refused, and not tried again");
    let (_, stderr) = server.stop();
    assert!(
        stderr.contains("email not sent") && stderr.contains("550"),
        "the refusal is logged: {stderr}"
    );
    assert!(!stderr.contains("smtp-secret-42"), "no SMTP password in the log");

    // Plain text only to this machine.
    let mut env = env.to_vec();
    env.retain(|(k, _)| *k != "KEYSMITH_SMTP_URL");
    env.push(("KEYSMITH_SMTP_URL", "smtp://mail.example.com:25?tls=none"));
    let out = Command::new(common::BIN)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(&data)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only to this machine"), "{err}");
}
