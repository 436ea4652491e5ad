use serde::{Deserialize, Serialize};
use sessiond_core::session::SessionRecord;
use sessiond_core::TokenHash;
use std::time::Duration;

/// Settings every store honours.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long superseded sessions keep answering SUPERCEDED after the
    /// user's latest login, before they are purged.
    pub superseded_retention: Duration,
    /// Most frequent refresh of a session's `last_access` on validation.
    pub touch_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            superseded_retention: Duration::from_secs(24 * 3600),
            touch_interval: Duration::from_secs(60),
        }
    }
}

/// Whether a session check counts as the session's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The session was used: its idle end moves on.
    Touch,
    /// Background polling: the idle end stays where it was.
    Peek,
}

/// Result of a compare-and-set write of session data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataWrite {
    Written { version: u64 },
    Conflict { current_version: u64 },
    NotFound,
}

/// A member's role in a SessionKeyServer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupRole {
    Admin,
    Member,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::Admin => "admin",
            GroupRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<GroupRole> {
        match s {
            "admin" => Some(GroupRole::Admin),
            "member" => Some(GroupRole::Member),
            _ => None,
        }
    }
}

/// One membership change of `/mod_group`: set a role, or remove (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    pub user: String,
    pub role: Option<GroupRole>,
}

/// One of a user's sessions, as an administrator sees it. `id` is the token's
/// SHA-256 — what the store keys the record by — which names the session
/// without being usable as a token.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSession {
    pub id: TokenHash,
    pub record: SessionRecord,
    /// Answers SUPERCEDED rather than YES.
    pub superseded: bool,
}
