//! Forward auth behind a real nginx (Debian's package; `.ci/run` installs it), with
//! the example configuration of `docs/nginx/keysmith-forward-auth.conf` protecting a
//! small upstream that echoes the headers it receives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, start_with_admin_key_and};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "nginx-test-admin-password";

const ECHO_UPSTREAM: &str = r#"
import http.server, json
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Reads a response's head (from `curl -D -`) on stdin; prints its status, Retry-After
/// and the RateLimit fields parsed by http-sf, checking that each item is a String and
/// each parameter a non-negative Integer, as draft-ietf-httpapi-ratelimit-headers-11
/// requires (a parser also accepts Tokens, Decimals and Booleans).
const RATELIMIT_FIELDS: &str = r#"
import json, sys, http_sf
status, fields = None, {}
for line in sys.stdin.read().split("\r\n"):
    if line.startswith("HTTP/"):
        status = int(line.split()[1])
    elif ":" in line:
        name, value = line.split(":", 1)
        fields.setdefault(name.strip().lower(), []).append(value.strip())
out = {"status": status, "retry-after": fields.get("retry-after", [None])[0]}
for name in ("ratelimit", "ratelimit-policy"):
    if name in fields:
        items = []
        for value, params in http_sf.parse(", ".join(fields[name]).encode(), tltype="list"):
            assert type(value) is str, (name, value)
            assert all(type(p) is int and p >= 0 for p in params.values()), (name, params)
            items.append([value, dict(params)])
        out[name] = items
print(json.dumps(out))
"#;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("the forward-auth test needs nginx: `apt-get install nginx` (Debian)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nginx_lets_only_valid_keys_through_with_the_callers_identity() {
    let nginx = nginx();
    let s = start_with_admin_key_and(
        "nginx",
        PASSWORD,
        &[
            ("KEYSMITH_TRUSTED_PROXIES", "127.0.0.1"),
            ("KEYSMITH_KEY_FAILURES_PER_MINUTE", "3"),
        ],
    );
    let keysmith = s.server.url.trim_start_matches("http://").to_owned();
    let dir = s.dir.path().join("nginx");
    std::fs::create_dir_all(&dir).unwrap();

    let mut upstream = Command::new("python3")
        .args(["-c", ECHO_UPSTREAM])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 for the echo upstream");
    let mut line = String::new();
    BufReader::new(upstream.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _upstream = Killed(upstream);
    let upstream_addr = format!("127.0.0.1:{}", line.trim());

    let port = free_port();
    let example = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/nginx/keysmith-forward-auth.conf"),
    )
    .unwrap();
    let site = example
        .replace("127.0.0.1:8080", &keysmith)
        .replace("127.0.0.1:9000", &upstream_addr)
        .replace("127.0.0.1:8443", &format!("127.0.0.1:{port}"));
    assert_ne!(site, example, "the example names the addresses the test replaces");
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let log = dir.join("error.log");
    let proxy = Command::new(&nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(&log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _proxy = Killed(proxy);
    wait_for(port, "nginx", &log);
    let url = format!("http://127.0.0.1:{port}/service/data");

    let r = http("GET", &url, &[], None);
    assert_eq!(r.status, 401, "no key, no entry");
    let r = http("GET", &url, &[("x-keysmith-user", "admin")], None);
    assert_eq!(r.status, 401, "a claimed identity is not a key");

    let bearer = format!("Bearer {}", s.key);
    let r = http(
        "GET",
        &url,
        &[("authorization", &bearer), ("x-keysmith-user", "mallory")],
        None,
    );
    assert_eq!(r.status, 200);
    let seen: &Value = &r.body;
    assert_eq!(
        seen["x-keysmith-user"], "admin",
        "the upstream gets the real identity: {seen}"
    );
    assert_eq!(seen["x-keysmith-principal-kind"], "user");
    assert_eq!(seen["x-keysmith-orgs"], "default");
    assert_eq!(seen["x-keysmith-key-id"].as_str().unwrap().len(), 36);
    assert!(seen.get("authorization").is_none(), "the key stays at the proxy");
    let r = http("POST", &url, &[("x-api-key", &s.key)], None);
    assert_eq!(r.status, 200, "X-API-Key and other methods work too");
    assert_eq!(r.body["x-keysmith-scopes"], "read,write,admin");
    assert_eq!(r.body["x-keysmith-teams"], "*");

    // A read key may only use safe methods through the example: its POST is refused
    // at the proxy, whatever it claims about its method or the scope needed.
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", s.server.url),
        &[("authorization", &bearer)],
        Some(&serde_json::json!({"name": "dashboard", "scope": "read"})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let reader = format!("Bearer {}", r.body["key"].as_str().unwrap());
    let r = http("GET", &url, &[("authorization", &reader)], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["x-keysmith-scopes"], "read", "{}", r.body);
    assert_eq!(r.body["x-keysmith-user"], "admin");
    assert_eq!(http("HEAD", &url, &[("authorization", &reader)], None).status, 200);
    for spoof in [
        vec![],
        vec![("x-forwarded-method", "GET")],
        vec![("x-keysmith-required-scope", "read")],
        vec![("x-original-method", "GET"), ("x-http-method-override", "GET")],
    ] {
        let mut headers = vec![("authorization", reader.as_str())];
        headers.extend(spoof.iter().copied());
        let r = http("POST", &url, &headers, Some(&serde_json::json!({})));
        assert_eq!(r.status, 403, "a read key's POST stops at the proxy ({spoof:?})");
        assert!(r.body.get("x-keysmith-user").is_none(), "it never reached the service");
        let r = http("DELETE", &url, &headers, None);
        assert_eq!(r.status, 403, "{spoof:?}");
    }
    let r = http(
        "POST",
        &url,
        &[("authorization", &bearer)],
        Some(&serde_json::json!({})),
    );
    assert_eq!(r.status, 200, "a wider key's POST goes through");

    // A key restricted to networks, through nginx: the client nginx names counts, and a
    // client's own X-Forwarded-For does not get it through from elsewhere.
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", s.server.url),
        &[("authorization", &bearer)],
        Some(&serde_json::json!({"name": "office", "allowed_networks": ["198.51.100.0/24", "127.0.0.3"]})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let office = format!("Bearer {}", r.body["key"].as_str().unwrap());
    // This test's clients sit at 127.0.0.1, a trusted address, so they may name a client.
    let named = |xff: &str| {
        http(
            "GET",
            &url,
            &[("authorization", &office), ("x-forwarded-for", xff)],
            None,
        )
        .status
    };
    assert_eq!(named("198.51.100.7"), 200);
    assert_eq!(named("203.0.113.5"), 403);
    // A client at an untrusted address (127.0.0.2 or .3, not Keysmith's trusted
    // proxies): nginx appends the real address after whatever the client claims.
    let from = |source: &str, xff: Option<&str>| {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source]);
        curl.args(["-H", &format!("authorization: {office}")]);
        if let Some(xff) = xff {
            curl.args(["-H", &format!("x-forwarded-for: {xff}")]);
        }
        let out = curl.arg(&url).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        from("127.0.0.2", Some("198.51.100.7")),
        "403",
        "a forged X-Forwarded-For"
    );
    assert_eq!(from("127.0.0.2", None), "403");
    assert_eq!(from("127.0.0.3", None), "200", "its real address is allowed");

    // A key with a request limit: the IETF RateLimit fields reach the client on every
    // answer, and its 429 comes through nginx with them, read by an independent parser
    // of structured fields (http-sf, RFC 9651).
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", s.server.url),
        &[("authorization", &bearer)],
        Some(&serde_json::json!({"name": "metered", "requests_per_minute": 3})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let metered = format!("authorization: Bearer {}", r.body["key"].as_str().unwrap());
    let python = common::python_tools();
    let fields = || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-D", "-", "-H", &metered, &url])
            .output()
            .expect("curl");
        let mut parse = Command::new(&python)
            .args(["-c", RATELIMIT_FIELDS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        parse.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let parsed = parse.wait_with_output().unwrap();
        assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
        serde_json::from_slice::<Value>(&parsed.stdout).unwrap()
    };
    let policy = serde_json::json!([["per-key", {"q": 3, "w": 60}]]);
    for left in [2, 1, 0] {
        let f = fields();
        assert_eq!(f["status"], 200, "{f}");
        assert_eq!(
            f["ratelimit"],
            serde_json::json!([["per-key", {"r": left, "t": 20}]]),
            "{f}"
        );
        assert_eq!(f["ratelimit-policy"], policy, "{f}");
    }
    let f = fields();
    assert_eq!(f["status"], 429, "nginx passes on the key's 429: {f}");
    assert_eq!(f["retry-after"], "20", "{f}");
    assert_eq!(
        f["ratelimit"],
        serde_json::json!([["per-key", {"r": 0, "t": 20}]]),
        "{f}"
    );
    assert_eq!(f["ratelimit-policy"], policy, "{f}");

    let key_id = seen["x-keysmith-key-id"].as_str().unwrap().to_owned();
    let r = http(
        "DELETE",
        &format!("{}/api/v1/api-keys/{key_id}", s.server.url),
        &[("authorization", &bearer)],
        None,
    );
    assert_eq!(r.status, 204);
    let r = http("GET", &url, &[("authorization", &bearer)], None);
    assert_eq!(r.status, 401, "a deleted key stops at the proxy at once");

    // Guessing is limited per client, which Keysmith learns from nginx's
    // X-Forwarded-For (this test's clients all sit at 127.0.0.1, a trusted address,
    // so they may name themselves; a client elsewhere is named by nginx). The deleted
    // key above was the first failure of 127.0.0.1.
    let guess = [("authorization", bearer.as_str()), ("x-forwarded-for", "198.51.100.1")];
    for _ in 0..3 {
        assert_eq!(http("GET", &url, &guess, None).status, 401);
    }
    assert_eq!(
        http("GET", &url, &guess, None).status,
        429,
        "nginx passes on Keysmith's 429, not a 500"
    );
    let other = [("authorization", bearer.as_str()), ("x-forwarded-for", "198.51.100.2")];
    assert_eq!(
        http("GET", &url, &other, None).status,
        401,
        "another client is not locked out"
    );
}
