//! Tickets for back ends obtained by protocol transition, kept per session
//! and target until shortly before they end, so a back end fetching on
//! every request does not cost two KDC round trips each time.
//!
//! Kept in this instance's memory, not in the store: the ticket is one
//! this instance can obtain again at any moment, and writing it into the
//! session record would be a store write per first fetch. A cached ticket
//! is only ever returned after the session was checked current, so a
//! revoked or expired session gets nothing from it; it ages out on its
//! own. (Tickets a Negotiate login obtained are kept in the session
//! itself: decision 0024.)

use sessiond_core::ccache::Ccache;
use sessiond_core::{Timestamp, TokenHash};
use std::sync::Arc;
use zeroize::Zeroizing;

/// How long before its end a ticket is no longer handed out: the back end
/// must still be able to use it.
const MARGIN_SECS: i64 = 5 * 60;

/// Whether a ticket ending at `ends` (seconds since the epoch) may still be
/// handed out at `now`: the one rule for kept tickets, whether this cache's
/// or a Negotiate login's in the session.
pub fn usable(ends: i64, now: Timestamp) -> bool {
    ends - now.0 > MARGIN_SECS
}
/// Sessions × targets kept at most (the oldest go first).
const CAPACITY: usize = 16_384;

struct Kept {
    ccache: Zeroizing<Vec<u8>>,
    /// When the ticket ends (seconds since the epoch).
    ends: i64,
}

/// `(session, target) → ticket`.
pub struct TicketCache(quick_cache::sync::Cache<(TokenHash, String), Arc<Kept>>);

impl Default for TicketCache {
    fn default() -> Self {
        TicketCache(quick_cache::sync::Cache::new(CAPACITY))
    }
}

impl TicketCache {
    /// The session's ticket to `target`, if one is kept that is good for
    /// more than the margin at `now`.
    pub fn get(&self, session: &TokenHash, target: &str, now: Timestamp) -> Option<Vec<u8>> {
        let key = (*session, target.to_owned());
        let kept = self.0.get(&key)?;
        if usable(kept.ends, now) {
            return Some(kept.ccache.to_vec());
        }
        self.0.remove(&key);
        None
    }

    /// Keeps a one-ticket cache as obtained; one whose end cannot be read
    /// is not kept.
    pub fn put(&self, session: &TokenHash, target: &str, ccache: &[u8]) {
        let ends = Ccache::parse(ccache)
            .ok()
            .and_then(|c| c.credentials.first().and_then(|t| t.end_time()));
        if let Some(ends) = ends {
            self.0.insert(
                (*session, target.to_owned()),
                Arc::new(Kept {
                    ccache: Zeroizing::new(ccache.to_vec()),
                    ends: i64::from(ends),
                }),
            );
        }
    }
}
