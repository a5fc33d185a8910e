//! Per-key request limits (docs/DESIGN.md §3, "Per-key limits"): a token bucket of
//! `per_minute` requests, refilled evenly, kept as one number per limited key: the
//! generic cell rate algorithm's "theoretical arrival time" (TAT).
//!
//! With T = 60 000 ms / N (one token's worth of time) and a burst of N, a request at
//! `now` is admitted when `max(tat, now) + T - now <= N·T`, and then moves the TAT to
//! `max(tat, now) + T`. The bucket is full when `tat <= now`. No lock is held beyond
//! one shard's map; only keys with a limit are in it.
//!
//! Per replica: each process keeps its own buckets, so with R replicas behind a
//! balancer a key gets up to R·N requests a minute (docs/OPERATIONS.md).

use keysmith_core::KeyId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Limited keys a replica tracks at most; past it, full buckets are dropped (a full
/// bucket is the same as none), then the oldest.
const MAX_KEYS: usize = 100_000;
const MINUTE_MS: i64 = 60_000;

/// What a limited key's request may do, and what the RateLimit fields report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The policy: requests per minute.
    pub per_minute: u32,
    /// Requests left now (after this one, when admitted).
    pub remaining: u32,
    /// Seconds until the next token (0 when the bucket is full): IETF `RateLimit`'s `t`,
    /// and `Retry-After` on a refusal.
    pub reset_secs: u64,
}

#[derive(Debug, Default)]
pub struct KeyLimiter {
    tats: Mutex<HashMap<KeyId, i64>>,
}

impl KeyLimiter {
    /// Takes one token of `key`'s bucket of `per_minute`: `Ok` with what is left, or
    /// `Err` with when to come back.
    pub fn take(&self, key: &KeyId, per_minute: u32, now: i64) -> Result<Quota, Quota> {
        let n = i64::from(per_minute.max(1));
        let t = (MINUTE_MS / n).max(1);
        let burst = n * t;
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() >= MAX_KEYS && !tats.contains_key(key) {
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= MAX_KEYS {
                tats.clear();
            }
        }
        let tat = tats.get(key).copied().unwrap_or(now).max(now);
        let quota = |tat: i64| {
            let used = tat - now; // time the bucket owes, 0 when full
            let remaining = u32::try_from(((burst - used) / t).max(0)).unwrap_or(0);
            let next = if used <= 0 { 0 } else { used - (used / t) * t };
            let next = if used > 0 && next == 0 { t } else { next };
            Quota {
                per_minute,
                remaining,
                reset_secs: if used <= 0 {
                    0
                } else {
                    u64::try_from((next + 999) / 1000).unwrap_or(1)
                },
            }
        };
        if tat + t - now > burst {
            let mut refused = quota(tat);
            // The wait until one token is back, at least a second.
            let wait = tat + t - now - burst;
            refused.reset_secs = u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1);
            refused.remaining = 0;
            return Err(refused);
        }
        let tat = tat + t;
        tats.insert(key.clone(), tat);
        Ok(quota(tat))
    }

    /// Forgets a key's bucket (the key was deleted).
    pub fn forget(&self, key: &KeyId) {
        self.tats.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyId {
        KeyId::parse("wandb_v1_aaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap()
    }

    #[test]
    fn a_burst_of_n_then_one_every_interval() {
        let l = KeyLimiter::default();
        let k = key();
        for i in 0..10 {
            let q = l.take(&k, 10, 0).unwrap();
            assert_eq!(q.remaining, 9 - i, "request {i}");
            assert_eq!(q.per_minute, 10);
        }
        let refused = l.take(&k, 10, 0).unwrap_err();
        assert_eq!((refused.remaining, refused.reset_secs), (0, 6), "one token every 6 s");
        assert!(l.take(&k, 10, 5_999).is_err());
        let q = l.take(&k, 10, 6_000).unwrap();
        assert_eq!(q.remaining, 0);
        assert!(l.take(&k, 10, 6_000).is_err());
        // A minute idle refills it whole, no more.
        let q = l.take(&k, 10, 6_000 + 60_000).unwrap();
        assert_eq!((q.remaining, q.reset_secs), (9, 6));
    }

    #[test]
    fn a_fresh_key_reports_its_quota_and_the_time_to_the_next_token() {
        let l = KeyLimiter::default();
        let q = l.take(&key(), 600, 1_000).unwrap();
        assert_eq!((q.per_minute, q.remaining, q.reset_secs), (600, 599, 1));
        let other = KeyId::parse("wandb_v1_bbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(
            l.take(&other, 1, 0).unwrap().remaining,
            0,
            "keys have their own buckets"
        );
        let refused = l.take(&other, 1, 1).unwrap_err();
        assert_eq!(refused.reset_secs, 60);
    }
}
