//! The top-level help teaches the command: what Keysmith is, its commands grouped by
//! purpose, and examples.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::BIN;
use std::process::Command;

#[test]
fn top_level_help_says_what_keysmith_is_and_groups_every_command() {
    for args in [&["--help"][..], &["help"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let first = help.lines().next().unwrap();
        assert!(
            first.starts_with("Keysmith: ") && first.contains("wandb SDK"),
            "one line on what Keysmith is: {first}"
        );
        assert!(!help.contains("serve, admin."), "the old crate description: {help}");
        let groups = [
            ("Server", &["serve", "admin"][..]),
            ("Your keys:", &["login", "logout", "status", "whoami", "keys"]),
            (
                "Organization:",
                &["teams", "users", "service-accounts", "jwt-issuers", "audit"],
            ),
            ("Safety:", &["scan", "doctor"]),
            ("Shell:", &["completions"]),
        ];
        let mut previous = 0;
        for (heading, commands) in groups {
            let at = help
                .find(heading)
                .unwrap_or_else(|| panic!("no group {heading}: {help}"));
            assert!(at > previous, "groups in order: {help}");
            let section = &help[at..];
            let section = &section[..section.find("\n\n").unwrap()];
            for command in commands {
                assert!(
                    section
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{command} "))),
                    "{command} under {heading}: {section}"
                );
            }
            previous = at;
        }
        assert!(
            help.contains("Examples:") && help.contains("keysmith keys create --name ci"),
            "{help}"
        );
        assert!(help.contains("Exit status:"), "{help}");
    }
}
