#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store conformance suite: every case runs on SQLite (one test each, on a fresh
//! database file) and on PostgreSQL (one throwaway cluster per run, a fresh database
//! per case). A backend that differs from the contract fails here.

use keysmith_core::policy::OwnerScope;
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{KeyDigest, KeyId, KeyPrefix, KeyScope, OrgId, TeamId, generate_legacy, generate_v1};
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
        expires_at: None,
        rotated_from: None,
        federated_issuer: None,
        scope: keysmith_core::KeyScope::Admin,
        allowed_networks: None,
        requests_per_minute: None,
    }
}

fn own_keys(owner: UserId, after: Option<KeyCursor>, limit: u32) -> KeyListQuery {
    KeyListQuery {
        visibility: Visibility::own(owner),
        filter: KeyFilter::default(),
        sort: KeySort::Created,
        after,
        limit,
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
    let again = store.bootstrap("other", person("admin2"), 2000).await.unwrap();
    assert!(again.is_none(), "a second bootstrap must not create anything");
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
    let (by_email, _) = store.find_user_for_sign_in("ALICE@example.com").await.unwrap().unwrap();
    assert_eq!(by_email.id, alice.id);
    assert!(store.find_user_for_sign_in("bob").await.unwrap().is_none());
    assert_eq!(
        store.find_user_by_username("ALICE").await.unwrap().unwrap().id,
        alice.id
    );
    assert_eq!(store.get_user(alice.id).await.unwrap().unwrap(), alice);
    assert!(store.get_user(UserId(alice.id.0 + 100)).await.unwrap().is_none());
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
        store.find_session(&digest, 150).await.unwrap().unwrap().user_id,
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
    let stored = store.insert_key(key.clone(), &[]).await.unwrap();
    assert_eq!(stored.key_id, key.key_id);
    assert_eq!(stored.name, "laptop");
    assert_eq!(stored.owner.username, "kim");
    assert_eq!(stored.owner.kind, PrincipalKind::User);
    assert_eq!(stored.created_by.as_ref().map(|c| c.id), Some(owner.id));
    assert_eq!(stored.last_used_at, None);
    assert_eq!(stored.format, KeyFormat::V1);
    let auth = store.find_key_for_auth(&key.key_id).await.unwrap().unwrap();
    assert!(auth.digest.ct_eq(&key.digest));
    assert!(auth.owner_active);
    assert_eq!(auth.owner.id, owner.id);
    assert!(
        store.find_legacy_key_for_auth(&key.digest).await.unwrap().is_none(),
        "v1 keys are found by key ID only"
    );

    let legacy = generate_legacy(None).unwrap();
    store
        .insert_key(
            NewKey {
                key_id: legacy.key_id.clone(),
                digest: legacy.digest,
                format: KeyFormat::Legacy,
                display: legacy.display.clone(),
                name: "old sdk".into(),
                owner: owner.id,
                created_by: None,
                created_at: 11,
                expires_at: None,
                rotated_from: None,
                federated_issuer: None,
                scope: keysmith_core::KeyScope::Admin,
                allowed_networks: None,
                requests_per_minute: None,
            },
            &[],
        )
        .await
        .unwrap();
    let auth = store.find_legacy_key_for_auth(&legacy.digest).await.unwrap().unwrap();
    assert_eq!(auth.key_id, legacy.key_id);
    let shown = store.get_key(&legacy.key_id).await.unwrap().unwrap();
    assert_eq!(shown.display, legacy.display);
    assert_eq!(shown.format, KeyFormat::Legacy);

    let mut dup = new_key(owner.id, "dup", 12);
    dup.key_id = key.key_id.clone();
    assert!(matches!(store.insert_key(dup, &[]).await, Err(StoreError::Conflict(_))));
}

async fn keys_keep_the_scope_they_were_made_with(store: Arc<dyn Store>) {
    let owner = store.create_user(person("sky"), 1).await.unwrap();
    for scope in keysmith_core::KeyScope::ALL {
        let mut key = new_key(owner.id, scope.as_str(), 10);
        key.scope = scope;
        let stored = store.insert_key(key.clone(), &[]).await.unwrap();
        assert_eq!(stored.scope, scope);
        assert_eq!(store.get_key(&key.key_id).await.unwrap().unwrap().scope, scope);
        let auth = store.find_key_for_auth(&key.key_id).await.unwrap().unwrap();
        assert_eq!(auth.scope, scope, "verification reads the scope with the key");
        let page = store.list_keys(&own_keys(owner.id, None, 10)).await.unwrap();
        assert!(page.iter().any(|k| k.key_id == key.key_id && k.scope == scope));
    }
}

async fn allowlists_travel_with_the_key_and_an_org_change_invalidates_its_owners(store: Arc<dyn Store>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    store.on_invalidation(Box::new(move |i| sink.lock().unwrap().push(i.clone())));
    let org = store.create_org("acme", 1).await.unwrap();
    let other = store.create_org("zeta", 1).await.unwrap();
    let user = store.create_user(person("nia"), 1).await.unwrap();
    for o in [org.id, other.id] {
        store.add_org_member(o, user.id, OrgRole::Member, 1, &[]).await.unwrap();
    }
    let mut key = new_key(user.id, "office", 1);
    key.allowed_networks = Some("198.51.100.0/24,2001:db8::/32".into());
    let stored = store.insert_key(key.clone(), &[]).await.unwrap();
    assert_eq!(
        stored.allowed_networks.as_deref(),
        Some("198.51.100.0/24,2001:db8::/32")
    );
    let auth = store.find_key_for_auth(&key.key_id).await.unwrap().unwrap();
    assert_eq!(auth.key_networks.as_deref(), Some("198.51.100.0/24,2001:db8::/32"));
    assert!(auth.org_networks.is_empty(), "no organization restricts it yet");

    seen.lock().unwrap().clear();
    for (o, list) in [(org.id, "10.0.0.0/8"), (other.id, "10.1.0.0/16,192.0.2.1/32")] {
        let settings = OrgSettings {
            allowed_networks: Some(Some(list.into())),
            ..OrgSettings::default()
        };
        let changed = store.update_org_settings(o, settings, &[]).await.unwrap();
        assert_eq!(changed.allowed_networks.as_deref(), Some(list));
    }
    assert!(
        seen.lock().unwrap().contains(&Invalidation::Owner(user.id)),
        "every member's cached keys are stale"
    );
    let mut lists = store
        .find_key_for_auth(&key.key_id)
        .await
        .unwrap()
        .unwrap()
        .org_networks;
    lists.sort();
    assert_eq!(
        lists,
        ["10.0.0.0/8", "10.1.0.0/16,192.0.2.1/32"],
        "each organization's list, whole"
    );
    let untouched = OrgSettings {
        sso_required: Some(false),
        ..OrgSettings::default()
    };
    let kept = store.update_org_settings(org.id, untouched, &[]).await.unwrap();
    assert_eq!(
        kept.allowed_networks.as_deref(),
        Some("10.0.0.0/8"),
        "other settings leave it alone"
    );
    let lifted = OrgSettings {
        allowed_networks: Some(None),
        ..OrgSettings::default()
    };
    assert_eq!(
        store
            .update_org_settings(org.id, lifted, &[])
            .await
            .unwrap()
            .allowed_networks,
        None
    );
    let lists = store
        .find_key_for_auth(&key.key_id)
        .await
        .unwrap()
        .unwrap()
        .org_networks;
    assert_eq!(lists, ["10.1.0.0/16,192.0.2.1/32"]);
}

async fn lists_page_newest_first_with_a_stable_cursor(store: Arc<dyn Store>) {
    let owner = store.create_user(person("lee"), 1).await.unwrap();
    let other = store.create_user(person("max"), 1).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..7 {
        // Two keys share each timestamp, so the key ID must break ties.
        let k = store
            .insert_key(new_key(owner.id, &format!("k{i}"), 100 + i / 2), &[])
            .await
            .unwrap();
        expected.push(k.key_id);
        store.insert_key(new_key(other.id, "not mine", 100), &[]).await.unwrap();
    }
    expected.sort_by(|a, b| b.cmp(a));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_keys(&own_keys(owner.id, after.clone(), 3)).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|k| k.owner.id == owner.id));
        let last = page.last().unwrap();
        after = Some(KeyCursor {
            value: last.created_at,
            key_id: last.key_id.as_str().into(),
        });
        seen.extend(page.into_iter().map(|k| (k.created_at, k.key_id)));
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, key ID descending within a millisecond");
}

async fn keys_are_renamed_and_deleted(store: Arc<dyn Store>) {
    let owner = store.create_user(person("ned"), 1).await.unwrap();
    let key = store.insert_key(new_key(owner.id, "before", 1), &[]).await.unwrap();
    let renamed = store.rename_key(&key.key_id, "after", &[]).await.unwrap().unwrap();
    assert_eq!(renamed.name, "after");
    let missing = KeyId::parse("wandb_v1_000000000000000000000000000").unwrap();
    assert!(store.rename_key(&missing, "x", &[]).await.unwrap().is_none());
    assert!(store.delete_key(&key.key_id, &[]).await.unwrap());
    assert!(
        !store.delete_key(&key.key_id, &[]).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(store.find_key_for_auth(&key.key_id).await.unwrap().is_none());
    assert!(store.get_key(&key.key_id).await.unwrap().is_none());
}

async fn last_use_is_recorded_in_batches_and_never_moves_backwards(store: Arc<dyn Store>) {
    let owner = store.create_user(person("ola"), 1).await.unwrap();
    let a = store.insert_key(new_key(owner.id, "a", 1), &[]).await.unwrap();
    let b = store.insert_key(new_key(owner.id, "b", 1), &[]).await.unwrap();
    store
        .record_key_use(&[(a.key_id.clone(), 500), (b.key_id.clone(), 600)])
        .await
        .unwrap();
    store.record_key_use(&[(a.key_id.clone(), 400)]).await.unwrap();
    store.record_key_use(&[]).await.unwrap();
    assert_eq!(store.get_key(&a.key_id).await.unwrap().unwrap().last_used_at, Some(500));
    assert_eq!(store.get_key(&b.key_id).await.unwrap().unwrap().last_used_at, Some(600));
}

async fn org_membership_is_recorded_with_its_role(store: Arc<dyn Store>) {
    let (org, _) = store.bootstrap("acme", person("root"), 1).await.unwrap().unwrap();
    let member = store.create_user(person("pat"), 2).await.unwrap();
    store
        .add_org_member(org.id, member.id, OrgRole::Member, 3, &[])
        .await
        .unwrap();
    let m = store.memberships(member.id).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].role, OrgRole::Member);
    assert!(matches!(
        store.add_org_member(org.id, member.id, OrgRole::Admin, 4, &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn an_operator_resets_a_password_and_unlocks_sign_in_with_an_audit_entry(store: Arc<dyn Store>) {
    let (org, admin) = store.bootstrap("acme", person("root"), 1).await.unwrap().unwrap();
    assert_eq!(store.sign_in_unlocked_at(admin.id).await.unwrap(), None);
    let digest = KeyDigest::of(b"root-session");
    store
        .create_session(NewSession {
            token_digest: digest,
            user_id: admin.id,
            created_at: 1,
            expires_at: 10_000,
        })
        .await
        .unwrap();

    assert!(
        store
            .unlock_sign_in(admin.id, 50, &[entry(org.id, "user.sign_in_unlocked", "root")])
            .await
            .unwrap()
    );
    assert_eq!(store.sign_in_unlocked_at(admin.id).await.unwrap(), Some(50));
    assert!(
        store.find_session(&digest, 60).await.unwrap().is_some(),
        "unlocking ends no session"
    );

    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA";
    assert!(
        store
            .reset_password(admin.id, new_hash, 70, &[entry(org.id, "user.password_reset", "root")])
            .await
            .unwrap()
    );
    let (_, hash) = store.find_user_for_sign_in("root").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some(new_hash));
    assert_eq!(store.sign_in_unlocked_at(admin.id).await.unwrap(), Some(70));
    assert!(
        store.find_session(&digest, 80).await.unwrap().is_none(),
        "a reset password ends every session of the user"
    );
    let actions: Vec<String> = store
        .list_audit(&AuditQuery {
            org: Some(org.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["user.password_reset", "user.sign_in_unlocked"]);

    let bot = store
        .create_user(
            NewUser {
                kind: PrincipalKind::ServiceAccount,
                username: "bot".into(),
                email: None,
                password_hash: None,
            },
            1,
        )
        .await
        .unwrap();
    assert!(
        !store.reset_password(bot.id, new_hash, 90, &[]).await.unwrap(),
        "a service account has no password to reset"
    );
    assert!(!store.unlock_sign_in(UserId(9_999), 90, &[]).await.unwrap());
    store.check_writable().await.unwrap();
}

fn entry(org: OrgId, action: &str, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        org,
        at: 42,
        actor: None,
        action: action.into(),
        target_kind: "test".into(),
        target: target.into(),
        source_address: Some("127.0.0.1".into()),
        detail: None,
    }
}

/// An org with an admin, a team admin of `red`, a member of `red`, a member of no team,
/// a service account of `red`, one of `blue`, and an org-scoped one; each owns one key.
struct World {
    org: Org,
    red: Team,
    blue: Team,
    admin: UserId,
    red_admin: UserId,
    red_member: UserId,
    loner: UserId,
    red_sa: UserId,
    blue_sa: UserId,
    org_sa: UserId,
    outsider: UserId,
    keys: std::collections::BTreeMap<&'static str, KeyId>,
}

async fn world(store: &dyn Store) -> World {
    let (org, admin) = store.bootstrap("acme", person("root"), 1).await.unwrap().unwrap();
    let other_org = store.create_org("other", 1).await.unwrap();
    let red = store.create_team(org.id, "red", 2, &[]).await.unwrap();
    let blue = store.create_team(org.id, "blue", 2, &[]).await.unwrap();
    let member = |name: &'static str| {
        let store = &store;
        async move {
            store
                .create_member(person(name), org.id, OrgRole::Member, 3, &[])
                .await
                .unwrap()
                .id
        }
    };
    let red_admin = member("redadmin").await;
    let red_member = member("redmember").await;
    let loner = member("loner").await;
    store
        .set_team_member(red.id, red_admin, TeamRole::Admin, 4, &[])
        .await
        .unwrap();
    store
        .set_team_member(red.id, red_member, TeamRole::Member, 4, &[])
        .await
        .unwrap();
    let sa = |name: &str, team: Option<TeamId>| NewServiceAccount {
        org: org.id,
        team,
        username: name.into(),
        description: format!("{name} bot"),
        created_by: Some(admin.id),
        external_subject: None,
        allowed_networks: None,
    };
    let red_sa = store
        .create_service_account(sa("red-bot", Some(red.id)), 5, &[])
        .await
        .unwrap()
        .user
        .id;
    let blue_sa = store
        .create_service_account(sa("blue-bot", Some(blue.id)), 5, &[])
        .await
        .unwrap()
        .user
        .id;
    let org_sa = store
        .create_service_account(sa("org-bot", None), 5, &[])
        .await
        .unwrap()
        .user
        .id;
    let outsider = store
        .create_member(person("outsider"), other_org.id, OrgRole::Admin, 3, &[])
        .await
        .unwrap()
        .id;
    let mut keys = std::collections::BTreeMap::new();
    for (i, (name, owner)) in [
        ("admin", admin.id),
        ("redadmin", red_admin),
        ("redmember", red_member),
        ("loner", loner),
        ("red-bot", red_sa),
        ("blue-bot", blue_sa),
        ("org-bot", org_sa),
        ("outsider", outsider),
    ]
    .into_iter()
    .enumerate()
    {
        let k = store
            .insert_key(new_key(owner, &format!("{name} key"), 10 + i as i64), &[])
            .await
            .unwrap();
        keys.insert(name, k.key_id);
    }
    World {
        org,
        red,
        blue,
        admin: admin.id,
        red_admin,
        red_member,
        loner,
        red_sa,
        blue_sa,
        org_sa,
        outsider,
        keys,
    }
}

async fn listed(store: &dyn Store, visibility: Visibility, filter: KeyFilter) -> Vec<String> {
    let query = KeyListQuery {
        visibility,
        filter,
        sort: KeySort::Created,
        after: None,
        limit: 100,
    };
    let mut names: Vec<String> = store
        .list_keys(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.owner.username)
        .collect();
    names.sort();
    names
}

async fn lists_show_each_role_exactly_the_keys_it_may_see(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let roles = s.roles(w.admin).await.unwrap();
    assert!(roles.is_org_admin(w.org.id));
    let as_admin = Visibility {
        caller: Some(w.admin),
        admin_orgs: roles.admin_of_orgs.into_iter().collect(),
        admin_teams: vec![],
    };
    assert_eq!(
        listed(s, as_admin.clone(), KeyFilter::default()).await,
        [
            "blue-bot",
            "loner",
            "org-bot",
            "red-bot",
            "redadmin",
            "redmember",
            "root"
        ],
        "org admins see every key of their org and nothing of another"
    );
    let roles = s.roles(w.red_admin).await.unwrap();
    assert_eq!(roles.admin_of_teams.iter().copied().collect::<Vec<_>>(), vec![w.red.id]);
    let as_red_admin = Visibility {
        caller: Some(w.red_admin),
        admin_orgs: vec![],
        admin_teams: vec![w.red.id],
    };
    assert_eq!(
        listed(s, as_red_admin, KeyFilter::default()).await,
        ["red-bot", "redadmin"]
    );
    assert_eq!(
        listed(s, Visibility::own(w.loner), KeyFilter::default()).await,
        ["loner"]
    );
    assert_eq!(
        listed(s, Visibility::default(), KeyFilter::default()).await,
        Vec::<String>::new()
    );

    let only = |f: KeyFilter| listed(s, as_admin.clone(), f);
    assert_eq!(
        only(KeyFilter {
            owner_kind: Some(PrincipalKind::ServiceAccount),
            ..Default::default()
        })
        .await,
        ["blue-bot", "org-bot", "red-bot"]
    );
    assert_eq!(
        only(KeyFilter {
            team: Some(w.red.id),
            ..Default::default()
        })
        .await,
        ["red-bot", "redadmin", "redmember"]
    );
    assert_eq!(
        only(KeyFilter {
            owner: Some(w.loner),
            ..Default::default()
        })
        .await,
        ["loner"]
    );
    assert_eq!(
        only(KeyFilter {
            name_contains: Some("BOT K".into()),
            ..Default::default()
        })
        .await,
        ["blue-bot", "org-bot", "red-bot"]
    );
    assert_eq!(
        only(KeyFilter {
            name_contains: Some("%".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "LIKE wildcards are escaped"
    );
    assert_eq!(
        only(KeyFilter {
            org: Some(w.org.id),
            owner: Some(w.outsider),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );

    s.record_key_use(&[(w.keys["loner"].clone(), 500), (w.keys["red-bot"].clone(), 900)])
        .await
        .unwrap();
    assert_eq!(
        only(KeyFilter {
            last_used_after: Some(600),
            ..Default::default()
        })
        .await,
        ["red-bot"]
    );
    assert_eq!(
        only(KeyFilter {
            last_used_before: Some(600),
            ..Default::default()
        })
        .await,
        ["loner"]
    );
    let by_use = KeyListQuery {
        visibility: as_admin.clone(),
        filter: KeyFilter::default(),
        sort: KeySort::LastUsed,
        after: None,
        limit: 2,
    };
    let page = s.list_keys(&by_use).await.unwrap();
    assert_eq!(
        page.iter().map(|k| k.owner.username.as_str()).collect::<Vec<_>>(),
        ["red-bot", "loner"]
    );
    let rest = KeyListQuery {
        after: Some(KeyCursor {
            value: 500,
            key_id: page[1].key_id.as_str().into(),
        }),
        limit: 100,
        ..by_use
    };
    let rest = s.list_keys(&rest).await.unwrap();
    assert_eq!(rest.len(), 5, "never-used keys come last");
    assert!(rest.iter().all(|k| k.last_used_at.is_none()));
}

async fn service_accounts_have_a_scope_and_no_password(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let red_sa = s.get_service_account(w.red_sa).await.unwrap().unwrap();
    assert_eq!(red_sa.user.kind, PrincipalKind::ServiceAccount);
    assert_eq!(red_sa.team.as_ref().map(|t| t.name.as_str()), Some("red"));
    assert_eq!(red_sa.description, "red-bot bot");
    let (_, hash) = s.find_user_for_sign_in("red-bot").await.unwrap().unwrap();
    assert!(hash.is_none(), "service accounts have no password");
    assert_eq!(
        s.owner_scope(w.red_sa).await.unwrap(),
        Some(OwnerScope::TeamServiceAccount {
            org: w.org.id,
            team: w.red.id
        })
    );
    assert_eq!(
        s.owner_scope(w.org_sa).await.unwrap(),
        Some(OwnerScope::OrgServiceAccount { org: w.org.id })
    );
    assert_eq!(
        s.owner_scope(w.loner).await.unwrap(),
        Some(OwnerScope::User { orgs: vec![w.org.id] })
    );
    assert_eq!(s.owner_scope(UserId(9999)).await.unwrap(), None);
    let names = |v: Vec<ServiceAccount>| v.into_iter().map(|a| a.user.username).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_service_accounts(w.org.id, None).await.unwrap()),
        ["blue-bot", "org-bot", "red-bot"]
    );
    assert_eq!(
        names(s.list_service_accounts(w.org.id, Some(w.blue.id)).await.unwrap()),
        ["blue-bot"]
    );
    assert!(
        !s.set_password(w.red_sa, "$argon2id$x").await.unwrap(),
        "a service account never gets a password"
    );
    let _ = w.blue_sa;
}

async fn teams_have_unique_names_and_members_with_roles(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    assert!(matches!(
        s.create_team(w.org.id, "RED", 9, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.find_team(w.org.id, "Red").await.unwrap().unwrap().id, w.red.id);
    assert_eq!(s.list_teams(w.org.id).await.unwrap().len(), 2);
    let members = s.team_members(w.red.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user.username.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("redadmin", TeamRole::Admin), ("redmember", TeamRole::Member)]
    );
    s.set_team_member(w.red.id, w.red_member, TeamRole::Admin, 9, &[])
        .await
        .unwrap();
    assert!(s.roles(w.red_member).await.unwrap().is_team_admin(w.red.id));
    assert!(s.remove_team_member(w.red.id, w.red_member, &[]).await.unwrap());
    assert!(!s.remove_team_member(w.red.id, w.red_member, &[]).await.unwrap());
    assert_eq!(s.user_teams(w.red_admin).await.unwrap()[0].1, TeamRole::Admin);
}

/// What a change of roles or users came to: done (`true`: something changed) or
/// refused by a rule; any other failure fails the test.
fn refused(err: StoreError) -> Refused {
    match err {
        StoreError::Refused(refused) => refused,
        other => panic!("the store failed: {other}"),
    }
}

async fn the_last_active_admin_cannot_be_demoted_removed_deactivated_or_deleted(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    assert_eq!(
        s.set_org_role(w.org.id, w.admin, OrgRole::Member, &[])
            .await
            .map_err(refused),
        Err(Refused::LastAdmin)
    );
    assert_eq!(
        s.remove_org_member(w.org.id, w.admin, &[]).await.map_err(refused),
        Err(Refused::LastAdmin)
    );
    assert_eq!(
        s.set_user_active(w.admin, false, &[]).await.map_err(refused),
        Err(Refused::LastAdmin)
    );
    assert_eq!(
        s.delete_user(w.admin, &[]).await.map_err(refused),
        Err(Refused::LastAdmin)
    );
    // A second admin who is deactivated does not count.
    assert_eq!(
        s.set_org_role(w.org.id, w.loner, OrgRole::Admin, &[])
            .await
            .map_err(refused),
        Ok(true)
    );
    assert_eq!(s.set_user_active(w.loner, false, &[]).await.map_err(refused), Ok(true));
    assert_eq!(
        s.set_org_role(w.org.id, w.admin, OrgRole::Member, &[])
            .await
            .map_err(refused),
        Err(Refused::LastAdmin)
    );
    assert_eq!(s.set_user_active(w.loner, true, &[]).await.map_err(refused), Ok(true));
    assert_eq!(
        s.set_org_role(w.org.id, w.admin, OrgRole::Member, &[])
            .await
            .map_err(refused),
        Ok(true)
    );
    assert_eq!(
        s.set_org_role(w.org.id, w.loner, OrgRole::Member, &[])
            .await
            .map_err(refused),
        Err(Refused::LastAdmin)
    );
    assert_eq!(
        s.set_org_role(w.org.id, UserId(9999), OrgRole::Member, &[])
            .await
            .map_err(refused),
        Ok(false)
    );
}

/// Writers that read before they write (the last-admin checks do) wait for each other
/// instead of failing: on SQLite a deferred transaction that tries to upgrade to a
/// write while another connection writes fails at once with "database is locked".
async fn concurrent_read_then_write_transactions_wait_their_turn(store: Arc<dyn Store>) {
    let org = store.create_org("acme", 1).await.unwrap();
    let mut users = Vec::new();
    for i in 0..24 {
        let user = store.create_user(person(&format!("u{i}")), 1).await.unwrap();
        store
            .add_org_member(org.id, user.id, OrgRole::Admin, 1, &[])
            .await
            .unwrap();
        users.push(user.id);
    }
    // Each task demotes one admin, then deactivates and reactivates them: every step
    // counts the remaining admins first. One admin is left alone so none is refused.
    let tasks: Vec<_> = users[1..]
        .iter()
        .map(|&user| {
            let store = store.clone();
            let org = org.id;
            tokio::spawn(async move {
                for _ in 0..3 {
                    assert_eq!(
                        store
                            .set_org_role(org, user, OrgRole::Member, &[])
                            .await
                            .map_err(refused),
                        Ok(true)
                    );
                    assert_eq!(store.set_user_active(user, false, &[]).await.map_err(refused), Ok(true));
                    assert_eq!(store.set_user_active(user, true, &[]).await.map_err(refused), Ok(true));
                    assert_eq!(
                        store
                            .set_org_role(org, user, OrgRole::Admin, &[])
                            .await
                            .map_err(refused),
                        Ok(true)
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no writer failed");
    }
    assert_eq!(
        store
            .set_org_role(org.id, users[0], OrgRole::Member, &[])
            .await
            .map_err(refused),
        Ok(true),
        "the other admins are all admins again"
    );
}

async fn deactivation_and_deletion_reach_keys_and_sessions(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let key = &w.keys["loner"];
    let digest = KeyDigest::of(b"loner-session");
    s.create_session(NewSession {
        token_digest: digest,
        user_id: w.loner,
        created_at: 1,
        expires_at: 1_000,
    })
    .await
    .unwrap();
    assert_eq!(s.set_user_active(w.loner, false, &[]).await.map_err(refused), Ok(true));
    assert!(!s.find_key_for_auth(key).await.unwrap().unwrap().owner_active);
    assert!(
        s.find_session(&digest, 2).await.unwrap().is_none(),
        "deactivation ends sessions"
    );
    assert_eq!(s.set_user_active(w.loner, true, &[]).await.map_err(refused), Ok(true));
    assert!(
        s.find_key_for_auth(key).await.unwrap().unwrap().owner_active,
        "reactivation restores keys"
    );
    assert_eq!(s.delete_user(w.loner, &[]).await.map_err(refused), Ok(true));
    assert!(
        s.find_key_for_auth(key).await.unwrap().is_none(),
        "deleting a user deletes their keys"
    );
    assert_eq!(s.delete_user(w.red_sa, &[]).await.map_err(refused), Ok(true));
    assert!(s.find_key_for_auth(&w.keys["red-bot"]).await.unwrap().is_none());
    assert!(s.get_service_account(w.red_sa).await.unwrap().is_none());
    assert_eq!(
        s.remove_org_member(w.org.id, w.red_member, &[]).await.map_err(refused),
        Ok(true)
    );
    assert!(
        s.team_members(w.red.id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.user.id != w.red_member),
        "leaving the org leaves its teams"
    );
}

async fn audit_entries_are_written_with_their_change_and_listed_newest_first(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let key = new_key(w.loner, "audited", 50);
    let key_id = key.key_id.clone();
    s.insert_key(key, &[entry(w.org.id, "api_key.created", key_id.as_str())])
        .await
        .unwrap();
    s.rename_key(
        &key_id,
        "renamed",
        &[entry(w.org.id, "api_key.renamed", key_id.as_str())],
    )
    .await
    .unwrap();
    s.delete_key(&key_id, &[entry(w.org.id, "api_key.deleted", key_id.as_str())])
        .await
        .unwrap();
    // A change that does not happen records nothing.
    s.delete_key(&key_id, &[entry(w.org.id, "api_key.deleted", "again")])
        .await
        .unwrap();
    let settings = OrgSettings {
        key_creation_disabled: Some(true),
        legacy_keys_allowed: None,
        ..OrgSettings::default()
    };
    s.update_org_settings(w.org.id, settings, &[entry(w.org.id, "org.settings_changed", "acme")])
        .await
        .unwrap();
    let org = s.get_org(w.org.id).await.unwrap().unwrap();
    assert!(org.key_creation_disabled);
    assert!(!org.legacy_keys_allowed, "a setting left out stays as it was");
    let settings = OrgSettings {
        key_creation_disabled: None,
        legacy_keys_allowed: Some(true),
        ..OrgSettings::default()
    };
    let org = s.update_org_settings(w.org.id, settings, &[]).await.unwrap();
    assert!(org.key_creation_disabled && org.legacy_keys_allowed);
    let all = s
        .list_audit(&AuditQuery {
            org: Some(w.org.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "org.settings_changed",
            "api_key.deleted",
            "api_key.renamed",
            "api_key.created"
        ]
    );
    assert_eq!(all[1].source_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(all[1].actor_name, "system");
    let page = s
        .list_audit(&AuditQuery {
            org: Some(w.org.id),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let next = s
        .list_audit(&AuditQuery {
            org: Some(w.org.id),
            limit: 2,
            before_id: Some(page[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["api_key.renamed", "api_key.created"]
    );
    let deletes = s
        .list_audit(&AuditQuery {
            org: Some(w.org.id),
            action: Some("api_key.deleted".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deletes.len(), 1);
    let other = s.find_org("other").await.unwrap().unwrap();
    assert!(
        s.list_audit(&AuditQuery {
            org: Some(other.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
}

async fn invitations_set_a_password_once_before_they_expire(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let mut invited = person("newbie");
    invited.password_hash = None;
    let user = s
        .create_member(invited, w.org.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    let token = KeyDigest::of(b"invite-token");
    s.create_invite(user.id, &token, 100, 200).await.unwrap();
    assert_eq!(
        s.accept_invite(&token, "$argon2id$new", 200, None).await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(
        s.accept_invite(&token, "$argon2id$new", 150, Some("192.0.2.7"))
            .await
            .unwrap(),
        Some(user.id)
    );
    assert_eq!(
        s.accept_invite(&token, "$argon2id$other", 150, None).await.unwrap(),
        None,
        "used once"
    );
    let (_, hash) = s.find_user_for_sign_in("newbie").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$new"));
    let again = KeyDigest::of(b"second");
    s.create_invite(user.id, &again, 100, 900).await.unwrap();
    assert_eq!(s.delete_invites(user.id).await.unwrap(), 1);
    assert_eq!(s.accept_invite(&again, "$x", 150, None).await.unwrap(), None);
    // Accepted once, recorded once, in the user's organization, by the user.
    let accepted = s
        .list_audit(&AuditQuery {
            org: Some(w.org.id),
            action: Some("user.invitation_accepted".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(
        (
            accepted[0].actor_id,
            accepted[0].actor_name.as_str(),
            accepted[0].target.as_str()
        ),
        (Some(user.id), "newbie", "newbie")
    );
    assert_eq!(accepted[0].source_address.as_deref(), Some("192.0.2.7"));

    // A deactivated user's invitation sets nothing and stays for a reactivation.
    let third = KeyDigest::of(b"third");
    s.create_invite(user.id, &third, 100, 900).await.unwrap();
    assert_eq!(s.set_user_active(user.id, false, &[]).await.map_err(refused), Ok(true));
    assert_eq!(
        s.accept_invite(&third, "$argon2id$late", 150, None).await.unwrap(),
        None
    );
    assert_eq!(s.set_user_active(user.id, true, &[]).await.map_err(refused), Ok(true));
    assert_eq!(
        s.accept_invite(&third, "$argon2id$late", 150, None).await.unwrap(),
        Some(user.id)
    );
    let (_, hash) = s.find_user_for_sign_in("newbie").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$late"));
}

async fn rotation_links_the_keys_and_only_ever_brings_the_old_expiry_forward(store: Arc<dyn Store>) {
    let owner = store.create_user(person("rhea"), 1).await.unwrap();
    let old = store.insert_key(new_key(owner.id, "ci", 1), &[]).await.unwrap();
    let w_org = store.create_org("rot", 1).await.unwrap();
    let mut next = new_key(owner.id, "ci", 5);
    next.rotated_from = Some(old.key_id.clone());
    next.expires_at = Some(10_000);
    let audit = [entry(w_org.id, "api_key.rotated", old.key_id.as_str())];
    let new = store
        .rotate_key(&old.key_id, next, Some(500), &audit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.rotated_from.as_deref(), Some(old.key_id.as_str()));
    assert_eq!(new.expires_at, Some(10_000));
    let old_now = store.get_key(&old.key_id).await.unwrap().unwrap();
    assert_eq!(old_now.expires_at, Some(500));
    assert_eq!(old_now.rotated_to.as_deref(), Some(new.key_id.as_str()));
    assert_eq!(
        store.find_key_for_auth(&old.key_id).await.unwrap().unwrap().expires_at,
        Some(500)
    );
    // A later grace never extends an expiry; `None` leaves it as it is.
    let mut again = new_key(owner.id, "ci", 6);
    again.rotated_from = Some(old.key_id.clone());
    store
        .rotate_key(&old.key_id, again, Some(9_000), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.get_key(&old.key_id).await.unwrap().unwrap().expires_at, Some(500));
    let gone = KeyId::parse("wandb_v1_000000000000000000000000000").unwrap();
    let orphan = new_key(owner.id, "x", 7);
    let orphan_id = orphan.key_id.clone();
    assert!(
        store
            .rotate_key(&gone, orphan, Some(1), &audit)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.get_key(&orphan_id).await.unwrap().is_none(),
        "nothing inserted for a missing key"
    );
    let logged = store
        .list_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 1, "the refused rotation wrote no audit entry");
}

async fn key_sources_are_merged_and_bounded_per_key(store: Arc<dyn Store>) {
    let owner = store.create_user(person("sam"), 1).await.unwrap();
    let key = store.insert_key(new_key(owner.id, "k", 1), &[]).await.unwrap();
    let other = store.insert_key(new_key(owner.id, "other", 1), &[]).await.unwrap();
    let at = |key: &StoredKey, address: &str, first: i64, last: i64| KeySourceUse {
        key_id: key.key_id.clone(),
        address: address.into(),
        user_agent: "wandb/0.31".into(),
        first_seen: first,
        last_seen: last,
    };
    store
        .record_key_sources(&[at(&key, "10.0.0.1", 100, 200)])
        .await
        .unwrap();
    store
        .record_key_sources(&[at(&key, "10.0.0.1", 50, 150)])
        .await
        .unwrap();
    let sources = store.key_sources(&key.key_id).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        (sources[0].first_seen, sources[0].last_seen),
        (50, 200),
        "first only earlier, last only later"
    );
    let many: Vec<KeySourceUse> = (0..15)
        .map(|i| at(&key, &format!("10.1.0.{i}"), 1000 + i, 1000 + i))
        .chain([at(&other, "10.9.9.9", 5, 5)])
        .collect();
    store.record_key_sources(&many).await.unwrap();
    let sources = store.key_sources(&key.key_id).await.unwrap();
    assert_eq!(sources.len() as i64, MAX_SOURCES_PER_KEY, "bounded");
    assert_eq!(sources[0].address, "10.1.0.14", "most recent first");
    assert!(sources.iter().all(|s| s.last_seen >= 1005), "the oldest are dropped");
    assert_eq!(store.key_sources(&other.key_id).await.unwrap().len(), 1, "per key");
    store.delete_key(&key.key_id, &[]).await.unwrap();
    assert!(
        store.key_sources(&key.key_id).await.unwrap().is_empty(),
        "deleted with the key"
    );
    store.record_key_sources(&[at(&key, "10.0.0.1", 1, 1)]).await.unwrap();
    assert!(
        store.key_sources(&key.key_id).await.unwrap().is_empty(),
        "no sources for a deleted key"
    );
}

async fn expiring_keys_are_found_and_announced_once(store: Arc<dyn Store>) {
    let org = store.create_org("exp", 1).await.unwrap();
    let owner = store.create_user(person("eve"), 1).await.unwrap();
    let mut soon = new_key(owner.id, "soon", 1);
    soon.expires_at = Some(1_000);
    let soon = store.insert_key(soon, &[]).await.unwrap();
    let mut later = new_key(owner.id, "later", 1);
    later.expires_at = Some(9_000);
    store.insert_key(later, &[]).await.unwrap();
    let mut past = new_key(owner.id, "past", 1);
    past.expires_at = Some(10);
    store.insert_key(past, &[]).await.unwrap();
    store.insert_key(new_key(owner.id, "never", 1), &[]).await.unwrap();
    let found = store.keys_expiring(100, 2_000, "expiring:7", 10).await.unwrap();
    assert_eq!(found.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["soon"]);
    let audit = [entry(org.id, "api_key.expiring", soon.key_id.as_str())];
    let kinds = ["expiring:7".to_owned()];
    assert!(
        store
            .claim_key_notice(&soon.key_id, &kinds, 1_000, 100, &audit, &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_key_notice(&soon.key_id, &kinds, 1_000, 101, &audit, &[])
            .await
            .unwrap(),
        "once"
    );
    assert!(
        store
            .keys_expiring(100, 2_000, "expiring:7", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let logged = store
        .list_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 1, "one announcement in the audit log");
    let listed = store
        .list_keys(&KeyListQuery {
            filter: KeyFilter {
                expires_after: Some(100),
                expires_before: Some(10_000),
                ..KeyFilter::default()
            },
            ..own_keys(owner.id, None, 10)
        })
        .await
        .unwrap();
    let mut names: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["later", "soon"]);
}

/// Notices (issue 17): one per key, kind and due time; a longer lead time recorded with
/// a shorter one is not found again; a new use arms the idle notice anew; a key that
/// was rotated away or is gone gets none.
async fn key_notices_are_given_once_per_kind_and_due_time(store: Arc<dyn Store>) {
    let org = store.create_org("notices", 1).await.unwrap();
    let other = store.create_org("elsewhere", 1).await.unwrap();
    let owner = store.create_user(person("nora"), 1).await.unwrap();
    store
        .add_org_member(org.id, owner.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    let outsider = store.create_user(person("olaf"), 1).await.unwrap();
    store
        .add_org_member(other.id, outsider.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    let mut close = new_key(owner.id, "close", 1);
    close.expires_at = Some(1_000);
    let close = store.insert_key(close, &[]).await.unwrap();
    let week = ["expiring:7".to_owned()];
    let day_and_week = ["expiring:1".to_owned(), "expiring:7".to_owned()];
    let audit = [entry(org.id, "api_key.expiring", close.key_id.as_str())];
    assert!(
        store
            .claim_key_notice(&close.key_id, &day_and_week, 1_000, 100, &audit, &[])
            .await
            .unwrap()
    );
    assert!(
        store
            .keys_expiring(100, 2_000, "expiring:7", 10)
            .await
            .unwrap()
            .is_empty(),
        "the longer lead time is recorded with the shorter"
    );
    assert!(
        store
            .keys_expiring(100, 2_000, "expiring:1", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.keys_expiring(100, 2_000, "expiring:30", 10).await.unwrap().len(),
        1,
        "another lead time is another notice"
    );
    assert!(
        !store
            .claim_key_notice(&close.key_id, &week, 1_000, 101, &audit, &[])
            .await
            .unwrap(),
        "recorded, so not given again"
    );
    assert!(
        store
            .claim_key_notice(&close.key_id, &week, 1_500, 101, &audit, &[])
            .await
            .unwrap(),
        "a new expiry is a new notice"
    );
    let gone = store.insert_key(new_key(owner.id, "gone", 1), &[]).await.unwrap();
    store.delete_key(&gone.key_id, &[]).await.unwrap();
    assert!(
        !store
            .claim_key_notice(&gone.key_id, &week, 1_000, 100, &[], &[])
            .await
            .unwrap(),
        "no such key"
    );
    assert!(
        !store
            .claim_key_notice(&close.key_id, &[], 1_000, 100, &[], &[])
            .await
            .unwrap()
    );

    // A key rotated away expires by the rotation's design: no warning.
    let mut old = new_key(owner.id, "old", 1);
    old.expires_at = Some(50_000);
    let old = store.insert_key(old, &[]).await.unwrap();
    let mut next = new_key(owner.id, "next", 2);
    next.rotated_from = Some(old.key_id.clone());
    store
        .rotate_key(&old.key_id, next, Some(1_200), &[])
        .await
        .unwrap()
        .unwrap();
    let expiring: Vec<String> = store
        .keys_expiring(100, 2_000, "expiring:9", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(expiring, ["close"], "the rotated key is not warned about");

    // Idle: created at 1 and never used, or last used before the cut.
    let idle = store.insert_key(new_key(owner.id, "idle", 1), &[]).await.unwrap();
    let used = store.insert_key(new_key(owner.id, "used", 1), &[]).await.unwrap();
    store.insert_key(new_key(outsider.id, "theirs", 1), &[]).await.unwrap();
    store.record_key_use(&[(used.key_id.clone(), 5_000)]).await.unwrap();
    let kind = format!("unused:{}", org.id.0);
    let names = |keys: Vec<StoredKey>| keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
    let found = names(store.idle_keys(org.id, 2_000, 2_000, &kind, 10).await.unwrap());
    assert!(
        found.contains(&"idle".to_owned()) && !found.contains(&"used".to_owned()),
        "{found:?}"
    );
    assert!(!found.contains(&"theirs".to_owned()), "another organization's key");
    assert!(!found.contains(&"close".to_owned()), "expired by then");
    assert!(!found.contains(&"old".to_owned()), "rotated away: {found:?}");
    assert!(found.contains(&"next".to_owned()), "its successor is idle: {found:?}");
    let audit = [entry(org.id, "api_key.unused", idle.key_id.as_str())];
    assert!(
        store
            .claim_key_notice(&idle.key_id, std::slice::from_ref(&kind), 1, 2_000, &audit, &[])
            .await
            .unwrap()
    );
    let found = names(store.idle_keys(org.id, 2_000, 2_000, &kind, 10).await.unwrap());
    assert!(!found.contains(&"idle".to_owned()), "announced once: {found:?}");
    store.record_key_use(&[(idle.key_id.clone(), 2_500)]).await.unwrap();
    let found = names(store.idle_keys(org.id, 3_000, 3_000, &kind, 10).await.unwrap());
    assert!(
        found.contains(&"idle".to_owned()),
        "idle again after a new use: {found:?}"
    );
    assert!(!found.contains(&"used".to_owned()), "used since: {found:?}");

    assert!(store.orgs_announcing_idle_keys().await.unwrap().is_empty());
    let settings = OrgSettings {
        unused_key_notice_days: Some(30),
        ..OrgSettings::default()
    };
    let changed = store.update_org_settings(org.id, settings, &[]).await.unwrap();
    assert_eq!(changed.unused_key_notice_days, 30);
    let announcing = store.orgs_announcing_idle_keys().await.unwrap();
    assert_eq!(announcing.iter().map(|o| o.id).collect::<Vec<_>>(), [org.id]);
    assert_eq!(announcing[0].unused_key_notice_days, 30);
}

/// Messages are queued with their notice (never twice for one dedupe text), claimed
/// under a lease by one replica at a time, retried when due and purged once done.
async fn emails_are_queued_with_their_notice_and_claimed_under_a_lease(store: Arc<dyn Store>) {
    let owner = store.create_user(person("mia"), 1).await.unwrap();
    let key = store.insert_key(new_key(owner.id, "mailed", 1), &[]).await.unwrap();
    let mail = |dedupe: &str| NewEmail {
        dedupe: dedupe.into(),
        to: "mia@example.com".into(),
        subject: "Keysmith: your API key expires".into(),
        body: "Hello mia,\n".into(),
        created_at: 10,
    };
    let kind = |k: &str| [k.to_owned()];
    assert!(
        store
            .claim_key_notice(&key.key_id, &kind("expiring:7"), 5, 10, &[], &[mail("a"), mail("a")])
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_key_notice(&key.key_id, &kind("expiring:7"), 5, 10, &[], &[mail("b")])
            .await
            .unwrap(),
        "a notice not given queues nothing"
    );
    assert!(
        store
            .claim_key_notice(&key.key_id, &kind("expiring:1"), 5, 10, &[], &[mail("a")])
            .await
            .unwrap()
    );
    let queued = store.list_emails(10).await.unwrap();
    assert_eq!(queued.len(), 1, "one message per dedupe text: {queued:?}");
    assert_eq!(queued[0].status, EmailStatus::Pending);
    assert_eq!((queued[0].to.as_str(), queued[0].attempts), ("mia@example.com", 0));

    assert!(
        store.claim_emails(9, 100, 10).await.unwrap().is_empty(),
        "not due before it was made"
    );
    let claimed = store.claim_emails(10, 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store.claim_emails(50, 150, 10).await.unwrap().is_empty(),
        "held by the lease"
    );
    let retry = EmailAttempt {
        status: EmailStatus::Pending,
        error: Some("451 4.3.0 try again later".into()),
        at: 60,
        next_attempt_at: 200,
    };
    store.finish_email(claimed[0].id, &retry).await.unwrap();
    assert!(
        store.claim_emails(199, 300, 10).await.unwrap().is_empty(),
        "not before the retry"
    );
    let again = store.claim_emails(200, 300, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let sent = EmailAttempt {
        status: EmailStatus::Sent,
        error: None,
        at: 210,
        next_attempt_at: 210,
    };
    store.finish_email(again[0].id, &sent).await.unwrap();
    let done = &store.list_emails(10).await.unwrap()[0];
    assert_eq!(
        (done.status, done.attempts, done.sent_at),
        (EmailStatus::Sent, 2, Some(210))
    );
    assert_eq!(done.last_error, None);
    assert!(
        store.claim_emails(10_000, 20_000, 10).await.unwrap().is_empty(),
        "sent is done"
    );
    assert_eq!(store.purge_emails(10).await.unwrap(), 0, "made at 10, not before");
    assert_eq!(store.purge_emails(11).await.unwrap(), 1);
    assert!(store.list_emails(10).await.unwrap().is_empty());
}

/// The key report's sections, and last writes that never move backwards.
async fn the_key_report_finds_each_kind_of_key(store: Arc<dyn Store>) {
    let org = store.create_org("report", 1).await.unwrap();
    let owner = store.create_user(person("rita"), 1).await.unwrap();
    store
        .add_org_member(org.id, owner.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    let stranger = store.create_user(person("sam"), 1).await.unwrap();
    let key = |name: &str, scope: KeyScope, expires_at: Option<i64>| {
        let mut k = new_key(owner.id, name, 10);
        k.scope = scope;
        k.expires_at = expires_at;
        k
    };
    store
        .insert_key(key("fresh", KeyScope::Admin, None), &[])
        .await
        .unwrap();
    let old = store.insert_key(key("old", KeyScope::Admin, None), &[]).await.unwrap();
    let soon = store
        .insert_key(key("soon", KeyScope::Read, Some(1_500)), &[])
        .await
        .unwrap();
    store
        .insert_key(key("gone", KeyScope::Read, Some(50)), &[])
        .await
        .unwrap();
    let reader = store
        .insert_key(key("reader", KeyScope::Write, None), &[])
        .await
        .unwrap();
    let writer = store
        .insert_key(key("writer", KeyScope::Admin, None), &[])
        .await
        .unwrap();
    let read_only = store
        .insert_key(key("read-only", KeyScope::Read, None), &[])
        .await
        .unwrap();
    store.insert_key(new_key(stranger.id, "theirs", 10), &[]).await.unwrap();
    store
        .record_key_use(&[
            (old.key_id.clone(), 100),
            (soon.key_id.clone(), 900),
            (reader.key_id.clone(), 900),
            (writer.key_id.clone(), 900),
            (read_only.key_id.clone(), 900),
        ])
        .await
        .unwrap();
    store.record_key_writes(&[(writer.key_id.clone(), 800)]).await.unwrap();
    store.record_key_writes(&[(writer.key_id.clone(), 700)]).await.unwrap();
    let section = |kind: ReportKind, threshold: i64| {
        let store = store.clone();
        async move {
            let query = KeyReportQuery {
                org: org.id,
                kind,
                now: 1_000,
                threshold,
                limit: 10,
            };
            let mut names: Vec<String> = store
                .key_report(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|k| k.name)
                .collect();
            names.sort_unstable();
            names
        }
    };
    assert_eq!(
        section(ReportKind::NeverUsed, 500).await,
        ["fresh"],
        "made by 500, never used"
    );
    assert!(section(ReportKind::NeverUsed, 5).await.is_empty(), "all made after 5");
    assert_eq!(section(ReportKind::Idle, 500).await, ["old"]);
    assert_eq!(
        section(ReportKind::Expiring, 2_000).await,
        ["soon"],
        "not the one expired"
    );
    assert_eq!(section(ReportKind::ReadsOnly, 500).await, ["reader"]);
    assert_eq!(
        section(ReportKind::ReadsOnly, 850).await,
        ["reader", "writer"],
        "no write since 850"
    );
    let writer = store.get_key(&writer.key_id).await.unwrap().unwrap();
    assert_eq!(writer.last_write_at, Some(800), "never backwards");
}

/// A service account's allowlist changes after it was made, with an audit entry and
/// an invalidation of its keys; an unknown account changes nothing.
async fn a_service_accounts_networks_change(store: Arc<dyn Store>) {
    let org = store.create_org("nets", 1).await.unwrap();
    let account = NewServiceAccount {
        org: org.id,
        team: None,
        username: "net-bot".into(),
        description: String::new(),
        created_by: None,
        external_subject: None,
        allowed_networks: None,
    };
    let bot = store.create_service_account(account, 1, &[]).await.unwrap().user.id;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = seen.clone();
    store.on_invalidation(Box::new(move |inv| hook.lock().unwrap().push(inv.clone())));
    let audit = [entry(org.id, "service_account.networks_changed", "net-bot")];
    assert!(
        store
            .set_service_account_networks(bot, Some("10.0.0.0/8".into()), &audit)
            .await
            .unwrap()
    );
    let read = store.get_service_account(bot).await.unwrap().unwrap();
    assert_eq!(read.allowed_networks.as_deref(), Some("10.0.0.0/8"));
    assert!(
        seen.lock().unwrap().contains(&Invalidation::Owner(bot)),
        "its keys are stale"
    );
    assert!(store.set_service_account_networks(bot, None, &[]).await.unwrap());
    assert_eq!(
        store.get_service_account(bot).await.unwrap().unwrap().allowed_networks,
        None
    );
    let nobody = store.create_user(person("not-a-bot"), 1).await.unwrap().id;
    assert!(!store.set_service_account_networks(nobody, None, &audit).await.unwrap());
    let logged = store
        .list_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 1, "audited once, and not for the account that is not one");
}

async fn webhook_events_are_queued_once_and_deliveries_claimed_under_a_lease(store: Arc<dyn Store>) {
    let org = store.create_org("hooks", 1).await.unwrap();
    let hook = store
        .create_webhook(
            NewWebhook {
                org: org.id,
                uid: "uid1".into(),
                url: "https://example.com/hook".into(),
                events: vec!["api_key.created".into(), "api_key.deleted".into()],
                description: "ci".into(),
                created_at: 1,
                created_by: None,
            },
            &[entry(org.id, "webhook.created", "https://example.com/hook")],
        )
        .await
        .unwrap();
    assert_eq!(store.list_webhooks(org.id).await.unwrap(), vec![hook.clone()]);
    assert_eq!(hook.events, ["api_key.created", "api_key.deleted"]);
    let (cursor, entries) = store.outbox_batch(i64::MAX / 2, 10).await.unwrap();
    assert_eq!(entries.len(), 1, "the audit entry of the endpoint's creation");
    let last = entries[0].id;
    let delivery = NewDelivery {
        endpoint_id: hook.id,
        message_id: format!("msg_{last}_{}", hook.id),
        event_type: "api_key.created".into(),
        payload: "{}".into(),
        created_at: 100,
    };
    assert!(
        store
            .commit_outbox(cursor, last, std::slice::from_ref(&delivery))
            .await
            .unwrap()
    );
    assert!(
        !store
            .commit_outbox(cursor, last, std::slice::from_ref(&delivery))
            .await
            .unwrap(),
        "a second replica with the same cursor writes nothing"
    );
    assert!(store.outbox_batch(i64::MAX / 2, 10).await.unwrap().1.is_empty());

    let claimed = store.claim_deliveries(100, 160, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].1.url, hook.url);
    assert!(store.claim_deliveries(120, 180, 10).await.unwrap().is_empty(), "leased");
    let retry = AttemptResult {
        status: DeliveryStatus::Pending,
        http_status: Some(500),
        error: Some("the receiver answered 500".into()),
        at: 121,
        next_attempt_at: 200,
    };
    store.finish_attempt(claimed[0].0.id, &retry).await.unwrap();
    assert!(
        store.claim_deliveries(150, 210, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let again = store.claim_deliveries(200, 260, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0.attempts, 1);
    let done = AttemptResult {
        status: DeliveryStatus::Delivered,
        http_status: Some(204),
        error: None,
        at: 201,
        next_attempt_at: 201,
    };
    store.finish_attempt(again[0].0.id, &done).await.unwrap();
    let log = store.list_deliveries(hook.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!(
        (log[0].attempts, log[0].last_status, log[0].delivered_at),
        (2, Some(204), Some(201))
    );
    assert!(
        store.claim_deliveries(1_000, 1_060, 10).await.unwrap().is_empty(),
        "delivered is done"
    );

    assert!(store.delete_webhook(hook.id, &[]).await.unwrap());
    assert!(store.get_webhook(hook.id).await.unwrap().is_none());
    assert!(
        store.list_deliveries(hook.id, 10).await.unwrap().is_empty(),
        "its log goes with it"
    );
}

async fn webhook_secrets_rotate_keeping_the_previous_version_with_its_time(store: Arc<dyn Store>) {
    let org = store.create_org("hooks", 1).await.unwrap();
    let hook = store
        .create_webhook(
            NewWebhook {
                org: org.id,
                uid: "uid1".into(),
                url: "https://example.com/hook".into(),
                events: vec!["api_key.created".into()],
                description: String::new(),
                created_at: 1,
                created_by: None,
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            hook.secret_version,
            hook.previous_secret_version,
            hook.secret_rotated_at
        ),
        (1, None, None),
        "never rotated"
    );
    let rotated = store
        .rotate_webhook_secret(hook.id, 500, &[entry(org.id, "webhook.secret_rotated", &hook.url)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rotated.secret_version,
            rotated.previous_secret_version,
            rotated.secret_rotated_at
        ),
        (2, Some(1), Some(500))
    );
    assert_eq!(
        (rotated.uid.as_str(), rotated.created_at),
        ("uid1", 1),
        "the rest stays"
    );
    assert_eq!(store.get_webhook(hook.id).await.unwrap(), Some(rotated.clone()));
    assert_eq!(store.list_webhooks(org.id).await.unwrap(), vec![rotated.clone()]);

    // Deliveries are claimed with the endpoint as it is now, rotation included.
    let (cursor, entries) = store.outbox_batch(i64::MAX / 2, 10).await.unwrap();
    let last = entries.last().unwrap().id;
    let delivery = NewDelivery {
        endpoint_id: hook.id,
        message_id: "msg_1".into(),
        event_type: "api_key.created".into(),
        payload: "{}".into(),
        created_at: 600,
    };
    assert!(store.commit_outbox(cursor, last, &[delivery]).await.unwrap());
    let claimed = store.claim_deliveries(600, 660, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].1, rotated);

    let again = store.rotate_webhook_secret(hook.id, 700, &[]).await.unwrap().unwrap();
    assert_eq!(
        (
            again.secret_version,
            again.previous_secret_version,
            again.secret_rotated_at
        ),
        (3, Some(2), Some(700)),
        "only the version just replaced is kept"
    );
    let audit = store
        .list_audit(&AuditQuery {
            org: Some(org.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["webhook.secret_rotated"], "written with the change");

    assert!(store.delete_webhook(hook.id, &[]).await.unwrap());
    assert!(
        store
            .rotate_webhook_secret(hook.id, 800, &[entry(org.id, "webhook.secret_rotated", "gone")])
            .await
            .unwrap()
            .is_none()
    );
    let audit = store
        .list_audit(&AuditQuery {
            org: Some(org.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "no entry for an endpoint that is gone");
}

async fn committed_changes_announce_invalidations_and_auth_records_carry_the_orgs(store: Arc<dyn Store>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    store.on_invalidation(Box::new(move |i| sink.lock().unwrap().push(i.clone())));
    let org = store.create_org("acme", 1).await.unwrap();
    let other = store.create_org("zeta", 1).await.unwrap();
    let admin = store.create_user(person("ada"), 1).await.unwrap();
    let user = store.create_user(person("bob"), 1).await.unwrap();
    store
        .add_org_member(org.id, admin.id, OrgRole::Admin, 1, &[])
        .await
        .unwrap();
    store
        .add_org_member(org.id, user.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    store
        .add_org_member(other.id, user.id, OrgRole::Member, 1, &[])
        .await
        .unwrap();
    let key = store.insert_key(new_key(user.id, "k", 1), &[]).await.unwrap();
    let mut orgs = store.find_key_for_auth(&key.key_id).await.unwrap().unwrap().orgs;
    orgs.sort();
    assert_eq!(orgs, ["acme", "zeta"]);
    seen.lock().unwrap().clear();

    let next = new_key(user.id, "k2", 2);
    let next_id = next.key_id.clone();
    store.rotate_key(&key.key_id, next, Some(10), &[]).await.unwrap();
    store
        .set_org_role(org.id, user.id, OrgRole::Admin, &[])
        .await
        .map_err(refused)
        .unwrap();
    store
        .remove_org_member(other.id, user.id, &[])
        .await
        .map_err(refused)
        .unwrap();
    store
        .set_user_active(user.id, false, &[])
        .await
        .map_err(refused)
        .unwrap();
    store.delete_key(&next_id, &[]).await.unwrap();
    assert!(!store.delete_key(&next_id, &[]).await.unwrap());
    // Refused: the last admin cannot be deactivated; nothing is announced.
    store
        .set_org_role(org.id, user.id, OrgRole::Member, &[])
        .await
        .map_err(refused)
        .unwrap();
    assert!(
        store
            .set_user_active(admin.id, false, &[])
            .await
            .map_err(refused)
            .is_err()
    );
    store.delete_user(user.id, &[]).await.map_err(refused).unwrap();
    let owner = Invalidation::Owner(user.id);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Invalidation::Key(key.key_id.to_string()),
            Invalidation::Key(next_id.to_string()),
            owner.clone(),
            owner.clone(),
            owner.clone(),
            Invalidation::Key(next_id.to_string()),
            owner.clone(),
            owner,
        ]
    );
    let service = store
        .create_service_account(
            NewServiceAccount {
                org: org.id,
                team: None,
                username: "bot".into(),
                description: String::new(),
                created_by: None,
                external_subject: None,
                allowed_networks: None,
            },
            1,
            &[],
        )
        .await
        .unwrap();
    let bot_key = store.insert_key(new_key(service.user.id, "b", 1), &[]).await.unwrap();
    assert_eq!(
        store.find_key_for_auth(&bot_key.key_id).await.unwrap().unwrap().orgs,
        ["acme"]
    );
}

/// Ending sessions is announced like revoking keys, so that no cache keeps them: a
/// sign-out by its digest, an operator's password reset by the user.
async fn ending_sessions_is_announced(store: Arc<dyn Store>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    store.on_invalidation(Box::new(move |i| sink.lock().unwrap().push(i.clone())));
    let user = store.create_user(person("sam"), 1).await.unwrap();
    let digest = KeyDigest::of(b"session-token");
    store
        .create_session(NewSession {
            token_digest: digest,
            user_id: user.id,
            created_at: 1,
            expires_at: 1_000,
        })
        .await
        .unwrap();
    assert!(seen.lock().unwrap().is_empty(), "starting a session changes no cache");
    store.delete_session(&digest).await.unwrap();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA";
    assert!(store.reset_password(user.id, hash, 5, &[]).await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Invalidation::Session(digest), Invalidation::Owner(user.id)]
    );
    assert_eq!(
        Invalidation::decode(&Invalidation::Session(digest).encode()),
        Some(Invalidation::Session(digest)),
        "it travels to other replicas intact"
    );
}

async fn scim_records_are_kept_beside_members_and_teams_and_teams_are_deleted(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    store.on_invalidation(Box::new(move |i| sink.lock().unwrap().push(i.clone())));
    let record = |text: &str, at| ScimRecord {
        attributes: text.into(),
        updated_at: at,
    };

    // A member's record, with a new email: the email is part of who they are, so the
    // change is announced; the record alone is not.
    let written = record(r#"{"userName":"Loner@x.test"}"#, 20);
    let audit = [entry(w.org.id, "user.profile_changed", "loner")];
    assert!(
        s.set_scim_user(w.org.id, w.loner, &written, Some(Some("loner@x.test")), &audit)
            .await
            .unwrap()
    );
    assert_eq!(
        s.scim_user_records(w.org.id).await.unwrap(),
        [(w.loner, written.clone())]
    );
    assert_eq!(
        s.get_user(w.loner).await.unwrap().unwrap().email.as_deref(),
        Some("loner@x.test")
    );
    assert_eq!(
        seen.lock().unwrap().drain(..).collect::<Vec<_>>(),
        [Invalidation::Owner(w.loner)]
    );
    assert!(
        s.set_scim_user(w.org.id, w.loner, &record("{}", 21), None, &[])
            .await
            .unwrap()
    );
    assert!(seen.lock().unwrap().is_empty(), "no email change, nothing to announce");
    // Emails stay unique, without case; nothing of the refused change is kept.
    assert!(matches!(
        s.set_scim_user(
            w.org.id,
            w.red_member,
            &record("{}", 22),
            Some(Some("LONER@x.test")),
            &[]
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.scim_user_records(w.org.id).await.unwrap().len(), 1);
    // Not a member of the organization: nothing written.
    assert!(
        !s.set_scim_user(w.org.id, w.outsider, &record("{}", 23), None, &[])
            .await
            .unwrap()
    );
    assert!(
        s.set_scim_user(w.org.id, w.loner, &record("{}", 24), Some(None), &[])
            .await
            .unwrap()
    );
    assert_eq!(s.get_user(w.loner).await.unwrap().unwrap().email, None);

    let team = record(r#"{"displayName":"Red Team"}"#, 25);
    assert!(s.set_scim_team(w.red.id, &team, &[]).await.unwrap());
    assert_eq!(s.scim_team_records(w.org.id).await.unwrap(), [(w.red.id, team)]);
    assert!(!s.set_scim_team(TeamId(9_999), &record("{}", 26), &[]).await.unwrap());

    // A team with service accounts stays; one without goes, and its members leave it.
    assert!(!s.delete_team(w.red.id, &[]).await.unwrap());
    let green = s.create_team(w.org.id, "green", 27, &[]).await.unwrap();
    s.set_team_member(green.id, w.loner, TeamRole::Admin, 27, &[])
        .await
        .unwrap();
    seen.lock().unwrap().clear();
    let audit = [entry(w.org.id, "team.deleted", "green")];
    assert!(s.delete_team(green.id, &audit).await.unwrap());
    assert!(s.find_team(w.org.id, "green").await.unwrap().is_none());
    assert!(s.user_teams(w.loner).await.unwrap().is_empty());
    assert!(!s.roles(w.loner).await.unwrap().is_team_admin(green.id));
    assert_eq!(seen.lock().unwrap().clone(), [Invalidation::Owner(w.loner)]);
    assert!(!s.delete_team(green.id, &[]).await.unwrap());
    let query = AuditQuery {
        org: Some(w.org.id),
        action: None,
        actor: None,
        target: None,
        since: None,
        until: None,
        before_id: None,
        limit: 100,
    };
    let log = s.list_audit(&query).await.unwrap();
    assert!(log.iter().any(|e| e.action == "team.deleted") && log.iter().any(|e| e.action == "user.profile_changed"));
}

async fn sso_providers_are_kept_per_organization_with_unique_names(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let s = store.as_ref();
    let other = s.find_org("other").await.unwrap().unwrap();
    let new = |org: OrgId, name: &str| NewSsoProvider {
        org,
        name: name.into(),
        issuer: "https://idp.example.com".into(),
        client_id: "keysmith".into(),
        client_secret_file: "idp".into(),
        scopes: "openid email".into(),
        groups_claim: "groups".into(),
        email_claim: "preferred_username".into(),
        jit: true,
        group_rules: r#"[{"group":"g","org_role":"admin"}]"#.into(),
        created_at: 30,
        created_by: Some(w.admin),
    };
    let audit = [entry(w.org.id, "sso_provider.added", "Okta")];
    let okta = s.create_sso_provider(new(w.org.id, "Okta"), &audit).await.unwrap();
    assert_eq!(
        (okta.name.as_str(), okta.email_claim.as_str(), okta.jit, okta.created_at),
        ("Okta", "preferred_username", true, 30)
    );
    assert!(matches!(
        s.create_sso_provider(new(w.org.id, "OKTA"), &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let elsewhere = s.create_sso_provider(new(other.id, "Okta"), &[]).await.unwrap();
    assert_eq!(
        s.list_sso_providers(Some(w.org.id)).await.unwrap(),
        std::slice::from_ref(&okta)
    );
    assert_eq!(
        s.list_sso_providers(None).await.unwrap(),
        [okta.clone(), elsewhere.clone()]
    );
    assert_eq!(s.get_sso_provider(okta.id).await.unwrap(), Some(okta.clone()));
    // Another organization's provider is not deleted through this one.
    assert_eq!(s.delete_sso_provider(w.org.id, elsewhere.id, &[]).await.unwrap(), None);
    assert_eq!(
        s.delete_sso_provider(w.org.id, okta.id, &[]).await.unwrap(),
        Some(okta.clone())
    );
    assert_eq!(s.get_sso_provider(okta.id).await.unwrap(), None);
}

async fn the_export_starts_at_a_time(s: Arc<dyn Store>) {
    assert_eq!(s.audit_cursor_at(0).await.unwrap(), 0, "an empty log starts at 0");
    let org = s.create_org("acme", 1).await.unwrap();
    let entry = |at: i64, target: &str| NewAuditEntry {
        org: org.id,
        at,
        actor: None,
        action: "api_key.created".into(),
        target_kind: "api_key".into(),
        target: target.into(),
        source_address: None,
        detail: None,
    };
    // Times out of ID order, as two replicas' clocks may write them.
    s.append_audit_entries(&[entry(100, "a"), entry(200, "b"), entry(150, "c"), entry(300, "d")])
        .await
        .unwrap();
    let (_, all) = s.audit_after(0, i64::MAX, 10).await.unwrap();
    let id = |target: &str| all.iter().find(|e| e.target == target).unwrap().id;
    let from = |cursor: i64| {
        all.iter()
            .filter(|e| e.id > cursor)
            .map(|e| e.target.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(from(s.audit_cursor_at(0).await.unwrap()), ["a", "b", "c", "d"]);
    assert_eq!(s.audit_cursor_at(100).await.unwrap(), id("a") - 1);
    // At or after 150: c, and b before it in ID order; nothing at or after 150 is left out.
    assert_eq!(from(s.audit_cursor_at(150).await.unwrap()), ["b", "c", "d"]);
    assert_eq!(from(s.audit_cursor_at(201).await.unwrap()), ["d"]);
    assert_eq!(
        s.audit_cursor_at(301).await.unwrap(),
        id("d"),
        "after the newest: nothing yet, and what comes next follows"
    );
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
    ending_sessions_is_announced,
    keys_are_stored_and_found_for_verification,
    keys_keep_the_scope_they_were_made_with,
    allowlists_travel_with_the_key_and_an_org_change_invalidates_its_owners,
    lists_page_newest_first_with_a_stable_cursor,
    keys_are_renamed_and_deleted,
    last_use_is_recorded_in_batches_and_never_moves_backwards,
    org_membership_is_recorded_with_its_role,
    lists_show_each_role_exactly_the_keys_it_may_see,
    service_accounts_have_a_scope_and_no_password,
    teams_have_unique_names_and_members_with_roles,
    the_last_active_admin_cannot_be_demoted_removed_deactivated_or_deleted,
    deactivation_and_deletion_reach_keys_and_sessions,
    audit_entries_are_written_with_their_change_and_listed_newest_first,
    invitations_set_a_password_once_before_they_expire,
    rotation_links_the_keys_and_only_ever_brings_the_old_expiry_forward,
    key_sources_are_merged_and_bounded_per_key,
    expiring_keys_are_found_and_announced_once,
    key_notices_are_given_once_per_kind_and_due_time,
    emails_are_queued_with_their_notice_and_claimed_under_a_lease,
    the_key_report_finds_each_kind_of_key,
    a_service_accounts_networks_change,
    webhook_events_are_queued_once_and_deliveries_claimed_under_a_lease,
    webhook_secrets_rotate_keeping_the_previous_version_with_its_time,
    committed_changes_announce_invalidations_and_auth_records_carry_the_orgs,
    concurrent_read_then_write_transactions_wait_their_turn,
    an_operator_resets_a_password_and_unlocks_sign_in_with_an_audit_entry,
    scim_records_are_kept_beside_members_and_teams_and_teams_are_deleted,
    sso_providers_are_kept_per_organization_with_unique_names,
    the_export_starts_at_a_time,
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
    let err = open("mysql://localhost/db").await.err().unwrap().to_string();
    assert!(err.contains("unsupported database URL scheme `mysql`"), "{err}");
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

/// The audit log refuses updates and deletes at the database level, whoever asks.
#[tokio::test]
async fn the_audit_log_is_append_only_in_the_database_itself() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = keysmith_store::SqliteStore::open(&path).await.unwrap();
    let (org, _) = store.bootstrap("acme", person("root"), 1).await.unwrap().unwrap();
    store
        .create_team(org.id, "t", 1, &[entry(org.id, "team.created", "t")])
        .await
        .unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for sql in ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }

    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let store = keysmith_store::PostgresStore::open(&url).await.unwrap();
    let (org, _) = store.bootstrap("acme", person("root"), 1).await.unwrap().unwrap();
    store
        .create_team(org.id, "t", 1, &[entry(org.id, "team.created", "t")])
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    for sql in ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"] {
        let err = cluster.psql(db, sql).unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        cluster.psql(db, "SELECT action FROM audit_log").unwrap().trim(),
        "team.created"
    );
}

/// Two stores on one PostgreSQL database, as two replicas: one hears what the other
/// commits, with the time the database sent it; a rolled-back change sends nothing.
#[tokio::test]
async fn postgres_replicas_hear_each_others_invalidations() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let a = keysmith_store::PostgresStore::open(&url).await.unwrap();
    let b = keysmith_store::PostgresStore::open(&url).await.unwrap();
    let mut feed = b
        .subscribe_invalidations()
        .await
        .unwrap()
        .expect("PostgreSQL has a feed");
    let org = a.create_org("acme", 1).await.unwrap();
    let admin = a.create_user(person("ada"), 1).await.unwrap();
    a.add_org_member(org.id, admin.id, OrgRole::Admin, 1, &[])
        .await
        .unwrap();
    let notice = feed.next().await.unwrap();
    assert_eq!(notice.invalidation, Invalidation::Owner(admin.id));
    assert!(notice.sent_at_ms > 1_700_000_000_000, "the database's clock, in ms");
    assert!(
        a.set_user_active(admin.id, false, &[]).await.map_err(refused).is_err(),
        "refused"
    );
    let key = a.insert_key(new_key(admin.id, "k", 1), &[]).await.unwrap();
    a.delete_key(&key.key_id, &[]).await.unwrap();
    let notice = feed.next().await.unwrap();
    assert_eq!(
        notice.invalidation,
        Invalidation::Key(key.key_id.to_string()),
        "the refused change sent nothing before it"
    );
    assert_eq!(
        feed.next().await.unwrap().invalidation,
        Invalidation::Key(key.key_id.to_string()),
        "the delete's own"
    );
    let digest = KeyDigest::of(b"a session token");
    a.create_session(NewSession {
        token_digest: digest,
        user_id: admin.id,
        created_at: 1,
        expires_at: i64::MAX,
    })
    .await
    .unwrap();
    a.delete_session(&digest).await.unwrap();
    assert_eq!(
        feed.next().await.unwrap().invalidation,
        Invalidation::Session(digest),
        "a sign-out reaches the other replicas"
    );
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = keysmith_store::SqliteStore::open(&sqlite_dir.path().join("k.db"))
        .await
        .unwrap();
    assert!(
        sqlite.subscribe_invalidations().await.unwrap().is_none(),
        "SQLite has no other replicas"
    );
}
