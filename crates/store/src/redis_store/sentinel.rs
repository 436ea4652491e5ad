//! The connection to a Sentinel-managed primary, found again after a failover.
//!
//! The `redis` crate's sentinel support answers one question — "which server
//! is the primary now?" — and opens a connection to it; it does not follow
//! the primary when it changes. This module is the part that does: one
//! multiplexed connection to the current primary, dropped as soon as a
//! command shows it can no longer be trusted (the socket failed, or the
//! server answers `READONLY` because it was demoted), and found again through
//! the sentinels on the next command. Commands in the gap fail (callers
//! answer 503); none is sent to a server the sentinels no longer call the
//! primary, so a check never reads a demoted or partitioned server's stale
//! data.

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a failed look-up, commands fail at once for this long instead of
/// each asking the sentinels again: a dead primary must not turn every
/// request into a round of sentinel queries.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// The primary of one Sentinel-monitored master name.
#[derive(Clone)]
pub(super) struct Primary(Arc<Inner>);

struct Inner {
    /// Held while asking the sentinels, so one look-up runs at a time.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: ArcSwapOption<Link>,
    /// Links opened so far; a write confirmed by `WAIT` must have been made
    /// on the link that confirmed it (see [`Primary::links_opened`]).
    opened: AtomicU64,
    last_failure: Mutex<Option<(Instant, String)>>,
    config: AsyncConnectionConfig,
    lookup_timeout: Duration,
    master: String,
}

/// One connection to the server that was the primary when it was opened.
struct Link {
    conn: MultiplexedConnection,
    address: String,
}

impl Primary {
    /// Asks the sentinels `urls` for `master` and connects to it. The user
    /// name, password and database of the first URL apply to the sentinels
    /// and to the primary alike (the convention of Lettuce and redis-py);
    /// `ca` is trusted for `rediss://` sentinels and primaries.
    pub(super) async fn connect(
        urls: &[String],
        master: &str,
        ca: Option<Vec<u8>>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<Primary> {
        let mut infos = Vec::with_capacity(urls.len());
        for url in urls {
            infos.push(url.as_str().into_connection_info()?);
        }
        let Some(first) = infos.first().cloned() else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no sentinel addresses",
            )));
        };
        let tls = matches!(first.addr(), redis::ConnectionAddr::TcpTls { .. });
        let settings = first.redis_settings();
        let mut builder = SentinelClientBuilder::new(
            infos.iter().map(|i| i.addr().clone()),
            master,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(settings.db());
        if let Some(user) = settings.username() {
            builder = builder
                .set_client_to_redis_username(user)
                .set_client_to_sentinel_username(user);
        }
        if let Some(password) = settings.password() {
            builder = builder
                .set_client_to_redis_password(password)
                .set_client_to_sentinel_password(password);
        }
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
            if let Some(ca) = ca {
                builder = builder
                    .set_client_to_redis_certificates(super::trusting(&ca))
                    .set_client_to_sentinel_certificates(super::trusting(&ca));
            }
        }
        let primary = Primary(Arc::new(Inner {
            sentinel: tokio::sync::Mutex::new(builder.build()?),
            current: ArcSwapOption::empty(),
            opened: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout)),
            lookup_timeout: connect_timeout,
            master: master.to_owned(),
        }));
        primary.link().await?;
        Ok(primary)
    }

    /// How many connections to a primary have been opened: unchanged across
    /// a sequence of commands means they all went to the same server.
    pub(super) fn links_opened(&self) -> u64 {
        self.0.opened.load(Ordering::Acquire)
    }

    /// The current link, or a new one to whichever server the sentinels
    /// name now.
    async fn link(&self) -> RedisResult<Arc<Link>> {
        if let Some(link) = self.0.current.load_full() {
            return Ok(link);
        }
        let mut sentinel = self.0.sentinel.lock().await;
        // Another command may have found the primary while this one waited.
        if let Some(link) = self.0.current.load_full() {
            return Ok(link);
        }
        if let Some((at, why)) = self.0.last_failure.lock().clone() {
            if at.elapsed() < RETRY_AFTER {
                return Err(no_primary(&self.0.master, &why));
            }
        }
        let found = tokio::time::timeout(self.0.lookup_timeout, async {
            let client = sentinel.async_get_client().await?;
            let address = client.get_connection_info().addr().to_string();
            let conn = client
                .get_multiplexed_async_connection_with_config(&self.0.config)
                .await?;
            Ok::<_, RedisError>(Link { conn, address })
        })
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from((
                ErrorKind::Io,
                "timed out asking the sentinels",
            )))
        });
        match found {
            Ok(link) => {
                let link = Arc::new(link);
                tracing::info!(
                    master = %self.0.master,
                    primary = %link.address,
                    "redis sentinel: connected to the primary"
                );
                *self.0.last_failure.lock() = None;
                self.0.opened.fetch_add(1, Ordering::AcqRel);
                self.0.current.store(Some(link.clone()));
                Ok(link)
            }
            Err(e) => {
                let why = e.to_string();
                *self.0.last_failure.lock() = Some((Instant::now(), why.clone()));
                Err(no_primary(&self.0.master, &why))
            }
        }
    }

    /// Drops `link` after a failure that shows it may no longer reach the
    /// primary; the next command asks the sentinels.
    fn forget(&self, link: &Arc<Link>, error: &RedisError) {
        if !untrusted(error) {
            return;
        }
        let previous = self.0.current.compare_and_swap(link, None::<Arc<Link>>);
        if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, link)) {
            tracing::warn!(
                master = %self.0.master,
                primary = %link.address,
                error = %error,
                "redis sentinel: lost the primary; asking the sentinels again"
            );
        }
    }

    /// Where commands go now, if a link is open.
    pub(super) fn address(&self) -> Option<String> {
        self.0
            .current
            .load()
            .as_ref()
            .map(|link| link.address.clone())
    }

    /// A client for a connection of its own to the server the sentinels
    /// name primary now, speaking RESP3 (the near cache's tracking
    /// connection), and that server's address.
    pub(super) async fn resp3_client(&self) -> RedisResult<(redis::Client, String)> {
        let mut sentinel = self.0.sentinel.lock().await;
        let found = tokio::time::timeout(self.0.lookup_timeout, sentinel.async_get_client())
            .await
            .map_err(|_| RedisError::from((ErrorKind::Io, "timed out asking the sentinels")))??;
        let info = found.get_connection_info().clone();
        let address = info.addr().to_string();
        Ok((redis::Client::open(super::tracking::resp3(info))?, address))
    }
}

fn no_primary(master: &str, why: &str) -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "no reachable primary",
        format!("sentinel master {master}: {why}"),
    ))
}

/// Whether an error means the link must not be used again: the connection
/// failed, or the server is not (or not yet) a primary that serves data.
fn untrusted(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

impl ConnectionLike for Primary {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let link = self.link().await?;
            let mut conn = link.conn.clone();
            let answer = conn.req_packed_command(cmd).await;
            if let Err(e) = &answer {
                self.forget(&link, e);
            }
            answer
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let link = self.link().await?;
            let mut conn = link.conn.clone();
            let answer = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &answer {
                self.forget(&link, e);
            }
            answer
        })
    }

    fn get_db(&self) -> i64 {
        self.0
            .current
            .load()
            .as_ref()
            .map_or(0, |link| link.conn.get_db())
    }
}
