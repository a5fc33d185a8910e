//! No secret anywhere Keysmith writes: after an end-to-end run (sign-in, a wrong
//! password, keys created and used in every header form and in a careless query
//! string, GraphQL, rename, delete, rotation, revoke-exposed, a burst of guesses
//! until the address is refused, a kill -9 and a restart), every log line, the
//! server's output and every file of the database (SQLite's files; PostgreSQL's whole
//! data directory, write-ahead log included, after a checkpoint) are searched for
//! every key, key secret, password and session token used. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, basic, http, sign_in};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const PASSWORD: &str = "operator-chosen-password-7f3a";
const WRONG_PASSWORD: &str = "wrong-password-that-must-not-be-logged";

/// Everything a run wrote that must hold no secret, and the secrets it used.
struct Run {
    places: Vec<(String, Vec<u8>)>,
    secrets: Vec<(&'static str, String)>,
    /// A key ID that must be found somewhere, or the search proves nothing.
    live_id: String,
}

fn mutate_last(key: &str) -> String {
    let last = if key.ends_with('A') { 'B' } else { 'A' };
    format!("{}{last}", &key[..key.len() - 1])
}

fn collect_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn logs(server: &Server) -> Vec<(String, Vec<u8>)> {
    [&server.stdout, &server.stderr]
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect()
}

/// Drives a server on a fresh database through everything that handles a secret.
fn exercise(dir: &Path, args: &[&str]) -> Run {
    let env = [
        ("KEYSMITH_ADMIN_PASSWORD", PASSWORD),
        ("KEYSMITH_LOG_FORMAT", "json"),
        ("KEYSMITH_LOG_LEVEL", "debug"),
        ("KEYSMITH_KEY_FAILURES_PER_MINUTE", "20"),
    ];
    let mut server = Server::start(dir, "secrets", args, &env);
    let url = server.url.clone();
    let (cookie, csrf) = sign_in(&url, "admin", PASSWORD);
    let session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http(
        "POST",
        &format!("{url}/api/v1/session"),
        &[],
        Some(&json!({"username": "admin", "password": WRONG_PASSWORD})),
    );
    assert_eq!(r.status, 401);

    let mut keys: Vec<(String, String)> = Vec::new();
    for name in ["laptop", "ci", "notebook", "leaked"] {
        let r = http(
            "POST",
            &format!("{url}/api/v1/api-keys"),
            &session,
            Some(&json!({"name": name})),
        );
        assert_eq!(r.status, 201);
        keys.push((
            r.body["key"].as_str().unwrap().to_owned(),
            r.body["key_id"].as_str().unwrap().to_owned(),
        ));
    }
    for (key, _) in &keys {
        let auth = basic(key);
        let bearer = format!("Bearer {key}");
        for headers in [
            [("authorization", auth.as_str())],
            [("authorization", bearer.as_str())],
            [("x-api-key", key.as_str())],
        ] {
            assert_eq!(http("GET", &format!("{url}/api/v1/viewer"), &headers, None).status, 200);
            assert_eq!(
                http("GET", &format!("{url}/api/v1/forward-auth"), &headers, None).status,
                200
            );
        }
        // A careless client puts the key in the query string: it must not be logged.
        http("GET", &format!("{url}/api/v1/viewer?api_key={key}"), &[], None);
    }
    assert_eq!(
        http("GET", &format!("{url}/api/v1/api-keys"), &session, None).status,
        200
    );

    // The GraphQL door: a key generated as the wandb SDK does it.
    let generate = json!({
        "query": "mutation G($d: String) { result: generateApiKey(input: {description: $d}) { apiKey { id name } } }",
        "variables": {"d": "from graphql"}
    });
    let r = http(
        "POST",
        &format!("{url}/graphql"),
        &[("authorization", &basic(&keys[1].0))],
        Some(&generate),
    );
    let from_graphql = r.body["data"]["result"]["apiKey"]["name"].as_str().unwrap().to_owned();
    assert_eq!(from_graphql.len(), 86, "{}", r.body);
    let viewer = json!({"query": "{ viewer { id username } }"});
    let graphql = |key: &str| {
        http(
            "POST",
            &format!("{url}/graphql"),
            &[("authorization", &basic(key))],
            Some(&viewer),
        )
    };
    assert_eq!(graphql(&from_graphql).body["data"]["viewer"]["username"], "admin");
    assert_eq!(graphql(&mutate_last(&from_graphql)).status, 401);
    keys.push((from_graphql.clone(), from_graphql[..36].to_owned()));

    // Rename and delete; the deleted key and a mistyped one are refused.
    let (dead, dead_id) = keys[0].clone();
    http(
        "PATCH",
        &format!("{url}/api/v1/api-keys/{dead_id}"),
        &session,
        Some(&json!({"name": "renamed"})),
    );
    assert_eq!(
        http("DELETE", &format!("{url}/api/v1/api-keys/{dead_id}"), &session, None).status,
        204
    );
    let bearer = |key: &str| format!("Bearer {key}");
    let use_key = |key: &str| {
        http(
            "GET",
            &format!("{url}/api/v1/viewer"),
            &[("authorization", &bearer(key))],
            None,
        )
    };
    assert_eq!(use_key(&dead).status, 401);
    use_key(&mutate_last(&keys[2].0));

    // Rotation: the successor is shown once and works.
    let rotated = http(
        "POST",
        &format!("{url}/api/v1/api-keys/{}/rotate", keys[1].1),
        &session,
        Some(&json!({"grace": "1h"})),
    );
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let successor = rotated.body["key"].as_str().unwrap().to_owned();
    assert_eq!(use_key(&successor).status, 200);
    keys.push((successor.clone(), successor[..36].to_owned()));

    // A leaked key revoked by whoever holds it.
    let leaked = keys[3].0.clone();
    let r = http(
        "POST",
        &format!("{url}/api/v1/api-keys/revoke-exposed"),
        &[],
        Some(&json!({"key": leaked})),
    );
    assert_eq!(r.status, 202);
    assert_eq!(use_key(&leaked).status, 401);

    // Guessing until the address is refused: variations of a real key.
    let mut guessed = 0;
    for i in 0..30 {
        let guess = format!("{}{}", &keys[2].0[..keys[2].0.len() - 2], ["AB", "CD", "EF"][i % 3]);
        if use_key(&guess).status == 429 {
            guessed += 1;
        }
    }
    assert!(guessed > 0, "the guesses were never limited");

    // Power cut, then a restart on the same database.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut places = logs(&server);
    let after = Server::start(dir, "secrets-after-crash", args, &env);
    assert_eq!(
        http(
            "GET",
            &format!("{}/api/v1/viewer", after.url),
            &[("authorization", &bearer(&keys[2].0))],
            None
        )
        .status,
        200
    );
    let stopped = after.url.clone();
    let (stdout, stderr) = after.stop();
    assert!(!stopped.is_empty());
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    places.push(("stdout after the crash".into(), stdout.into_bytes()));
    places.push(("log after the crash".into(), stderr.into_bytes()));
    assert!(
        places.iter().any(|(_, log)| contains(log, b"API key created")),
        "the log is not capturing events"
    );

    let session_token = cookie.trim_start_matches("keysmith_session=").to_owned();
    let mut secrets: Vec<(&'static str, String)> = vec![
        ("admin password", PASSWORD.into()),
        ("wrong password", WRONG_PASSWORD.into()),
        ("session token", session_token),
        ("csrf token", csrf.clone()),
    ];
    for (key, key_id) in &keys {
        secrets.push(("key", key.clone()));
        // The secret without its checksum: a mistyped copy of the key matches too.
        secrets.push(("key secret", key[key_id.len() + 1..key.len() - 6].to_owned()));
    }
    Run {
        places,
        secrets,
        live_id: keys[2].1.clone(),
    }
}

fn assert_no_secret(run: &Run, database_files: &[PathBuf]) {
    let mut places: Vec<(String, Vec<u8>)> = run.places.clone();
    for dir in database_files {
        collect_files(dir, &mut places);
    }
    assert!(
        places.iter().any(|(_, bytes)| contains(bytes, run.live_id.as_bytes())),
        "a live key ID is in no file: the search would find nothing"
    );
    let searched: usize = places.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "searched {} files, {} KiB, for {} secrets: none found",
        places.len(),
        searched / 1024,
        run.secrets.len()
    );
    for (place, bytes) in &places {
        for (what, secret) in &run.secrets {
            assert!(!contains(bytes, secret.as_bytes()), "{what} found in {place}");
        }
    }
}

#[test]
fn no_secret_reaches_the_logs_or_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let run = exercise(dir.path(), &[]);
    assert_no_secret(&run, &[dir.path().join("data")]);
}

#[test]
fn no_secret_reaches_the_logs_or_the_postgres_database() {
    let cluster = keysmith_pgtest::PgCluster::start().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = exercise(dir.path(), &["--database-url", &url]);
    // Everything written reaches the files: tables, indexes and the WAL.
    cluster.psql("postgres", "CHECKPOINT").unwrap();
    assert_no_secret(&run, &[dir.path().to_path_buf(), cluster.data_dir()]);
}
