//! An async memcached client for the text protocol: the commands the store
//! uses (`gets` of several keys, `set`, `add`, `cas`, `delete`, `version`),
//! over a few TCP or UNIX-socket connections per server, each shared by
//! every caller (commands pipelined, answers read in order), keys spread
//! over several servers by a stable hash.
//!
//! Written here rather than taken from a crate: the async clients on
//! crates.io either lack `gets`/`cas` in the text protocol or speak only the
//! meta protocol (decision 0008), and the blocking `memcache` crate cost a
//! hop to Tokio's blocking pool on every check. What is here is the
//! documented protocol (memcached's `protocol.txt`) and nothing more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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

/// Which answer a command gets (the text protocol answers in order, so the
/// reader needs only this to parse the next one).
#[derive(Debug, Clone, Copy)]
enum Expect {
    Values,
    Stored,
    Deleted,
    Version,
}

type Values = HashMap<String, (Vec<u8>, u64)>;

#[derive(Debug)]
enum Reply {
    Values(Values),
    Stored(Answer),
    Deleted(bool),
    Version(String),
}

/// One command on its way, and where its answer goes.
struct Call {
    bytes: Vec<u8>,
    expect: Expect,
    reply: tokio::sync::oneshot::Sender<Result<Reply>>,
}

/// One connection shared by every caller: commands are written back to
/// back as they come (several in one write when they queue up), answers
/// read in the same order. Under load that is one system call for many
/// checks, where a connection per check costs a write and a read each.
struct Mux {
    calls: tokio::sync::mpsc::UnboundedSender<Call>,
    /// Set when the connection failed, or a caller gave up waiting on it:
    /// the next caller opens another.
    dead: Arc<AtomicBool>,
}

fn refused(line: &str) -> WireError {
    WireError::Refused(line.to_owned())
}

impl Mux {
    async fn open(endpoint: &Endpoint) -> Result<Mux> {
        let io: Box<dyn Io> = match endpoint {
            Endpoint::Tcp(hostport) => {
                let s = tokio::net::TcpStream::connect(hostport).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        let (calls, queue) = tokio::sync::mpsc::unbounded_channel();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(drive(io, queue, dead.clone()));
        Ok(Mux { calls, dead })
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire) || self.calls.is_closed()
    }
}

/// Writes the calls as they come and reads their answers in order, until
/// the connection fails or every sender is gone. Calls still waiting then
/// see their reply channel closed.
async fn drive(
    io: Box<dyn Io>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Call>,
    dead: Arc<AtomicBool>,
) {
    let (read, mut write) = tokio::io::split(io);
    let mut read = tokio::io::BufReader::new(read);
    let (sent, mut waiting) = tokio::sync::mpsc::unbounded_channel::<(
        Expect,
        tokio::sync::oneshot::Sender<Result<Reply>>,
    )>();
    let writer = async move {
        let mut buf = Vec::new();
        while let Some(call) = queue.recv().await {
            buf.clear();
            let mut next = Some(call);
            while let Some(call) = next.take() {
                buf.extend_from_slice(&call.bytes);
                if sent.send((call.expect, call.reply)).is_err() {
                    return;
                }
                if buf.len() < 64 * 1024 {
                    next = queue.try_recv().ok();
                }
            }
            if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut line = String::new();
        while let Some((expect, reply)) = waiting.recv().await {
            let answer = read_reply(&mut read, &mut line, expect).await;
            let failed = answer.is_err();
            let _ = reply.send(answer);
            if failed {
                return;
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    dead.store(true, Ordering::Release);
}

async fn read_line<'l, R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    line: &'l mut String,
) -> Result<&'l str> {
    line.clear();
    let n = read.read_line(line).await?;
    if n == 0 || !line.ends_with("\r\n") {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(line.trim_end_matches("\r\n"))
}

async fn read_reply<R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    line: &mut String,
    expect: Expect,
) -> Result<Reply> {
    match expect {
        Expect::Values => {
            let mut out = Values::new();
            loop {
                let l = read_line(read, line).await?;
                if l == "END" {
                    return Ok(Reply::Values(out));
                }
                // VALUE <key> <flags> <bytes> <cas unique>
                let mut parts = l.split(' ');
                let (Some("VALUE"), Some(key), Some(_flags), Some(len), Some(cas), None) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) else {
                    return Err(refused(l));
                };
                let (Ok(len), Ok(cas)) = (len.parse::<usize>(), cas.parse::<u64>()) else {
                    return Err(refused(l));
                };
                let key = key.to_owned();
                let mut value = vec![0; len + 2];
                read.read_exact(&mut value).await?;
                if !value.ends_with(b"\r\n") {
                    return Err(WireError::Refused("a value not ended by CRLF".into()));
                }
                value.truncate(len);
                out.insert(key, (value, cas));
            }
        }
        Expect::Stored => match read_line(read, line).await? {
            "STORED" => Ok(Reply::Stored(Answer::Stored)),
            "NOT_STORED" => Ok(Reply::Stored(Answer::NotStored)),
            "EXISTS" => Ok(Reply::Stored(Answer::Exists)),
            "NOT_FOUND" => Ok(Reply::Stored(Answer::NotFound)),
            other => Err(refused(other)),
        },
        Expect::Deleted => match read_line(read, line).await? {
            "DELETED" => Ok(Reply::Deleted(true)),
            "NOT_FOUND" => Ok(Reply::Deleted(false)),
            other => Err(refused(other)),
        },
        Expect::Version => {
            let l = read_line(read, line).await?;
            match l.strip_prefix("VERSION ") {
                Some(v) => Ok(Reply::Version(v.to_owned())),
                None => Err(refused(l)),
            }
        }
    }
}

/// One server's connections: a few shared ones, used in turn, each
/// replaced once it fails.
struct Pool {
    server: Server,
    muxes: Vec<tokio::sync::Mutex<Option<Arc<Mux>>>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Pool {
    async fn mux(&self) -> Result<Arc<Mux>> {
        let slot = &self.muxes[self.next.fetch_add(1, Ordering::Relaxed) % self.muxes.len()];
        let mut slot = slot.lock().await;
        if let Some(m) = slot.as_ref().filter(|m| !m.is_dead()) {
            return Ok(m.clone());
        }
        let m = Arc::new(Mux::open(&self.server.endpoint).await?);
        *slot = Some(m.clone());
        Ok(m)
    }

    /// Sends one command and waits for its answer, connecting first if
    /// needed, all within the server's timeout. A caller that gives up
    /// marks the connection dead: whatever held it up may hold the next.
    async fn call(&self, bytes: Vec<u8>, expect: Expect) -> Result<Reply> {
        let timeout = self.server.timeout;
        let mut used = None;
        let work = async {
            let mux = self.mux().await?;
            used = Some(mux.clone());
            let (reply, answer) = tokio::sync::oneshot::channel();
            mux.calls
                .send(Call {
                    bytes,
                    expect,
                    reply,
                })
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
            answer
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::ConnectionAborted))?
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(answer) => answer,
            Err(_) => {
                if let Some(m) = used {
                    m.dead.store(true, Ordering::Release);
                }
                Err(WireError::Timeout(timeout))
            }
        }
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
    /// Connections to `servers`: `per_server` shared connections to each.
    pub fn new(servers: Vec<Server>, per_server: usize) -> Client {
        Client {
            pools: servers
                .into_iter()
                .map(|server| Pool {
                    server,
                    muxes: (0..per_server.max(1))
                        .map(|_| tokio::sync::Mutex::new(None))
                        .collect(),
                    next: std::sync::atomic::AtomicUsize::new(0),
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
        self.sent.fetch_add(commands as u64, Ordering::Relaxed);
    }

    /// Commands sent so far, to all servers together.
    pub fn commands_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Values and `cas` ids of those of `keys` that exist: one `gets` per
    /// server holding any of them, sent to all at once.
    pub async fn gets(&self, keys: &[&str]) -> Result<Values> {
        if self.pools.len() == 1 {
            return self.gets_on(&self.pools[0], keys).await;
        }
        let mut by_server: Vec<Vec<&str>> = vec![Vec::new(); self.pools.len()];
        for k in keys {
            by_server[server_of(k, self.pools.len())].push(k);
        }
        let asks = by_server
            .iter()
            .zip(&self.pools)
            .filter(|(ks, _)| !ks.is_empty())
            .map(|(ks, pool)| self.gets_on(pool, ks));
        let mut found = Values::new();
        for part in futures_util::future::try_join_all(asks).await? {
            found.extend(part);
        }
        Ok(found)
    }

    async fn gets_on(&self, pool: &Pool, keys: &[&str]) -> Result<Values> {
        let mut cmd = b"gets".to_vec();
        for k in keys {
            cmd.push(b' ');
            cmd.extend_from_slice(k.as_bytes());
        }
        cmd.extend_from_slice(b"\r\n");
        self.count(1);
        match pool.call(cmd, Expect::Values).await? {
            Reply::Values(v) => Ok(v),
            other => Err(WireError::Refused(format!("{other:?}"))),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>> {
        Ok(self.gets(&[key]).await?.remove(key))
    }

    async fn store(
        &self,
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
        let mut bytes = cmd.into_bytes();
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
        match self.pool(key).call(bytes, Expect::Stored).await? {
            Reply::Stored(a) => Ok(a),
            other => Err(WireError::Refused(format!("{other:?}"))),
        }
    }

    pub async fn set(&self, key: &str, value: &[u8], exptime: u32) -> Result<()> {
        match self.store("set", key, value, exptime, None).await? {
            Answer::Stored => Ok(()),
            other => Err(WireError::Refused(format!("set answered {other:?}"))),
        }
    }

    /// Stores `value` unless `key` exists: whether it was stored.
    pub async fn add(&self, key: &str, value: &[u8], exptime: u32) -> Result<bool> {
        Ok(self.store("add", key, value, exptime, None).await? == Answer::Stored)
    }

    /// Stores `value` if `key` is still at `cas`: whether it was stored.
    pub async fn cas(&self, key: &str, value: &[u8], exptime: u32, cas: u64) -> Result<bool> {
        Ok(self.store("cas", key, value, exptime, Some(cas)).await? == Answer::Stored)
    }

    /// Whether `key` existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let cmd = format!("delete {key}\r\n").into_bytes();
        match self.pool(key).call(cmd, Expect::Deleted).await? {
            Reply::Deleted(d) => Ok(d),
            other => Err(WireError::Refused(format!("{other:?}"))),
        }
    }

    /// Every server's version (and so that every server answers).
    pub async fn version(&self) -> Result<Vec<String>> {
        self.count(self.pools.len());
        let asks = self.pools.iter().map(|p| async move {
            match p.call(b"version\r\n".to_vec(), Expect::Version).await? {
                Reply::Version(v) => Ok(v),
                other => Err(WireError::Refused(format!("{other:?}"))),
            }
        });
        futures_util::future::try_join_all(asks).await
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
