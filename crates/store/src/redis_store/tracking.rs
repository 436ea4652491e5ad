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
//! given up as soon as the store's own commands go elsewhere. Not on a
//! cluster: each primary would need its own tracking connection, following
//! resharding.

use super::{Conn, RedisStore, RedisTarget};
use crate::{Invalidator, StoreError, StoreResult};
use redis::{PushKind, Value};
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
}

impl RedisStore {
    /// Feeds a near cache from Redis's invalidations, as long as the
    /// runtime runs; while the tracking connection is down the cache is not
    /// used, and it is emptied before it is used again.
    pub fn spawn_invalidations(&self, inv: Invalidator) -> StoreResult<()> {
        let source =
            match (&self.target, &self.conn) {
                (RedisTarget::Standalone(url), _) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let url = format!("{url}{sep}protocol=resp3");
                    let client = match &self.ca {
                        Some(ca) => redis::Client::build_with_tls(
                            url.as_str(),
                            redis::TlsCertificates {
                                client_tls: None,
                                root_cert: Some(ca.clone()),
                            },
                        ),
                        None => redis::Client::open(url.as_str()),
                    }
                    .map_err(|e| StoreError::Open(format!("redis: {e}")))?;
                    Source::Fixed(Box::new(client))
                }
                (RedisTarget::Sentinel { .. }, Conn::Sentinel(primary)) => {
                    Source::Sentinel(primary.clone())
                }
                _ => return Err(StoreError::Open(
                    "the near cache follows standalone redis and redis-sentinel, not redis-cluster"
                        .into(),
                )),
            };
        let prefix = format!("{}:s:", self.keys.prefix());
        inv.expect_heartbeat(HEARTBEAT);
        inv.spawn_follower("redis", move |inv| {
            let (source, prefix) = (source.clone(), prefix.clone());
            async move { track(&source, &prefix, &inv).await }
        });
        Ok(())
    }
}

/// Follows the invalidations until the connection fails, or (Sentinel) its
/// server stops being the primary the store uses; says why.
async fn track(source: &Source, prefix: &str, inv: &Invalidator) -> String {
    let (client, primary) = match source {
        Source::Fixed(client) => ((**client).clone(), None),
        Source::Sentinel(p) => match p.resp3_client().await {
            Ok((client, address)) => (client, Some((p, address))),
            Err(e) => return e.to_string(),
        },
    };
    let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new()
        .set_push_sender(tx)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(HEARTBEAT * 2));
    let mut conn = match client
        .get_multiplexed_async_connection_with_config(&config)
        .await
    {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let tracking = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(prefix)
        .exec_async(&mut conn)
        .await;
    if let Err(e) = tracking {
        return e.to_string();
    }
    inv.restored();
    inv.heard();
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return "connection closed".into() };
                match push.kind {
                    PushKind::Invalidate => {
                        inv.heard();
                        invalidate(prefix, &push.data, inv);
                    }
                    PushKind::Disconnection => return "disconnected".into(),
                    _ => {}
                }
            }
            _ = beat.tick() => {
                // ROLE rather than PING: it also tells a demoted primary
                let role: redis::RedisResult<Vec<Value>> =
                    redis::cmd("ROLE").query_async(&mut conn).await;
                match role {
                    Ok(r) if matches!(r.first(), Some(Value::BulkString(b)) if b == b"master") => {}
                    Ok(_) => return "the server is no longer a primary".into(),
                    Err(e) => return e.to_string(),
                }
                if let Some((p, address)) = &primary {
                    if p.address().as_ref() != Some(address) {
                        return "the store's commands go to another server now".into();
                    }
                }
                inv.heard();
            }
        }
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
