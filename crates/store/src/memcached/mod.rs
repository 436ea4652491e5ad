//! The memcached store, FreeIPA's choice: TCP or UNIX-socket servers, several
//! of them if wanted (keys spread over them by a stable hash).
//!
//! memcached has no transactions and no way to enumerate keys, so:
//! - every read-modify-write is a `gets` / `cas` loop on one key;
//! - revoke and replace first swap the record for a tombstone with `cas`, so
//!   exactly one of several racing callers wins;
//! - supersede works through the per-user generation counter (one small key
//!   per realm and user), checked on every validation;
//! - ending all of a user's sessions (password change, deleted account)
//!   moves the user's session epoch on (one small key per user, read in the
//!   same `gets` as the generation), so older sessions are refused without
//!   being found;
//! - listing a user's sessions, and revoking them all, are not offered:
//!   the store does not implement `UserSessions` (see docs/stores.md).
//!
//! A check is one round trip: the session, its user's generation and the
//! user's epoch in one `gets`. The user's keys come from a bounded table of
//! which user a session id belongs to ([`Hints`]); a session id missing from
//! it (another instance logged the user in, or it was pushed out) costs a
//! second round trip once. The client (`wire.rs`) is async: no call leaves
//! the runtime's worker threads.

mod wire;

use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions};
use crate::{Access, Store};
use crate::{SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use sessiond_core::limiter::{Backoff, Failures};
use sessiond_core::session::{
    classify, Classification, SessionData, SessionRecord, UserState, Validity,
};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wire::WireError;

const TIMEOUT: Duration = Duration::from_secs(2);
/// A revoked or moved session, for the few seconds until it is deleted.
const TOMBSTONE: &[u8] = b"-";
/// memcached reads an expiry above 30 days as a Unix time, not a duration.
const RELATIVE_EXPIRY_LIMIT: i64 = 30 * 24 * 3600;
/// Attempts of a `cas` loop before giving up as unavailable (only reached
/// under pathological contention on a single key).
const CAS_ATTEMPTS: usize = 64;

/// Connections per server, each shared by every request (`wire.rs`: many
/// commands in one write under load). Four keep both of memcached's
/// default worker threads busy without a connection per request.
const POOL_SIZE: usize = 4;

/// Session ids whose user this instance remembers, at most (~300 bytes each:
/// the names and the two key names).
const HINTS: usize = 65_536;

fn unavailable(e: WireError) -> StoreError {
    StoreError::Unavailable(format!("memcached: {e}"))
}

/// A `gets`/`cas` loop that lost [`CAS_ATTEMPTS`] races in a row.
fn contended() -> StoreError {
    StoreError::Unavailable(format!(
        "memcached: key kept changing over {CAS_ATTEMPTS} attempts"
    ))
}

/// Key of a name that may hold any character: its SHA-256 (memcached keys
/// are at most 250 bytes, without spaces or control characters).
fn hashed(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Which realm and user a session id belongs to, for the sessions this
/// instance issued or has checked. A hint only says which user keys to read
/// beside the session; the session read in the same `gets` confirms it (a
/// session id never changes user), so a wrong or missing hint costs a round
/// trip, never a wrong answer. Bounded: a hint pushed out is learnt again on
/// the next check.
type Hints = quick_cache::sync::Cache<TokenHash, Arc<Hint>>;

/// Whose a session is, and the names of that user's two keys (computed
/// once: each is a SHA-256).
struct Hint {
    realm: String,
    user: String,
    state_key: String,
    epoch_key: String,
}

struct Inner {
    client: wire::Client,
    prefix: String,
    opts: StoreOptions,
    hints: Hints,
}

pub struct MemcachedStore {
    inner: Arc<Inner>,
    description: String,
}

/// A value and its `cas` id.
type Versioned = (Vec<u8>, u64);

impl Inner {
    fn session_key(&self, id: &TokenHash) -> String {
        format!("{}:s:{}", self.prefix, id.to_hex())
    }

    fn user_key(&self, realm: &str, user: &str) -> String {
        format!("{}:u:{}", self.prefix, hashed(&[realm, user]))
    }

    /// Key of a user's session epoch (all realms).
    fn epoch_key(&self, user: &str) -> String {
        format!("{}:e:{}", self.prefix, hashed(&[user]))
    }

    async fn gets(&self, key: &str) -> StoreResult<Option<Versioned>> {
        self.client.get(key).await.map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete(key)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// memcached's `exptime` for a record ending at `end` (seen at `now`).
    fn exptime(now: Timestamp, end: Option<Timestamp>) -> u32 {
        let Some(end) = end else { return 0 };
        let ttl = (end.0 - now.0).max(1);
        if ttl <= RELATIVE_EXPIRY_LIMIT {
            return ttl as u32;
        }
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Past what 32 bits hold: never expire (0), which is what so long
        // a life means anyway.
        u32::try_from(wall.saturating_add(ttl)).unwrap_or(0)
    }

    async fn epoch(&self, user: &str) -> StoreResult<u64> {
        match self.gets(&self.epoch_key(user)).await? {
            Some((bytes, _)) => decode(&bytes),
            None => Ok(0),
        }
    }

    /// A user's state from the values of its two keys, as a `gets` found them.
    fn user_state(
        found: &mut std::collections::HashMap<String, Versioned>,
        state_key: &str,
        epoch_key: &str,
    ) -> StoreResult<UserState> {
        let mut state: UserState = match found.remove(state_key) {
            Some((bytes, _)) => decode(&bytes)?,
            None => UserState::default(),
        };
        if let Some((bytes, _)) = found.remove(epoch_key) {
            state.epoch = decode(&bytes)?;
        }
        Ok(state)
    }

    /// The user's supersede state in their realm and session epoch, in one
    /// `gets`.
    async fn user(&self, h: &Hint) -> StoreResult<UserState> {
        let mut found = self
            .client
            .gets(&[h.state_key.as_str(), h.epoch_key.as_str()])
            .await
            .map_err(unavailable)?;
        Self::user_state(&mut found, &h.state_key, &h.epoch_key)
    }

    /// Whose `record` is, and the names of that user's keys.
    fn hint(&self, record: &SessionRecord) -> Arc<Hint> {
        let (realm, user) = (&record.realm, &record.identity.user);
        Arc::new(Hint {
            state_key: self.user_key(realm, user),
            epoch_key: self.epoch_key(user),
            realm: realm.clone(),
            user: user.clone(),
        })
    }

    /// Reads a session and its user's state: one `gets` when the session's
    /// user is known here ([`Hints`]), two otherwise. `None` for missing or
    /// tombstoned.
    async fn session(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(SessionRecord, UserState, u64)>> {
        let key = self.session_key(id);
        let hint = self.hints.get(id);
        let mut keys = vec![key.as_str()];
        if let Some(h) = &hint {
            keys.extend([h.state_key.as_str(), h.epoch_key.as_str()]);
        }
        let mut found = self.client.gets(&keys).await.map_err(unavailable)?;
        let Some((bytes, cas)) = found.remove(&key) else {
            return Ok(None);
        };
        if bytes == TOMBSTONE {
            return Ok(None);
        }
        let record: SessionRecord = decode(&bytes)?;
        let user = match hint {
            Some(h) if h.realm == record.realm && h.user == record.identity.user => {
                Self::user_state(&mut found, &h.state_key, &h.epoch_key)?
            }
            _ => {
                let h = self.hint(&record);
                let user = self.user(&h).await?;
                self.hints.insert(*id, h);
                user
            }
        };
        Ok(Some((record, user, cas)))
    }

    /// Classifies a session; deletes it when gone.
    async fn lookup(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionRecord, Classification, u64)>> {
        Ok(match self.find(id, realm, now).await? {
            (crate::Found::Live(record, class), cas) => Some((record, class, cas)),
            _ => None,
        })
    }

    /// [`Self::lookup`], handing back a record that expired.
    async fn find(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<(crate::Found, u64)> {
        let Some((record, user, cas)) = self.session(id).await? else {
            return Ok((crate::Found::Missing, 0));
        };
        match classify(&record, &user, realm, now, self.opts.superseded_retention) {
            Classification::OtherRealm => Ok((crate::Found::Missing, 0)),
            Classification::Gone => {
                self.delete(&self.session_key(id)).await?;
                self.hints.remove(id);
                Ok((crate::Found::gone(record, &user, now), 0))
            }
            c => Ok((crate::Found::Live(record, c), cas)),
        }
    }

    /// Swaps the record (still at version `cas`) for a tombstone: true if this
    /// caller won the race to remove it.
    async fn claim(&self, id: &TokenHash, cas: u64) -> StoreResult<bool> {
        self.client
            .cas(&self.session_key(id), TOMBSTONE, 30, cas)
            .await
            .map_err(unavailable)
    }

    async fn put(&self, id: &TokenHash, record: &SessionRecord, now: Timestamp) -> StoreResult<()> {
        self.client
            .set(
                &self.session_key(id),
                &encode(record)?,
                Self::exptime(now, record.ends_at()),
            )
            .await
            .map_err(unavailable)?;
        self.hints.insert(*id, self.hint(record));
        Ok(())
    }

    /// Moves a session's last access forward to `now` (never back), in a
    /// `gets`/`cas` loop that ends once the stored access is at least `now`:
    /// a racing touch from an earlier moment must not leave the idle end
    /// behind. (Touches are rare — at most every `touch_interval` — so the
    /// fresh read costs little.)
    async fn touch(&self, id: &TokenHash, now: Timestamp) -> StoreResult<()> {
        let key = self.session_key(id);
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, cas)) = self.gets(&key).await? else {
                return Ok(());
            };
            if bytes == TOMBSTONE {
                return Ok(());
            }
            let mut record: SessionRecord = decode(&bytes)?;
            if record.last_access >= now {
                return Ok(());
            }
            record.last_access = now;
            let written = self
                .client
                .cas(
                    &key,
                    &encode(&record)?,
                    Self::exptime(now, record.ends_at()),
                    cas,
                )
                .await
                .map_err(unavailable)?;
            if written {
                return Ok(());
            }
        }
        Err(contended())
    }

    /// Read-modify-write of one key through `gets`/`cas`, starting from
    /// `initial` when the key is missing. `change` returns the new value, or
    /// `None` to leave it as it is.
    async fn update<T>(
        &self,
        key: &str,
        initial: &[u8],
        change: impl FnMut(&[u8]) -> StoreResult<(Option<Vec<u8>>, T)>,
    ) -> StoreResult<T> {
        self.update_expiring(key, initial, 0, change).await
    }

    /// [`Inner::update`] whose key expires `exptime` after each write.
    async fn update_expiring<T>(
        &self,
        key: &str,
        initial: &[u8],
        exptime: u32,
        mut change: impl FnMut(&[u8]) -> StoreResult<(Option<Vec<u8>>, T)>,
    ) -> StoreResult<T> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, cas)) = self.gets(key).await? else {
                // Racing adds all store the same initial value; then retry.
                self.client
                    .add(key, initial, exptime)
                    .await
                    .map_err(unavailable)?;
                continue;
            };
            let (new, result) = change(&bytes)?;
            let Some(new) = new else { return Ok(result) };
            if self
                .client
                .cas(key, &new, exptime, cas)
                .await
                .map_err(unavailable)?
            {
                return Ok(result);
            }
        }
        Err(contended())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("memcached value: {e}")))
}

impl MemcachedStore {
    /// Connects to one or more servers (`host:port`, `memcache://host:port`,
    /// `unix:///path/to/socket`, comma-separated, each optionally with
    /// `?timeout=SECONDS`); every key starts with `prefix:`.
    pub async fn connect(
        addresses: &str,
        prefix: &str,
        opts: StoreOptions,
    ) -> StoreResult<MemcachedStore> {
        if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_graphic()) {
            return Err(StoreError::Open(format!(
                "memcached key prefix {prefix:?}: 1 to 64 printable characters, no spaces"
            )));
        }
        let open = |e: WireError| StoreError::Open(format!("memcached: {e}"));
        let addresses: Vec<&str> = addresses
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        if addresses.is_empty() {
            return Err(StoreError::Open("memcached: no server address".into()));
        }
        let servers = addresses
            .iter()
            .map(|a| wire::Server::parse(a, TIMEOUT))
            .collect::<Result<Vec<_>, _>>()
            .map_err(open)?;
        let description = format!(
            "memcached {}",
            addresses
                .iter()
                .map(|u| crate::redact_url(u.split('?').next().unwrap_or(u)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let client = wire::Client::new(servers, POOL_SIZE);
        client.version().await.map_err(open)?;
        Ok(MemcachedStore {
            inner: Arc::new(Inner {
                client,
                prefix: prefix.to_owned(),
                opts,
                hints: Hints::new(HINTS),
            }),
            description,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Commands sent to memcached so far (a check's round trips, in tests).
    pub fn commands_sent(&self) -> u64 {
        self.inner.client.commands_sent()
    }
}

/// Group membership, one JSON map per group: member (`realm\0user`) → role.
type Roles = BTreeMap<String, GroupRole>;

fn member(realm: &str, user: &str) -> String {
    format!("{realm}\0{user}")
}

fn failures_key(prefix: &str, key: &str) -> String {
    format!("{prefix}:f:{}", hashed(&[key]))
}

#[async_trait]
impl crate::FailureCounters for MemcachedStore {
    async fn failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        let key = key.to_owned();
        {
            let i = &*self.inner;
            i.gets(&failures_key(&i.prefix, &key))
                .await?
                .map(|(bytes, _)| decode::<(u32, i64)>(&bytes))
                .transpose()
                .map(|r| {
                    r.map(|(count, last)| Failures {
                        count,
                        last: Timestamp(last),
                    })
                })
        }
    }

    async fn record_failure(
        &self,
        key: &str,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Failures> {
        let (key, backoff) = (key.to_owned(), *backoff);
        {
            let i = &*self.inner;
            // Past 30 days memcached reads an expiry as a Unix time.
            let exptime = Inner::exptime(now, Some(now.plus(backoff.window)));
            // Starts at "no failures yet, long ago": the first change counts 1.
            let initial = encode(&(0u32, i64::MIN / 2))?;
            i.update_expiring(&failures_key(&i.prefix, &key), &initial, exptime, |bytes| {
                let (count, last): (u32, i64) = decode(bytes)?;
                let before = (count > 0).then_some(Failures {
                    count,
                    last: Timestamp(last),
                });
                let next = backoff.after_failure(before, now);
                Ok((Some(encode(&(next.count, next.last.0))?), next))
            })
            .await
        }
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        {
            let i = &*self.inner;
            i.delete(&failures_key(&i.prefix, &key)).await
        }
    }
}

impl MemcachedStore {
    /// This store with the abilities it offers: it cannot enumerate a user's sessions (memcached finds no keys) and shares failed-login counts with every instance.
    pub fn into_store(self: std::sync::Arc<Self>) -> Store {
        let s = self;
        Store::new(s.clone()).with_failures(s)
    }
}

#[async_trait]
impl SessionStore for MemcachedStore {
    fn kind(&self) -> &'static str {
        "memcached"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner
            .client
            .version()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        {
            let i = &*self.inner;
            let key = i.user_key(&new.realm, &new.identity.user);
            let supersede = new.policy.supersede;
            let generation = i
                .update(&key, &encode(&UserState::default())?, |bytes| {
                    let mut state: UserState = decode(bytes)?;
                    let generation = state.next_login(supersede, now);
                    Ok((supersede.then(|| encode(&state)).transpose()?, generation))
                })
                .await?;
            // Read before the session is written: an "end all" after this
            // read refuses the session; one before it ended the older
            // sessions only (as deleting stores do for a login stored
            // after their delete).
            let epoch = i.epoch(&new.identity.user).await?;
            let mut record = SessionRecord::issue(new, generation, now);
            record.user_epoch = epoch;
            i.put(&id, &record, now).await?;
            Ok(record)
        }
    }

    // With Access::Touch, last access moves on when due.
    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        let realm = realm.to_owned();
        {
            let i = &*self.inner;
            Ok(match i.find(&id, &realm, now).await?.0 {
                crate::Found::Missing => Validity::Unknown,
                crate::Found::Expired(record) => Validity::Expired(record),
                crate::Found::Live(record, Classification::Superseded) => {
                    Validity::Superseded(record)
                }
                crate::Found::Live(mut record, _) => {
                    if access == Access::Touch && record.needs_touch(now, i.opts.touch_interval) {
                        record.last_access = now;
                        i.touch(&id, now).await?;
                    }
                    Validity::Current(record)
                }
            })
        }
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        {
            let i = &*self.inner;
            for _ in 0..CAS_ATTEMPTS {
                let Some((record, _, cas)) = i.lookup(&id, &realm, now).await? else {
                    return Ok(None);
                };
                if i.claim(&id, cas).await? {
                    i.client
                        .delete(&i.session_key(&id))
                        .await
                        .map_err(unavailable)?;
                    return Ok(Some(record));
                }
            }
            Err(contended())
        }
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        {
            let i = &*self.inner;
            for _ in 0..CAS_ATTEMPTS {
                let Some((mut record, class, cas)) = i.lookup(&old, &realm, now).await? else {
                    return Ok(None);
                };
                if class != Classification::Current {
                    return Ok(None);
                }
                if i.claim(&old, cas).await? {
                    record.last_access = now;
                    i.put(&new, &record, now).await?;
                    i.client
                        .delete(&i.session_key(&old))
                        .await
                        .map_err(unavailable)?;
                    return Ok(Some(record));
                }
            }
            Err(contended())
        }
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        let realm = realm.to_owned();
        {
            let i = &*self.inner;
            Ok(match i.lookup(&id, &realm, now).await? {
                Some((record, Classification::Current, _)) => {
                    Some((record.data, record.data_version))
                }
                _ => None,
            })
        }
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        let realm = realm.to_owned();
        {
            let i = &*self.inner;
            for _ in 0..CAS_ATTEMPTS {
                let Some((mut record, Classification::Current, cas)) =
                    i.lookup(&id, &realm, now).await?
                else {
                    return Ok(DataWrite::NotFound);
                };
                if record.data_version != expected_version {
                    return Ok(DataWrite::Conflict {
                        current_version: record.data_version,
                    });
                }
                record.data = data.clone();
                record.data_version += 1;
                record.last_access = now;
                if i.client
                    .cas(
                        &i.session_key(&id),
                        encode(&record)?.as_slice(),
                        Inner::exptime(now, record.ends_at()),
                        cas,
                    )
                    .await
                    .map_err(unavailable)?
                {
                    return Ok(DataWrite::Written {
                        version: record.data_version,
                    });
                }
                // Lost to a touch or another write: look again.
            }
            Err(contended())
        }
    }

    /// memcached expires records itself.
    async fn purge(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }

    async fn end_user_sessions(&self, user: &str, _now: Timestamp) -> StoreResult<Option<u64>> {
        let user = user.to_owned();
        {
            let i = &*self.inner;
            i.update(&i.epoch_key(&user), b"0", |bytes| {
                let epoch: u64 = decode(bytes)?;
                Ok((Some(encode(&(epoch + 1))?), ()))
            })
            .await
        }?;
        Ok(None)
    }
}

#[async_trait]
impl crate::TicketMarks for MemcachedStore {
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp> {
        let slot = crate::not_before_slot(realm, user);
        {
            let i = &*self.inner;
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            i.update(&key, at.0.to_string().as_bytes(), |bytes| {
                let current = crate::parse_not_before(&String::from_utf8_lossy(bytes))?;
                Ok(if at > current {
                    (Some(at.0.to_string().into_bytes()), at)
                } else {
                    (None, current)
                })
            })
            .await
        }
    }
}

#[async_trait]
impl crate::KeySlots for MemcachedStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        let slot = slot.to_owned();
        {
            let i = &*self.inner;
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            Ok(i.gets(&key)
                .await?
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned()))
        }
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        let (slot, value) = (slot.to_owned(), key.to_owned());
        {
            let i = &*self.inner;
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            i.client
                .set(&key, value.as_bytes(), 0)
                .await
                .map_err(unavailable)
        }
    }
}

#[async_trait]
impl crate::Groups for MemcachedStore {
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool> {
        let (group, realm, user, value) = (
            group.to_owned(),
            realm.to_owned(),
            user.to_owned(),
            key.to_owned(),
        );
        {
            let i = &*self.inner;
            let roles_key = format!("{}:gr:{}", i.prefix, hashed(&[&group]));
            // The roles map doubles as the group's existence marker: the
            // first `cas` from "absent" creates the group, once.
            let created = i
                .update(&roles_key, b"null", |bytes| {
                    let existing: Option<Roles> = decode(bytes)?;
                    if existing.is_some() {
                        return Ok((None, false));
                    }
                    let roles = Roles::from([(member(&realm, &user), GroupRole::Admin)]);
                    Ok((Some(encode(&Some(roles))?), true))
                })
                .await?;
            if created {
                let key = format!("{}:gk:{}", i.prefix, hashed(&[&group]));
                i.client
                    .set(&key, value.as_bytes(), 0)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(created)
        }
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        let (group, who) = (group.to_owned(), member(realm, user));
        {
            let i = &*self.inner;
            let roles_key = format!("{}:gr:{}", i.prefix, hashed(&[&group]));
            let Some((bytes, _)) = i.gets(&roles_key).await? else {
                return Ok(None);
            };
            let roles: Option<Roles> = decode(&bytes)?;
            Ok(roles.and_then(|r| r.get(&who).copied()))
        }
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        let group = group.to_owned();
        {
            let i = &*self.inner;
            let key = format!("{}:gk:{}", i.prefix, hashed(&[&group]));
            Ok(i.gets(&key)
                .await?
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned()))
        }
    }

    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool> {
        let (group, realm, caller) = (group.to_owned(), realm.to_owned(), caller.to_owned());
        let changes = changes.to_vec();
        {
            let i = &*self.inner;
            let roles_key = format!("{}:gr:{}", i.prefix, hashed(&[&group]));
            i.update(&roles_key, b"null", |bytes| {
                let Some(mut roles) = decode::<Option<Roles>>(bytes)? else {
                    return Ok((None, false));
                };
                if roles.get(&member(&realm, &caller)) != Some(&GroupRole::Admin) {
                    return Ok((None, false));
                }
                for change in &changes {
                    let who = member(&realm, &change.user);
                    match change.role {
                        Some(role) => roles.insert(who, role),
                        None => roles.remove(&who),
                    };
                }
                Ok((Some(encode(&Some(roles))?), true))
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_expiries_become_unix_times() {
        let now = Timestamp(1_000);
        assert_eq!(Inner::exptime(now, None), 0);
        assert_eq!(Inner::exptime(now, Some(Timestamp(1_060))), 60);
        let far = Inner::exptime(now, Some(Timestamp(1_000 + 40 * 24 * 3600)));
        assert!(far as i64 > RELATIVE_EXPIRY_LIMIT, "absolute: {far}");
    }
}
