//! Listing the keys of an organization that holds 100,000 keys (issue 3 target: p99
//! under 20 ms per page of 100), on SQLite and PostgreSQL. Percentiles need every
//! sample, so this bench times each call itself instead of using criterion.
//!
//! Run with `cargo bench -p keysmith-store --bench listing` (a few minutes: it fills
//! both databases first).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keysmith_core::policy::Roles;
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{KeyPrefix, OrgId, TeamId, UserId, generate_v1};
use keysmith_store::{
    KeyCursor, KeyFilter, KeyListQuery, KeySort, NewServiceAccount, NewUser, PostgresStore, SqliteStore, Store,
    Visibility,
};
use std::sync::Arc;
use std::time::Instant;

const USERS: usize = 900;
const TEAMS: usize = 10;
const SERVICE_ACCOUNTS_PER_TEAM: usize = 10;
const KEYS_PER_OWNER: usize = 100;
const SAMPLES: usize = 300;

struct Fixture {
    org: OrgId,
    admin: UserId,
    member: UserId,
    team: TeamId,
    owners: Vec<UserId>,
}

async fn principals(store: &dyn Store) -> Fixture {
    let person = |name: String| NewUser {
        kind: PrincipalKind::User,
        username: name,
        email: None,
        password_hash: None,
    };
    let (org, admin) = store
        .bootstrap("bench", person("admin".into()), 0)
        .await
        .expect("bootstrap")
        .expect("empty db");
    let mut owners = Vec::new();
    for i in 0..USERS {
        owners.push(
            store
                .create_member(person(format!("user{i}")), org.id, OrgRole::Member, 0, &[])
                .await
                .expect("user")
                .id,
        );
    }
    let mut first_team = None;
    for t in 0..TEAMS {
        let team = store
            .create_team(org.id, &format!("team{t}"), 0, &[])
            .await
            .expect("team");
        first_team.get_or_insert(team.id);
        store
            .set_team_member(team.id, owners[t], TeamRole::Admin, 0, &[])
            .await
            .expect("member");
        for s in 0..SERVICE_ACCOUNTS_PER_TEAM {
            let sa = NewServiceAccount {
                org: org.id,
                team: Some(team.id),
                username: format!("bot{t}-{s}"),
                description: String::new(),
                created_by: None,
                external_subject: None,
                allowed_networks: None,
            };
            owners.push(store.create_service_account(sa, 0, &[]).await.expect("sa").user.id);
        }
    }
    Fixture {
        org: org.id,
        admin: admin.id,
        member: owners[TEAMS + 1],
        team: first_team.expect("a team"),
        owners,
    }
}

/// The rows, in batches inside one transaction: setup, not what is measured.
macro_rules! fill_keys {
    ($pool:expr, $db:ty, $fixture:expr) => {{
        let mut tx = $pool.begin().await.expect("begin");
        let mut n = 0i64;
        for chunk in $fixture.owners.chunks(5) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, created_by_user_id, created_at, last_used_at) ",
            );
            let mut rows = Vec::new();
            for owner in chunk {
                for _ in 0..KEYS_PER_OWNER {
                    n += 1;
                    let k = generate_v1(&KeyPrefix::default()).expect("csprng");
                    let purpose = if n % 100 == 0 { "nightly eval" } else { "training run" };
                    rows.push((k.key_id.to_string(), k.digest.as_bytes().to_vec(), format!("{purpose} {n}"), owner.0, n));
                }
            }
            qb.push_values(rows, |mut b, (key_id, digest, name, owner, n)| {
                b.push_bind(key_id.clone())
                    .push_bind(digest)
                    .push_bind("v1")
                    .push_bind(key_id)
                    .push_bind(name)
                    .push_bind(owner)
                    .push_bind(owner)
                    .push_bind(1_700_000_000_000i64 + n * 1000)
                    .push_bind(if n % 3 == 0 { Some(1_800_000_000_000i64 + n) } else { None });
            });
            qb.build().execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
        n
    }};
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(store: &dyn Store, label: &str, query: KeyListQuery) -> String {
    let expected = store.list_keys(&query).await.expect("list").len();
    let mut ms = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let page = store.list_keys(&query).await.expect("list");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), expected);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    format!(
        "| {label} | {expected} | {:.2} | {:.2} | {:.2} |",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    )
}

async fn run(backend: &str, store: Arc<dyn Store>, fixture: &Fixture) {
    let roles = store.roles(fixture.admin).await.expect("roles");
    let admin = Visibility {
        caller: Some(fixture.admin),
        admin_orgs: roles.admin_of_orgs.into_iter().collect(),
        admin_teams: vec![],
    };
    let page = |visibility: Visibility, filter: KeyFilter, sort: KeySort, after: Option<KeyCursor>| KeyListQuery {
        visibility,
        filter,
        sort,
        after,
        limit: 100,
    };
    // The cursor halfway down: the 50,000th key, newest first.
    let mut cursor = None;
    for _ in 0..500 {
        let rows = store
            .list_keys(&page(
                admin.clone(),
                KeyFilter::default(),
                KeySort::Created,
                cursor.clone(),
            ))
            .await
            .expect("walk");
        let last = rows.last().expect("row");
        cursor = Some(KeyCursor {
            value: last.created_at,
            key_id: last.key_id.to_string(),
        });
    }
    let team_admin_roles: Roles = store.roles(fixture.owners[0]).await.expect("roles");
    let team_admin = Visibility {
        caller: Some(fixture.owners[0]),
        admin_orgs: vec![],
        admin_teams: team_admin_roles.admin_of_teams.into_iter().collect(),
    };
    let rows = [
        measure(
            store.as_ref(),
            "org admin, first page",
            page(admin.clone(), KeyFilter::default(), KeySort::Created, None),
        )
        .await,
        measure(
            store.as_ref(),
            "org admin, page 501 (cursor)",
            page(admin.clone(), KeyFilter::default(), KeySort::Created, cursor),
        )
        .await,
        measure(
            store.as_ref(),
            "org admin, name contains `nightly` (1 %)",
            page(
                admin.clone(),
                KeyFilter {
                    name_contains: Some("nightly".into()),
                    ..Default::default()
                },
                KeySort::Created,
                None,
            ),
        )
        .await,
        measure(
            store.as_ref(),
            "org admin, owner kind service account",
            page(
                admin.clone(),
                KeyFilter {
                    owner_kind: Some(PrincipalKind::ServiceAccount),
                    ..Default::default()
                },
                KeySort::Created,
                None,
            ),
        )
        .await,
        measure(
            store.as_ref(),
            "org admin, team filter",
            page(
                admin.clone(),
                KeyFilter {
                    team: Some(fixture.team),
                    ..Default::default()
                },
                KeySort::Created,
                None,
            ),
        )
        .await,
        measure(
            store.as_ref(),
            "org admin, sort by last used",
            page(admin.clone(), KeyFilter::default(), KeySort::LastUsed, None),
        )
        .await,
        measure(
            store.as_ref(),
            "team admin (own + team's bots)",
            page(team_admin, KeyFilter::default(), KeySort::Created, None),
        )
        .await,
        measure(
            store.as_ref(),
            "member (own keys)",
            page(
                Visibility::own(fixture.member),
                KeyFilter::default(),
                KeySort::Created,
                None,
            ),
        )
        .await,
    ];
    println!("\n{backend}: 100,000 keys, page of 100, {SAMPLES} samples each\n");
    println!("| query | rows | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    let _ = fixture.org;
}

fn main() {
    // `cargo bench` passes --bench; nothing else is understood.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("bench.db")).await.expect("sqlite");
        let fixture = principals(&sqlite).await;
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("bench.db").display()))
            .await
            .expect("pool");
        let n = fill_keys!(pool, sqlx::Sqlite, fixture);
        sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
        assert_eq!(n, 100_000);
        run("SQLite", Arc::new(sqlite), &fixture).await;

        let cluster = keysmith_pgtest::PgCluster::start_durable().expect("postgres");
        let url = cluster.create_database().expect("database");
        let postgres = PostgresStore::open(&url).await.expect("postgres");
        let fixture = principals(&postgres).await;
        let pool = sqlx::PgPool::connect(&url).await.expect("pool");
        fill_keys!(pool, sqlx::Postgres, fixture);
        sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
        run("PostgreSQL", Arc::new(postgres), &fixture).await;
    });
}
