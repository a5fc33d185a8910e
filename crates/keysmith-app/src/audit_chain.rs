//! The audit log's hash chain: each entry, once sealed, holds
//! `SHA-256(previous hash || entry)`, so that an entry changed, removed or slipped in
//! afterwards breaks the chain from there on (docs/OPERATIONS.md, "The audit hash
//! chain", gives the encoding, so that anyone can check it without Keysmith).
//!
//! Sealing runs behind the writers, in ID order, never past an ID whose transaction may
//! still commit (the webhook outbox's rule), so writers never wait for one another; the
//! replica that moves the chain's head first seals a batch, the others find it moved.

use crate::App;
use crate::error::Result;
use keysmith_store::{AuditEntry, Store};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const START: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries sealed per transaction.
const BATCH: u32 = 500;

/// The entry's hash in the chain after `previous` (hex), as lowercase hex: SHA-256 over
/// the previous hash's 64 hex characters, then each field in order: `id`, `org_id`,
/// `at` as 8-byte big-endian integers; `actor_id` as 0x00 (none) or 0x01 and 8 bytes;
/// `actor_name`, `action`, `target_kind`, `target` as a 4-byte big-endian length and
/// UTF-8; `source_address`, `detail` as 0x00 (none) or 0x01, length and UTF-8.
pub fn entry_hash(previous: &str, entry: &AuditEntry) -> String {
    fn text(h: &mut Sha256, s: &str) {
        // Audit fields are short; a length past u32 would be truncated, never reached.
        h.update(u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(s.as_bytes());
    }
    fn optional_text(h: &mut Sha256, s: Option<&str>) {
        match s {
            None => h.update([0]),
            Some(s) => {
                h.update([1]);
                text(h, s);
            }
        }
    }
    let mut h = Sha256::new();
    h.update(previous.as_bytes());
    h.update(entry.id.to_be_bytes());
    h.update(entry.org.0.to_be_bytes());
    h.update(entry.at.to_be_bytes());
    match entry.actor_id {
        None => h.update([0]),
        Some(actor) => {
            h.update([1]);
            h.update(actor.0.to_be_bytes());
        }
    }
    text(&mut h, &entry.actor_name);
    text(&mut h, &entry.action);
    text(&mut h, &entry.target_kind);
    text(&mut h, &entry.target);
    optional_text(&mut h, entry.source_address.as_deref());
    optional_text(&mut h, entry.detail.as_deref());
    format!("{:x}", h.finalize())
}

/// Seals every entry that may be sealed now; how many this call sealed (0 when another
/// replica got there first).
pub async fn seal(app: &App) -> Result<u64> {
    seal_at(app.store.as_ref(), app.now()).await
}

/// [`seal`] on a store, at `now` (the operator's commands have no [`App`]).
pub async fn seal_at(store: &dyn Store, now: i64) -> Result<u64> {
    let mut sealed = 0;
    loop {
        let (head_id, head_hash) = store.audit_chain_head().await?;
        let (_, entries) = store.audit_after(head_id, now, BATCH).await?;
        if entries.is_empty() {
            return Ok(sealed);
        }
        let mut previous = head_hash;
        let mut hashes = Vec::with_capacity(entries.len());
        for entry in &entries {
            previous = entry_hash(&previous, entry);
            hashes.push((entry.id, previous.clone()));
        }
        if !store.seal_audit(head_id, &hashes).await? {
            return Ok(sealed);
        }
        sealed += hashes.len() as u64;
        if entries.len() < BATCH as usize {
            return Ok(sealed);
        }
    }
}

/// What `keysmith admin audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every sealed entry follows from the ones before it, and the last is the head.
    Intact {
        /// Entries sealed.
        sealed: u64,
        /// Entries newer than the head, not sealed yet.
        unsealed: u64,
        /// The head: the newest sealed entry and its hash.
        head_id: i64,
        head_hash: String,
    },
    /// The chain breaks: the first entry that does not check, and why.
    Broken { entry: i64, reason: String },
}

/// Reads the whole audit log, oldest first, and checks every sealed entry's hash from
/// the start, then that the newest sealed entry is the chain's head.
pub async fn verify(store: &dyn Store) -> Result<Verdict> {
    let (head_id, head_hash) = store.audit_chain_head().await?;
    let mut previous = START.to_owned();
    let mut previous_id = 0;
    let (mut sealed, mut unsealed) = (0u64, 0u64);
    let mut after = 0;
    loop {
        // `i64::MAX` as the time: every gap is read past, since nothing is to commit
        // that verification could wait for.
        let (next, entries) = store.audit_after(after, i64::MAX, 1000).await?;
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            match (&entry.chain_hash, entry.id <= head_id) {
                (Some(stored), true) => {
                    if *stored != entry_hash(&previous, entry) {
                        return Ok(Verdict::Broken {
                            entry: entry.id,
                            reason: format!(
                                "its hash does not follow from the entries before it: entry {} or an entry \
                                 between {previous_id} (the last that checks) and it was changed, removed or added",
                                entry.id
                            ),
                        });
                    }
                    previous.clone_from(stored);
                    previous_id = entry.id;
                    sealed += 1;
                }
                (None, true) => {
                    return Ok(Verdict::Broken {
                        entry: entry.id,
                        reason: "it is older than the chain's head but has no hash: added, or its hash removed"
                            .to_owned(),
                    });
                }
                (Some(_), false) => {
                    return Ok(Verdict::Broken {
                        entry: entry.id,
                        reason: format!("it has a hash but is newer than the chain's head (entry {head_id})"),
                    });
                }
                (None, false) => unsealed += 1,
            }
        }
        after = next;
    }
    if previous_id != head_id || previous != head_hash {
        return Ok(Verdict::Broken {
            entry: head_id,
            reason: format!(
                "the chain's head is entry {head_id}, but the newest entry that checks is {previous_id}: \
                 entries after {previous_id} were removed or changed"
            ),
        });
    }
    Ok(Verdict::Intact {
        sealed,
        unsealed,
        head_id,
        head_hash,
    })
}
