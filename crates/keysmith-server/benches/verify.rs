//! In-process verification from the cache, the hot path of every request with a
//! warm key: parse, checksum, cache lookup, SHA-256, constant-time compare, owner and
//! expiry checks, and noting the use and its source. Measured with 1,000 to 1,000,000
//! keys in the cache, to show that the cost does not grow with the key count; and the
//! cache's memory per key, from the process's resident size.
//!
//! cargo bench -p keysmith-server --bench verify

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyPrefix, UserId, generate_v1};
use keysmith_server::auth::verify::{Client, verify_now};
use keysmith_server::cache::Entry;
use keysmith_server::{AppState, ManualClock, Settings};
use keysmith_store::{AuthRecord, SqliteStore, UserRef};
use std::hint::black_box;
use std::sync::Arc;

fn record(key: &keysmith_core::GeneratedKey, owner: i64) -> AuthRecord {
    AuthRecord {
        key_id: key.key_id.clone(),
        digest: key.digest,
        owner: UserRef {
            id: UserId(owner),
            kind: PrincipalKind::User,
            username: format!("user{owner}"),
        },
        owner_active: true,
        expires_at: None,
        orgs: vec!["default".into()],
        scope: keysmith_core::KeyScope::Admin,
        key_networks: None,
        requests_per_minute: None,
        account_networks: None,
        org_networks: Vec::new(),
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A state whose cache holds `n` keys; returns it with one of those keys in full.
fn state_with(n: usize, runtime: &tokio::runtime::Runtime) -> (AppState, String, tempfile::TempDir) {
    state_of(n, runtime, |_, _| {})
}

/// The same, each key's record shaped by `shape` (its index and record) first.
fn state_of(
    n: usize,
    runtime: &tokio::runtime::Runtime,
    shape: impl Fn(usize, &mut AuthRecord),
) -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = runtime
        .block_on(SqliteStore::open(&dir.path().join("bench.db")))
        .unwrap();
    let settings = Settings {
        cache_max_keys: n + 1024,
        ..Settings::default()
    };
    let state = AppState::new(Arc::new(store), Arc::new(ManualClock::new(1_000)), settings);
    let prefix = KeyPrefix::default();
    let mut probe = String::new();
    for i in 0..n {
        let key = generate_v1(&prefix).unwrap();
        let mut record = record(&key, (i % 1000) as i64);
        shape(i, &mut record);
        let entry = Entry::from_record(&record, 1_000);
        state.cache.fill(state.cache.ticket(), key.key_id.as_str(), entry);
        if i == n / 2 {
            probe = key.plaintext.expose().to_owned();
        }
    }
    (state, probe, dir)
}

fn cached_verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Memory: the resident size grown by a million cached keys.
    let before = resident_bytes();
    let (state, _, _dir) = state_with(1_000_000, &runtime);
    let after = resident_bytes();
    eprintln!(
        "cache memory: {} keys, {:.0} bytes per key (resident size grew by {} MiB)",
        state.cache.len(),
        after.saturating_sub(before) as f64 / state.cache.len() as f64,
        after.saturating_sub(before) / (1 << 20)
    );
    drop(state);
    // The worst case: every key with a scope, an allowlist and a request limit of its
    // own, so that no key shares its policy.
    let before = resident_bytes();
    let (state, _, _dir) = state_of(1_000_000, &runtime, |i, r| {
        r.scope = keysmith_core::KeyScope::Read;
        r.key_networks = Some(format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255));
        r.requests_per_minute = Some(600);
    });
    let after = resident_bytes();
    eprintln!(
        "cache memory, every key with its own allowlist and limit: {:.0} bytes per key",
        after.saturating_sub(before) as f64 / state.cache.len() as f64,
    );
    drop(state);

    let mut group = c.benchmark_group("cached_verification");
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let (state, key, _dir) = state_with(n, &runtime);
        let client = Client {
            address: "10.0.0.1",
            user_agent: "W&B Internal Client 0.31.0",
            ip: "10.0.0.1".parse().ok(),
            write: false,
        };
        assert!(verify_now(&state, &key, client).expect("cached").is_ok());
        group.bench_with_input(BenchmarkId::from_parameter(n), &key, |b, key| {
            b.iter(|| black_box(verify_now(&state, black_box(key), client).expect("cached").is_ok()));
        });
    }
    group.finish();
}

criterion_group!(benches, cached_verification);
criterion_main!(benches);
