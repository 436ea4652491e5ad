//! Black-box harness: starts the real `sessiond` binary and talks raw
//! HTTP/1.1 to it, so tests see exactly the bytes a client would.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// A running server in its own temporary directory.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    _tmp: Option<tempfile::TempDir>,
}

/// What a test wants the server started with.
#[derive(Default, Clone)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Users (name, password, groups) to add to the password file before start.
    pub users: Vec<(String, String, String)>,
    /// Start in this directory instead of a fresh temporary one.
    pub dir: Option<PathBuf>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Leave the password file where the server's own defaults put it.
    pub default_password_file: bool,
}

impl Options {
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn user(mut self, name: &str, pw: &str) -> Self {
        self.users.push((name.into(), pw.into(), String::new()));
        self
    }
    /// A user with groups (`dev,ops`), added with `sessiond user add --groups`.
    pub fn user_in(mut self, name: &str, pw: &str, groups: &str) -> Self {
        self.users.push((name.into(), pw.into(), groups.into()));
        self
    }
}

/// Adds a user to `dir/passwd` with the real CLI.
pub fn add_user(dir: &Path, name: &str, pw: &str) {
    user_cli(dir, "add", name, Some(pw));
}

/// Adds a user with groups (`dev,ops`) to `dir/passwd` with the real CLI.
pub fn add_user_in(dir: &Path, name: &str, pw: &str, groups: &str) {
    let mut child = Command::new(BIN)
        .args(["user", "add", name, "--groups", groups, "-f"])
        .arg(dir.join("passwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{pw}\n").as_bytes()).unwrap();
    drop(stdin);
    assert!(
        child.wait().unwrap().success(),
        "sessiond user add --groups failed"
    );
}

/// `sessiond user ACTION NAME -f dir/passwd`, the password (if any) on
/// standard input; panics unless it succeeds.
pub fn user_cli(dir: &Path, action: &str, name: &str, pw: Option<&str>) {
    let mut child = Command::new(BIN)
        .args(["user", action, name, "-f"])
        .arg(dir.join("passwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(pw) = pw {
        stdin.write_all(format!("{pw}\n").as_bytes()).unwrap();
    }
    drop(stdin);
    assert!(
        child.wait().unwrap().success(),
        "sessiond user {action} failed"
    );
}

/// The fenced block of `lang` under the README heading `heading` (a
/// whole line, `## …`), as written.
pub fn readme_block(heading: &str, lang: &str) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != heading)
        .skip_while(|l| *l != format!("```{lang}"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(
        block.len() > 3,
        "README block {lang} under {heading} not found"
    );
    block.join("\n")
}

/// A credential cache (`FILE:dir/ccache`) with `user`'s TGT, from a real
/// `kinit` against the test realm (`KRB5_CONFIG` from the environment).
pub fn kinit(dir: &Path, user: &str, password: &str) -> String {
    let ccache = format!("FILE:{}", dir.join("ccache").display());
    let mut child = Command::new("kinit")
        .arg(user)
        .env("KRB5CCNAME", &ccache)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kinit (krb5-user)");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success(), "kinit failed");
    ccache
}

/// The README's "Who may reach what" configuration, written to
/// `dir/access.toml`.
pub fn readme_access_config(dir: &Path) -> PathBuf {
    let path = dir.join("access.toml");
    std::fs::write(&path, readme_block("## Who may reach what", "toml")).unwrap();
    path
}

/// Runs `script` with `bash -euo pipefail` in `dir`; its standard output,
/// once it succeeded (the README's blocks, run as written).
pub fn run_bash(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Test-friendly limits unless a test sets its own.
const BASE_ENV: &[(&str, &str)] = &[
    ("SESSIOND_AUTH__MAX_FAILURES_PER_USER", "1000"),
    ("SESSIOND_AUTH__MAX_FAILURES_PER_ADDRESS", "1000"),
];

impl Server {
    pub fn start(opts: Options) -> Server {
        Self::try_start(opts).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts the server; `Err` carries its stderr if it exits instead.
    pub fn try_start(opts: Options) -> Result<Server, String> {
        let (tmp, dir) = match opts.dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_owned();
                (Some(t), d)
            }
        };
        for (u, p, g) in &opts.users {
            if g.is_empty() {
                add_user(&dir, u, p);
            } else {
                add_user_in(&dir, u, p, g);
            }
        }
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        // As systemd starts a watched service: WATCHDOG_PID is the server's
        // own pid, which a shell that execs it knows before it starts.
        let watched = opts
            .env
            .iter()
            .any(|(k, v)| k == "SESSIOND_TEST_EXEC_WRAPPER" && v == "watchdog");
        let mut cmd = if watched {
            let mut c = Command::new("sh");
            c.args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.current_dir(&dir).args(["serve", "-p", "0"]);
        if !opts.default_password_file {
            cmd.arg("--password-file").arg(dir.join("passwd"));
        }
        cmd.args(&opts.args)
            .env_remove("SESSIOND_CONFIG")
            .env("SESSIOND_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in BASE_ENV {
            cmd.env(k, v);
        }
        // Every test server writes its audit events to a file of its own,
        // which `Drop` searches for secrets: the whole run's events, not
        // only the audit test's, are held to "never a token or password".
        cmd.env("SESSIOND_AUDIT__SINK", "file")
            .env("SESSIOND_AUDIT__PATH", dir.join("audit.log"));
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(url) = line.split_whitespace().find(|w| w.contains("://")) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default());
        };
        let addr = url.split("://").nth(1).unwrap().to_owned();
        Ok(Server {
            child,
            addr,
            dir,
            tls: opts.tls,
            _tmp: tmp,
        })
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub async fn get(&self, target: &str) -> Resp {
        self.request("GET", target, &[], b"").await
    }

    pub async fn post_form(&self, target: &str, body: &str) -> Resp {
        self.request(
            "POST",
            target,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await
    }

    pub async fn post_json(&self, target: &str, body: serde_json::Value) -> Resp {
        self.request(
            "POST",
            target,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await
    }

    /// One request on a fresh connection (`Connection: close`), read to the end.
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.raw(&request_bytes(method, target, headers, body))
            .await
    }

    /// Sends raw bytes and parses the response.
    pub async fn raw(&self, bytes: &[u8]) -> Resp {
        let tcp = TcpStream::connect(&self.addr).await.expect("connect");
        match &self.tls {
            None => exchange(tcp, bytes).await,
            Some(cfg) => {
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let tls = connector.connect(name, tcp).await.expect("TLS handshake");
                exchange(tls, bytes).await
            }
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, bytes: &[u8]) -> Resp {
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    // A hang detector, not a latency target: the concurrency tests queue
    // hundreds of argon2 checks (one per account at a time since the login
    // back-off) on two shared cores, and under a loaded CI run a login at
    // the back of that queue has waited past 30 s without anything wrong.
    let _ = tokio::time::timeout(Duration::from_secs(90), s.read_to_end(&mut out))
        .await
        .expect("response within 90 s");
    Resp::parse(&out)
}

impl Server {
    /// The audit events written so far, one JSON object each.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
            .collect()
    }
}

/// What no audit event may hold: a token (64 hex characters; events name a
/// session by 8), or one of the test suite's passwords (they end in `-pw`
/// or start `pw-`).
pub fn audit_secrets(text: &str) -> Option<String> {
    let hex_run = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|run| run.len() >= 32);
    if let Some(run) = hex_run {
        return Some(format!("a {}-hex-digit run", run.len()));
    }
    ["-pw\"", "\"pw-", "-pw,", "s3cret"]
        .iter()
        .find(|p| text.contains(*p))
        .map(|p| format!("a password-like {p:?}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            return;
        }
        let audit = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        if let Some(found) = audit_secrets(&audit) {
            panic!("the audit log holds {found}:\n{audit}");
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    /// Every header in order, repeated ones included (Set-Cookie).
    pub header_lines: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    fn parse(raw: &[u8]) -> Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let header_lines: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Resp {
            status,
            headers: header_lines.iter().cloned().collect(),
            header_lines,
            body: raw[split + 4..].to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    /// The `name=value` part of the (first) `Set-Cookie`, as a browser
    /// sends it back in `Cookie`.
    pub fn cookie(&self) -> String {
        self.header("set-cookie")
            .unwrap_or_else(|| panic!("no Set-Cookie: {self:?}"))
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Every value of a repeated header.
    #[allow(dead_code)]
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.header_lines
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the original's "bare status": no body, no content type.
    pub fn assert_bare(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.body.is_empty(), "{self:?}");
        assert_eq!(self.header("content-length"), Some("0"));
        assert!(self.header("content-type").is_none(), "{self:?}");
    }

    /// Asserts `200`, `text/plain` and an empty chunked body (only the last
    /// chunk on the wire): `/get_key` when there is no key, as the original sent.
    #[allow(dead_code)]
    pub fn assert_empty_chunked(&self) {
        assert_eq!(
            (self.status, self.body.as_slice()),
            (200, &b"0\r\n\r\n"[..]),
            "{self:?}"
        );
        assert_eq!(self.header("content-type"), Some("text/plain"));
        assert_eq!(self.header("transfer-encoding"), Some("chunked"));
        assert_eq!(self.header("content-length"), None);
    }

    /// Asserts a `text/plain` response with exactly this body.
    pub fn assert_text(&self, status: u16, body: &str) {
        assert_eq!(
            (self.status, self.text().as_str()),
            (status, body),
            "{self:?}"
        );
        assert_eq!(self.header("content-type"), Some("text/plain"));
        assert_eq!(
            self.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
}

/// `GET /v1/sessions/credentials?{query}` as the back end `reader`, for the
/// user whose session is `token`.
#[allow(dead_code)]
pub async fn fetch_credentials(s: &Server, query: &str, token: &str, reader: &str) -> Resp {
    s.request(
        "GET",
        &format!("/v1/sessions/credentials?{query}"),
        &[
            ("Authorization", &format!("Bearer {reader}")),
            ("X-Sessiond-Token", token),
        ],
        b"",
    )
    .await
}

/// Logs in through `/auth_token` and returns the token.
pub async fn login(s: &Server, realm: &str, user: &str, pw: &str) -> String {
    let r = s
        .get(&format!("/auth_token?realm={realm}&user={user}&pwd={pw}"))
        .await;
    assert_eq!(r.status, 200, "login failed: {r:?}");
    r.text().lines().next().unwrap().to_owned()
}

/// An HTTP/1.1 request with `Host: localhost` and `Connection: close`.
pub fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    // a Host given by the caller replaces the default
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v)
        .unwrap_or("localhost");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" || method == "PATCH" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One plain-HTTP request to any address (a proxy in front of sessiond).
#[allow(dead_code)]
pub async fn request_to(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    exchange(tcp, &request_bytes(method, target, headers, body)).await
}

/// A prerequisite a test lacks (a program, a service): a failure under
/// `scripts/test.sh`, which sets `SESSIOND_TEST_REQUIRE_SERVICES`, so CI never
/// passes by skipping; otherwise the test is skipped with a note. Always `None`.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var_os("SESSIOND_TEST_REQUIRE_SERVICES").is_none(),
        "{what}"
    );
    eprintln!("skipped: {what}");
    None
}

/// Whether `program` runs (`program arg`, e.g. `nginx -v`).
pub fn installed(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok()
}

/// A loopback port nothing listens on at the moment of asking.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Deletes the keys under `prefix:` in the Redis at `url` when dropped: what
/// a test left in a Redis it shares with others.
#[allow(dead_code)]
pub struct RedisKeys(pub String, pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        use redis::Commands;
        if let Ok(mut con) = redis::Client::open(self.0.as_str()).and_then(|c| c.get_connection()) {
            let keys: Vec<String> = con
                .scan_match(format!("{}:*", self.1))
                .map(|i| i.filter_map(Result::ok).collect())
                .unwrap_or_default();
            for k in keys {
                let _: Result<(), _> = con.del(k);
            }
        }
    }
}
