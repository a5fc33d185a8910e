//! Counting failures per source address and per account, to slow down guessing.
//!
//! A fixed window per key: after `max_failures` failures within `window`, further
//! attempts are refused until the window ends. Only failures count, so a valid key or a
//! correct password is never slowed by this. Time is a parameter, so tests need no
//! sleep. Memory is bounded: expired windows are dropped when the map grows.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window_ms: i64,
    max_entries: usize,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: i64,
    failures: u32,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window_ms: i64) -> Self {
        Self {
            max_failures,
            window_ms,
            max_entries: 100_000,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` if `key` has used up its failures in the current window.
    /// A limit of 0 failures turns the limiter off.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(key) {
            Some(w) if w.failures >= self.max_failures && now < w.started_at + self.window_ms => {
                let wait_ms = w.started_at + self.window_ms - now;
                Err(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `key`; returns the failures in its current window.
    pub fn record_failure(&self, key: &str, now: i64) -> u32 {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.max_entries && !windows.contains_key(key) {
            let window_ms = self.window_ms;
            windows.retain(|_, w| now < w.started_at + window_ms);
            if windows.len() >= self.max_entries {
                // Still full of live windows: an attack from very many sources. Forget
                // the oldest half rather than grow without bound.
                let mut starts: Vec<i64> = windows.values().map(|w| w.started_at).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                windows.retain(|_, w| w.started_at > cutoff);
            }
        }
        let w = windows.entry(key.to_owned()).or_insert(Window {
            started_at: now,
            failures: 0,
        });
        if now >= w.started_at + self.window_ms {
            *w = Window {
                started_at: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
        w.failures
    }

    /// The failures that `key` may have in one window before it is refused.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// Forgets `key`'s failures, after a success that proves the attempts were honest.
    pub fn clear(&self, key: &str) {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let l = FailureLimiter::new(3, 60_000);
        for _ in 0..3 {
            assert!(l.check("ip:1", 1_000).is_ok());
            l.record_failure("ip:1", 1_000);
        }
        assert_eq!(l.check("ip:1", 1_000), Err(60));
        assert_eq!(l.check("ip:1", 60_500), Err(1));
        assert!(l.check("ip:2", 1_000).is_ok(), "other keys are not affected");
        assert!(l.check("ip:1", 61_000).is_ok(), "the window ended");
        l.record_failure("ip:1", 61_000);
        assert!(l.check("ip:1", 61_000).is_ok(), "a new window starts with one failure");
    }

    #[test]
    fn a_limit_of_zero_is_off() {
        let l = FailureLimiter::new(0, 60_000);
        for _ in 0..100 {
            assert_eq!(l.check("ip:1", 0), Ok(()));
            l.record_failure("ip:1", 0);
        }
    }

    #[test]
    fn clear_forgets_failures() {
        let l = FailureLimiter::new(1, 60_000);
        l.record_failure("acct:a", 0);
        assert!(l.check("acct:a", 0).is_err());
        l.clear("acct:a");
        assert!(l.check("acct:a", 0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_many_sources() {
        let mut l = FailureLimiter::new(5, 60_000);
        l.max_entries = 100;
        for i in 0..1_000 {
            l.record_failure(&format!("ip:{i}"), i);
        }
        assert!(l.len() <= 100, "{}", l.len());
    }
}
