//! Verification, the hot path every door shares: from a presented string to the key's
//! owner, or a refusal.
//!
//! parse (no allocation, never panics) → checksum (a mistyped or random string is
//! refused here, without touching the database) → the cache by key ID (v1), else the
//! store by key ID or (legacy) by digest, filling the cache → constant-time digest
//! comparison → owner active, key not expired → accept, and note the use and its
//! source in memory.
//!
//! [`Verifier::verify_now`] decides everything that needs no database and allocates
//! nothing when the key is warm, so a door can answer without a future (forward auth
//! does, on the connection); [`Verifier::verify_stored`] finishes after a store read.
//! Leak response uses [`lookup`], which reads the store and never the cache.

use crate::App;
use crate::error::Result;
use crate::fanout_map::CacheCounters;
use crate::key_limit::{KeyLimiter, Quota};
use crate::rate_limit::FailureLimiter;
use crate::usage::{Client, UsageRecorder};
use crate::verify_cache::{Entry, OwnerInfo, VerifyCache};
use keysmith_core::{KeyDigest, KeyFormatError, KeyId, KeyScope, PresentedKey};
use keysmith_store::{AuthRecord, Store};
use prometheus_client::metrics::counter::Counter;
use std::net::IpAddr;
use std::sync::Arc;

/// Why a key was refused. The client sees `invalid_api_key`, or `api_key_expired` for
/// a genuine key past its expiry (only its holder can present it, so telling them
/// reveals nothing); the reason is for logs and metrics, and names no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadChecksum,
    Unknown,
    WrongSecret,
    OwnerInactive,
    Expired,
    /// A genuine key, used from an address outside an allowlist that applies to it.
    AddressNotAllowed,
}

impl Refusal {
    /// The name in logs and the verification metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadChecksum => "bad_checksum",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::OwnerInactive => "owner_inactive",
            Self::Expired => "expired",
            Self::AddressNotAllowed => "ip_not_allowed",
        }
    }
}

/// Parses a presented key; a mistyped or random string is refused here.
pub fn parse(presented: &str) -> std::result::Result<PresentedKey<'_>, Refusal> {
    PresentedKey::parse(presented).map_err(|e| match e {
        KeyFormatError::BadChecksum => Refusal::BadChecksum,
        _ => Refusal::Malformed,
    })
}

/// What a presented string came to in the store.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A genuine key (the right secret for a known key ID, or a known legacy key),
    /// whatever its state.
    Genuine(Box<AuthRecord>),
    Refused(Refusal),
}

/// The stored record of a genuine key, or why the string is not one. Reads the store,
/// never the cache.
pub async fn lookup(app: &App, presented: &str) -> Result<Lookup> {
    let parsed = match parse(presented) {
        Ok(p) => p,
        Err(refusal) => return Ok(Lookup::Refused(refusal)),
    };
    let digest = parsed.digest();
    let record = match parsed {
        PresentedKey::V1(v1) => app.store.find_key_for_auth(&KeyId::from(v1)).await?,
        PresentedKey::Legacy(_) => app.store.find_legacy_key_for_auth(&digest).await?,
    };
    let Some(record) = record else {
        return Ok(Lookup::Refused(Refusal::Unknown));
    };
    if !record.digest.ct_eq(&digest) {
        return Ok(Lookup::Refused(Refusal::WrongSecret));
    }
    Ok(Lookup::Genuine(Box::new(record)))
}

/// What failure limits count by: the address, or for IPv6 its /64 (one host commonly
/// holds a whole /64).
pub fn limit_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_owned(),
    }
}

/// The outcome of a verification, for the metric. Counted by index: every outcome
/// costs the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    RateLimited,
    Refused(Refusal),
    /// A genuine key over its own request limit.
    KeyRateLimited,
}

/// The outcomes' label values, in the order of [`Outcome::index`].
pub const OUTCOMES: [&str; 10] = [
    "accepted",
    "rate_limited",
    "malformed",
    "bad_checksum",
    "unknown",
    "wrong_secret",
    "owner_inactive",
    "expired",
    "ip_not_allowed",
    "key_rate_limited",
];

impl Outcome {
    /// Its position in [`OUTCOMES`].
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Self::Accepted => 0,
            Self::RateLimited => 1,
            Self::Refused(r) => 2 + r as usize,
            Self::KeyRateLimited => 9,
        }
    }

    /// The metric label, also used in logs.
    pub fn as_str(self) -> &'static str {
        OUTCOMES[self.index()]
    }
}

/// Why a presented key was not accepted: refused, or not even judged because its
/// source address is over its failure limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Refused(Refusal),
    RateLimited {
        retry_after_secs: u64,
    },
    /// A genuine key that used up its own request limit for now.
    KeyRateLimited(Quota),
}

/// A key that verified, and what is known about its owner (shared with the cache).
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: KeyId,
    pub owner: Arc<OwnerInfo>,
    /// What the key may do at most.
    pub scope: KeyScope,
    /// Its request limit, per minute, if it has one…
    pub per_minute: Option<u32>,
    /// …and what is left of it after this request.
    pub quota: Option<Quota>,
}

/// How verification is set up.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Keys the cache holds at most; 0 turns it off.
    pub max_keys: usize,
    /// How long a cached key is trusted without reading it again.
    pub max_age_ms: i64,
    /// Failed verifications per source address per minute before it gets 429.
    pub failures_per_minute: u32,
    /// Where the cache counts its hits and misses.
    pub cache_counters: CacheCounters,
    /// One counter per [`OUTCOMES`] label, in that order (a metrics family's children).
    pub outcomes: [Counter; 10],
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_age_ms: 60_000,
            failures_per_minute: 60,
            cache_counters: CacheCounters::default(),
            outcomes: Default::default(),
        }
    }
}

/// Verification with its cache, its failure limit per source address, its outcome
/// counters and the usage it records.
pub struct Verifier {
    pub cache: Arc<VerifyCache>,
    /// Failed verifications per source address (an IPv6 /64 counts as one); also
    /// counts failed GitHub alert signatures.
    pub failures: FailureLimiter,
    outcomes: [Counter; 10],
    usage: Arc<UsageRecorder>,
    /// Each limited key's request budget.
    pub limits: KeyLimiter,
    /// Keys refused for their address, waiting to be audited (at most once a minute
    /// per key).
    pub refused_addresses: AddressRefusals,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// `live` says whether the cache may serve from the start (true where no other
    /// replica can change keys).
    pub fn new(settings: VerifierSettings, live: bool, usage: Arc<UsageRecorder>) -> Self {
        Self {
            cache: Arc::new(VerifyCache::new(
                settings.max_keys,
                settings.max_age_ms,
                live,
                settings.cache_counters,
            )),
            failures: FailureLimiter::new(settings.failures_per_minute, crate::time::MINUTE_MS),
            outcomes: settings.outcomes,
            usage,
            limits: KeyLimiter::default(),
            refused_addresses: AddressRefusals::default(),
        }
    }

    #[inline]
    fn count(&self, outcome: Outcome) {
        self.outcomes[outcome.index()].inc();
    }

    /// Everything verification can decide without the database: a key in the cache, a
    /// malformed key or a bad checksum, an address over its failure limit. `None` when
    /// the store must be asked; then [`Verifier::verify_stored`] finishes the job.
    ///
    /// A key accepted from the cache is never held back. Anything else may be someone
    /// guessing, so it counts against its source address: over the limit the address
    /// is refused (`Denied::RateLimited`) until the minute is over, without a database
    /// read, while the keys it holds that are in the cache (keys in steady use) keep
    /// working.
    #[inline]
    pub fn verify_now(
        &self,
        presented: &str,
        client: Client<'_>,
        now: i64,
    ) -> Option<std::result::Result<Verified, Denied>> {
        let cached = match self.verify_cached(presented, client.ip, now) {
            Some(Ok(verified)) => return Some(self.admit(verified, client, now)),
            other => other,
        };
        if let Err(retry_after_secs) = self.failures.check(&limit_key(client.address), now) {
            self.count(Outcome::RateLimited);
            return Some(Err(Denied::RateLimited { retry_after_secs }));
        }
        cached.map(|result| self.finish_counted(result, client, now))
    }

    /// The rest of a verification after [`Verifier::verify_now`] answered `None`:
    /// the store read, which also fills the cache. A store failure is the store's error.
    pub async fn verify_stored(
        &self,
        store: &dyn Store,
        presented: &str,
        client: Client<'_>,
        now: i64,
    ) -> std::result::Result<std::result::Result<Verified, Denied>, keysmith_store::StoreError> {
        let result = self.check(store, presented, client.ip, now).await?;
        Ok(self.finish_counted(result, client, now))
    }

    /// Counts a refusal against the client's address, then finishes.
    fn finish_counted(
        &self,
        result: std::result::Result<Verified, Refusal>,
        client: Client<'_>,
        now: i64,
    ) -> std::result::Result<Verified, Denied> {
        match result {
            Ok(verified) => self.admit(verified, client, now),
            // The right secret from the wrong place: not a guess, so it does not count
            // against the address (which may be a whole office's).
            Err(Refusal::AddressNotAllowed) => {
                self.count(Outcome::Refused(Refusal::AddressNotAllowed));
                tracing::warn!(
                    source.address = client.address,
                    auth.refusal = Refusal::AddressNotAllowed.as_str(),
                    "API key used from outside its allowlist"
                );
                Err(Denied::Refused(Refusal::AddressNotAllowed))
            }
            Err(refusal) => {
                if self.failures.record_failure(&limit_key(client.address), now) == self.failures.max_failures() {
                    tracing::warn!(
                        source.address = client.address,
                        "too many failed API key verifications from this address; refusing it for a minute"
                    );
                }
                self.count(Outcome::Refused(refusal));
                tracing::info!(auth.refusal = refusal.as_str(), "API key refused");
                Err(Denied::Refused(refusal))
            }
        }
    }

    /// A verified key, within its request limit if it has one: accepted; else refused
    /// until a token is back. Only requests that pass every other check take a token.
    #[inline]
    fn admit(&self, mut verified: Verified, client: Client<'_>, now: i64) -> std::result::Result<Verified, Denied> {
        if let Some(per_minute) = verified.per_minute {
            match self.limits.take(&verified.key_id, per_minute, now) {
                Ok(quota) => verified.quota = Some(quota),
                Err(quota) => {
                    self.count(Outcome::KeyRateLimited);
                    return Err(Denied::KeyRateLimited(quota));
                }
            }
        }
        Ok(self.accept(verified, client, now))
    }

    /// Notes the use and its source, and counts the acceptance.
    #[inline]
    fn accept(&self, verified: Verified, client: Client<'_>, now: i64) -> Verified {
        self.usage.record(&verified.key_id, now, client);
        self.count(Outcome::Accepted);
        verified
    }

    /// The part of verification that needs no database: a malformed key, a bad
    /// checksum, or a key in the cache. `None` when the store must be asked.
    #[inline]
    fn verify_cached(
        &self,
        presented: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Option<std::result::Result<Verified, Refusal>> {
        let parsed = match parse(presented) {
            Ok(p) => p,
            Err(refusal) => return Some(Err(refusal)),
        };
        match parsed {
            PresentedKey::V1(v1) => {
                let entry = self.cache.get(v1.key_id(), now)?;
                Some(self.judged(judge(KeyId::from(v1), &entry, &parsed.digest(), ip, now), ip, now))
            }
            PresentedKey::Legacy(legacy) => {
                let digest = legacy.digest();
                let (key_id, entry) = self.cache.get_legacy(&digest, now)?;
                Some(self.judged(judge(key_id, &entry, &digest, ip, now), ip, now))
            }
        }
    }

    /// The miss path: read the store, and fill the cache.
    async fn check(
        &self,
        store: &dyn Store,
        presented: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> keysmith_store::Result<std::result::Result<Verified, Refusal>> {
        let parsed = match parse(presented) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // One SHA-256: a legacy key is looked up by it, and every key is judged by it.
        let digest = parsed.digest();
        let (key_id, entry) = match parsed {
            PresentedKey::V1(v1) => {
                let key_id = KeyId::from(v1);
                // Taken before the read: an invalidation meanwhile voids the fill.
                let ticket = self.cache.ticket();
                let entry = match store.find_key_for_auth(&key_id).await? {
                    Some(record) => Entry::from_record(&record, now),
                    None => Entry::absent(now),
                };
                self.cache.fill(ticket, v1.key_id(), entry.clone());
                (key_id, entry)
            }
            PresentedKey::Legacy(_) => {
                let ticket = self.cache.ticket();
                match store.find_legacy_key_for_auth(&digest).await? {
                    Some(record) => {
                        let entry = Entry::from_record(&record, now);
                        self.cache.fill_legacy(ticket, &record.key_id, digest, entry.clone());
                        (record.key_id, entry)
                    }
                    None => return Ok(Err(Refusal::Unknown)),
                }
            }
        };
        Ok(self.judged(judge(key_id, &entry, &digest, ip, now), ip, now))
    }

    /// A judgement, with a refusal for the address noted for the audit log.
    #[inline]
    fn judged(
        &self,
        judgement: std::result::Result<Verified, (Refusal, KeyId)>,
        ip: Option<IpAddr>,
        now: i64,
    ) -> std::result::Result<Verified, Refusal> {
        judgement.map_err(|(refusal, key_id)| {
            if refusal == Refusal::AddressNotAllowed {
                self.refused_addresses.note(key_id, ip, now);
            }
            refusal
        })
    }
}

/// Genuine keys refused for the address they came from, kept until the server writes
/// them to the audit log: one entry per key a minute at most (per replica), so that a
/// leaked key tried in a loop cannot flood the log.
#[derive(Debug, Default)]
pub struct AddressRefusals {
    inner: std::sync::Mutex<RefusalLog>,
}

#[derive(Debug, Default)]
struct RefusalLog {
    last_noted: std::collections::HashMap<KeyId, i64>,
    pending: Vec<(KeyId, Option<IpAddr>, i64)>,
}

/// Keys whose refusals are remembered at most (the oldest are forgotten past it).
const MAX_REFUSED_KEYS: usize = 10_000;

impl AddressRefusals {
    fn note(&self, key_id: KeyId, ip: Option<IpAddr>, now: i64) {
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if log
            .last_noted
            .get(&key_id)
            .is_some_and(|at| now - at < crate::time::MINUTE_MS)
        {
            return;
        }
        if log.last_noted.len() >= MAX_REFUSED_KEYS {
            log.last_noted.retain(|_, at| now - *at < crate::time::MINUTE_MS);
        }
        if log.pending.len() < MAX_REFUSED_KEYS {
            log.last_noted.insert(key_id.clone(), now);
            log.pending.push((key_id, ip, now));
        }
    }

    /// The refusals noted since the last call.
    pub fn take(&self) -> Vec<(KeyId, Option<IpAddr>, i64)> {
        std::mem::take(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()).pending)
    }
}

/// Writes the refusals for an address noted since the last call to the audit log
/// (`api_key.ip_not_allowed`, in each organization of the key's owner, with the
/// address). Returns how many were written.
pub async fn audit_refused_addresses(app: &App) -> Result<usize> {
    let mut written = 0;
    for (key_id, ip, at) in app.verifier.refused_addresses.take() {
        let Some(key) = app.store.get_key(&key_id).await? else {
            continue;
        };
        let orgs = crate::access::audit_orgs(app, key.owner.id).await?;
        let address = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_canonical().to_string());
        let detail = serde_json::json!({ "name": key.name, "owner": key.owner.username, "address": address });
        let entries = crate::audit::AuditContext::reported(at, &address).entries(
            &orgs,
            crate::audit::Action::ApiKeyIpNotAllowed,
            key_id.as_str(),
            Some(detail),
        );
        app.store.append_audit_entries(&entries).await?;
        written += 1;
    }
    Ok(written)
}

/// The checks after the lookup, the same for a cached and a freshly read key.
/// The digest is compared whatever the entry holds, so that an unknown key, a wrong
/// secret and a deleted key take the same time.
#[inline]
fn judge(
    key_id: KeyId,
    entry: &Entry,
    digest: &KeyDigest,
    ip: Option<IpAddr>,
    now: i64,
) -> std::result::Result<Verified, (Refusal, KeyId)> {
    let matches = entry.digest.ct_eq(digest);
    if entry.is_absent() {
        return Err((Refusal::Unknown, key_id));
    }
    if !matches {
        return Err((Refusal::WrongSecret, key_id));
    }
    if !entry.owner.active {
        return Err((Refusal::OwnerInactive, key_id));
    }
    if entry.expires_at <= now {
        return Err((Refusal::Expired, key_id));
    }
    if !entry.allows(ip) {
        return Err((Refusal::AddressNotAllowed, key_id));
    }
    Ok(Verified {
        key_id,
        owner: entry.owner.clone(),
        scope: entry.policy.scope,
        per_minute: entry.policy.per_minute,
        quota: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{OUTCOMES, Outcome, Refusal, limit_key};

    #[test]
    fn outcomes_are_named_by_their_metric_labels() {
        for (refusal, name) in [
            (Refusal::Malformed, "malformed"),
            (Refusal::BadChecksum, "bad_checksum"),
            (Refusal::Unknown, "unknown"),
            (Refusal::WrongSecret, "wrong_secret"),
            (Refusal::OwnerInactive, "owner_inactive"),
            (Refusal::Expired, "expired"),
            (Refusal::AddressNotAllowed, "ip_not_allowed"),
        ] {
            assert_eq!(refusal.as_str(), name);
            assert_eq!(Outcome::Refused(refusal).as_str(), name);
        }
        assert_eq!(Outcome::Accepted.as_str(), "accepted");
        assert_eq!(Outcome::RateLimited.as_str(), "rate_limited");
        assert_eq!(OUTCOMES.len(), 10);
        assert_eq!(Outcome::KeyRateLimited.as_str(), "key_rate_limited");
    }

    #[test]
    fn failures_count_per_address_and_per_ipv6_64() {
        assert_eq!(limit_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(limit_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2:bbbb::7"), "2001:db8:1:2::/64");
        assert_ne!(limit_key("2001:db8:1:3::1"), limit_key("2001:db8:1:2::1"));
        assert_eq!(limit_key("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
        assert_eq!(limit_key("unknown"), "unknown");
    }
}
