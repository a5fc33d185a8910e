//! `keysmith admin import-legacy-keys`: legacy keys from a file or stdin into the store.
//!
//! Every line is checked before anything is written, so a bad file imports nothing.
//! Errors name line numbers, never line contents: a line may be a key.

use anyhow::{Context, Result, bail};
use keysmith_core::role::PrincipalKind;
use keysmith_core::{KeyDigest, KeyId, KeyName, PresentedKey};
use keysmith_store::{KeyFormat, NewAuditEntry, NewKey, Store, StoreError};
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

struct Entry {
    digest: KeyDigest,
    display: String,
}

pub async fn run(store: &dyn Store, username: &str, file: Option<&Path>, digests: bool, name: &str) -> Result<()> {
    let name = KeyName::parse(name).context("--name")?;
    let user = store
        .find_user_by_username(username)
        .await?
        .with_context(|| format!("no user named `{username}`"))?;
    if user.kind != PrincipalKind::User && user.kind != PrincipalKind::ServiceAccount {
        bail!("`{username}` cannot own keys");
    }
    let mut text = Zeroizing::new(String::new());
    match file {
        Some(path) => {
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    let entries = parse(&text, digests)?;
    if entries.is_empty() {
        bail!("no keys found in the input");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let orgs = store.owner_scope(user.id).await?.map(|s| s.orgs()).unwrap_or_default();
    let (mut imported, mut present) = (0, 0);
    for entry in entries {
        let key = NewKey {
            key_id: KeyId::new_legacy_handle()?,
            digest: entry.digest,
            format: KeyFormat::Legacy,
            display: entry.display,
            name: name.to_string(),
            owner: user.id,
            created_by: None,
            created_at: now,
            expires_at: None,
            rotated_from: None,
            federated_issuer: None,
            scope: keysmith_core::KeyScope::Admin,
            allowed_networks: None,
            requests_per_minute: None,
        };
        let audit: Vec<NewAuditEntry> = orgs
            .iter()
            .map(|org| NewAuditEntry {
                org: *org,
                at: now,
                actor: None,
                action: "api_key.imported".into(),
                target_kind: "api_key".into(),
                target: key.key_id.to_string(),
                source_address: None,
                detail: Some(serde_json::json!({ "owner": user.username }).to_string()),
            })
            .collect();
        match store.insert_key(key, &audit).await {
            Ok(_) => imported += 1,
            Err(StoreError::Conflict(_)) => present += 1,
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!(
        "imported {imported} legacy key(s) for `{}`; {present} already present",
        user.username
    );
    Ok(())
}

fn parse(text: &str, digests: bool) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = if digests {
            KeyDigest::from_hex(line).map(|digest| {
                let hex: String = digest.as_bytes()[..3].iter().map(|b| format!("{b:02x}")).collect();
                Entry {
                    digest,
                    display: format!("sha256:{hex}…"),
                }
            })
        } else {
            match PresentedKey::parse(line) {
                Ok(PresentedKey::Legacy(k)) => Some(Entry {
                    digest: k.digest(),
                    display: k.display(),
                }),
                _ => None,
            }
        };
        match entry {
            Some(e) => entries.push(e),
            None => bad.push(i + 1),
        }
    }
    if !bad.is_empty() {
        let what = if digests {
            "a SHA-256 digest (64 hex characters)"
        } else {
            "a legacy key (40 letters or digits, optionally after `prefix-`)"
        };
        let lines: Vec<String> = bad.iter().take(20).map(ToString::to_string).collect();
        bail!("nothing imported: line(s) {} are not {what}", lines.join(", "));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_lines_never_contents() {
        let err = parse(
            "0123456789abcdef0123456789abcdef01234567\nnot-a-key-secretvalue\n",
            false,
        )
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("line(s) 2"), "{msg}");
        assert!(!msg.contains("secretvalue"), "{msg}");
    }

    #[test]
    fn keys_and_digests_parse_and_comments_are_skipped() {
        let entries = parse("# old keys\n\nlocal-0123456789abcdef0123456789abcdef01234567\n", false).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].display, "local-…");
        let hex = "a".repeat(64);
        let entries = parse(&hex, true).unwrap();
        assert_eq!(entries[0].display, "sha256:aaaaaa…");
    }
}
