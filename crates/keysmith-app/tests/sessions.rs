//! Sign-in sessions at the application: warm, a session is answered from memory; it
//! stops at its expiry, at sign-out, and when its user is deactivated, deleted or has
//! their password reset, each the moment the change commits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::new_user;

use keysmith_app::{App, ManualClock, sessions};
use keysmith_core::KeyDigest;
use keysmith_core::role::OrgRole;
use keysmith_store::{NewSession, SqliteStore, Store};
use std::sync::Arc;

const NOW: i64 = 1_764_183_600_000;
const HOUR: i64 = 3_600_000;

async fn start(app: &App, username: &str, token: &[u8]) -> KeyDigest {
    let user = app.store.find_user_by_username(username).await.unwrap().unwrap();
    let digest = KeyDigest::of(token);
    app.store
        .create_session(NewSession {
            token_digest: digest,
            user_id: user.id,
            created_at: app.now(),
            expires_at: app.now() + HOUR,
        })
        .await
        .unwrap();
    digest
}

/// The session's username, and whether the answer read the database.
async fn who(app: &App, digest: &KeyDigest) -> (Option<String>, bool) {
    let misses = app.sessions.counters().misses.get();
    let user = sessions::user(app, digest).await.unwrap().map(|u| u.username);
    (user, app.sessions.counters().misses.get() > misses)
}

#[tokio::test]
async fn sessions_are_served_from_memory_and_end_the_moment_they_are_ended() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("k.db")).await.unwrap());
    let (org, _) = store
        .bootstrap("default", new_user("admin", None), NOW)
        .await
        .unwrap()
        .unwrap();
    for name in ["ada", "bob", "cy"] {
        store
            .create_member(new_user(name, None), org.id, OrgRole::Member, NOW, &[])
            .await
            .unwrap();
    }
    let clock = ManualClock::new(NOW);
    let app = App::new(
        store,
        Arc::new(clock.clone()),
        keysmith_app::Settings::default(),
        Arc::default(),
    );

    let ada = start(&app, "ada", b"ada's token").await;
    assert_eq!(who(&app, &ada).await, (Some("ada".into()), true), "cold: read");
    assert_eq!(who(&app, &ada).await, (Some("ada".into()), false), "warm: from memory");
    assert_eq!(
        who(&app, &KeyDigest::of(b"no such token")).await,
        (None, true),
        "an unknown token is read, and refused"
    );

    // Signing out ends it at once.
    sessions::end(&app, &ada).await.unwrap();
    assert_eq!(who(&app, &ada).await.0, None, "signed out");

    // Deactivating its user ends it at once; reactivating does not bring it back
    // (deactivation deleted the session).
    let bob = start(&app, "bob", b"bob's token").await;
    assert_eq!(who(&app, &bob).await.0, Some("bob".into()));
    assert!(!who(&app, &bob).await.1, "warm");
    let bob_id = app.store.find_user_by_username("bob").await.unwrap().unwrap().id;
    app.store.set_user_active(bob_id, false, &[]).await.unwrap();
    assert_eq!(who(&app, &bob).await.0, None, "deactivated");
    app.store.set_user_active(bob_id, true, &[]).await.unwrap();
    assert_eq!(who(&app, &bob).await.0, None, "the session ended with the deactivation");

    // An operator's password reset ends every session of the user.
    let cy = start(&app, "cy", b"cy's token").await;
    let cy_too = start(&app, "cy", b"cy's other token").await;
    assert_eq!(who(&app, &cy).await.0, Some("cy".into()));
    assert_eq!(who(&app, &cy_too).await.0, Some("cy".into()));
    let cy_id = app.store.find_user_by_username("cy").await.unwrap().unwrap().id;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA";
    assert!(app.store.reset_password(cy_id, hash, NOW, &[]).await.unwrap());
    assert_eq!(who(&app, &cy).await.0, None, "reset");
    assert_eq!(who(&app, &cy_too).await.0, None, "every session of theirs");

    // A session's own expiry holds in memory, too.
    let again = start(&app, "cy", b"cy's third token").await;
    assert_eq!(who(&app, &again).await.0, Some("cy".into()));
    clock.advance_ms(HOUR - 1);
    assert_eq!(
        who(&app, &again).await,
        (Some("cy".into()), true),
        "re-read after the cache's bound"
    );
    assert_eq!(who(&app, &again).await, (Some("cy".into()), false));
    clock.advance_ms(1);
    assert_eq!(who(&app, &again).await.0, None, "expired");

    // Deleting the user ends it too.
    let last = start(&app, "ada", b"ada's second token").await;
    assert_eq!(who(&app, &last).await.0, Some("ada".into()));
    let ada_id = app.store.find_user_by_username("ada").await.unwrap().unwrap().id;
    assert!(app.store.delete_user(ada_id, &[]).await.unwrap());
    assert_eq!(who(&app, &last).await.0, None, "deleted");
}
