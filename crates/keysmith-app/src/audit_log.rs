//! Reading an organization's audit log (org admins), newest first, a page at a time;
//! and exporting it oldest first, resumable, for a SIEM.

use crate::App;
use crate::access::admin_org;
use crate::caller::Caller;
use crate::error::{AppError, Result};
use keysmith_store::{AuditEntry, AuditQuery};

/// Entries a page holds when the caller names no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most entries a page holds.
pub const MAX_LIMIT: u32 = 200;

/// Which entries to read. Times are Unix milliseconds; the cursor is the
/// `next_cursor` of the page before.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    /// A username.
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Entries at or after.
    pub since: Option<i64>,
    /// Entries before.
    pub until: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of the organization's audit log.
pub async fn list(app: &App, caller: &Caller, org: &str, filter: Filter) -> Result<Page> {
    let org = admin_org(app, caller, org).await?;
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let before_id = match &filter.cursor {
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or(AppError::InvalidCursor)?,
        ),
        None => None,
    };
    let query = AuditQuery {
        org: Some(org.id),
        action: filter.action,
        actor: filter.actor,
        target: filter.target,
        since: filter.since,
        until: filter.until,
        before_id,
        limit: limit + 1,
    };
    let mut entries = app.store.list_audit(&query).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = if more {
        entries.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Page { entries, next_cursor })
}

/// Entries an export reads at most per call.
pub const EXPORT_LIMIT: u32 = 1000;

/// A piece of the audit log in the order it was written: the entries after a cursor,
/// and the cursor to resume after (an entry ID; the same for every organization, so
/// resuming never repeats or skips one).
#[derive(Debug, Clone)]
pub struct Export {
    pub entries: Vec<AuditEntry>,
    pub next_after: i64,
}

/// Where an export begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this entry ID: the cursor the export before answered (0: the beginning).
    After(i64),
    /// At the first entry written at or after this time (Unix ms); resuming is by the
    /// cursor the answer gives.
    Since(i64),
}

/// The entries of `org` (every organization's with `None`) from `start`, oldest
/// first: at most `limit` read (1 to [`EXPORT_LIMIT`]). Stops before an ID that is
/// still to commit, so a reader resuming from `next_after` misses nothing, and at the
/// audit chain's head, so that every entry exported carries its chain hash.
pub async fn export_after(app: &App, org: Option<keysmith_core::OrgId>, start: Start, limit: u32) -> Result<Export> {
    if !(1..=EXPORT_LIMIT).contains(&limit) {
        return Err(AppError::InvalidQuery(format!(
            "limit must be between 1 and {EXPORT_LIMIT}"
        )));
    }
    let after = match start {
        Start::After(after) if after < 0 => return Err(AppError::InvalidCursor),
        Start::After(after) => after,
        Start::Since(at) => app.store.audit_cursor_at(at).await?,
    };
    // Exported entries carry their chain hash: seal what may be sealed, then export no
    // further than the chain's head. Sealing may fail (a read-only database): what is
    // sealed is still exported.
    if let Err(e) = crate::audit_chain::seal(app).await {
        tracing::warn!(error.detail = %e, "could not seal the audit log before exporting it");
    }
    let (head, _) = app.store.audit_chain_head().await?;
    let (mut next_after, mut entries) = app.store.audit_after(after, app.now(), limit).await?;
    if next_after > head {
        entries.retain(|e| e.id <= head);
        next_after = entries.last().map_or(after, |e| e.id);
    }
    if let Some(org) = org {
        entries.retain(|e| e.org == org);
    }
    Ok(Export { entries, next_after })
}

/// [`export_after`] for an organization's admin.
pub async fn export(app: &App, caller: &Caller, org: &str, start: Start, limit: u32) -> Result<Export> {
    let org = admin_org(app, caller, org).await?;
    export_after(app, Some(org.id), start, limit).await
}
