//! SCIM 2.0 provisioning (issue 16) against the real binary: a peer's compliance suite
//! (scim2-tester, from PyPI) on both bases, and what a SCIM change does: who may make
//! it, that deactivation and deletion stop keys at once, that the last admin stays,
//! that everything is audited with the SCIM client as the actor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Reply, http, scim_script, sign_in, start_with_admin_key};
use serde_json::{Value, json};

const PASSWORD: &str = "scim-test-admin-password";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A key for a new service account of the default organization (`team`: scoped to it).
fn service_account_key(url: &str, admin_key: &str, name: &str, team: Option<&str>) -> String {
    let auth = format!("Bearer {admin_key}");
    let h = [("authorization", auth.as_str())];
    let r = http(
        "POST",
        &format!("{url}/api/v1/orgs/default/service-accounts"),
        &h,
        Some(&json!({ "name": name, "team": team })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = http(
        "POST",
        &format!("{url}/api/v1/api-keys"),
        &h,
        Some(&json!({ "name": "scim", "owner": name })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["key"].as_str().unwrap().to_owned()
}

/// A key of a user SCIM made (who has no password): an invitation, accepted, then a
/// sign-in.
fn user_key(url: &str, admin_key: &str, username: &str) -> String {
    let auth = format!("Bearer {admin_key}");
    let r = http(
        "POST",
        &format!("{url}/api/v1/orgs/default/users/{username}/invite"),
        &[("authorization", auth.as_str())],
        Some(&json!({})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let password = "a-password-for-this-test";
    let token = r.body["invite_token"].as_str().unwrap();
    let accept = json!({ "token": token, "password": password });
    let r = http("POST", &format!("{url}/api/v1/invites/accept"), &[], Some(&accept));
    assert!(r.status < 300, "{}", r.body);
    let (cookie, csrf) = sign_in(url, username, password);
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{url}/api/v1/api-keys"),
        &h,
        Some(&json!({ "name": "mine" })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["key"].as_str().unwrap().to_owned()
}

struct Scim {
    url: String,
    auth: String,
}

impl Scim {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call_with(method, path, body, &[])
    }

    fn call_with(&self, method: &str, path: &str, body: Option<&Value>, more: &[(&str, &str)]) -> Reply {
        let mut headers = vec![("authorization", self.auth.as_str())];
        headers.extend_from_slice(more);
        http(method, &format!("{}/scim/v2{path}", self.url), &headers, body)
    }

    fn patch(&self, path: &str, operations: Value) -> Reply {
        let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
        self.call("PATCH", path, Some(&body))
    }
}

/// A SCIM error: the status in the body as in the answer, the scimType if any.
fn assert_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.body);
    assert_eq!(r.body["status"], json!(status.to_string()), "{}", r.body);
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
    assert!(!r.body["detail"].as_str().unwrap_or_default().is_empty(), "{}", r.body);
}

fn viewer_status(url: &str, key: &str) -> u16 {
    let auth = format!("Bearer {key}");
    http(
        "GET",
        &format!("{url}/api/v1/viewer"),
        &[("authorization", auth.as_str())],
        None,
    )
    .status
}

#[test]
fn scim2_tester_reports_every_check_passing_on_both_bases() {
    let s = start_with_admin_key("scim-tester", PASSWORD);
    let url = &s.server.url;
    let sa_key = service_account_key(url, &s.key, "provisioner", None);
    // An org admin's key as a Bearer token on RFC 7644's base; an organization service
    // account's key as W&B's Basic `:KEY` on W&B's base.
    let basic = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(":{sa_key}"))
        )
    };
    for (base, auth) in [("/scim/v2", format!("Bearer {}", s.key)), ("/scim", basic)] {
        let report = scim_script("check.py", &[&format!("{url}{base}")], &auth);
        assert_eq!(report["failures"], json!([]), "{base}: {report}");
        // The count the schema gives (docs/SCIM.md): 24 discovery checks, 27 on
        // Users, 18 on Groups. Fewer would mean checks were skipped.
        assert_eq!(report["total"], 69, "{base}: {report}");
        assert_eq!(report["counts"]["SUCCESS"], 69, "{base}: {report}");
    }
}

#[test]
fn only_organization_admins_and_organization_service_accounts_provision() {
    let s = start_with_admin_key("scim-who", PASSWORD);
    let url = &s.server.url;
    let org_sa = service_account_key(url, &s.key, "provisioner", None);
    let admin = Scim {
        url: url.clone(),
        auth: format!("Bearer {}", s.key),
    };
    let r = admin.call("POST", "/Groups", Some(&json!({ "displayName": "vision" })));
    assert_eq!(r.status, 201, "{}", r.body);
    let team_sa = service_account_key(url, &s.key, "vision-bot", Some("vision"));
    let r = admin.call("POST", "/Users", Some(&json!({ "userName": "carol" })));
    assert_eq!(r.status, 201, "{}", r.body);
    let member = user_key(url, &s.key, "carol");
    let as_key = |key: &str| Scim {
        url: url.clone(),
        auth: format!("Bearer {key}"),
    };

    assert_eq!(as_key(&org_sa).call("GET", "/Users", None).status, 200);
    let r = as_key(&team_sa).call("GET", "/Users", None);
    assert_error(&r, 403, None);
    assert!(
        r.body["detail"].as_str().unwrap().contains("team service account"),
        "{}",
        r.body
    );
    assert_error(&as_key(&member).call("GET", "/Users", None), 403, None);
    assert_error(&as_key("wandb_v1_not-a-key").call("GET", "/Users", None), 401, None);
    let r = http("GET", &format!("{url}/scim/v2/Users"), &[], None);
    assert_error(&r, 401, None);
    // A browser's session is not a SCIM client.
    let (cookie, _) = sign_in(url, "admin", PASSWORD);
    let r = http(
        "GET",
        &format!("{url}/scim/v2/Users"),
        &[("cookie", cookie.as_str())],
        None,
    );
    assert_error(&r, 401, None);
    // Every refusal in SCIM's shape, a path or method that does not exist included.
    assert_error(&admin.call("GET", "/Nothing", None), 404, None);
    assert_error(&admin.call("DELETE", "/Schemas", None), 405, None);
    assert_error(&admin.call("GET", "/Users/u999-1", None), 404, None);
    assert_error(
        &admin.call("GET", "/Users?filter=userName%20eq", None),
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &admin.call("GET", "/Users?filter=title%20pr", None),
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &admin.call("POST", "/Users", Some(&json!({ "userName": "CAROL" }))),
        409,
        Some("uniqueness"),
    );
    assert_error(
        &admin.call("POST", "/Users", Some(&json!({ "displayName": "x" }))),
        400,
        Some("invalidValue"),
    );
    let r = admin.call(
        "POST",
        "/Users",
        Some(&json!({ "userName": "dave", "organizationRole": "viewer" })),
    );
    assert_error(&r, 400, Some("invalidValue"));
    let r = http(
        "POST",
        &format!("{url}/scim/v2/Users"),
        &[
            ("authorization", admin.auth.as_str()),
            ("content-type", "application/scim+json"),
        ],
        None,
    );
    assert_error(&r, 400, Some("invalidSyntax"));
}

#[test]
fn scim_changes_act_at_once_keep_the_last_admin_and_are_audited() {
    let s = start_with_admin_key("scim-acts", PASSWORD);
    let url = &s.server.url;
    let sa_key = service_account_key(url, &s.key, "provisioner", None);
    let scim = Scim {
        url: url.clone(),
        auth: format!("Bearer {sa_key}"),
    };
    let created = scim.call(
        "POST",
        "/Users",
        Some(&json!({ "userName": "bob@example.com", "emails": [{ "value": "bob@example.com", "type": "work" }] })),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let bob = created.body["id"].as_str().unwrap().to_owned();
    // Keysmith's username is made from the userName; the userName reads back as written.
    assert_eq!(created.body["userName"], "bob@example.com");
    let bob_key = user_key(url, &s.key, "bob");
    assert_eq!(viewer_status(url, &bob_key), 200);

    // Entra's deactivation: a path-less Replace with a string boolean. Bob's key stops
    // with the very next request.
    let r = scim.patch(
        &format!("/Users/{bob}"),
        json!([{ "op": "Replace", "value": { "active": "False" } }]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(viewer_status(url, &bob_key), 401);
    let r = scim.patch(
        &format!("/Users/{bob}"),
        json!([{ "op": "replace", "path": "active", "value": true }]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(viewer_status(url, &bob_key), 200);

    // A stale version is refused; the current one is taken.
    let version = r.body["meta"]["version"].as_str().unwrap().to_owned();
    let rename =
        json!({ "schemas": [PATCH_OP], "Operations": [{ "op": "replace", "path": "displayName", "value": "Bob" }] });
    let r = scim.call_with(
        "PATCH",
        &format!("/Users/{bob}"),
        Some(&rename),
        &[("if-match", "W/\"stale\"")],
    );
    assert_error(&r, 412, None);
    let r = scim.call_with(
        "PATCH",
        &format!("/Users/{bob}"),
        Some(&rename),
        &[("if-match", &version)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.body["meta"]["version"], json!(version));

    // The last admin stays, whichever way SCIM tries.
    let admins = scim.call("GET", "/Users?filter=userName%20eq%20%22admin%22", None);
    let admin = admins.body["Resources"][0]["id"].as_str().unwrap().to_owned();
    let r = scim.patch(
        &format!("/Users/{admin}"),
        json!([{ "op": "replace", "path": "organizationRole", "value": "member" }]),
    );
    assert_error(&r, 409, None);
    let r = scim.patch(
        &format!("/Users/{admin}"),
        json!([{ "op": "replace", "path": "active", "value": false }]),
    );
    assert_error(&r, 409, None);
    assert_error(&scim.call("DELETE", &format!("/Users/{admin}"), None), 409, None);
    assert_eq!(viewer_status(url, &s.key), 200);

    // A team with service accounts cannot be deleted (their keys would lose their scope).
    let team = scim.call(
        "POST",
        "/Groups",
        Some(&json!({ "displayName": "ML Vision", "members": [{ "value": bob }] })),
    );
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_owned();
    let teams = http(
        "GET",
        &format!("{url}/api/v1/orgs/default/teams"),
        &[("authorization", scim.auth.as_str())],
        None,
    );
    assert_eq!(teams.body["items"][0]["name"], "ml-vision", "{}", teams.body);
    service_account_key(url, &s.key, "vision-bot", Some("ml-vision"));
    assert_error(
        &scim.call("DELETE", &format!("/Groups/{team_id}"), None),
        400,
        Some("mutability"),
    );

    // Deleting a user deletes their keys.
    let r = scim.call("DELETE", &format!("/Users/{bob}"), None);
    assert_eq!(r.status, 204);
    assert_eq!(viewer_status(url, &bob_key), 401);
    assert_error(&scim.call("GET", &format!("/Users/{bob}"), None), 404, None);
    let r = scim.call("GET", &format!("/Groups/{team_id}"), None);
    assert!(r.body.get("members").is_none(), "{}", r.body);

    // Audited, with the SCIM client as the actor.
    let auth = format!("Bearer {}", s.key);
    let log = http(
        "GET",
        &format!("{url}/api/v1/orgs/default/audit"),
        &[("authorization", auth.as_str())],
        None,
    );
    let entries: Vec<(String, String, String)> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "provisioner")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["detail"].to_string(),
            )
        })
        .collect();
    for (action, target, detail) in [
        ("user.created", "bob", "\"via\":\"scim\""),
        ("user.deactivated", "bob", ""),
        ("user.reactivated", "bob", ""),
        ("user.profile_changed", "bob", "displayName"),
        ("team.created", "ml-vision", ""),
        ("team.member_set", "ml-vision", "bob"),
        ("user.deleted", "bob", ""),
    ] {
        assert!(
            entries
                .iter()
                .any(|(a, t, d)| a == action && t == target && d.contains(detail)),
            "no {action} of {target} with {detail}: {entries:?}"
        );
    }
}
