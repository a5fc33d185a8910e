//! `keysmith admin backup` while the server serves a stream of creates and deletes, and
//! `keysmith admin restore` into an empty data directory: the restored server holds one
//! moment of the old one. Every key made before the backup began works, every key
//! deleted before it is refused, nothing made after it ended is there, and the keys are
//! exactly those the restored audit log says were made and not deleted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{BIN, Server, http, start_with_admin_key};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "backup-test-admin-password";

fn keysmith(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYSMITH_")) {
        cmd.env_remove(k);
    }
    cmd.args(args).output().unwrap()
}

fn create(url: &str, auth: &str, name: &str) -> (String, String) {
    let r = http(
        "POST",
        &format!("{url}/api/v1/api-keys"),
        &[("authorization", auth)],
        Some(&json!({"name": name})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    )
}

fn delete(url: &str, auth: &str, key_id: &str) {
    let r = http(
        "DELETE",
        &format!("{url}/api/v1/api-keys/{key_id}"),
        &[("authorization", auth)],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
}

fn works(url: &str, key: &str) -> bool {
    common::viewer(url, key).status == 200
}

/// Every page of a list endpoint, as `field` of each item.
fn all(url: &str, auth: &str, path: &str, item: impl Fn(&Value) -> String) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = match &cursor {
            Some(c) => format!("{url}{path}{sep}limit=200&cursor={c}"),
            None => format!("{url}{path}{sep}limit=200"),
        };
        let r = http("GET", &page, &[("authorization", auth)], None);
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["items"].as_array().unwrap().iter().map(&item));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[test]
fn a_backup_under_load_restores_one_consistent_moment() {
    let started = start_with_admin_key("backup", PASSWORD);
    let url = started.server.url.clone();
    let auth = format!("Bearer {}", started.key);
    let data = started.dir.path().join("data");

    let before: Vec<(String, String)> = (0..12).map(|i| create(&url, &auth, &format!("before-{i}"))).collect();
    for (_, id) in &before[..4] {
        delete(&url, &auth, id);
    }

    // Creates and deletes go on while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let made_during = Arc::new(Mutex::new(Vec::new()));
    let stream = {
        let (url, auth, stop, made) = (url.clone(), auth.clone(), stop.clone(), made_during.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (key, id) = create(&url, &auth, &format!("during-{i}"));
                if i % 3 == 0 {
                    delete(&url, &auth, &id);
                }
                made.lock().unwrap().push((key, id));
                i += 1;
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let file = started.dir.path().join("keysmith-backup.db");
    let out = keysmith(&[
        "admin",
        "backup",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("backed up to") && said.contains("api_keys"), "{said}");
    let during_backup = made_during.lock().unwrap().len();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    stream.join().unwrap();
    let after = create(&url, &auth, "after");
    assert!(during_backup > 0, "the stream ran while the backup was taken");

    // Never over a file, never onto a database.
    let again = keysmith(&[
        "admin",
        "backup",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let onto = keysmith(&[
        "admin",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!onto.status.success());
    assert!(String::from_utf8_lossy(&onto.stderr).contains("already exists"));
    started.server.stop();

    let fresh = tempfile::tempdir().unwrap();
    let restored_data = fresh.path().join("data");
    let out = keysmith(&[
        "admin",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored_data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server-secret"),
        "the secret is named"
    );
    let server = Server::start(fresh.path(), "restored", &[], &[]);
    let url = server.url.clone();

    assert!(works(&url, &started.key), "the admin's key");
    for (i, (key, _)) in before.iter().enumerate() {
        assert_eq!(works(&url, key), i >= 4, "before-{i}");
    }
    assert!(!works(&url, &after.0), "a key made after the backup is not there");

    // The keys are exactly those the audit log made and did not delete.
    let keys: BTreeSet<String> = all(&url, &auth, "/api/v1/api-keys", |k| {
        k["key_id"].as_str().unwrap().to_owned()
    })
    .into_iter()
    .collect();
    let entries = all(&url, &auth, "/api/v1/orgs/default/audit", |e| {
        format!("{} {}", e["action"].as_str().unwrap(), e["target"].as_str().unwrap())
    });
    let mut replayed = BTreeSet::new();
    for entry in entries.iter().rev() {
        match entry.split_once(' ').unwrap() {
            ("api_key.created", id) => {
                replayed.insert(id.to_owned());
            }
            ("api_key.deleted", id) => {
                replayed.remove(id);
            }
            _ => {}
        }
    }
    assert_eq!(keys, replayed, "one moment: the keys and the audit log agree");
    let during: Vec<(String, String)> = made_during.lock().unwrap().clone();
    let in_backup = during
        .iter()
        .filter(|(_, id)| entries.iter().any(|e| e.ends_with(id.as_str())))
        .count();
    assert!(
        in_backup < during.len(),
        "the stream went on after the moment of the backup"
    );
    for (key, id) in &during {
        assert_eq!(works(&url, key), keys.contains(id), "{id}: works exactly when listed");
    }
    server.stop();
}

/// PostgreSQL is backed up with its own tools, as docs/OPERATIONS.md says: `pg_dump
/// --format=custom` of a running server's database, `pg_restore --no-owner` into an
/// empty one, and a server on the copy takes the same keys.
#[test]
fn postgresql_is_backed_up_with_pg_dump_and_pg_restore() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let source = cluster.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KEYSMITH_DATABASE_URL", source.as_str()),
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
    ];
    let server = Server::start(dir.path(), "source", &[], &env);
    let (cookie, csrf) = common::sign_in(&server.url, "admin", PASSWORD);
    let r = http(
        "POST",
        &format!("{}/api/v1/api-keys", server.url),
        &[("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
        Some(&json!({"name": "first"})),
    );
    let key = r.body["key"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {key}");
    let (kept, _) = create(&server.url, &auth, "kept");
    let (_, gone) = create(&server.url, &auth, "gone");
    delete(&server.url, &auth, &gone);

    let dump = dir.path().join("keysmith.dump");
    let out = Command::new(cluster.bin_dir().join("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    let target = cluster.create_database().unwrap();
    let out = Command::new(cluster.bin_dir().join("pg_restore"))
        .args(["--no-owner", "--dbname", &target])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = [("KEYSMITH_DATABASE_URL", target.as_str())];
    let restored = Server::start(dir.path(), "restored", &[], &env);
    assert!(works(&restored.url, &key) && works(&restored.url, &kept));
    let mut names = all(&restored.url, &auth, "/api/v1/api-keys", |k| {
        k["name"].as_str().unwrap().to_owned()
    });
    names.sort();
    assert_eq!(names, ["first", "kept"], "the deleted key stays deleted");
    let out = keysmith(&[
        "admin",
        "backup",
        dir.path().join("pg.db").to_str().unwrap(),
        "--database-url",
        &target,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pg_dump"),
        "PostgreSQL's backups are pg_dump's"
    );
    restored.stop();
}

/// `keysmith admin audit-export` next to a running server: every entry as a JSON line
/// (the API's format, tested in keysmith-server's `audit_export.rs`), and resuming
/// after the cursor it names gives nothing more until something happens.
#[test]
fn the_audit_log_exports_as_json_lines_and_resumes() {
    let started = start_with_admin_key("export", PASSWORD);
    let url = started.server.url.clone();
    let auth = format!("Bearer {}", started.key);
    let data = started.dir.path().join("data");
    create(&url, &auth, "one");
    create(&url, &auth, "two");
    let out = keysmith(&["admin", "audit-export", "--data-dir", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created: Vec<&str> = lines
        .iter()
        .filter(|l| l["action"] == "api_key.created")
        .map(|l| l["detail"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["export", "one", "two"]);
    assert!(lines.iter().all(|l| l["organization"] == "default"));
    let err = String::from_utf8_lossy(&out.stderr);
    let after = err
        .lines()
        .find_map(|l| l.strip_prefix("resume with --after "))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(after, lines.last().unwrap()["id"].to_string());
    let again = keysmith(&[
        "admin",
        "audit-export",
        "--after",
        &after,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    assert!(again.stdout.is_empty(), "nothing new");
    create(&url, &auth, "three");
    let more = keysmith(&[
        "admin",
        "audit-export",
        "--after",
        &after,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&more.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"three\""), "{text}");
    started.server.stop();
}
