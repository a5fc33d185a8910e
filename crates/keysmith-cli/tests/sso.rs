//! Single sign-on (issue 16) against a real OpenID provider: panva's `oidc-provider`
//! (a certified implementation, from npm, `e2e/oidc-provider.mjs`) on 127.0.0.2, and the
//! real `keysmith` binary on 127.0.0.1, so the round trip is cross-site as in
//! production. Each sign-in is driven by plain HTTP with a cookie jar per host
//! (`e2e/sso-flow.mjs`): Keysmith's sign-in link, the provider's own login and consent
//! pages, the callback. The provider can alter its next ID token (a wrong nonce, a
//! replayed token, another audience, an expired token, another issuer, a broken
//! signature, an unverified email), and each must be refused with a page that says so
//! and no session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{e2e_dir, ensure_e2e_packages, http, start_with_admin_key};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const PASSWORD: &str = "sso-test-admin-password";

/// The OpenID provider, as a child process that dies with its stdin.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(redirect_uri: &str) -> Self {
        ensure_e2e_packages();
        let mut child = Command::new("node")
            .arg("oidc-provider.mjs")
            .current_dir(e2e_dir())
            .env("REDIRECT_URI", redirect_uri)
            .env("OIDC_STDIN_LIFELINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the SSO tests need Node.js (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Self {
            child,
            issuer: started["issuer"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sign-in through `start` as `login`; `mode` alters the provider's next ID token,
/// `edit` the way back (`drop-cookie`, `state`, `cancel`).
fn sign_in(start: &str, login: &str, mode: &str, edit: &str) -> Value {
    let out = Command::new("node")
        .args(["sso-flow.mjs", start, login, mode, edit])
        .current_dir(e2e_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sso-flow.mjs failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Puts a client secret where the operator would: the server's `sso_secrets_dir`
/// (`<data_dir>/sso-secrets` by default; the test server's data directory is `data`).
fn write_secret(s: &common::WithAdminKey, name: &str, secret: &str) {
    let dir = s.dir.path().join("data/sso-secrets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), secret).unwrap();
}

/// A server with an admin key, the provider redirecting to it, and the client secret in
/// place.
struct Fixture {
    s: common::WithAdminKey,
    url: String,
    provider: Provider,
}

impl Fixture {
    fn start(run: &str) -> Self {
        let s = start_with_admin_key(run, PASSWORD);
        let url = s.server.url.clone();
        let provider = Provider::start(&format!("{url}/oidc/callback"));
        write_secret(&s, "test-idp", "keysmith-test-secret\n");
        Self { s, url, provider }
    }

    /// A request with the admin's key.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> common::Reply {
        let auth = format!("Bearer {}", self.s.key);
        http(
            method,
            &format!("{}{path}", self.url),
            &[("authorization", auth.as_str())],
            body.as_ref(),
        )
    }

    fn login_page(&self) -> String {
        let mut reply = ureq::get(&format!("{}/login", self.url)).call().unwrap();
        reply.body_mut().read_to_string().unwrap()
    }
}

#[test]
fn sign_in_through_a_real_openid_provider_and_every_bad_answer_refused() {
    let f = Fixture::start("sso");
    let (url, provider) = (f.url.clone(), &f.provider);
    let api = |method: &str, path: &str, body: Option<Value>| f.api(method, path, body);
    assert_eq!(
        api("POST", "/api/v1/orgs/default/teams", Some(json!({"name": "vision"}))).status,
        201
    );
    let register = |name: &str, jit: bool| {
        api(
            "POST",
            "/api/v1/orgs/default/sso-providers",
            Some(json!({
                "name": name, "issuer": provider.issuer, "client_id": "keysmith",
                "client_secret_file": "test-idp", "scopes": "openid email profile groups",
                "jit": jit,
                "group_rules": [{"group": "ml-admins", "org_role": "admin"}, {"group": "nlp", "team": "vision"}]
            })),
        )
    };
    let r = register("Test IdP", true);
    assert_eq!(r.status, 201, "{}", r.body);
    let start = format!("{url}/oidc/start/{}", r.body["id"]);
    // The sign-in page offers it, as a plain link (a form would break the CSP).
    let page = f.login_page();
    assert!(page.contains("Sign in with Test IdP"), "{page}");
    assert!(
        page.contains(&format!("href=\"/oidc/start/{}?next=%2Fsettings\"", r.body["id"])),
        "{page}"
    );

    // Every bad answer: refused with a page that says what happened, no session, nobody made.
    for (mode, edit, code) in [
        ("nonce", "", "sso_untrusted"),
        ("no-nonce", "", "sso_untrusted"),
        ("replay", "", "sso_untrusted"),
        ("audience", "", "sso_untrusted"),
        ("expired", "", "sso_untrusted"),
        ("issuer", "", "sso_untrusted"),
        ("tampered", "", "sso_untrusted"),
        ("unverified", "", "sso_email_unverified"),
        ("", "state", "sso_untrusted"),
        ("", "drop-cookie", "sso_state_missing"),
        ("", "cancel", "sso_denied"),
    ] {
        let got = sign_in(&start, "carol", mode, edit);
        assert_eq!(got["code"], code, "{mode} {edit}: {got}");
        assert_eq!(got["h1"], "Single sign-on failed", "{mode} {edit}: {got}");
        assert!(got["status"].as_u64().unwrap() >= 400, "{mode} {edit}: {got}");
        assert_eq!(got["session"], Value::Null, "{mode} {edit}: {got}");
        assert!(!got["message"].as_str().unwrap().is_empty(), "{got}");
    }
    // eve's provider does not vouch for her email.
    let got = sign_in(&start, "eve", "", "");
    assert_eq!(got["code"], "sso_email_unverified", "{got}");
    let users = || api("GET", "/api/v1/orgs/default/users", None).body["items"].clone();
    let names = |users: &Value| -> Vec<String> {
        users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&users()), ["admin"], "nobody was created by a refused sign-in");

    // alice: made at her first sign-in (jit), org admin by her group; the session works.
    let got = sign_in(&start, "alice", "", "");
    assert_eq!(
        (got["status"].as_u64(), got["location"].as_str()),
        (Some(303), Some("/settings")),
        "{got}"
    );
    let cookie = format!("keysmith_session={}", got["session"].as_str().unwrap());
    let viewer = http(
        "GET",
        &format!("{url}/api/v1/viewer"),
        &[("cookie", cookie.as_str())],
        None,
    );
    assert_eq!(viewer.status, 200, "{}", viewer.body);
    assert_eq!(viewer.body["username"], "alice");
    let role = |name: &str| {
        users()
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .map(|u| u["role"].as_str().unwrap().to_owned())
    };
    assert_eq!(role("alice").as_deref(), Some("admin"));
    // Group rules apply at each sign-in: demoted by hand, alice is an admin again.
    let r = api(
        "PATCH",
        "/api/v1/orgs/default/users/alice",
        Some(json!({"role": "member"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sign_in(&start, "alice", "", "")["status"], 303);
    assert_eq!(role("alice").as_deref(), Some("admin"));
    // bob: a member, in team vision by his group.
    assert_eq!(sign_in(&start, "bob", "", "")["status"], 303);
    assert_eq!(role("bob").as_deref(), Some("member"));
    let team = api("GET", "/api/v1/orgs/default/teams/vision", None);
    assert_eq!(
        team.body["members"],
        json!([{"username": "bob", "role": "member"}]),
        "{}",
        team.body
    );
    // People made by single sign-on have no password to sign in with.
    let r = http(
        "POST",
        &format!("{url}/api/v1/session"),
        &[],
        Some(&json!({"username": "alice", "password": "anything-at-all"})),
    );
    assert_eq!(r.status, 401, "{}", r.body);

    // Without just-in-time creation, an email nobody has is refused, by name.
    let strict = register("Strict IdP", false);
    assert_eq!(strict.status, 201, "{}", strict.body);
    let got = sign_in(&format!("{url}/oidc/start/{}", strict.body["id"]), "dave", "", "");
    assert_eq!(got["code"], "sso_no_account", "{got}");
    assert!(got["message"].as_str().unwrap().contains("dave@example.com"), "{got}");
    // A provider that matches people by another claim (Entra ID's user principal name
    // in `preferred_username`) trusts it as the provider's own account name: eve, whose
    // `email` is unverified, signs in by it.
    let upn = api(
        "POST",
        "/api/v1/orgs/default/sso-providers",
        Some(json!({
            "name": "UPN IdP", "issuer": provider.issuer, "client_id": "keysmith",
            "client_secret_file": "test-idp", "email_claim": "preferred_username", "jit": true
        })),
    );
    assert_eq!(
        (upn.status, &upn.body["email_claim"]),
        (201, &json!("preferred_username")),
        "{}",
        upn.body
    );
    let got = sign_in(&format!("{url}/oidc/start/{}", upn.body["id"]), "eve", "", "");
    assert_eq!(got["status"], 303, "{got}");
    // A deactivated person is refused too.
    let r = api(
        "PATCH",
        "/api/v1/orgs/default/users/bob",
        Some(json!({"active": false})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sign_in(&start, "bob", "", "")["code"], "sso_deactivated");

    // An organization that requires single sign-on: a member's right password is
    // refused, and says why (a wrong one says only that it is wrong); an admin's still
    // works, so a provider that is down cannot lock the organization out.
    let r = api("PATCH", "/api/v1/orgs/default", Some(json!({"sso_required": true})));
    assert_eq!((r.status, &r.body["sso_required"]), (200, &json!(true)), "{}", r.body);
    let pat = json!({"username": "pat", "password": "pat-password-123"});
    assert_eq!(api("POST", "/api/v1/orgs/default/users", Some(pat.clone())).status, 201);
    let session = |body: &Value| http("POST", &format!("{url}/api/v1/session"), &[], Some(body));
    let r = session(&pat);
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (403, &json!("sso_required")),
        "{}",
        r.body
    );
    let r = session(&json!({"username": "pat", "password": "not-pats-password"}));
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (401, &json!("invalid_credentials")),
        "{}",
        r.body
    );
    assert_eq!(session(&json!({"username": "admin", "password": PASSWORD})).status, 200);
    let page = f.login_page();
    assert!(page.contains("Sign in with a password (organization admins)"), "{page}");
    assert!(
        page.find("Sign in with Test IdP") < page.find("name=\"password\""),
        "the provider first: {page}"
    );

    // Audited: the provider, the person made, the role the rules gave.
    let log = api("GET", "/api/v1/orgs/default/audit", None).body["items"].clone();
    let has = |action: &str, target: &str, detail: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == action && e["target"] == target && e["detail"].to_string().contains(detail))
    };
    assert!(has("sso_provider.added", "Test IdP", "keysmith"), "{log}");
    assert!(has("user.created", "alice", "\"via\":\"sso\""), "{log}");
    assert!(has("user.role_changed", "alice", "\"via\":\"sso\""), "{log}");
    assert!(has("team.member_set", "vision", "bob"), "{log}");
    // The client secret appears nowhere but its file.
    let (stdout, stderr) = f.s.server.stop();
    assert!(!format!("{stdout}{stderr}").contains("keysmith-test-secret"));
}

#[test]
fn a_provider_is_checked_when_it_is_added() {
    let f = Fixture::start("sso-add");
    std::fs::write(f.s.dir.path().join("data/outside"), "not for sso").unwrap();
    let provider = &f.provider;
    let add = |body: Value| f.api("POST", "/api/v1/orgs/default/sso-providers", Some(body));
    let good = json!({"name": "IdP", "issuer": provider.issuer, "client_id": "keysmith",
        "client_secret_file": "test-idp"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    for (body, field) in [
        (with("issuer", json!("http://example.com/idp")), "issuer"),
        (with("issuer", json!("http://127.0.0.1:9/")), "issuer"),
        // A name in the secrets directory, never a path: an org admin cannot make the
        // server read another file and send it to a token endpoint they choose.
        (with("client_secret_file", json!("../outside")), "client_secret_file"),
        (with("client_secret_file", json!("/etc/hostname")), "client_secret_file"),
        (with("client_secret_file", json!("missing")), "client_secret_file"),
        (with("scopes", json!("email profile")), "scopes"),
        (
            with("group_rules", json!([{"group": "g", "team": "no-such-team"}])),
            "group_rules",
        ),
        (
            with("group_rules", json!([{"group": "g", "org_role": "owner"}])),
            "role",
        ),
        (with("name", json!("")), "name"),
    ] {
        let r = add(body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&field.to_lowercase()),
            "{body}: {}",
            r.body
        );
    }
    // Single sign-on cannot be required before there is a provider to sign in with.
    let r = f.api("PATCH", "/api/v1/orgs/default", Some(json!({"sso_required": true})));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("sso_required"),
        "{}",
        r.body
    );
    assert_eq!(add(good.clone()).status, 201);
    assert_eq!(add(good).status, 409);
    let listed = f.api("GET", "/api/v1/orgs/default/sso-providers", None);
    assert_eq!(
        listed.body["items"][0]["redirect_path"], "/oidc/callback",
        "{}",
        listed.body
    );
    let id = listed.body["items"][0]["id"].as_i64().unwrap();
    let r = f.api("DELETE", &format!("/api/v1/orgs/default/sso-providers/{id}"), None);
    assert_eq!(r.status, 204);
    assert!(!f.login_page().contains("Sign in with"));
}

/// The operator declares a provider in the configuration file: it exists at start, and
/// people sign in through it; a file naming an organization that does not exist stops
/// the server with a message that says so.
#[test]
fn a_provider_declared_in_the_configuration_file_exists_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&format!("{url}/oidc/callback"));
    let secrets = dir.path().join("data/sso-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("corp"), "keysmith-test-secret").unwrap();
    let config = |org: &str| {
        format!(
            "[[sso_providers]]\norg = \"{org}\"\nname = \"Corp SSO\"\nissuer = \"{}\"\nclient_id = \"keysmith\"\n\
             client_secret_file = \"corp\"\nscopes = \"openid email profile groups\"\njit = true\n\
             group_rules = [{{ group = \"ml-admins\", org_role = \"admin\" }}]\n",
            provider.issuer
        )
    };
    std::fs::write(dir.path().join("bad.toml"), config("nope")).unwrap();
    let out = Command::new(common::BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            "bad.toml",
        ])
        .current_dir(dir.path())
        .env("KEYSMITH_ADMIN_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad provider must stop the server");
    assert!(stderr.contains("sso_providers") && stderr.contains("nope"), "{stderr}");

    std::fs::write(dir.path().join("keysmith.toml"), config("default")).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", listen.as_str(), "--config", "keysmith.toml"];
    let server = common::Server::start(
        dir.path(),
        "configured",
        &args,
        &[("KEYSMITH_ADMIN_PASSWORD", PASSWORD)],
    );
    let mut reply = ureq::get(&format!("{url}/login")).call().unwrap();
    let page = reply.body_mut().read_to_string().unwrap();
    assert!(page.contains("Sign in with Corp SSO"), "{page}");
    let start = page
        .split("href=\"")
        .find(|s| s.starts_with("/oidc/start/"))
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_owned();
    let got = sign_in(&format!("{url}{start}"), "alice", "", "");
    assert_eq!(got["status"], 303, "{got}");
    drop(server);
    // The same file again: nothing to change, the same provider (its sign-in link stays).
    let server = common::Server::start(dir.path(), "again", &args, &[]);
    let mut reply = ureq::get(&format!("{url}/login")).call().unwrap();
    assert!(reply.body_mut().read_to_string().unwrap().contains(&start));
    drop(server);
}

/// Behind a proxy that does not pass the browser's Host, the operator names the server's
/// address: the redirect URI sent to the provider and SCIM's resource locations use it.
#[test]
fn the_public_url_names_the_redirect_uri_and_scim_locations() {
    let s = common::start_with_admin_key_and(
        "sso-public",
        PASSWORD,
        &[("KEYSMITH_PUBLIC_URL", "https://keys.example.test/")],
    );
    let url = s.server.url.clone();
    let provider = Provider::start("https://keys.example.test/oidc/callback");
    write_secret(&s, "test-idp", "keysmith-test-secret");
    let auth = format!("Bearer {}", s.key);
    let body =
        json!({"name": "IdP", "issuer": provider.issuer, "client_id": "keysmith", "client_secret_file": "test-idp"});
    let added = http(
        "POST",
        &format!("{url}/api/v1/orgs/default/sso-providers"),
        &[("authorization", auth.as_str())],
        Some(&body),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let started = agent
        .get(&format!("{url}/oidc/start/{}", added.body["id"]))
        .call()
        .unwrap();
    assert_eq!(started.status().as_u16(), 303);
    let location = started.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fkeys.example.test%2Foidc%2Fcallback"),
        "{location}"
    );
    let users = http(
        "GET",
        &format!("{url}/scim/v2/Users"),
        &[("authorization", auth.as_str())],
        None,
    );
    let located = users.body["Resources"][0]["meta"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        located.starts_with("https://keys.example.test/scim/v2/Users/"),
        "{located}"
    );
}
