//! A rolling upgrade on PostgreSQL (docs/OPERATIONS.md, "Upgrading"): a replica of the
//! previous version (built by `scripts/previous-release` from its commit) serves while
//! a replica of this version starts on the same database and migrates it. The old
//! replica keeps answering every request through the migration window; keys made on
//! either verify on both, a deletion on either is refused on the other, and the audit
//! entries the old code writes are sealed into the chain by the new one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, create_key, delete_key, http, try_create_key, try_http};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "rolling upgrade password";

/// The previous version's binary, built once by the script (scripts/test builds it
/// before the tests; a test run without it waits a few minutes the first time, while
/// the script builds it beside, never over, this version's binary).
fn previous_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/previous-release"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/previous-release: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn forward_auth(url: &str, key: &str) -> u16 {
    let bearer = format!("Bearer {key}");
    match try_http(
        "GET",
        &format!("{url}/api/v1/forward-auth"),
        &[("authorization", &bearer)],
        None,
    ) {
        Ok(r) => r.status,
        Err(_) => 0,
    }
}

/// Waits up to 5 s for `url` to refuse `key` (revocation crosses replicas by NOTIFY).
fn refused_soon(url: &str, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if forward_auth(url, key) == 401 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_rolling_upgrade_on_postgresql_keeps_serving() {
    let previous = previous_binary();
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("server-secret");
    let env = [
        ("KEYSMITH_DATABASE_URL", url.as_str()),
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
        ("KEYSMITH_SERVER_SECRET_FILE", secret.to_str().unwrap()),
    ];
    for d in ["old", "new"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let old = Server::start_binary(&previous, &dir.path().join("old"), "old", &[], &env);
    let (cookie, csrf) = common::sign_in(&old.url, "admin", PASSWORD);
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", old.url),
        &[("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
        Some(&json!({"name": "made by the old version"})),
    );
    assert_eq!(r.status, 201);
    let admin_key = r.body["key"].as_str().unwrap().to_owned();

    // The old replica under a stream of verifications and key creations, while the new
    // one starts and migrates.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, url, key) = (stop.clone(), old.url.clone(), admin_key.clone());
        let auth = format!("Bearer {key}");
        std::thread::spawn(move || {
            let (mut verified, mut failures, mut made) = (0u32, Vec::new(), Vec::new());
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                match forward_auth(&url, &key) {
                    200 => verified += 1,
                    other => failures.push(format!("forward auth answered {other}")),
                }
                if i.is_multiple_of(10) {
                    match try_create_key(&url, &auth, &format!("window {i}")) {
                        Ok(k) => made.push(k),
                        Err(e) => failures.push(format!("creating a key: {e}")),
                    }
                }
                i += 1;
            }
            (verified, failures, made)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let new = Server::start(&dir.path().join("new"), "new", &[], &env);
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let (verified, failures, made) = load.join().unwrap();
    assert!(
        failures.is_empty(),
        "the old replica failed {} times during the upgrade, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(
        verified > 20 && made.len() > 2,
        "{verified} verifications, {} keys",
        made.len()
    );
    let new_log = std::fs::read_to_string(&new.stderr).unwrap();
    assert!(!new_log.contains("ERROR"), "{new_log}");

    // Keys made by the old version during the window work on both.
    for (key, _) in &made {
        assert_eq!(forward_auth(&old.url, key), 200);
        assert_eq!(forward_auth(&new.url, key), 200);
    }
    // A key made by the new version works on the old one.
    let admin_auth = format!("Bearer {admin_key}");
    let (new_key, new_key_id) = create_key(&new.url, &admin_auth, "made by the new version");
    assert_eq!(forward_auth(&old.url, &new_key), 200);
    // Deletions cross in both directions.
    let (gone, gone_id) = &made[0];
    assert_eq!(forward_auth(&old.url, gone), 200, "cached on the old replica");
    delete_key(&new.url, &admin_auth, gone_id);
    assert!(
        refused_soon(&old.url, gone),
        "the old replica hears the new one's deletion"
    );
    assert_eq!(forward_auth(&new.url, &new_key), 200, "cached on the new replica");
    delete_key(&old.url, &admin_auth, &new_key_id);
    assert!(
        refused_soon(&new.url, &new_key),
        "the new replica hears the old one's deletion"
    );

    // The old code writes audit entries without hashes; the new replica seals them.
    std::thread::sleep(Duration::from_millis(2_500));
    let verify = Command::new(common::BIN)
        .args(["admin", "audit", "verify", "--database-url", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}");
    assert!(
        said.contains("audit log intact") && !said.contains("not sealed"),
        "{said}"
    );
    let export = Command::new(common::BIN)
        .args(["admin", "audit", "export", "--database-url", &url])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let windowed = lines
        .iter()
        .filter(|l| {
            l["action"] == "api_key.created" && l["detail"]["name"].as_str().is_some_and(|n| n.starts_with("window"))
        })
        .count();
    assert_eq!(windowed, made.len(), "each key the old version made is in the chain");

    // The previous version predates schema_compat: restarted now, it does not start on
    // the newer schema (docs/OPERATIONS.md says to upgrade such a replica, not restart it).
    old.stop();
    let restarted = Command::new(&previous)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYSMITH_DATABASE_URL", &url)
        .env("KEYSMITH_SERVER_SECRET_FILE", &secret)
        .current_dir(dir.path().join("old"))
        .output()
        .unwrap();
    assert!(!restarted.status.success());
    assert!(
        String::from_utf8_lossy(&restarted.stderr).contains("migration 17"),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    new.stop();
}
