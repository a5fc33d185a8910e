//! Finding keys in text, for `keysmith scan` and its pre-commit hook.
//!
//! New-format keys are confirmed by their checksum, so random strings of the same
//! shape are not reported. Legacy keys (40 letters and digits) have no checksum; they
//! are reported only on a line that names W&B or Keysmith (or right after one), where a
//! 40-character token is almost surely a key and not a commit hash.
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
            if let Some((kind, shown)) = classify(token, context || previous_has_context) {
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

fn classify(token: &str, context: bool) -> Option<(FindingKind, String)> {
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
            Ok(PresentedKey::Legacy(key)) if context && plausible_legacy(candidate) => {
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
}
