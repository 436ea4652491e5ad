//! Wall-clock instants as plain numbers, so that callers (and tests) own the clock.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Seconds since the Unix epoch. Second resolution is enough for session
/// expiry and keeps records small and portable across every store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Adds a duration, saturating instead of overflowing on absurd configurations.
    pub fn plus(self, d: Duration) -> Timestamp {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(secs))
    }

    /// Subtracts a duration, saturating.
    pub fn minus(self, d: Duration) -> Timestamp {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(secs))
    }

    /// Seconds from `self` until `later` (zero if `later` is not later).
    pub fn seconds_until(self, later: Timestamp) -> u64 {
        u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp(10).plus(Duration::from_secs(5)), Timestamp(15));
        assert_eq!(Timestamp(10).minus(Duration::from_secs(5)), Timestamp(5));
        assert_eq!(
            Timestamp(i64::MAX - 1).plus(Duration::from_secs(10)),
            Timestamp(i64::MAX)
        );
        assert_eq!(Timestamp(10).seconds_until(Timestamp(4)), 0);
        assert_eq!(Timestamp(10).seconds_until(Timestamp(14)), 4);
    }
}
