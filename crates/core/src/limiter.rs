//! Failed-login throttling: exponential back-off per key (an account, a
//! client network), and the keys themselves.
//!
//! Written by hand because the rate-limiting crates (governor and friends)
//! limit request *rates* and cannot ask "must this key wait?" without
//! spending a cell; here only failures count, a success clears an account's
//! record, and the count can live in a shared store (see
//! `sessiond_store::FailureCounters`) so several instances enforce one limit.
//!
//! Back-off rather than a lock: after `free_failures` failures each further
//! one doubles the wait (1 s, 2 s, 4 s, … up to `max_delay`). A hard lock let
//! anyone lock anyone out for the whole window with a handful of requests; a
//! back-off costs a guessing attacker exponentially more while a real user
//! who mistyped waits seconds.

use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The failures counted for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// When the latest failure happened.
    pub last: Timestamp,
}

/// The back-off rule of one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any wait (0 turns throttling off).
    pub free_failures: u32,
    /// Failures are forgotten this long after the latest one; also the
    /// longest wait.
    pub window: Duration,
}

impl Backoff {
    /// Whether throttling applies at all.
    pub fn enabled(&self) -> bool {
        self.free_failures > 0
    }

    /// Seconds the key must still wait at `now`, if any.
    pub fn wait(&self, f: Failures, now: Timestamp) -> Option<u64> {
        if !self.enabled() || f.count < self.free_failures || self.is_stale(f, now) {
            return None;
        }
        let excess = f.count - self.free_failures;
        let delay = 1u64
            .checked_shl(excess)
            .unwrap_or(u64::MAX)
            .min(self.window.as_secs().max(1));
        let until = f.last.plus(Duration::from_secs(delay));
        (now < until).then(|| now.seconds_until(until).max(1))
    }

    /// Whether the record is old enough to be forgotten.
    pub fn is_stale(&self, f: Failures, now: Timestamp) -> bool {
        now >= f.last.plus(self.window)
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(&self, f: Option<Failures>, now: Timestamp) -> Failures {
        let count = match f {
            Some(f) if !self.is_stale(f, now) => f.count.saturating_add(1),
            _ => 1,
        };
        Failures { count, last: now }
    }
}

/// Failure records of one process, for stores no other instance shares:
/// the in-memory twin of `sessiond_store::FailureCounters`. Keys of every
/// kind share one table (they carry their kind); the rule comes with each
/// call.
#[derive(Debug, Default)]
pub struct FailureTable {
    records: HashMap<String, Failures>,
}

impl FailureTable {
    pub fn new() -> FailureTable {
        FailureTable::default()
    }

    /// The record of `key`, if one is kept (it may be stale).
    pub fn get(&self, key: &str) -> Option<Failures> {
        self.records.get(key).copied()
    }

    pub fn record_failure(&mut self, key: &str, backoff: &Backoff, now: Timestamp) -> Failures {
        let next = backoff.after_failure(self.get(key), now);
        self.records.insert(key.to_owned(), next);
        next
    }

    pub fn clear(&mut self, key: &str) {
        self.records.remove(key);
    }

    /// Forgets records with no failure for `window`; call periodically so
    /// memory stays bounded.
    pub fn prune(&mut self, now: Timestamp, window: Duration) {
        self.records.retain(|_, f| now < f.last.plus(window));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Keys are joined with U+001F (unit separator): no realm or name holds a
/// control character (`names.rs`), and unlike NUL every store can keep it.
///
/// The account key: realm and user name, the name trimmed and lower-cased
/// so `Alice`, `alice` and `alice ` share one count whatever the
/// authenticator makes of them (the canonical name is only known after a
/// successful login).
pub fn account_key(realm: &str, user: &str) -> String {
    format!("u\u{1f}{realm}\u{1f}{}", user.trim().to_lowercase())
}

/// The client key: the address, or for IPv6 its /64 (one host usually has a
/// whole /64 to pick addresses from). IPv4-mapped IPv6 counts as IPv4.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("a\u{1f}{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("a\u{1f}{v4}"),
            None => {
                let s = v6.segments();
                format!("a\u{1f}{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        free_failures: 3,
        window: Duration::from_secs(300),
    };

    /// The wait `key` has in `t` at `now`.
    fn wait(t: &FailureTable, key: &str, now: i64) -> Option<u64> {
        t.get(key).and_then(|f| B.wait(f, Timestamp(now)))
    }

    #[test]
    fn waits_double_after_the_free_failures() {
        let mut t = FailureTable::new();
        for s in 0..3 {
            assert_eq!(wait(&t, "k", s), None);
            t.record_failure("k", &B, Timestamp(s));
        }
        // third failure at 2: wait 1 s
        assert_eq!(wait(&t, "k", 2), Some(1));
        assert_eq!(wait(&t, "k", 3), None);
        t.record_failure("k", &B, Timestamp(3));
        assert_eq!(wait(&t, "k", 3), Some(2));
        t.record_failure("k", &B, Timestamp(5));
        assert_eq!(wait(&t, "k", 5), Some(4));
        for s in 10..30 {
            t.record_failure("k", &B, Timestamp(s));
        }
        assert_eq!(wait(&t, "k", 29), Some(300), "never longer than the window");
        assert_eq!(wait(&t, "k", 29 + 300), None, "forgotten");
        assert_eq!(wait(&t, "other", 29), None);
    }

    #[test]
    fn a_stale_record_starts_over_and_prune_forgets() {
        let mut t = FailureTable::new();
        t.record_failure("a", &B, Timestamp(0));
        assert_eq!(t.record_failure("a", &B, Timestamp(400)).count, 1);
        t.record_failure("b", &B, Timestamp(100));
        t.prune(Timestamp(500), B.window);
        assert_eq!(t.len(), 1, "b is stale, a is not");
        t.clear("a");
        assert!(t.is_empty());
    }

    #[test]
    fn off_when_no_failures_are_free() {
        let off = Backoff {
            free_failures: 0,
            ..B
        };
        let f = Failures {
            count: 1000,
            last: Timestamp(0),
        };
        assert_eq!(off.wait(f, Timestamp(0)), None);
    }

    #[test]
    fn keys() {
        assert_eq!(account_key("rc", " Alice "), account_key("rc", "alice"));
        assert_ne!(account_key("rc", "alice"), account_key("web", "alice"));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b), "one /64");
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            address_key(mapped),
            address_key("192.0.2.1".parse().unwrap())
        );
    }
}
