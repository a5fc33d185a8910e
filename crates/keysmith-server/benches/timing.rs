//! Do refusals tell an unknown key ID, a wrong secret and a deleted key apart by
//! their timing? A statistical bench (not a test): samples of the three classes are
//! taken interleaved in a random order through the whole verification
//! (`verify_key`: parse, checksum, cache or SQLite, SHA-256, constant-time compare),
//! then compared pairwise with Welch's t-test on the samples below the pooled 90th
//! percentile (cropping, as dudect does, keeps scheduler noise from hiding or faking a
//! difference). |t| above 4.5 would mean the classes are told apart.
//!
//! Two states: warm (each key presented before, as an attacker repeating a guess
//! finds it) and cold (the cache emptied before every sample: each refusal reads
//! SQLite).
//!
//! cargo bench -p keysmith-server --bench timing [-- samples per class, default 20000]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyPrefix, generate_v1};
use keysmith_server::auth::verify::{Client, verify_key};
use keysmith_server::{AppState, ManualClock, Settings};
use keysmith_store::{KeyFormat, NewKey, NewUser, SqliteStore, Store};
use std::sync::Arc;
use std::time::Instant;

const CLASSES: [&str; 3] = ["unknown key ID", "wrong secret", "deleted key"];
const KEYS_PER_CLASS: usize = 64;

/// A key with `key_id` and someone else's secret, with a valid checksum: it passes
/// every check before the digest comparison.
fn with_wrong_secret(key_id: &str, prefix: &KeyPrefix) -> String {
    let other = generate_v1(prefix).unwrap();
    let other = other.plaintext.expose();
    let secret = &other[other.len() - 49..other.len() - 6];
    let checked = format!("{key_id}_{secret}");
    let mut checksum = [0u8; 6];
    keysmith_core::base62::encode_padded(u64::from(crc32fast::hash(checked.as_bytes())), &mut checksum);
    format!("{checked}{}", std::str::from_utf8(&checksum).unwrap())
}

/// A small xorshift: the order of the classes, without a dependency.
struct Order(u64);

impl Order {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let var = |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0);
    let (ma, mb) = (mean(a), mean(b));
    (ma - mb) / (var(a, ma) / a.len() as f64 + var(b, mb) / b.len() as f64).sqrt()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(state: &str, samples: &[Vec<f64>; 3]) {
    let mut pooled: Vec<f64> = samples.iter().flatten().copied().collect();
    pooled.sort_by(f64::total_cmp);
    let crop = percentile(&pooled, 0.9);
    println!(
        "{state}: {} samples per class, cropped at {crop:.0} ns",
        samples[0].len()
    );
    for (class, s) in CLASSES.iter().zip(samples) {
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "  {class:<15} p10 {:>7.0} ns  median {:>7.0} ns  p90 {:>7.0} ns",
            percentile(&sorted, 0.1),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9)
        );
    }
    let cropped: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.iter().copied().filter(|&v| v <= crop).collect())
        .collect();
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let t = welch_t(&cropped[i], &cropped[j]);
        let verdict = if t.abs() > 4.5 {
            "TOLD APART"
        } else {
            "indistinguishable"
        };
        println!("  {} vs {}: t = {t:+.2} ({verdict})", CLASSES[i], CLASSES[j]);
    }
}

fn main() {
    let per_class: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime
        .block_on(SqliteStore::open(&dir.path().join("timing.db")))
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    // The failure limit would answer 429 after a minute's worth: off, to time the
    // verification itself.
    let settings = Settings {
        key_failures_per_minute: 0,
        ..Settings::default()
    };
    let state = AppState::new(store.clone(), Arc::new(ManualClock::new(1_000)), settings);
    let prefix = KeyPrefix::default();

    let keys: [Vec<String>; 3] = runtime.block_on(async {
        let user = NewUser {
            kind: PrincipalKind::User,
            username: "owner".into(),
            email: None,
            password_hash: None,
        };
        let owner = store.create_user(user, 1).await.unwrap().id;
        let mut stored = Vec::new();
        for _ in 0..2 * KEYS_PER_CLASS {
            let g = generate_v1(&prefix).unwrap();
            let new = NewKey {
                key_id: g.key_id.clone(),
                digest: g.digest,
                format: KeyFormat::V1,
                display: g.display.clone(),
                name: "k".into(),
                owner,
                created_by: Some(owner),
                created_at: 1,
                expires_at: None,
                rotated_from: None,
                federated_issuer: None,
                scope: keysmith_core::KeyScope::Admin,
                allowed_networks: None,
                requests_per_minute: None,
            };
            store.insert_key(new, &[]).await.unwrap();
            stored.push(g);
        }
        let (live, deleted) = stored.split_at(KEYS_PER_CLASS);
        for g in deleted {
            assert!(store.delete_key(&g.key_id, &[]).await.unwrap());
        }
        [
            (0..KEYS_PER_CLASS)
                .map(|_| generate_v1(&prefix).unwrap().plaintext.expose().to_owned())
                .collect(),
            live.iter()
                .map(|g| with_wrong_secret(g.key_id.as_str(), &prefix))
                .collect(),
            deleted.iter().map(|g| g.plaintext.expose().to_owned()).collect(),
        ]
    });

    let client = Client {
        address: "192.0.2.1",
        user_agent: "timing",
        ip: "192.0.2.1".parse().ok(),
        write: false,
    };
    let mut order = Order(0x9e37_79b9_7f4a_7c15);
    for cold in [false, true] {
        let n = if cold { per_class / 4 } else { per_class };
        let mut samples: [Vec<f64>; 3] = Default::default();
        runtime.block_on(async {
            // Warm-up: every key once (fills the cache), and the code paths hot.
            for class in &keys {
                for key in class {
                    assert!(verify_key(&state, key, client).await.is_err());
                }
            }
            while samples.iter().any(|s| s.len() < n) {
                let class = order.next(3);
                if samples[class].len() == n {
                    continue;
                }
                let key = &keys[class][order.next(KEYS_PER_CLASS)];
                if cold {
                    state.cache.clear();
                }
                let started = Instant::now();
                let refused = verify_key(&state, key, client).await.is_err();
                let elapsed = started.elapsed();
                assert!(refused);
                samples[class].push(elapsed.as_nanos() as f64);
            }
        });
        report(if cold { "cold (SQLite read)" } else { "warm (cache)" }, &samples);
    }
}
