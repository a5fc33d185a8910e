//! Identity federation at the application, on SQLite and on PostgreSQL: registering
//! issuers (org admins only, URLs checked, keys read at once), and the JWT bearer
//! grant: which JWTs are exchanged for an access token, for whom, for how long, what
//! is audited, and that every other JWT gets the same refusal and counts against the
//! address's failure limit. JWTs are signed here with ES256 keys made for the test;
//! the issuer's JWKS comes from a fetcher that counts its fetches (the loopback
//! issuer over HTTP is the wandb SDK test's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{caller, new_user};

use jsonwebtoken::{Algorithm, EncodingKey};
use keysmith_app::federation::{self, Fetcher, GrantError, IssuerFetcher, JWT_BEARER, NewIssuerRequest};
use keysmith_app::keys::{self, Grace};
use keysmith_app::usage::Client;
use keysmith_app::{Acting, App, AppError, Caller, ManualClock};
use keysmith_core::KeyName;
use keysmith_core::role::OrgRole;
use keysmith_pgtest::issuer::Signer;
use keysmith_store::{AuditQuery, NewServiceAccount, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const NOW: i64 = 1_764_183_600_000;
const ISSUER: &str = "https://tokens.example.com/ci";
const SA_SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";

/// Serves a key set and counts how often it was asked.
struct FakeIssuer {
    jwks: Mutex<serde_json::Value>,
    fetches: AtomicUsize,
    /// Makes each fetch take this long, so that requests overlap one.
    slow_ms: AtomicUsize,
}

#[async_trait::async_trait]
impl IssuerFetcher for FakeIssuer {
    async fn jwks(&self, issuer: &str) -> Result<String, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let slow = self.slow_ms.load(Ordering::SeqCst) as u64;
        if slow > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
        }
        match issuer {
            ISSUER => Ok(self.jwks.lock().unwrap().to_string()),
            other => Err(format!("{other}: could not connect")),
        }
    }
}

struct World {
    app: App,
    admin: Caller,
    member: Caller,
    signer: Signer,
    issuer: Arc<FakeIssuer>,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

/// Organization `default` with `admin`, `alice` (a member, alice@example.com) and the
/// external team service account `ci-bot`; organization `acme` with `bob`.
async fn world(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> World {
    let (org, _) = store
        .bootstrap("default", new_user("admin", Some("admin@example.com")), NOW)
        .await
        .unwrap()
        .unwrap();
    store
        .create_member(
            new_user("alice", Some("Alice@Example.com")),
            org.id,
            OrgRole::Member,
            NOW,
            &[],
        )
        .await
        .unwrap();
    let team = store.create_team(org.id, "vision", NOW, &[]).await.unwrap();
    store
        .create_service_account(
            NewServiceAccount {
                org: org.id,
                team: Some(team.id),
                username: "ci-bot".into(),
                description: String::new(),
                created_by: None,
                external_subject: Some(SA_SUBJECT.into()),
                allowed_networks: None,
            },
            NOW,
            &[],
        )
        .await
        .unwrap();
    let acme = store.create_org("acme", NOW).await.unwrap();
    store
        .create_member(
            new_user("bob", Some("bob@example.com")),
            acme.id,
            OrgRole::Member,
            NOW,
            &[],
        )
        .await
        .unwrap();
    let signer = Signer::new("k1");
    let issuer = Arc::new(FakeIssuer {
        jwks: Mutex::new(serde_json::json!({ "keys": [signer.jwk.clone()] })),
        fetches: AtomicUsize::new(0),
        slow_ms: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(NOW));
    let settings = keysmith_app::Settings {
        issuer_fetcher: Fetcher(issuer.clone()),
        ..Default::default()
    };
    let app = App::new(store, clock.clone(), settings, Arc::default());
    let admin = caller(&app, "admin").await;
    let member = caller(&app, "alice").await;
    World {
        app,
        admin,
        member,
        signer,
        issuer,
        clock,
        _dir: dir,
    }
}

async fn sqlite() -> World {
    let (store, dir) = common::sqlite_store().await;
    world(store, Some(dir)).await
}

fn claims(sub: &str, aud: &str, exp_in_secs: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "sub": sub, "aud": aud,
        "iat": NOW / 1000, "exp": NOW / 1000 + exp_in_secs,
    })
}

impl World {
    async fn register(&self) {
        let acting = Acting::new(&self.admin, "192.0.2.1", NOW);
        let request = NewIssuerRequest {
            issuer: ISSUER.into(),
            audience: None,
        };
        federation::add_issuer(&self.app, &acting, "default", request)
            .await
            .unwrap();
    }

    async fn exchange(&self, assertion: &str, from: &str) -> Result<federation::Grant, GrantError> {
        federation::exchange(&self.app, Some(JWT_BEARER), Some(assertion), from, self.app.now()).await
    }

    /// Who the access token authenticates as now, or why not.
    async fn verify(&self, token: &str) -> Result<String, String> {
        let client = Client {
            address: "192.0.2.200",
            user_agent: "test",
            ip: "192.0.2.200".parse().ok(),
            write: false,
        };
        match self.app.verify_key(token, client).await.unwrap() {
            Ok(verified) => Ok(verified.owner.username.to_string()),
            Err(denied) => Err(format!("{denied:?}")),
        }
    }

    async fn audit(&self, action: &str) -> Vec<keysmith_store::AuditEntry> {
        let org = self.app.store.find_org("default").await.unwrap().unwrap();
        let query = AuditQuery {
            org: Some(org.id),
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        };
        self.app.store.list_audit(&query).await.unwrap()
    }
}

async fn registering_an_issuer(w: World) {
    let add = |caller: &Caller, issuer: &str| {
        let request = NewIssuerRequest {
            issuer: issuer.into(),
            audience: None,
        };
        let caller = caller.clone();
        let app = w.app.clone();
        async move { federation::add_issuer(&app, &Acting::new(&caller, "192.0.2.1", NOW), "default", request).await }
    };
    assert!(matches!(add(&w.member, ISSUER).await, Err(AppError::Forbidden(_))));
    for bad in [
        "ftp://tokens.example.com",
        "http://tokens.example.com",
        "not a url",
        "https://x.example/?a=1",
    ] {
        match add(&w.admin, bad).await {
            Err(AppError::Invalid { field: "issuer", .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    // One the fetcher cannot reach is refused with the reason, and nothing is stored.
    match add(&w.admin, "https://down.example.com").await {
        Err(AppError::Invalid { message, .. }) => assert!(message.contains("could not connect"), "{message}"),
        other => panic!("{other:?}"),
    }
    let added = add(&w.admin, ISSUER).await.unwrap();
    assert_eq!((added.issuer.as_str(), added.audience.as_deref()), (ISSUER, None));
    assert!(matches!(add(&w.admin, ISSUER).await, Err(AppError::AlreadyExists(_))));
    // Loopback may be plain http (a test issuer, a sidecar on the same host).
    assert!(
        !matches!(add(&w.admin, "http://127.0.0.1:9/x").await, Err(AppError::Invalid { field: "issuer", message }) if message.contains("https")),
    );
    let listed = federation::list_issuers(&w.app, &w.admin, "default").await.unwrap();
    assert_eq!(listed.iter().map(|i| i.issuer.as_str()).collect::<Vec<_>>(), [ISSUER]);
    assert!(federation::list_issuers(&w.app, &w.member, "default").await.is_err());
    let entries = w.audit("jwt_issuer.added").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, ISSUER);
    assert_eq!(entries[0].actor_name, "admin");

    let acting = Acting::new(&w.admin, "192.0.2.1", NOW);
    federation::remove_issuer(&w.app, &acting, "default", added.id)
        .await
        .unwrap();
    assert!(matches!(
        federation::remove_issuer(&w.app, &acting, "default", added.id).await,
        Err(AppError::NotFound(keysmith_app::Missing::JwtIssuer))
    ));
    assert_eq!(w.audit("jwt_issuer.removed").await.len(), 1);
}

async fn a_jwt_becomes_an_access_token(w: World) {
    w.register().await;
    // Alice by her email (compared without case), for ten minutes.
    let jwt = w.signer.sign(&claims("alice@example.com", "default", 600));
    let grant = w.exchange(&jwt, "192.0.2.10").await.unwrap();
    assert_eq!(grant.owner.username, "alice");
    assert_eq!(grant.expires_in, 600, "never past the JWT's own expiry");
    assert_eq!(w.verify(grant.access_token.expose()).await, Ok("alice".into()));
    let stored = w.app.store.get_key(&grant.key_id).await.unwrap().unwrap();
    assert_eq!(stored.federated_issuer.as_deref(), Some(ISSUER));
    assert_eq!(stored.name, federation::SESSION_NAME);
    assert_eq!(stored.expires_at, Some(NOW + 600_000));

    // A JWT valid for a day still gives an hour at most.
    let long = w.signer.sign(&claims("alice@example.com", "default", 86_400));
    assert_eq!(w.exchange(&long, "192.0.2.10").await.unwrap().expires_in, 3600);

    // An external service account by its subject.
    let bot = w
        .exchange(&w.signer.sign(&claims(SA_SUBJECT, "default", 600)), "192.0.2.10")
        .await
        .unwrap();
    assert_eq!(bot.owner.username, "ci-bot");
    assert_eq!(w.verify(bot.access_token.expose()).await, Ok("ci-bot".into()));

    // Audited with the issuer and subject, as the identity, never with the JWT.
    let entries = w.audit("federated_session.created").await;
    assert_eq!(entries.len(), 3);
    let first = entries.iter().find(|e| e.target == grant.key_id.as_str()).unwrap();
    assert_eq!(first.actor_name, "alice");
    let detail: serde_json::Value = serde_json::from_str(first.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["issuer"], ISSUER);
    assert_eq!(detail["subject"], "alice@example.com");
    for e in &entries {
        let text = format!("{e:?}");
        assert!(!text.contains(&jwt[jwt.len() - 20..]) && !text.contains(grant.access_token.expose()));
    }
    // Not "expiring soon": a session is short by design.
    let expiring = w
        .app
        .store
        .keys_expiring(NOW, NOW + 7 * 86_400_000, "expiring:7", 100)
        .await
        .unwrap();
    assert!(expiring.is_empty(), "{expiring:?}");

    // It is a session, not a key: no rename, no rotation; deleting ends it at once.
    let acting = Acting::new(&w.member, "192.0.2.10", NOW);
    let name = KeyName::parse("renamed").unwrap();
    assert!(matches!(
        keys::rename(&w.app, &acting, grant.key_id.as_str(), name).await,
        Err(AppError::Invalid { field: "key_id", .. })
    ));
    assert!(matches!(
        keys::rotate(&w.app, &acting, grant.key_id.as_str(), Grace::Now).await,
        Err(AppError::Invalid { field: "key_id", .. })
    ));
    keys::delete(&w.app, &acting, grant.key_id.as_str()).await.unwrap();
    assert!(w.verify(grant.access_token.expose()).await.is_err());

    // A deactivated user's sessions stop at once, and no new one is given.
    let other = w.exchange(&long, "192.0.2.10").await.unwrap();
    assert_eq!(w.verify(other.access_token.expose()).await, Ok("alice".into()));
    let alice = w.app.store.find_user_by_username("alice").await.unwrap().unwrap();
    assert!(w.app.store.set_user_active(alice.id, false, &[]).await.unwrap());
    assert!(w.verify(other.access_token.expose()).await.is_err());
    assert_eq!(
        w.exchange(&long, "192.0.2.10").await.err(),
        Some(GrantError::InvalidGrant)
    );

    // An access token expires by itself.
    w.clock.advance_ms(3_601_000);
    assert!(w.verify(bot.access_token.expose()).await.is_err());
}

async fn every_other_jwt_is_refused_alike(w: World) {
    w.register().await;
    let from = "198.51.100.7";
    let stranger = Signer::new("k1");
    let mut forged_alg = jsonwebtoken::Header::new(Algorithm::HS256);
    forged_alg.kid = Some("k1".into());
    let hs256 = jsonwebtoken::encode(
        &forged_alg,
        &claims("alice@example.com", "default", 600),
        &EncodingKey::from_secret(b"anything"),
    )
    .unwrap();
    let mut other_issuer = claims("alice@example.com", "default", 600);
    other_issuer["iss"] = "https://elsewhere.example.com".into();
    let mut unsigned = w.signer.sign(&claims("alice@example.com", "default", 600));
    unsigned.truncate(unsigned.rfind('.').unwrap() + 1);
    let cases = [
        (
            "wrong audience",
            w.signer.sign(&claims("alice@example.com", "acme", 600)),
        ),
        ("expired", w.signer.sign(&claims("alice@example.com", "default", -120))),
        ("unknown issuer", w.signer.sign(&other_issuer)),
        (
            "signed by another key",
            stranger.sign(&claims("alice@example.com", "default", 600)),
        ),
        (
            "a subject of another organization",
            w.signer.sign(&claims("bob@example.com", "default", 600)),
        ),
        (
            "an unknown subject",
            w.signer.sign(&claims("nobody@example.com", "default", 600)),
        ),
        (
            "the service account's name, not its subject",
            w.signer.sign(&claims("ci-bot", "default", 600)),
        ),
        ("a symmetric algorithm", hs256),
        ("no signature", unsigned),
        ("not a JWT", "wandb_v1_not_a_jwt".into()),
    ];
    for (why, jwt) in &cases {
        assert_eq!(
            w.exchange(jwt, from).await.err(),
            Some(GrantError::InvalidGrant),
            "{why}"
        );
    }
    assert_eq!(
        federation::exchange(&w.app, Some("password"), Some("x"), from, NOW)
            .await
            .err(),
        Some(GrantError::UnsupportedGrantType)
    );
    assert!(matches!(
        federation::exchange(&w.app, Some(JWT_BEARER), None, from, NOW).await,
        Err(GrantError::InvalidRequest(_))
    ));
    // Every refusal counted against the address: the limit (60 a minute) is reached,
    // and then even a good JWT waits; another address is not affected. A success on
    // the way forgives nothing (or one good JWT would reset the budget for guessing).
    let good = w.signer.sign(&claims("alice@example.com", "default", 600));
    assert!(w.exchange(&good, from).await.is_ok());
    for _ in cases.len()..60 {
        assert_eq!(
            w.exchange(&cases[0].1, from).await.err(),
            Some(GrantError::InvalidGrant)
        );
    }
    assert!(matches!(
        w.exchange(&good, from).await,
        Err(GrantError::SlowDown { .. })
    ));
    assert!(w.exchange(&good, "198.51.100.8").await.is_ok());
}

async fn keys_are_fetched_again_when_rotated_but_not_on_every_unknown_key(w: World) {
    w.register().await;
    let after_registration = w.issuer.fetches.load(Ordering::SeqCst);
    let good = w.signer.sign(&claims("alice@example.com", "default", 3000));
    w.exchange(&good, "192.0.2.10").await.unwrap();
    assert_eq!(w.issuer.fetches.load(Ordering::SeqCst), after_registration, "cached");

    // The issuer rotates to k2: a JWT naming k2 makes the keys be read again, once.
    let rotated = Signer::new("k2");
    *w.issuer.jwks.lock().unwrap() = serde_json::json!({ "keys": [w.signer.jwk.clone(), rotated.jwk.clone()] });
    w.clock.advance_ms(31_000);
    let now = w.app.now();
    let mut fresh = claims("alice@example.com", "default", 3000);
    fresh["exp"] = (now / 1000 + 600).into();
    w.exchange(&rotated.sign(&fresh), "192.0.2.10").await.unwrap();
    assert_eq!(w.issuer.fetches.load(Ordering::SeqCst), after_registration + 1);

    // A stranger naming keys the issuer does not have cannot make Keysmith fetch on
    // each request: at most once per 30 seconds.
    for i in 0..5 {
        let unknown = Signer::new(&format!("nope-{i}"));
        assert_eq!(
            w.exchange(&unknown.sign(&fresh), "192.0.2.11").await.err(),
            Some(GrantError::InvalidGrant)
        );
    }
    assert_eq!(w.issuer.fetches.load(Ordering::SeqCst), after_registration + 1);

    // Thirty seconds on, five such requests at once, while the issuer is slow to
    // answer: one of them fetches, the others use the keys known.
    w.clock.advance_ms(31_000);
    w.issuer.slow_ms.store(50, Ordering::SeqCst);
    let unknown: Vec<String> = (0..5).map(|i| Signer::new(&format!("late-{i}")).sign(&fresh)).collect();
    let refused = futures_join(unknown.iter().map(|jwt| w.exchange(jwt, "192.0.2.12"))).await;
    assert!(
        refused
            .iter()
            .all(|r| r.as_ref().err() == Some(&GrantError::InvalidGrant))
    );
    assert_eq!(w.issuer.fetches.load(Ordering::SeqCst), after_registration + 2);
}

/// Runs the futures at once on this task and collects their results in order.
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut results: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => results[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.unwrap()).collect()
}

#[tokio::test]
async fn registering_on_sqlite() {
    registering_an_issuer(sqlite().await).await;
}

#[tokio::test]
async fn exchange_on_sqlite() {
    a_jwt_becomes_an_access_token(sqlite().await).await;
}

#[tokio::test]
async fn refusals_on_sqlite() {
    every_other_jwt_is_refused_alike(sqlite().await).await;
}

#[tokio::test]
async fn key_refresh_on_sqlite() {
    keys_are_fetched_again_when_rotated_but_not_on_every_unknown_key(sqlite().await).await;
}

#[tokio::test]
async fn everything_on_postgresql() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    async fn on(cluster: &keysmith_pgtest::PgCluster) -> World {
        world(common::postgres_store(cluster).await, None).await
    }
    registering_an_issuer(on(&cluster).await).await;
    a_jwt_becomes_an_access_token(on(&cluster).await).await;
    every_other_jwt_is_refused_alike(on(&cluster).await).await;
    keys_are_fetched_again_when_rotated_but_not_on_every_unknown_key(on(&cluster).await).await;
}
