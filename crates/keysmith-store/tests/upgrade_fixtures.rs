//! Databases made by every earlier schema version, opened by this one, on both
//! backends. Each fixture under `tests/fixtures/upgrade/` is a dump (`sqlite-NNNN.sql`
//! by Python's sqlite3 `iterdump`, `postgres-NNNN.sql` by `pg_dump --inserts`) of a
//! database that lived through versions 1 to NNNN: each version's migration, then what
//! that version stores ([`seed`]). Fixtures are written once, when their version is the
//! newest, and never again, so that they hold what the migrations of their day made
//! (sqlx refuses a database whose applied migration has since been edited):
//!
//!   KEYSMITH_UPDATE_FIXTURES=1 cargo test -p keysmith-store --test upgrade_fixtures
//!
//! writes the missing ones; without it, a schema version with no fixture fails.
//!
//! Opened by this version, every fixture keeps every row, and its keys still verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keysmith_core::{KeyDigest, KeyId, PresentedKey};
use keysmith_store::Store;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Olga's key, made at version 1 (a v1 key, 86 characters).
const OLGA_V1: &str = "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";
/// The service account's legacy key, stored at version 2.
const BOT_LEGACY: &str = "Q5kFh2m9ZpX4rT7vB1nC8dL3sW6yG0jHaKeUuIoP";
/// Olga's imported legacy key, with a prefix, at version 3.
const OLGA_LEGACY: &str = "local-b7Tq2LmZ9xR4cV8nK1pW6sD3fG0hJ5yA2eU7iO9w";

fn digest(key: &str) -> KeyDigest {
    PresentedKey::parse(key).unwrap().digest()
}

fn v1_key_id() -> KeyId {
    match PresentedKey::parse(OLGA_V1).unwrap() {
        PresentedKey::V1(k) => KeyId::parse(k.key_id()).unwrap(),
        PresentedKey::Legacy(_) => unreachable!(),
    }
}

/// What version `version` stores right after its migration, in SQL both backends take;
/// a statement with `$1` binds the digest given with it.
fn seed(version: i64) -> Vec<(String, Option<KeyDigest>)> {
    let key_id = v1_key_id();
    let key_id = key_id.as_str();
    let plain = |sql: &str| (sql.to_owned(), None);
    match version {
        1 => vec![
            plain("INSERT INTO orgs (name, created_at) VALUES ('acme', 1)"),
            plain(
                "INSERT INTO users (kind, username, email, password_hash, active, created_at) \
                 VALUES ('user', 'olga', 'olga@example.com', NULL, TRUE, 1)",
            ),
            plain(
                "INSERT INTO users (kind, username, email, password_hash, active, created_at) \
                 VALUES ('service_account', 'ci-bot', NULL, NULL, TRUE, 2)",
            ),
            plain("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (1, 1, 'admin', 1)"),
            plain("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (1, 2, 'member', 2)"),
            (
                format!(
                    "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, \
                     created_by_user_id, created_at, last_used_at) \
                     VALUES ('{key_id}', $1, 'v1', '{key_id}', 'laptop', 1, 1, 10, 11)"
                ),
                Some(digest(OLGA_V1)),
            ),
        ],
        2 => vec![
            plain("INSERT INTO teams (org_id, name, created_at) VALUES (1, 'vision', 20)"),
            plain("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (1, 1, 'admin', 20)"),
            plain(
                "INSERT INTO service_accounts (user_id, org_id, team_id, description, created_by_user_id) \
                 VALUES (2, 1, 1, 'nightly training', 1)",
            ),
            (
                "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, \
                 created_by_user_id, created_at) VALUES ('legacy_B0tLegacyHandle000000000000', $1, 'legacy', 'Q5kFh2…', 'ci', 2, 1, 21)"
                    .to_owned(),
                Some(digest(BOT_LEGACY)),
            ),
            plain(&format!(
                "INSERT INTO audit_log (org_id, at, actor_id, actor_name, action, target_kind, target, \
                 source_address, detail) VALUES (1, 21, 1, 'olga', 'api_key.created', 'api_key', '{key_id}', \
                 '192.0.2.1', '{{\"name\":\"laptop\"}}')"
            )),
            plain(
                "INSERT INTO audit_log (org_id, at, actor_id, actor_name, action, target_kind, target, \
                 source_address, detail) VALUES (1, 22, 1, 'olga', 'team.created', 'team', 'vision', NULL, NULL)",
            ),
        ],
        3 => vec![
            plain("UPDATE orgs SET legacy_keys_allowed = TRUE"),
            (
                "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, \
                 created_by_user_id, created_at) VALUES ('legacy_O1gaLegacyHandle00000000000', $1, 'legacy', 'local-…', 'old laptop', 1, 1, 30)"
                    .to_owned(),
                Some(digest(OLGA_LEGACY)),
            ),
        ],
        4 => vec![
            plain("UPDATE api_keys SET expires_at = 4000000000000 WHERE key_id = 'legacy_B0tLegacyHandle000000000000'"),
            plain(&format!(
                "INSERT INTO key_sources (key_id, address, user_agent, first_seen, last_seen) \
                 VALUES ('{key_id}', '192.0.2.1', 'wandb/0.21.0', 40, 41)"
            )),
            plain(
                "INSERT INTO webhook_endpoints (org_id, uid, url, events, description, created_at, created_by) \
                 VALUES (1, 'ep_fixture', 'https://hooks.example.com/keysmith', 'api_key.created,api_key.deleted', \
                 'SIEM', 42, 1)",
            ),
        ],
        7 => vec![plain(
            "INSERT INTO jwt_issuers (org_id, issuer, audience, created_at, created_by) \
             VALUES (1, 'https://token.actions.githubusercontent.com', NULL, 70, 1)",
        )],
        9 => vec![plain(
            "INSERT INTO sso_providers (org_id, name, issuer, client_id, client_secret_file, scopes, \
             groups_claim, jit, group_rules, created_at, created_by) VALUES (1, 'okta', 'https://idp.example.com', \
             'keysmith', 'okta-secret', 'openid email', 'groups', FALSE, '[]', 90, 1)",
        )],
        14 => vec![plain(&format!(
            "INSERT INTO key_notices (key_id, kind, due_at, announced_at) VALUES ('{key_id}', 'unused', 11, 140)"
        ))],
        15 => vec![plain(
            "INSERT INTO email_outbox (dedupe, to_address, subject, body, status, attempts, next_attempt_at, \
             created_at, sent_at) VALUES ('unused:fixture', 'olga@example.com', 'A key of yours is unused', \
             'text', 'sent', 1, 150, 150, 151)",
        )],
        _ => Vec::new(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

fn fixture(backend: &str, version: i64) -> PathBuf {
    fixtures().join(format!("{backend}-{version:04}.sql"))
}

/// The migrations up to and including `version`.
fn up_to(mut migrator: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    migrator.migrations = Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
    );
    migrator
}

fn versions() -> Vec<i64> {
    sqlx::migrate!("./migrations/sqlite")
        .migrations
        .iter()
        .map(|m| m.version)
        .collect()
}

/// Brings `$pool` through versions 1 to `$version`: each migration, then its seed.
macro_rules! live_through {
    ($pool:expr, $dir:literal, $version:expr) => {{
        let pool = $pool;
        for v in 1..=$version {
            up_to(sqlx::migrate!($dir), v).run(&pool).await.unwrap();
            for (sql, digest) in seed(v) {
                let mut q = sqlx::query(&sql);
                if let Some(d) = &digest {
                    q = q.bind(d.as_bytes().to_vec());
                }
                q.execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("version {v}: {sql}: {e}"));
            }
        }
        pool.close().await;
    }};
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn write_sqlite_fixture(version: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    live_through!(
        sqlx::SqlitePool::connect_with(options).await.unwrap(),
        "./migrations/sqlite",
        version
    );
    let dump = run(Command::new("python3").args([
        "-c",
        "import sqlite3, sys\nfor line in sqlite3.connect(sys.argv[1]).iterdump(): print(line)",
        path.to_str().unwrap(),
    ]));
    std::fs::write(fixture("sqlite", version), dump).unwrap();
}

async fn write_postgres_fixture(cluster: &keysmith_pgtest::PgCluster, version: i64) {
    let url = cluster.create_database().unwrap();
    live_through!(
        sqlx::PgPool::connect(&url).await.unwrap(),
        "./migrations/postgres",
        version
    );
    let dump = run(Command::new(cluster.bin_dir().join("pg_dump")).args([
        "--no-owner",
        "--no-privileges",
        "--no-comments",
        "--inserts",
        &url,
    ]));
    // `\restrict` guards a restore of an untrusted dump; these are ours, and a psql older
    // than 15.14 would not know the command.
    let dump: String = dump
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(fixture("postgres", version), dump).unwrap();
}

/// Every schema version has its fixtures; with KEYSMITH_UPDATE_FIXTURES=1 the missing
/// ones are written (never an existing one).
#[tokio::test]
async fn every_schema_version_has_fixtures() {
    let update = std::env::var_os("KEYSMITH_UPDATE_FIXTURES").is_some();
    let cluster = update.then(|| keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster"));
    let mut missing = Vec::new();
    for v in versions() {
        for backend in ["sqlite", "postgres"] {
            if fixture(backend, v).exists() {
                continue;
            }
            match (&cluster, backend) {
                (None, _) => missing.push(fixture(backend, v)),
                (Some(_), "sqlite") => write_sqlite_fixture(v).await,
                (Some(c), _) => write_postgres_fixture(c, v).await,
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no fixture for {missing:?}: a new migration needs its fixtures, made by the migrations of \
         its day: KEYSMITH_UPDATE_FIXTURES=1 cargo test -p keysmith-store --test upgrade_fixtures"
    );
}

/// Each table's rows, by raw SQL.
macro_rules! counts {
    ($pool:expr) => {{
        let mut counts = Vec::new();
        for table in keysmith_store::TABLES {
            let n: Result<i64, _> = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one($pool)
                .await;
            if let Ok(n) = n {
                counts.push((*table, n));
            }
        }
        counts
    }};
}

/// The fixture of `version`, opened by this version: every row kept, every key found
/// with its digest, every seeded row readable through the store.
async fn check(store: &dyn Store, version: i64, before: &[(&str, i64)], after: &[(&str, i64)]) {
    for (table, n) in before {
        let now = after.iter().find(|(t, _)| t == table).map(|(_, n)| *n);
        // 0014 writes notices for keys warned under the old rule; the fixtures have none.
        assert_eq!(now, Some(*n), "version {version}: table {table} lost or gained rows");
    }
    let olga = store.find_key_for_auth(&v1_key_id()).await.unwrap().unwrap();
    assert!(
        olga.digest.ct_eq(&digest(OLGA_V1)),
        "version {version}: the v1 key verifies"
    );
    if version >= 2 {
        let bot = store
            .find_legacy_key_for_auth(&digest(BOT_LEGACY))
            .await
            .unwrap()
            .expect("the service account's legacy key is found");
        assert_eq!(bot.owner.username, "ci-bot", "version {version}");
        let audit = store
            .list_audit(&keysmith_store::AuditQuery {
                org: Some(keysmith_core::OrgId(1)),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 2, "version {version}: the audit entries");
    }
    if version >= 3 {
        assert!(
            store
                .find_legacy_key_for_auth(&digest(OLGA_LEGACY))
                .await
                .unwrap()
                .is_some(),
            "version {version}: the imported legacy key verifies"
        );
    }
    if version >= 4 {
        let hooks = store.list_webhooks(keysmith_core::OrgId(1)).await.unwrap();
        assert_eq!(hooks.len(), 1, "version {version}");
        assert_eq!(hooks[0].events, ["api_key.created", "api_key.deleted"]);
    }
    if version >= 7 {
        assert_eq!(store.list_jwt_issuers(keysmith_core::OrgId(1)).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn sqlite_databases_of_every_version_upgrade() {
    let versions = versions();
    for v in &versions {
        let dump = std::fs::read_to_string(fixture("sqlite", *v)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        // A dump creates tables in name order: foreign keys are checked once it is in.
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(false);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(&dump).execute(&pool).await.unwrap();
        let dangling: Vec<sqlx::sqlite::SqliteRow> =
            sqlx::query("PRAGMA foreign_key_check").fetch_all(&pool).await.unwrap();
        assert!(dangling.is_empty(), "version {v}: the fixture's foreign keys hold");
        let before = counts!(&pool);
        pool.close().await;
        let store = keysmith_store::SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("version {v}: {e}"));
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let after = counts!(&pool);
        check(&store, *v, &before, &after).await;
    }
}

#[tokio::test]
async fn postgresql_databases_of_every_version_upgrade() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    for v in versions() {
        let url = cluster.create_database().unwrap();
        run(Command::new(cluster.bin_dir().join("psql")).args([
            "--quiet",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &url,
            "-f",
            fixture("postgres", v).to_str().unwrap(),
        ]));
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let before = counts!(&pool);
        let store = keysmith_store::PostgresStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("version {v}: {e}"));
        let after = counts!(&pool);
        check(&store, v, &before, &after).await;
    }
}

/// A database a newer version migrated further (a migration this binary does not
/// know, as during a rolling upgrade): this binary still opens it while
/// `schema_compat.oldest_reader` allows, and refuses it with a sentence once a newer
/// migration declares older code unable to read it.
macro_rules! newer_schema {
    ($pool:expr, $open:expr) => {{
        let pool = $pool;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer version', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(&pool)
        .await
        .unwrap();
        assert!($open.await.is_ok(), "an additive newer schema is still read");
        sqlx::query("UPDATE schema_compat SET oldest_reader = 9999")
            .execute(&pool)
            .await
            .unwrap();
        let err = $open
            .await
            .err()
            .expect("a newer schema that older code may not read is refused")
            .to_string();
        assert!(
            err.contains("upgraded by a newer Keysmith")
                && err.contains("9999")
                && err.contains("Upgrade this replica"),
            "{err}"
        );
    }};
}

#[tokio::test]
async fn sqlite_a_newer_schema_is_read_until_it_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    drop(keysmith_store::SqliteStore::open(&path).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    newer_schema!(pool, keysmith_store::SqliteStore::open(&path));
}

#[tokio::test]
async fn postgresql_a_newer_schema_is_read_until_it_says_otherwise() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    drop(keysmith_store::PostgresStore::open(&url).await.unwrap());
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    newer_schema!(pool, keysmith_store::PostgresStore::open(&url));
}
