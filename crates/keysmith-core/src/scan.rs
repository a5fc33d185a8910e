//! Finding keys in text, for `keysmith scan` and its pre-commit hook.
//!
//! New-format keys are confirmed by their checksum, so random strings of the same
//! shape are not reported. Legacy keys (40 letters and digits) have no checksum; they
//! are reported only on a line that names W&B or Keysmith (or right after one).
//!
//! W&B's legacy keys are in practice 40 lowercase hex characters, the very shape of a
//! git commit hash, so hex alone proves nothing either way: a W&B line's 40 hex
//! characters are reported unless they stand where a commit hash stands: right after
//! `@` (`git+https://…@<hash>`, `uses: owner/action@<hash>`), after `/commit/`,
//! `/tree/`, `/blob/` and the like in a URL, as the value of a `rev`, `ref`, `sha` or
//! `commit` field, or anywhere in a lock file ([`is_lock_file`]). Missing a real key
//! is worse than a false alarm, so nothing else is excused.
//!
//! A finding never holds the key: only its key ID (public) or, for a legacy key, its
//! first six characters.

use crate::key_format::{LEGACY_BODY_LEN, PresentedKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line and column (in bytes) of the key's first character.
    pub line: usize,
    pub column: usize,
    pub kind: FindingKind,
    /// What may be shown: the key ID, or a legacy key's first characters and `…`.
    pub shown: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// A new-format key whose checksum matches.
    V1,
    /// A 40-character key next to a W&B or Keysmith context.
    Legacy,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Legacy => "legacy",
        }
    }
}

const CONTEXT_WORDS: [&str; 4] = ["wandb", "keysmith", "api_key", "apikey"];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn has_context(line: &str) -> bool {
    // The prefix of a key-shaped string is not context: a look-alike must not make
    // the next line's git hash a "key".
    let lower = line.to_ascii_lowercase();
    let lower = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.contains("_v1_"))
        .collect::<Vec<_>>()
        .join(" ");
    CONTEXT_WORDS.iter().any(|w| lower.contains(w)) || lower.trim_start().starts_with("password")
}

/// Lock files record dependencies by commit hash and checksum, and hold no keys that
/// anyone wrote: Cargo.lock, poetry.lock, package-lock.json, go.sum, flake.lock and
/// the like. `path` is a file name or a path (`/` or `\\` separated).
pub fn is_lock_file(path: &str) -> bool {
    const NAMES: [&str; 13] = [
        "go.sum",
        "go.work.sum",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "packages.lock.json",
        "pnpm-lock.yaml",
        "Package.resolved",
        "Manifest.toml",
        "conda-lock.yml",
        "conda-lock.yaml",
        "gradle.lockfile",
        "buildscript-gradle.lockfile",
        "bun.lockb",
    ];
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    NAMES.contains(&name)
        || [
            ".lock",
            ".lockfile",
            "-lock.json",
            "-lock.yaml",
            "-lock.yml",
            ".lock.json",
        ]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

/// Every key in the file `path` whose contents are `text`: as [`find_keys`], except
/// that a lock file's legacy-shaped strings are hashes. New-format keys are reported
/// everywhere: their checksum confirms them.
pub fn find_keys_in_file(path: &str, text: &str) -> Vec<Finding> {
    let mut found = find_keys(text);
    if is_lock_file(path) {
        found.retain(|f| f.kind == FindingKind::V1);
    }
    found
}

/// Every key in `text`.
pub fn find_keys(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut previous_has_context = false;
    for (index, line) in text.lines().enumerate() {
        let context = has_context(line);
        let bytes = line.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            if !is_token_byte(bytes[start]) {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < bytes.len() && is_token_byte(bytes[end]) {
                end += 1;
            }
            let token = &line[start..end];
            let hash_position = follows_commit_marker(&line[..start]);
            if let Some((kind, shown)) = classify(token, context || previous_has_context, hash_position) {
                findings.push(Finding {
                    line: index + 1,
                    column: start + 1,
                    kind,
                    shown,
                });
            }
            start = end;
        }
        previous_has_context = context;
    }
    findings
}

/// Whether a token right after `before` stands where a git commit hash stands.
fn follows_commit_marker(before: &str) -> bool {
    // `git+https://host/repo.git@<hash>`, `pkg @ git+…@<hash>#egg=pkg`,
    // `uses: owner/action@<hash>`.
    if before.ends_with('@') {
        return true;
    }
    let lower = before.to_ascii_lowercase();
    // `git+https://host/repo?rev=main#<hash>`, as Cargo.lock and pip's URLs pin it.
    if lower.ends_with('#') && lower.contains("git+") {
        return true;
    }
    const URL_PATHS: [&str; 9] = [
        "/commit/",
        "/commits/",
        "/tree/",
        "/blob/",
        "/blame/",
        "/raw/",
        "/compare/",
        "/archive/",
        "/src/",
    ];
    // A range such as `<hash>..<hash>` or `/compare/<hash>...<hash>`.
    if URL_PATHS.iter().any(|p| lower.ends_with(p)) || lower.ends_with("..") {
        return true;
    }
    // `rev = "<hash>"`, `rev: <hash>`, `"sha": "<hash>"`, `?ref=<hash>`, `--rev <hash>`,
    // `commit <hash>` (as `git log` prints it).
    const FIELDS: [&str; 18] = [
        "rev",
        "revision",
        "ref",
        "sha",
        "sha1",
        "commit",
        "commit_id",
        "commit_sha",
        "commit_hash",
        "commitish",
        "git_sha",
        "git_commit",
        "git_hash",
        "git_rev",
        "head_sha",
        "base_sha",
        "resolved_reference",
        "git-tree-sha1",
    ];
    let value_start = lower.trim_end_matches([' ', '\t', '"', '\'', '`', '=', ':']);
    let separators = &lower[value_start.len()..];
    let word_start = value_start
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let raw_word = &value_start[word_start..];
    let word = raw_word.trim_start_matches('-');
    // The field itself, or a name that ends with one: `GIT_SHA`, `WANDB_COMMIT_SHA`.
    let last_part = word.rsplit(['_', '-']).next().unwrap_or(word);
    let named = FIELDS.contains(&word) || ["sha", "sha1", "commit", "rev", "revision", "ref"].contains(&last_part);
    if !named || separators.is_empty() {
        return false;
    }
    separators.contains(['=', ':']) || raw_word.starts_with("--") || word == "commit"
}

fn classify(token: &str, context: bool, hash_position: bool) -> Option<(FindingKind, String)> {
    // A token may carry a `KEY=` style prefix glued by `-` or `_`; try its suffixes
    // that start after a separator too.
    let mut candidates = vec![token];
    for (i, b) in token.bytes().enumerate() {
        if (b == b'-' || b == b'_' || b == b'=') && i + 1 < token.len() {
            candidates.push(&token[i + 1..]);
        }
    }
    for candidate in candidates {
        match PresentedKey::parse(candidate) {
            Ok(PresentedKey::V1(key)) => return Some((FindingKind::V1, key.key_id().to_owned())),
            Ok(PresentedKey::Legacy(key))
                if context && plausible_legacy(candidate) && !(hash_position && is_hex_body(candidate)) =>
            {
                return Some((FindingKind::Legacy, key.display()));
            }
            _ => {}
        }
    }
    None
}

/// W&B's legacy keys are lowercase hex; requiring a digit and a letter avoids
/// reporting words and numbers of the right length.
fn plausible_legacy(candidate: &str) -> bool {
    let body = candidate.rsplit('-').next().unwrap_or(candidate);
    body.len() == LEGACY_BODY_LEN
        && body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Whether a legacy-shaped candidate's 40 characters are hex, as a commit hash's are.
fn is_hex_body(candidate: &str) -> bool {
    candidate
        .rsplit('-')
        .next()
        .is_some_and(|body| body.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyPrefix, generate_v1};

    #[test]
    fn new_keys_are_found_by_checksum_anywhere() {
        let key = generate_v1(&KeyPrefix::default()).unwrap();
        let plain = key.plaintext.expose();
        let text = format!("x = 1\nexport WANDB_API_KEY=\"{plain}\"\nurl?token={plain}&x\n");
        let found = find_keys(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].kind, FindingKind::V1);
        assert_eq!(found[0].shown, key.key_id.as_str());
        assert!(
            !format!("{found:?}").contains(&plain[37..]),
            "a finding never holds the secret"
        );
    }

    #[test]
    fn look_alikes_with_a_wrong_checksum_are_ignored() {
        let key = generate_v1(&KeyPrefix::default()).unwrap();
        let mut fake = key.plaintext.expose().to_owned();
        fake.pop();
        fake.push(if key.plaintext.expose().ends_with('0') {
            '1'
        } else {
            '0'
        });
        assert!(find_keys(&format!("WANDB_API_KEY={fake}")).is_empty());
    }

    #[test]
    fn legacy_keys_need_a_wandb_context() {
        let legacy = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(find_keys(&format!("WANDB_API_KEY={legacy}")).len(), 1);
        assert_eq!(
            find_keys(&format!("machine api.wandb.ai\n  login user\n  password {legacy}\n")).len(),
            1
        );
        assert_eq!(find_keys(&format!("wandb login local-{legacy}")).len(), 1);
        assert!(
            find_keys(&format!("commit {legacy}")).is_empty(),
            "a git hash is not a key"
        );
        let look_alike = format!("not a key: wandb_v1_{}\ncommit {legacy}", "x".repeat(77));
        assert!(find_keys(&look_alike).is_empty(), "a key-shaped string is no context");
        assert!(
            find_keys(&format!("wandb {}", "a".repeat(40))).is_empty(),
            "no digit: a word, not a key"
        );
        let f = &find_keys(&format!("wandb: {legacy}"))[0];
        assert_eq!(f.shown, "012345…");
    }

    const HASH: &str = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39";
    const KEY: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn commit_hashes_where_commits_are_named_are_not_keys() {
        for line in [
            format!("wandb @ git+https://github.com/wandb/wandb.git@{HASH}"),
            format!("-e git+https://github.com/wandb/wandb.git@{HASH}#egg=wandb"),
            format!("git+ssh://git@github.com/wandb/wandb.git@{HASH}#subdirectory=core"),
            format!("      - uses: wandb/wandb-action@{HASH} # v2"),
            format!("see https://github.com/wandb/wandb/commit/{HASH}"),
            format!("https://github.com/wandb/wandb/commits/{HASH}/"),
            format!("https://github.com/wandb/wandb/tree/{HASH}/core"),
            format!("https://github.com/wandb/wandb/blob/{HASH}/wandb/__init__.py#L10"),
            format!("https://gitlab.com/wandb/keysmith/-/commit/{HASH}"),
            format!("https://github.com/wandb/wandb/compare/{HASH}...{HASH}"),
            format!("wandb = {{ git = \"https://github.com/wandb/wandb.git\", rev = \"{HASH}\" }}"),
            format!("keysmith-core = {{ git = \"https://example.com/keysmith\", rev = '{HASH}' }}"),
            format!("wandb:\n  rev: {HASH}"),
            format!("repo: https://github.com/wandb/pre-commit-hooks\n    rev: {HASH}"),
            format!("\"wandb\": {{ \"ref\": \"{HASH}\" }}"),
            format!("wandb_sdk sha: {HASH}"),
            format!("wandb commit: {HASH}"),
            format!("WANDB_COMMIT_SHA={HASH}"),
            format!("pip install https://github.com/wandb/wandb/archive/{HASH}.zip"),
            format!("cargo install --git https://example.com/keysmith --rev {HASH}"),
            format!("wandb release commit {HASH}"),
        ] {
            assert!(find_keys(&line).is_empty(), "reported a commit hash as a key: {line}");
        }
    }

    #[test]
    fn legacy_keys_in_hex_are_still_found_beside_the_commit_rules() {
        // Real W&B legacy keys are 40 lowercase hex characters: the same shape.
        for text in [
            format!("WANDB_API_KEY={KEY}"),
            format!("export WANDB_API_KEY=\"{KEY}\""),
            format!("machine api.wandb.ai\n  login user\n  password {KEY}\n"),
            format!("machine api.wandb.ai login user password {KEY}"),
            format!("wandb login {KEY}"),
            format!("wandb login local-{KEY}"),
            format!("WANDB_API_KEY=local-{KEY}"),
            format!("wandb.login(key=\"{KEY}\")"),
            format!("api_key: {KEY}"),
            format!("wandb: {{ api_key: \"{KEY}\", rev: \"{HASH}\" }}"),
            format!("https://api:{KEY}@api.wandb.ai"),
        ] {
            let found = find_keys(&text);
            assert_eq!(found.len(), 1, "missed or over-reported in {text:?}: {found:?}");
            assert_eq!(found[0].kind, FindingKind::Legacy);
            assert!(
                ["89abcd…", "local-…"].contains(&found[0].shown.as_str()),
                "{:?}",
                found[0].shown
            );
        }
    }

    #[test]
    fn lock_files_hold_hashes_but_new_keys_are_still_found_in_them() {
        let lock = format!(
            "[[package]]\nname = \"wandb\"\nsource = \"git+https://github.com/wandb/wandb?rev=main#{HASH}\"\n\
             [package.source]\nurl = \"https://github.com/wandb/wandb.git\"\nresolved_reference = \"{HASH}\"\n\
             wandb {KEY}\n"
        );
        for name in [
            "Cargo.lock",
            "poetry.lock",
            "uv.lock",
            "Pipfile.lock",
            "package-lock.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "go.sum",
            "flake.lock",
            "sub/dir/composer.lock",
        ] {
            assert!(is_lock_file(name), "{name}");
            assert!(find_keys_in_file(name, &lock).is_empty(), "{name}");
        }
        for name in [
            "requirements.txt",
            "pyproject.toml",
            "Cargo.toml",
            ".netrc",
            "lockdown.md",
            "clock.py",
        ] {
            assert!(!is_lock_file(name), "{name}");
        }
        assert_eq!(
            find_keys_in_file("notes.txt", &lock).len(),
            1,
            "the same text elsewhere"
        );
        let key = generate_v1(&KeyPrefix::default()).unwrap();
        let with_key = format!("{lock}token = \"{}\"\n", key.plaintext.expose());
        let found = find_keys_in_file("Cargo.lock", &with_key);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].kind,
            FindingKind::V1,
            "a checksum-confirmed key is a key anywhere"
        );
    }
}
