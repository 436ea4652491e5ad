//! Session records and the rules that decide whether one is still good.
//!
//! Stores persist [`SessionRecord`]s and [`UserState`]s; the decision "current,
//! superseded or gone" is made here, once, by [`classify`], so that every store
//! answers alike.

use crate::identity::Identity;
use crate::policy::RealmPolicy;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Application data attached to a session: string keys to JSON values, like
/// FreeIPA's `context.session`.
pub type SessionData = BTreeMap<String, serde_json::Value>;

/// What a caller asks a store to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub realm: String,
    pub identity: Identity,
    pub policy: RealmPolicy,
    /// End time of the credentials that came with the login (a Kerberos TGT's end), if any.
    pub credential_end: Option<Timestamp>,
    /// The client's address, kept for "my sessions" listings.
    pub client_addr: Option<IpAddr>,
    /// What the client said it is (a browser's User-Agent, shortened), for
    /// "my sessions" listings.
    pub device: Option<String>,
    /// Credentials that came with the login (a Kerberos ccache), already
    /// sealed with the server's keyring (`keyring.rs`); base64.
    pub credentials: Option<String>,
}

/// A stored session. Keyed in every store by the SHA-256 of its token; the
/// token itself is never part of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub realm: String,
    pub identity: Identity,
    pub created: Timestamp,
    pub last_access: Timestamp,
    /// The user's supersede generation when this session was issued.
    pub generation: u64,
    /// Whether supersede applies to this session (the realm's policy at issue time).
    pub supersede: bool,
    /// Absolute end: the earlier of `created + max_lifetime` and `credential_end - skew`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Sliding inactivity limit, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Sealed credentials (never in clear in a store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default)]
    pub data: SessionData,
    /// Incremented on every data write; the compare-and-set version.
    #[serde(default)]
    pub data_version: u64,
    /// The user's session epoch when this session was issued (see
    /// [`UserState::epoch`]); 0 in stores that end a user's sessions by
    /// deleting them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub user_epoch: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SessionRecord {
    /// Builds the record for a fresh login, applying the realm's expiry policy.
    pub fn issue(new: NewSession, generation: u64, now: Timestamp) -> SessionRecord {
        let lifetime_end = new.policy.max_lifetime.map(|d| now.plus(d));
        let credential_cap = new
            .credential_end
            .map(|end| end.minus(new.policy.credential_skew));
        let expires_at = match (lifetime_end, credential_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SessionRecord {
            realm: new.realm,
            identity: new.identity,
            created: now,
            last_access: now,
            generation,
            supersede: new.policy.supersede,
            expires_at,
            idle_timeout_secs: new.policy.idle_timeout.map(|d| d.as_secs().max(1)),
            client_addr: new.client_addr,
            device: new.device,
            credentials: new.credentials,
            data: SessionData::new(),
            data_version: 0,
            user_epoch: 0,
        }
    }

    /// The instant this session ends if nothing else happens: the earlier of
    /// its absolute end and `last_access + idle_timeout`. `None` = never.
    /// Stores with native TTLs use this to set them.
    pub fn ends_at(&self) -> Option<Timestamp> {
        match (self.expires_at, self.idle_end()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the session ends if it is not used again: `last_access +
    /// idle_timeout`. `None` without an idle timeout.
    pub fn idle_end(&self) -> Option<Timestamp> {
        self.idle_timeout_secs
            .map(|s| self.last_access.plus(Duration::from_secs(s)))
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.ends_at().is_some_and(|end| now >= end)
    }

    /// Whether a validation at `now` should write `last_access` back. Writing on
    /// every request would make each check a store write, so the stamp is
    /// refreshed at most every `interval`, and at least ten times per idle
    /// period so an idle session never ends more than 10 % early.
    pub fn needs_touch(&self, now: Timestamp, interval: Duration) -> bool {
        let mut every = interval.as_secs();
        if let Some(idle) = self.idle_timeout_secs {
            every = every.min(idle / 10);
        }
        now.0 - self.last_access.0 >= i64::try_from(every.max(1)).unwrap_or(i64::MAX)
    }
}

/// Per-(realm, user) state: the supersede generation counter. Using a counter
/// rather than a "current token" pointer lets every store, memcached included,
/// implement supersede without enumerating a user's sessions, and removes
/// SessionKeyServer's `revoked` sentinel (a token could be named `revoked`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub generation: u64,
    /// When the generation last moved on, i.e. when older sessions became superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<Timestamp>,
    /// The user's session epoch, across all realms: every session issued in
    /// an earlier epoch is gone. A store that cannot enumerate a user's
    /// sessions (memcached) ends them all — on a password change or a
    /// deleted account — by moving it on, so no session needs to be found.
    /// A counter rather than a time, so no same-second ambiguity: a session
    /// whose store write read the old epoch is refused, one that read the
    /// new epoch lives. (A login whose password was checked just before the
    /// change but stored just after it lives too, on every store: the
    /// window is one password check long.) Not persisted with the realm's
    /// state; the store fills it in before classifying.
    #[serde(skip)]
    pub epoch: u64,
}

impl UserState {
    /// The generation a new session gets, updating the state for a login at `now`.
    pub fn next_login(&mut self, supersede: bool, now: Timestamp) -> u64 {
        if supersede {
            self.generation += 1;
            self.superseded_at = Some(now);
        }
        self.generation
    }
}

/// The answer to "is this token good?"
#[derive(Debug, Clone, PartialEq)]
pub enum Validity {
    Current(SessionRecord),
    Superseded(SessionRecord),
    /// Past its end (idle, absolute, or its credentials'), found by this
    /// check and deleted. Answered like [`Validity::Unknown`]; told apart
    /// only so the server can record the expiry (an audit event). Stores
    /// that expire records themselves (Redis and memcached TTLs) mostly
    /// never see one.
    Expired(SessionRecord),
    Unknown,
}

/// Whether a record a check found gone ended by reaching its own end —
/// not by being superseded long ago or ended with its user's sessions.
pub fn expired_on_sight(record: &SessionRecord, user: &UserState, now: Timestamp) -> bool {
    record.is_expired(now) && record.user_epoch >= user.epoch
}

/// What a store should do with a record it looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    Current,
    Superseded,
    /// Issued in another realm: answer unknown, but keep the record.
    OtherRealm,
    /// Expired, or superseded for longer than the retention: answer unknown and delete.
    Gone,
}

/// Decides the state of `record` when asked for in `realm` at `now`.
///
/// Superseded sessions keep answering SUPERCEDED for `superseded_retention`
/// after the user's latest login (so at least that long after they were
/// superseded), unless they expire earlier; then they are gone.
pub fn classify(
    record: &SessionRecord,
    user: &UserState,
    realm: &str,
    now: Timestamp,
    superseded_retention: Duration,
) -> Classification {
    if record.realm != realm {
        return Classification::OtherRealm;
    }
    if record.is_expired(now) || record.user_epoch < user.epoch {
        return Classification::Gone;
    }
    if record.supersede && record.generation < user.generation {
        let since = user.superseded_at.unwrap_or(record.created);
        if now >= since.plus(superseded_retention) {
            return Classification::Gone;
        }
        return Classification::Superseded;
    }
    Classification::Current
}

/// Whether a background sweep may delete `record` at `now` (no realm check).
pub fn is_purgeable(
    record: &SessionRecord,
    user: &UserState,
    now: Timestamp,
    superseded_retention: Duration,
) -> bool {
    classify(record, user, &record.realm, now, superseded_retention) == Classification::Gone
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIN: Duration = Duration::from_secs(3600);

    fn new(policy: RealmPolicy, credential_end: Option<Timestamp>) -> NewSession {
        NewSession {
            realm: "r".into(),
            identity: Identity::new("alice", "auth/file"),
            policy,
            credential_end,
            client_addr: None,
            device: None,
            credentials: None,
        }
    }

    #[test]
    fn default_policy_never_expires() {
        let rec = SessionRecord::issue(new(RealmPolicy::default(), None), 1, Timestamp(0));
        assert_eq!(rec.ends_at(), None);
        assert!(!rec.is_expired(Timestamp(i64::MAX)));
    }

    #[test]
    fn idle_and_absolute_together() {
        let policy = RealmPolicy {
            idle_timeout: Some(Duration::from_secs(100)),
            max_lifetime: Some(Duration::from_secs(250)),
            ..RealmPolicy::default()
        };
        let mut rec = SessionRecord::issue(new(policy, None), 1, Timestamp(1000));
        assert_eq!(rec.ends_at(), Some(Timestamp(1100)));
        assert!(!rec.is_expired(Timestamp(1099)));
        assert!(rec.is_expired(Timestamp(1100)));
        // activity slides the idle end, but never past the absolute end
        rec.last_access = Timestamp(1090);
        assert_eq!(rec.ends_at(), Some(Timestamp(1190)));
        rec.last_access = Timestamp(1200);
        assert_eq!(rec.ends_at(), Some(Timestamp(1250)));
    }

    #[test]
    fn credential_end_caps_the_session() {
        let policy = RealmPolicy {
            max_lifetime: Some(Duration::from_secs(36_000)),
            ..RealmPolicy::default()
        };
        let rec = SessionRecord::issue(new(policy.clone(), Some(Timestamp(3600))), 1, Timestamp(0));
        assert_eq!(
            rec.expires_at,
            Some(Timestamp(3300)),
            "end minus 5 min skew"
        );
        let rec = SessionRecord::issue(
            new(RealmPolicy::default(), Some(Timestamp(600))),
            1,
            Timestamp(0),
        );
        assert_eq!(
            rec.expires_at,
            Some(Timestamp(300)),
            "cap applies with no lifetime"
        );
    }

    #[test]
    fn touch_interval_respects_idle_timeout() {
        let policy = RealmPolicy {
            idle_timeout: Some(Duration::from_secs(100)),
            ..RealmPolicy::default()
        };
        let rec = SessionRecord::issue(new(policy, None), 1, Timestamp(0));
        let minute = Duration::from_secs(60);
        assert!(!rec.needs_touch(Timestamp(9), minute));
        assert!(rec.needs_touch(Timestamp(10), minute));
        let rec = SessionRecord::issue(new(RealmPolicy::default(), None), 1, Timestamp(0));
        assert!(!rec.needs_touch(Timestamp(59), minute));
        assert!(rec.needs_touch(Timestamp(60), minute));
    }

    #[test]
    fn supersede_and_retention() {
        let mut user = UserState::default();
        let g1 = user.next_login(true, Timestamp(0));
        let old = SessionRecord::issue(new(RealmPolicy::default(), None), g1, Timestamp(0));
        assert_eq!(
            classify(&old, &user, "r", Timestamp(1), RETAIN),
            Classification::Current
        );
        user.next_login(true, Timestamp(10));
        assert_eq!(
            classify(&old, &user, "r", Timestamp(11), RETAIN),
            Classification::Superseded
        );
        assert_eq!(
            classify(&old, &user, "r", Timestamp(3609), RETAIN),
            Classification::Superseded
        );
        assert_eq!(
            classify(&old, &user, "r", Timestamp(3610), RETAIN),
            Classification::Gone
        );
        assert_eq!(
            classify(&old, &user, "R", Timestamp(11), RETAIN),
            Classification::OtherRealm
        );
    }

    #[test]
    fn realms_without_supersede_keep_every_session_current() {
        let policy = RealmPolicy {
            supersede: false,
            ..RealmPolicy::default()
        };
        let mut user = UserState::default();
        let g = user.next_login(false, Timestamp(0));
        let a = SessionRecord::issue(new(policy.clone(), None), g, Timestamp(0));
        let g = user.next_login(false, Timestamp(5));
        let b = SessionRecord::issue(new(policy, None), g, Timestamp(5));
        assert_eq!(
            classify(&a, &user, "r", Timestamp(6), RETAIN),
            Classification::Current
        );
        assert_eq!(
            classify(&b, &user, "r", Timestamp(6), RETAIN),
            Classification::Current
        );
    }

    #[test]
    fn an_older_user_epoch_is_gone() {
        let rec = SessionRecord::issue(new(RealmPolicy::default(), None), 1, Timestamp(0));
        let mut user = UserState {
            generation: 1,
            ..UserState::default()
        };
        assert_eq!(
            classify(&rec, &user, "r", Timestamp(1), RETAIN),
            Classification::Current
        );
        user.epoch = 1;
        assert_eq!(
            classify(&rec, &user, "r", Timestamp(1), RETAIN),
            Classification::Gone
        );
        let newer = SessionRecord {
            user_epoch: 1,
            ..rec
        };
        assert_eq!(
            classify(&newer, &user, "r", Timestamp(1), RETAIN),
            Classification::Current
        );
    }

    #[test]
    fn record_serialises_without_any_token() {
        let rec = SessionRecord::issue(new(RealmPolicy::default(), None), 3, Timestamp(7));
        let json = serde_json::to_string(&rec).unwrap();
        let back: SessionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }
}
