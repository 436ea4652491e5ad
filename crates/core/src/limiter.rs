//! Counting failed logins per key (a user, a client address) in a fixed window.
//!
//! Written by hand because the rate-limiting crates (governor and friends)
//! limit request *rates* and cannot ask "is this key blocked?" without spending
//! a cell; here only failures count, and a success clears a user's record.

use crate::time::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

/// Blocks a key once it has `max_failures` failures within `window`, until that
/// window ends. Time is passed in, so the limiter is deterministic.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    windows: HashMap<String, Window>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window,
            windows: HashMap::new(),
        }
    }

    /// `Err(seconds)` when `key` is blocked, with the seconds until it is not.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        match self.windows.get(key) {
            Some(w) if w.failures >= self.max_failures => {
                let end = w.started.plus(self.window);
                if now < end {
                    Err(now.seconds_until(end).max(1))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, key: &str, now: Timestamp) {
        let window = self.window;
        let w = self.windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started.plus(window) {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    pub fn clear(&mut self, key: &str) {
        self.windows.remove(key);
    }

    /// Forgets windows that ended; call periodically so memory stays bounded.
    pub fn prune(&mut self, now: Timestamp) {
        let window = self.window;
        self.windows.retain(|_, w| now < w.started.plus(window));
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_window_ends() {
        let mut l = FailureLimiter::new(3, Duration::from_secs(60));
        for t in 0..3 {
            assert!(l.check("alice", Timestamp(t)).is_ok());
            l.record_failure("alice", Timestamp(t));
        }
        assert_eq!(l.check("alice", Timestamp(10)), Err(50));
        assert!(l.check("bob", Timestamp(10)).is_ok());
        assert!(l.check("alice", Timestamp(60)).is_ok());
        l.record_failure("alice", Timestamp(61));
        assert!(
            l.check("alice", Timestamp(62)).is_ok(),
            "a new window starts"
        );
    }

    #[test]
    fn clear_and_prune() {
        let mut l = FailureLimiter::new(1, Duration::from_secs(10));
        l.record_failure("a", Timestamp(0));
        l.record_failure("b", Timestamp(5));
        assert!(l.check("a", Timestamp(1)).is_err());
        l.clear("a");
        assert!(l.check("a", Timestamp(1)).is_ok());
        l.prune(Timestamp(12));
        assert_eq!(l.len(), 1);
        l.prune(Timestamp(15));
        assert!(l.is_empty());
    }
}
