//! Session stores: a small core trait, [`SessionStore`], and the optional
//! abilities a store may add as traits of their own — [`UserSessions`]
//! (enumerate a user's sessions), [`KeySlots`] (SessionKeyServer's
//! per-identity keys), [`TicketMarks`] (a user's ticket not-before time),
//! [`Groups`] (SessionKeyServer's groups) and [`FailureCounters`]
//! (failed-login counts shared by a fleet). A [`Store`] is what the server
//! holds: the core and the abilities this store offers, decided when it is
//! opened, so the server knows at start which routes it can serve instead
//! of meeting an "unsupported" error per request.
//!
//! Every store has the same semantics, decided by
//! `sessiond_core::session::classify`, and runs the same conformance suite
//! (`tests/conformance`). Records are keyed by the SHA-256 of the token; no
//! store ever sees a raw token.
//!
//! A whole store, in the shape every implementation here has (the core
//! trait, the mandatory abilities, and a constructor of its [`Store`]):
//!
//! ```
//! use async_trait::async_trait;
//! use sessiond_core::session::{SessionData, SessionRecord, Validity};
//! use sessiond_core::{NewSession, Timestamp, TokenHash};
//! use sessiond_store::{
//!     Access, DataWrite, GroupChange, GroupRole, Groups, KeySlots, SessionStore, Store,
//!     StoreError, StoreResult, TicketMarks,
//! };
//! use std::sync::Arc;
//!
//! /// A store that keeps nothing: every token is unknown. (A real store
//! /// keeps records; see `memory.rs` for the smallest one.)
//! struct Forgetful;
//!
//! #[async_trait]
//! impl SessionStore for Forgetful {
//!     fn kind(&self) -> &'static str { "forgetful" }
//!     async fn ping(&self) -> StoreResult<()> { Ok(()) }
//!     async fn create(&self, _: TokenHash, new: NewSession, now: Timestamp)
//!         -> StoreResult<SessionRecord> { Ok(SessionRecord::issue(new, 0, now)) }
//!     async fn check(&self, _: TokenHash, _: &str, _: Timestamp, _: Access)
//!         -> StoreResult<Validity> { Ok(Validity::Unknown) }
//!     async fn revoke(&self, _: TokenHash, _: &str, _: Timestamp)
//!         -> StoreResult<Option<SessionRecord>> { Ok(None) }
//!     async fn replace(&self, _: TokenHash, _: TokenHash, _: &str, _: Timestamp)
//!         -> StoreResult<Option<SessionRecord>> { Ok(None) }
//!     async fn read_data(&self, _: TokenHash, _: &str, _: Timestamp)
//!         -> StoreResult<Option<(SessionData, u64)>> { Ok(None) }
//!     async fn write_data(&self, _: TokenHash, _: &str, _: u64, _: SessionData, _: Timestamp)
//!         -> StoreResult<DataWrite> { Ok(DataWrite::NotFound) }
//!     async fn purge(&self, _: Timestamp) -> StoreResult<u64> { Ok(0) }
//!     async fn end_user_sessions(&self, _: &str, _: Timestamp) -> StoreResult<Option<u64>> {
//!         Ok(Some(0))
//!     }
//! }
//!
//! #[async_trait]
//! impl KeySlots for Forgetful {
//!     async fn get_key(&self, _: &str) -> StoreResult<Option<String>> { Ok(None) }
//!     async fn put_key(&self, _: &str, _: &str) -> StoreResult<()> {
//!         Err(StoreError::Unavailable("forgetful: keeps no keys".into()))
//!     }
//! }
//!
//! #[async_trait]
//! impl TicketMarks for Forgetful {
//!     async fn raise_ticket_not_before(&self, _: &str, _: &str, at: Timestamp)
//!         -> StoreResult<Timestamp> { Ok(at) }
//! }
//!
//! #[async_trait]
//! impl Groups for Forgetful {
//!     async fn create_group(&self, _: &str, _: &str, _: &str, _: &str) -> StoreResult<bool> {
//!         Ok(false)
//!     }
//!     async fn group_role(&self, _: &str, _: &str, _: &str) -> StoreResult<Option<GroupRole>> {
//!         Ok(None)
//!     }
//!     async fn group_key(&self, _: &str) -> StoreResult<Option<String>> { Ok(None) }
//!     async fn update_group(&self, _: &str, _: &str, _: &str, _: &[GroupChange])
//!         -> StoreResult<bool> { Ok(false) }
//! }
//!
//! // It cannot list a user's sessions: it does not implement
//! // `UserSessions`, and its `Store` says so.
//! let store = Store::new(Arc::new(Forgetful));
//! assert!(store.users.is_none() && store.failures.is_none());
//! assert_eq!(store.kind(), "forgetful");
//! ```

mod error;
pub mod file;
mod lease;
pub mod memcached;
pub mod memory;
mod near_cache;
mod ops;
pub mod postgres;
pub mod redis_store;
mod types;

pub use error::StoreError;
pub use file::FileStore;
pub use memcached::MemcachedStore;
pub use memory::MemoryStore;
pub use near_cache::{Invalidator, NearCacheConfig, NearCacheStats};
pub use postgres::PostgresStore;
pub use redis_store::{RedisStore, RedisTarget, ReplicaAcks};
pub use types::{Access, DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};

/// What a store's look-up found, for the stores' own check paths: a
/// record in use, one that expired (deleted now, reported by the check),
/// or nothing to answer for.
pub(crate) enum Found {
    Live(
        sessiond_core::SessionRecord,
        sessiond_core::session::Classification,
    ),
    Expired(sessiond_core::SessionRecord),
    Missing,
}

impl Found {
    /// A record the classification called gone: expired, or ended otherwise.
    fn gone(
        record: sessiond_core::SessionRecord,
        user: &sessiond_core::session::UserState,
        now: sessiond_core::Timestamp,
    ) -> Found {
        if sessiond_core::session::expired_on_sight(&record, user, now) {
            Found::Expired(record)
        } else {
            Found::Missing
        }
    }

    /// The record and its class, if it is in use.
    fn live(
        self,
    ) -> Option<(
        sessiond_core::SessionRecord,
        sessiond_core::session::Classification,
    )> {
        match self {
            Found::Live(record, class) => Some((record, class)),
            Found::Expired(_) | Found::Missing => None,
        }
    }
}

use async_trait::async_trait;
use sessiond_core::limiter::{Backoff, Failures};
use sessiond_core::session::{SessionData, SessionRecord, Validity};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use std::sync::Arc;

pub type StoreResult<T> = Result<T, StoreError>;

/// What every session store offers: sessions, from login to logout. Each
/// method is one atomic step: no caller ever needs a read-modify-write
/// sequence across calls, which is what made SessionKeyServer lose records
/// under concurrency.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Short name for logs and metrics (`memory`, `file`, …).
    fn kind(&self) -> &'static str;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Stores a new session under `id`, taking the user's next supersede
    /// generation atomically. Returns the stored record. Once this returns Ok
    /// the session is as durable as the store promises.
    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord>;

    /// Looks a session up in `realm`: the one step behind every check on
    /// every surface. Expired records answer `Unknown` and are deleted;
    /// with [`Access::Touch`] `last_access` is refreshed when the record
    /// asks for it, with [`Access::Peek`] it stays as it was (background
    /// polling must not keep an abandoned session alive).
    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity>;

    /// [`SessionStore::check`] that counts as activity.
    async fn validate(&self, id: TokenHash, realm: &str, now: Timestamp) -> StoreResult<Validity> {
        self.check(id, realm, now, Access::Touch).await
    }

    /// [`SessionStore::check`] that does not count as activity.
    async fn peek(&self, id: TokenHash, realm: &str, now: Timestamp) -> StoreResult<Validity> {
        self.check(id, realm, now, Access::Peek).await
    }

    /// Deletes a current or superseded session; returns it, or `None` if unknown.
    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;

    /// If `old` is current in `realm`, atomically moves it to `new` (same user,
    /// generation and data; `old` stops existing) and returns the new record.
    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;

    /// A current session's data and its version.
    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>>;

    /// Compare-and-set of a current session's data: written only if the stored
    /// version still equals `expected_version`.
    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite>;

    /// Deletes expired sessions and superseded ones past their retention.
    /// Returns how many were deleted.
    async fn purge(&self, now: Timestamp) -> StoreResult<u64>;

    /// Ends every session of `user` in every realm: what a password change,
    /// a deleted account or an administrator's "end everything" needs —
    /// so every store must do it, enumerating or not. Returns how many
    /// sessions were deleted, or `None` where the store ends them without
    /// finding them (memcached moves the user's session epoch on; see
    /// [`sessiond_core::session::UserState::epoch`]).
    async fn end_user_sessions(&self, user: &str, now: Timestamp) -> StoreResult<Option<u64>>;
}

/// A store that can enumerate a user's sessions: "my sessions", the admin
/// listing, "end all but this one". memcached cannot (it has no way to
/// find keys) and does not implement this; its routes answer 501.
#[async_trait]
pub trait UserSessions: SessionStore {
    /// The live (current or superseded) sessions of `user` in `realm`,
    /// oldest first.
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>>;

    /// Deletes every session of `user` in `realm` except `keep`; returns how
    /// many were deleted.
    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        now: Timestamp,
    ) -> StoreResult<u64>;
}

/// SessionKeyServer's per-identity key slots (`/gen_key`, `/get_key`),
/// also where sessiond keeps small named values of its own.
#[async_trait]
pub trait KeySlots: Send + Sync + 'static {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>>;
    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()>;
}

/// A user's ticket not-before time per ticket realm: tickets issued before
/// it are refused (revoking a user's tickets, a password change).
#[async_trait]
pub trait TicketMarks: KeySlots {
    /// The time before which tickets of `user` in `realm` are refused.
    ///
    /// Kept in the key slots, under a name no SessionKeyServer slot can have
    /// (those start with the user name, which is never empty and never holds
    /// a control character).
    async fn ticket_not_before(&self, realm: &str, user: &str) -> StoreResult<Option<Timestamp>> {
        match self.get_key(&not_before_slot(realm, user)).await? {
            None => Ok(None),
            Some(text) => parse_not_before(&text).map(Some),
        }
    }

    /// Moves the user's not-before time forward to `at` (never back) and
    /// returns the time now in force. One atomic step in every store (a
    /// transaction, a script, a conditional upsert or a `cas` loop): two
    /// revocations racing can never leave the earlier of their times.
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp>;
}

/// SessionKeyServer's groups: a name, a key, members and admins.
#[async_trait]
pub trait Groups: Send + Sync + 'static {
    /// Creates `group` with `user` of `realm` as its admin, unless the group
    /// exists (group names are global, as in SessionKeyServer). Returns whether
    /// it was created.
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool>;

    /// The role of `user` of `realm` in `group`.
    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>>;

    /// The group's key, if the group exists.
    async fn group_key(&self, group: &str) -> StoreResult<Option<String>>;

    /// Applies membership changes in order, atomically, only if `caller` is an
    /// admin of the group at that moment. Returns whether it was applied.
    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool>;
}

/// A session store and the abilities it offers, as the server holds it.
/// Built by each store's `into_store`, which names what the store can do;
/// dereferences to the core [`SessionStore`].
#[derive(Clone)]
pub struct Store {
    pub sessions: Arc<dyn SessionStore>,
    pub keys: Arc<dyn KeySlots>,
    pub tickets: Arc<dyn TicketMarks>,
    pub groups: Arc<dyn Groups>,
    /// `None` for a store that cannot enumerate a user's sessions.
    pub users: Option<Arc<dyn UserSessions>>,
    /// Failed-login counts every instance on this store shares, so a fleet
    /// enforces one limit. `None` for stores private to one process
    /// (memory, file): the server counts in its own memory then.
    pub failures: Option<Arc<dyn FailureCounters>>,
    /// The near cache in front of the checks, if one is ([`Store::with_near_cache`]).
    pub near_cache: Option<Invalidator>,
}

impl Store {
    /// A store with the abilities every store must have.
    pub fn new<S: SessionStore + KeySlots + TicketMarks + Groups>(s: Arc<S>) -> Store {
        Store {
            sessions: s.clone(),
            keys: s.clone(),
            tickets: s.clone(),
            groups: s,
            users: None,
            failures: None,
            near_cache: None,
        }
    }

    /// Adds the ability to enumerate a user's sessions.
    pub fn with_users<S: UserSessions>(mut self, s: Arc<S>) -> Store {
        self.users = Some(s);
        self
    }

    /// Adds failed-login counts shared by every instance.
    pub fn with_failures<S: FailureCounters + 'static>(mut self, s: Arc<S>) -> Store {
        self.failures = Some(s);
        self
    }
}

impl std::ops::Deref for Store {
    type Target = dyn SessionStore;

    fn deref(&self) -> &Self::Target {
        &*self.sessions
    }
}

/// Failed-login records kept where every instance sees them. Keys are
/// opaque (an account or a client network, built by
/// `sessiond_core::limiter`); each method is one atomic step.
#[async_trait]
pub trait FailureCounters: Send + Sync {
    /// The record of `key`, if one is kept (it may be stale: callers apply
    /// the back-off rule).
    async fn failures(&self, key: &str) -> StoreResult<Option<Failures>>;

    /// Counts one more failure of `key` at `now` under `backoff`'s rule
    /// (a stale record starts over) and returns the new record. The record
    /// may be dropped once `backoff.window` has passed without failures.
    async fn record_failure(
        &self,
        key: &str,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Failures>;

    /// Forgets `key` (a successful login of the account).
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;
}

/// A store address as it may be shown (logs, `check-config`, the start-up
/// line): the password of every `scheme://user:password@host` in a
/// comma-separated list, and any `password=` query parameter (PostgreSQL's
/// other spelling), replaced by `***`.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let mut shown = match (one.find("://"), one.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://***@{}", &one[..scheme], &one[at + 1..])
                }
                _ => one.to_owned(),
            };
            if let Some((base, query)) = shown.split_once('?') {
                let query: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_owned(),
                    })
                    .collect();
                shown = format!("{base}?{}", query.join("&"));
            }
            shown
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a store URL (or a comma-separated list of them) holds a password:
/// `user:password@` or a `password=` query parameter. A user name alone
/// (`postgres://root@host/db`) is not one, though [`redact_url`] hides it
/// too.
pub fn url_carries_password(url: &str) -> bool {
    url.split(',').any(|one| {
        let userinfo = match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => &one[scheme + 3..at],
            _ => "",
        };
        let in_userinfo = userinfo
            .split_once(':')
            .is_some_and(|(_, password)| !password.is_empty());
        let in_query = one.split_once('?').is_some_and(|(_, query)| {
            query.split('&').any(|kv| {
                kv.split_once('=')
                    .is_some_and(|(k, v)| k.eq_ignore_ascii_case("password") && !v.is_empty())
            })
        });
        in_userinfo || in_query
    })
}

/// Key slot of a user's ticket not-before time.
pub(crate) fn not_before_slot(realm: &str, user: &str) -> String {
    format!("\nticket-not-before\n{realm}\n{user}")
}

/// A stored not-before time.
pub(crate) fn parse_not_before(text: &str) -> StoreResult<Timestamp> {
    text.parse::<i64>()
        .map(Timestamp)
        .map_err(|_| StoreError::Corrupt(format!("ticket not-before of a user is {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::{redact_url, url_carries_password};

    #[test]
    fn a_user_name_alone_is_no_password() {
        assert!(!url_carries_password("postgres://root@127.0.0.1:5432/test"));
        assert!(!url_carries_password("redis://127.0.0.1:6379"));
        assert!(url_carries_password("redis://:secret@127.0.0.1:6379"));
        assert!(url_carries_password("redis://n1:1,redis://u:p@n2:2"));
        assert!(url_carries_password(
            "postgres://h/db?sslmode=require&password=x"
        ));
        assert!(!url_carries_password("postgres://u:@h/db"));
    }

    #[test]
    fn passwords_never_reach_what_is_shown() {
        assert_eq!(
            redact_url("redis://user:secret@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://:a@n1:1,redis://:b@n2:2"),
            "redis://***@n1:1,redis://***@n2:2"
        );
        assert_eq!(
            redact_url("postgres://h/db?sslmode=require&password=secret"),
            "postgres://h/db?sslmode=require&password=***"
        );
        assert!(!redact_url("postgres://u:p%40ss@h/db").contains("p%40ss"));
    }
}
