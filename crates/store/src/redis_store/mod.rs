//! The Redis store: standalone (`redis://`, `rediss://`), Redis Cluster (a
//! list of node URLs) or a Sentinel-managed primary, shared by any number of
//! sessiond instances.
//!
//! Each session is one hash keyed by its token's SHA-256; records expire
//! through Redis TTLs set from the session's own end. A user's supersede
//! generation and session index are real Redis structures in the user's hash
//! slot. Validation is one round trip: a newer login marks the user's older
//! sessions as superseded (see `scripts.rs`), so checking a token needs only
//! its own hash. Requires Redis 7.0 or newer (`EXPIRE … LT`).

mod keys;
mod scripts;
mod sentinel;
mod tracking;

use crate::types::{DataWrite, GroupChange, GroupRole, StoreOptions, UserSession};
use crate::{Access, Store, UserSessions};
use crate::{SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use keys::Keys;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};
use sessiond_core::limiter::{Backoff, Failures};
use sessiond_core::session::{
    classify, Classification, SessionData, SessionRecord, UserState, Validity,
};
use sessiond_core::{NewSession, Timestamp, TokenHash};
use std::collections::HashMap;
use std::time::Duration;

/// How long one command may take before the store reports itself
/// unavailable (and validation answers 503) rather than keep a request waiting.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis store connects.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// One server (or a proxy in front of one).
    Standalone(String),
    /// Seed nodes of a Redis Cluster; the client discovers the rest.
    Cluster(Vec<String>),
    /// The primary that Redis Sentinel names for `master`, asked of the
    /// `sentinels` (URLs) and asked again after a failover.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

/// Writes that must survive a failover wait until this many replicas have
/// them (Redis `WAIT`); 0 turns the wait off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    pub replicas: u32,
    pub timeout: Duration,
}

impl ReplicaAcks {
    /// No waiting: a write is answered once the primary has it.
    pub const OFF: ReplicaAcks = ReplicaAcks {
        replicas: 0,
        timeout: Duration::ZERO,
    };
}

/// A connection to either deployment; both multiplex many requests over few
/// sockets and reconnect on their own after an outage.
#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(sentinel::Primary),
}

impl Conn {
    /// Changes when commands may have started going to another server (a
    /// new Sentinel primary); constant for the other deployments, whose
    /// address does not change under the store.
    fn links_opened(&self) -> u64 {
        match self {
            Conn::Sentinel(p) => p.links_opened(),
            Conn::Standalone(_) | Conn::Cluster(_) => 0,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// Session hash fields as Redis returns them.
type Fields = HashMap<String, String>;

pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    opts: StoreOptions,
    /// The connection for writes that wait for replicas, and how many.
    durable: Option<(Conn, ReplicaAcks)>,
    target: RedisTarget,
    ca: Option<Vec<u8>>,
    description: String,
}

tokio::task_local! {
    /// Set while a write that must survive a failover runs: its commands
    /// go to the durable connection, where `WAIT` then counts them.
    static DURABLE: ();
}

/// The certificates a `rediss://` connection trusts: the private CA `ca`
/// (PEM), no client certificate. Standalone, cluster and Sentinel clients
/// all take them.
pub(super) fn trusting(ca: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    }
}

/// A client for `info`, trusting `ca` (PEM) for `rediss://` when given.
fn client(
    info: impl redis::IntoConnectionInfo,
    ca: &Option<Vec<u8>>,
) -> redis::RedisResult<redis::Client> {
    match ca {
        Some(ca) => redis::Client::build_with_tls(info, trusting(ca)),
        None => redis::Client::open(info),
    }
}

/// Opens a connection to `target` and says what it is (without passwords).
/// A command may take `response_timeout` before the store reports itself
/// unavailable.
async fn open(
    target: &RedisTarget,
    ca: &Option<Vec<u8>>,
    response_timeout: Duration,
) -> StoreResult<(Conn, String)> {
    let open = |e: redis::RedisError| StoreError::Open(format!("redis: {e}"));
    Ok(match target {
        RedisTarget::Standalone(url) => {
            let client = client(url.as_str(), ca).map_err(open)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(response_timeout))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            let manager = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(open)?;
            (
                Conn::Standalone(manager),
                format!("redis {}", crate::redact_url(url)),
            )
        }
        RedisTarget::Cluster(nodes) => {
            let mut builder = redis::cluster::ClusterClient::builder(nodes.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(response_timeout)
                .retries(2);
            if let Some(ca) = ca {
                builder = builder.certs(trusting(ca));
            }
            let client = builder.build().map_err(open)?;
            let conn = client.get_async_connection().await.map_err(open)?;
            let shown: Vec<String> = nodes.iter().map(|n| crate::redact_url(n)).collect();
            (
                Conn::Cluster(conn),
                format!("redis cluster {}", shown.join(",")),
            )
        }
        RedisTarget::Sentinel { sentinels, master } => {
            let primary = sentinel::Primary::connect(
                sentinels,
                master,
                ca.clone(),
                CONNECT_TIMEOUT,
                response_timeout,
            )
            .await
            .map_err(open)?;
            let shown: Vec<String> = sentinels.iter().map(|n| crate::redact_url(n)).collect();
            (
                Conn::Sentinel(primary),
                format!("redis sentinel {master} via {}", shown.join(",")),
            )
        }
    })
}

impl RedisStore {
    /// Connects to `target`; every key starts with `prefix:`.
    pub async fn connect(
        target: &RedisTarget,
        prefix: &str,
        opts: StoreOptions,
    ) -> StoreResult<RedisStore> {
        Self::connect_with_ca(target, prefix, opts, None).await
    }

    /// As [`RedisStore::connect`], trusting the PEM certificates `ca` (instead
    /// of the system's roots) for `rediss://` servers: Redis over TLS mostly
    /// runs with a private CA.
    pub async fn connect_with_ca(
        target: &RedisTarget,
        prefix: &str,
        opts: StoreOptions,
        ca: Option<Vec<u8>>,
    ) -> StoreResult<RedisStore> {
        let (conn, description) = open(target, &ca, RESPONSE_TIMEOUT).await?;
        let store = RedisStore {
            conn,
            durable: None,
            target: target.clone(),
            ca,
            keys: Keys::new(prefix),
            opts,
            description,
        };
        store
            .ping()
            .await
            .map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(store)
    }

    /// Makes writes that must not be lost in a failover (revocations,
    /// supersede marks, ticket not-before marks, key slots) wait for
    /// `acks.replicas` replicas. A write that does not reach them in time
    /// stands on the primary but is answered as a store failure (503), so
    /// no client is told "revoked" about a revocation a failover could undo.
    ///
    /// These writes get a connection of their own: `WAIT` blocks the
    /// connection it runs on, and on the shared one it would hold up every
    /// validation queued behind it for as long as replicas take.
    pub async fn with_replica_acks(mut self, acks: ReplicaAcks) -> StoreResult<RedisStore> {
        if acks.replicas == 0 {
            self.durable = None;
            return Ok(self);
        }
        if matches!(self.target, RedisTarget::Cluster(_)) {
            return Err(StoreError::Open(
                "redis: waiting for replicas is not available on Redis Cluster".into(),
            ));
        }
        // WAIT itself may take `acks.timeout`.
        let (conn, _) = open(&self.target, &self.ca, RESPONSE_TIMEOUT + acks.timeout).await?;
        self.durable = Some((conn, acks));
        Ok(self)
    }

    /// What the start-up line shows: the target without any password.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    fn conn(&self) -> Conn {
        match &self.durable {
            Some((durable, _)) if DURABLE.try_with(|_| ()).is_ok() => durable.clone(),
            _ => self.conn.clone(),
        }
    }

    /// Runs `write`, then, with replica acknowledgements on, `WAIT`s until
    /// enough replicas have everything this connection wrote. `WAIT` counts
    /// only the writes of the connection it runs on, so if the primary
    /// changed meanwhile the writes are not confirmed.
    async fn kept<T>(
        &self,
        write: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.kept_if(true, write).await
    }

    /// [`RedisStore::kept`] when `must` holds, else just `write`. A kept
    /// write inside another (ending a user revokes in each of their
    /// realms) runs on the durable connection without a `WAIT` of its
    /// own: the outermost one confirms everything written inside it.
    async fn kept_if<T>(
        &self,
        must: bool,
        write: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let Some((durable, acks)) = self.durable.as_ref().filter(|_| must) else {
            return write.await;
        };
        if DURABLE.try_with(|_| ()).is_ok() {
            return write.await;
        }
        let ReplicaAcks { replicas, timeout } = *acks;
        let links = durable.links_opened();
        let out = DURABLE.scope((), write).await?;
        let acked: i64 = redis::cmd("WAIT")
            .arg(replicas)
            .arg(timeout.as_millis().max(1) as u64)
            .query_async(&mut durable.clone())
            .await
            .map_err(unavailable)?;
        if durable.links_opened() != links {
            return Err(StoreError::Unavailable(
                "redis: the primary changed during a write; it may be lost".into(),
            ));
        }
        if acked < i64::from(replicas) {
            return Err(StoreError::Unavailable(format!(
                "redis: a write reached {acked} of {replicas} replicas within {} ms",
                timeout.as_millis()
            )));
        }
        Ok(out)
    }

    /// The fields of a session hash a check reads ([`READ`], in order):
    /// `HMGET` rather than `HGETALL`, half the reply to parse and no map.
    async fn fields(&self, id: &TokenHash) -> StoreResult<Vec<Option<String>>> {
        redis::cmd("HMGET")
            .arg(self.keys.session(id))
            .arg(&READ[..])
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    /// Writes a whole session hash (merging into a partial hash a newer
    /// login may have created to mark it superseded) and its TTL.
    async fn put(&self, id: &TokenHash, record: &SessionRecord, now: Timestamp) -> StoreResult<()> {
        let key = self.keys.session(id);
        let mut shell = record.clone();
        shell.data = SessionData::new();
        let mut fields: Vec<(&str, String)> = vec![
            ("rec", encode(&shell)?),
            ("realm", record.realm.clone()),
            ("g", record.generation.to_string()),
            ("sx", u8::from(record.supersede).to_string()),
            ("la", record.last_access.0.to_string()),
            ("data", encode(&record.data)?),
            ("dv", record.data_version.to_string()),
        ];
        if let Some(end) = record.expires_at {
            fields.push(("end", end.0.to_string()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic().hset_multiple(&key, &fields).ignore();
        if let Some(end) = record.ends_at() {
            // LT: never lengthen a TTL a supersede mark has already shortened.
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(ttl_secs(now, end))
                .arg("LT")
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    /// Marks the sessions `others` as superseded by `generation` (a login at `now`).
    async fn mark_superseded(
        &self,
        others: &[String],
        generation: u64,
        now: Timestamp,
    ) -> StoreResult<()> {
        let retention = self.opts.superseded_retention.as_secs().max(1);
        for hex in others {
            let Some(id) = TokenHash::from_hex(hex) else {
                continue;
            };
            scripts::MARK_SUPERSEDED
                .key(self.keys.session(&id))
                .arg(generation)
                .arg(now.0)
                .arg(retention)
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Reads a session and classifies it; deletes it when it is gone.
    async fn lookup(
        &self,
        id: &TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionRecord, Classification)>> {
        Ok(self.find(id, realm, now).await?.live())
    }

    /// [`RedisStore::lookup`], handing back a record that expired.
    async fn find(&self, id: &TokenHash, realm: &str, now: Timestamp) -> StoreResult<crate::Found> {
        let fields = self.fields(id).await?;
        let get = |name: &str| {
            let i = READ.iter().position(|r| *r == name)?;
            fields.get(i)?.as_deref()
        };
        let Some((record, user)) = decode_fields(get)? else {
            return Ok(crate::Found::Missing);
        };
        match classify(&record, &user, realm, now, self.opts.superseded_retention) {
            Classification::OtherRealm => Ok(crate::Found::Missing),
            Classification::Gone => {
                self.forget(id, &record).await?;
                Ok(crate::Found::gone(record, &user, now))
            }
            c => Ok(crate::Found::Live(record, c)),
        }
    }

    /// Deletes a session and its index entry.
    async fn forget(&self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        let mut conn = self.conn();
        conn.del::<_, ()>(self.keys.session(id))
            .await
            .map_err(unavailable)?;
        self.unindex(id, record).await
    }

    async fn unindex(&self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        self.conn()
            .zrem::<_, _, ()>(
                self.keys.user_index(&record.realm, &record.identity.user),
                id.to_hex(),
            )
            .await
            .map_err(unavailable)
    }

    /// Puts a session in use back into its user's index and realm set, as
    /// of now: sessions issued by an older version were indexed by their
    /// idle end (and logins dropped them once it passed) and are in no realm
    /// set, so "end all" and "end this user" would miss them. A touch heals
    /// both, and every session in use is touched within `touch_interval`
    /// (two commands, at most once a minute per session).
    async fn reindex(&self, id: &TokenHash, record: &SessionRecord) -> StoreResult<()> {
        let user = &record.identity.user;
        self.conn()
            .zadd::<_, _, _, ()>(
                self.keys.user_index(&record.realm, user),
                id.to_hex(),
                index_score(record),
            )
            .await
            .map_err(unavailable)?;
        self.conn()
            .sadd::<_, _, ()>(self.keys.user_realms(user), &record.realm)
            .await
            .map_err(unavailable)
    }

    /// Atomically removes a session of `realm` (only a current one if
    /// `only_current`) and returns what it held.
    async fn take(
        &self,
        id: &TokenHash,
        realm: &str,
        only_current: bool,
    ) -> StoreResult<Option<(SessionRecord, UserState)>> {
        let flat: Vec<String> = scripts::TAKE
            .key(self.keys.session(id))
            .arg(realm)
            .arg(if only_current { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let fields: Fields = flat
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        decode_fields(|name| fields.get(name).map(String::as_str))
    }

    fn ttl_arg(record: &SessionRecord, now: Timestamp) -> String {
        record
            .ends_at()
            .map(|end| ttl_secs(now, end).to_string())
            .unwrap_or_default()
    }
}

/// Seconds from `now` to `end`, at least 1 (0 would be refused by Redis; an
/// already-ended record is caught by classification anyway).
fn ttl_secs(now: Timestamp, end: Timestamp) -> i64 {
    (end.0 - now.0).max(1)
}

/// A session's score in its user's index: its absolute end, which no touch
/// moves (see `Keys::user_index`).
fn index_score(record: &SessionRecord) -> String {
    record
        .expires_at
        .map(|e| e.0.to_string())
        .unwrap_or_else(|| "+inf".into())
}

fn encode<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The session hash fields [`decode_fields`] reads.
const READ: [&str; 6] = ["rec", "la", "dv", "data", "sg", "sa"];

/// Rebuilds a record from its hash (`get` reads one field), with the user
/// state its supersede mark implies. `None` for a missing or partial hash.
fn decode_fields<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> StoreResult<Option<(SessionRecord, UserState)>> {
    let Some(rec) = get("rec") else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("redis session field {what}"));
    let mut record: SessionRecord = serde_json::from_str(rec).map_err(|_| corrupt("rec"))?;
    let number = |name: &str| -> StoreResult<Option<i64>> {
        get(name)
            .map(|v| v.parse::<i64>().map_err(|_| corrupt(name)))
            .transpose()
    };
    if let Some(la) = number("la")? {
        record.last_access = Timestamp(la);
    }
    record.data_version = number("dv")?.unwrap_or(0).max(0) as u64;
    if let Some(data) = get("data") {
        record.data = serde_json::from_str(data).map_err(|_| corrupt("data"))?;
    }
    let superseded_by = number("sg")?.unwrap_or(0).max(0) as u64;
    let user = UserState {
        generation: record.generation.max(superseded_by),
        superseded_at: number("sa")?.map(Timestamp),
        epoch: 0,
    };
    Ok(Some((record, user)))
}

#[async_trait]
impl crate::FailureCounters for RedisStore {
    async fn failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        let (n, last): (Option<u32>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.keys.failures(key))
            .arg("n")
            .arg("last")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(match (n, last) {
            (Some(count), Some(last)) => Some(Failures {
                count,
                last: Timestamp(last),
            }),
            _ => None,
        })
    }

    async fn record_failure(
        &self,
        key: &str,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Failures> {
        let count: u32 = scripts::RECORD_FAILURE
            .key(self.keys.failures(key))
            .arg(now.0)
            .arg(backoff.window.as_secs().max(1))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(Failures { count, last: now })
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.conn()
            .del(self.keys.failures(key))
            .await
            .map_err(unavailable)
    }
}

impl RedisStore {
    /// This store with the abilities it offers: it enumerates users' sessions and shares failed-login counts with every instance.
    pub fn into_store(self: std::sync::Arc<Self>) -> Store {
        let s = self;
        Store::new(s.clone()).with_users(s.clone()).with_failures(s)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        // EXISTS on a key routes like any data command, so on a cluster it
        // checks a node that actually serves requests.
        self.conn()
            .exists::<_, bool>(format!("{}:ping", self.keys.prefix()))
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
        let (realm, user) = (new.realm.clone(), new.identity.user.clone());
        let supersede = new.policy.supersede;
        // A login that supersedes others must not lose its marks in a
        // failover: the older sessions would come back.
        self.kept_if(supersede, async {
            // The end is only known once the record exists; build it with a
            // placeholder generation, then set the one the login script assigns.
            let mut record = SessionRecord::issue(new, 0, now);
            let score = index_score(&record);
            self.conn()
                .sadd::<_, _, ()>(self.keys.user_realms(&user), &realm)
                .await
                .map_err(unavailable)?;
            let (generation, others, indexed): (u64, Vec<String>, u64) = scripts::LOGIN
                .key(self.keys.user_state(&realm, &user))
                .key(self.keys.user_index(&realm, &user))
                .arg(if supersede { "1" } else { "0" })
                .arg(now.0)
                .arg(id.to_hex())
                .arg(score)
                .arg(self.opts.superseded_retention.as_secs().max(1))
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            record.generation = generation;
            self.put(&id, &record, now).await?;
            if supersede {
                self.mark_superseded(&others, generation, now).await?;
            }
            // Sessions that ended idle (never expired by score) stay indexed
            // until the user's sessions are listed. Clean up when the index
            // reaches 64, 128, 256, …: amortised, a login costs O(1) more.
            if indexed >= 64 && indexed.is_power_of_two() {
                self.list_user_sessions(&realm, &user, now).await?;
            }
            Ok(record)
        })
        .await
    }

    // With Access::Touch, last access (and the TTL) moves on when due.
    async fn check(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
        access: Access,
    ) -> StoreResult<Validity> {
        Ok(match self.find(&id, realm, now).await? {
            crate::Found::Missing => Validity::Unknown,
            crate::Found::Expired(record) => Validity::Expired(record),
            crate::Found::Live(record, Classification::Superseded) => Validity::Superseded(record),
            crate::Found::Live(mut record, _) => {
                if access == Access::Touch && record.needs_touch(now, self.opts.touch_interval) {
                    record.last_access = now;
                    let touched: i64 = scripts::TOUCH
                        .key(self.keys.session(&id))
                        .arg(now.0)
                        .arg(Self::ttl_arg(&record, now))
                        .invoke_async(&mut self.conn())
                        .await
                        .map_err(unavailable)?;
                    if touched == 1 {
                        self.reindex(&id, &record).await?;
                    }
                }
                Validity::Current(record)
            }
        })
    }

    async fn revoke(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        self.kept(async {
            let Some((record, user)) = self.take(&id, realm, false).await? else {
                return Ok(None);
            };
            self.unindex(&id, &record).await?;
            Ok(
                match classify(&record, &user, realm, now, self.opts.superseded_retention) {
                    Classification::Current | Classification::Superseded => Some(record),
                    _ => None,
                },
            )
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
        self.kept(async {
            // Write the new session first, then take the old one: a failure in
            // between leaves the old session working (and an orphan whose token
            // nobody holds), never no session at all.
            let Some((mut record, Classification::Current)) = self.lookup(&old, realm, now).await?
            else {
                return Ok(None);
            };
            record.last_access = now;
            self.put(&new, &record, now).await?;
            // Indexed before the old one is taken: an "end all" or "end this
            // user" running meanwhile finds the new id and ends it too.
            let index = self.keys.user_index(realm, &record.identity.user);
            self.conn()
                .zadd::<_, _, _, ()>(&index, new.to_hex(), index_score(&record))
                .await
                .map_err(unavailable)?;
            let Some((taken, user)) = self.take(&old, realm, true).await? else {
                // A racing revoke or replace won: the copy must not outlive it.
                self.forget(&new, &record).await?;
                return Ok(None);
            };
            if classify(&taken, &user, realm, now, self.opts.superseded_retention)
                != Classification::Current
            {
                self.forget(&new, &taken).await?;
                self.unindex(&old, &taken).await?;
                return Ok(None);
            }
            if taken.data_version != record.data_version {
                // Data written between the read and the take: carry it over.
                record.data = taken.data;
                record.data_version = taken.data_version;
                self.put(&new, &record, now).await?;
            }
            self.conn()
                .zrem::<_, _, ()>(&index, old.to_hex())
                .await
                .map_err(unavailable)?;
            if record.supersede {
                // A login that ran after `take` listed the old id, not the new
                // one; it bumped the generation first, so seeing a newer one here
                // means this session must mark itself.
                let state: HashMap<String, i64> = self
                    .conn()
                    .hgetall(self.keys.user_state(realm, &record.identity.user))
                    .await
                    .map_err(unavailable)?;
                let generation = state.get("g").copied().unwrap_or(0).max(0) as u64;
                if generation > record.generation {
                    let at = Timestamp(state.get("at").copied().unwrap_or(now.0));
                    self.mark_superseded(&[new.to_hex()], generation, at)
                        .await?;
                }
            }
            Ok(Some(record))
        })
        .await
    }

    async fn read_data(
        &self,
        id: TokenHash,
        realm: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(SessionData, u64)>> {
        Ok(match self.lookup(&id, realm, now).await? {
            Some((record, Classification::Current)) => Some((record.data, record.data_version)),
            _ => None,
        })
    }

    async fn write_data(
        &self,
        id: TokenHash,
        realm: &str,
        expected_version: u64,
        data: SessionData,
        now: Timestamp,
    ) -> StoreResult<DataWrite> {
        let Some((mut record, Classification::Current)) = self.lookup(&id, realm, now).await?
        else {
            return Ok(DataWrite::NotFound);
        };
        record.last_access = now;
        let (status, version): (i64, i64) = scripts::WRITE_DATA
            .key(self.keys.session(&id))
            .arg(realm)
            .arg(expected_version)
            .arg(encode(&data)?)
            .arg(now.0)
            .arg(Self::ttl_arg(&record, now))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let version = version.max(0) as u64;
        Ok(match status {
            1 => DataWrite::Written { version },
            0 => DataWrite::Conflict {
                current_version: version,
            },
            _ => DataWrite::NotFound,
        })
    }

    /// Redis expires records itself through their TTLs, and user indexes are
    /// trimmed at each login and listing, so there is nothing to sweep.
    async fn purge(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }

    async fn end_user_sessions(&self, user: &str, now: Timestamp) -> StoreResult<Option<u64>> {
        self.kept(async {
            let realms: Vec<String> = self
                .conn()
                .smembers(self.keys.user_realms(user))
                .await
                .map_err(unavailable)?;
            let mut removed = 0;
            for realm in realms {
                removed += self.revoke_user_sessions(&realm, user, None, now).await?;
            }
            Ok(Some(removed))
        })
        .await
    }
}

#[async_trait]
impl crate::UserSessions for RedisStore {
    async fn list_user_sessions(
        &self,
        realm: &str,
        user: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSession>> {
        let index = self.keys.user_index(realm, user);
        let ids: Vec<String> = self
            .conn()
            .zrange(&index, 0, -1)
            .await
            .map_err(unavailable)?;
        let mut live = Vec::new();
        for hex in ids {
            let Some(id) = TokenHash::from_hex(&hex) else {
                continue;
            };
            match self.lookup(&id, realm, now).await? {
                Some((record, class)) => live.push(UserSession {
                    id,
                    record,
                    superseded: class == Classification::Superseded,
                }),
                None => {
                    // expired by TTL, or a login that never finished
                    self.conn()
                        .zrem::<_, _, ()>(&index, &hex)
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        live.sort_by_key(|s| (s.record.created, s.record.generation, s.id.0));
        Ok(live)
    }

    async fn revoke_user_sessions(
        &self,
        realm: &str,
        user: &str,
        keep: Option<TokenHash>,
        _now: Timestamp,
    ) -> StoreResult<u64> {
        self.kept(async {
            let index = self.keys.user_index(realm, user);
            let ids: Vec<String> = self
                .conn()
                .zrange(&index, 0, -1)
                .await
                .map_err(unavailable)?;
            let mut removed = 0;
            for hex in ids {
                let Some(id) = TokenHash::from_hex(&hex) else {
                    continue;
                };
                if keep.as_ref() == Some(&id) {
                    continue;
                }
                if let Some((record, _)) = self.take(&id, realm, false).await? {
                    if record.identity.user == user {
                        removed += 1;
                    }
                }
                self.conn()
                    .zrem::<_, _, ()>(&index, &hex)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(removed)
        })
        .await
    }
}

#[async_trait]
impl crate::TicketMarks for RedisStore {
    async fn raise_ticket_not_before(
        &self,
        realm: &str,
        user: &str,
        at: Timestamp,
    ) -> StoreResult<Timestamp> {
        self.kept(async {
            scripts::RAISE
                .key(self.keys.key_slot(&crate::not_before_slot(realm, user)))
                .arg(at.0)
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map(Timestamp)
                .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl crate::KeySlots for RedisStore {
    async fn get_key(&self, slot: &str) -> StoreResult<Option<String>> {
        self.conn()
            .get(self.keys.key_slot(slot))
            .await
            .map_err(unavailable)
    }

    async fn put_key(&self, slot: &str, key: &str) -> StoreResult<()> {
        self.kept(async {
            self.conn()
                .set(self.keys.key_slot(slot), key)
                .await
                .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl crate::Groups for RedisStore {
    async fn create_group(
        &self,
        group: &str,
        realm: &str,
        user: &str,
        key: &str,
    ) -> StoreResult<bool> {
        let created: i64 = scripts::CREATE_GROUP
            .key(self.keys.group_key(group))
            .key(self.keys.group_roles(group))
            .arg(key)
            .arg(Keys::member(realm, user))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(created == 1)
    }

    async fn group_role(
        &self,
        group: &str,
        realm: &str,
        user: &str,
    ) -> StoreResult<Option<GroupRole>> {
        let role: Option<String> = self
            .conn()
            .hget(self.keys.group_roles(group), Keys::member(realm, user))
            .await
            .map_err(unavailable)?;
        Ok(role.as_deref().and_then(GroupRole::parse))
    }

    async fn group_key(&self, group: &str) -> StoreResult<Option<String>> {
        self.conn()
            .get(self.keys.group_key(group))
            .await
            .map_err(unavailable)
    }

    async fn update_group(
        &self,
        group: &str,
        realm: &str,
        caller: &str,
        changes: &[GroupChange],
    ) -> StoreResult<bool> {
        let mut invocation = scripts::UPDATE_GROUP.key(self.keys.group_roles(group));
        invocation.arg(Keys::member(realm, caller));
        for change in changes {
            invocation
                .arg(Keys::member(realm, &change.user))
                .arg(change.role.map(GroupRole::as_str).unwrap_or(""));
        }
        let applied: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(applied == 1)
    }
}
