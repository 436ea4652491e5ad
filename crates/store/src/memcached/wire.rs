//! An async memcached client for the text protocol: the commands the store
//! uses (`gets` of several keys, `set`, `add`, `cas`, `delete`, `version`),
//! over pools of TCP or UNIX-socket connections, keys spread over several
//! servers by a stable hash.
//!
//! Written here rather than taken from a crate: the async clients on
//! crates.io either lack `gets`/`cas` in the text protocol or speak only the
//! meta protocol (decision 0008), and the blocking `memcache` crate cost a
//! hop to Tokio's blocking pool on every check. What is here is the
//! documented protocol (memcached's `protocol.txt`) and nothing more.

use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or timed out; it is dropped, not reused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server refused the command (`ERROR`, `CLIENT_ERROR …`,
    /// `SERVER_ERROR …`) or answered something this client does not know.
    #[error("server said {0:?}")]
    Refused(String),
    /// A bad server address.
    #[error("{0}")]
    Address(String),
}

type Result<T> = std::result::Result<T, WireError>;

/// Where one server listens.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Tcp(String),
    Unix(std::path::PathBuf),
}

/// One server's address and socket timeout, from `host:port`,
/// `memcache://host:port[?timeout=S]` or `unix:///path[?timeout=S]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub endpoint: Endpoint,
    pub timeout: Duration,
}

impl Server {
    pub fn parse(address: &str, default_timeout: Duration) -> Result<Server> {
        let bad = |why: &str| WireError::Address(format!("memcached address {address:?}: {why}"));
        let (rest, query) = match address.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (address, None),
        };
        let mut timeout = default_timeout;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("timeout", v)) => {
                    let secs: f64 = v.parse().map_err(|_| bad("timeout= takes seconds"))?;
                    if !(secs > 0.0 && secs <= 3600.0) {
                        return Err(bad("timeout= takes 0 to 3600 seconds"));
                    }
                    timeout = Duration::from_secs_f64(secs);
                }
                Some(("protocol", "ascii")) | Some(("tcp_nodelay", "true")) => {}
                Some(("protocol", _)) => {
                    return Err(bad("only the text protocol is spoken (protocol=ascii); memcached deprecated the binary one"))
                }
                _ => return Err(bad(&format!("unknown option {pair:?}"))),
            }
        }
        let endpoint = if let Some(path) = rest.strip_prefix("unix://") {
            Endpoint::Unix(path.into())
        } else {
            let hostport = rest.strip_prefix("memcache://").unwrap_or(rest);
            if let Some(path) = hostport.strip_prefix('/') {
                // memcache:///path, the old client's spelling of a socket
                Endpoint::Unix(format!("/{path}").into())
            } else if hostport.contains("://") || !hostport.contains(':') {
                return Err(bad(
                    "expected host:port, memcache://host:port or unix:///path",
                ));
            } else {
                Endpoint::Tcp(hostport.to_owned())
            }
        };
        Ok(Server { endpoint, timeout })
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One open connection.
struct Conn {
    io: BufStream<Box<dyn Io>>,
    line: String,
}

/// Answer to a storage command.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Stored,
    /// `add` of an existing key.
    NotStored,
    /// `cas` lost: the item changed since it was read.
    Exists,
    /// `cas` of an item that is gone.
    NotFound,
}

impl Conn {
    async fn open(endpoint: &Endpoint) -> Result<Conn> {
        let io: Box<dyn Io> = match endpoint {
            Endpoint::Tcp(hostport) => {
                let s = tokio::net::TcpStream::connect(hostport).await?;
                // requests are small and each waits for its answer
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        Ok(Conn {
            io: BufStream::new(io),
            line: String::new(),
        })
    }

    async fn read_line(&mut self) -> Result<&str> {
        self.line.clear();
        let n = self.io.read_line(&mut self.line).await?;
        if n == 0 || !self.line.ends_with("\r\n") {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        Ok(self.line.trim_end_matches("\r\n"))
    }

    fn refused(line: &str) -> WireError {
        WireError::Refused(line.to_owned())
    }

    async fn gets(
        &mut self,
        keys: &[&str],
        out: &mut HashMap<String, (Vec<u8>, u64)>,
    ) -> Result<()> {
        let mut cmd = String::from("gets");
        for k in keys {
            cmd.push(' ');
            cmd.push_str(k);
        }
        cmd.push_str("\r\n");
        self.io.write_all(cmd.as_bytes()).await?;
        self.io.flush().await?;
        loop {
            let line = self.read_line().await?;
            if line == "END" {
                return Ok(());
            }
            // VALUE <key> <flags> <bytes> <cas unique>
            let mut parts = line.split(' ');
            let (Some("VALUE"), Some(key), Some(_flags), Some(len), Some(cas), None) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(Self::refused(line));
            };
            let (Ok(len), Ok(cas)) = (len.parse::<usize>(), cas.parse::<u64>()) else {
                return Err(Self::refused(line));
            };
            let key = key.to_owned();
            let mut value = vec![0; len + 2];
            self.io.read_exact(&mut value).await?;
            if !value.ends_with(b"\r\n") {
                return Err(WireError::Refused("a value not ended by CRLF".into()));
            }
            value.truncate(len);
            out.insert(key, (value, cas));
        }
    }

    async fn store(
        &mut self,
        verb: &str,
        key: &str,
        value: &[u8],
        exptime: u32,
        cas: Option<u64>,
    ) -> Result<Answer> {
        let mut cmd = format!("{verb} {key} 0 {exptime} {}", value.len());
        if let Some(cas) = cas {
            cmd.push_str(&format!(" {cas}"));
        }
        cmd.push_str("\r\n");
        self.io.write_all(cmd.as_bytes()).await?;
        self.io.write_all(value).await?;
        self.io.write_all(b"\r\n").await?;
        self.io.flush().await?;
        match self.read_line().await? {
            "STORED" => Ok(Answer::Stored),
            "NOT_STORED" => Ok(Answer::NotStored),
            "EXISTS" => Ok(Answer::Exists),
            "NOT_FOUND" => Ok(Answer::NotFound),
            other => Err(Self::refused(other)),
        }
    }

    async fn delete(&mut self, key: &str) -> Result<bool> {
        self.io
            .write_all(format!("delete {key}\r\n").as_bytes())
            .await?;
        self.io.flush().await?;
        match self.read_line().await? {
            "DELETED" => Ok(true),
            "NOT_FOUND" => Ok(false),
            other => Err(Self::refused(other)),
        }
    }

    async fn version(&mut self) -> Result<String> {
        self.io.write_all(b"version\r\n").await?;
        self.io.flush().await?;
        let line = self.read_line().await?;
        match line.strip_prefix("VERSION ") {
            Some(v) => Ok(v.to_owned()),
            None => Err(Self::refused(line)),
        }
    }
}

/// One server's connections (`lease.rs`: a connection goes back only after
/// a command completed).
struct Pool {
    server: Server,
    conns: crate::lease::Pool<Conn>,
}

impl Pool {
    async fn lease(&self) -> Result<crate::lease::Lease<'_, Conn>> {
        self.conns.lease(|| Conn::open(&self.server.endpoint)).await
    }

    /// `work` (waiting for a connection included) within the server's timeout.
    async fn timed<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let timeout = self.server.timeout;
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| WireError::Timeout(timeout))?
    }

    async fn gets(&self, keys: &[&str]) -> Result<HashMap<String, (Vec<u8>, u64)>> {
        self.timed(async {
            let mut lease = self.lease().await?;
            let mut found = HashMap::new();
            lease.gets(keys, &mut found).await?;
            lease.done();
            Ok(found)
        })
        .await
    }

    async fn store(
        &self,
        verb: &str,
        key: &str,
        value: &[u8],
        exptime: u32,
        cas: Option<u64>,
    ) -> Result<Answer> {
        self.timed(async {
            let mut lease = self.lease().await?;
            let answer = lease.store(verb, key, value, exptime, cas).await?;
            lease.done();
            Ok(answer)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.timed(async {
            let mut lease = self.lease().await?;
            let answer = lease.delete(key).await?;
            lease.done();
            Ok(answer)
        })
        .await
    }

    async fn version(&self) -> Result<String> {
        self.timed(async {
            let mut lease = self.lease().await?;
            let answer = lease.version().await?;
            lease.done();
            Ok(answer)
        })
        .await
    }
}

/// Connections to one or more servers; a key always goes to the same one.
pub struct Client {
    pools: Vec<Pool>,
    /// Commands sent, all servers together (what a test counts round trips by).
    sent: std::sync::atomic::AtomicU64,
}

/// The server of a key: FNV-1a of the key, modulo the number of servers.
/// Stable across builds and versions (std's `DefaultHasher`, which the old
/// client used, is not promised to be), so every instance of a fleet agrees.
fn server_of(key: &str, servers: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % servers as u64) as usize
}

impl Client {
    /// Connections to `servers`, at most `per_server` open to each.
    pub fn new(servers: Vec<Server>, per_server: usize) -> Client {
        Client {
            pools: servers
                .into_iter()
                .map(|server| Pool {
                    server,
                    conns: crate::lease::Pool::new(per_server),
                })
                .collect(),
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn pool(&self, key: &str) -> &Pool {
        self.count(1);
        &self.pools[server_of(key, self.pools.len())]
    }

    fn count(&self, commands: usize) {
        self.sent
            .fetch_add(commands as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Commands sent so far, to all servers together.
    pub fn commands_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Values and `cas` ids of those of `keys` that exist: one `gets` per
    /// server holding any of them, sent to all at once.
    pub async fn gets(&self, keys: &[&str]) -> Result<HashMap<String, (Vec<u8>, u64)>> {
        if self.pools.len() == 1 {
            self.count(1);
            return self.pools[0].gets(keys).await;
        }
        let mut by_server: Vec<Vec<&str>> = vec![Vec::new(); self.pools.len()];
        for k in keys {
            by_server[server_of(k, self.pools.len())].push(k);
        }
        let asks = by_server
            .iter()
            .zip(&self.pools)
            .filter(|(ks, _)| !ks.is_empty())
            .map(|(ks, pool)| {
                self.count(1);
                pool.gets(ks)
            });
        let mut found = HashMap::new();
        for part in futures_util::future::try_join_all(asks).await? {
            found.extend(part);
        }
        Ok(found)
    }

    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>> {
        Ok(self.gets(&[key]).await?.remove(key))
    }

    pub async fn set(&self, key: &str, value: &[u8], exptime: u32) -> Result<()> {
        match self
            .pool(key)
            .store("set", key, value, exptime, None)
            .await?
        {
            Answer::Stored => Ok(()),
            other => Err(WireError::Refused(format!("set answered {other:?}"))),
        }
    }

    /// Stores `value` unless `key` exists: whether it was stored.
    pub async fn add(&self, key: &str, value: &[u8], exptime: u32) -> Result<bool> {
        let answer = self
            .pool(key)
            .store("add", key, value, exptime, None)
            .await?;
        Ok(answer == Answer::Stored)
    }

    /// Stores `value` if `key` is still at `cas`: whether it was stored.
    pub async fn cas(&self, key: &str, value: &[u8], exptime: u32, cas: u64) -> Result<bool> {
        let answer = self
            .pool(key)
            .store("cas", key, value, exptime, Some(cas))
            .await?;
        Ok(answer == Answer::Stored)
    }

    /// Whether `key` existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.pool(key).delete(key).await
    }

    /// Every server's version (and so that every server answers).
    pub async fn version(&self) -> Result<Vec<String>> {
        self.count(self.pools.len());
        futures_util::future::try_join_all(self.pools.iter().map(Pool::version)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn addresses() {
        let s = Server::parse("127.0.0.1:11211", T).unwrap();
        assert_eq!(s.endpoint, Endpoint::Tcp("127.0.0.1:11211".into()));
        assert_eq!(s.timeout, T);
        let s = Server::parse("memcache://h:1?timeout=0.5&protocol=ascii", T).unwrap();
        assert_eq!(s.endpoint, Endpoint::Tcp("h:1".into()));
        assert_eq!(s.timeout, Duration::from_millis(500));
        let s = Server::parse("unix:///run/mc.sock", T).unwrap();
        assert_eq!(s.endpoint, Endpoint::Unix("/run/mc.sock".into()));
        let s = Server::parse("memcache:///run/mc.sock?tcp_nodelay=true", T).unwrap();
        assert_eq!(s.endpoint, Endpoint::Unix("/run/mc.sock".into()));
        for bad in [
            "memcache://h:1?protocol=binary",
            "h:1?timeout=-1",
            "h:1?nope=1",
            "justahost",
            "redis://h:1",
        ] {
            let e = Server::parse(bad, T).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn keys_spread_stably() {
        // Fixed values: a change here moves every key of a multi-server
        // deployment (users logged out), so it must be deliberate.
        assert_eq!(server_of("sessiond:s:00", 3), server_of("sessiond:s:00", 3));
        let spread: Vec<usize> = (0..3000).map(|i| server_of(&format!("k{i}"), 3)).collect();
        for s in 0..3 {
            let n = spread.iter().filter(|&&x| x == s).count();
            assert!((800..1200).contains(&n), "server {s} got {n} of 3000");
        }
        assert_eq!(
            server_of("a", 1000),
            (0xaf63_dc4c_8601_ec8c_u64 % 1000) as usize
        );
    }
}
