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
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log that is not a terminal: {stderr}"
    );
    assert!(stdout.contains("sign in:"), "the banner says how to sign in");
    assert!(
        stdout.contains("`keysmith` is this program"),
        "the banner says where the keysmith command is: {stdout}"
    );

    let data = dir.path().join("data");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the data directory is private");
    // So are the database and its journal files, whatever the umask (022 here).
    for file in ["keysmith.db", "keysmith.db-wal", "keysmith.db-shm"] {
        let path = data.join(file);
        if file == "keysmith.db" || path.exists() {
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{file} is its owner's alone");
        }
    }

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

/// `keysmith serve` expected to stop by itself: (exit status, stderr). One that is
/// still running after 30 seconds started when it should not have: killed, and the
/// test fails instead of hanging.
fn serve_once(cmd: &mut Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .env_remove("KEYSMITH_DATA_DIR")
        .env_remove("KEYSMITH_DATABASE_URL")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started and kept running where it should have refused to start");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A second server on the same SQLite database would serve keys the first has deleted
/// (each keeps its own cache), so it is refused at start, naming the first; a first
/// server killed with SIGKILL leaves no lock behind.
#[test]
fn a_second_server_on_one_data_directory_is_refused_and_a_killed_one_leaves_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KEYSMITH_ADMIN_PASSWORD", PASSWORD)];
    let mut first = Server::start(dir.path(), "first", &[], &env);
    let (status, stderr) = serve_once(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
    );
    assert!(!status.success(), "a second server started on the same data directory");
    assert!(
        stderr.contains(&format!("listening on {}", first.url)),
        "the refusal names the other server's address: {stderr}"
    );
    assert!(stderr.contains(&format!("process {}", first.child.id())), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL"),
        "the refusal says what replicas need: {stderr}"
    );
    assert!(
        sign_in_works(&first.url, PASSWORD),
        "the first server is unaffected by the refused second one"
    );

    first.child.kill().unwrap(); // SIGKILL: no chance to clean up
    first.child.wait().unwrap();
    let after = Server::start(dir.path(), "after-kill", &[], &env);
    assert!(sign_in_works(&after.url, PASSWORD));
}

fn sign_in_works(url: &str, password: &str) -> bool {
    common::http(
        "POST",
        &format!("{url}/api/v1/session"),
        &[],
        Some(&json!({"username": "admin", "password": password})),
    )
    .status
        == 200
}

fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The binary as a user who is not root (root may write any file, so a read-only
/// file only stops someone else): as `nobody` when the tests run as root.
fn as_unprivileged(work: &std::path::Path, args: &[&str]) -> Command {
    if uid() != 0 {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(work);
        return cmd;
    }
    // `nobody` may not be able to reach the build directory: run a copy.
    let bin = work.parent().unwrap().join("keysmith");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
    }
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--"]).arg(&bin).args(args).current_dir(work);
    cmd.env("HOME", work);
    cmd
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// A database the server cannot write must stop it at start with the file and its
/// permissions named, not start and answer 500 to every sign-in.
#[test]
fn a_database_the_server_cannot_write_stops_it_at_start_naming_the_file() {
    let top = tempfile::tempdir().unwrap();
    chmod(top.path(), 0o755);
    let work = top.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let first = Server::start(&work, "init", &[], &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)]);
    first.stop();
    let data = work.join("data");
    if uid() == 0 {
        let owned = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&work)
            .status()
            .unwrap();
        assert!(owned.success());
    }
    // Once, as its owner, the server starts: the setup itself is sound.
    let mut ok = as_unprivileged(&work, &["serve", "--listen", "127.0.0.1:0"]);
    let mut child = ok
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Keysmith is listening") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "the server did not start as its data's owner");
    }
    // SIGTERM (runuser passes it on) and wait: a clean stop releases the lock.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    child.wait().unwrap();

    for name in ["keysmith.db", "keysmith.db-wal", "keysmith.db-shm"] {
        if data.join(name).exists() {
            chmod(&data.join(name), 0o444);
        }
    }
    let (status, stderr) = serve_once(&mut as_unprivileged(&work, &["serve", "--listen", "127.0.0.1:0"]));
    assert!(!status.success(), "the server started on a database it cannot write");
    assert!(stderr.contains("is not writable"), "{stderr}");
    assert!(stderr.contains("keysmith.db"), "the message names the file: {stderr}");
    assert!(
        stderr.contains("mode 0444"),
        "the message names the permission: {stderr}"
    );

    // A directory the server cannot write (it needs to create its journal there),
    // named by URL so that the server does not make it its own data directory.
    let shelf = work.join("shelf");
    std::fs::create_dir(&shelf).unwrap();
    std::fs::copy(data.join("keysmith.db"), shelf.join("keysmith.db")).unwrap();
    if uid() == 0 {
        Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&shelf)
            .status()
            .unwrap();
    }
    chmod(&shelf, 0o555);
    let url = format!("sqlite://{}", shelf.join("keysmith.db").display());
    let (status, stderr) = serve_once(&mut as_unprivileged(
        &work,
        &["serve", "--listen", "127.0.0.1:0", "--database-url", &url],
    ));
    chmod(&shelf, 0o755);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("the data directory {} is not writable", shelf.display())),
        "{stderr}"
    );
    assert!(stderr.contains("mode 0555"), "{stderr}");
}

/// A data directory that cannot be created is said once, with its reason once.
#[test]
fn a_data_directory_that_cannot_be_created_is_explained_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "not a directory").unwrap();
    let (status, stderr) = serve_once(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "file/data"])
            .current_dir(dir.path()),
    );
    assert!(!status.success());
    assert!(
        stderr.contains("cannot create the data directory file/data"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("os error").count(),
        1,
        "the OS error is said once: {stderr}"
    );
}

/// The way back in for a locked-out or forgotten admin, on a running server: the
/// password comes from stdin (never argv), old sessions end, and it is audited.
#[test]
fn admin_reset_password_and_unlock_work_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "reset", &[], &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)]);
    let (old_cookie, _) = sign_in(&server.url, "admin", PASSWORD);
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .arg("admin")
            .args(args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let new_password = "the-new-admin-password-42";
    let out = admin(
        &["reset-password", "admin", "--password-stdin"],
        &format!("{new_password}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(new_password), "the password was echoed: {stderr}");
    assert!(sign_in_works(&server.url, new_password));
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", server.url),
        &[("cookie", &old_cookie)],
        None,
    );
    assert_eq!(r.status, 401, "the session from before the reset ended");

    let out = admin(&["reset-password", "admin", "--password-stdin"], "short\n");
    assert!(!out.status.success(), "a weak password was accepted");
    let out = admin(&["reset-password", "admin", "--password-stdin"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password was given"));
    let out = admin(&["reset-password", "admin"], "");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--password-stdin"),
        "without a terminal, the error says how to pipe the password"
    );
    let out = admin(&["unlock", "ghost"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named `ghost`"));
    let out = admin(&["unlock", "admin"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (cookie, _) = sign_in(&server.url, "admin", new_password);
    let r = http(
        "GET",
        &format!("{}/api/v1/orgs/default/audit?limit=5", server.url),
        &[("cookie", &cookie)],
        None,
    );
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.password_reset"), "{actions:?}");
    assert!(actions.contains(&"user.sign_in_unlocked"), "{actions:?}");
}

/// `/metrics` read by Prometheus' own Python parsers: the text format (0.0.4) when the
/// client does not ask for OpenMetrics, OpenMetrics when it does, each with every
/// counter typed as a counter.
#[test]
fn metrics_are_read_by_prometheus_parsers_in_both_formats() {
    let python = common::python_tools();
    let s = common::start_with_admin_key("metrics", PASSWORD);
    let r = http(
        "GET",
        &format!("{}/api/v1/viewer", s.server.url),
        &[("authorization", &basic(&s.key))],
        None,
    );
    assert_eq!(r.status, 200);
    let fetch = |accept: Option<&str>| {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = agent.get(format!("{}/metrics", s.server.url));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let mut response = request.call().unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        (content_type, response.body_mut().read_to_string().unwrap())
    };
    // The parser prints each family as `name type`; the script fails on a parse error.
    let parse = |module: &str, body: &str| {
        let script = format!(
            "import sys\nfrom {module} import text_string_to_metric_families as parse\n\
             for f in parse(sys.stdin.read()):\n    print(f.name, f.type)\n"
        );
        let mut child = Command::new(&python)
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{module}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let expect_counters = |families: &str, format: &str| {
        for counter in ["keysmith_verifications", "keysmith_cache_hits", "keysmith_cache_misses"] {
            assert!(
                families.lines().any(|l| l == format!("{counter} counter")),
                "{format}: {counter} is not a counter: {families}"
            );
        }
        assert!(
            families.lines().any(|l| l == "keysmith_cache_entries gauge"),
            "{families}"
        );
        assert!(
            families
                .lines()
                .any(|l| l == "keysmith_http_request_duration_seconds histogram"),
            "{families}"
        );
        assert!(
            !families.contains("untyped") && !families.contains("unknown"),
            "{format}: {families}"
        );
    };

    let (content_type, text) = fetch(None);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    expect_counters(&parse("prometheus_client.parser", &text), "text format");
    let (content_type, _) = fetch(Some("text/plain;version=0.0.4"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, openmetrics) = fetch(Some(prometheus_accept));
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    expect_counters(
        &parse("prometheus_client.openmetrics.parser", &openmetrics),
        "OpenMetrics",
    );
    // What a text-format client got before: counters it cannot type.
    assert!(parse("prometheus_client.parser", &openmetrics).contains("keysmith_verifications_total unknown"));
}

/// `--listen` takes a host name as people write it.
#[test]
fn listen_takes_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "localhost",
        &["--listen", "localhost:0"],
        &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)],
    );
    assert!(server.url.starts_with("http://127.0.0.1:"), "{}", server.url);
    sign_in(&server.url, "admin", PASSWORD);
}
