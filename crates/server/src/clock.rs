//! The wall clock, in the core's terms: the one place the server reads the
//! time. Core and stores never read a clock (time is passed in), which is
//! what lets the conformance suite drive expiry with a controlled clock.

use sessiond_core::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in whole Unix seconds.
pub fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
}
