//! The real `keysmith` binary as a subprocess, on a free loopback port, with its
//! output captured in files so tests can search them afterwards.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keysmith");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Server {
    /// Starts `keysmith serve` with `args` and `env` and waits until it listens.
    pub fn start(dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_binary(Path::new(BIN), dir, run, args, env)
    }

    /// [`Server::start`] with another build of keysmith (an earlier version's).
    pub fn start_binary(binary: &Path, dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let stdout = dir.join(format!("{run}.stdout"));
        let stderr = dir.join(format!("{run}.stderr"));
        let mut cmd = Command::new(binary);
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args).current_dir(dir);
        // Only what the test sets: nothing inherited from the developer's shell.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_")) {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            url: String::new(),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(&server.stdout).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("Keysmith is listening on ")) {
                server.url = line.trim_start_matches("Keysmith is listening on ").trim().to_owned();
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "server exited with {status}: {}",
                    std::fs::read_to_string(&server.stderr).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "server did not start: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server the way an operator does (SIGTERM) and waits for it.
    pub fn stop(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
        (
            std::fs::read_to_string(&self.stdout).unwrap(),
            std::fs::read_to_string(&self.stderr).unwrap(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub set_cookie: Option<String>,
    pub body: Value,
}

/// A tiny HTTP client: method, URL, headers, optional JSON body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    try_http(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// The same, with a failed connection as an error rather than a panic.
pub fn try_http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Result<Reply, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = match body {
        Some(b) => agent.run(
            request
                .header("content-type", "application/json")
                .body(b.to_string())
                .unwrap(),
        )?,
        None => agent.run(request.body(()).unwrap())?,
    };
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok(Reply {
        status,
        set_cookie,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// Signs in and returns the (cookie, csrf token) pair.
pub fn sign_in(url: &str, username: &str, password: &str) -> (String, String) {
    let r = http(
        "POST",
        &format!("{url}/api/v1/session"),
        &[],
        Some(&serde_json::json!({"username": username, "password": password})),
    );
    assert_eq!(r.status, 200, "sign-in failed: {}", r.body);
    let cookie = r.set_cookie.unwrap().split(';').next().unwrap().to_owned();
    (cookie, r.body["csrf_token"].as_str().unwrap().to_owned())
}

pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
    )
}

/// A server on a fresh data directory whose `admin` has `password`, and a key of the
/// admin's to drive it with.
pub struct WithAdminKey {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub key: String,
}

pub fn start_with_admin_key(run: &str, password: &str) -> WithAdminKey {
    start_with_admin_key_and(run, password, &[])
}

/// The same, with more settings in the environment.
pub fn start_with_admin_key_and(run: &str, password: &str, env: &[(&str, &str)]) -> WithAdminKey {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    env.push(("KEYSMITH_ADMIN_PASSWORD", password));
    let server = Server::start(dir.path(), run, &[], &env);
    let (cookie, csrf) = sign_in(&server.url, "admin", password);
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let body = serde_json::json!({ "name": run });
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", server.url),
        &headers,
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    WithAdminKey { server, dir, key }
}

/// The Python of `target/python-tools`, the venv of independent peers the tests use
/// (Prometheus' parsers, …), made by `scripts/python-tools` when missing or stale.
pub fn python_tools() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("bash")
        .arg(root.join("scripts/python-tools"))
        .status()
        .expect("bash runs scripts/python-tools");
    assert!(
        status.success(),
        "scripts/python-tools failed: it needs python3 with venv and PyPI (scripts/test installs them)"
    );
    root.join("target/python-tools/bin/python")
}

/// Runs one of the SCIM scripts of `tests/scim` with the venv of peers, the
/// `Authorization` header in `SCIM_AUTHORIZATION`, and reads the JSON it prints.
pub fn scim_script(script: &str, args: &[&str], authorization: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scim")
        .join(script);
    let out = Command::new(python_tools())
        .arg(path)
        .args(args)
        .env("SCIM_AUTHORIZATION", authorization)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}

/// The directory of the Node.js peers (`e2e/`): the browser driver and the OpenID
/// provider.
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Installs `e2e/`'s pinned packages (`npm ci`) when one is missing, so a checkout that
/// predates a package gets it.
pub fn ensure_e2e_packages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = ["playwright-core", "oidc-provider"]
            .iter()
            .all(|p| e2e_dir().join("node_modules").join(p).exists());
        if present {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(e2e_dir())
            .status()
            .expect("the e2e tests need Node.js and npm");
        assert!(status.success(), "npm ci in e2e/ failed");
    });
}

/// `GET /api/v1/viewer` with `key` as a bearer token.
pub fn viewer(url: &str, key: &str) -> Reply {
    let bearer = format!("Bearer {key}");
    http(
        "GET",
        &format!("{url}/api/v1/viewer"),
        &[("authorization", bearer.as_str())],
        None,
    )
}

/// `POST /api/v1/api-keys` with the `authorization` header `auth`: the new key and its
/// ID, or what the server answered instead.
pub fn try_create_key(url: &str, auth: &str, name: &str) -> Result<(String, String), String> {
    let r = try_http(
        "POST",
        &format!("{url}/api/v1/api-keys"),
        &[("authorization", auth)],
        Some(&serde_json::json!({ "name": name })),
    )
    .map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!("{}: {}", r.status, r.body));
    }
    Ok((
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    ))
}

/// [`try_create_key`] that must succeed.
pub fn create_key(url: &str, auth: &str, name: &str) -> (String, String) {
    try_create_key(url, auth, name).unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

/// `DELETE /api/v1/api-keys/{key_id}`, which must answer 204.
pub fn delete_key(url: &str, auth: &str, key_id: &str) {
    let r = http(
        "DELETE",
        &format!("{url}/api/v1/api-keys/{key_id}"),
        &[("authorization", auth)],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
}
