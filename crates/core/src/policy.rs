//! Per-realm session policy: how long sessions live and whether a new login
//! supersedes older ones.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Policy applied to sessions of one realm at the moment they are issued.
///
/// Every limit is optional; the default is SessionKeyServer's behaviour: no
/// expiry at all, and a new login supersedes the user's older tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmPolicy {
    /// Sliding inactivity limit (FreeIPA's *inactivity_timeout*).
    pub idle_timeout: Option<Duration>,
    /// Absolute limit from login (FreeIPA's *from_start*).
    pub max_lifetime: Option<Duration>,
    /// How long before the credentials' own end a session stops (FreeIPA used 5 minutes).
    pub credential_skew: Duration,
    /// Whether a new login makes older tokens of the same user answer SUPERCEDED.
    pub supersede: bool,
}

impl Default for RealmPolicy {
    fn default() -> Self {
        RealmPolicy {
            idle_timeout: None,
            max_lifetime: None,
            credential_skew: Duration::from_secs(300),
            supersede: true,
        }
    }
}
