//! The store's lookup of a key by key ID, on both backends. Run with
//! `cargo bench -p keysmith-store` (starts a throwaway PostgreSQL cluster).

#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyPrefix, generate_v1};
use keysmith_store::{KeyFormat, NewKey, NewUser, PostgresStore, SqliteStore, Store};
use std::sync::Arc;

const KEYS: usize = 10_000;

async fn fill(store: &dyn Store) -> Vec<keysmith_core::KeyId> {
    let owner = store
        .create_user(
            NewUser {
                kind: PrincipalKind::User,
                username: "bench".into(),
                email: None,
                password_hash: None,
            },
            0,
        )
        .await
        .expect("user");
    let mut ids = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let k = generate_v1(&KeyPrefix::default()).expect("csprng");
        store
            .insert_key(
                NewKey {
                    key_id: k.key_id.clone(),
                    digest: k.digest,
                    format: KeyFormat::V1,
                    display: k.display,
                    name: format!("k{i}"),
                    owner: owner.id,
                    created_by: None,
                    created_at: i as i64,
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
            .expect("insert");
        ids.push(k.key_id);
    }
    ids
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Store> = Arc::new(
        rt.block_on(SqliteStore::open(&dir.path().join("bench.db")))
            .expect("sqlite"),
    );
    let cluster = keysmith_pgtest::PgCluster::start_durable().expect("postgres");
    let url = cluster.create_database().expect("database");
    let postgres: Arc<dyn Store> = Arc::new(rt.block_on(PostgresStore::open(&url)).expect("postgres"));

    for (name, store) in [("sqlite", sqlite), ("postgres", postgres)] {
        let ids = rt.block_on(fill(store.as_ref()));
        let mut i = 0;
        c.bench_function(&format!("find_key_for_auth/{name}/{KEYS}_keys"), |b| {
            b.iter(|| {
                i = (i + 7919) % ids.len();
                rt.block_on(store.find_key_for_auth(&ids[i]))
                    .expect("lookup")
                    .expect("found")
            })
        });
    }
}

criterion_group!(benches, lookup);
criterion_main!(benches);
