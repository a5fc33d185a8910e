//! Cross-replica revocation lag: with two Keysmith replicas on one PostgreSQL, for each
//! of N keys, warm the key into replica B's cache, delete it on replica A, and time
//! from A's answer until B refuses the key. Prints p50, p99 and the maximum.
//!
//! cargo run --release -p keysmith-server --example revocation_lag -- \
//!     http://127.0.0.1:9201 http://127.0.0.1:9202 1000      (admin key in KEYSMITH_API_KEY)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let a = args.next().expect("replica A's URL");
    let b = args.next().expect("replica B's URL");
    let count: usize = args.next().map_or(1000, |n| n.parse().expect("a count"));
    let admin = std::env::var("KEYSMITH_API_KEY").expect("an admin key in KEYSMITH_API_KEY");
    let http = reqwest::Client::builder().build().unwrap();
    let mut lags = Vec::with_capacity(count);
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
        let check = |key: String| {
            let http = http.clone();
            let url = format!("{b}/api/v1/forward-auth");
            async move { http.get(url).bearer_auth(key).send().await.unwrap().status().as_u16() }
        };
        // Twice: the first fills B's cache, the second is served from it.
        assert_eq!(check(key.clone()).await, 200);
        assert_eq!(check(key.clone()).await, 200);
        let deleted = http
            .delete(format!("{a}/api/v1/api-keys/{key_id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status().as_u16(), 204);
        let answered = Instant::now();
        loop {
            if check(key.clone()).await == 401 {
                break;
            }
            assert!(
                answered.elapsed() < Duration::from_secs(10),
                "B still accepts after 10 s"
            );
        }
        lags.push(answered.elapsed());
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
    println!(
        "revocation lag over {count} deletes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        lags[lags.len() - 1].as_secs_f64() * 1000.0
    );
}
