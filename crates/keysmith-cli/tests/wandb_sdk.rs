//! The real `wandb` SDK and CLI against a real Keysmith server (issue 4): version
//! 0.31.0, the newest the wire contract was measured against, and 0.21.0, the oldest,
//! which accepts only 40-character keys at `wandb login`. Each run gets a fresh HOME.
//!
//! The SDKs live in virtual environments made by `scripts/wandb-sdks` (from PyPI); a
//! missing one is created here, so these tests never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, http, sign_in};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Once;

const PASSWORD: &str = "sdk-test-admin-password";
const NEW: &str = "0.31.0";
const OLD: &str = "0.21.0";

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wandb-sdk")
}

fn ensure_sdks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/wandb-sdks");
        let out = Command::new("bash")
            .arg(script)
            .arg(sdk_dir())
            .output()
            .expect("run scripts/wandb-sdks");
        assert!(
            out.status.success(),
            "cannot install the wandb SDKs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

struct Sdk {
    version: &'static str,
    home: tempfile::TempDir,
}

impl Sdk {
    fn new(version: &'static str) -> Self {
        ensure_sdks();
        Self {
            version,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn bin(&self, name: &str) -> PathBuf {
        sdk_dir().join(self.version).join("bin").join(name)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin(program));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WANDB_") || k == "NETRC") {
            cmd.env_remove(k);
        }
        cmd.env("HOME", self.home.path())
            .env("WANDB_SILENT", "false")
            .env("WANDB_DISABLE_CODE", "true")
            .env("WANDB_MODE", "online")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .current_dir(self.home.path());
        cmd
    }

    /// `wandb login --host URL --verify KEY` (a test key on the command line, as the
    /// scenario table runs it).
    fn cli_login(&self, url: &str, key: &str) -> Output {
        self.command("wandb")
            .args(["login", "--host", url, "--verify", key])
            .output()
            .unwrap()
    }

    /// Runs a Python snippet with the key in `KS_KEY` and the server in `KS_URL`.
    fn python(&self, url: &str, key: &str, code: &str) -> Output {
        self.command("python")
            .args(["-c", code])
            .env("KS_URL", url)
            .env("KS_KEY", key)
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Fixture {
    server: Server,
    _dir: tempfile::TempDir,
    admin_key: String,
    cookie: String,
    csrf: String,
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), "sdk", &[], &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)]);
        let (cookie, csrf) = sign_in(&server.url, "admin", PASSWORD);
        let mut f = Fixture {
            server,
            _dir: dir,
            admin_key: String::new(),
            cookie,
            csrf,
        };
        f.admin_key = f.create_key(json!({"name": "sdk tests"}));
        f
    }

    fn as_admin(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let headers = [("cookie", self.cookie.as_str()), ("x-csrf-token", self.csrf.as_str())];
        let r = http(method, &format!("{}{path}", self.server.url), &headers, Some(&body));
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
        r.body
    }

    fn create_key(&self, body: serde_json::Value) -> String {
        self.as_admin("POST", "/api/v1/api-keys", body)["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn url(&self) -> &str {
        &self.server.url
    }
}

fn mutate(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn sdk_0_31_logs_in_with_new_and_legacy_keys_and_manages_keys() {
    let f = Fixture::start();
    let sdk = Sdk::new(NEW);
    let out = sdk.cli_login(f.url(), &f.admin_key);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));
    assert!(
        sdk.home.path().join(".netrc").exists(),
        "the SDK stored the key after verifying it"
    );

    f.as_admin("PATCH", "/api/v1/orgs/default", json!({"legacy_keys_allowed": true}));
    let legacy = f.create_key(json!({"name": "legacy", "format": "legacy"}));
    assert_eq!(legacy.len(), 40);
    let out = Sdk::new(NEW).cli_login(f.url(), &legacy);
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));

    let out = sdk.python(
        f.url(),
        &f.admin_key,
        r#"
import os, wandb
url, key = os.environ["KS_URL"], os.environ["KS_KEY"]
print("LOGIN", wandb.login(key=key, host=url, verify=True))
api = wandb.Api(api_key=key, overrides={"base_url": url})
v = api.viewer
print("VIEWER", v.username, len(v.api_keys), v.teams)
new = v.generate_api_key("made-by-sdk")
print("GENERATED", len(new))
print("NEW_VIEWER", wandb.Api(api_key=new, overrides={"base_url": url}).viewer.username)
v = api.viewer
name = [k for k in v.api_keys if new.startswith(k)][0]
print("DELETED", v.delete_api_key(name))
try:
    wandb.Api(api_key=new, overrides={"base_url": url}).viewer
    print("STILL_WORKS")
except Exception as e:
    print("REFUSED", type(e).__name__, e)
"#,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("LOGIN True"), "{t}");
    assert!(t.contains("VIEWER admin 2 []"), "{t}");
    assert!(t.contains("GENERATED 86"), "{t}");
    assert!(t.contains("NEW_VIEWER admin"), "{t}");
    assert!(t.contains("DELETED True"), "{t}");
    assert!(t.contains("REFUSED") && t.contains("user is not logged in"), "{t}");
    assert!(!t.contains("STILL_WORKS"), "{t}");
}

#[test]
fn sdk_0_31_with_a_read_key_reads_but_cannot_make_keys_and_a_write_key_makes_only_write_keys() {
    let f = Fixture::start();
    let sdk = Sdk::new(NEW);
    let read = f.create_key(json!({"name": "dashboard", "scope": "read"}));
    let write = f.create_key(json!({"name": "ci", "scope": "write"}));
    let out = sdk.cli_login(f.url(), &read);
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));
    let keys_before = f.as_admin("GET", "/api/v1/api-keys", json!({}))["items"]
        .as_array()
        .unwrap()
        .len();

    let out = sdk.python(
        f.url(),
        &read,
        r#"
import os, wandb
url, key = os.environ["KS_URL"], os.environ["KS_KEY"]
api = wandb.Api(api_key=key, overrides={"base_url": url})
v = api.viewer
print("VIEWER", v.username, len(v.api_keys))
print("GENERATED", v.generate_api_key("from a read key"))
print("DELETED", v.delete_api_key(v.api_keys[0]))
# The error the SDK swallowed, as its own GraphQL client reports it.
try:
    api._service_api.execute_graphql(
        'mutation G($d: String) { result: generateApiKey(input: {description: $d}) { apiKey { id } } }',
        {"d": "raw"},
    )
    print("RAW_OK")
except Exception as e:
    print("RAW_REFUSED", type(e).__name__, e)
"#,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("VIEWER admin 3"), "a read key lists keys: {t}");
    assert!(t.contains("GENERATED None"), "W&B's refusal, as the SDK shows it: {t}");
    assert!(t.contains("DELETED False"), "{t}");
    assert!(
        t.contains("RAW_REFUSED") && t.contains("this needs a key with scope write"),
        "{t}"
    );
    let keys_after = f.as_admin("GET", "/api/v1/api-keys", json!({}))["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys_after, keys_before, "a read key made and deleted nothing");

    let out = sdk.python(
        f.url(),
        &write,
        r#"
import os, wandb
url, key = os.environ["KS_URL"], os.environ["KS_KEY"]
new = wandb.Api(api_key=key, overrides={"base_url": url}).viewer.generate_api_key("from a write key")
print("GENERATED", len(new))
print("NEW_VIEWER", wandb.Api(api_key=new, overrides={"base_url": url}).viewer.username)
"#,
    );
    let t = text(&out);
    assert!(t.contains("GENERATED 86") && t.contains("NEW_VIEWER admin"), "{t}");
    let made = f.as_admin("GET", "/api/v1/api-keys?name_contains=from%20a%20write", json!({}));
    assert_eq!(
        made["items"][0]["scope"], "write",
        "no wider than the key that made it: {made}"
    );
}

#[test]
fn deleted_mutated_and_unknown_keys_fail_with_user_is_not_logged_in() {
    let f = Fixture::start();
    let doomed = f.create_key(json!({"name": "doomed"}));
    let key_id = &doomed[..36];
    f.as_admin("DELETE", &format!("/api/v1/api-keys/{key_id}"), json!({}));
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    for (version, expected) in [(NEW, "user is not logged in"), (OLD, "user is not logged in")] {
        let bad_keys: Vec<String> = if version == NEW {
            vec![doomed.clone(), mutate(&f.admin_key), unknown.into()]
        } else {
            vec![unknown.into(), mutate(unknown)]
        };
        for bad in bad_keys {
            let sdk = Sdk::new(version);
            let out = sdk.cli_login(f.url(), &bad);
            let t = text(&out);
            assert!(!out.status.success(), "{version} accepted a bad key: {t}");
            assert!(t.contains(expected), "{version}: {t}");
            assert!(!t.contains("Traceback"), "{version} crashed: {t}");
        }
    }
}

#[test]
fn sdk_0_21_logs_in_with_legacy_keys_and_new_keys_through_the_environment() {
    let f = Fixture::start();
    f.as_admin("PATCH", "/api/v1/orgs/default", json!({"legacy_keys_allowed": true}));
    let legacy = f.create_key(json!({"name": "old sdk", "format": "legacy"}));
    let sdk = Sdk::new(OLD);
    let out = sdk.cli_login(f.url(), &legacy);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));

    // The 86-character key is refused by this SDK's own length check at `wandb login`
    // (the documented "API key must be 40 characters long" error) ...
    let out = Sdk::new(OLD).cli_login(f.url(), &f.admin_key);
    assert!(
        text(&out).contains("API key must be 40 characters long"),
        "{}",
        text(&out)
    );
    // ... and works through WANDB_API_KEY, the documented workaround.
    let out = Sdk::new(OLD)
        .command("wandb")
        .args(["login", "--verify", "--host", f.url()])
        .env("WANDB_API_KEY", &f.admin_key)
        .output()
        .unwrap();
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));

    let out = sdk.python(
        f.url(),
        &legacy,
        r#"
import os, wandb
url, key = os.environ["KS_URL"], os.environ["KS_KEY"]
print("LOGIN", wandb.login(key=key, host=url, verify=True))
v = wandb.Api(api_key=key, overrides={"base_url": url}).viewer
print("VIEWER", v.username, len(v.api_keys))
"#,
    );
    let t = text(&out);
    assert!(t.contains("LOGIN True") && t.contains("VIEWER admin 2"), "{t}");
}

#[test]
fn a_team_admin_creates_a_service_account_with_the_sdk_and_its_key_works() {
    let f = Fixture::start();
    f.as_admin(
        "POST",
        "/api/v1/orgs/default/users",
        json!({"username": "lead", "password": "lead-password-123"}),
    );
    f.as_admin("POST", "/api/v1/orgs/default/teams", json!({"name": "vision"}));
    f.as_admin(
        "PUT",
        "/api/v1/orgs/default/teams/vision/members/lead",
        json!({"role": "admin"}),
    );
    let (cookie, csrf) = sign_in(f.url(), "lead", "lead-password-123");
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", f.url()),
        &headers,
        Some(&json!({"name": "lead"})),
    );
    let lead_key = r.body["key"].as_str().unwrap().to_owned();

    let sdk = Sdk::new(NEW);
    let out = sdk.python(
        f.url(),
        &lead_key,
        r#"
import os, wandb
url, key = os.environ["KS_URL"], os.environ["KS_KEY"]
api = wandb.Api(api_key=key, overrides={"base_url": url})
member = api.team("vision").create_service_account("Nightly training")
print("MEMBER", member)
sa = wandb.Api(api_key=member.api_key, overrides={"base_url": url}).viewer
print("SA_VIEWER", sa.username)
"#,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("MEMBER <Member nightly-training (SERVICE)>"), "{t}");
    assert!(t.contains("SA_VIEWER nightly-training"), "{t}");
    let listed = f.as_admin("GET", "/api/v1/api-keys?owner=nightly-training", json!({}));
    assert_eq!(listed["items"][0]["created_by"]["username"], "lead");
}

/// Identity federation as wandb 0.31.0 speaks it (wire contract §8): no key anywhere,
/// `WANDB_IDENTITY_TOKEN_FILE` names a file holding a JWT, and the SDK exchanges it at
/// `POST /oidc/token` for an access token it then uses as its credential. The JWT is
/// signed by a key the test made; its issuer serves the discovery document and JWKS on
/// loopback, and Keysmith fetches them over HTTP as from a real provider.
#[test]
fn sdk_0_31_signs_in_with_a_jwt_and_no_key_through_identity_federation() {
    use keysmith_pgtest::issuer::{LoopbackIssuer, Signer};
    let f = Fixture::start();
    let signer = Signer::new("workload-1");
    let issuer = LoopbackIssuer::start(&[&signer]);
    let registered = f.as_admin(
        "POST",
        "/api/v1/orgs/default/jwt-issuers",
        json!({ "issuer": issuer.url }),
    );
    assert_eq!(registered["audience"], "default");
    f.as_admin(
        "POST",
        "/api/v1/orgs/default/users",
        json!({"username": "alice", "email": "alice@example.com", "password": "alice-password-123"}),
    );
    f.as_admin("POST", "/api/v1/orgs/default/teams", json!({"name": "vision"}));
    let bot = f.as_admin(
        "POST",
        "/api/v1/orgs/default/service-accounts",
        json!({"name": "ci-bot", "team": "vision", "external_subject": "repo:acme/train:ref:refs/heads/main"}),
    );
    assert_eq!(bot["external_subject"], "repo:acme/train:ref:refs/heads/main");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims =
        |sub: &str, aud: &str, exp: i64| json!({"iss": issuer.url, "sub": sub, "aud": aud, "iat": now, "exp": exp});
    // The SDK with nothing but the JWT file: prints whom the server says it is.
    let viewer = |jwt: &str| {
        let sdk = Sdk::new(NEW);
        let file = sdk.home.path().join("identity.jwt");
        std::fs::write(&file, jwt).unwrap();
        let out = sdk
            .command("python")
            .args(["-c", "import wandb; print('VIEWER', wandb.Api().viewer.username)"])
            .env("WANDB_BASE_URL", f.url())
            .env("WANDB_IDENTITY_TOKEN_FILE", &file)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };

    let (ok, t) = viewer(&signer.sign(&claims("alice@example.com", "default", now + 600)));
    assert!(ok && t.contains("VIEWER alice"), "{t}");
    let (ok, t) = viewer(&signer.sign(&claims("repo:acme/train:ref:refs/heads/main", "default", now + 600)));
    assert!(ok && t.contains("VIEWER ci-bot"), "{t}");

    // The access tokens are in their owners' lists as federated sessions, with the
    // exchange in the audit log (issuer and subject; never the JWT).
    let listed = f.as_admin("GET", "/api/v1/api-keys?owner=alice", json!({}));
    let session = &listed["items"][0];
    assert_eq!(
        (
            &session["kind"],
            &session["federated_issuer"],
            &session["owner"]["username"]
        ),
        (&json!("federated_session"), &json!(issuer.url), &json!("alice"))
    );
    let audit = f.as_admin(
        "GET",
        "/api/v1/orgs/default/audit?action=federated_session.created",
        json!({}),
    );
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    assert_eq!(audit["items"][1]["detail"]["subject"], "alice@example.com", "{audit}");

    // What the SDK reports of Keysmith's answer to every refused JWT (RFC 6749 §5.2).
    const REFUSED: &str = r#"HTTP 400: {"error":"invalid_grant","error_description":"the assertion was not accepted"}"#;
    let other = Signer::new("workload-1");
    let mut elsewhere = claims("alice@example.com", "default", now + 600);
    elsewhere["iss"] = json!("https://issuer.example.com");
    let refused = [
        (
            "a wrong audience",
            signer.sign(&claims("alice@example.com", "acme", now + 600)),
        ),
        (
            "an expired JWT",
            signer.sign(&claims("alice@example.com", "default", now - 300)),
        ),
        ("an unknown issuer", other.sign(&elsewhere)),
        (
            "a key the issuer does not have",
            other.sign(&claims("alice@example.com", "default", now + 600)),
        ),
    ];
    for (why, jwt) in &refused {
        let (ok, t) = viewer(jwt);
        assert!(!ok && !t.contains("VIEWER") && t.contains(REFUSED), "{why}: {t}");
    }
    // A deactivated user: refused as well, the JWT being otherwise good.
    f.as_admin("PATCH", "/api/v1/orgs/default/users/alice", json!({"active": false}));
    let (ok, t) = viewer(&signer.sign(&claims("alice@example.com", "default", now + 600)));
    assert!(!ok && !t.contains("VIEWER") && t.contains(REFUSED), "deactivated: {t}");
    // And the service account still works: the refusals were about those JWTs alone.
    let (ok, t) = viewer(&signer.sign(&claims("repo:acme/train:ref:refs/heads/main", "default", now + 600)));
    assert!(ok && t.contains("VIEWER ci-bot"), "{t}");
}

/// SCIM provisioning as an identity provider runs it (issue 16), with scim2-client from
/// PyPI: a user created with an email, made org admin and member again, put in a team
/// and made its admin through W&B's `teamRoles`, found by a filter. Once she has a key,
/// the wandb SDK signs in with it; deactivated through SCIM, her next SDK login fails.
#[test]
fn a_user_deactivated_through_scim_is_refused_by_the_sdk_at_once() {
    let f = Fixture::start();
    let base = format!("{}/scim/v2", f.url());
    let auth = format!("Bearer {}", f.admin_key);
    let made = common::scim_script("provision.py", &[&base, "create"], &auth);
    assert_eq!(made["roles"], json!(["admin", "member"]), "{made}");
    let ada = made["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["found"], json!([ada]), "{made}");
    assert_eq!(
        made["user"]["emails"],
        json!([{"value": "ada@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        made["user"]["teamRoles"],
        json!([{"teamName": "vision", "roleName": "admin"}]),
        "{made}"
    );
    assert_eq!(made["team"]["members"][0]["value"], json!(ada), "{made}");

    let invite = f.as_admin("POST", "/api/v1/orgs/default/users/ada/invite", json!({}));
    let accept = json!({"token": invite["invite_token"], "password": "ada-password-123"});
    let r = http(
        "POST",
        &format!("{}/api/v1/invites/accept", f.url()),
        &[],
        Some(&accept),
    );
    assert!(r.status < 300, "{}", r.body);
    let (cookie, csrf) = sign_in(f.url(), "ada", "ada-password-123");
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", f.url()),
        &headers,
        Some(&json!({"name": "ada"})),
    );
    let ada_key = r.body["key"].as_str().unwrap().to_owned();

    let sdk = Sdk::new(NEW);
    let out = sdk.cli_login(f.url(), &ada_key);
    assert!(out.status.success(), "{}", text(&out));
    let gone = common::scim_script("provision.py", &[&base, "deactivate", &ada], &auth);
    assert_eq!(gone["active"], false, "{gone}");
    let out = Sdk::new(NEW).cli_login(f.url(), &ada_key);
    let t = text(&out);
    assert!(!out.status.success(), "a deactivated user's key still logs in: {t}");
    assert!(t.contains("user is not logged in"), "{t}");
    let deleted = common::scim_script("provision.py", &[&base, "delete", &ada], &auth);
    assert_eq!(deleted["after"], "NotFoundException", "{deleted}");
}

/// `keysmith admin migrate` (issue 18) from SQLite to PostgreSQL and back: the API
/// answers the same, byte for byte, on each copy; the SDKs log in with the keys made
/// before (0.31 with a new key, 0.21 with a legacy one); a target that is not empty is
/// refused.
#[test]
fn the_sdks_log_in_after_a_migration_to_postgresql_and_back() {
    let f = Fixture::start();
    f.as_admin(
        "PATCH",
        "/api/v1/orgs/default",
        json!({"legacy_keys_allowed": true, "unused_key_notice_days": 30}),
    );
    let legacy = f.create_key(json!({"name": "old sdk", "format": "legacy"}));
    let narrow = f.create_key(json!({"name": "dashboard", "scope": "read", "allowed_networks": ["127.0.0.0/8"]}));
    let gone = f.as_admin("POST", "/api/v1/api-keys", json!({"name": "gone"}));
    let gone_id = gone["key_id"].as_str().unwrap().to_owned();
    let headers = [("cookie", f.cookie.as_str()), ("x-csrf-token", f.csrf.as_str())];
    let r = http(
        "DELETE",
        &format!("{}/api/v1/api-keys/{gone_id}", f.url()),
        &headers,
        None,
    );
    assert_eq!(r.status, 204);
    f.as_admin("POST", "/api/v1/orgs/default/teams", json!({"name": "vision"}));
    f.as_admin(
        "POST",
        "/api/v1/orgs/default/users",
        json!({"username": "ada", "email": "ada@example.com", "password": "ada-password-long"}),
    );
    f.as_admin(
        "POST",
        "/api/v1/orgs/default/webhooks",
        json!({"url": "https://hooks.example.com/k"}),
    );
    let answers = |url: &str| -> Vec<String> {
        let (cookie, csrf) = sign_in(url, "admin", PASSWORD);
        let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
        [
            "/api/v1/api-keys?limit=200",
            "/api/v1/orgs/default",
            "/api/v1/orgs/default/users",
            "/api/v1/orgs/default/teams",
            "/api/v1/orgs/default/webhooks",
            "/api/v1/orgs/default/audit?limit=200&action=api_key.created",
            "/api/v1/orgs/default/audit?limit=200&action=api_key.deleted",
        ]
        .iter()
        .map(|path| {
            let r = http("GET", &format!("{url}{path}"), &headers, None);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            r.body.to_string()
        })
        .collect()
    };
    let before = answers(f.url());
    let dir = f._dir.path().to_owned();
    f.server.stop();

    let keysmith = |args: &[&str]| {
        let mut cmd = Command::new(common::BIN);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_")) {
            cmd.env_remove(k);
        }
        cmd.args(args).current_dir(&dir).output().unwrap()
    };
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let pg = cluster.create_database().unwrap();
    let out = keysmith(&["admin", "migrate", "--to", &pg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the counts and digests agree"),
        "{}",
        text(&out)
    );
    let again = keysmith(&["admin", "migrate", "--to", &pg]);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    let on_pg = Server::start(&dir, "postgres", &[], &[("KEYSMITH_DATABASE_URL", pg.as_str())]);
    assert_eq!(answers(&on_pg.url), before, "the same answers from PostgreSQL");
    let out = Sdk::new(NEW).cli_login(&on_pg.url, &f.admin_key);
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));
    let out = Sdk::new(OLD).cli_login(&on_pg.url, &legacy);
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));
    let viewer = |url: &str, key: &str| common::viewer(url, key).body["auth"]["scope"].clone();
    assert_eq!(viewer(&on_pg.url, &narrow), "read", "the scope travelled with the key");
    // The keys' last uses moved with those logins: the answers to carry back.
    let used = answers(&on_pg.url);
    assert_ne!(used, before);
    on_pg.stop();

    // And back, into a new SQLite database.
    let back = tempfile::tempdir().unwrap();
    let file = back.path().join("data").join("keysmith.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let target = format!("sqlite://{}", file.display());
    let out = keysmith(&["admin", "migrate", "--database-url", &pg, "--to", &target]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(dir.join("data/server-secret"), back.path().join("data/server-secret")).unwrap();
    let on_sqlite = Server::start(back.path(), "sqlite-again", &[], &[]);
    assert_eq!(answers(&on_sqlite.url), used, "the same answers from SQLite again");
    let out = Sdk::new(NEW).cli_login(&on_sqlite.url, &f.admin_key);
    assert!(text(&out).contains("Currently logged in as: admin"), "{}", text(&out));
    on_sqlite.stop();
}
