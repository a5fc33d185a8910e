//! API fuzzing with a small bound: `scripts/api-fuzz` runs schemathesis against the
//! OpenAPI document that this build's `keysmith` serves, with every check, and then
//! checks that the server is alive, its key still works and its log holds no panic,
//! internal error or secret. A finding fails the test with schemathesis's report,
//! which has a `curl` line to reproduce each one.
//!
//! schemathesis lives in `target/schemathesis-venv`, pinned by
//! `scripts/schemathesis-requirements.txt`; `.ci/run` installs it. Under CI
//! (`CI=true`) a missing venv fails the test; elsewhere the script creates it from
//! PyPI. The test never skips. Longer runs: `API_FUZZ_EXAMPLES=500 scripts/api-fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Test cases per operation and phase: about 20 seconds on two cores.
const EXAMPLES: &str = "40";

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join("target/schemathesis-venv");
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
        assert!(
            venv.join("bin/schemathesis").exists(),
            "the API fuzzing test needs schemathesis in {}: `.ci/run` installs it with `scripts/api-fuzz --install`",
            venv.display()
        );
    }
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(root.join("scripts/api-fuzz"))
        .env("KEYSMITH_BIN", env!("CARGO_BIN_EXE_keysmith"))
        .env("API_FUZZ_VENV", &venv)
        .env("API_FUZZ_EXAMPLES", EXAMPLES)
        .env("API_FUZZ_SEED", "1")
        .env_remove("API_FUZZ_ARGS")
        .env_remove("KEEP")
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/api-fuzz (it needs bash, python3 with venv, and curl)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "API fuzzing failed:\n{report}");
    assert!(report.contains("api-fuzz: passed"), "{report}");
    // Every operation of the document selected and tested: none filtered out.
    let field = |name: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in the report"))
            .trim()
            .to_owned()
    };
    let (selected, total) = field("Selected:")
        .split_once('/')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    assert_eq!(
        (selected.as_str(), field("Tested:").as_str()),
        (total.as_str(), total.as_str())
    );
    println!("API fuzzing took {:.0?}", started.elapsed());
}
