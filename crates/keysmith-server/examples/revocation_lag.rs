//! Cross-replica revocation lag: with Keysmith replicas on one PostgreSQL, for each of
//! N keys, warm the key into every other replica's cache, delete it on replica A, and
//! time from A's answer until each other replica refuses the key (all polled at once).
//! Prints p50, p99 and the maximum over every (key, replica) pair, and the same for the
//! last replica of each delete to refuse (the time until the key works nowhere).
//!
//! cargo run --release -p keysmith-server --example revocation_lag -- \
//!     http://127.0.0.1:9201 http://127.0.0.1:9202 [more replicas…] 1000
//! (the admin key in KEYSMITH_API_KEY; the last argument is the count)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

fn percentiles(mut lags: Vec<Duration>) -> String {
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        lags[lags.len() - 1].as_secs_f64() * 1000.0
    )
}

/// `GET /api/v1/forward-auth` on `replica` with `key`: the status.
async fn forward_auth(http: &reqwest::Client, replica: &str, key: &str) -> u16 {
    http.get(format!("{replica}/api/v1/forward-auth"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let count: usize = match args.last().and_then(|a| a.parse().ok()) {
        Some(n) => {
            args.pop();
            n
        }
        None => 1000,
    };
    assert!(args.len() >= 2, "replica A's URL and at least one other's");
    let a = args[0].clone();
    let others = args[1..].to_vec();
    let admin = std::env::var("KEYSMITH_API_KEY").expect("an admin key in KEYSMITH_API_KEY");
    let http = reqwest::Client::builder().build().unwrap();
    let mut each = Vec::with_capacity(count * others.len());
    let mut last = Vec::with_capacity(count);
    for i in 0..count {
        let created: serde_json::Value = http
            .post(format!("{a}/api/v1/api-keys"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "name": format!("lag {i}") }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["key"].as_str().expect("created").to_owned();
        let key_id = created["key_id"].as_str().unwrap().to_owned();
        // Twice on each: the first fills its cache, the second is served from it.
        for replica in &others {
            assert_eq!(forward_auth(&http, replica, &key).await, 200);
            assert_eq!(forward_auth(&http, replica, &key).await, 200);
        }
        let deleted = http
            .delete(format!("{a}/api/v1/api-keys/{key_id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status().as_u16(), 204);
        let answered = Instant::now();
        let mut polls = tokio::task::JoinSet::new();
        for replica in &others {
            let (http, replica, key) = (http.clone(), replica.clone(), key.clone());
            polls.spawn(async move {
                loop {
                    if forward_auth(&http, &replica, &key).await == 401 {
                        return answered.elapsed();
                    }
                    assert!(
                        answered.elapsed() < Duration::from_secs(10),
                        "{replica} still accepts after 10 s"
                    );
                }
            });
        }
        let lags = polls.join_all().await;
        last.push(*lags.iter().max().unwrap());
        each.extend(lags);
    }
    println!(
        "revocation lag over {count} deletes, {} replicas: each replica {}; the last replica {}",
        others.len() + 1,
        percentiles(each),
        percentiles(last)
    );
}
