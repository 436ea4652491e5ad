//! The near cache's invalidation channel on Redis: Redis's own
//! server-assisted client-side caching, in broadcast mode. A connection of
//! its own speaks RESP3 and asks `CLIENT TRACKING ON BCAST PREFIX
//! <prefix>:s:`; Redis then pushes the name of every session key under the
//! prefix that any client changes — writes, deletions, expiries, and the
//! supersede marks a login writes into older sessions (decision 0007), so
//! supersede needs no channel of its own.
//!
//! A `PING` every [`HEARTBEAT`] on the same connection proves it alive: its
//! answer comes after every push sent before it. Standalone Redis only (on a
//! cluster each primary would need its own tracking connection; on Sentinel
//! it would have to follow the primary).

use super::{RedisStore, RedisTarget};
use crate::{Invalidator, StoreError, StoreResult};
use redis::{PushKind, Value};
use sessiond_core::TokenHash;
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_millis(250);

impl RedisStore {
    /// Feeds a near cache from Redis's invalidations, as long as the
    /// runtime runs; while the tracking connection is down the cache is not
    /// used, and it is emptied before it is used again.
    pub fn spawn_invalidations(&self, inv: Invalidator) -> StoreResult<()> {
        let RedisTarget::Standalone(url) = &self.target else {
            return Err(StoreError::Open(
                "the near cache follows standalone Redis only (not redis-cluster or redis-sentinel)"
                    .into(),
            ));
        };
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
        let prefix = format!("{}:s:", self.keys.prefix());
        inv.expect_heartbeat(HEARTBEAT);
        inv.spawn_follower("redis", move |inv| {
            let (client, prefix) = (client.clone(), prefix.clone());
            async move { track(&client, &prefix, &inv).await }
        });
        Ok(())
    }
}

/// Follows the invalidations until the connection fails; says why.
async fn track(client: &redis::Client, prefix: &str, inv: &Invalidator) -> String {
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
                match redis::cmd("PING").exec_async(&mut conn).await {
                    Ok(()) => inv.heard(),
                    Err(e) => return e.to_string(),
                }
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
