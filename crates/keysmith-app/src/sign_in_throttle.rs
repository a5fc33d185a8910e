//! Slowing down password guessing without letting a guesser lock out the owner.
//!
//! A lock per account alone ("10 failures and the account is closed for 15 minutes")
//! hands anyone who can reach the sign-in page a way to lock out the only admin. So
//! failures are counted where the guessing happens:
//!
//! - **per account and client address**: [`FREE_FAILURES`] failures are free; after
//!   that each further attempt from that address for that account waits twice as long
//!   as the one before (1 s, 2 s, 4 s … up to [`MAX_DELAY_MS`]). The owner typing a
//!   password wrong a few times never notices; a guesser at one address gets about a
//!   dozen guesses in 15 minutes.
//! - **per address**, across accounts: [`ADDRESS_FAILURES`] failures in
//!   [`WINDOW_MS`], then the address waits for the window to end (password spraying).
//! - **per account**, across addresses: past [`ACCOUNT_FAILURES`] failures in the
//!   window the account is "under attack", and for [`ACCOUNT_LOCK_MS`] after the last
//!   failure every address that itself failed recently on it waits too. An address
//!   with no recent failure on the account (the owner's, usually) is never held back by
//!   this, so many addresses together cannot lock the owner out either.
//!
//! Refusal comes before the password is checked, so a refused attempt costs no argon2
//! run and tells nothing about the password. A correct password clears its own
//! address's failures for the account. An operator clears an account's failures on
//! every server with `keysmith admin unlock` (or `reset-password`), which stamps the
//! user's `sign_in_unlocked_at` in the database; failures counted before that stamp are
//! ignored. Counts live in each server's memory: with several replicas, each counts
//! what it sees. Memory is bounded, as in [`crate::rate_limit`].

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a failure is remembered after the last one.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures per (account, address) before delays start.
pub const FREE_FAILURES: u32 = 5;
/// The longest delay between attempts of one address on one account.
pub const MAX_DELAY_MS: i64 = 15 * 60 * 1000;
/// Failures per address, across accounts, in [`WINDOW_MS`].
pub const ADDRESS_FAILURES: u32 = 30;
/// Failures per account, across addresses, in [`WINDOW_MS`], before the account is
/// treated as under attack.
pub const ACCOUNT_FAILURES: u32 = 50;
/// How long after its last failure an account under attack holds back the addresses
/// that failed on it.
pub const ACCOUNT_LOCK_MS: i64 = 60 * 1000;

const MAX_ENTRIES: usize = 100_000;

/// Failures of one key: how many since `first_at`, the last at `last_at`.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    first_at: i64,
    last_at: i64,
    count: u32,
}

impl Strikes {
    fn live(&self, now: i64, unlocked_at: Option<i64>) -> bool {
        now < self.last_at + WINDOW_MS && unlocked_at.is_none_or(|u| self.last_at > u)
    }
}

/// Which account an attempt is for: a known user by ID (so a username and an email
/// count together), an unknown login by its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    User(i64),
    Unknown(String),
}

#[derive(Debug, Default)]
struct Tables {
    pairs: HashMap<(Account, String), Strikes>,
    accounts: HashMap<Account, Strikes>,
    addresses: HashMap<String, Strikes>,
}

#[derive(Debug, Default)]
pub struct SignInThrottle {
    tables: Mutex<Tables>,
}

/// `Err(seconds)` to wait.
pub type Verdict = Result<(), u64>;

fn seconds(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

impl SignInThrottle {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `address` may try at all: checked before the account is looked up.
    pub fn check_address(&self, address: &str, now: i64) -> Verdict {
        match self.tables().addresses.get(address) {
            Some(s) if s.count >= ADDRESS_FAILURES && now < s.first_at + WINDOW_MS => {
                Err(seconds(s.first_at + WINDOW_MS - now))
            }
            _ => Ok(()),
        }
    }

    /// Whether `address` may try a password for `account` now. `unlocked_at` is when an
    /// operator last cleared the account; earlier failures do not count.
    pub fn check_account(&self, account: &Account, address: &str, now: i64, unlocked_at: Option<i64>) -> Verdict {
        let tables = self.tables();
        let pair = tables
            .pairs
            .get(&(account.clone(), address.to_owned()))
            .filter(|s| s.live(now, unlocked_at));
        let Some(pair) = pair else {
            // No recent failure from here: never held back for this account.
            return Ok(());
        };
        let mut wait_until = 0;
        if pair.count >= FREE_FAILURES {
            let doublings = (pair.count - FREE_FAILURES).min(20);
            let delay = (1000_i64 << doublings).min(MAX_DELAY_MS);
            wait_until = pair.last_at + delay;
        }
        if let Some(acct) = tables.accounts.get(account).filter(|s| s.live(now, unlocked_at))
            && acct.count >= ACCOUNT_FAILURES
        {
            wait_until = wait_until.max(acct.last_at + ACCOUNT_LOCK_MS);
        }
        if now < wait_until {
            Err(seconds(wait_until - now))
        } else {
            Ok(())
        }
    }

    /// Whether some failure for `account` is remembered at all, so the caller knows
    /// whether asking the database for an operator's unlock is worth a query.
    pub fn knows(&self, account: &Account, now: i64) -> bool {
        self.tables().accounts.get(account).is_some_and(|s| s.live(now, None))
    }

    /// Counts a failed attempt of `address` on `account`.
    pub fn record_failure(&self, account: &Account, address: &str, now: i64, unlocked_at: Option<i64>) {
        let mut tables = self.tables();
        if tables.pairs.len() >= MAX_ENTRIES {
            prune(&mut tables, now);
        }
        let strike = |entry: &mut Strikes, fresh: bool| {
            if fresh {
                *entry = Strikes {
                    first_at: now,
                    last_at: now,
                    count: 0,
                };
            }
            entry.count = entry.count.saturating_add(1);
            entry.last_at = now;
        };
        let blank = Strikes {
            first_at: now,
            last_at: now,
            count: 0,
        };
        let pair = tables
            .pairs
            .entry((account.clone(), address.to_owned()))
            .or_insert(blank);
        let fresh = !pair.live(now, unlocked_at);
        strike(pair, fresh);
        let acct = tables.accounts.entry(account.clone()).or_insert(blank);
        let fresh = !acct.live(now, unlocked_at);
        strike(acct, fresh);
        // The address limit is a fixed window from its first failure, like the other
        // per-address limits.
        let addr = tables.addresses.entry(address.to_owned()).or_insert(blank);
        let fresh = now >= addr.first_at + WINDOW_MS;
        strike(addr, fresh);
    }

    /// A correct password from `address`: its failures on `account` were honest typos.
    pub fn record_success(&self, account: &Account, address: &str) {
        self.tables().pairs.remove(&(account.clone(), address.to_owned()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let t = self.tables();
        t.pairs.len() + t.accounts.len() + t.addresses.len()
    }
}

/// Drops what has expired; if the tables are still full (an attack from very many
/// addresses), forgets the older half rather than grow without bound.
fn prune(tables: &mut Tables, now: i64) {
    tables.pairs.retain(|_, s| s.live(now, None));
    tables.accounts.retain(|_, s| s.live(now, None));
    tables.addresses.retain(|_, s| now < s.first_at + WINDOW_MS);
    if tables.pairs.len() >= MAX_ENTRIES {
        let mut lasts: Vec<i64> = tables.pairs.values().map(|s| s.last_at).collect();
        lasts.sort_unstable();
        let cutoff = lasts[lasts.len() / 2];
        tables.pairs.retain(|_, s| s.last_at > cutoff);
    }
    // Each failure adds at most one entry to each table, so these grow no faster than
    // the pairs; past the bound, keep only the ones that hold someone back.
    if tables.accounts.len() >= MAX_ENTRIES {
        tables.accounts.retain(|_, s| s.count >= ACCOUNT_FAILURES);
    }
    if tables.addresses.len() >= MAX_ENTRIES {
        tables.addresses.retain(|_, s| s.count >= ADDRESS_FAILURES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Account = Account::User(1);

    fn fail(t: &SignInThrottle, address: &str, now: i64) {
        t.record_failure(&ADMIN, address, now, None);
    }

    #[test]
    fn a_few_typos_cost_nothing_then_delays_double() {
        let t = SignInThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.check_account(&ADMIN, "a", 0, None), Ok(()));
            fail(&t, "a", 0);
        }
        assert_eq!(t.check_account(&ADMIN, "a", 0, None), Err(1));
        assert_eq!(t.check_account(&ADMIN, "a", 1_000, None), Ok(()));
        fail(&t, "a", 1_000);
        assert_eq!(t.check_account(&ADMIN, "a", 1_000, None), Err(2));
        fail(&t, "a", 3_000);
        assert_eq!(t.check_account(&ADMIN, "a", 3_000, None), Err(4));
    }

    #[test]
    fn delays_stop_growing_at_the_cap_and_end_with_the_window() {
        let t = SignInThrottle::default();
        for i in 0..100 {
            fail(&t, "a", i);
        }
        assert_eq!(t.check_account(&ADMIN, "a", 99, None), Err(900));
        assert_eq!(t.check_account(&ADMIN, "a", 99 + WINDOW_MS, None), Ok(()));
    }

    #[test]
    fn an_attacker_at_one_address_never_holds_back_the_owner_at_another() {
        let t = SignInThrottle::default();
        for i in 0..1_000 {
            fail(&t, "attacker", i * 10);
        }
        assert!(t.check_account(&ADMIN, "attacker", 10_000, None).is_err());
        assert_eq!(t.check_address("owner", 10_000), Ok(()));
        assert_eq!(t.check_account(&ADMIN, "owner", 10_000, None), Ok(()));
    }

    #[test]
    fn an_account_under_attack_holds_back_only_addresses_that_failed_on_it() {
        let t = SignInThrottle::default();
        for i in 0..ACCOUNT_FAILURES {
            fail(&t, &format!("bot{i}"), 0);
        }
        // bot0 has one failure: no delay of its own, but the account is under attack.
        assert_eq!(t.check_account(&ADMIN, "bot0", 0, None), Err(60));
        assert_eq!(t.check_account(&ADMIN, "bot0", ACCOUNT_LOCK_MS, None), Ok(()));
        assert_eq!(
            t.check_account(&ADMIN, "owner", 0, None),
            Ok(()),
            "a fresh address is never held back"
        );
        assert_eq!(
            t.check_account(&Account::User(2), "bot0", 0, None),
            Ok(()),
            "other accounts are not affected"
        );
    }

    #[test]
    fn an_address_that_sprays_many_accounts_waits_for_the_window() {
        let t = SignInThrottle::default();
        for i in 0..ADDRESS_FAILURES {
            t.record_failure(&Account::Unknown(format!("user{i}")), "sprayer", 0, None);
        }
        assert_eq!(t.check_address("sprayer", 0), Err(900));
        assert_eq!(t.check_address("other", 0), Ok(()));
        assert_eq!(t.check_address("sprayer", WINDOW_MS), Ok(()));
    }

    #[test]
    fn success_clears_its_own_address_only() {
        let t = SignInThrottle::default();
        for _ in 0..10 {
            fail(&t, "a", 0);
            fail(&t, "b", 0);
        }
        t.record_success(&ADMIN, "a");
        assert_eq!(t.check_account(&ADMIN, "a", 0, None), Ok(()));
        assert!(t.check_account(&ADMIN, "b", 0, None).is_err());
    }

    #[test]
    fn an_operator_unlock_forgets_earlier_failures() {
        let t = SignInThrottle::default();
        for _ in 0..ACCOUNT_FAILURES {
            fail(&t, "a", 0);
        }
        assert!(t.check_account(&ADMIN, "a", 10, None).is_err());
        assert_eq!(t.check_account(&ADMIN, "a", 10, Some(5)), Ok(()));
        // A failure after the unlock starts a fresh count.
        t.record_failure(&ADMIN, "a", 20, Some(5));
        assert_eq!(t.check_account(&ADMIN, "a", 20, Some(5)), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let t = SignInThrottle::default();
        for i in 0..(MAX_ENTRIES + 10) {
            t.record_failure(&Account::Unknown("x".into()), &format!("ip{i}"), 0, None);
        }
        assert!(t.len() <= 2 * MAX_ENTRIES + 2, "{}", t.len());
    }
}
