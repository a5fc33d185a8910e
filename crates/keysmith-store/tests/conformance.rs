#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store conformance suite: every case runs on SQLite (one test each, on a fresh
//! database file) and on PostgreSQL (one throwaway cluster per run, a fresh database
//! per case). A backend that differs from the contract fails here.

use keysmith_core::role::{OrgRole, PrincipalKind};
use keysmith_core::{KeyDigest, KeyId, KeyPrefix, generate_legacy, generate_v1};
use keysmith_store::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

fn person(name: &str) -> NewUser {
    NewUser {
        kind: PrincipalKind::User,
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
    }
}

fn new_key(owner: UserId, name: &str, at: i64) -> NewKey {
    let k = generate_v1(&KeyPrefix::default()).unwrap();
    NewKey {
        key_id: k.key_id,
        digest: k.digest,
        format: KeyFormat::V1,
        display: k.display,
        name: name.into(),
        owner,
        created_by: Some(owner),
        created_at: at,
    }
}

async fn bootstrap_creates_the_first_org_and_admin_once(store: Arc<dyn Store>) {
    let (org, admin) = store
        .bootstrap("default", person("admin"), 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.name, "default");
    assert_eq!(admin.username, "admin");
    assert!(admin.active);
    let again = store
        .bootstrap("other", person("admin2"), 2000)
        .await
        .unwrap();
    assert!(
        again.is_none(),
        "a second bootstrap must not create anything"
    );
    let memberships = store.memberships(admin.id).await.unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].org, org);
    assert_eq!(memberships[0].role, OrgRole::Admin);
}

async fn users_are_found_by_username_or_email_ignoring_case(store: Arc<dyn Store>) {
    let alice = store.create_user(person("Alice"), 1).await.unwrap();
    let (by_name, hash) = store.find_user_for_sign_in("alice").await.unwrap().unwrap();
    assert_eq!(by_name, alice);
    assert!(hash.unwrap().starts_with("$argon2id$"));
    let (by_email, _) = store
        .find_user_for_sign_in("ALICE@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id, alice.id);
    assert!(store.find_user_for_sign_in("bob").await.unwrap().is_none());
    assert_eq!(
        store
            .find_user_by_username("ALICE")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert_eq!(store.get_user(alice.id).await.unwrap().unwrap(), alice);
    assert!(
        store
            .get_user(UserId(alice.id.0 + 100))
            .await
            .unwrap()
            .is_none()
    );
}

async fn usernames_and_emails_are_unique(store: Arc<dyn Store>) {
    store.create_user(person("carol"), 1).await.unwrap();
    let dup = store.create_user(person("CAROL"), 2).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let mut other = person("dave");
    other.email = Some("Carol@Example.com".into());
    assert!(matches!(
        store.create_user(other, 3).await,
        Err(StoreError::Conflict(_))
    ));
    let mut no_email = person("erin");
    no_email.email = None;
    store.create_user(no_email, 4).await.unwrap();
    let mut no_email2 = person("frank");
    no_email2.email = None;
    store
        .create_user(no_email2, 5)
        .await
        .expect("several users may have no email");
}

async fn sessions_are_found_until_they_expire_or_are_deleted(store: Arc<dyn Store>) {
    let user = store.create_user(person("sam"), 1).await.unwrap();
    let digest = KeyDigest::of(b"session-token");
    store
        .create_session(NewSession {
            token_digest: digest,
            user_id: user.id,
            created_at: 100,
            expires_at: 200,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .find_session(&digest, 150)
            .await
            .unwrap()
            .unwrap()
            .user_id,
        user.id
    );
    assert!(
        store.find_session(&digest, 200).await.unwrap().is_none(),
        "expired at expires_at"
    );
    assert!(
        store
            .find_session(&KeyDigest::of(b"other"), 150)
            .await
            .unwrap()
            .is_none()
    );
    store.delete_session(&digest).await.unwrap();
    assert!(store.find_session(&digest, 150).await.unwrap().is_none());
    let other = KeyDigest::of(b"old");
    store
        .create_session(NewSession {
            token_digest: other,
            user_id: user.id,
            created_at: 1,
            expires_at: 50,
        })
        .await
        .unwrap();
    assert_eq!(store.delete_expired_sessions(60).await.unwrap(), 1);
}

async fn keys_are_stored_and_found_for_verification(store: Arc<dyn Store>) {
    let owner = store.create_user(person("kim"), 1).await.unwrap();
    let key = new_key(owner.id, "laptop", 10);
    let stored = store.insert_key(key.clone()).await.unwrap();
    assert_eq!(stored.key_id, key.key_id);
    assert_eq!(stored.name, "laptop");
    assert_eq!(stored.owner.username, "kim");
    assert_eq!(stored.owner.kind, PrincipalKind::User);
    assert_eq!(stored.created_by, Some(owner.id));
    assert_eq!(stored.last_used_at, None);
    assert_eq!(stored.format, KeyFormat::V1);
    let auth = store.find_key_for_auth(&key.key_id).await.unwrap().unwrap();
    assert!(auth.digest.ct_eq(&key.digest));
    assert!(auth.owner_active);
    assert_eq!(auth.owner.id, owner.id);
    assert!(
        store
            .find_legacy_key_for_auth(&key.digest)
            .await
            .unwrap()
            .is_none(),
        "v1 keys are found by key ID only"
    );

    let legacy = generate_legacy(None).unwrap();
    store
        .insert_key(NewKey {
            key_id: legacy.key_id.clone(),
            digest: legacy.digest,
            format: KeyFormat::Legacy,
            display: legacy.display.clone(),
            name: "old sdk".into(),
            owner: owner.id,
            created_by: None,
            created_at: 11,
        })
        .await
        .unwrap();
    let auth = store
        .find_legacy_key_for_auth(&legacy.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.key_id, legacy.key_id);
    let shown = store.get_key(&legacy.key_id).await.unwrap().unwrap();
    assert_eq!(shown.display, legacy.display);
    assert_eq!(shown.format, KeyFormat::Legacy);

    let mut dup = new_key(owner.id, "dup", 12);
    dup.key_id = key.key_id.clone();
    assert!(matches!(
        store.insert_key(dup).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn lists_page_newest_first_with_a_stable_cursor(store: Arc<dyn Store>) {
    let owner = store.create_user(person("lee"), 1).await.unwrap();
    let other = store.create_user(person("max"), 1).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..7 {
        // Two keys share each timestamp, so the key ID must break ties.
        let k = store
            .insert_key(new_key(owner.id, &format!("k{i}"), 100 + i / 2))
            .await
            .unwrap();
        expected.push(k.key_id);
        store
            .insert_key(new_key(other.id, "not mine", 100))
            .await
            .unwrap();
    }
    expected.sort_by(|a, b| b.cmp(a));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_keys(&KeyListQuery {
                owner: owner.id,
                after: after.clone(),
                limit: 3,
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|k| k.owner.id == owner.id));
        let last = page.last().unwrap();
        after = Some(KeyCursor {
            created_at: last.created_at,
            key_id: last.key_id.as_str().into(),
        });
        seen.extend(page.into_iter().map(|k| (k.created_at, k.key_id)));
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        seen, sorted,
        "newest first, key ID descending within a millisecond"
    );
}

async fn keys_are_renamed_and_deleted(store: Arc<dyn Store>) {
    let owner = store.create_user(person("ned"), 1).await.unwrap();
    let key = store
        .insert_key(new_key(owner.id, "before", 1))
        .await
        .unwrap();
    let renamed = store
        .rename_key(&key.key_id, "after")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "after");
    let missing = KeyId::parse("wandb_v1_000000000000000000000000000").unwrap();
    assert!(store.rename_key(&missing, "x").await.unwrap().is_none());
    assert!(store.delete_key(&key.key_id).await.unwrap());
    assert!(
        !store.delete_key(&key.key_id).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(
        store
            .find_key_for_auth(&key.key_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_key(&key.key_id).await.unwrap().is_none());
}

async fn last_use_is_recorded_in_batches_and_never_moves_backwards(store: Arc<dyn Store>) {
    let owner = store.create_user(person("ola"), 1).await.unwrap();
    let a = store.insert_key(new_key(owner.id, "a", 1)).await.unwrap();
    let b = store.insert_key(new_key(owner.id, "b", 1)).await.unwrap();
    store
        .record_key_use(&[(a.key_id.clone(), 500), (b.key_id.clone(), 600)])
        .await
        .unwrap();
    store
        .record_key_use(&[(a.key_id.clone(), 400)])
        .await
        .unwrap();
    store.record_key_use(&[]).await.unwrap();
    assert_eq!(
        store
            .get_key(&a.key_id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(500)
    );
    assert_eq!(
        store
            .get_key(&b.key_id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(600)
    );
}

async fn org_membership_is_recorded_with_its_role(store: Arc<dyn Store>) {
    let (org, _) = store
        .bootstrap("acme", person("root"), 1)
        .await
        .unwrap()
        .unwrap();
    let member = store.create_user(person("pat"), 2).await.unwrap();
    store
        .add_org_member(org.id, member.id, OrgRole::Member, 3)
        .await
        .unwrap();
    let m = store.memberships(member.id).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].role, OrgRole::Member);
    assert!(matches!(
        store
            .add_org_member(org.id, member.id, OrgRole::Admin, 4)
            .await,
        Err(StoreError::Conflict(_))
    ));
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($case), |s| Box::pin($case(s)))),*];

        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = keysmith_store::SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
                    super::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    bootstrap_creates_the_first_org_and_admin_once,
    users_are_found_by_username_or_email_ignoring_case,
    usernames_and_emails_are_unique,
    sessions_are_found_until_they_expire_or_are_deleted,
    keys_are_stored_and_found_for_verification,
    lists_page_newest_first_with_a_stable_cursor,
    keys_are_renamed_and_deleted,
    last_use_is_recorded_in_batches_and_never_moves_backwards,
    org_membership_is_recorded_with_its_role,
);

/// One cluster for the whole suite; a fresh database for each case.
#[tokio::test]
async fn postgres_passes_every_conformance_case() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    for (name, case) in CASES {
        let url = cluster.create_database().unwrap();
        let store = keysmith_store::PostgresStore::open(&url).await.unwrap();
        eprintln!("postgres: {name}");
        case(Arc::new(store)).await;
    }
}

#[tokio::test]
async fn open_chooses_the_backend_by_url_and_explains_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    assert_eq!(open(&url).await.unwrap().backend(), Backend::Sqlite);
    let err = open("mysql://localhost/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unsupported database URL scheme `mysql`"),
        "{err}"
    );
    let err = open("sqlite://").await.err().unwrap().to_string();
    assert!(err.contains("names no file"), "{err}");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = keysmith_store::SqliteStore::open(&path).await.unwrap();
    store.create_user(person("wal"), 1).await.unwrap();
    assert!(
        dir.path().join("k.db-wal").exists(),
        "WAL file missing: journal_mode is not WAL"
    );
    assert_eq!(store.pragma("journal_mode").await.unwrap(), "wal");
    // synchronous: 2 = FULL
    assert_eq!(store.pragma("synchronous").await.unwrap(), "2");
}
