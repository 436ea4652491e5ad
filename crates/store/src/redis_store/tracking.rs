//! The near cache's invalidation channel on Redis: Redis's own
//! server-assisted client-side caching, in broadcast mode. A connection of
//! its own speaks RESP3 and asks `CLIENT TRACKING ON BCAST PREFIX
//! <prefix>:s:`; Redis then pushes the name of every session key under the
//! prefix that any client changes — writes, deletions, expiries, and the
//! supersede marks a login writes into older sessions (decision 0007), so
//! supersede needs no channel of its own.
//!
//! A `ROLE` every [`HEARTBEAT`] on the same connection proves it alive (its
//! answer comes after every push sent before it) and still on a primary. On
//! Sentinel the connection goes to the primary the sentinels name, and is
//! given up as soon as the store's own commands go elsewhere. On a cluster
//! every primary gets a tracking connection, and the set of primaries is
//! compared on every heartbeat: a failover or a new node rebuilds them all.

use super::{client, Conn, RedisStore, RedisTarget};
use crate::{Invalidator, StoreError, StoreResult};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, PushKind, Value};
use sessiond_core::TokenHash;
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_millis(250);

/// Where the tracking connection goes: a fixed server, or whichever the
/// sentinels name primary — and must stay the server the store's own
/// commands go to (a check from the cache must mean what a check from that
/// server would).
#[derive(Clone)]
enum Source {
    Fixed(Box<redis::Client>),
    Sentinel(super::sentinel::Primary),
    /// Seed nodes: every primary gets a tracking connection of its own.
    Cluster {
        seeds: Vec<String>,
        ca: Option<Vec<u8>>,
    },
}

impl RedisStore {
    /// Feeds a near cache from Redis's invalidations, as long as the
    /// runtime runs; while the tracking connection is down the cache is not
    /// used, and it is emptied before it is used again.
    pub fn spawn_invalidations(&self, inv: Invalidator) -> StoreResult<()> {
        let source = match (&self.target, &self.conn) {
            (RedisTarget::Standalone(url), _) => {
                let client = url
                    .as_str()
                    .into_connection_info()
                    .and_then(|info| client(resp3(info), &self.ca))
                    .map_err(|e| StoreError::Open(format!("redis: {e}")))?;
                Source::Fixed(Box::new(client))
            }
            (RedisTarget::Sentinel { .. }, Conn::Sentinel(primary)) => {
                Source::Sentinel(primary.clone())
            }
            (RedisTarget::Cluster(seeds), _) => Source::Cluster {
                seeds: seeds.clone(),
                ca: self.ca.clone(),
            },
            (RedisTarget::Sentinel { .. }, _) => {
                return Err(StoreError::Open(
                    "redis-sentinel without its primary".into(),
                ))
            }
        };
        let prefix = format!("{}:s:", self.keys.prefix());
        inv.expect_heartbeat(HEARTBEAT);
        inv.spawn_follower("redis", move |inv| {
            let (source, prefix) = (source.clone(), prefix.clone());
            async move {
                match &source {
                    Source::Cluster { seeds, ca } => track_cluster(seeds, ca, &prefix, &inv).await,
                    _ => track(&source, &prefix, &inv).await,
                }
            }
        });
        Ok(())
    }
}

/// Follows the invalidations until the connection fails, or (Sentinel) its
/// server stops being the primary the store uses; says why.
async fn track(source: &Source, prefix: &str, inv: &Invalidator) -> String {
    let (client, primary) = match source {
        Source::Fixed(client) => ((**client).clone(), None),
        Source::Cluster { .. } => return "a cluster is tracked node by node".into(),
        Source::Sentinel(p) => match p.resp3_client().await {
            Ok((client, address)) => (client, Some((p, address))),
            Err(e) => return e.to_string(),
        },
    };
    let (config, pushes) = push_config();
    let conn = match tracking(&client, &config, prefix).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    follow(vec![conn], pushes, prefix, inv, |_| {
        let moved = primary
            .as_ref()
            .is_some_and(|(p, address)| p.address().as_ref() != Some(address));
        async move {
            match moved {
                true => Err("the store's commands go to another server now".into()),
                false => Ok(()),
            }
        }
    })
    .await
}

type Pushes = tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>;

/// Settings of a tracking connection, whose pushes arrive on the receiver.
fn push_config() -> (redis::AsyncConnectionConfig, Pushes) {
    let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new()
        .set_push_sender(tx)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(HEARTBEAT * 2));
    (config, pushes)
}

/// A connection of `client`'s with broadcast tracking of `prefix` on.
async fn tracking(
    client: &redis::Client,
    config: &redis::AsyncConnectionConfig,
    prefix: &str,
) -> Result<redis::aio::MultiplexedConnection, String> {
    let mut conn = client
        .get_multiplexed_async_connection_with_config(config)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(prefix)
        .exec_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Feeds the pushes of `conns` to the cache; on every heartbeat checks
/// each is alive and a primary, then `also` (given the first). Returns
/// why it stopped.
async fn follow<F, Fut>(
    mut conns: Vec<redis::aio::MultiplexedConnection>,
    mut pushes: Pushes,
    prefix: &str,
    inv: &Invalidator,
    mut also: F,
) -> String
where
    F: FnMut(redis::aio::MultiplexedConnection) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    inv.restored();
    inv.heard();
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return "connection closed".into() };
                if let Err(why) = on_push(prefix, push, inv) {
                    return why;
                }
            }
            _ = beat.tick() => {
                for conn in &mut conns {
                    if let Err(why) = still_primary(conn).await {
                        return why;
                    }
                }
                // (a clone is a handle on the same connection)
                if let Err(why) = also(conns[0].clone()).await {
                    return why;
                }
                inv.heard();
            }
        }
    }
}

/// The primaries of a cluster, as `CLUSTER SLOTS` names them (sorted).
async fn primaries(
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<Vec<(String, u16)>, String> {
    let slots: Vec<Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for range in slots {
        // [start, end, [host, port, id, …], replicas…]
        let Value::Array(range) = range else { continue };
        let Some(Value::Array(node)) = range.get(2) else {
            continue;
        };
        let host = match node.first() {
            Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
            _ => continue,
        };
        let Some(Value::Int(port)) = node.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        found.push((host, port));
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        return Err("CLUSTER SLOTS named no primary".into());
    }
    Ok(found)
}

/// A RESP3 client for `host:port`, with the seed's credentials and TLS.
fn node_client(
    seed: &ConnectionInfo,
    ca: &Option<Vec<u8>>,
    host: &str,
    port: u16,
) -> redis::RedisResult<redis::Client> {
    let addr = match seed.addr().clone() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure,
            tls_params,
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    client(resp3(seed.clone().set_addr(addr)), ca)
}

/// `info`, speaking RESP3 (pushes need it).
pub(super) fn resp3(info: ConnectionInfo) -> ConnectionInfo {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    info.set_redis_settings(settings)
}

/// The first seed node that answers, and its connection information.
async fn seed(
    seeds: &[String],
    ca: &Option<Vec<u8>>,
) -> Option<(redis::aio::MultiplexedConnection, ConnectionInfo)> {
    for seed in seeds {
        let Ok(info) = seed.as_str().into_connection_info() else {
            continue;
        };
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(h, p)
            | ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => (h.clone(), *p),
            _ => continue,
        };
        let Ok(client) = node_client(&info, ca, &host, port) else {
            continue;
        };
        if let Ok(conn) = client.get_multiplexed_async_connection().await {
            return Some((conn, info));
        }
    }
    None
}

/// [`track`] for a cluster: one tracking connection per primary, all
/// feeding the cache; given up when any fails or stops being a primary, or
/// when the set of primaries changes (a failover, a new node), then built
/// again from the seeds.
async fn track_cluster(
    seeds: &[String],
    ca: &Option<Vec<u8>>,
    prefix: &str,
    inv: &Invalidator,
) -> String {
    let Some((mut seed_conn, seed_info)) = seed(seeds, ca).await else {
        return "no seed node answered".into();
    };
    let nodes = match primaries(&mut seed_conn).await {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (config, pushes) = push_config();
    let mut conns = Vec::new();
    for (host, port) in &nodes {
        let client = match node_client(&seed_info, ca, host, *port) {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        match tracking(&client, &config, prefix).await {
            Ok(conn) => conns.push(conn),
            Err(e) => return format!("{host}:{port}: {e}"),
        }
    }
    follow(conns, pushes, prefix, inv, |mut conn| {
        let nodes = &nodes;
        async move {
            match primaries(&mut conn).await {
                Ok(now) if now == *nodes => Ok(()),
                Ok(_) => Err("the cluster's primaries changed".into()),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// Feeds one push to the cache; `Err` when it says the connection is gone.
fn on_push(prefix: &str, push: redis::PushInfo, inv: &Invalidator) -> Result<(), String> {
    match push.kind {
        PushKind::Invalidate => {
            inv.heard();
            invalidate(prefix, &push.data, inv);
            Ok(())
        }
        PushKind::Disconnection => Err("disconnected".into()),
        _ => Ok(()),
    }
}

/// `ROLE` rather than `PING`: alive, and still a primary.
async fn still_primary(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    let role: redis::RedisResult<Vec<Value>> = redis::cmd("ROLE").query_async(conn).await;
    match role {
        Ok(r) if matches!(r.first(), Some(Value::BulkString(b)) if b == b"master") => Ok(()),
        Ok(_) => Err("the server is no longer a primary".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// An `invalidate` push: the changed keys, or nil for "everything" (a
/// `FLUSHALL`, or the server dropped its tracking table).
fn invalidate(prefix: &str, data: &[Value], inv: &Invalidator) {
    for value in data {
        match value {
            Value::Array(keys) => {
                for key in keys {
                    let Value::BulkString(key) = key else {
                        continue;
                    };
                    let id = std::str::from_utf8(key)
                        .ok()
                        .and_then(|k| k.strip_prefix(prefix))
                        .and_then(|hex_id| hex::decode(hex_id).ok())
                        .and_then(|b| <[u8; 32]>::try_from(b).ok());
                    if let Some(id) = id {
                        inv.session(&TokenHash(id));
                    }
                }
            }
            Value::Nil => inv.all(),
            _ => {}
        }
    }
}
