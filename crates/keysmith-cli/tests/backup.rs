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

use common::{create_key as create, delete_key as delete};

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
    assert_eq!(mode(&file), 0o600, "the backup holds every digest: its owner's alone");
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
    assert_eq!(mode(&restored_data.join("keysmith.db")), 0o600);
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

/// `keysmith admin audit export` gives each entry with its hash in the audit chain,
/// `audit verify` checks the chain next to a running server and prints the head the
/// export ends on, and an entry changed afterwards in the database (by Python's own
/// sqlite3, past the triggers, as the database's owner could) is found by the entry.
#[test]
fn the_audit_chain_verifies_and_a_changed_entry_is_found() {
    let started = start_with_admin_key("chain", PASSWORD);
    let url = started.server.url.clone();
    let auth = format!("Bearer {}", started.key);
    let data = started.dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    for name in ["one", "two", "three"] {
        create(&url, &auth, name);
    }
    let out = keysmith(&["admin", "audit", "export", "--data-dir", data_dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 4, "{lines:?}");
    for l in &lines {
        let chain = l["chain"].as_str().unwrap_or_default();
        assert!(
            chain.len() == 64 && chain.bytes().all(|b| b.is_ascii_hexdigit()),
            "every exported entry carries its hash: {l}"
        );
    }
    // --since: from the beginning of time, the same lines; from the future, none; not
    // with --after.
    let since = |time: &str| keysmith(&["admin", "audit", "export", "--since", time, "--data-dir", data_dir]);
    assert_eq!(since("1970-01-01T00:00:00Z").stdout, out.stdout);
    let later = since("2999-01-01T00:00:00Z");
    assert!(later.status.success() && later.stdout.is_empty());
    let both = keysmith(&[
        "admin",
        "audit",
        "export",
        "--since",
        "2026-01-01T00:00:00Z",
        "--after",
        "3",
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(both.status.code(), Some(2), "--since and --after are refused together");
    let bad = since("yesterday");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));

    let verify = keysmith(&["admin", "audit", "verify", "--data-dir", data_dir]);
    let said = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(
        verify.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.contains("audit log intact"), "{said}");
    let last = lines.last().unwrap();
    assert!(
        said.contains(&format!(
            "head: entry {}, sha256 {}",
            last["id"],
            last["chain"].as_str().unwrap()
        )),
        "the head is the last exported entry: {said}"
    );
    started.server.stop();

    // The encoding as docs/OPERATIONS.md writes it, computed by Python from the rows:
    // the same head, so that anyone can check the chain without Keysmith.
    let db = data.join("keysmith.db");
    let recomputed = std::process::Command::new("python3")
        .args(["-c", DOCUMENTED_CHAIN, db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        recomputed.status.success(),
        "{}",
        String::from_utf8_lossy(&recomputed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&recomputed.stdout).trim(),
        format!("{} {}", last["id"], last["chain"].as_str().unwrap())
    );

    let second = lines[1]["id"].as_i64().unwrap();
    let tamper = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1])\n\
             db.execute('DROP TRIGGER audit_log_no_update')\n\
             db.execute('UPDATE audit_log SET actor_name = ? WHERE id = ?', ('someone else', int(sys.argv[2])))\n\
             db.commit()",
            db.to_str().unwrap(),
            &second.to_string(),
        ])
        .output()
        .unwrap();
    assert!(tamper.status.success(), "{}", String::from_utf8_lossy(&tamper.stderr));
    let verify = keysmith(&["admin", "audit", "verify", "--data-dir", data_dir]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("audit log BROKEN at entry {second}")), "{said}");
}

/// docs/OPERATIONS.md's encoding of the audit chain, in Python: prints the last entry's
/// ID and hash.
const DOCUMENTED_CHAIN: &str = r#"
import hashlib, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
def text(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b
def optional(s):
    return b"\x00" if s is None else b"\x01" + text(s)
h = "0" * 64
last = 0
for (id, org, at, actor_id, actor_name, action, kind, target, address, detail) in db.execute(
        "SELECT id, org_id, at, actor_id, actor_name, action, target_kind, target, "
        "source_address, detail FROM audit_log ORDER BY id"):
    m = hashlib.sha256(h.encode())
    m.update(struct.pack(">qqq", id, org, at))
    m.update(b"\x00" if actor_id is None else b"\x01" + struct.pack(">q", actor_id))
    for s in (actor_name, action, kind, target):
        m.update(text(s))
    m.update(optional(address))
    m.update(optional(detail))
    h, last = m.hexdigest(), id
print(last, h)
"#;

/// A file's permission bits.
fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}
