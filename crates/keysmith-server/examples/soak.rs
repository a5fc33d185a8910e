//! The soak run (scripts/soak): for a bounded time, verifiers present live and
//! revoked keys to a running Keysmith through forward auth while a churner creates
//! and deletes keys. Counts every answer; any error, any live key refused, and above
//! all any revoked key accepted is reported, and makes the run fail. The server's
//! resident memory is sampled as it goes.
//!
//! KEYSMITH_API_KEY=<admin key> soak <url> <seconds> <server pid> [verifiers]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Live,
    Deleting,
    Deleted,
}

#[derive(Default)]
struct Keys {
    /// key → state; keys are never forgotten, so revoked ones keep being tried.
    all: Mutex<Vec<(String, String)>>,
    state: Mutex<HashMap<String, State>>,
}

impl Keys {
    fn state(&self, key_id: &str) -> State {
        self.state.lock().unwrap()[key_id]
    }
    fn set(&self, key_id: &str, state: State) {
        self.state.lock().unwrap().insert(key_id.to_owned(), state);
    }
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    refused_revoked: AtomicU64,
    /// Unexpected answers or transport errors.
    errors: AtomicU64,
    /// A live key refused (not being deleted at the time).
    live_refused: AtomicU64,
    /// A key whose delete had been acknowledged, accepted.
    revoked_accepted: AtomicU64,
    created: AtomicU64,
    deleted: AtomicU64,
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn churn(
    client: reqwest::Client,
    url: String,
    admin: String,
    keys: Arc<Keys>,
    counts: Arc<Counts>,
    until: Instant,
) {
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let created = client
            .post(format!("{url}/api/v1/api-keys"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": format!("soak-{n}")}))
            .send()
            .await;
        let body: serde_json::Value = match created {
            Ok(r) if r.status() == 201 => r.json().await.unwrap(),
            _ => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let key_id = body["key_id"].as_str().unwrap().to_owned();
        keys.set(&key_id, State::Live);
        keys.all
            .lock()
            .unwrap()
            .push((key_id, body["key"].as_str().unwrap().to_owned()));
        counts.created.fetch_add(1, Ordering::Relaxed);
        // Keep about 200 live keys: past that, delete the oldest live one.
        let victim = {
            let all = keys.all.lock().unwrap();
            let state = keys.state.lock().unwrap();
            let live: Vec<&String> = all
                .iter()
                .map(|(id, _)| id)
                .filter(|id| state[*id] == State::Live)
                .collect();
            (live.len() > 200).then(|| live[0].clone())
        };
        if let Some(victim) = victim {
            keys.set(&victim, State::Deleting);
            let deleted = client
                .delete(format!("{url}/api/v1/api-keys/{victim}"))
                .bearer_auth(&admin)
                .send()
                .await;
            match deleted {
                Ok(r) if r.status() == 204 => {
                    keys.set(&victim, State::Deleted);
                    counts.deleted.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

async fn verify(client: reqwest::Client, url: String, keys: Arc<Keys>, counts: Arc<Counts>, until: Instant, seed: u64) {
    let mut x = seed | 1;
    while Instant::now() < until {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let picked = {
            let all = keys.all.lock().unwrap();
            if all.is_empty() {
                None
            } else {
                Some(all[(x % all.len() as u64) as usize].clone())
            }
        };
        let Some((key_id, key)) = picked else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let before = keys.state(&key_id);
        let answer = client
            .get(format!("{url}/api/v1/forward-auth"))
            .bearer_auth(&key)
            .send()
            .await;
        let after = keys.state(&key_id);
        let status = match answer {
            Ok(r) => r.status().as_u16(),
            Err(_) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match (status, before, after) {
            (200, State::Deleted, _) => {
                counts.revoked_accepted.fetch_add(1, Ordering::Relaxed);
                println!("REVOKED KEY ACCEPTED: {key_id}");
            }
            (200, _, _) => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
            }
            (401, State::Live, State::Live) => {
                counts.live_refused.fetch_add(1, Ordering::Relaxed);
                println!("live key refused: {key_id}");
            }
            (401, _, _) => {
                counts.refused_revoked.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                println!("unexpected status {status} for {key_id}");
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: soak <url> <seconds> <server pid> [verifiers]");
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).expect("seconds");
    let pid: u32 = args.next().and_then(|s| s.parse().ok()).expect("server pid");
    let verifiers: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let admin = std::env::var("KEYSMITH_API_KEY").expect("KEYSMITH_API_KEY: an admin key");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let keys = Arc::new(Keys::default());
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);

    let mut tasks = vec![tokio::spawn(churn(
        client.clone(),
        url.clone(),
        admin,
        keys.clone(),
        counts.clone(),
        until,
    ))];
    for i in 0..verifiers {
        tasks.push(tokio::spawn(verify(
            client.clone(),
            url.clone(),
            keys.clone(),
            counts.clone(),
            until,
            0x9e37_79b9_7f4a_7c15 ^ (i + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        )));
    }
    let mut memory = Vec::new();
    while Instant::now() < until {
        memory.push(resident_kib(pid));
        let c = &counts;
        println!(
            "{:>4}s  rss {:>7} KiB  accepted {:>9}  revoked refused {:>8}  created {:>6}  deleted {:>6}  errors {}  live refused {}  REVOKED ACCEPTED {}",
            started.elapsed().as_secs(),
            memory.last().unwrap(),
            c.accepted.load(Ordering::Relaxed),
            c.refused_revoked.load(Ordering::Relaxed),
            c.created.load(Ordering::Relaxed),
            c.deleted.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
            c.live_refused.load(Ordering::Relaxed),
            c.revoked_accepted.load(Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    memory.push(resident_kib(pid));
    let c = &counts;
    let (accepted, refused) = (
        c.accepted.load(Ordering::Relaxed),
        c.refused_revoked.load(Ordering::Relaxed),
    );
    let bad = c.errors.load(Ordering::Relaxed)
        + c.live_refused.load(Ordering::Relaxed)
        + c.revoked_accepted.load(Ordering::Relaxed);
    // Memory after the first minute (cache and pools warmed) against the end.
    let settled = memory.get(6).or(memory.first()).copied().unwrap_or(0);
    println!(
        "soak: {}s, {} verifications ({accepted} accepted, {refused} revoked keys refused), {} keys created, {} deleted; \
         errors {}, live keys refused {}, revoked keys accepted {}; resident memory {} KiB at 1 min, {} KiB at the end, {} KiB at most",
        seconds,
        accepted + refused,
        c.created.load(Ordering::Relaxed),
        c.deleted.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.live_refused.load(Ordering::Relaxed),
        c.revoked_accepted.load(Ordering::Relaxed),
        settled,
        memory.last().unwrap(),
        memory.iter().max().unwrap(),
    );
    if bad > 0 {
        std::process::exit(1);
    }
}
