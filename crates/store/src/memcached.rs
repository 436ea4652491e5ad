//! The memcached store, FreeIPA's choice: TCP or UNIX-socket servers, several
//! of them if wanted (the client spreads keys over them by hash).
//!
//! memcached has no transactions and no way to enumerate keys, so:
//! - every read-modify-write is a `gets` / `cas` loop on one key;
//! - revoke and replace first swap the record for a tombstone with `cas`, so
//!   exactly one of several racing callers wins;
//! - supersede works through the per-user generation counter (one small key
//!   per realm and user), checked on every validation;
//! - ending all of a user's sessions (password change, deleted account)
//!   moves the user's session epoch on (one small key per user, read in the
//!   same `get` as the generation), so older sessions are refused without
//!   being found;
//! - listing a user's sessions, and revoking them all, are not offered:
//!   the store does not implement `UserSessions` (see docs/stores.md).
//!
//! The client (`memcache` crate) is blocking; calls run on Tokio's blocking
//! pool, over a pool of connections.

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

const TIMEOUT: Duration = Duration::from_secs(2);
/// A revoked or moved session, for the few seconds until it is deleted.
const TOMBSTONE: &[u8] = b"-";
/// memcached reads an expiry above 30 days as a Unix time, not a duration.
const RELATIVE_EXPIRY_LIMIT: i64 = 30 * 24 * 3600;
/// Attempts of a `cas` loop before giving up as unavailable (only reached
/// under pathological contention on a single key).
const CAS_ATTEMPTS: usize = 64;

/// Connections at most per server: one per request in flight on the
/// blocking pool, which Tokio lets grow far beyond this, so requests beyond
/// it wait (up to `TIMEOUT`) for a connection.
const POOL_SIZE: u32 = 64;

/// The client, over connection pools of our own configuration: the crate's
/// builder has the pool run `version` on every checkout (a whole extra round
/// trip per call, halving throughput) and applies read timeouts to one
/// connection only. Here every connection gets the timeout from its URL
/// (`timeout=`), none is tested on checkout, and since the crate cannot
/// report a broken connection to the pool, `Inner::failed` replaces the
/// whole client after a connection error instead.
fn build_client(urls: &[String]) -> Result<memcache::Client, memcache::MemcacheError> {
    let mut pools = Vec::new();
    for url in urls {
        let url = memcache::Url::parse(url)
            .map_err(|e| memcache::MemcacheError::BadURL(e.to_string()))?;
        pools.push(
            r2d2::Pool::builder()
                .max_size(POOL_SIZE)
                .min_idle(Some(0))
                .test_on_check_out(false)
                .connection_timeout(TIMEOUT)
                .build_unchecked(memcache::ConnectionManager::new(url)),
        );
    }
    memcache::Client::with_pools(pools)
}

fn unavailable(e: &memcache::MemcacheError) -> StoreError {
    StoreError::Unavailable(format!("memcached: {e}"))
}

/// A `gets`/`cas` loop that lost [`CAS_ATTEMPTS`] races in a row.
fn contended() -> StoreError {
    StoreError::Unavailable(format!(
        "memcached: key kept changing over {CAS_ATTEMPTS} attempts"
    ))
}

/// Turns `unix:///path` into the client's `memcache:///path`, and a bare
/// `host:port` into `memcache://host:port`; selects the text protocol unless
/// the address names one (the client defaults to the binary protocol, which
/// memcached has deprecated), and a 2-second socket timeout unless given.
fn client_url(address: &str) -> String {
    let url = if let Some(path) = address.strip_prefix("unix://") {
        format!("memcache://{path}")
    } else if address.contains("://") {
        address.to_owned()
    } else {
        format!("memcache://{address}")
    };
    let mut url = url;
    for (key, default) in [("protocol", "ascii"), ("timeout", "2")] {
        if !url.contains(&format!("{key}=")) {
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}{key}={default}");
        }
    }
    url
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

struct Inner {
    /// Replaced by a fresh one after a connection error: the client's pool
    /// cannot tell a broken connection from a good one (see `build_client`).
    client: parking_lot::RwLock<Arc<memcache::Client>>,
    urls: Vec<String>,
    prefix: String,
    opts: StoreOptions,
}

pub struct MemcachedStore {
    inner: Arc<Inner>,
    description: String,
}

/// A value and its `cas` id.
type Versioned = (Vec<u8>, u64);

impl Inner {
    fn client(&self) -> Arc<memcache::Client> {
        self.client.read().clone()
    }

    /// Reports a failed call; after anything but a command's own answer
    /// (a connection or protocol error) the pooled connections are dropped
    /// and new ones made on the next call.
    fn failed(&self, e: memcache::MemcacheError) -> StoreError {
        if !matches!(e, memcache::MemcacheError::CommandError(_)) {
            if let Ok(fresh) = build_client(&self.urls) {
                *self.client.write() = Arc::new(fresh);
            }
        }
        unavailable(&e)
    }

    fn session_key(&self, id: &TokenHash) -> String {
        format!("{}:s:{}", self.prefix, id.to_hex())
    }

    fn user_key(&self, realm: &str, user: &str) -> String {
        format!("{}:u:{}", self.prefix, hashed(&[realm, user]))
    }

    fn gets(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let mut found: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> =
            self.client().gets(&[key]).map_err(|e| self.failed(e))?;
        Ok(found
            .remove(key)
            .map(|(value, _, cas)| (value, cas.unwrap_or(0))))
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

    /// Key of a user's session epoch (all realms).
    fn epoch_key(&self, user: &str) -> String {
        format!("{}:e:{}", self.prefix, hashed(&[user]))
    }

    fn epoch(&self, user: &str) -> StoreResult<u64> {
        match self.gets(&self.epoch_key(user))? {
            Some((bytes, _)) => decode(&bytes),
            None => Ok(0),
        }
    }

    /// The user's supersede state in `realm` and session epoch, in one `get`.
    fn user(&self, realm: &str, user: &str) -> StoreResult<UserState> {
        let (state_key, epoch_key) = (self.user_key(realm, user), self.epoch_key(user));
        let mut found: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> = self
            .client()
            .gets(&[state_key.as_str(), epoch_key.as_str()])
            .map_err(|e| self.failed(e))?;
        let mut state: UserState = match found.remove(&state_key) {
            Some((bytes, ..)) => decode(&bytes)?,
            None => UserState::default(),
        };
        if let Some((bytes, ..)) = found.remove(&epoch_key) {
            state.epoch = decode(&bytes)?;
        }
        Ok(state)
    }

    /// Reads a session and its user's state. `None` for missing or tombstoned.
    fn session(&self, id: &TokenHash) -> StoreResult<Option<(SessionRecord, UserState, u64)>> {
        let Some((bytes, cas)) = self.gets(&self.session_key(id))? else {
            return Ok(None);
        };
        if bytes == TOMBSTONE {
            return Ok(None);
        }
        let record: SessionRecord = decode(&bytes)?;
        let user = self.user(&record.realm, &record.identity.user)?;
        Ok(Some((record, user, cas)))
    }

    /// Classifies a session; deletes it when gone.
    fn lookup(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionRecord, Classification, u64)>> {
        Ok(match self.find(id, realm, now)? {
            (crate::Found::Live(record, class), cas) => Some((record, class, cas)),
            _ => None,
        })
    }

    /// [`Self::lookup`], handing back a record that expired.
    fn find(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<(crate::Found, u64)> {
        let Some((record, user, cas)) = self.session(id)? else {
            return Ok((crate::Found::Missing, 0));
        };
        match classify(&record, &user, realm, now, self.opts.superseded_retention) {
            Classification::OtherRealm => Ok((crate::Found::Missing, 0)),
            Classification::Gone => {
                self.client()
                    .delete(&self.session_key(id))
                    .map_err(|e| self.failed(e))?;
                Ok((crate::Found::gone(record, &user, now), 0))
            }
            c => Ok((crate::Found::Live(record, c), cas)),
        }
    }

    /// Swaps the record (still at version `cas`) for a tombstone: true if this
    /// caller won the race to remove it.
    fn claim(&self, id: &TokenHash, cas: u64) -> StoreResult<bool> {
        self.client()
            .cas(&self.session_key(id), TOMBSTONE, 30, cas)
            .map_err(|e| self.failed(e))
    }

    fn put(&self, id: &TokenHash, record: &SessionRecord, now: Timestamp) -> StoreResult<()> {
        self.client()
            .set(
                &self.session_key(id),
                encode(record)?.as_slice(),
                Self::exptime(now, record.ends_at()),
            )
            .map_err(|e| self.failed(e))
    }

    /// Moves a session's last access forward to `now` (never back), in a
    /// `gets`/`cas` loop that ends once the stored access is at least `now`:
    /// a racing touch from an earlier moment must not leave the idle end
    /// behind. (Touches are rare — at most every `touch_interval` — so the
    /// fresh read costs little.)
    fn touch(&self, id: &TokenHash, now: Timestamp) -> StoreResult<()> {
        let key = self.session_key(id);
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, cas)) = self.gets(&key)? else {
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
                .client()
                .cas(
                    &key,
                    encode(&record)?.as_slice(),
                    Self::exptime(now, record.ends_at()),
                    cas,
                )
                .map_err(|e| self.failed(e))?;
            if written {
                return Ok(());
            }
        }
        Err(contended())
    }

    /// Read-modify-write of one key through `gets`/`cas`, starting from
    /// `initial` when the key is missing. `change` returns the new value, or
    /// `None` to leave it as it is.
    fn update<T>(
        &self,
        key: &str,
        initial: &[u8],
        change: impl FnMut(&[u8]) -> StoreResult<(Option<Vec<u8>>, T)>,
    ) -> StoreResult<T> {
        self.update_expiring(key, initial, 0, change)
    }

    /// [`Inner::update`] whose key expires `exptime` after each write.
    fn update_expiring<T>(
        &self,
        key: &str,
        initial: &[u8],
        exptime: u32,
        mut change: impl FnMut(&[u8]) -> StoreResult<(Option<Vec<u8>>, T)>,
    ) -> StoreResult<T> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, cas)) = self.gets(key)? else {
                // Racing adds all store the same initial value; then retry.
                match self.client().add(key, initial, exptime) {
                    Ok(())
                    | Err(memcache::MemcacheError::CommandError(
                        memcache::CommandError::KeyExists,
                    )) => {}
                    Err(e) => return Err(self.failed(e)),
                }
                continue;
            };
            let (new, result) = change(&bytes)?;
            let Some(new) = new else { return Ok(result) };
            if self
                .client()
                .cas(key, new.as_slice(), exptime, cas)
                .map_err(|e| self.failed(e))?
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
    /// Connects to one or more servers (`memcache://host:port`,
    /// `unix:///path/to/socket`, comma-separated); every key starts with `prefix:`.
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
        let urls: Vec<String> = addresses
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(client_url)
            .collect();
        if urls.is_empty() {
            return Err(StoreError::Open("memcached: no server address".into()));
        }
        let description = format!(
            "memcached {}",
            urls.iter()
                .map(|u| crate::redact_url(u.split('?').next().unwrap_or(u)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let prefix = prefix.to_owned();
        let inner = tokio::task::spawn_blocking(move || {
            let open = |e: memcache::MemcacheError| StoreError::Open(format!("memcached: {e}"));
            let client = build_client(&urls).map_err(open)?;
            client.version().map_err(open)?;
            Ok::<_, StoreError>(Inner {
                client: parking_lot::RwLock::new(Arc::new(client)),
                urls,
                prefix,
                opts,
            })
        })
        .await
        .map_err(|e| StoreError::Open(format!("memcached: {e}")))??;
        Ok(MemcachedStore {
            inner: Arc::new(inner),
            description,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|e| StoreError::Unavailable(format!("memcached task failed: {e}")))?
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
        self.run(move |i| {
            i.gets(&failures_key(&i.prefix, &key))?
                .map(|(bytes, _)| decode::<(u32, i64)>(&bytes))
                .transpose()
                .map(|r| {
                    r.map(|(count, last)| Failures {
                        count,
                        last: Timestamp(last),
                    })
                })
        })
        .await
    }

    async fn record_failure(
        &self,
        key: &str,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Failures> {
        let (key, backoff) = (key.to_owned(), *backoff);
        self.run(move |i| {
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
        })
        .await
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.run(move |i| {
            i.client()
                .delete(&failures_key(&i.prefix, &key))
                .map(|_| ())
                .map_err(|e| i.failed(e))
        })
        .await
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
        self.run(|i| i.client().version().map(|_| ()).map_err(|e| i.failed(e)))
            .await
    }

    async fn create(
        &self,
        id: TokenHash,
        new: NewSession,
        now: Timestamp,
    ) -> StoreResult<SessionRecord> {
        self.run(move |i| {
            let key = i.user_key(&new.realm, &new.identity.user);
            let supersede = new.policy.supersede;
            let generation = i.update(&key, &encode(&UserState::default())?, |bytes| {
                let mut state: UserState = decode(bytes)?;
                let generation = state.next_login(supersede, now);
                Ok((supersede.then(|| encode(&state)).transpose()?, generation))
            })?;
            // Read before the session is written: an "end all" after this
            // read refuses the session; one before it ended the older
            // sessions only (as deleting stores do for a login stored
            // after their delete).
            let epoch = i.epoch(&new.identity.user)?;
            let mut record = SessionRecord::issue(new, generation, now);
            record.user_epoch = epoch;
            i.put(&id, &record, now)?;
            Ok(record)
        })
        .await
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
        self.run(move |i| {
            Ok(match i.find(&id, &realm, now)?.0 {
                crate::Found::Missing => Validity::Unknown,
                crate::Found::Expired(record) => Validity::Expired(record),
                crate::Found::Live(record, Classification::Superseded) => {
                    Validity::Superseded(record)
                }
                crate::Found::Live(mut record, _) => {
                    if access == Access::Touch && record.needs_touch(now, i.opts.touch_interval) {
                        record.last_access = now;
                        i.touch(&id, now)?;
                    }
                    Validity::Current(record)
                }
            })
        })
        .await
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        self.run(move |i| {
            for _ in 0..CAS_ATTEMPTS {
                let Some((record, _, cas)) = i.lookup(&id, &realm, now)? else {
                    return Ok(None);
                };
                if i.claim(&id, cas)? {
                    i.client()
                        .delete(&i.session_key(&id))
                        .map_err(|e| i.failed(e))?;
                    return Ok(Some(record));
                }
            }
            Err(contended())
        })
        .await
    }

    async fn replace(
        &self,
        old: TokenHash,
        new: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let realm = realm.to_owned();
        self.run(move |i| {
            for _ in 0..CAS_ATTEMPTS {
                let Some((mut record, class, cas)) = i.lookup(&old, &realm, now)? else {
                    return Ok(None);
                };
                if class != Classification::Current {
                    return Ok(None);
                }
                if i.claim(&old, cas)? {
                    record.last_access = now;
                    i.put(&new, &record, now)?;
                    i.client()
                        .delete(&i.session_key(&old))
                        .map_err(|e| i.failed(e))?;
                    return Ok(Some(record));
                }
            }
            Err(contended())
        })
        .await
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        let realm = realm.to_owned();
        self.run(move |i| {
            Ok(match i.lookup(&id, &realm, now)? {
                Some((record, Classification::Current, _)) => {
                    Some((record.data, record.data_version))
                }
                _ => None,
            })
        })
        .await
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
        self.run(move |i| {
            for _ in 0..CAS_ATTEMPTS {
                let Some((mut record, Classification::Current, cas)) =
                    i.lookup(&id, &realm, now)?
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
                if i.client()
                    .cas(
                        &i.session_key(&id),
                        encode(&record)?.as_slice(),
                        Inner::exptime(now, record.ends_at()),
                        cas,
                    )
                    .map_err(|e| i.failed(e))?
                {
                    return Ok(DataWrite::Written {
                        version: record.data_version,
                    });
                }
                // Lost to a touch or another write: look again.
            }
            Err(contended())
        })
        .await
    }

    /// memcached expires records itself.
    async fn purge(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }

    async fn end_user_sessions(&self, user: &str, _now: Timestamp) -> StoreResult<Option<u64>> {
        let user = user.to_owned();
        self.run(move |i| {
            i.update(&i.epoch_key(&user), b"0", |bytes| {
                let epoch: u64 = decode(bytes)?;
                Ok((Some(encode(&(epoch + 1))?), ()))
            })
        })
        .await?;
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
        self.run(move |i| {
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            i.update(&key, at.0.to_string().as_bytes(), |bytes| {
                let current = crate::parse_not_before(&String::from_utf8_lossy(bytes))?;
                Ok(if at > current {
                    (Some(at.0.to_string().into_bytes()), at)
                } else {
                    (None, current)
                })
            })
        })
        .await
    }
}

#[async_trait]
impl crate::KeySlots for MemcachedStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        let slot = slot.to_owned();
        self.run(move |i| {
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            Ok(i.gets(&key)?
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned()))
        })
        .await
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        let (slot, value) = (slot.to_owned(), key.to_owned());
        self.run(move |i| {
            let key = format!("{}:k:{}", i.prefix, hashed(&[&slot]));
            i.client()
                .set(&key, value.as_str(), 0)
                .map_err(|e| i.failed(e))
        })
        .await
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
        self.run(move |i| {
            let roles_key = format!("{}:gr:{}", i.prefix, hashed(&[&group]));
            // The roles map doubles as the group's existence marker: the
            // first `cas` from "absent" creates the group, once.
            let created = i.update(&roles_key, b"null", |bytes| {
                let existing: Option<Roles> = decode(bytes)?;
                if existing.is_some() {
                    return Ok((None, false));
                }
                let roles = Roles::from([(member(&realm, &user), GroupRole::Admin)]);
                Ok((Some(encode(&Some(roles))?), true))
            })?;
            if created {
                let key = format!("{}:gk:{}", i.prefix, hashed(&[&group]));
                i.client()
                    .set(&key, value.as_str(), 0)
                    .map_err(|e| i.failed(e))?;
            }
            Ok(created)
        })
        .await
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        let (group, who) = (group.to_owned(), member(realm, user));
        self.run(move |i| {
            let roles_key = format!("{}:gr:{}", i.prefix, hashed(&[&group]));
            let Some((bytes, _)) = i.gets(&roles_key)? else {
                return Ok(None);
            };
            let roles: Option<Roles> = decode(&bytes)?;
            Ok(roles.and_then(|r| r.get(&who).copied()))
        })
        .await
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        let group = group.to_owned();
        self.run(move |i| {
            let key = format!("{}:gk:{}", i.prefix, hashed(&[&group]));
            Ok(i.gets(&key)?
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned()))
        })
        .await
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
        self.run(move |i| {
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
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_client_urls() {
        assert_eq!(
            client_url("unix:///run/mc.sock"),
            "memcache:///run/mc.sock?protocol=ascii&timeout=2"
        );
        assert_eq!(
            client_url("127.0.0.1:11211"),
            "memcache://127.0.0.1:11211?protocol=ascii&timeout=2"
        );
        assert_eq!(
            client_url("memcache://h:1?tcp_nodelay=true"),
            "memcache://h:1?tcp_nodelay=true&protocol=ascii&timeout=2"
        );
        assert_eq!(
            client_url("memcache://h:1?protocol=binary&timeout=5"),
            "memcache://h:1?protocol=binary&timeout=5"
        );
    }

    #[test]
    fn long_expiries_become_unix_times() {
        let now = Timestamp(1_000);
        assert_eq!(Inner::exptime(now, None), 0);
        assert_eq!(Inner::exptime(now, Some(Timestamp(1_060))), 60);
        let far = Inner::exptime(now, Some(Timestamp(1_000 + 40 * 24 * 3600)));
        assert!(far as i64 > RELATIVE_EXPIRY_LIMIT, "absolute: {far}");
    }
}
