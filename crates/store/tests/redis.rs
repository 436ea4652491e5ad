//! The conformance suite on Redis, standalone, cluster and Sentinel, plus
//! what only a TTL store must show: records carry expiries from their own end.
//!
//! Standalone uses `SESSIOND_TEST_REDIS_URL` (default: this machine's
//! redis://127.0.0.1:6379); the cluster uses `SESSIOND_TEST_REDIS_CLUSTER`
//! (comma-separated node URLs; `scripts/test.sh` starts a three-node cluster);
//! Sentinel uses `SESSIOND_TEST_REDIS_SENTINEL` and `…_MASTER` (a primary, a
//! replica and three sentinels from `scripts/redis-sentinel.sh`), with writes
//! that must survive a failover waiting for the replica.
//! Each harness works under its own key prefix and deletes it afterwards.

mod conformance;

use conformance::{eventually, login, peek_until, service_url, Harness, RETENTION};
use redis::Commands;
use sessiond_core::{RealmPolicy, Timestamp, Token, Validity};
use sessiond_store::{
    Invalidator, NearCacheConfig, RedisStore, RedisTarget, ReplicaAcks, SessionStore, StoreOptions,
};
use std::sync::Arc;
use std::time::Duration;

fn options() -> StoreOptions {
    StoreOptions {
        superseded_retention: RETENTION,
        ..StoreOptions::default()
    }
}

/// Deletes a harness's keys when the test ends.
struct Cleanup {
    target: RedisTarget,
    prefix: String,
}

/// A blocking connection to the primary the sentinels name now.
fn sentinel_primary(sentinels: &[String], master: &str) -> redis::Connection {
    redis::sentinel::SentinelClient::build(
        sentinels.to_vec(),
        master,
        None,
        redis::sentinel::SentinelServerType::Master,
    )
    .unwrap()
    .get_connection()
    .unwrap()
}

/// Every key under `prefix`, with its contents, read with blocking
/// connections (also usable from `Drop`).
fn keys_and_values(target: &RedisTarget, prefix: &str) -> Vec<(String, String)> {
    fn on_node(con: &mut redis::Connection, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = con
            .scan_match(format!("{prefix}:*"))
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        keys.into_iter()
            .map(|k| {
                let kind: String = redis::cmd("TYPE").arg(&k).query(con).unwrap();
                let value = match kind.as_str() {
                    "string" => con.get::<_, String>(&k).unwrap_or_default(),
                    "hash" => format!("{:?}", con.hgetall::<_, Vec<String>>(&k).unwrap()),
                    "zset" => format!("{:?}", con.zrange::<_, Vec<String>>(&k, 0, -1).unwrap()),
                    _ => String::new(),
                };
                (k, value)
            })
            .collect()
    }
    match target {
        RedisTarget::Standalone(url) => {
            let mut con = redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            on_node(&mut con, prefix)
        }
        // SCAN per primary: a cluster keeps each key on one node only.
        RedisTarget::Cluster(nodes) => nodes
            .iter()
            .flat_map(|url| {
                let mut con = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                on_node(&mut con, prefix)
            })
            .collect(),
        RedisTarget::Sentinel { sentinels, master } => {
            on_node(&mut sentinel_primary(sentinels, master), prefix)
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let keys = keys_and_values(&self.target, &self.prefix);
        match &self.target {
            RedisTarget::Standalone(url) => {
                let mut con = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for (k, _) in keys {
                    let _: Result<(), _> = con.del(k);
                }
            }
            RedisTarget::Cluster(nodes) => {
                let mut con = redis::cluster::ClusterClient::new(nodes.clone())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for (k, _) in keys {
                    let _: Result<(), _> = con.del(k);
                }
            }
            RedisTarget::Sentinel { sentinels, master } => {
                let mut con = sentinel_primary(sentinels, master);
                for (k, _) in keys {
                    let _: Result<(), _> = con.del(k);
                }
            }
        }
    }
}

async fn harness_for(target: RedisTarget) -> Harness {
    harness_with(target, false).await
}

async fn harness_with(target: RedisTarget, near_cache: bool) -> Harness {
    let prefix = format!("sessiond-test-{}", sessiond_core::token::random_hex(6));
    // On Sentinel the replica is there, so every write that waits for it
    // is exercised by the whole suite.
    let acks = match target {
        RedisTarget::Sentinel { .. } => ReplicaAcks {
            replicas: 1,
            timeout: Duration::from_secs(2),
        },
        _ => ReplicaAcks::OFF,
    };
    let store = Arc::new(
        RedisStore::connect(&target, &prefix, options())
            .await
            .expect("connect to redis")
            .with_replica_acks(acks)
            .await
            .expect("a second connection to redis"),
    );
    let dump_target = target.clone();
    let dump_prefix = prefix.clone();
    let front = if near_cache {
        cached(&store).await.0
    } else {
        store.into_store()
    };
    Harness {
        store: front,
        dump: Box::new(move || {
            let (t, p) = (dump_target.clone(), dump_prefix.clone());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || format!("{:?}", keys_and_values(&t, &p)))
                    .await
                    .unwrap()
                    .into_bytes()
            })
        }),
        guard: Box::new(Cleanup { target, prefix }),
        sweeps: false,
        enumerates: true,
    }
}

fn standalone_target() -> Option<RedisTarget> {
    service_url("SESSIOND_TEST_REDIS_URL", Some("redis://127.0.0.1:6379"))
        .map(RedisTarget::Standalone)
}

fn cluster_target() -> Option<RedisTarget> {
    service_url("SESSIOND_TEST_REDIS_CLUSTER", None)
        .map(|nodes| RedisTarget::Cluster(nodes.split(',').map(str::to_owned).collect()))
}

fn sentinel_target() -> Option<RedisTarget> {
    let sentinels = service_url("SESSIOND_TEST_REDIS_SENTINEL", None)?;
    Some(RedisTarget::Sentinel {
        sentinels: sentinels.split(',').map(str::to_owned).collect(),
        master: std::env::var("SESSIOND_TEST_REDIS_SENTINEL_MASTER")
            .unwrap_or_else(|_| "sessiond".into()),
    })
}

async fn sentinel() -> Option<Harness> {
    Some(harness_for(sentinel_target()?).await)
}

async fn standalone() -> Option<Harness> {
    Some(harness_for(standalone_target()?).await)
}

async fn cluster() -> Option<Harness> {
    Some(harness_for(cluster_target()?).await)
}

mod standalone {
    use super::*;
    conformance_suite!(standalone);
}

mod cluster {
    use super::*;
    conformance_suite!(cluster);
}

mod sentinel {
    use super::*;
    conformance_suite!(sentinel);
}

/// `store` behind a near cache fed by Redis's invalidations, once they flow.
async fn cached(store: &Arc<RedisStore>) -> (sessiond_store::Store, Invalidator) {
    let config = NearCacheConfig {
        capacity: 1000,
        max_age: Duration::from_secs(60),
    };
    let (front, inv) = store
        .clone()
        .into_store()
        .with_near_cache(config, &options());
    store.spawn_invalidations(inv.clone()).unwrap();
    let live = eventually(Duration::from_secs(5), || inv.is_live()).await;
    assert!(live, "tracking within 5 s");
    (front, inv)
}

async fn standalone_cached() -> Option<Harness> {
    Some(harness_with(standalone_target()?, true).await)
}

async fn sentinel_cached() -> Option<Harness> {
    Some(harness_with(sentinel_target()?, true).await)
}

mod near_cache {
    use super::*;
    conformance_suite!(standalone_cached);
}

mod near_cache_sentinel {
    use super::*;
    conformance_suite!(sentinel_cached);
}

async fn cluster_cached() -> Option<Harness> {
    Some(harness_with(cluster_target()?, true).await)
}

mod near_cache_cluster {
    use super::*;
    conformance_suite!(cluster_cached);
}

/// What another instance does reaches a cached instance through Redis's
/// invalidations: a revocation and a superseding login (a mark written into
/// the older session); and with the tracking connection killed, checks go
/// to Redis until it tracks again.
#[tokio::test]
async fn another_instances_writes_reach_the_near_cache() {
    let Some(target) = standalone_target() else {
        return;
    };
    let prefix = format!("sessiond-test-{}", sessiond_core::token::random_hex(6));
    let _cleanup = Cleanup {
        target: target.clone(),
        prefix: prefix.clone(),
    };
    let a = Arc::new(
        RedisStore::connect(&target, &prefix, options())
            .await
            .unwrap(),
    );
    let b = RedisStore::connect(&target, &prefix, options())
        .await
        .unwrap();
    let (front, inv) = cached(&a).await;
    let now = Timestamp(1_700_000_000);
    let current = |v: &Validity| matches!(v, Validity::Current(_));
    let t = Token::generate();
    b.create(t.hash(), login("rc", "alice", RealmPolicy::default()), now)
        .await
        .unwrap();
    assert!(current(&front.peek(t.hash(), "rc", now).await.unwrap()));
    b.revoke(t.hash(), "rc", now).await.unwrap();
    peek_until(&front, t.hash(), now, |v| *v == Validity::Unknown).await;
    let t = Token::generate();
    b.create(t.hash(), login("rc", "bob", RealmPolicy::default()), now)
        .await
        .unwrap();
    assert!(current(&front.peek(t.hash(), "rc", now).await.unwrap()));
    b.create(
        Token::generate().hash(),
        login("rc", "bob", RealmPolicy::default()),
        now,
    )
    .await
    .unwrap();
    peek_until(&front, t.hash(), now, |v| {
        matches!(v, Validity::Superseded(_))
    })
    .await;
    // kill the tracking connection (the only one with tracking on)
    let t = Token::generate();
    b.create(t.hash(), login("rc", "carol", RealmPolicy::default()), now)
        .await
        .unwrap();
    assert!(current(&front.peek(t.hash(), "rc", now).await.unwrap()));
    let RedisTarget::Standalone(url) = &target else {
        unreachable!()
    };
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    for line in clients.lines().filter(|l| l.contains("flags=t")) {
        let id = line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query(&mut admin)
            .unwrap();
    }
    let lost = eventually(Duration::from_secs(2), || !inv.is_live()).await;
    assert!(lost, "the loss is noticed");
    b.revoke(t.hash(), "rc", now).await.unwrap();
    assert_eq!(
        front.peek(t.hash(), "rc", now).await.unwrap(),
        Validity::Unknown
    );
    let back = eventually(Duration::from_secs(5), || inv.is_live()).await;
    assert!(back, "tracking again");
    let t = Token::generate();
    b.create(t.hash(), login("rc", "dave", RealmPolicy::default()), now)
        .await
        .unwrap();
    assert!(current(&front.peek(t.hash(), "rc", now).await.unwrap()));
    b.revoke(t.hash(), "rc", now).await.unwrap();
    peek_until(&front, t.hash(), now, |v| *v == Validity::Unknown).await;
}

/// Real TTLs follow the session's own end: absolute lifetime, idle timeout,
/// and the superseded retention once a newer login marks a session.
#[tokio::test]
async fn records_expire_through_redis_ttls() {
    let Some(target) = standalone_target() else {
        return;
    };
    let h = harness_for(target.clone()).await;
    let prefix = &h.guard.downcast_ref::<Cleanup>().unwrap().prefix;
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let ttl_of = |t: &Token| -> i64 {
        let RedisTarget::Standalone(url) = &target else {
            unreachable!()
        };
        let mut con = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        con.ttl(format!("{prefix}:s:{}", t.hash().to_hex()))
            .unwrap()
    };
    let lifetime = RealmPolicy {
        max_lifetime: Some(Duration::from_secs(600)),
        idle_timeout: Some(Duration::from_secs(120)),
        ..RealmPolicy::default()
    };
    let t = Token::generate();
    h.store
        .create(t.hash(), login("r", "ttl-user", lifetime), now)
        .await
        .unwrap();
    let ttl = ttl_of(&t);
    assert!((115..=120).contains(&ttl), "idle end first: {ttl}");

    let forever = Token::generate();
    h.store
        .create(
            forever.hash(),
            login("sks", "ttl-user", RealmPolicy::default()),
            now,
        )
        .await
        .unwrap();
    assert_eq!(ttl_of(&forever), -1, "no expiry configured: no TTL");
    let newer = Token::generate();
    h.store
        .create(
            newer.hash(),
            login("sks", "ttl-user", RealmPolicy::default()),
            now,
        )
        .await
        .unwrap();
    let ttl = ttl_of(&forever);
    assert!(
        (RETENTION.as_secs() as i64 - 5..=RETENTION.as_secs() as i64).contains(&ttl),
        "superseded: kept for the retention only, got {ttl}"
    );
    assert_eq!(ttl_of(&newer), -1);
}

/// Sessions written by an older sessiond were indexed by their idle end and
/// are in no realm set. Once used (touched), they are indexed as today's
/// are, so supersede and "end this user" reach them.
#[tokio::test]
async fn sessions_from_an_older_version_heal_on_use() {
    let Some(target) = standalone_target() else {
        return;
    };
    let RedisTarget::Standalone(url) = target.clone() else {
        unreachable!()
    };
    let h = harness_for(target).await;
    let prefix = h.guard.downcast_ref::<Cleanup>().unwrap().prefix.clone();
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let idle = RealmPolicy {
        idle_timeout: Some(Duration::from_secs(100)),
        ..RealmPolicy::default()
    };
    let old = Token::generate();
    h.store
        .create(old.hash(), login("web", "olduser", idle.clone()), now)
        .await
        .unwrap();
    // What the older version left behind.
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let index = format!("{prefix}:{{u:web:olduser}}:sessions");
    let _: () = con.zadd(&index, old.hash().to_hex(), now.0 + 100).unwrap();
    let _: () = con.del(format!("{prefix}:{{r:olduser}}:realms")).unwrap();
    // Used past its first idle end, then a new login and an "end user".
    for s in [60, 120, 180] {
        assert!(matches!(
            h.store
                .validate(old.hash(), "web", Timestamp(now.0 + s))
                .await
                .unwrap(),
            Validity::Current(_)
        ));
    }
    h.store
        .create(
            Token::generate().hash(),
            login("web", "olduser", idle),
            Timestamp(now.0 + 190),
        )
        .await
        .unwrap();
    h.store
        .end_user_sessions("olduser", Timestamp(now.0 + 191))
        .await
        .unwrap();
    assert!(matches!(
        h.store
            .validate(old.hash(), "web", Timestamp(now.0 + 192))
            .await
            .unwrap(),
        Validity::Unknown
    ));
}

/// A revocation that no replica acknowledged is not answered as done: the
/// machine's Redis has no replica, so `WAIT 1` comes back with 0 and the
/// store reports itself unavailable (a 503 for the client, who retries)
/// rather than promise a revocation a failover could undo. Logins and
/// checks, which need no acknowledgement, go on as usual.
#[tokio::test]
async fn unacknowledged_revocations_are_not_answered_as_done() {
    let Some(target) = standalone_target() else {
        return;
    };
    let h = harness_for(target.clone()).await;
    let prefix = h.guard.downcast_ref::<Cleanup>().unwrap().prefix.clone();
    let store = Arc::new(
        RedisStore::connect(&target, &prefix, options())
            .await
            .unwrap()
            .with_replica_acks(ReplicaAcks {
                replicas: 1,
                timeout: Duration::from_secs(2),
            })
            .await
            .unwrap(),
    )
    .into_store();
    let now = Timestamp(1_700_000_000);
    let t = Token::generate();
    let alongside = RealmPolicy {
        supersede: false,
        ..RealmPolicy::default()
    };
    store
        .create(t.hash(), login("r", "acks-user", alongside.clone()), now)
        .await
        .expect("a login without supersede waits for no replica");
    let other = Token::generate();
    store
        .create(
            other.hash(),
            login("r", "acks-user", alongside.clone()),
            now,
        )
        .await
        .unwrap();
    // While the revocation waits for its replica, checks go on: WAIT holds
    // only the connection of the writes that wait.
    let revoking = tokio::spawn({
        let (store, id) = (store.clone(), t.hash());
        async move { store.revoke(id, "r", now).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        store
            .check(other.hash(), "r", now, sessiond_store::Access::Peek)
            .await,
        Ok(Validity::Current(_))
    ));
    assert!(
        !revoking.is_finished(),
        "the check did not wait behind WAIT"
    );
    let e = revoking.await.unwrap().unwrap_err();
    assert!(
        e.to_string().contains("reached 0 of 1 replicas"),
        "revocation unconfirmed: {e}"
    );
    // The write stands on the primary all the same: the token is gone, and
    // a retried revocation finds nothing to do.
    assert!(matches!(
        store
            .check(t.hash(), "r", now, sessiond_store::Access::Peek)
            .await,
        Ok(Validity::Unknown)
    ));
    let supersedes = RealmPolicy {
        supersede: true,
        ..RealmPolicy::default()
    };
    let e = store
        .create(
            Token::generate().hash(),
            login("r", "acks-user", supersedes),
            now,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("replicas"), "supersede marks: {e}");
}
