//! The web interface over HTTP, without a browser: redirects, cookies, CSRF, the key
//! shown once, who may reach which page, and the headers every page carries. The
//! browser itself is driven in `keysmith-cli/tests/browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{
    ADMIN_PASSWORD, Auth, Reply, Session, TestApp, USER_PASSWORD, create_in_browser, form_body, get, location, post,
};
use serde_json::json;

#[tokio::test]
async fn pages_need_a_session_and_send_the_browser_to_sign_in() {
    let app = TestApp::sqlite().await;
    let r = get(&app, None, "/settings").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fsettings");
    // The link the wandb SDK prints lands on key creation after sign-in.
    let r = get(&app, None, "/authorize?ref=models").await;
    assert_eq!(location(&r), "/login?next=%2Fauthorize%3Fref%3Dmodels");
    let r = get(&app, None, "/login?next=%2Fauthorize%3Fref%3Dmodels").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("name=\"next\" value=\"/authorize?ref=models\""),
        "{}",
        r.text
    );

    let r = post(
        &app,
        None,
        "/login",
        &[("username", "admin"), ("password", "wrong-password")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("Wrong username or password."));
    assert!(r.headers.get(header::SET_COOKIE).is_none());

    let r = post(
        &app,
        None,
        "/login",
        &[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/authorize?ref=models"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/authorize?ref=models");
    let cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"));
    let session = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: String::new(),
    };
    let r = get(&app, Some(&session), "/authorize?ref=models").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("action=\"/keys/new\"") && r.text.contains("value=\"wandb SDK\""));

    // Another site as `next` is ignored.
    let r = post(
        &app,
        None,
        "/login",
        &[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example/"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/settings");
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_browser_came_over_https() {
    let app = TestApp::sqlite().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(form_body(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])))
        .unwrap();
    let r = app.send(request).await;
    assert!(
        r.headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
}

#[tokio::test]
async fn a_key_created_in_the_browser_is_shown_once_and_works() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (key, key_id, page) = create_in_browser(&app, &s, "laptop", None).await;
    assert!(page.text.contains("It will not be shown again"));
    assert_eq!(page.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "the key from the page authenticates");

    // A reload shows the key ID only.
    let again = get(&app, Some(&s), &format!("/keys/{key_id}/created?back=/settings")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(!again.text.contains(&key), "shown once");
    assert!(again.text.contains(&key_id));
    let settings = get(&app, Some(&s), "/settings").await;
    assert!(settings.text.contains(&key_id) && settings.text.contains("laptop"));
    assert!(!settings.text.contains(&key));

    // Rename, then delete with its confirmation page.
    let r = post(
        &app,
        Some(&s),
        &format!("/keys/{key_id}/rename"),
        &[("csrf", &s.csrf), ("name", "work laptop"), ("back", "/settings")],
    )
    .await;
    assert_eq!(location(&r), "/settings?done=renamed");
    let r = post(
        &app,
        Some(&s),
        &format!("/keys/{key_id}/rename"),
        &[("csrf", &s.csrf), ("name", ""), ("back", "/settings")],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "an empty name is explained on the form"
    );
    let confirm = get(&app, Some(&s), &format!("/keys/{key_id}/delete?back=/settings")).await;
    assert!(confirm.text.contains("stop working immediately") && confirm.text.contains("work laptop"));
    let r = post(
        &app,
        Some(&s),
        &format!("/keys/{key_id}/delete"),
        &[("csrf", &s.csrf), ("back", "/settings")],
    )
    .await;
    assert_eq!(location(&r), "/settings?done=deleted");
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "deleted means refused");
}

#[tokio::test]
async fn several_keys_are_deleted_together_after_a_confirmation() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (k1, id1, _) = create_in_browser(&app, &s, "one", None).await;
    let (k2, id2, _) = create_in_browser(&app, &s, "two", None).await;
    let (k3, _, _) = create_in_browser(&app, &s, "three", None).await;
    let fields = [
        ("csrf", s.csrf.as_str()),
        ("back", "/settings"),
        ("key_id", &id1),
        ("key_id", &id2),
    ];
    let r = post(&app, Some(&s), "/keys/delete-selected", &fields).await;
    assert_eq!(r.status, StatusCode::OK, "first a confirmation");
    assert!(r.text.contains("Delete 2 API keys") && r.text.contains("one") && r.text.contains("two"));
    let viewer = |k: String| async { app.request(Method::GET, "/api/v1/viewer", &Auth::Bearer(k), None).await };
    assert_eq!(viewer(k1.clone()).await.status, StatusCode::OK, "nothing deleted yet");
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "yes"));
    let r = post(&app, Some(&s), "/keys/delete-selected", &confirmed).await;
    assert_eq!(location(&r), "/settings?done=deleted-selected");
    assert_eq!(viewer(k1).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(viewer(k2).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(viewer(k3).await.status, StatusCode::OK, "the unticked key still works");
    let r = post(&app, Some(&s), "/keys/delete-selected", &[("csrf", &s.csrf)]).await;
    assert_eq!(location(&r), "/settings?done=none-selected");
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    for fields in [vec![("name", "x")], vec![("name", "x"), ("csrf", "not-the-token")]] {
        let r = post(&app, Some(&s), "/keys/new", &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("csrf_token_invalid"));
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri("/keys/new")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &s.cookie)
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(form_body(&[("csrf", &s.csrf), ("name", "x")])))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
    let r = post(&app, Some(&s), "/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "even signing out needs the token");
    let keys = app
        .request(Method::GET, "/api/v1/api-keys", &Auth::Session(s.clone()), None)
        .await;
    assert_eq!(
        keys.body["items"].as_array().unwrap().len(),
        0,
        "no refused form created a key"
    );
    let r = post(&app, Some(&s), "/logout", &[("csrf", &s.csrf)]).await;
    assert_eq!(location(&r), "/login?done=signed-out");
    let r = get(&app, Some(&s), "/settings").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the session is over");
}

#[tokio::test]
async fn members_cannot_reach_admin_pages_and_team_admins_manage_service_accounts() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    app.add_user("dev").await;
    app.add_user("lead").await;
    let ok = |r: Reply| assert!(r.status.is_success(), "{} {}", r.status, r.text);
    ok(app
        .request(
            Method::POST,
            "/api/v1/orgs/default/teams",
            &admin,
            Some(json!({"name": "nlp"})),
        )
        .await);
    ok(app
        .request(
            Method::PUT,
            "/api/v1/orgs/default/teams/nlp/members/lead",
            &admin,
            Some(json!({"role": "admin"})),
        )
        .await);
    ok(app
        .request(
            Method::PUT,
            "/api/v1/orgs/default/teams/nlp/members/dev",
            &admin,
            Some(json!({"role": "member"})),
        )
        .await);

    let dev = app.sign_in("dev", USER_PASSWORD).await;
    for path in [
        "/org/default/keys",
        "/org/default/audit-log",
        "/org/default/users",
        "/org/default/teams",
        "/org/default/settings",
        "/nlp/service-accounts",
    ] {
        let r = get(&app, Some(&dev), path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!r.text.contains("<table"), "{path} shows nothing");
    }
    let r = get(&app, Some(&dev), "/org/other/keys").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another org does not exist for a member"
    );
    let r = post(
        &app,
        Some(&dev),
        "/org/default/settings",
        &[("csrf", &dev.csrf), ("key_creation_disabled", "on")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let lead = app.sign_in("lead", USER_PASSWORD).await;
    let settings = get(&app, Some(&lead), "/settings").await;
    assert!(
        settings.text.contains("/nlp/service-accounts?org=default"),
        "the nav links the team"
    );
    let r = post(
        &app,
        Some(&lead),
        "/nlp/service-accounts",
        &[("csrf", &lead.csrf), ("name", "ci-bot"), ("description", "CI")],
    )
    .await;
    assert_eq!(
        location(&r),
        "/nlp/service-accounts?org=default&done=service-account-created"
    );
    let (key, key_id, _) = create_in_browser(&app, &lead, "ci", Some("ci-bot")).await;
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
        .await;
    assert_eq!(me.body["username"], "ci-bot", "{}", me.text);
    let page = get(&app, Some(&lead), "/nlp/service-accounts?org=default").await;
    assert!(page.text.contains("ci-bot") && page.text.contains(&key_id));
    let r = get(&app, Some(&lead), "/org/default/keys").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a team admin is not an org admin");
}

#[tokio::test]
async fn org_admins_filter_every_key_and_change_settings() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    app.add_user("dev").await;
    let dev = app.sign_in("dev", USER_PASSWORD).await;
    let (_, dev_key, _) = create_in_browser(&app, &dev, "dev laptop", None).await;
    let (_, admin_key, _) = create_in_browser(&app, &s, "admin laptop", None).await;
    let all = get(&app, Some(&s), "/org/default/keys").await;
    assert!(all.text.contains(&dev_key) && all.text.contains(&admin_key));
    let mine = get(&app, Some(&s), "/org/default/keys?owner=dev").await;
    assert!(mine.text.contains(&dev_key) && !mine.text.contains(&admin_key));
    let sas = get(&app, Some(&s), "/org/default/keys?kind=service_account").await;
    assert!(sas.text.contains("No keys match"));
    let bad = get(&app, Some(&s), "/org/default/keys?kind=robot").await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "a bad filter is explained, not a 500"
    );

    let audit = get(&app, Some(&s), "/org/default/audit-log?action=api_key.created").await;
    assert!(audit.text.contains(&dev_key));

    let r = post(
        &app,
        Some(&s),
        "/org/default/settings",
        &[("csrf", &s.csrf), ("key_creation_disabled", "on")],
    )
    .await;
    assert_eq!(location(&r), "/org/default/settings?done=saved");
    let r = post(
        &app,
        Some(&dev),
        "/keys/new",
        &[("csrf", &dev.csrf), ("name", "another")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.text
            .contains("API key creation has been disabled by your organization administrator")
    );

    let r = post(
        &app,
        Some(&s),
        "/org/default/users",
        &[("csrf", &s.csrf), ("username", "newbie"), ("role", "member")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "an invitation shows its token once");
    assert!(r.text.contains("invite-token"));
    let r = post(
        &app,
        Some(&s),
        "/org/default/users/dev",
        &[("csrf", &s.csrf), ("action", "deactivate")],
    )
    .await;
    assert_eq!(location(&r), "/org/default/users?done=user-updated");
    let r = get(&app, Some(&dev), "/settings").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a deactivated user's session ends");
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_no_inline_script_or_style() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (_, key_id, _) = create_in_browser(&app, &s, "laptop", None).await;
    let key_pages = ["rename", "rotate", "delete"].map(|p| format!("/keys/{key_id}/{p}?back=/settings"));
    let fixed = [
        "/login",
        "/settings",
        "/keys/new",
        "/org/default/keys",
        "/org/default/users",
        "/org/default/audit-log",
        "/org/default/teams",
        "/org/default/webhooks",
        "/org/default/settings",
        "/invite",
        "/revoke-exposed",
    ];
    for path in fixed.iter().copied().chain(key_pages.iter().map(String::as_str)) {
        let r = get(&app, Some(&s), path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let csp = r
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert!(!r.text.contains("<script>") && !r.text.contains(" style=") && !r.text.contains(" onclick"));
        if path == "/org/default/webhooks" {
            // Its URL field's placeholder is an example address; nothing loads from one.
            for attr in ["src=\"http", "href=\"http", "action=\"http", "url("] {
                assert!(!r.text.contains(attr), "{path}: no asset from elsewhere ({attr})");
            }
        } else {
            assert!(!r.text.contains("https://"), "{path}: no asset from elsewhere");
        }
        // Every form that posts carries the session's token, except the public ones
        // (no session yet; they refuse cross-site posts by Fetch Metadata instead).
        let mut posting = 0;
        for form in r.text.split("<form").skip(1) {
            let form = &form[..form.find("</form>").unwrap()];
            let tag = &form[..form.find('>').unwrap()];
            if !tag.contains("method=\"post\"") {
                continue;
            }
            posting += 1;
            assert!(
                path == "/login" || path == "/invite" || path == "/revoke-exposed" || form.contains("name=\"csrf\""),
                "{path}: a form without its token: <form{tag}>"
            );
        }
        assert!(posting > 0 || path.ends_with("/audit-log"), "{path}: no form found");
    }
    for (path, kind) in [
        ("/static/keysmith.css", "text/css"),
        ("/static/keysmith.js", "text/javascript"),
    ] {
        let r = get(&app, None, path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers
                .get(header::CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

#[tokio::test]
async fn a_rotation_in_the_browser_shows_both_keys_and_finishes_with_a_delete() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (old_key, old_id, _) = create_in_browser(&app, &s, "trainer", None).await;
    let form = get(&app, Some(&s), &format!("/keys/{old_id}/rotate?back=/settings")).await;
    assert!(form.text.contains("Keep the old key working for"));
    let r = post(
        &app,
        Some(&s),
        &format!("/keys/{old_id}/rotate"),
        &[("csrf", &s.csrf), ("grace", "1h"), ("back", "/settings")],
    )
    .await;
    let to = location(&r).to_owned();
    assert!(to.ends_with(&format!("back=%2Fkeys%2F{old_id}%2Frotation")), "{to}");
    let shown = get(&app, Some(&s), &to).await;
    let start = shown.text.find("value=\"wandb_v1_").unwrap() + 7;
    let new_key = shown.text[start..start + 86].to_owned();
    assert_ne!(new_key, old_key);
    for key in [&old_key, &new_key] {
        let me = app
            .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
            .await;
        assert_eq!(me.status, StatusCode::OK, "both work during the grace period");
    }
    let status = get(&app, Some(&s), &format!("/keys/{old_id}/rotation")).await;
    assert!(status.text.contains("Old key") && status.text.contains("New key"));
    assert!(
        status.text.contains("was used after the rotation began"),
        "the old key was just used"
    );
    assert!(status.text.contains("127.0.0.1"), "with its source");
    let r = post(
        &app,
        Some(&s),
        &format!("/keys/{old_id}/delete"),
        &[("csrf", &s.csrf), ("back", "/settings")],
    )
    .await;
    assert_eq!(location(&r), "/settings?done=deleted");
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(old_key), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expiry_webhooks_and_revocation_have_pages() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let r = post(
        &app,
        Some(&s),
        "/keys/new",
        &[
            ("csrf", &s.csrf),
            ("name", "week"),
            ("expires_in_days", "7"),
            ("back", "/settings"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let settings = get(&app, Some(&s), "/settings").await;
    assert!(
        settings.text.contains("2025-12-03 19:00 UTC"),
        "the expiry shows in the table"
    );

    let r = post(
        &app,
        Some(&s),
        "/org/default/webhooks",
        &[
            ("csrf", &s.csrf),
            ("url", "https://example.com/hook"),
            ("events", "api_key.deleted"),
            ("events", "api_key.exposed"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("whsec_"), "the secret, once");
    let list = get(&app, Some(&s), "/org/default/webhooks").await;
    assert!(list.text.contains("https://example.com/hook") && list.text.contains("api_key.deleted, api_key.exposed"));
    assert!(!list.text.contains("whsec_"));

    let (key, _) = app.create_key(&Auth::Session(s.clone()), "leaky").await;
    let form = get(&app, None, "/revoke-exposed").await;
    assert_eq!(form.status, StatusCode::OK, "no sign-in needed");
    let r = post(&app, None, "/revoke-exposed", &[("key", &key)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("no longer works"));
    assert!(!r.text.contains(&key), "the key is not echoed");
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_path_that_does_not_decode_gets_the_web_error_page() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    // Segments that are not UTF-8 once percent-decoded, and a webhook ID that is not
    // a number: each page's own error page, not axum's plain text.
    for path in [
        "/%FF/service-accounts",
        "/org/%FF/keys",
        "/keys/%FF/rename",
        "/org/default/webhooks/not-a-number",
    ] {
        let r = get(&app, Some(&s), path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert_eq!(
            r.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}: {}",
            r.text
        );
        assert!(r.text.starts_with("<!DOCTYPE html>"), "{path}: {}", r.text);
        assert!(r.text.contains("<code>invalid_request</code>"), "{path}: {}", r.text);
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: the pages' policy, {csp}");
    }
    for path in ["/%FF/service-accounts", "/org/default/users/%C3%28"] {
        let r = post(&app, Some(&s), path, &[("csrf", &s.csrf), ("name", "x")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert!(r.text.contains("<code>invalid_request</code>"), "{path}: {}", r.text);
    }
    // Without a session the browser is still sent to sign in first.
    let r = get(&app, None, "/%FF/service-accounts").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login?next="), "{}", location(&r));
}

#[tokio::test]
async fn the_revocation_page_shares_the_limit_and_explains_a_refusal() {
    let app = TestApp::sqlite_with(keysmith_server::Settings {
        exposure_reports_per_minute: 2,
        ..keysmith_server::Settings::default()
    })
    .await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let (key, _) = app.create_key(&Auth::Session(s.clone()), "leaky").await;
    // One report through the API and one through the page use up the address's two.
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys/revoke-exposed",
            &Auth::None,
            Some(json!({"key": "not a key"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = post(&app, None, "/revoke-exposed", &[("key", "not a key either")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = post(&app, None, "/revoke-exposed", &[("key", &key)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.headers[header::RETRY_AFTER], "60");
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(r.text.starts_with("<!DOCTYPE html>"), "{}", r.text);
    assert!(
        r.text
            .contains("Too many reports from your address. Try again in 60 seconds."),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("action=\"/revoke-exposed\""),
        "the form, to try again later"
    );
    assert!(!r.text.contains(&key), "the key is not echoed");
    let me = app
        .request(Method::GET, "/api/v1/viewer", &Auth::Bearer(key.clone()), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "a refused report revokes nothing");
    // The API is refused for the address too.
    let r = app
        .request(
            Method::POST,
            "/api/v1/api-keys/revoke-exposed",
            &Auth::None,
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
}

const INVITED_PASSWORD: &str = "a-password-ada-chose";

/// Invites `username` through the API; returns the one-time token.
async fn invite(app: &TestApp, admin: &Auth, username: &str) -> String {
    let r = app
        .request(
            Method::POST,
            "/api/v1/orgs/default/users",
            admin,
            Some(json!({"username": username})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["invite_token"].as_str().unwrap().to_owned()
}

/// The invitation page's form, posted with `token` and `password` typed twice.
async fn accept_on_page(app: &TestApp, token: &str, password: &str) -> Reply {
    post(
        app,
        None,
        "/invite",
        &[("token", token), ("password", password), ("confirm", password)],
    )
    .await
}

/// Whether `password` signs `username` in (through the API, which counts failures).
async fn signs_in(app: &TestApp, username: &str, password: &str) -> bool {
    app.try_sign_in(username, password).await.status == StatusCode::OK
}

/// Neither the body nor any header of `r` carries one of `secrets`.
fn echoes_none(r: &Reply, secrets: &[&str]) {
    for secret in secrets {
        assert!(!r.text.contains(secret), "{secret:?} is in the page: {}", r.text);
        for (name, value) in &r.headers {
            assert!(
                !value.to_str().unwrap_or("").contains(secret),
                "{secret:?} is in the {name} header"
            );
        }
    }
}

/// The invitation form, empty, with `message` above it.
fn invite_form_again(r: &Reply, status: StatusCode, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(r.text.contains(message), "{}", r.text);
    assert!(r.text.contains("role=\"alert\""), "{}", r.text);
    assert!(r.text.contains("action=\"/invite\""), "the form again: {}", r.text);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn an_invited_user_sets_a_password_on_the_invite_page_and_signs_in() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    // The admin invites through the Users page and is told where to send the person:
    // a link to this server's invitation page, as the admin's browser reached it, and
    // steps for a person (not the API's endpoint).
    let request = Request::builder()
        .method(Method::POST)
        .uri("/org/default/users")
        .header(header::HOST, "keys.example.com")
        .header("x-forwarded-proto", "https")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &s.cookie)
        .body(Body::from(form_body(&[
            ("csrf", &s.csrf),
            ("username", "ada"),
            ("role", "member"),
        ])))
        .unwrap();
    let r = app.send(request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text
            .contains("<a class=\"invite-link\" href=\"/invite\">https://keys.example.com/invite</a>"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("&lt;server&gt;"), "no placeholder: {}", r.text);
    assert!(
        !r.text.contains("/api/v1/invites"),
        "no API endpoint for a person: {}",
        r.text
    );
    assert!(r.text.contains("paste the token, choose a password"), "{}", r.text);
    let field = r.text.find("id=\"invite-token\"").expect("the token is shown once");
    let start = field + r.text[field..].find("value=\"").unwrap() + 7;
    let token = r.text[start..start + r.text[start..].find('"').unwrap()].to_owned();
    assert_eq!(token.len(), 43, "{token}");

    // The sign-in page points invited people there.
    let login = get(&app, None, "/login").await;
    assert!(login.text.contains("<a href=\"/invite\">"), "{}", login.text);

    // The page needs no session: a labelled form that posts, with nothing filled in.
    let form = get(&app, None, "/invite").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert_eq!(form.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        form.text
            .contains("<form class=\"stack\" method=\"post\" action=\"/invite\">"),
        "{}",
        form.text
    );
    assert!(form.text.contains("href=\"/static/keysmith.css\""), "the site's layout");
    for (id, name, kind) in [
        ("invite-token", "token", "password"),
        ("new-password", "password", "password"),
        ("confirm-password", "confirm", "password"),
    ] {
        assert!(form.text.contains(&format!("<label for=\"{id}\">")), "{id} has a label");
        assert!(
            form.text
                .contains(&format!("id=\"{id}\" name=\"{name}\" type=\"{kind}\" required")),
            "{id}: {}",
            form.text
        );
    }
    assert!(!form.text.contains(" value="), "nothing filled in: {}", form.text);
    assert!(!signs_in(&app, "ada", INVITED_PASSWORD).await, "no password yet");

    let r = accept_on_page(&app, &token, INVITED_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(location(&r), "/login?done=password-set");
    echoes_none(&r, &[&token, INVITED_PASSWORD]);
    let login = get(&app, None, location(&r)).await;
    assert!(login.text.contains("Your password is set."), "{}", login.text);

    // The person signs in on the sign-in page with the new password.
    let r = post(
        &app,
        None,
        "/login",
        &[("username", "ada"), ("password", INVITED_PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(location(&r), "/settings");
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    let ada = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: String::new(),
    };
    let settings = get(&app, Some(&ada), "/settings").await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(settings.text.contains("ada"));

    // The token was used up: a second use is refused and changes nothing.
    let other = "another-password-entirely";
    let r = accept_on_page(&app, &token, other).await;
    invite_form_again(
        &r,
        StatusCode::BAD_REQUEST,
        "The invitation is unknown, used or expired",
    );
    assert!(r.text.contains("<code>invitation_invalid</code>"), "{}", r.text);
    echoes_none(&r, &[&token, other]);
    assert!(signs_in(&app, "ada", INVITED_PASSWORD).await, "the password stays");
}

#[tokio::test]
async fn a_refused_invitation_form_explains_itself_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let token = invite(&app, &admin, "ada").await;
    // The last character changed (to `x`, or to `y` where it already was an `x`).
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &token[..42]);
    let differs = "a-different-password";
    // Each refusal is the form again, with 400 and what to fix.
    let cases = [
        (
            vec![
                ("token", wrong.as_str()),
                ("password", INVITED_PASSWORD),
                ("confirm", INVITED_PASSWORD),
            ],
            "The invitation is unknown, used or expired; ask an admin for a new one.",
        ),
        (
            vec![
                ("token", token.as_str()),
                ("password", INVITED_PASSWORD),
                ("confirm", differs),
            ],
            "The two passwords differ.",
        ),
        (
            vec![("token", token.as_str()), ("password", INVITED_PASSWORD)],
            "The two passwords differ.",
        ),
        (
            vec![
                ("token", token.as_str()),
                ("password", "too-short"),
                ("confirm", "too-short"),
            ],
            "The password must have at least 12 characters.",
        ),
        (
            vec![
                ("token", "  "),
                ("password", INVITED_PASSWORD),
                ("confirm", INVITED_PASSWORD),
            ],
            "Paste the invitation token",
        ),
    ];
    for (fields, message) in cases {
        let r = post(&app, None, "/invite", &fields).await;
        invite_form_again(&r, StatusCode::BAD_REQUEST, message);
        echoes_none(&r, &[&token, &wrong, INVITED_PASSWORD, differs, "too-short"]);
    }
    // None of them set a password, nor used up the invitation.
    for password in [INVITED_PASSWORD, differs] {
        assert!(!signs_in(&app, "ada", password).await, "{password}");
    }
    let r = accept_on_page(&app, &token, INVITED_PASSWORD).await;
    assert_eq!(location(&r), "/login?done=password-set", "{}", r.text);
    assert!(signs_in(&app, "ada", INVITED_PASSWORD).await);
}

#[tokio::test]
async fn the_invitation_form_is_refused_from_another_site() {
    let app = TestApp::sqlite().await;
    let admin = app.admin().await;
    let token = invite(&app, &admin, "ada").await;
    let fields = [
        ("token", token.as_str()),
        ("password", INVITED_PASSWORD),
        ("confirm", INVITED_PASSWORD),
    ];
    for site in ["cross-site", "same-site"] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/invite")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site)
            .body(Body::from(form_body(&fields)))
            .unwrap();
        let r = app.send(request).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{site}: {}", r.text);
        assert!(r.text.contains("csrf_token_invalid"), "{}", r.text);
        echoes_none(&r, &[&token, INVITED_PASSWORD]);
    }
    assert!(!signs_in(&app, "ada", INVITED_PASSWORD).await, "no password was set");
    // The same form from the site itself goes through, with the invitation still open.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/invite")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form_body(&fields)))
        .unwrap();
    let r = app.send(request).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(signs_in(&app, "ada", INVITED_PASSWORD).await);
}

/// A GET with an `Accept` header, as a browser (text/html first) or a client sends it.
async fn get_accepting(app: &TestApp, session: Option<&Session>, path: &str, accept: &str) -> Reply {
    let mut r = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::ACCEPT, accept);
    if let Some(s) = session {
        r = r.header(header::COOKIE, &s.cookie);
    }
    app.send(r.body(Body::empty()).unwrap()).await
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn an_unknown_page_is_the_web_404_for_a_browser_and_json_for_the_api() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    // A browser opening a page that does not exist: the web's page, signed in or not.
    for session in [None, Some(&s)] {
        for path in [
            "/no-such-page",
            "/org/default/nope/deeper",
            "/settings/extra",
            "/apiary",
        ] {
            let r = get_accepting(&app, session, path, BROWSER_ACCEPT).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
            assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8", "{path}");
            assert!(r.text.starts_with("<!DOCTYPE html>"), "{path}: {}", r.text);
            assert!(r.text.contains("<h1>Page not found</h1>"), "{path}: {}", r.text);
            assert!(r.text.contains("href=\"/\""), "{path}: a link home: {}", r.text);
            assert!(!r.text.contains("{\"error\""), "{path}: not the JSON");
            let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
                "{csp}"
            );
        }
    }
    // Signed in, the page keeps the navigation and the user menu.
    let r = get_accepting(&app, Some(&s), "/no-such-page", BROWSER_ACCEPT).await;
    assert!(r.text.contains("User menu for"), "{}", r.text);
    // The API's paths keep their JSON, even for a browser.
    for path in [
        "/api/v1/no-such-thing",
        "/api",
        "/graphql/nope",
        "/metrics/nope",
        "/healthz/nope",
        "/readyz/nope",
        "/oidc/nope",
    ] {
        let r = get_accepting(&app, None, path, BROWSER_ACCEPT).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "route_not_found"),
            "{path}: {}",
            r.text
        );
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
    }
    // Single sign-on's callback is a page now (issue 16: this list held
    // `/oidc/callback` while it did not exist): without a sign-in begun in this
    // browser, it says so.
    let r = get_accepting(&app, None, "/oidc/callback?code=x&state=y", BROWSER_ACCEPT).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("<code>sso_state_missing</code>"), "{}", r.text);
    // SCIM's paths answer in SCIM's own JSON error shape, even for a browser (issue 16:
    // this list held `/scim/v2/Users` while SCIM was not built).
    for path in ["/scim/v2/Users", "/scim/v2/no-such-thing", "/scim/nope"] {
        let r = get_accepting(&app, None, path, BROWSER_ACCEPT).await;
        assert!(r.status.is_client_error(), "{path}: {}", r.text);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/scim+json", "{path}");
        assert_eq!(
            r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{path}"
        );
    }
    // Clients that do not ask for HTML get the JSON everywhere.
    for accept in [None, Some("application/json"), Some("*/*")] {
        let r = match accept {
            Some(accept) => get_accepting(&app, None, "/no-such-page", accept).await,
            None => get(&app, None, "/no-such-page").await,
        };
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "route_not_found"),
            "{accept:?}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn the_profile_lists_each_organization_with_its_role() {
    let app = TestApp::sqlite().await;
    let s = app.sign_in("admin", ADMIN_PASSWORD).await;
    let r = get(&app, Some(&s), "/settings").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.text.contains("<dt>Organization default</dt>"),
        "label and value mixed: {}",
        r.text
    );
    for expected in [
        "<th scope=\"col\">Organization</th>",
        "<th scope=\"col\">Role</th>",
        "<th scope=\"row\">default</th><td>Admin</td>",
    ] {
        assert!(r.text.contains(expected), "{expected}: {}", r.text);
    }
    app.add_user("dev").await;
    let dev = app.sign_in("dev", USER_PASSWORD).await;
    let r = get(&app, Some(&dev), "/settings").await;
    assert!(
        r.text.contains("<th scope=\"row\">default</th><td>Member</td>"),
        "{}",
        r.text
    );
}
